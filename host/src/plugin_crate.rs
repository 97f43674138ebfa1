//! A plugin's crate, as a game designer works on it: `hoard plugin new`
//! makes one from the starter game, `hoard plugin build` (and `hoard dev`)
//! compiles it into the component the host loads.
//!
//! A new crate is either a Cargo workspace of its own (the default), or a
//! member of an existing plugins workspace (`--member-of plugins`). Either
//! way it depends on the guest SDK by path: the SDK is not published, so
//! the crate names the SDK of a hoard checkout (`--sdk`, `HOARD_SDK`, or
//! the one this `hoard` was built from).
//!
//! **Invariant:** `new` never overwrites: it refuses a folder that exists,
//! and it edits a workspace's `Cargo.toml` only to add the new member.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target a plugin is compiled for.
pub const TARGET: &str = "wasm32-wasip2";

/// The starter game a new crate begins as, kept compiling and tested as
/// `plugins/starter`, copied as it is; and its README, with the crate's
/// name filled in (see [`fill`]).
const STARTER: &str = include_str!("../../plugins/starter/src/lib.rs");
const STARTER_README: &str = include_str!("../../plugins/starter/README.md");

/// The SDK this `hoard` was built beside, when the checkout is still there.
const BUILT_BESIDE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk");

/// Why a crate could not be made or built.
#[derive(Debug, thiserror::Error)]
pub enum CrateError {
    #[error(
        "{0:?} cannot name a plugin: use 1 to 64 lowercase letters, digits and dashes, \
         starting with a letter (the name is also the plugin's storage namespace)"
    )]
    BadName(String),
    #[error("{0} already exists: choose another name or folder (nothing was changed)")]
    Exists(PathBuf),
    #[error(
        "cannot find hoard's guest SDK{tried}: pass --sdk DIR or set HOARD_SDK to the \
         plugins/sdk folder of a hoard checkout"
    )]
    NoSdk { tried: String },
    #[error("{path} is not a Cargo workspace to add a member to: {reason}")]
    NotAWorkspace { path: PathBuf, reason: String },
    #[error("{path} has no Cargo.toml: is it a plugin crate? (`hoard plugin new NAME` makes one)")]
    NoManifest { path: PathBuf },
    #[error("cannot {doing}: {source}")]
    Io {
        doing: String,
        source: std::io::Error,
    },
    #[error("the build failed{0} (cargo's messages are above)")]
    BuildFailed(String),
    #[error(
        "cannot add the {TARGET} target: `rustup target add {TARGET}` failed (its messages are above)"
    )]
    TargetInstall,
    #[error("cargo built no component: does the crate have `crate-type = [\"cdylib\"]`?")]
    NoComponent,
}

fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> CrateError {
    let doing = doing.into();
    move |source| CrateError::Io { doing, source }
}

/// Where a new crate goes.
#[derive(Clone, Debug)]
pub enum Layout {
    /// `<parent>/<name>`, a Cargo workspace of its own with a `hoard.toml`
    /// that serves it offline.
    Standalone { parent: PathBuf },
    /// `<workspace>/<name>`, added to the workspace's `members`, on its
    /// `[workspace.dependencies]` (as `plugins/` has them).
    Member { workspace: PathBuf },
}

/// Names cargo or the crate's own dependencies would refuse or confuse.
const RESERVED_NAMES: &[&str] = &[
    "hoard-sdk",
    "serde",
    "serde-json",
    "wit-bindgen",
    "self",
    "super",
    "crate",
    "fn",
    "mod",
    "struct",
    "enum",
    "trait",
    "impl",
    "type",
    "use",
    "pub",
    "let",
    "match",
    "loop",
    "test",
];

/// Makes the crate of a new plugin `name` from the starter game; returns
/// its folder. `sdk` overrides where the guest SDK is found.
pub fn new_crate(name: &str, layout: &Layout, sdk: Option<&Path>) -> Result<PathBuf, CrateError> {
    let valid = crate::storage::Namespace::plugin(name).is_ok() && !RESERVED_NAMES.contains(&name);
    if !valid {
        return Err(CrateError::BadName(name.to_owned()));
    }
    let parent = match layout {
        Layout::Standalone { parent } => parent,
        Layout::Member { workspace } => workspace,
    };
    let dir = parent.join(name);
    if dir.exists() {
        return Err(CrateError::Exists(dir));
    }
    let (manifest, workspace_edit, sdk) = match layout {
        Layout::Standalone { .. } => {
            let sdk = find_sdk(sdk)?;
            (standalone_manifest(name, &sdk), None, Some(sdk))
        }
        Layout::Member { workspace } => {
            let path = workspace.join("Cargo.toml");
            let text = std::fs::read_to_string(&path).map_err(|e| CrateError::NotAWorkspace {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let edited = with_member(&text, name).map_err(|reason| CrateError::NotAWorkspace {
                path: path.clone(),
                reason,
            })?;
            (member_manifest(name), Some((path, edited)), None)
        }
    };
    // Everything that can be refused was checked: now write, into a folder
    // beside the crate's that becomes it whole, so a failure part-way
    // leaves no half-made crate behind.
    let partial = parent.join(format!(".{name}.partial"));
    let written = write_crate(&partial, name, &manifest, workspace_edit.is_none(), sdk);
    let moved = written.and_then(|()| {
        std::fs::rename(&partial, &dir).map_err(io(format!("create {}", dir.display())))
    });
    if let Err(error) = moved {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(error);
    }
    if let Some((path, edited)) = workspace_edit {
        std::fs::write(&path, edited).map_err(io(format!("write {}", path.display())))?;
    }
    Ok(dir)
}

/// The crate's files, in `dir`: the standalone extras only if `standalone`.
fn write_crate(
    dir: &Path,
    name: &str,
    manifest: &str,
    standalone: bool,
    sdk: Option<PathBuf>,
) -> Result<(), CrateError> {
    if dir.exists() {
        // Left by a `new` that was stopped part-way: ours to replace.
        std::fs::remove_dir_all(dir).map_err(io(format!("remove {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir.join("src")).map_err(io(format!("create {}", dir.display())))?;
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))
    };
    write("Cargo.toml", manifest)?;
    write("src/lib.rs", STARTER)?;
    if standalone {
        write(".gitignore", "/target\n/.hoard\n")?;
        write("hoard.toml", &dev_config(name))?;
        write("README.md", &fill(STARTER_README, name))?;
        // The SDK's workspace lock pins the versions the SDK is tested
        // with (and lets a shared target folder reuse their builds).
        if let Some(lock) =
            sdk.and_then(|sdk| std::fs::read_to_string(sdk.join("../Cargo.lock")).ok())
        {
            write("Cargo.lock", &lock)?;
        }
    }
    Ok(())
}

/// The guest SDK's folder: `explicit`, else `HOARD_SDK`, else the SDK this
/// binary was built beside.
fn find_sdk(explicit: Option<&Path>) -> Result<PathBuf, CrateError> {
    let is_sdk = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|manifest| manifest.contains("name = \"hoard-sdk\""))
    };
    let from_env = std::env::var_os("HOARD_SDK").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match (explicit, from_env) {
        (Some(dir), _) => vec![dir.to_owned()],
        (None, Some(dir)) => vec![dir],
        (None, None) => vec![PathBuf::from(BUILT_BESIDE_SDK)],
    };
    for dir in &candidates {
        if is_sdk(dir) {
            return dir
                .canonicalize()
                .map_err(io(format!("resolve {}", dir.display())));
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    Err(CrateError::NoSdk {
        tried: format!(" (not at {})", tried.join(", ")),
    })
}

/// The workspace dependencies a member crate names.
const MEMBER_DEPENDENCIES: [&str; 3] = ["hoard-sdk", "serde", "serde_json"];

/// `text` (a workspace's Cargo.toml) with `name` added to its `members`,
/// the rest of the file as it was.
fn with_member(text: &str, name: &str) -> Result<String, String> {
    let mut manifest: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let workspace = manifest
        .get_mut("workspace")
        .and_then(|w| w.as_table_like_mut())
        .ok_or("it has no [workspace] table")?;
    let dependencies = workspace
        .get("dependencies")
        .and_then(|d| d.as_table_like());
    for dependency in MEMBER_DEPENDENCIES {
        if !dependencies.is_some_and(|d| d.contains_key(dependency)) {
            return Err(format!("its [workspace.dependencies] has no {dependency}"));
        }
    }
    let members = workspace
        .get_mut("members")
        .and_then(|m| m.as_array_mut())
        .ok_or("its [workspace] has no members list")?;
    if members.iter().any(|m| m.as_str() == Some(name)) {
        return Err(format!("{name} is a member already"));
    }
    members.push(name);
    Ok(manifest.to_string())
}

/// The release profile of a plugin: small and fast components. The same
/// as `plugins/`, so a shared target folder reuses dependencies' builds.
const PROFILES: &str = r#"
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true

# `cargo test` runs the rules natively: optimised, so property tests are quick.
[profile.dev]
opt-level = 2
"#;

fn standalone_manifest(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A WASM component: `hoard plugin build` compiles it for {TARGET}.
[lib]
crate-type = ["cdylib"]

[dependencies]
hoard-sdk = {{ path = {sdk} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# A workspace of its own, not part of any folder above.
[workspace]
{PROFILES}"#,
        sdk = toml_edit::Value::from(sdk.display().to_string())
    )
}

fn member_manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
edition.workspace = true
version.workspace = true
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
hoard-sdk.workspace = true
serde.workspace = true
serde_json.workspace = true
"#
    )
}

/// The name of the component file cargo writes for crate `name`.
fn component_file(name: &str) -> String {
    format!("{}.wasm", name.replace('-', "_"))
}

fn dev_config(name: &str) -> String {
    format!(
        r#"# Serves this game offline, on embedded storage in .hoard/:
#   hoard plugin build && hoard serve --config hoard.toml
# Every other setting is hoard's default (see configs/offline.toml in hoard's
# repository); HOARD_<SECTION>__<KEY> variables override any of them.

[server]
listen = "127.0.0.1:7878"

[storage.sled]
path = ".hoard/data.sled"

[sessions]
client_seeds = true   # lets you replay a game from a seed while you develop it

[[plugins]]
name = "{name}"
path = "target/{TARGET}/release/{file}"   # where `hoard plugin build` puts it, unless CARGO_TARGET_DIR moves it
"#,
        file = component_file(name)
    )
}

/// `template` with `{name}` and `{component}` (the built component's path
/// in the crate) filled in.
fn fill(template: &str, name: &str) -> String {
    template.replace("{name}", name).replace(
        "{component}",
        &format!("target/{TARGET}/release/{}", component_file(name)),
    )
}

/// A component cargo built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The crate's name (its library target's, dashes restored).
    pub package: String,
    /// The component file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// Builds the crate (or every crate of the workspace) in `dir` for
/// [`TARGET`], in release, installing the target with rustup if it is
/// missing. Cargo's messages go to this process's stderr as they come.
pub fn build(dir: &Path) -> Result<Vec<Built>, CrateError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(CrateError::NoManifest {
            path: dir.to_owned(),
        });
    }
    install_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io(format!("run {}", cargo.to_string_lossy())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut built = Vec::new();
    let mut unread = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        match line {
            Ok(line) => built.extend(component_built(&line)),
            Err(error) => {
                unread = Some(error);
                break;
            }
        }
    }
    let status = child.wait().map_err(io("wait for cargo"))?;
    if let Some(error) = unread {
        return Err(io("read cargo's output")(error));
    }
    if !status.success() {
        return Err(CrateError::BuildFailed(
            status
                .code()
                .map(|code| format!(" (cargo exited with {code})"))
                .unwrap_or_default(),
        ));
    }
    if built.is_empty() {
        return Err(CrateError::NoComponent);
    }
    Ok(built)
}

/// The component in one line of cargo's JSON messages, if it announces one.
fn component_built(line: &str) -> Option<Built> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let is_cdylib = message["target"]["crate_types"]
        .as_array()?
        .iter()
        .any(|kind| kind == "cdylib");
    if !is_cdylib {
        return None;
    }
    let path = message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Some(Built {
        package: message["target"]["name"].as_str()?.replace('_', "-"),
        path: PathBuf::from(path),
        bytes,
    })
}

/// Adds [`TARGET`] with rustup when the toolchain lacks it. Without
/// rustup there is nothing to add: cargo then says what is missing.
fn install_target() -> Result<(), CrateError> {
    let Ok(installed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    eprintln!("hoard: installing the {TARGET} target (rustup target add {TARGET})");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(io(format!("run rustup target add {TARGET}")))?;
    if !status.success() {
        return Err(CrateError::TargetInstall);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name must work as a crate and as a namespace; a folder that
    /// exists is refused and left as it was.
    #[test]
    fn bad_names_and_existing_folders_are_refused() {
        let parent = tempfile::tempdir().unwrap();
        let layout = Layout::Standalone {
            parent: parent.path().to_owned(),
        };
        let sdk = Some(Path::new(BUILT_BESIDE_SDK));
        for name in [
            "",
            "Nim",
            "1nim",
            "nim_game",
            "nim game",
            "self",
            "serde",
            &"n".repeat(65),
        ] {
            let error = new_crate(name, &layout, sdk).unwrap_err();
            assert!(matches!(error, CrateError::BadName(_)), "{name:?}: {error}");
        }
        std::fs::create_dir(parent.path().join("taken")).unwrap();
        std::fs::write(parent.path().join("taken/keep.txt"), "mine").unwrap();
        let error = new_crate("taken", &layout, sdk).unwrap_err();
        assert!(matches!(error, CrateError::Exists(_)), "{error}");
        assert_eq!(
            std::fs::read_to_string(parent.path().join("taken/keep.txt")).unwrap(),
            "mine"
        );
    }

    /// A standalone crate names the SDK by absolute path and serves
    /// itself with its own config; an SDK that is not there is named.
    #[test]
    fn a_standalone_crate_has_its_manifest_config_and_the_starter() {
        let parent = tempfile::tempdir().unwrap();
        let layout = Layout::Standalone {
            parent: parent.path().to_owned(),
        };
        let dir = new_crate("my-game", &layout, Some(Path::new(BUILT_BESIDE_SDK))).unwrap();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let sdk = Path::new(BUILT_BESIDE_SDK).canonicalize().unwrap();
        assert!(manifest.contains(&format!("path = {:?}", sdk.display().to_string())));
        assert!(manifest.contains("name = \"my-game\""));
        assert_eq!(
            std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
            STARTER
        );
        let config = std::fs::read_to_string(dir.join("hoard.toml")).unwrap();
        assert!(config.contains("target/wasm32-wasip2/release/my_game.wasm"));
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.starts_with("# my-game\n"));
        assert!(readme.contains("$H/v1/games/my-game/sessions"));
        assert!(readme.contains("check target/wasm32-wasip2/release/my_game.wasm"));
        assert!(dir.join("Cargo.lock").is_file());
        assert!(!parent.path().join(".my-game.partial").exists());

        let nowhere = parent.path().join("no-sdk-here");
        let error = new_crate("other", &layout, Some(&nowhere)).unwrap_err();
        assert!(
            error.to_string().contains("no-sdk-here"),
            "the error names where it looked: {error}"
        );
        assert!(!parent.path().join("other").exists(), "nothing was written");
    }

    /// A member is added to the workspace's list, however it is written,
    /// and comments and other lists are left alone; a manifest that is
    /// not a plugins workspace is refused and left as it was.
    #[test]
    fn a_member_joins_the_workspace_list() {
        let dependencies = "[workspace.dependencies]\nhoard-sdk = { path = \"sdk\" }\nserde = \"1\"\nserde_json = \"1\"\n";
        let cases = [
            ("members = [\"sdk\"]", "members = [\"sdk\", \"new\"]"),
            ("members = []", "members = [\"new\"]"),
            (
                "# the members are below\ndefault-members = [\"sdk\"]\nmembers = [\n    \"sdk\", # the SDK\n]",
                "default-members = [\"sdk\"]",
            ),
        ];
        for (before, after) in cases {
            let text = format!("[workspace]\n{before}\n{dependencies}");
            let edited = with_member(&text, "new").unwrap();
            assert!(edited.contains(after), "{before:?} became {edited}");
            let parsed: toml_edit::DocumentMut = edited.parse().unwrap();
            let members = parsed["workspace"]["members"].as_array().unwrap();
            assert_eq!(
                members.iter().last().unwrap().as_str(),
                Some("new"),
                "{edited}"
            );
            assert!(edited.contains("# the members are below") || !before.contains('#'));
        }
        let refusals = [
            "[package]\nname = \"x\"\n".to_owned(),
            "[workspace]\nmembers = []\n".to_owned(),
            format!("[workspace]\nmembers = [\"new\"]\n{dependencies}"),
            "[workspace]\nmembers = []\n[workspace.dependencies]\nhoard-sdk = {}\n".to_owned(),
            "not toml [".to_owned(),
        ];
        for text in refusals {
            assert!(with_member(&text, "new").is_err(), "{text}");
        }

        let workspace = tempfile::tempdir().unwrap();
        let manifest = workspace.path().join("Cargo.toml");
        std::fs::write(&manifest, "[workspace]\nmembers = [\"sdk\"]\n").unwrap();
        let layout = Layout::Member {
            workspace: workspace.path().to_owned(),
        };
        assert!(matches!(
            new_crate("game", &layout, None),
            Err(CrateError::NotAWorkspace { .. })
        ));
        assert!(!workspace.path().join("game").exists());
        std::fs::write(
            &manifest,
            format!("[workspace]\nmembers = [\"sdk\"]\n{dependencies}"),
        )
        .unwrap();
        let dir = new_crate("game", &layout, None).unwrap();
        assert!(
            std::fs::read_to_string(&manifest)
                .unwrap()
                .contains("[\"sdk\", \"game\"]")
        );
        assert!(
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .unwrap()
                .contains("hoard-sdk.workspace = true")
        );
    }

    /// Only a cdylib's `.wasm` counts as a built component.
    #[test]
    fn cargo_messages_name_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("my_game.wasm");
        std::fs::write(&wasm, b"12345").unwrap();
        let line = serde_json::json!({
            "reason": "compiler-artifact",
            "target": {"name": "my_game", "crate_types": ["cdylib"]},
            "filenames": [wasm],
        })
        .to_string();
        assert_eq!(
            component_built(&line),
            Some(Built {
                package: "my-game".into(),
                path: wasm,
                bytes: 5,
            })
        );
        let dependency = line.replace("cdylib", "lib");
        assert_eq!(component_built(&dependency), None);
        assert_eq!(component_built("not json"), None);
    }
}

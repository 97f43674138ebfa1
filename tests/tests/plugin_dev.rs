//! The plugin developer's loop on the real `hoard` binary: `plugin new`
//! makes a crate that builds, checks and plays as it comes; `plugin build`
//! reports a broken build and keeps the last component; `plugin check`
//! refuses each kind of bad component with its reason.

use hoard_tests::Api;
use hoard_tests::services::free_port;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOARD: &str = env!("CARGO_BIN_EXE_hoard-test-host");

/// `hoard ARGS` in `dir`, with no `HOARD_*` settings from the environment.
/// Builds share the plugins' target folder, so a scaffolded crate reuses
/// their dependencies instead of compiling its own, and run one job at a
/// time, to leave the other core to tests that time plugin calls.
fn hoard_command(dir: &Path, args: &[&str]) -> Command {
    let plugins_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target");
    let mut command = Command::new(HOARD);
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("HOARD_") {
            command.env_remove(variable);
        }
    }
    command
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", plugins_target)
        .env("CARGO_BUILD_JOBS", "1");
    command
}

/// [`hoard_command`] run to its end.
fn hoard(dir: &Path, args: &[&str]) -> Output {
    hoard_command(dir, args).output().expect("the binary runs")
}

/// `hoard serve --config hoard.toml` in the crate `dir`, on `port`, with
/// `settings` (`HOARD_*` variables) over its config; up once it answers.
async fn serve_crate(dir: &Path, port: u16, settings: &[(&str, &str)]) -> hoard_tests::HostProcess {
    let mut serve = hoard_command(dir, &["serve", "--config", "hoard.toml"]);
    serve
        .env("HOARD_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .envs(settings.iter().copied())
        .stderr(std::process::Stdio::null());
    hoard_tests::HostProcess::start_command(serve, port).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The component `hoard plugin build` says it built.
fn built_path(build: &Output) -> PathBuf {
    let stdout = text(&build.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("built "))
        .unwrap_or_else(|| panic!("no `built` line in {stdout}"));
    let path = line.split_once(": ").expect("built NAME: PATH (SIZE)").1;
    PathBuf::from(path.rsplit_once(" (").expect("a size").0)
}

/// From `hoard plugin new` to a game played over HTTP, as the README's
/// walk-through goes: the new crate builds, passes the check, and is
/// served by its own `hoard.toml`; a broken edit fails the build with the
/// compiler's message and leaves the last component in place.
#[tokio::test]
async fn a_new_plugin_builds_checks_and_plays() {
    let work = tempfile::tempdir().unwrap();
    let made = hoard(work.path(), &["plugin", "new", "nim-test"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = work.path().join("nim-test");

    let build = hoard(&dir, &["plugin", "build"]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    let component = built_path(&build);
    assert!(component.ends_with("wasm32-wasip2/release/nim_test.wasm"));

    let check = hoard(&dir, &["plugin", "check", component.to_str().unwrap()]);
    let report = text(&check.stdout);
    assert!(check.status.success(), "{}", text(&check.stderr));
    for expected in [
        "fits the hoard:plugin/plugin@0.2.0 world",
        "contract: hoard:plugin@0.2.0",
        "game: nim-test 0.1.0 (2 to 2 players)",
        "hoard:plugin/game@0.2.0",
        "hoard:plugin/hot@0.2.0",
        "linear memory:",
        "limit wasm.memory_bytes_max: 64 MiB",
        "tables (limit 20000 elements each)",
    ] {
        assert!(report.contains(expected), "{expected:?} in {report}");
    }

    // The crate's hoard.toml looks for the component in its own target
    // folder; this build went to the shared one.
    let expected = dir.join("target/wasm32-wasip2/release/nim_test.wasm");
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    std::fs::copy(&component, &expected).unwrap();
    let port = free_port();
    let host = serve_crate(&dir, port, &[]).await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let session = api
        .create("nim-test", json!({"config": {"stones": 5}}))
        .await;
    let ann = api.join(&session, "ann").await;
    let bob = api.join(&session, "bob").await;
    let refused = bob.act(&json!({"type": "take", "stones": 1})).await;
    assert_eq!((refused.status, refused.code()), (409, "not_your_turn"));
    let refused = ann.act(&json!({"type": "take", "stones": 4})).await;
    assert_eq!((refused.status, refused.code()), (422, "bad_take"));
    assert_eq!(
        ann.act(&json!({"type": "take", "stones": 3})).await.status,
        200
    );
    let last = bob.act(&json!({"type": "take", "stones": 2})).await;
    assert_eq!(last.status, 200, "{:?}", last.body);
    assert_eq!(ann.view().await["winner"], "bob");
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["outcome"]["winners"], json!(["bob"]));
    drop(host);

    // A broken edit: the build fails with rustc's message, and the last
    // good component is still there.
    let source = dir.join("src/lib.rs");
    let good = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        good.replace("nim.stones -= stones;", "nim.stones -= ;"),
    )
    .unwrap();
    let broken = hoard(&dir, &["plugin", "build"]);
    assert!(!broken.status.success());
    let stderr = text(&broken.stderr);
    assert!(
        stderr.contains("error") && stderr.contains("the build failed"),
        "{stderr}"
    );
    assert!(component.is_file(), "the last good build is kept");
}

/// `plugin build` and `plugin new` refuse what they cannot work with, and
/// say so.
#[test]
fn plugin_new_and_build_refuse_bad_input() {
    let work = tempfile::tempdir().unwrap();
    let no_crate = hoard(work.path(), &["plugin", "build"]);
    assert!(!no_crate.status.success());
    assert!(text(&no_crate.stderr).contains("has no Cargo.toml"));

    let bad_name = hoard(work.path(), &["plugin", "new", "My_Game"]);
    assert!(!bad_name.status.success());
    assert!(text(&bad_name.stderr).contains("cannot name a plugin"));

    std::fs::create_dir(work.path().join("taken")).unwrap();
    let taken = hoard(work.path(), &["plugin", "new", "taken"]);
    assert!(!taken.status.success());
    assert!(text(&taken.stderr).contains("already exists"));

    let no_sdk = hoard(
        work.path(),
        &["plugin", "new", "fresh", "--sdk", "/nowhere"],
    );
    assert!(!no_sdk.status.success());
    assert!(text(&no_sdk.stderr).contains("cannot find hoard's guest SDK"));
    assert!(!work.path().join("fresh").exists());
}

/// Each kind of bad component is refused with the reason a designer can act
/// on: not WebAssembly, a core module, a component for contract 0.1, one
/// importing what the host does not provide, one asking for more memory
/// than an instance may have.
#[test]
fn plugin_check_names_what_is_wrong() {
    let work = tempfile::tempdir().unwrap();
    let cases: &[(&str, Vec<u8>, &[&str])] = &[
        (
            "text.wasm",
            b"not wasm at all".to_vec(),
            &["is not a WebAssembly component", "magic bytes"],
        ),
        (
            "module.wasm",
            wat::parse_str("(module (func (export \"f\")))").unwrap(),
            &["core WebAssembly module", "wasm32-wasip2"],
        ),
        (
            "old.wasm",
            wat::parse_str(
                r#"(component
                    (core module $m (func (export "f")))
                    (core instance $i (instantiate $m))
                    (func $f (canon lift (core func $i "f")))
                    (instance $game (export "describe" (func $f)))
                    (export "hoard:plugin/game@0.1.0" (instance $game)))"#,
            )
            .unwrap(),
            &[
                "built for the plugin contract hoard:plugin@0.1.0",
                "speaks hoard:plugin@0.2.0",
            ],
        ),
        (
            "telemetry.wasm",
            wat::parse_str(
                r#"(component
                    (import "acme:telemetry/send@1.0.0"
                        (instance (export "send" (func (param "event" string))))))"#,
            )
            .unwrap(),
            &["imports `acme:telemetry/send@1.0.0`", "does not provide"],
        ),
        (
            "greedy.wasm",
            wat::parse_str(
                r#"(component
                    (core module $m (memory 2000))
                    (core instance $i (instantiate $m)))"#,
            )
            .unwrap(),
            &[
                "asks for a linear memory of 125 MiB at its start",
                "wasm.memory_bytes_max (64 MiB)",
            ],
        ),
    ];
    for (file, bytes, expected) in cases {
        let path = work.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let check = hoard(work.path(), &["plugin", "check", path.to_str().unwrap()]);
        let stderr = text(&check.stderr);
        assert!(
            !check.status.success(),
            "{file} passed: {}",
            text(&check.stdout)
        );
        assert!(stderr.contains("rejected"), "{file}: {stderr}");
        for part in *expected {
            assert!(stderr.contains(part), "{file}: {part:?} in {stderr}");
        }
    }
}

/// What a plugin prints reaches the host's log, a line at a time, tagged
/// with the plugin, its version and the session, at the level the line
/// names. A flood is cut to the configured rate, with a count of what was
/// dropped; a plugin printing forever is stopped by its time limit (5 s
/// here); the host keeps serving throughout.
#[tokio::test]
async fn plugin_output_is_logged_tagged_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = hoard_tests::offline_config_file(dir.path(), port, "probe");
    let mut text = std::fs::read_to_string(&config).unwrap();
    // A generous time limit: printing a thousand lines must not time out
    // on a busy machine; the test of the limit prints forever.
    text.push_str("[wasm]\nlog_lines_per_s = 5\ncall_timeout_ms = 5000\n");
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("host.log");
    let host = hoard_tests::HostProcess::start_logging(HOARD, &config, port, &log).await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let session = api.create("probe", json!({})).await;
    let probe = api.join(&session, "tester").await;
    let say = |body: &str, level: &str, lines: u64| json!({"do": "log", "body": body, "member": level, "bytes": lines});

    let warned = probe.act(&say("the deck is short", "warn", 1)).await;
    assert_eq!(warned.status, 200, "{:?}", warned.body);
    let flood = probe.act(&say("flood line", "info", 1_000)).await;
    assert_eq!(
        flood.status, 200,
        "printing a lot is allowed, not all of it logged"
    );
    // A token comes back every 200 ms: the next line gets through and
    // reports what was dropped.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        probe.act(&say("after the flood", "info", 1)).await.status,
        200
    );
    let forever = probe.act(&json!({"do": "log-forever"})).await;
    assert_eq!((forever.status, forever.code()), (500, "plugin_timeout"));
    let count = probe.act(&json!({"do": "count"})).await;
    assert_eq!(count.status, 200, "the session goes on after the fault");
    drop(host);

    let logged = std::fs::read_to_string(&log).unwrap();
    let tagged = format!("plugin=probe version=0.1.0 session={session}");
    let warn_line = logged
        .lines()
        .find(|l| l.contains("the deck is short"))
        .unwrap_or_else(|| panic!("the warning is logged: {logged}"));
    assert!(
        warn_line.contains("WARN")
            && warn_line.contains("hoard::plugin")
            && warn_line.contains(&tagged),
        "{warn_line}"
    );
    let flood_lines = logged.lines().filter(|l| l.contains("flood line")).count();
    assert!(
        (1..=40).contains(&flood_lines),
        "a burst of 20 and 5 a second, not 1,000: {flood_lines}"
    );
    assert!(
        logged.contains("lines from this plugin dropped"),
        "{logged}"
    );
    assert!(logged.contains("after the flood"));
}

/// Makes, builds and returns the crate `name` in `work`, with its first
/// component copied to where its `hoard.toml` looks for it.
fn scaffold(work: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = hoard(work, &["plugin", "new", name]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = work.join(name);
    let component = build_copy(&dir, &work.join(format!("{name}-v1.wasm")));
    let configured = dir.join(format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ));
    std::fs::create_dir_all(configured.parent().unwrap()).unwrap();
    std::fs::copy(&component, &configured).unwrap();
    (dir, configured)
}

/// Builds the crate in `dir` and copies the component to `to`.
fn build_copy(dir: &Path, to: &Path) -> PathBuf {
    let build = hoard(dir, &["plugin", "build"]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    std::fs::copy(built_path(&build), to).unwrap();
    to.to_owned()
}

/// Sets the crate's rules: the starter's `src/lib.rs` with each `(from,
/// to)` replaced, and the crate's version `version`.
fn set_rules(dir: &Path, starter: &str, edits: &[(&str, &str)], version: &str) {
    let mut rules = starter.to_owned();
    for (from, to) in edits {
        assert!(rules.contains(from), "{from:?} is in the starter");
        rules = rules.replace(from, to);
    }
    std::fs::write(dir.join("src/lib.rs"), rules).unwrap();
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let (head, rest) = text.split_once("version = \"").unwrap();
    let rest = &rest[rest.find('"').unwrap()..];
    std::fs::write(&manifest, format!("{head}version = \"{version}{rest}")).unwrap();
}

/// The starter with `edits` as version `version`, built and copied to
/// `to`.
fn build_version(
    dir: &Path,
    starter: &str,
    edits: &[(&str, &str)],
    version: &str,
    to: &Path,
) -> PathBuf {
    set_rules(dir, starter, edits, version);
    build_copy(dir, to)
}

/// Version 0.2.0 of the starter keeps its pile under another name, and
/// upgrades 0.1's state to it.
const V2_LAYOUT: (&str, &str) = (
    "    /// Stones left on the pile.\n    stones: u32,",
    "    /// Stones left on the pile.\n    #[serde(rename = \"pile\")]\n    stones: u32,",
);
const V2_UPGRADE: (&str, &str) = (
    "    fn describe() -> Info {",
    r#"    fn upgrade(state: &[u8], written_by: &str) -> Result<Nim, GameError> {
        #[derive(Deserialize)]
        struct Old {
            stones: u32,
            players: Vec<String>,
            turn: usize,
            winner: Option<String>,
        }
        if !written_by.starts_with("0.1.") {
            return <Nim as Rules>::decode(state);
        }
        let old: Old = hoard_sdk::rules::decode_json(state)?;
        Ok(Nim { stones: old.stones, players: old.players, turn: old.turn, winner: old.winner })
    }

    fn describe() -> Info {"#,
);
const V3_REFUSES: (&str, &str) = (
    "    fn describe() -> Info {",
    r#"    fn upgrade(_state: &[u8], written_by: &str) -> Result<Nim, GameError> {
        Err(GameError::malformed("no_upgrade", format!("sessions of {written_by} finish there")))
    }

    fn describe() -> Info {"#,
);

/// Hot reload through `hoard plugin deploy`, on a scaffolded game built in
/// four versions:
/// - 0.2.0 keeps its state in another layout and upgrades 0.1's: a
///   session started on 0.1.0 moves to it at its next call, its game
///   intact; new sessions start on it.
/// - 0.3.0 refuses to upgrade: sessions of 0.2.0 stay there (until they
///   end) while new ones start on 0.3.0; `hoard plugin versions` shows
///   which sessions run which.
/// - A build that traps while describing itself, a component of another
///   world, garbage, an unknown plugin and a deploy without the admin
///   token are refused with their reason, and the current version keeps
///   serving. With every older version in use, a deploy past
///   `wasm.plugin_versions_max` is refused.
/// - The deployed file replaces the configured one: after a restart 0.3.0
///   serves, and a session 0.2.0 wrote (no longer loaded), which 0.3.0
///   refuses, answers 409 `version_unavailable`.
#[tokio::test]
async fn deployed_versions_upgrade_running_sessions_or_keep_them() {
    let work = tempfile::tempdir().unwrap();
    let (dir, _) = scaffold(work.path(), "nim-deploy");
    let starter = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let stamp = |v: &str| ("take 1 to 3 stones", format!("({v}) take 1 to 3 stones"));
    let version = |edits: &[(&str, &str)], version: &str, file: &str| {
        build_version(&dir, &starter, edits, version, &work.path().join(file))
    };
    let (from, v2_text) = stamp("v2");
    let v2 = version(
        &[V2_LAYOUT, V2_UPGRADE, (from, &v2_text)],
        "0.2.0",
        "v2.wasm",
    );
    let (from, v3_text) = stamp("v3");
    let v3 = version(
        &[V2_LAYOUT, V3_REFUSES, (from, &v3_text)],
        "0.3.0",
        "v3.wasm",
    );
    let trap = (
        "    fn describe() -> Info {",
        "    fn describe() -> Info {\n        panic!(\"broken\");",
    );
    let broken = version(&[trap], "0.4.0", "broken.wasm");

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let token = "a-deploy-token-0123456789";
    let settings = [
        ("HOARD_ADMIN__TOKEN", token),
        ("HOARD_WASM__PLUGIN_VERSIONS_MAX", "2"),
    ];
    let start = || serve_crate(&dir, port, &settings);
    let host = start().await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let seat = |session: String| {
        let api = api.clone();
        async move {
            let ann = api.join(&session, "ann").await;
            let bob = api.join(&session, "bob").await;
            (ann, bob)
        }
    };
    let four = json!({"type": "take", "stones": 4});
    let take = |n: u64| json!({"type": "take", "stones": n});
    let said = |reply: hoard_tests::Reply| {
        assert_eq!(reply.status, 422, "{:?}", reply.body);
        reply.body["error"]["message"].as_str().unwrap().to_owned()
    };
    let deploy = |file: &Path, name: &str, token: &str| {
        let file = file.to_str().unwrap();
        hoard(
            &dir,
            &[
                "plugin", "deploy", file, "--name", name, "--url", &url, "--token", token,
            ],
        )
    };
    let deployed = |file: &Path| {
        let done = deploy(file, "nim-deploy", token);
        assert!(done.status.success(), "{}", text(&done.stderr));
        text(&done.stdout)
    };

    let (s1_ann, s1_bob) = seat(api.create("nim-deploy", json!({})).await).await;
    assert_eq!(s1_ann.act(&take(3)).await.status, 200);
    assert!(said(s1_bob.act(&four).await).starts_with("take 1 to 3"));

    assert!(deployed(&v2).contains("nim-deploy 0.2.0+"));
    assert!(
        said(s1_bob.act(&four).await).starts_with("(v2)"),
        "the session moved"
    );
    assert_eq!(s1_ann.view().await["stones"], 18, "its game came along");
    assert_eq!(s1_bob.act(&take(1)).await.status, 200, "and goes on");
    let (s2_ann, _) = seat(api.create("nim-deploy", json!({})).await).await;
    assert!(said(s2_ann.act(&four).await).starts_with("(v2)"));

    let report = deployed(&v3);
    assert!(report.contains("unloaded 0.1.0+"), "{report}");
    let (s3_ann, _) = seat(api.create("nim-deploy", json!({})).await).await;
    assert!(said(s3_ann.act(&four).await).starts_with("(v3)"));
    assert!(
        said(s1_ann.act(&four).await).starts_with("(v2)"),
        "0.3.0 refused: it stays"
    );
    assert!(said(s2_ann.act(&four).await).starts_with("(v2)"));
    assert_eq!(
        s1_ann.act(&take(2)).await.status,
        200,
        "and is played on 0.2.0"
    );
    let versions = hoard(
        &dir,
        &[
            "plugin", "versions", "--url", &url, "--token", token, "--json",
        ],
    );
    let listed: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    let listed = &listed["plugins"][0]["versions"];
    let row = |i: usize| {
        let v = &listed[i];
        (
            v["game_version"].clone(),
            v["current"].clone(),
            v["live_sessions"].clone(),
        )
    };
    assert_eq!(row(0), (json!("0.3.0"), json!(true), json!(1)), "{listed}");
    assert_eq!(row(1), (json!("0.2.0"), json!(false), json!(2)), "{listed}");
    let on_v2 = listed[1]["sessions"].as_array().unwrap();
    assert!(on_v2.contains(&json!(s1_ann.session)), "{listed}");

    // Refusals: each names its reason and changes nothing.
    let garbage = work.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let wrong_world = hoard_tests::plugin_path("wrong-world");
    let cases = [
        (
            deploy(&v2, "nim-deploy", "not-the-admin-token-at-all"),
            "bad_admin_token",
        ),
        (
            deploy(&garbage, "nim-deploy", token),
            "is not a WebAssembly component",
        ),
        (deploy(&wrong_world, "nim-deploy", token), "does not fit"),
        (
            deploy(&broken, "nim-deploy", token),
            "failed while describing itself",
        ),
        (deploy(&v2, "no-such-game", token), "unknown_plugin"),
        (
            deploy(&hoard_tests::plugin_path("pig"), "nim-deploy", token),
            "other_game",
        ),
        (
            deploy(&work.path().join("nim-deploy-v1.wasm"), "nim-deploy", token),
            "too_many_versions",
        ),
    ];
    for (refused, reason) in cases {
        assert!(!refused.status.success());
        assert!(
            text(&refused.stderr).contains(reason),
            "{reason}: {}",
            text(&refused.stderr)
        );
    }
    assert!(
        said(s3_ann.act(&four).await).starts_with("(v3)"),
        "0.3.0 still serves"
    );
    assert!(said(s1_bob.act(&four).await).starts_with("(v2)"));
    drop(host);

    // After a restart only the configured file, now 0.3.0, is loaded.
    let _host = start().await;
    assert!(said(s3_ann.act(&four).await).starts_with("(v3)"));
    for attempt in 0..2 {
        let stranded = s1_bob.act(&four).await;
        assert_eq!(
            (stranded.status, stranded.code()),
            (409, "version_unavailable"),
            "attempt {attempt}: {:?}",
            stranded.body
        );
    }
}

/// 1,000 actions on ten sessions while ten deploys alternate between two
/// builds: every action is applied exactly once (each take leaves the pile
/// one smaller, in order) and every session ends with its 100th.
#[tokio::test]
async fn actions_during_reloads_are_neither_lost_nor_doubled() {
    let work = tempfile::tempdir().unwrap();
    let (dir, _) = scaffold(work.path(), "nim-reload");
    let v1 = work.path().join("nim-reload-v1.wasm");
    let starter = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let description = (
        "whoever takes the last one wins.",
        "the last one wins (v2).",
    );
    let v2 = build_version(
        &dir,
        &starter,
        &[description],
        "0.2.0",
        &work.path().join("v2.wasm"),
    );

    let port = free_port();
    let token = "a-reload-token-0123456789";
    // Deploys compile beside the games: no call should time out.
    let settings = [
        ("HOARD_ADMIN__TOKEN", token),
        ("HOARD_WASM__CALL_TIMEOUT_MS", "5000"),
    ];
    let _host = serve_crate(&dir, port, &settings).await;
    let api = Api::new(([127, 0, 0, 1], port).into());

    // Deploys done so far: every session waits for the first one half-way,
    // and the second waits until each has acted on the first, so each
    // moves at least once; the others land wherever the games are.
    let (deployed, deploys) = tokio::sync::watch::channel(0u32);
    let acted_after_first = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut games = Vec::new();
    for _ in 0..10 {
        let session = api
            .create("nim-reload", json!({"config": {"stones": 100}}))
            .await;
        let ann = api.join(&session, "ann").await;
        let bob = api.join(&session, "bob").await;
        let mut deploys = deploys.clone();
        let acted = acted_after_first.clone();
        games.push(tokio::spawn(async move {
            for n in 0..100u64 {
                if n == 50 {
                    deploys.wait_for(|&done| done >= 1).await.unwrap();
                }
                let player = if n % 2 == 0 { &ann } else { &bob };
                let reply = player.act(&json!({"type": "take", "stones": 1})).await;
                assert_eq!(reply.status, 200, "take {n}: {:?}", reply.body);
                assert_eq!(
                    reply.body["view"]["stones"],
                    99 - n,
                    "take {n} applied once"
                );
                if n == 50 {
                    acted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let summary = ann.api.get(&format!("/v1/sessions/{}", ann.session)).await;
            assert_eq!(summary.body["actions"], 100);
            assert_eq!(summary.body["outcome"]["winners"], json!(["bob"]));
        }));
    }
    let http = reqwest::Client::new();
    for round in 0..10 {
        let file = if round % 2 == 0 { &v2 } else { &v1 };
        let reply = http
            .post(format!(
                "http://127.0.0.1:{port}/admin/v1/plugins/nim-reload"
            ))
            .bearer_auth(token)
            .body(std::fs::read(file).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.status(),
            200,
            "deploy {round}: {}",
            reply.text().await.unwrap()
        );
        deployed.send_modify(|done| *done += 1);
        if round == 0 {
            eventually(120, "every session acts on the first deploy", || async {
                (acted_after_first.load(std::sync::atomic::Ordering::SeqCst) == 10).then_some(())
            })
            .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    for game in games {
        game.await.unwrap();
    }
    // Every session moved at least once as it played (after the first
    // deploy, half-way through its game).
    let metrics = hoard_tests::metrics_text(([127, 0, 0, 1], port).into()).await;
    let upgrades: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("hoard_plugin_call_duration_seconds_count"))
        .filter(|l| l.contains("call=\"upgrade\"") && l.contains("nim-reload"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        upgrades >= 10.0,
        "sessions moved {upgrades} times: {metrics}"
    );
}

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `probe` every 200 ms until it gives a value, for at most
/// `seconds`: builds take their time on a busy machine.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    seconds: u64,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `hoard dev` builds a crate and serves it; an edit is rebuilt and loaded
/// without a restart, and a session already running moves to it; a broken
/// edit prints the compiler's error and the running version keeps
/// serving; what the plugin logs shows in its output, tagged.
#[tokio::test]
async fn hoard_dev_reloads_edits_and_survives_a_broken_one() {
    let work = tempfile::tempdir().unwrap();
    let made = hoard(work.path(), &["plugin", "new", "nim-dev"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = work.path().join("nim-dev");
    let starter = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let logs = (
        "        nim.stones -= stones;",
        "        hoard_sdk::log::info(format_args!(\"{player} takes {stones}\"));\n        nim.stones -= stones;",
    );
    set_rules(&dir, &starter, &[logs], "0.1.0");

    let port = free_port();
    let output = work.path().join("dev.log");
    let _dev = Killed(
        hoard_command(&dir, &["dev", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&output).unwrap())
            .spawn()
            .unwrap(),
    );
    let printed = || std::fs::read_to_string(&output).unwrap_or_default();
    let api = Api::new(([127, 0, 0, 1], port).into());
    let health = format!("http://127.0.0.1:{port}/healthz");
    eventually(300, "hoard dev serves", || async {
        reqwest::get(&health)
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let session = api.create("nim-dev", json!({})).await;
    let ann = api.join(&session, "ann").await;
    let bob = api.join(&session, "bob").await;
    assert_eq!(
        ann.act(&json!({"type": "take", "stones": 3})).await.status,
        200
    );
    let four = json!({"type": "take", "stones": 4});
    let bob_is_told = || async {
        let reply = bob.act(&four).await;
        reply.body["error"]["message"].as_str().map(str::to_owned)
    };
    assert!(bob_is_told().await.unwrap().starts_with("take 1 to 3"));
    eventually(10, "the plugin's log line", || async {
        printed()
            .lines()
            .any(|l| l.contains("ann takes 3") && l.contains("plugin=nim-dev"))
            .then_some(())
    })
    .await;

    let (from, to) = ("take 1 to 3 stones", "(v2) take 1 to 3 stones");
    set_rules(&dir, &starter, &[logs, (from, to)], "0.2.0");
    eventually(300, "the edit is served", || async {
        bob_is_told().await.filter(|m| m.starts_with("(v2)"))
    })
    .await;
    eventually(60, "the reload is printed", || async {
        printed()
            .contains("hoard dev: reloaded nim-dev 0.2.0+")
            .then_some(())
    })
    .await;

    std::fs::write(dir.join("src/lib.rs"), "this is not rust").unwrap();
    eventually(300, "the broken build is reported", || async {
        printed()
            .contains("the running version keeps serving")
            .then_some(())
    })
    .await;
    assert!(printed().contains("error"), "cargo's message is shown");
    assert!(
        bob_is_told().await.unwrap().starts_with("(v2)"),
        "0.2.0 still serves"
    );
    assert_eq!(
        bob.act(&json!({"type": "take", "stones": 1})).await.status,
        200,
        "and the game goes on"
    );
}

//! The `hoard` command line: configuration errors are refused at start with
//! the key named, and `HOARD_*` variables override the file.

use std::process::Command;

/// Arguments, environment, and what the error must mention.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

fn hoard(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoard-test-host"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Bad settings from the file, the environment or a missing file stop the
/// start with a message that names the culprit.
#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoard.toml");
    std::fs::write(&file, "[server]\nbody_bytes_max = -1\n").unwrap();
    let file = file.to_str().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("[storage.sled]\npath = {:?}\n", dir.path().join("db")),
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let cases: &[Case] = &[
        (&["serve", "--config", file], &[], "server.body_bytes_max"),
        (
            &["serve", "--config", good],
            &[("HOARD_SERVER__LISTEN", "not-an-address")],
            "server.listen",
        ),
        (
            &["serve", "--config", good],
            &[("HOARD_WASM__CALL_TIMEOUT_MS", "0")],
            "wasm.call_timeout_ms",
        ),
        (
            &["serve", "--config", "/nonexistent/hoard.toml"],
            &[],
            "does not exist",
        ),
    ];
    for (args, env, expected) in cases {
        let (ok, stderr) = hoard(args, env);
        assert!(!ok, "{args:?} {env:?} should fail");
        // Figment spells a key from the environment as the variable did.
        assert!(
            stderr.to_lowercase().contains(expected),
            "{args:?} {env:?}: {stderr}"
        );
    }
}

/// An environment variable changes a setting the file left at its default:
/// the host then refuses to load a plugin that the variable points at a
/// missing file, which proves the variable was read.
#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoard.toml");
    std::fs::write(
        &file,
        format!(
            "[storage.sled]\npath = {:?}\n[[plugins]]\nname = \"hokm\"\npath = \"a.wasm\"\n",
            dir.path().join("db")
        ),
    )
    .unwrap();
    let (ok, stderr) = hoard(
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[(
            "HOARD_STORAGE__SLED__PATH",
            dir.path().join("env-db").to_str().unwrap(),
        )],
    );
    assert!(!ok);
    assert!(
        stderr.contains("plugin \"hokm\"") && stderr.contains("a.wasm"),
        "{stderr}"
    );
    assert!(
        dir.path().join("env-db").exists(),
        "the database opened where the variable said"
    );
    assert!(!dir.path().join("db").exists());
}

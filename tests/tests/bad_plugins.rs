//! Bad plugins are rejected at load, or fail only their own call with a
//! clear error, while the host goes on serving a Hokm game.

use hoard::config::PluginConfig;
use hoard_tests::{TestHost, hokm, plugin_path, test_config};
use serde_json::json;

/// Files that are not components of the plugin world are refused at start,
/// naming the plugin and the reason.
#[tokio::test]
async fn non_components_and_wrong_worlds_are_rejected_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "this is not wasm").unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let cases = [
        (text, "is not a WebAssembly component"),
        (core_module, "is not a WebAssembly component"),
        (
            plugin_path("wrong-world"),
            "does not fit the hoard:plugin/plugin@0.2.0 world",
        ),
        (dir.path().join("absent.wasm"), "cannot read"),
    ];
    for (path, expected) in cases {
        let mut config = test_config(dir.path(), &[]);
        config.storage.sled.path = dir.path().join(format!("db-{}", rand::random::<u32>()));
        config.plugins = vec![PluginConfig {
            name: "bad".into(),
            path: path.clone(),
        }];
        let error = hoard::app::App::start(config)
            .await
            .err()
            .expect("a bad plugin stops the start");
        let error = error.to_string();
        assert!(
            error.contains("plugin \"bad\"") && error.contains(expected),
            "{}: {error}",
            path.display()
        );
    }
}

/// A trapping, looping or memory-hungry call fails with its own error code;
/// the same session works again on its next call (a fresh instance), and a
/// Hokm game played at the same time finishes normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_calls_fail_alone() {
    let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |c| {
        c.wasm.call_timeout_ms = 200;
        c.wasm.memory_bytes_max = 32 * 1024 * 1024;
    })
    .await;
    let api = host.api();
    let game = {
        let api = api.clone();
        tokio::spawn(async move { hokm::play_game(&api, 99).await })
    };
    let session = api.create("probe", json!({})).await;
    let probe = api.join(&session, "tester").await;
    let cases = [
        (json!({"do": "trap"}), "plugin_failed", "trapped"),
        (json!({"do": "loop"}), "plugin_timeout", "200 ms"),
        (
            json!({"do": "grow"}),
            "plugin_out_of_memory",
            "33554432 bytes",
        ),
    ];
    for round in 0..2 {
        for (action, code, detail) in &cases {
            let started = std::time::Instant::now();
            let reply = probe.act(action).await;
            assert_eq!(
                (reply.status, reply.code()),
                (500, *code),
                "round {round} {action}: {:?}",
                reply.body
            );
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(detail), "{message}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{action} was stopped promptly"
            );
            // The session survives its plugin's fault.
            let ok = probe
                .act(&json!({"do": "hot-set", "key": "alive", "value": "yes"}))
                .await;
            assert_eq!(ok.status, 200, "{:?}", ok.body);
        }
    }
    let played = game.await.expect("the concurrent Hokm game completes");
    assert!(played.points.iter().any(|p| *p >= 7));
    host.stop().await;
}

/// An action that applied stays applied when the plugin then fails to
/// render the view: the answer is a success without a view, not an error
/// that would invite a retry.
#[tokio::test]
async fn a_failing_view_after_an_applied_action_still_reports_success() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let probe = api.join(&session, "tester").await;
    let reply = probe.act(&json!({"do": "break-view"})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.body["view"].is_null());
    let view = api
        .send(
            "GET",
            &format!("/v1/sessions/{session}/view"),
            None,
            Some(&probe.token),
        )
        .await;
    assert_eq!(
        (view.status, view.code()),
        (500, "plugin_failed"),
        "rendering still fails, clearly"
    );
    let fixed = probe.act(&json!({"do": "count"})).await;
    assert_eq!(fixed.status, 200);
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(
        summary.body["actions"],
        json!(2),
        "both actions applied once"
    );
    host.stop().await;
}

/// `hoard plugin check` prints a good plugin's exports and exactly why a bad
/// one is rejected.
#[test]
fn plugin_check_reports_exports_or_reasons() {
    let check = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hoard-test-host"))
            .args(["plugin", "check"])
            .arg(path)
            .output()
            .expect("the binary runs")
    };
    let good = check(&plugin_path("hokm"));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("fits the hoard:plugin/plugin@0.2.0 world"),
        "{stdout}"
    );
    assert!(stdout.contains("hoard:plugin/game@0.2.0"), "{stdout}");
    assert!(stdout.contains("game: hokm"), "{stdout}");
    let bad = check(&plugin_path("wrong-world"));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("rejected") && stderr.contains("does not fit"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hoard:plugin/game"),
        "the reason names the missing export: {stderr}"
    );
}

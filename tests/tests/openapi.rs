//! `/openapi.json` against the live host: every operation it describes is
//! served (no `not_found` for a described route), and schemathesis, driving
//! a property-based run from the description, finds no server error, no
//! undocumented status, no answer off its schema, and a 405 for every
//! method a route does not take. `scripts/test-deps.sh` installs
//! schemathesis in `target/test-venv`. (`hoard`'s unit tests check the
//! other way: every route the router serves is described.)

use hoard_tests::{EVERY_GAME, TestHost};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;

const ADMIN_TOKEN: &str = "openapi-tests-admin-token";

async fn host() -> TestHost {
    TestHost::start_with(EVERY_GAME, |config| {
        config.admin.token = Some(ADMIN_TOKEN.into());
        config.server.registrations_per_client.burst = 100_000;
        config.server.logins_per_client.burst = 100_000;
        config.accounts.logins_per_account.burst = 100_000;
    })
    .await
}

/// A concrete path for a described one.
fn concrete(template: &str) -> String {
    template
        .replace("{game}", "hokm")
        .replace("{plugin}", "hokm")
        .replace("{name}", "hokm")
        .replace("{file}", "lib.js")
        .replace("{capability}", "cold")
        .replace("{id}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_described_operation_is_served() {
    let host = host().await;
    let base = format!("http://{}", host.address);
    let doc: Value = reqwest::get(format!("{base}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() || path.ends_with("/events") {
                continue;
            }
            let request = client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{}", concrete(path)),
                )
                .bearer_auth(ADMIN_TOKEN);
            let request = if method == "post" {
                request.body("{}")
            } else {
                request
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let documented = item[method]["responses"]
                .as_object()
                .unwrap()
                .contains_key(&status.to_string());
            assert!(
                documented,
                "{method} {path}: {status} is not described: {text}"
            );
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            assert_ne!(
                code.as_deref(),
                Some("not_found"),
                "{method} {path} is described but not served: {text}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations checked");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_status() {
    let schemathesis =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "schemathesis is missing: run scripts/test-deps.sh (scripts/test.sh does)"
    );
    let host = host().await;
    let base = format!("http://{}", host.address);
    // As the operator (the admin routes answer) and as nobody (the rest
    // answer, or refuse the missing token as described).
    for header in [
        format!("Authorization: Bearer {ADMIN_TOKEN}"),
        "X-Nobody: 1".into(),
    ] {
        let output = tokio::process::Command::new(&schemathesis)
            .args([
                "run",
                &format!("{base}/openapi.json"),
                "--url",
                &base,
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,response_headers_conformance,unsupported_method",
                // Its body is a dump (JSON lines), which schemathesis cannot
                // make; tests/tests/data.rs feeds it good and bad dumps.
                "--exclude-path",
                "/v1/accounts/me/import",
                "--no-color",
                "-H",
                &header,
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            // Its cache and reports go there, not into the repository.
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("schemathesis runs");
        let text = String::from_utf8_lossy(&output.stdout);
        println!("{text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(
            output.status.success(),
            "schemathesis ({header}) found problems:\n{text}"
        );
        assert!(text.contains("passed"), "{text}");
    }
    host.stop().await;
}

//! The browser client and the admin console in headless Chromium: each test
//! starts the real host (offline, every game, an admin token) and runs one
//! file of `tests/browser/` against it with Node's test runner, Playwright
//! driving Debian's Chromium. `scripts/test-deps.sh` (run by
//! `scripts/test.sh`) installs them. Screenshots go to
//! `tests/browser/screenshots/`.

use hoard_tests::{EVERY_GAME, TestHost};
use std::path::PathBuf;
use std::process::Stdio;

const ADMIN_TOKEN: &str = "browser-tests-admin-token";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `tests/browser/{file}` against a fresh host; fails with Node's
/// output if any of its tests fails.
async fn run(file: &str) {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "Playwright is missing: run scripts/test-deps.sh (scripts/test.sh does)"
    );
    let host = TestHost::start_with(EVERY_GAME, |config| {
        config.admin.token = Some(ADMIN_TOKEN.into());
        config.server.registrations_per_client.burst = 1000;
        config.server.logins_per_client.burst = 1000;
    })
    .await;
    let output = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(&dir)
        .env("HOARD_URL", format!("http://{}", host.address))
        .env("HOARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HOARD_SCREENSHOTS", dir.join("screenshots"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs (scripts/test-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    host.stop().await;
    assert!(output.status.success(), "{file} failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_pages_play_hokm_to_the_end_and_a_reload_resumes() {
    run("hokm.test.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tabletop_drags_rolls_and_keeps_markup_as_text() {
    run("tabletop.test.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_lists_sessions_and_the_queue_behind_its_token() {
    run("admin.test.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roguelike_hero_moves_and_fights_from_the_keyboard() {
    run("roguelike.test.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_load_is_small_and_fetches_nothing_from_elsewhere() {
    run("weight.test.js").await;
}

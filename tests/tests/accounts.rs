//! Player accounts (issue 15): registering, logging in, joining sessions as
//! an account that the plugin sees as the same identity everywhere, bad
//! inputs refused with nothing changed, secrets and tokens never stored or
//! logged in clear, and login attempts rate-limited. On sled and on Redis +
//! PostgreSQL.

use hoard_tests::services::{free_port, service_host};
use hoard_tests::{Api, HostProcess, TestHost};
use serde_json::{Value, json};

/// Registers `name` with `secret` and logs in: the account's id and token.
async fn register_and_login(api: &Api, name: &str, secret: &str) -> (String, String) {
    let registered = api
        .post("/v1/accounts", &json!({"name": name, "secret": secret}))
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let id = registered.body["account"].as_str().unwrap().to_owned();
    let login = api
        .post("/v1/login", &json!({"name": name, "secret": secret}))
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["account"], json!(id));
    (id, login.body["token"].as_str().unwrap().to_owned())
}

/// Joins `session` with an account token (no name in the body).
async fn join_as_account(api: &Api, session: &str, token: &str) -> hoard_tests::Reply {
    api.send(
        "POST",
        &format!("/v1/sessions/{session}/join"),
        Some("{}"),
        Some(token),
    )
    .await
}

/// The players the probe plugin was told of, as its state keeps them.
async fn plugin_players(api: &Api, session: &str) -> Vec<Value> {
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    summary.body["view"]["players"].as_array().unwrap().clone()
}

/// One account joins two sessions: the plugin is given the same id in
/// both; a guest beside it is given none.
async fn the_same_identity_in_every_session(api: &Api) {
    let (id, token) = register_and_login(api, "alice", "correct horse battery").await;
    let me = api.send("GET", "/v1/accounts/me", None, Some(&token)).await;
    assert_eq!(
        (me.status, &me.body),
        (200, &json!({"account": id, "name": "alice"}))
    );
    for _ in 0..2 {
        let session = api.create("probe", json!({})).await;
        let joined = join_as_account(api, &session, &token).await;
        assert_eq!(joined.status, 201, "{:?}", joined.body);
        assert_eq!(joined.body["player"], "alice");
        assert_eq!(joined.body["account"], json!(id));
        api.join(&session, "bob").await;
        assert_eq!(
            plugin_players(api, &session).await,
            [
                json!({"name": "alice", "account": id}),
                json!({"name": "bob", "account": null}),
            ]
        );
        // The seat's own token acts for it, as a guest's does.
        let seat = joined.body["token"].as_str().unwrap();
        let acted = api
            .send(
                "POST",
                &format!("/v1/sessions/{session}/actions"),
                Some(r#"{"do": "hot-set", "key": "k", "value": "v"}"#),
                Some(seat),
            )
            .await;
        assert_eq!(acted.status, 200, "{:?}", acted.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_the_same_identity_in_every_session_offline() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    the_same_identity_in_every_session(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_the_same_identity_in_every_session_in_service_mode() {
    let (host, services) = service_host(&[("probe", "probe")]).await;
    the_same_identity_in_every_session(&host.api()).await;
    // The account is a record under the host's namespace in PostgreSQL.
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&services.1.url)
        .await
        .unwrap();
    let (body,): (String,) = sqlx::query_as(
        "SELECT body FROM records WHERE namespace = '_hoard' AND collection = 'accounts' AND key = 'alice'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert!(body.contains("$argon2id$"), "{body}");
    host.stop().await;
}

/// Every bad input gets its own clear 4xx, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_account_inputs_get_clear_errors_and_change_nothing() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let (alice_id, alice) = register_and_login(&api, "alice", "alice's secret").await;
    let (_, bob) = register_and_login(&api, "bob", "bob's own secret").await;
    let register = |name: &str, secret: &str| {
        let api = api.clone();
        let body = json!({"name": name, "secret": secret});
        async move { api.post("/v1/accounts", &body).await }
    };
    let login = |name: &str, secret: &str| {
        let api = api.clone();
        let body = json!({"name": name, "secret": secret});
        async move { api.post("/v1/login", &body).await }
    };
    for (reply, status, code) in [
        (register("al ice", "long enough").await, 400, "invalid_name"),
        (register("carol", "short").await, 400, "bad_secret"),
        (register("alice", "another secret").await, 409, "name_taken"),
        (register("ALICE", "another secret").await, 409, "name_taken"),
        (
            login("alice", "not alice's secret").await,
            401,
            "bad_credentials",
        ),
        (
            login("nobody", "whatever secret").await,
            401,
            "bad_credentials",
        ),
        (
            api.send("POST", "/v1/accounts", Some(r#"{"name": "x"}"#), None)
                .await,
            400,
            "bad_json",
        ),
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{:?}",
            reply.body
        );
    }

    let session = api.create("probe", json!({})).await;
    let seated = join_as_account(&api, &session, &alice).await;
    assert_eq!(seated.status, 201, "{:?}", seated.body);
    let seat_token = seated.body["token"].as_str().unwrap().to_owned();
    let join = |body: &'static str, token: Option<String>| {
        let (api, path) = (api.clone(), format!("/v1/sessions/{session}/join"));
        async move { api.send("POST", &path, Some(body), token.as_deref()).await }
    };
    for (reply, status, code) in [
        // Bob's token, claiming to be alice.
        (
            join(r#"{"name": "alice"}"#, Some(bob.clone())).await,
            400,
            "name_mismatch",
        ),
        // A guest passing as an account: by name, or with a seat's token.
        (
            join(r#"{"name": "Alice"}"#, None).await,
            409,
            "name_is_an_account",
        ),
        (
            join("{}", Some(seat_token.clone())).await,
            401,
            "bad_account_token",
        ),
        (
            join("{}", Some(format!("alice.{}", "0".repeat(64)))).await,
            401,
            "bad_account_token",
        ),
        (
            join("{}", Some("garbage".into())).await,
            401,
            "bad_account_token",
        ),
        (join("{}", None).await, 400, "bad_json"),
        // Alice again.
        (join("{}", Some(alice.clone())).await, 409, "already_seated"),
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{:?}",
            reply.body
        );
    }
    let me = api
        .send("GET", "/v1/accounts/me", None, Some(&seat_token))
        .await;
    assert_eq!((me.status, me.code()), (401, "bad_account_token"));

    // Nothing changed: one seat, alice's; both accounts log in as before.
    assert_eq!(
        plugin_players(&api, &session).await,
        [json!({"name": "alice", "account": alice_id})]
    );
    assert_eq!(login("alice", "alice's secret").await.status, 200);
    assert_eq!(login("bob", "bob's own secret").await.status, 200);
    let carol = login("carol", "long enough secret").await;
    assert_eq!(carol.status, 401, "carol was never registered");
    host.stop().await;
}

/// Logins are limited per account and per address: over either, 429 with
/// `Retry-After`, even with the right secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_over_the_limits_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hoard_tests::test_config(dir.path(), &[("probe", "probe")]);
    config.accounts.logins_per_account.burst = 3;
    config.accounts.logins_per_account.per_minute = 1;
    config.server.logins_per_client.burst = 6;
    config.server.logins_per_client.per_minute = 1;
    let host = TestHost::start_config(config).await;
    let api = host.api();
    for (name, secret) in [("alice", "alice's secret"), ("bob", "bob's own secret")] {
        let reply = api
            .post("/v1/accounts", &json!({"name": name, "secret": secret}))
            .await;
        assert_eq!(reply.status, 201);
    }
    let login = |name: &str, secret: &str| {
        let api = api.clone();
        let body = json!({"name": name, "secret": secret});
        async move { api.post("/v1/login", &body).await }
    };
    for _ in 0..3 {
        assert_eq!(login("alice", "a guess, wrong").await.status, 401);
    }
    let limited = login("alice", "alice's secret").await;
    assert_eq!(
        (limited.status, limited.code()),
        (429, "rate_limited"),
        "{:?}",
        limited.body
    );
    // Alice's bucket is hers: bob logs in, until the address's is empty.
    assert_eq!(login("bob", "bob's own secret").await.status, 200);
    assert_eq!(login("bob", "bob's own secret").await.status, 200);
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/login", host.address))
        .json(&json!({"name": "bob", "secret": "bob's own secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    host.stop().await;
}

/// Neither a secret nor a token, account or seat, is anywhere in the
/// host's storage files or its log (at `trace`), while the names that were
/// stored are there: the search would find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_is_stored_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = hoard_tests::offline_config_file(dir.path(), port, "probe");
    let log = dir.path().join("hoard.log");
    let mut host =
        HostProcess::start_logging(env!("CARGO_BIN_EXE_hoard-test-host"), &config, port, &log)
            .await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let secret = "Secret-Passphrase-0f-Dorothea";
    let (id, account_token) = register_and_login(&api, "dorothea", secret).await;
    let session = api.create("probe", json!({})).await;
    let joined = join_as_account(&api, &session, &account_token).await;
    assert_eq!(joined.status, 201, "{:?}", joined.body);
    let seat_token = joined.body["token"].as_str().unwrap().to_owned();
    let wrong = api
        .post(
            "/v1/login",
            &json!({"name": "dorothea", "secret": "Wrong-Passphrase-0f-Dorothea"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    host.kill();

    let mut stored = Vec::new();
    for entry in walk(&dir.path().join("data.sled")) {
        stored.extend(std::fs::read(entry).unwrap());
    }
    let logged = std::fs::read(&log).unwrap();
    let (_, account_secret_part) = account_token.split_once('.').unwrap();
    for (what, bytes) in [("storage", &stored), ("log", &logged)] {
        for needle in [
            secret,
            "Wrong-Passphrase-0f-Dorothea",
            account_secret_part,
            seat_token.as_str(),
        ] {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{needle:?} is in the {what}"
            );
        }
    }
    assert!(contains(&stored, b"dorothea"), "the account was stored");
    assert!(
        contains(&stored, id.as_bytes()),
        "the account id was stored"
    );
    assert!(!logged.is_empty(), "the host logged");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

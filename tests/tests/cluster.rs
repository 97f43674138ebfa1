//! Two host processes on one Redis and one PostgreSQL (cluster mode): a
//! table whose players are spread over both sees every move once, in
//! order, through their own views; an instance killed mid-game hands its
//! table to the other once its lease runs out; an instance paused past its
//! lease cannot apply a stale action when it wakes; `hoard cluster status`
//! lists both.

use hoard_bots::Host;
use hoard_bots::socket::Closed;
use hoard_tests::services::{RedisKeys, TestDatabase, free_port};
use hoard_tests::{Api, HostProcess, Player, next_event, plugin_path};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ADMIN_TOKEN: &str = "cluster-test-admin-token";
const LEASE_MS: u64 = 1000;

/// Two instances, `a` and `b`, sharing this test's Redis keys and database.
struct Pair {
    a: HostProcess,
    b: HostProcess,
    _keys: RedisKeys,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

fn instance_config(
    dir: &Path,
    id: &str,
    port: u16,
    keys: &RedisKeys,
    db: &TestDatabase,
) -> std::path::PathBuf {
    let config = dir.join(format!("{id}.toml"));
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[server.creates_per_client]
per_minute = 100000
burst = 10000
[server.joins_per_client]
per_minute = 100000
burst = 10000
[storage]
hot = "redis"
cold = "postgres"
require_durable = false
[storage.redis]
url = {redis_url:?}
key_prefix = {prefix:?}
[storage.postgres]
url = {postgres_url:?}
pool_max = 4
[storage.resilience]
outbox_path = {outbox:?}
call_timeout_ms = 5000
[sessions]
client_seeds = true
[realtime.actions_per_player]
per_minute = 600000
burst = 10000
[cluster]
enabled = true
instance_id = "{id}"
lease_ms = {LEASE_MS}
heartbeat_ms = 200
[admin]
token = "{ADMIN_TOKEN}"
[[plugins]]
name = "hokm"
path = {plugin:?}
"#,
        redis_url = keys.config.url,
        prefix = keys.config.key_prefix,
        postgres_url = db.url,
        outbox = dir.join(format!("{id}-outbox.sled")),
        plugin = plugin_path("hokm"),
    );
    std::fs::write(&config, text).expect("the config file");
    config
}

impl Pair {
    async fn start() -> Pair {
        let keys = RedisKeys::new();
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_hoard-test-host");
        let (port_a, port_b) = (free_port(), free_port());
        let a_config = instance_config(dir.path(), "a", port_a, &keys, &database);
        let a = HostProcess::start(binary, &a_config, port_a).await;
        let b_config = instance_config(dir.path(), "b", port_b, &keys, &database);
        let b = HostProcess::start(binary, &b_config, port_b).await;
        let pair = Pair {
            a,
            b,
            _keys: keys,
            _database: database,
            _dir: dir,
        };
        // Each must have seen the other's heartbeat before forwarding.
        tokio::time::sleep(Duration::from_millis(600)).await;
        pair
    }

    fn api(host: &HostProcess) -> Api {
        Api::new(SocketAddr::from(([127, 0, 0, 1], host.port)))
    }

    fn client(host: &HostProcess) -> Host {
        Host::new(&format!("http://127.0.0.1:{}", host.port))
    }
}

/// `player` as seen through another instance's address.
fn through(player: &Player, api: &Api) -> Player {
    Player {
        api: api.clone(),
        ..player.clone()
    }
}

/// The session's summary, asked of the instance behind `api`.
async fn summary(api: &Api, session: &str) -> Value {
    let reply = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// Sends `action` until an instance takes it (503 while a lease moves):
/// the reply.
async fn act_until_served(player: &Player, action: &Value) -> hoard_tests::Reply {
    for _ in 0..100 {
        let reply = player.act(action).await;
        if reply.status != 503 {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no instance took the action in 10 s");
}

#[tokio::test]
async fn a_table_split_over_two_instances_sees_every_move_once_in_order() {
    let pair = Pair::start().await;
    let (api_a, api_b) = (Pair::api(&pair.a), Pair::api(&pair.b));
    let session = api_a.create("hokm", json!({"seed": 21})).await;
    // Players join through either instance; b forwards to a, the owner.
    let mut players = Vec::new();
    for (n, name) in ["ali", "bo", "cy", "di"].into_iter().enumerate() {
        let api = if n % 2 == 0 { &api_a } else { &api_b };
        players.push(api.join(&session, name).await);
    }
    let answered = reqwest::get(format!(
        "http://127.0.0.1:{}/v1/sessions/{session}",
        pair.b.port
    ))
    .await
    .unwrap();
    assert_eq!(
        answered.headers()["hoard-instance"],
        "a",
        "b forwards to the owner"
    );
    let mut sockets = Vec::new();
    for (n, player) in players.iter().enumerate() {
        let host = if n % 2 == 0 { &pair.b } else { &pair.a };
        let mut events = Pair::client(host)
            .events(&session, Some(&player.token), None)
            .await
            .unwrap();
        assert_eq!(next_event(&mut events).await["view"], player.view().await);
        sockets.push(events);
    }
    let mut spectator = Pair::client(&pair.b)
        .events(&session, None, None)
        .await
        .unwrap();
    next_event(&mut spectator).await;
    let mut moves = 0;
    loop {
        let table = summary(&api_a, &session).await;
        if table["finished"] == true {
            break;
        }
        let turn = table["view"]["turn"].as_u64().unwrap() as usize;
        let action = hoard_bots::hokm::choose(&players[turn].view().await).unwrap();
        // Moves go in through both instances by turns.
        let api = if moves % 2 == 0 { &api_b } else { &api_a };
        let reply = through(&players[turn], api).act(&action).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        moves += 1;
        for (seat, events) in sockets.iter_mut().enumerate() {
            let event = next_event(events).await;
            assert_eq!(event["type"], "state");
            let view = players[seat].view().await;
            assert_eq!(event["view"], view, "seat {seat}, move {moves}");
            assert_eq!(event["view"]["you"]["hand"], view["you"]["hand"]);
        }
        let event = next_event(&mut spectator).await;
        assert!(event["view"]["you"].is_null(), "a spectator sees no hand");
    }
    assert!(moves > 20);
    let seen_from_b = summary(&api_b, &session).await;
    assert_eq!(seen_from_b["finished"], true);
    assert_eq!(seen_from_b["actions"].as_u64(), Some(moves));
    let text = metrics(&pair.b).await;
    for series in [
        "hoard_cluster_forwarded_total{kind=\"http\"}",
        "hoard_cluster_forwarded_total{kind=\"socket\"}",
        "hoard_cluster_lease_claims_total{outcome=\"held\"}",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}

/// The metrics text of an instance.
async fn metrics(host: &HostProcess) -> String {
    hoard_tests::metrics_text(SocketAddr::from(([127, 0, 0, 1], host.port))).await
}

#[tokio::test]
async fn an_instance_killed_mid_game_hands_its_table_to_the_other() {
    let mut pair = Pair::start().await;
    let (api_a, api_b) = (Pair::api(&pair.a), Pair::api(&pair.b));
    let session = api_a.create("hokm", json!({"seed": 8})).await;
    let mut players = Vec::new();
    for name in ["ali", "bo", "cy", "di"] {
        players.push(api_a.join(&session, name).await);
    }
    // A socket that came in through b: relayed to a.
    let mut relayed = Pair::client(&pair.b)
        .events(&session, Some(&players[0].token), None)
        .await
        .unwrap();
    next_event(&mut relayed).await;
    let mut moves = 0u64;
    for _ in 0..6 {
        let table = summary(&api_a, &session).await;
        let turn = table["view"]["turn"].as_u64().unwrap() as usize;
        let action = hoard_bots::hokm::choose(&players[turn].view().await).unwrap();
        assert_eq!(players[turn].act(&action).await.status, 200);
        moves += 1;
        next_event(&mut relayed).await;
    }

    pair.a.kill();
    // The relay says the owner went away.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), relayed.frame()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => break error.downcast::<Closed>().ok(),
            Err(_) => panic!("the relayed socket stayed open"),
        }
    };
    assert_eq!(closed.map(|c| c.code), Some(1012));

    // Through b, the game goes on once a's lease has run out.
    let players_b: Vec<Player> = players.iter().map(|p| through(p, &api_b)).collect();
    let mut reconnected = None;
    loop {
        let reply = api_b.get(&format!("/v1/sessions/{session}")).await;
        if reply.status == 503 {
            assert_eq!(reply.code(), "owner_unavailable");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let table = reply.body;
        assert_eq!(
            table["actions"].as_u64(),
            Some(moves),
            "nothing lost, nothing twice"
        );
        if table["finished"] == true {
            break;
        }
        if reconnected.is_none() {
            let mut events = Pair::client(&pair.b)
                .events(&session, Some(&players[0].token), None)
                .await
                .unwrap();
            let full = next_event(&mut events).await;
            assert_eq!(full["view"], players_b[0].view().await);
            reconnected = Some(events);
        }
        let turn = table["view"]["turn"].as_u64().unwrap() as usize;
        let action = hoard_bots::hokm::choose(&players_b[turn].view().await).unwrap();
        let reply = act_until_served(&players_b[turn], &action).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        moves += 1;
        let event = next_event(reconnected.as_mut().unwrap()).await;
        assert_eq!(event["view"], players_b[0].view().await);
    }
    assert!(moves > 20, "the table finished on b after {moves} moves");
    let text = metrics(&pair.b).await;
    let takeovers = text
        .lines()
        .find_map(|l| l.strip_prefix("hoard_cluster_lease_takeovers_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(takeovers >= Some(1), "b took a's lease over: {takeovers:?}");
    assert!(text.contains("hoard_cluster_forwarded_total{kind=\"unavailable\"}"));
}

#[tokio::test]
async fn a_paused_instance_cannot_apply_a_stale_action_when_it_wakes() {
    let pair = Pair::start().await;
    let (api_a, api_b) = (Pair::api(&pair.a), Pair::api(&pair.b));
    let session = api_a.create("hokm", json!({"seed": 3})).await;
    let mut players = Vec::new();
    for name in ["ali", "bo", "cy", "di"] {
        players.push(api_a.join(&session, name).await);
    }
    let table = summary(&api_a, &session).await;
    let turn = table["view"]["turn"].as_u64().unwrap() as usize;
    let stale = hoard_bots::hokm::choose(&players[turn].view().await).unwrap();
    // A socket a serves itself, as the owner.
    let mut on_a = Pair::client(&pair.a)
        .events(&session, Some(&players[1].token), None)
        .await
        .unwrap();
    next_event(&mut on_a).await;

    let signal = |signal: &str, pid: u32| {
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP", pair.a.pid());
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
    // b takes the session, and the move a would make is made there, then
    // the next one.
    let players_b: Vec<Player> = players.iter().map(|p| through(p, &api_b)).collect();
    let first = act_until_served(&players_b[turn], &stale).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let table = summary(&api_b, &session).await;
    let next = table["view"]["turn"].as_u64().unwrap() as usize;
    let action = hoard_bots::hokm::choose(&players_b[next].view().await).unwrap();
    assert_eq!(players_b[next].act(&action).await.status, 200);
    signal("-CONT", pair.a.pid());

    // a wakes holding the session as it was: the same move again, sent to
    // it, must not be applied on that stale state.
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/sessions/{session}/actions",
            pair.a.port
        ))
        .bearer_auth(&players[turn].token)
        .body(stale.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let instance = response.headers().get("hoard-instance").cloned();
    let body: Value = response.json().await.unwrap();
    assert_ne!(status, 200, "a applied a stale action: {body}");
    assert!(
        (400..500).contains(&status) || status == 503,
        "{status} {body}"
    );
    if (400..500).contains(&status) {
        assert_eq!(
            instance.as_ref().map(|v| v.to_str().unwrap()),
            Some("b"),
            "the owner refused it"
        );
    }
    let after = summary(&api_b, &session).await;
    assert_eq!(
        after["actions"].as_u64(),
        Some(2),
        "exactly the two moves b made"
    );
    let through_a = summary(&api_a, &session).await;
    assert_eq!(through_a["actions"].as_u64(), Some(2), "a now asks b");

    // The socket a served is told the session moved, and reconnecting
    // through a reaches b: the state as b has it.
    let moved = loop {
        match tokio::time::timeout(Duration::from_secs(10), on_a.frame()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => break error.downcast::<Closed>().ok(),
            Err(_) => panic!("a's socket was not told the session moved"),
        }
    };
    assert_eq!(moved.map(|c| c.code), Some(1012));
    let mut again = Pair::client(&pair.a)
        .events(&session, Some(&players[1].token), None)
        .await
        .unwrap();
    let full = next_event(&mut again).await;
    assert_eq!(full["view"], through(&players[1], &api_b).view().await);
}

#[tokio::test]
async fn cluster_status_lists_every_instance() {
    let pair = Pair::start().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hoard-test-host"))
        .args(["cluster", "status", "--url"])
        .arg(format!("http://127.0.0.1:{}", pair.b.port))
        .args(["--token", ADMIN_TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two instances:\n{text}");
    assert!(
        lines[1].starts_with("a ") && lines[1].contains(&pair.a.port.to_string()),
        "{text}"
    );
    assert!(
        lines[2].starts_with("b *"),
        "b answers, and marks itself:\n{text}"
    );
}

//! Alarms (issue 15, contract 0.2): a plugin asks to be called back on its
//! session. Each fires once, in order of due time, never beside another
//! call on its session; a cancelled one never fires; one pending when the
//! host is killed fires after the restart, once. Hokm's turn clock plays
//! for an absent player. On sled and on Redis + PostgreSQL.

use hoard_tests::services::{free_port, service_host};
use hoard_tests::{Api, HostProcess, Player, TestHost, offline_config_file};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Sets an alarm through the probe: `payload` (a JSON object) in `ms`.
async fn set_alarm(player: &Player, ms: u64, payload: Value) -> u64 {
    let reply = player
        .act(&json!({"do": "alarm-set", "ttl_ms": ms, "body": payload.to_string()}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["view"]["last"].as_u64().expect("an alarm id")
}

/// The payloads of the alarms that fired, in the order they fired.
async fn fired(player: &Player) -> Vec<Value> {
    let reply = player.act(&json!({"do": "history", "key": "fired"})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // Before the first append the stream is `not-found`, which the probe
    // answers as an error object.
    let rows = reply.body["view"]["last"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .map(|body| serde_json::from_str(body.as_str().unwrap()).unwrap())
        .collect()
}

/// Waits until `n` alarms have fired (or panics after `patience`).
async fn wait_fired(player: &Player, n: usize, patience: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let seen = fired(player).await;
        if seen.len() >= n {
            return seen;
        }
        assert!(
            started.elapsed() < patience,
            "{} of {n} alarms fired: {seen:?}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn counter(player: &Player, key: &str) -> u64 {
    let reply = player.act(&json!({"do": "hot-get", "key": key})).await;
    reply.body["view"]["last"]
        .as_str()
        .map_or(0, |n| n.parse().unwrap())
}

/// Alarms fire by due time, each once; a cancelled one never; while 4
/// clients bump a counter by read-then-write actions, the alarms bump it
/// too, and no bump is lost: no alarm ran beside an action.
async fn alarms_fire_once_in_order_and_alone(api: &Api) {
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    set_alarm(&player, 900, json!({"n": 1, "bump": "c"})).await;
    set_alarm(&player, 500, json!({"n": 2, "bump": "c"})).await;
    let cancelled = set_alarm(&player, 600, json!({"n": "cancelled"})).await;
    set_alarm(&player, 700, json!({"n": 3, "bump": "c"})).await;
    let cancel = player
        .act(&json!({"do": "alarm-cancel", "id": cancelled}))
        .await;
    assert_eq!(cancel.body["view"]["last"], true, "{:?}", cancel.body);
    let again = player
        .act(&json!({"do": "alarm-cancel", "id": cancelled}))
        .await;
    assert_eq!(again.body["view"]["last"], false, "cancelled once");

    let bumpers: Vec<_> = (0..4)
        .map(|_| {
            let player = player.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut bumps = 0u64;
                while started.elapsed() < Duration::from_millis(1500) {
                    let reply = player.act(&json!({"do": "bump", "key": "c"})).await;
                    assert_eq!(reply.status, 200, "{:?}", reply.body);
                    bumps += 1;
                }
                bumps
            })
        })
        .collect();
    let mut bumps = 0;
    for bumper in bumpers {
        bumps += bumper.await.unwrap();
    }
    let seen = wait_fired(&player, 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen_later = fired(&player).await;
    assert_eq!(seen_later, seen, "nothing fired twice or late");
    let order: Vec<Value> = seen.iter().map(|p| p["n"].clone()).collect();
    assert_eq!(order, [json!(2), json!(3), json!(1)]);
    assert_eq!(counter(&player, "c").await, bumps + 3, "no bump was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_fire_once_in_order_and_alone_offline() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    alarms_fire_once_in_order_and_alone(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_fire_once_in_order_and_alone_in_service_mode() {
    let (host, _services) = service_host(&[("probe", "probe")]).await;
    alarms_fire_once_in_order_and_alone(&host.api()).await;
    host.stop().await;
}

/// The host is killed (SIGKILL) with alarms pending, one of them due while
/// it is down: after the restart each fires, once, and the cancelled one
/// never does. An alarm's own alarm (`then`) fires too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_alarms_fire_once_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = offline_config_file(dir.path(), port, "probe");
    let binary = env!("CARGO_BIN_EXE_hoard-test-host");
    let mut host = HostProcess::start(binary, &config, port).await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    set_alarm(
        &player,
        300,
        json!({"n": "due while down", "then": {"ms": 200, "payload": {"n": "then"}}}),
    )
    .await;
    let cancelled = set_alarm(&player, 400, json!({"n": "cancelled"})).await;
    set_alarm(&player, 2500, json!({"n": "due after restart"})).await;
    let cancel = player
        .act(&json!({"do": "alarm-cancel", "id": cancelled}))
        .await;
    assert_eq!(cancel.body["view"]["last"], true);
    host.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let _host = HostProcess::start(binary, &config, port).await;
    let seen = wait_fired(&player, 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fired(&player).await, seen, "each once");
    let order: Vec<Value> = seen.iter().map(|p| p["n"].clone()).collect();
    assert_eq!(
        order,
        [
            json!("due while down"),
            json!("then"),
            json!("due after restart")
        ]
    );
}

/// An alarm that sets itself again, due at once, every time it fires does
/// not hold its session: it fires over and over, and the session's actions
/// are served between its firings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_never_lets_go_does_not_hold_its_session() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    set_alarm(&player, 0, json!({"forever": true})).await;
    let started = Instant::now();
    for i in 0..20 {
        let action = json!({"do": "hot-set", "key": "k", "value": i.to_string()});
        let reply = tokio::time::timeout(Duration::from_secs(2), player.act(&action))
            .await
            .unwrap_or_else(|_| panic!("action {i} waited over 2 s"));
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let fired = fired(&player).await.len();
    assert!(
        fired >= 2,
        "the alarm fired {fired} times in {:?}",
        started.elapsed()
    );
    host.stop().await;
}

/// Plays until the hokm view of `player` satisfies `done`, or panics.
async fn wait_view(player: &Player, patience: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let view = player.view().await;
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < patience, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lowest card of a hand: by rank, then suit in `C D H S` order.
fn lowest(hand: &[Value]) -> String {
    let order = |card: &str| {
        let rank = "23456789TJQKA".find(&card[..1]).unwrap();
        let suit = "CDHS".find(&card[1..]).unwrap();
        (rank, suit)
    };
    hand.iter()
        .map(|c| c.as_str().unwrap())
        .min_by_key(|c| order(c))
        .unwrap()
        .to_owned()
}

/// Nobody acts: after `turn_ms` the clock names trump for the Hakem, then
/// plays the Hakem's lowest card for them (a leader may play any card).
async fn the_turn_clock_plays_for_the_absent(api: &Api) {
    let session = api
        .create("hokm", json!({"seed": 21, "config": {"turn_ms": 1000}}))
        .await;
    let mut players = Vec::new();
    for name in ["north", "west", "south", "east"] {
        players.push(api.join(&session, name).await);
    }
    let seated = Instant::now();
    let view = players[0].view().await;
    assert_eq!(view["phase"], "choosing_trump");
    assert_eq!(view["turn_ms"], 1000);
    let hakem = &players[view["hakem"].as_u64().unwrap() as usize];
    let view = wait_view(hakem, Duration::from_secs(5), |v| v["phase"] == "playing").await;
    let named = seated.elapsed();
    assert!(
        named >= Duration::from_millis(900),
        "trump was named after {named:?}, before the clock ran out"
    );
    assert!(view["trump"].is_string());
    // The Hakem leads; once all nine cards are dealt, the clock plays the
    // lowest of them.
    let expected = lowest(view["you"]["hand"].as_array().unwrap());
    let view = wait_view(hakem, Duration::from_secs(5), |v| {
        !v["trick"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(view["trick"][0]["card"], json!(expected), "{view}");
    assert_eq!(view["trick"][0]["seat"], view["hakem"]);
    // A player who moves in time resets the clock: the next in turn plays
    // a legal card themselves, and nothing is played for them.
    let next = &players[view["turn"].as_u64().unwrap() as usize];
    let hand = next.view().await["you"]["hand"].clone();
    let led = expected[1..].to_owned();
    let card = hand
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .find(|c| c.ends_with(&led))
        .unwrap_or_else(|| hand[0].as_str().unwrap().to_owned());
    let played = next.act(&json!({"type": "play", "card": card})).await;
    assert_eq!(played.status, 200, "{:?}", played.body);
    let trick = played.body["view"]["trick"].as_array().unwrap().len();
    assert_eq!(trick, 2, "{:?}", played.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hokm_turn_clock_plays_for_the_absent_offline() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    the_turn_clock_plays_for_the_absent(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hokm_turn_clock_plays_for_the_absent_in_service_mode() {
    let (host, _services) = service_host(&[("hokm", "hokm")]).await;
    the_turn_clock_plays_for_the_absent(&host.api()).await;
    host.stop().await;
}

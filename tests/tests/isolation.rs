//! Plugins cannot reach each other's data, and a plugin instance never
//! carries state from one session to another.

use hoard_tests::TestHost;
use serde_json::json;

/// The same component loaded under two names gets two namespaces: what one
/// stores, the other cannot read or delete.
#[tokio::test]
async fn plugins_cannot_reach_each_others_data() {
    let host = TestHost::start(&[("probe-a", "probe"), ("probe-b", "probe")]).await;
    let api = host.api();
    let a = api
        .join(&api.create("probe-a", json!({})).await, "alice")
        .await;
    let b = api
        .join(&api.create("probe-b", json!({})).await, "bob")
        .await;
    let last = |reply: hoard_tests::Reply| reply.body["view"]["last"].clone();
    assert_eq!(
        last(
            a.act(&json!({"do": "hot-set", "key": "secret", "value": "a's"}))
                .await
        ),
        json!("ok")
    );
    let put =
        json!({"do": "cold-put", "collection": "c", "key": "secret", "body": "{\"owner\":\"a\"}"});
    assert_eq!(last(a.act(&put).await), json!(1));
    assert_eq!(
        last(
            a.act(&json!({"do": "board-incr", "key": "wins", "member": "alice"}))
                .await
        ),
        json!(1.0)
    );

    assert_eq!(
        last(b.act(&json!({"do": "hot-get", "key": "secret"})).await),
        json!(null)
    );
    assert_eq!(
        last(
            b.act(&json!({"do": "cold-get", "collection": "c", "key": "secret"}))
                .await
        ),
        json!(null)
    );
    assert_eq!(
        last(b.act(&json!({"do": "board-top", "key": "wins"})).await),
        json!([])
    );
    // b writing the same names creates its own copies.
    let put_b =
        json!({"do": "cold-put", "collection": "c", "key": "secret", "body": "{}", "expected": 0});
    assert_eq!(
        last(b.act(&put_b).await),
        json!(1),
        "b's record is new to b"
    );

    assert_eq!(
        last(a.act(&json!({"do": "hot-get", "key": "secret"})).await),
        json!("a's")
    );
    let a_record = last(
        a.act(&json!({"do": "cold-get", "collection": "c", "key": "secret"}))
            .await,
    );
    assert_eq!(a_record["body"], json!("{\"owner\":\"a\"}"));
    // And the host's own session records are out of every plugin's reach.
    let host_key = format!("session:{}", a.session);
    assert_eq!(
        last(b.act(&json!({"do": "hot-get", "key": host_key})).await),
        json!(null)
    );
    host.stop().await;
}

/// Each session has its own instance: a plugin's global counter counts one
/// session's calls only.
#[tokio::test]
async fn instances_are_never_shared_between_sessions() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let one = api.join(&api.create("probe", json!({})).await, "p").await;
    let two = api.join(&api.create("probe", json!({})).await, "p").await;
    let count = |player: hoard_tests::Player| async move {
        player.act(&json!({"do": "count"})).await.body["view"]["last"].clone()
    };
    assert_eq!(count(one.clone()).await, json!(1));
    assert_eq!(count(one.clone()).await, json!(2));
    assert_eq!(
        count(two.clone()).await,
        json!(1),
        "session two starts from a fresh instance"
    );
    assert_eq!(count(one.clone()).await, json!(3));
    host.stop().await;
}

/// Actions on one session apply one at a time in arrival order: 200
/// concurrent increments from 4 clients lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_actions_on_one_session_apply_one_at_a_time() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let mut tasks = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let player = api.join(&session, name).await;
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..50 {
                let reply = player.act(&json!({"do": "count"})).await;
                assert_eq!(reply.status, 200);
                seen.push(reply.body["view"]["last"].as_u64().unwrap());
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seen = task.await.unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "one client's actions apply in the order it sent them"
        );
        all.extend(seen);
    }
    all.sort();
    assert_eq!(
        all,
        (1..=200).collect::<Vec<u64>>(),
        "every action applied exactly once"
    );
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["actions"], json!(200));
    host.stop().await;
}

/// With `sessions.instances_kept_max`, the least recently used idle
/// sessions let their instances go: the host keeps no more than that, and
/// a session that lost its instance plays on from its stored state with a
/// fresh one (the probe's instance-wide count starts again), never another
/// session's.
#[tokio::test]
async fn past_instances_kept_max_idle_sessions_give_up_their_instances() {
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        config.sessions.instances_kept_max = 2;
    })
    .await;
    let api = host.api();
    let mut players = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let session = api.create("probe", json!({})).await;
        players.push(api.join(&session, name).await);
    }
    let instances = || async {
        let text = hoard_tests::metrics_text(host.address).await;
        text.lines()
            .find_map(|l| l.strip_prefix("hoard_plugin_instances "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap()
    };
    assert!(instances().await <= 2);
    let count = |player: hoard_tests::Player| async move {
        player.act(&json!({"do": "count"})).await.body["view"]["last"].clone()
    };
    // a and b take turns: two instances suffice, and each keeps counting.
    assert_eq!(count(players[0].clone()).await, json!(1));
    assert_eq!(count(players[1].clone()).await, json!(1));
    assert_eq!(count(players[0].clone()).await, json!(2));
    assert_eq!(count(players[1].clone()).await, json!(2));
    // c and d push them out; a comes back on a fresh instance, its state
    // intact.
    assert_eq!(count(players[2].clone()).await, json!(1));
    assert_eq!(count(players[3].clone()).await, json!(1));
    assert!(instances().await <= 2);
    assert_eq!(
        count(players[0].clone()).await,
        json!(1),
        "a fresh instance"
    );
    let view = players[0].view().await;
    assert_eq!(view["players"][0]["name"], "a", "its state as stored");
    assert!(instances().await <= 2);
    host.stop().await;
}

//! WebSocket events (`GET /v1/sessions/{id}/events`) on one host, offline
//! (the in-process feed): every player sees every change once, in order,
//! through their own view only; actions over the socket answer as HTTP
//! does; a reconnect resumes without gaps or duplicates; plugin messages
//! reach the session's sockets; a slow client is dropped and the others
//! keep up; bad input gets a clear error or close code.

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use hoard_bots::socket::{Closed, Events};
use hoard_bots::{Host, Refused};
use hoard_tests::{Api, Player, TestHost, next_event};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const HOKM: &[(&str, &str)] = &[("hokm", "hokm")];
const PROBE: &[(&str, &str)] = &[("probe", "probe")];

fn client(host: &TestHost) -> Host {
    Host::new(&format!("http://{}", host.address))
}

/// Four guests seated in a Hokm session dealt from `seed`.
async fn hokm_table(api: &Api, seed: u64) -> (String, Vec<Player>) {
    let session = api.create("hokm", json!({"seed": seed})).await;
    let mut players = Vec::new();
    for name in ["ali", "bo", "cy", "di"] {
        players.push(api.join(&session, name).await);
    }
    (session, players)
}

async fn spectator_view(api: &Api, session: &str) -> Value {
    api.get(&format!("/v1/sessions/{session}")).await.body["view"].clone()
}

fn cards(view: &Value) -> Vec<String> {
    view["you"]["hand"]
        .as_array()
        .map(|hand| {
            hand.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A socket per token (`None`: a spectator) on `session`, each past its
/// first event, the full state.
async fn watching(client: &Host, session: &str, tokens: &[Option<&str>]) -> Vec<Events> {
    let mut sockets = Vec::new();
    for token in tokens {
        let mut events = client.events(session, *token, None).await.unwrap();
        next_event(&mut events).await;
        sockets.push(events);
    }
    sockets
}

/// The close a socket ended with.
async fn closed(events: &mut Events) -> Closed {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.frame()).await {
            Err(_) => panic!("the socket stayed open"),
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => {
                return error
                    .downcast::<Closed>()
                    .unwrap_or_else(|e| panic!("expected a close frame: {e:#}"));
            }
        }
    }
}

#[tokio::test]
async fn players_see_every_change_once_in_order_and_only_their_own_view() {
    let host = TestHost::start(HOKM).await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("hokm", json!({"seed": 11})).await;
    // A spectator watching from before anyone sits sees the joins too.
    let mut spectator = client.events(&session, None, None).await.unwrap();
    assert_eq!(spectator.player, None);
    let full = next_event(&mut spectator).await;
    assert_eq!(full["seq"], 0, "a new feed starts at 0: {full}");
    assert_eq!(full["view"], spectator_view(&api, &session).await);
    let mut players = Vec::new();
    for name in ["ali", "bo", "cy", "di"] {
        players.push(api.join(&session, name).await);
        let joined = next_event(&mut spectator).await;
        assert_eq!(joined["type"], "state");
        assert_eq!(joined["view"], spectator_view(&api, &session).await);
    }
    let mut sockets = Vec::new();
    for player in &players {
        let mut events = client
            .events(&session, Some(&player.token), None)
            .await
            .unwrap();
        assert_eq!(events.player.as_deref(), Some(player.name.as_str()));
        let full = next_event(&mut events).await;
        assert_eq!(full["view"], player.view().await);
        sockets.push(events);
    }
    let mut moves = 0;
    let mut last = Value::Null;
    loop {
        let summary = api.get(&format!("/v1/sessions/{session}")).await.body;
        if summary["finished"] == true {
            break;
        }
        let turn = summary["view"]["turn"].as_u64().unwrap() as usize;
        let action = hoard_bots::hokm::choose(&players[turn].view().await).unwrap();
        let acted = players[turn].act(&action).await;
        assert_eq!(acted.status, 200, "{:?}", acted.body);
        moves += 1;
        // Every socket gets exactly this change, as its own view shows it.
        let hands: Vec<Vec<String>> = {
            let mut hands = Vec::new();
            for player in &players {
                hands.push(cards(&player.view().await));
            }
            hands
        };
        for (seat, events) in sockets.iter_mut().enumerate() {
            let event = next_event(events).await;
            assert_eq!(event["type"], "state");
            assert_eq!(event["view"], players[seat].view().await, "seat {seat}");
            assert_eq!(cards(&event["view"]), hands[seat]);
            // Besides its own hand, a view shows only cards on the table.
            let mut others = event["view"].clone();
            let table = others.as_object_mut().unwrap();
            for shown in ["you", "trick", "last_trick"] {
                table.remove(shown);
            }
            let text = others.to_string();
            for (other, hand) in hands.iter().enumerate().filter(|(o, _)| *o != seat) {
                for card in hand {
                    assert!(
                        !text.contains(&format!("\"{card}\"")),
                        "seat {seat} saw {card} of seat {other}'s hand: {text}"
                    );
                }
            }
        }
        let event = next_event(&mut spectator).await;
        assert_eq!(event["view"], spectator_view(&api, &session).await);
        assert!(event["view"]["you"].is_null(), "a spectator has no hand");
        last = event;
    }
    assert!(moves > 20, "a whole game: {moves} moves");
    for events in &mut sockets {
        assert_eq!(events.seq, spectator.seq, "the same numbering for all");
    }
    // The last event said the game was over, with its outcome.
    let after = api.get(&format!("/v1/sessions/{session}")).await.body;
    assert_eq!(
        (&last["finished"], &after["finished"]),
        (&json!(true), &json!(true))
    );
    assert!(!after["outcome"].is_null());
    assert_eq!(last["outcome"], after["outcome"]);
    host.stop().await;
}

#[tokio::test]
async fn actions_over_the_socket_answer_as_http_does_and_follow_their_events() {
    let host = TestHost::start(HOKM).await;
    let api = host.api();
    let client = client(&host);
    let (session, players) = hokm_table(&api, 5).await;
    let tokens: Vec<_> = players.iter().map(|p| Some(p.token.as_str())).collect();
    let mut sockets = watching(&client, &session, &tokens).await;
    let summary = api.get(&format!("/v1/sessions/{session}")).await.body;
    let turn = summary["view"]["turn"].as_u64().unwrap() as usize;
    let waiting = (turn + 1) % 4;

    // Refusals carry HTTP's codes, and change nothing.
    let refused = |error: anyhow::Error| error.downcast::<Refused>().unwrap().code;
    let action = hoard_bots::hokm::choose(&players[waiting].view().await).unwrap();
    let not_yours = sockets[waiting].act(&action).await.unwrap_err();
    let http = players[waiting].act(&action).await;
    assert!((400..500).contains(&http.status), "{:?}", http.body);
    assert_eq!(
        refused(not_yours),
        http.code(),
        "not the Hakem, or not the turn"
    );
    let malformed = sockets[turn]
        .act(&json!({"type": "dance"}))
        .await
        .unwrap_err();
    assert_eq!(
        refused(malformed),
        players[turn].act(&json!({"type": "dance"})).await.code()
    );
    let not_object = sockets[turn].act(&json!([1, 2])).await.unwrap_err();
    assert_eq!(refused(not_object), "bad_json");

    // An accepted action: every socket's event first, then the answer
    // naming that event.
    let action = hoard_bots::hokm::choose(&players[turn].view().await).unwrap();
    let reply = sockets[turn].act(&action).await.unwrap();
    assert_eq!(reply["replayed"], false);
    let seq = reply["seq"].as_u64().unwrap();
    for (seat, events) in sockets.iter_mut().enumerate() {
        let event = next_event(events).await;
        assert_eq!(event["seq"].as_u64(), Some(seq), "seat {seat}");
        assert_eq!(event["view"], players[seat].view().await);
    }

    // A spectator cannot act.
    let mut spectator = client.events(&session, None, None).await.unwrap();
    next_event(&mut spectator).await;
    let refused_spectator = spectator.act(&action).await.unwrap_err();
    assert_eq!(refused(refused_spectator), "missing_token");
    host.stop().await;
}

#[tokio::test]
async fn a_reconnecting_client_resumes_without_gaps_or_duplicates() {
    let host = TestHost::start_with(PROBE, |config| config.realtime.backlog_max = 8).await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("probe", json!({})).await;
    let ali = api.join(&session, "ali").await;
    // A witness that stays connected: what a resumed socket gets must be
    // exactly what it got.
    let mut witness = client
        .events(&session, Some(&ali.token), None)
        .await
        .unwrap();
    next_event(&mut witness).await;
    let mut leaving = client
        .events(&session, Some(&ali.token), None)
        .await
        .unwrap();
    next_event(&mut leaving).await;
    // Each bump changes the state (`last` is the count): one event each.
    let bump = |_n: u64| json!({"do": "bump", "key": "k"});
    ali.act(&bump(1)).await;
    assert_eq!(next_event(&mut leaving).await["seq"], 1);
    let (epoch, seen) = (leaving.epoch.clone(), leaving.seq);
    leaving.close().await;

    for n in 2..=6 {
        assert_eq!(ali.act(&bump(n)).await.status, 200);
    }
    let mut witnessed = Vec::new();
    for _ in 1..=6 {
        witnessed.push(next_event(&mut witness).await);
    }
    let mut back = client
        .events(&session, Some(&ali.token), Some((&epoch, seen)))
        .await
        .unwrap();
    assert!(back.resumed, "the backlog reaches back to {seen}");
    assert_eq!(back.seq, seen);
    for expected in &witnessed[1..] {
        assert_eq!(&next_event(&mut back).await, expected);
    }
    // And on from there together, nothing twice.
    ali.act(&bump(7)).await;
    assert_eq!(next_event(&mut back).await, next_event(&mut witness).await);
    let nothing_more = tokio::time::timeout(Duration::from_millis(200), back.frame()).await;
    assert!(nothing_more.is_err(), "no duplicate: {nothing_more:?}");

    // Too far back for a backlog of 8: the full state, numbered now.
    let (epoch, seen) = (back.epoch.clone(), back.seq);
    back.close().await;
    for n in 8..=20 {
        ali.act(&bump(n)).await;
    }
    let mut late = client
        .events(&session, Some(&ali.token), Some((&epoch, seen)))
        .await
        .unwrap();
    assert!(!late.resumed);
    let full = next_event(&mut late).await;
    assert_eq!(full["seq"].as_u64(), Some(seen + 13));
    assert_eq!(full["view"], ali.view().await);
    // Another epoch (say, from before a restart) gets the full state too.
    let mut stranger = client
        .events(&session, Some(&ali.token), Some(("0123456789abcdef", 3)))
        .await
        .unwrap();
    assert!(!stranger.resumed);
    assert_eq!(next_event(&mut stranger).await["view"], ali.view().await);
    host.stop().await;
}

#[tokio::test]
async fn plugin_messages_reach_the_sessions_sockets_in_order_with_its_changes() {
    let host = TestHost::start(PROBE).await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("probe", json!({})).await;
    let ali = api.join(&session, "ali").await;
    let bo = api.join(&session, "bo").await;
    let tokens = [Some(ali.token.as_str()), Some(bo.token.as_str()), None];
    let mut sockets = watching(&client, &session, &tokens).await;
    let channel = format!("session:{session}");
    let say = |text: &str| json!({"do": "publish", "key": channel, "value": text});
    assert_eq!(ali.act(&say(r#"{"chat":"hi"}"#)).await.status, 200);
    for events in &mut sockets {
        let message = next_event(events).await;
        assert_eq!(message["type"], "message");
        assert_eq!(message["message"], json!({"chat": "hi"}));
        // Then the state the action left (its `last` changed).
        assert_eq!(next_event(events).await["type"], "state");
    }
    // The same again leaves the state as it was: a message, no state. (The
    // channel `session` is the session being played, named or not.)
    let plain = json!({"do": "publish", "key": "session", "value": "plain words"});
    assert_eq!(bo.act(&plain).await.status, 200);
    assert_eq!(ali.act(&say(r#"{"chat":"bye"}"#)).await.status, 200);
    for events in &mut sockets {
        assert_eq!(next_event(events).await["message"], "plain words");
        assert_eq!(next_event(events).await["message"], json!({"chat": "bye"}));
    }
    // Another session's channel is a plain publish: not for these sockets
    // (and `last` stays "published": no event at all).
    let elsewhere = json!({"do": "publish", "key": "session:0123", "value": "{}"});
    assert_eq!(ali.act(&elsewhere).await.status, 200);
    // An alarm's change reaches them too.
    let alarm = json!({"do": "alarm-set", "ttl_ms": 10, "body": "{\"bump\": \"b\"}"});
    assert_eq!(ali.act(&alarm).await.status, 200);
    for events in &mut sockets {
        let changed = next_event(events).await;
        assert_eq!(
            changed["type"], "state",
            "the alarm's id as `last`: {changed}"
        );
        let fired = next_event(events).await;
        assert_eq!(fired["type"], "state");
        assert!(
            fired["view"].to_string().contains("alarm"),
            "the alarm's state: {fired}"
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_the_others_keep_up() {
    let host = TestHost::start_with(PROBE, |config| {
        config.realtime.send_queue_max = 4;
        config.sessions.document_bytes_max = 256 * 1024;
        config.server.body_bytes_max = 512 * 1024;
        config.realtime.frame_bytes_max = 512 * 1024;
        // The queue, not the write deadline, is what drops it.
        config.server.write_timeout_ms = 120_000;
    })
    .await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("probe", json!({})).await;
    let ali = api.join(&session, "ali").await;
    let mut quick = client.events(&session, None, None).await.unwrap();
    next_event(&mut quick).await;
    // The slow one says hello and then never reads.
    let url = format!("ws://{}/v1/sessions/{session}/events", host.address);
    let (mut slow, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    slow.send(Message::Text(r#"{"type":"hello"}"#.into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let big = "x".repeat(200 * 1024);
    let channel = format!("session:{session}");
    let rounds = 120;
    for n in 0..rounds {
        let message = json!({"do": "publish", "key": channel, "value": format!("{n}{big}")});
        assert_eq!(ali.act(&message).await.status, 200);
        // The quick reader gets every message and every change.
        let event = next_event(&mut quick).await;
        assert_eq!(event["type"], "message");
        assert!(
            event["message"]
                .as_str()
                .unwrap()
                .starts_with(&n.to_string())
        );
        if n == 0 {
            assert_eq!(next_event(&mut quick).await["type"], "state");
        }
    }
    // The slow one, reading at last, finds its stream cut short.
    let mut seqs = Vec::new();
    let ending = loop {
        match tokio::time::timeout(Duration::from_secs(20), slow.next()).await {
            Err(_) => panic!("the slow socket stayed open"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] != "welcome" {
                    seqs.push(frame["seq"].as_u64().unwrap());
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break None,
        }
    };
    assert!(
        (seqs.len() as u64) < rounds + 1,
        "it could not have been sent everything: {} events",
        seqs.len()
    );
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "what it got was in order, without gaps: {seqs:?}"
    );
    assert!(
        matches!(ending, None | Some(4008)),
        "closed as too slow (or cut): {ending:?}"
    );
    let text = metrics(&host).await;
    assert!(
        text.contains("hoard_ws_closes_total{reason=\"too_slow\"} 1"),
        "{text}"
    );
    host.stop().await;
}

/// The metrics text of a host.
async fn metrics(host: &TestHost) -> String {
    hoard_tests::metrics_text(host.address).await
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_or_close_code_and_the_host_serves_on() -> Result<()> {
    let host = TestHost::start_with(PROBE, |config| {
        config.realtime.hello_timeout_ms = 300;
        config.realtime.actions_per_player.per_minute = 60;
        config.realtime.actions_per_player.burst = 3;
        config.realtime.sockets_per_client.burst = 12;
        config.server.connections_per_client_max = 16;
    })
    .await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("probe", json!({})).await;
    let ali = api.join(&session, "ali").await;
    let other = api.create("probe", json!({})).await;
    let stranger = api.join(&other, "zed").await;
    let url = format!("ws://{}/v1/sessions/{session}/events", host.address);

    // Tokens: a made-up one, and another session's, say hello in vain.
    for token in ["not-a-token", stranger.token.as_str()] {
        let refused = client.events(&session, Some(token), None).await;
        let closed = refused.err().unwrap().downcast::<Closed>().unwrap();
        assert_eq!(closed.code, 4001, "{closed}");
        assert!(closed.reason.starts_with("bad_token"), "{closed}");
    }
    // In the upgrade's Authorization header, it is refused before upgrading.
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", "Bearer not-a-token".parse()?);
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let unknown = format!(
        "ws://{}/v1/sessions/{}/events",
        host.address,
        "a".repeat(32)
    );
    match tokio_tungstenite::connect_async(unknown.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected 404, got {other:?}"),
    }
    // A plain GET is told to upgrade.
    let plain = api.get(&format!("/v1/sessions/{session}/events")).await;
    assert_eq!((plain.status, plain.code()), (426, "upgrade_required"));

    // No hello in time; a first frame that is not a hello.
    let (mut silent, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let close = read_close(&mut silent).await;
    assert_eq!(close, Some((4000, true)), "hello_timeout");
    for first in [
        r#"{"type":"act","action":{}}"#,
        "not json",
        r#"{"type":"hello","extra":1}"#,
    ] {
        let (mut rude, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        rude.send(Message::Text(first.into())).await?;
        assert_eq!(
            read_close(&mut rude).await.map(|c| c.0),
            Some(4000),
            "{first}"
        );
    }

    // After the hello: non-JSON is an error and the socket stays; a binary
    // frame closes it (1003); a frame over the limit too (1009).
    let mut events = client.events(&session, Some(&ali.token), None).await?;
    next_event(&mut events).await;
    events.send_text("{not json".into()).await?;
    let error = events.frame().await?;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "bad_json");
    events.send_text(r#"{"type":"dance"}"#.into()).await?;
    assert_eq!(events.frame().await?["error"]["code"], "bad_frame");
    let fine = events.act(&json!({"do": "count"})).await?;
    assert_eq!(fine["type"], "reply");
    events.send(Message::Binary(vec![1, 2, 3].into())).await?;
    assert_eq!(closed(&mut events).await.code, 1003);
    let mut events = client.events(&session, Some(&ali.token), None).await?;
    next_event(&mut events).await;
    let huge = format!(
        r#"{{"type":"act","id":1,"action":{{"do":"{}"}}}}"#,
        "x".repeat(40_000)
    );
    events.send_text(huge).await?;
    assert_eq!(closed(&mut events).await.code, 1009);

    // A flood of actions: the burst goes through, then `rate_limited`
    // with a wait, and the socket carries on.
    let mut events = client.events(&session, Some(&ali.token), None).await?;
    next_event(&mut events).await;
    let mut limited = 0;
    for _ in 0..10 {
        match events.act(&json!({"do": "count"})).await {
            Ok(_) => {}
            Err(error) => {
                let refused = error.downcast::<Refused>().unwrap();
                assert_eq!(refused.code, "rate_limited");
                assert!(refused.message.contains("try again"));
                limited += 1;
            }
        }
    }
    assert!(limited >= 6, "{limited} of 10 refused");
    // HTTP is not this socket limit's business.
    assert_eq!(ali.act(&json!({"do": "count"})).await.status, 200);

    // Sockets opened in a loop: past the client's burst, 429 before any
    // upgrade; past its connections, the connection is closed.
    let mut open = Vec::new();
    let mut refused_429 = 0;
    for _ in 0..40 {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((socket, _)) => open.push(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429);
                refused_429 += 1;
            }
            Err(_) => {}
        }
    }
    assert!(refused_429 > 0);
    assert!(open.len() <= 16);
    drop(open);

    // Meanwhile everyone else is served: another address opens a socket.
    let from = tokio::net::TcpSocket::new_v4()?;
    from.bind("127.0.0.2:0".parse()?)?;
    let stream = from.connect(host.address).await?;
    let (mut fresh, _) = tokio_tungstenite::client_async(url.as_str(), stream).await?;
    let hello = json!({"type": "hello", "token": ali.token});
    fresh.send(Message::Text(hello.to_string().into())).await?;
    let Some(Ok(Message::Text(welcome))) = fresh.next().await else {
        panic!("a welcome");
    };
    assert!(welcome.contains("\"welcome\""), "{welcome}");
    let text = metrics(&host).await;
    for series in [
        "hoard_ws_connections ",
        "hoard_ws_feeds ",
        "hoard_ws_events_sent_total{kind=\"state\"}",
        "hoard_ws_event_delivery_seconds_count",
        "hoard_ws_closes_total{reason=\"bad_token\"}",
        "hoard_ws_closes_total{reason=\"hello_timeout\"}",
        "hoard_ws_closes_total{reason=\"binary_frame\"}",
        "hoard_ws_closes_total{reason=\"frame_too_large\"}",
        "hoard_ws_send_queue_full_total",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    host.stop().await;
    Ok(())
}

/// Reads a raw socket until it closes: the close code and whether a
/// reason came with it.
async fn read_close<S>(socket: &mut S) -> Option<(u16, bool)>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Err(_) => panic!("the socket stayed open"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return frame.map(|f| (u16::from(f.code), !f.reason.is_empty()));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

#[tokio::test]
async fn shutting_down_closes_sockets_as_going_away() {
    let host = TestHost::start(PROBE).await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let mut events = client(&host).events(&session, None, None).await.unwrap();
    next_event(&mut events).await;
    let stopping = tokio::spawn(host.stop());
    assert_eq!(closed(&mut events).await.code, 1001);
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_silent_client_is_closed_as_idle_and_one_that_answers_pings_is_not() {
    let host = TestHost::start_with(PROBE, |config| {
        config.realtime.ping_interval_ms = 100;
        config.realtime.idle_timeout_ms = 500;
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let url = format!("ws://{}/v1/sessions/{session}/events", host.address);
    // This one reads (so its library answers the host's pings) ...
    let mut alive = client(&host).events(&session, None, None).await.unwrap();
    // ... and this one says hello and then neither reads nor writes.
    let (mut silent, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    silent
        .send(Message::Text(r#"{"type":"hello"}"#.into()))
        .await
        .unwrap();
    let reading = tokio::spawn(async move {
        // Reads for two seconds: pings arrive and get their pongs.
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(frame) = tokio::time::timeout_at(until, alive.frame()).await {
            frame.expect("still open");
        }
        alive
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Closed (4009, though its library, answering the pings it reads
    // only now, may meet a reset before it reads the close frame).
    let ending = read_close(&mut silent).await.map(|c| c.0);
    assert!(matches!(ending, None | Some(4009)), "{ending:?}");
    assert!(
        metrics(&host)
            .await
            .contains("hoard_ws_closes_total{reason=\"idle\"} 1")
    );
    let mut alive = reading.await.unwrap();
    // Still served after four idle timeouts.
    api.join(&session, "ali").await;
    let event = next_event(&mut alive).await;
    assert_eq!(event["type"], "state");
    host.stop().await;
}

#[tokio::test]
async fn a_shout_reaches_the_room_and_an_echo_or_a_shout_stores_nothing() {
    let host = TestHost::start(&[("tabletop", "tabletop")]).await;
    let api = host.api();
    let client = client(&host);
    let session = api.create("tabletop", json!({})).await;
    let gm = api.join(&session, "gm").await;
    let ann = api.join(&session, "ann").await;
    let tokens = [Some(gm.token.as_str()), Some(ann.token.as_str())];
    let mut sockets = watching(&client, &session, &tokens).await;
    let actions =
        || async { api.get(&format!("/v1/sessions/{session}")).await.body["actions"].clone() };
    let before = actions().await;
    let echoed = sockets[1]
        .act(&json!({"type": "echo", "text": "ping"}))
        .await
        .unwrap();
    assert_eq!(echoed["type"], "reply");
    let shouted = sockets[1]
        .act(&json!({"type": "shout", "text": "over here"}))
        .await
        .unwrap();
    assert_eq!(shouted["seq"].as_u64(), Some(sockets[1].seq + 1));
    for events in &mut sockets {
        let heard = next_event(events).await;
        assert_eq!(heard["type"], "message", "no state event: nothing changed");
        assert_eq!(heard["message"], json!({"shout": "over here", "by": "ann"}));
    }
    assert_eq!(actions().await, before, "neither was stored or counted");
    // A bad one is refused as any action is.
    let empty = sockets[0].act(&json!({"type": "shout", "text": ""})).await;
    let refused = empty.unwrap_err().downcast::<Refused>().unwrap();
    assert_eq!(refused.code, "bad_text");
    // And a chat line still changes the room (and is counted).
    let chat = json!({"type": "chat", "text": "hello"});
    sockets[0].act(&chat).await.unwrap();
    for events in &mut sockets {
        assert_eq!(next_event(events).await["type"], "state");
    }
    assert_ne!(actions().await, before);
    host.stop().await;
}

/// A socket from 127.0.0.`host` to `host`'s session, said hello to: its
/// welcome, or why not.
async fn socket_from(
    host_byte: u8,
    test_host: &TestHost,
    session: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, anyhow::Error> {
    let from = tokio::net::TcpSocket::new_v4()?;
    from.bind(format!("127.0.0.{host_byte}:0").parse()?)?;
    let stream = from.connect(test_host.address).await?;
    let url = format!("ws://{}/v1/sessions/{session}/events", test_host.address);
    let (mut socket, _) = tokio_tungstenite::client_async(url.as_str(), stream).await?;
    socket
        .send(Message::Text(r#"{"type":"hello"}"#.into()))
        .await?;
    match socket.next().await {
        Some(Ok(Message::Text(welcome))) if welcome.contains("welcome") => Ok(socket),
        other => anyhow::bail!("no welcome: {other:?}"),
    }
}

#[tokio::test]
async fn sockets_hold_their_clients_connection_share() {
    let host = TestHost::start_with(PROBE, |config| {
        config.server.connections_per_client_max = 3;
    })
    .await;
    let session = host.api().create("probe", json!({})).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(socket_from(3, &host, &session).await.unwrap());
    }
    assert!(
        socket_from(3, &host, &session).await.is_err(),
        "a fourth connection from the same client is closed"
    );
    assert!(
        socket_from(4, &host, &session).await.is_ok(),
        "another client is not"
    );
    // A socket that closes gives its place back.
    let mut first = held.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(socket) = socket_from(3, &host, &session).await {
            again = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the closed socket's place came back");
    host.stop().await;
}

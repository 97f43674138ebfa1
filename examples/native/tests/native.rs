//! The benchmark's native baseline is an honest one: it plays correct Hokm
//! (hoard's own Hokm tests, refereed independently of the rules crate, pass
//! against it) and an answered action survives `kill -9`.

use hoard_tests::{Api, HostProcess, Player, hokm as referee};
use hokm::game::{Game, Phase};
use hokm_native::Native;
use serde_json::{Value, json};
use std::time::Duration;

/// The server in this process on a free port, with its data in `dir`,
/// serving until the test ends; and a client of it.
async fn start(dir: &std::path::Path) -> (std::sync::Arc<Native>, Api) {
    let native = Native::open(&dir.join("native.sled")).expect("the store opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let api = Api::new(listener.local_addr().expect("an address"));
    tokio::spawn(native.clone().serve(listener, std::future::pending()));
    (native, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_games_follow_the_rules_as_the_referee_sees_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (native, api) = start(dir.path()).await;

    let seeds = [1u64, 2, 3, 13, 17, 0xdead_beef];
    let games = seeds.map(|seed| {
        let api = api.clone();
        tokio::spawn(async move { referee::play_game(&api, seed).await })
    });
    let mut winners = std::collections::HashMap::<String, u64>::new();
    for game in games {
        let game = game.await.expect("the game completes");
        assert!(game.points[game.winner_team as usize] >= 7);
        assert!(game.views_checked > 100 && game.illegal_checked > 3);
        for (seat, player) in game.players.iter().enumerate() {
            if seat % 2 == game.winner_team as usize {
                *winners.entry(player.name.clone()).or_default() += 1;
            }
        }
    }
    referee::a_led_two_takes_the_trick(&api).await;

    // What a finished game leaves, as the plugin keeps it.
    let matches = native.matches();
    assert_eq!(matches.len(), seeds.len());
    let mut wins = native.wins();
    wins.sort();
    let mut expected: Vec<(String, u64)> = winners.into_iter().collect();
    expected.sort();
    assert_eq!(wins, expected);
}

/// Bad requests get hoard's codes.
#[tokio::test]
async fn bad_requests_get_hoards_codes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (_, api) = start(dir.path()).await;
    let session = api.create("hokm", json!({"seed": 5})).await;
    let player = api.join(&session, "ali").await;
    let cases = [
        (
            api.post("/v1/games/hokm/sessions", &json!({"seed": "x"}))
                .await,
            400,
            "bad_json",
        ),
        (
            api.post(
                "/v1/games/hokm/sessions",
                &json!({"config": {"target_points": 99}}),
            )
            .await,
            400,
            "bad_config",
        ),
        (
            api.post("/v1/sessions/nope/join", &json!({"name": "b"}))
                .await,
            404,
            "unknown_session",
        ),
        (
            api.post(
                &format!("/v1/sessions/{session}/join"),
                &json!({"name": "ali"}),
            )
            .await,
            409,
            "name_taken",
        ),
        (
            api.post(
                &format!("/v1/sessions/{session}/join"),
                &json!({"name": "a b"}),
            )
            .await,
            400,
            "invalid_name",
        ),
        (
            api.send("GET", &format!("/v1/sessions/{session}/view"), None, None)
                .await,
            401,
            "missing_token",
        ),
        (
            api.send(
                "POST",
                &format!("/v1/sessions/{session}/actions"),
                Some("{not json"),
                Some(&player.token),
            )
            .await,
            400,
            "bad_json",
        ),
        (
            api.send(
                "GET",
                &format!("/v1/sessions/{session}/view"),
                None,
                Some("not-a-token"),
            )
            .await,
            401,
            "bad_token",
        ),
        (
            player.act(&json!({"type": "dance"})).await,
            400,
            "bad_action",
        ),
        (
            player.act(&json!({"type": "trump", "suit": "S"})).await,
            422,
            "waiting_for_players",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{:?}",
            reply.body
        );
    }
}

/// One session played by the rules computed here: the local game follows
/// every answered action.
struct Table {
    seed: u64,
    players: Vec<Player>,
    answered: Game,
    /// The action sent when the server went away, unanswered.
    in_flight: Option<(String, String)>,
}

const NAMES: [&str; 4] = ["n", "e", "s", "w"];

impl Table {
    async fn seat(api: &Api, seed: u64) -> Table {
        // Long games: none ends before the kill.
        let config = json!({"target_points": 50});
        let session = api
            .create("hokm", json!({"seed": seed, "config": config}))
            .await;
        let mut players = Vec::new();
        let mut answered = Game::new(seed, &config.to_string()).expect("a game");
        for name in NAMES {
            players.push(api.join(&session, name).await);
            answered.join(name).expect("a seat");
        }
        Table {
            seed,
            players,
            answered,
            in_flight: None,
        }
    }

    /// Plays until the server stops answering (or the game ends).
    async fn play(mut self) -> Table {
        while let Some((player, action)) = self.answered.timeout_move() {
            let seat = self.answered.seat_of(&player).expect("seated") as usize;
            let sent: Value = serde_json::from_str(&action).expect("json");
            match self.players[seat].try_act(&sent).await {
                Some(reply) => {
                    assert_eq!(reply.status, 200, "{:?}", reply.body);
                    self.answered.act(&player, &action).expect("legal");
                    assert_eq!(reply.body["view"], view_of(&self.answered, &player));
                }
                None => {
                    self.in_flight = Some((player, action));
                    break;
                }
            }
        }
        self
    }
}

/// Sessions played concurrently; the server killed with SIGKILL while
/// actions are in flight, then started again on the same data: every
/// answered action is there, and at most the one in flight besides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_action_survives_kill_9() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let start = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hokm-native"));
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.path().join("native.sled"));
        HostProcess::start_command(command, port)
    };
    let mut server = start().await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let mut tables = Vec::new();
    for seed in 0..8u64 {
        tables.push(Table::seat(&api, 100 + seed).await);
    }
    let playing: Vec<_> = tables
        .into_iter()
        .map(|table| tokio::spawn(table.play()))
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill();
    let mut tables = Vec::new();
    for table in playing {
        tables.push(table.await.expect("a table"));
    }
    let _server = start().await;
    let mut in_flight_landed = 0;
    let mut games = Vec::new();
    for table in &tables {
        // Trump named and some cards played: the kill came mid-play.
        assert!(
            table.answered.hand_number > 1 || table.answered.phase == Phase::Playing,
            "seed {}: killed before any play",
            table.seed
        );
        assert!(
            !matches!(table.answered.phase, Phase::Finished { .. }),
            "seed {}: the game ended before the kill",
            table.seed
        );
        let served = table.players[0].view().await;
        let mut game = table.answered.clone();
        if served != view_of(&game, NAMES[0]) {
            // Then the action in flight landed, and nothing else.
            let (player, action) = table.in_flight.clone().expect("an action in flight");
            game.act(&player, &action).expect("legal");
            assert_eq!(served, view_of(&game, NAMES[0]), "seed {}", table.seed);
            in_flight_landed += 1;
        }
        games.push(game);
    }
    eprintln!(
        "{} tables; {in_flight_landed} actions in flight landed before the kill",
        tables.len()
    );
    // And play goes on.
    let (player, action) = games[0].timeout_move().expect("a move");
    let seat = games[0].seat_of(&player).expect("seated") as usize;
    let reply = tables[0].players[seat]
        .act(&serde_json::from_str(&action).expect("json"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

/// What `player` sees of `game`, as JSON.
fn view_of(game: &Game, player: &str) -> Value {
    serde_json::to_value(game.view(Some(player))).expect("a view serializes")
}

//! An independent Hokm referee for the tests: its own card parsing, trick
//! and scoring rules, written without the plugin's code, and a driver that
//! plays whole games through the HTTP API with four random but legal
//! players, checking every trick, hand and view against the referee.

use crate::{Api, Player};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::HashSet;

const RANKS: &str = "23456789TJQKA";

fn suit(card: &str) -> char {
    card.chars().last().expect("card")
}

fn rank(card: &str) -> usize {
    RANKS
        .find(card.chars().next().expect("card"))
        .expect("rank")
}

/// The seat that wins a trick of (seat, card) plays.
pub fn trick_winner(plays: &[(u64, String)], trump: char) -> u64 {
    let led = suit(&plays[0].1);
    let mut best = &plays[0];
    for play in &plays[1..] {
        let (c, b) = (&play.1, &best.1);
        let beats = match (suit(c) == trump, suit(b) == trump) {
            (true, false) => true,
            (true, true) => rank(c) > rank(b),
            (false, true) => false,
            (false, false) => suit(c) == led && rank(c) > rank(b),
        };
        if beats {
            best = play;
        }
    }
    best.0
}

/// Points for the team that took 7 tricks: (points, kot).
pub fn hand_points(winner_team: u64, loser_tricks: u64, hakem_team: u64) -> (u64, bool) {
    match (loser_tricks == 0, winner_team == hakem_team) {
        (false, _) => (1, false),
        (true, true) => (2, true),
        (true, false) => (3, true),
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn hand_of(view: &Value) -> Vec<String> {
    view["you"]["hand"]
        .as_array()
        .expect("own hand")
        .iter()
        .map(|c| c.as_str().expect("card").to_owned())
        .collect()
}

/// Checks one served view: it shows its player's own hand, and no card that
/// another player holds appears anywhere in it. Cards of other deals are
/// public: the face-up draw for the first Hakem, and the last trick of the
/// previous hand.
pub fn assert_hides_others(view: &Value, seat: usize, hands: &[Vec<String>; 4]) {
    assert_eq!(
        view["you"]["seat"],
        json!(seat),
        "a view is for its own player"
    );
    let mut visible = Vec::new();
    let mut without_own = view.clone();
    without_own["you"]["hand"] = Value::Null;
    without_own["hakem_draw"] = Value::Null;
    if view["last_trick"]["hand_number"] != view["hand_number"] {
        // Played in an earlier deal, before this hand's shuffle.
        without_own["last_trick"] = Value::Null;
    }
    strings(&without_own, &mut visible);
    for (other, hand) in hands.iter().enumerate() {
        if other == seat {
            continue;
        }
        for card in hand {
            assert!(
                !visible.contains(card),
                "seat {seat}'s view reveals {card}, held by seat {other}: {view}"
            );
        }
    }
}

/// What a finished game came to, as the referee saw it.
pub struct Played {
    pub session: String,
    pub points: [u64; 2],
    pub winner_team: u64,
    pub hands: u64,
    pub tricks_checked: u64,
    pub views_checked: u64,
    pub illegal_checked: u64,
    pub players: Vec<Player>,
}

/// Fetches all four views, checks each hides the others' hands, and returns
/// them with the hands they show.
async fn all_views(players: &[Player], views_checked: &mut u64) -> (Vec<Value>, [Vec<String>; 4]) {
    let mut views = Vec::with_capacity(4);
    for player in players {
        views.push(player.view().await);
    }
    let hands: [Vec<String>; 4] = std::array::from_fn(|s| hand_of(&views[s]));
    for (seat, view) in views.iter().enumerate() {
        assert_hides_others(view, seat, &hands);
        *views_checked += 1;
    }
    (views, hands)
}

/// An illegal action must get a 4xx JSON error with `code` and change
/// nothing: the actor's view is the same before and after.
async fn assert_refused(player: &Player, action: Value, status: u16, code: &str) {
    let before = player.view().await;
    let reply = player.act(&action).await;
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "{action} by {}: {:?}",
        player.name,
        reply.body
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(
        player.view().await,
        before,
        "a refused action changed the game"
    );
}

/// Plays one whole game with seed `seed` through `api`: four players, random
/// legal moves chosen from `seed` too, illegal moves tried along the way.
pub async fn play_game(api: &Api, seed: u64) -> Played {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfeed);
    let session = api.create("hokm", json!({"seed": seed})).await;
    let mut players = Vec::new();
    for name in ["north", "west", "south", "east"] {
        players.push(api.join(&session, name).await);
    }
    let fifth = api
        .post(
            &format!("/v1/sessions/{session}/join"),
            &json!({"name": "extra"}),
        )
        .await;
    assert_eq!((fifth.status, fifth.code()), (409, "session_full"));

    let (mut points, mut hands_played, mut tricks_checked, mut views_checked, mut illegal_checked) =
        ([0u64; 2], 0, 0, 0, 0);
    // The first Hakem: the face-up draw goes round the seats to the first ace.
    let (views, _) = all_views(&players, &mut views_checked).await;
    let draw = views[0]["hakem_draw"]
        .as_array()
        .expect("the first hand shows the draw");
    for (i, play) in draw.iter().enumerate() {
        assert_eq!(
            play["seat"],
            json!(i % 4),
            "the draw goes round the table in seat order"
        );
        let card = play["card"].as_str().expect("card");
        assert_eq!(
            card.starts_with('A'),
            i == draw.len() - 1,
            "the draw stops at the first ace"
        );
    }
    let mut hakem = draw.last().expect("a draw")["seat"].as_u64().expect("seat");

    loop {
        // A new hand: the Hakem sees five cards and names trump.
        hands_played += 1;
        let (views, hands) = all_views(&players, &mut views_checked).await;
        assert_eq!(views[0]["phase"], "choosing_trump");
        assert_eq!(
            views[0]["hakem"],
            json!(hakem),
            "hand {hands_played}: the referee expected Hakem {hakem}"
        );
        assert!(
            hands.iter().all(|h| h.len() == 5),
            "five cards each before trump"
        );
        let hakem_player = &players[hakem as usize];
        let other = &players[(hakem as usize + 1) % 4];
        assert_refused(
            other,
            json!({"type": "trump", "suit": "S"}),
            422,
            "not_hakem",
        )
        .await;
        assert_refused(
            other,
            json!({"type": "play", "card": hands[(hakem as usize + 1) % 4][0]}),
            422,
            "waiting_for_trump",
        )
        .await;
        illegal_checked += 2;
        let trump_card = hands[hakem as usize]
            .choose(&mut rng)
            .expect("five cards")
            .clone();
        let trump = suit(&trump_card);
        let named = hakem_player
            .act(&json!({"type": "trump", "suit": trump.to_string()}))
            .await;
        assert_eq!(named.status, 200, "{:?}", named.body);
        assert_refused(
            hakem_player,
            json!({"type": "trump", "suit": "H"}),
            422,
            "trump_already_named",
        )
        .await;
        illegal_checked += 1;

        let (views, mut hands) = all_views(&players, &mut views_checked).await;
        assert_eq!(views[0]["trump"], json!(trump.to_string()));
        assert!(
            hands.iter().all(|h| h.len() == 13),
            "thirteen cards each after trump"
        );
        let all: HashSet<&String> = hands.iter().flatten().collect();
        assert_eq!(all.len(), 52, "the four hands are one deck");

        let mut tricks = [0u64; 2];
        let mut leader = hakem;
        while tricks[0] < 7 && tricks[1] < 7 {
            let mut plays: Vec<(u64, String)> = Vec::new();
            for offset in 0..4 {
                let seat = (leader + offset) % 4;
                let player = &players[seat as usize];
                let hand = &hands[seat as usize];
                let led = plays.first().map(|(_, c)| suit(c));
                let legal: Vec<&String> = match led {
                    Some(led) if hand.iter().any(|c| suit(c) == led) => {
                        hand.iter().filter(|c| suit(c) == led).collect()
                    }
                    _ => hand.iter().collect(),
                };
                if rng.random_bool(0.08) && !hands[((seat + 1) % 4) as usize].is_empty() {
                    // Not your turn: the next seat tries to play.
                    let next = ((seat + 1) % 4) as usize;
                    assert_refused(
                        &players[next],
                        json!({"type": "play", "card": hands[next][0]}),
                        409,
                        "not_your_turn",
                    )
                    .await;
                    // A card another player holds.
                    assert_refused(
                        player,
                        json!({"type": "play", "card": hands[next][0]}),
                        422,
                        "card_not_in_hand",
                    )
                    .await;
                    illegal_checked += 2;
                    if let Some(off_suit) = hand
                        .iter()
                        .find(|c| led.is_some_and(|l| suit(c) != l && legal.len() < hand.len()))
                    {
                        assert_refused(
                            player,
                            json!({"type": "play", "card": off_suit}),
                            422,
                            "must_follow_suit",
                        )
                        .await;
                        illegal_checked += 1;
                    }
                }
                let card = (*legal.choose(&mut rng).expect("a legal card")).clone();
                let reply = player.act(&json!({"type": "play", "card": card})).await;
                assert_eq!(reply.status, 200, "{card} by seat {seat}: {:?}", reply.body);
                let view = &reply.body["view"];
                hands[seat as usize].retain(|c| *c != card);
                // The play that ends a hand answers with the next hand dealt
                // (or the game over); the next round of views checks that.
                if view["phase"] == "playing" && view["hand_number"] == json!(hands_played) {
                    assert_eq!(
                        hand_of(view),
                        hands[seat as usize],
                        "the played card left the hand"
                    );
                    assert_hides_others(view, seat as usize, &hands);
                    views_checked += 1;
                }
                plays.push((seat, card));
                if plays.len() == 4 {
                    let winner = trick_winner(&plays, trump);
                    let last = &view["last_trick"];
                    let served: Vec<(u64, String)> = last["plays"]
                        .as_array()
                        .expect("plays")
                        .iter()
                        .map(|p| {
                            (
                                p["seat"].as_u64().expect("seat"),
                                p["card"].as_str().expect("card").to_owned(),
                            )
                        })
                        .collect();
                    assert_eq!(served, plays, "the host recorded the trick as played");
                    assert_eq!(
                        last["winner"],
                        json!(winner),
                        "trick {plays:?} with trump {trump}"
                    );
                    tricks[(winner % 2) as usize] += 1;
                    tricks_checked += 1;
                    leader = winner;
                    if tricks[0] == 7 || tricks[1] == 7 {
                        let team = if tricks[0] == 7 { 0 } else { 1 };
                        let (won, kot) = hand_points(team, tricks[1 - team as usize], hakem % 2);
                        points[team as usize] += won;
                        let result = &view["last_hand"];
                        assert_eq!(result["tricks"], json!(tricks));
                        assert_eq!(result["kot"], json!(kot));
                        assert_eq!(result["hakem"], json!(hakem));
                        assert_eq!(view["points"], json!(points), "hand {hands_played} score");
                        if team != hakem % 2 {
                            hakem = (hakem + 1) % 4;
                        }
                        if points[team as usize] >= 7 {
                            let outcome = &reply.body["outcome"];
                            assert_eq!(outcome["winner_team"], json!(team));
                            assert_eq!(outcome["points"], json!(points));
                            let names: Vec<&str> = [team, team + 2]
                                .iter()
                                .map(|s| players[*s as usize].name.as_str())
                                .collect();
                            assert_eq!(outcome["winners"], json!(names));
                            assert_eq!(view["phase"], "finished");
                            let after = player.act(&json!({"type": "play", "card": "AS"})).await;
                            assert_eq!((after.status, after.code()), (409, "game_finished"));
                            return Played {
                                session,
                                points,
                                winner_team: team,
                                hands: hands_played,
                                tricks_checked,
                                views_checked,
                                illegal_checked,
                                players,
                            };
                        }
                    }
                    break;
                } else {
                    assert!(reply.body["outcome"].is_null());
                }
            }
        }
    }
}

/// Issue 12's reproduction: with seed 13 and spades trump, the last trick
/// of these actions is 2H led by seat 0, then AD, KD, 8D. Nobody followed
/// hearts and nobody trumped, so the led two takes it: seat 0.
pub async fn a_led_two_takes_the_trick(api: &Api) {
    let session = api.create("hokm", json!({"seed": 13})).await;
    let mut players = Vec::new();
    for name in ["north", "west", "south", "east"] {
        players.push(api.join(&session, name).await);
    }
    let script = "1:S 1:QD 2:2D 3:TD 0:5D 1:7H 2:QH 3:4H 0:8H 2:3H 3:9H 0:6H 1:JH \
                  1:5H 2:5S 3:9S 0:KH 3:8S 0:AS 1:QS 2:JS 0:2H 1:AD 2:KD 3:8D";
    let mut last = Value::Null;
    for step in script.split_whitespace() {
        let (seat, action) = step.split_once(':').expect("seat:action");
        let action = if action.len() == 1 {
            json!({"type": "trump", "suit": action})
        } else {
            json!({"type": "play", "card": action})
        };
        let reply = players[seat.parse::<usize>().expect("a seat")]
            .act(&action)
            .await;
        assert_eq!(reply.status, 200, "{step}: {:?}", reply.body);
        last = reply.body["view"]["last_trick"].clone();
    }
    let plays: Vec<_> = last["plays"]
        .as_array()
        .expect("the last trick's plays")
        .iter()
        .map(|p| format!("{}:{}", p["seat"], p["card"].as_str().expect("a card")))
        .collect();
    assert_eq!(plays, ["0:2H", "1:AD", "2:KD", "3:8D"]);
    assert_eq!(last["winner"], 0, "the led two takes the trick");
}

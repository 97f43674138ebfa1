//! Property tests of the tabletop rules, natively: thousands of random
//! sessions of legal and illegal actions, checked after every action
//! against invariants and against models written apart from the code: a
//! dice grammar of its own, and SplitMix64 again, so that every logged roll
//! is replayed from the seed die by die.

use proptest::prelude::*;
use serde_json::Value;
use tabletop::dice::{self, Keep, Term};
use tabletop::room::{
    Action, Attack, CHAT_KEPT, CHAT_MAX_CHARS, Config, ROLLS_KEPT, Refusal, Roll, Room, StatBlock,
    TOKENS_MAX,
};

/// The dice grammar, from `dice.rs`'s documentation alone: `None` if the
/// text is refused, else the terms as (negative, count, faces, keep) or a
/// flat number.
fn model_parse(text: &str) -> Option<Vec<Term>> {
    if text.len() > 64 {
        return None;
    }
    // Spaces may separate parts but never split a number.
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            let spaced = bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace);
            if spaced && next.is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
    }
    let text: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    // Chunks, each starting at a sign (the first may have none).
    let mut chunks: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        match c {
            '+' | '-' => chunks.push((c == '-', String::new())),
            _ => match chunks.last_mut() {
                Some((_, body)) => body.push(c),
                None => chunks.push((false, c.to_string())),
            },
        }
    }
    if chunks.is_empty() || chunks.len() > 10 {
        return None;
    }
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().unwrap())
    };
    let mut terms = Vec::new();
    let mut dice = 0;
    for (negative, body) in chunks {
        let Some((count, rest)) = body.split_once('d') else {
            let n = number(&body)?;
            if n > 10_000 {
                return None;
            }
            terms.push(Term::Flat(if negative { -(n as i64) } else { n as i64 }));
            continue;
        };
        let count = if count.is_empty() { 1 } else { number(count)? };
        let (faces, keep) = match rest.split_once('k') {
            None => (number(rest)?, None),
            Some((faces, keep)) => {
                let (highest, n) = match keep.split_at_checked(1)? {
                    ("h", n) => (true, n),
                    ("l", n) => (false, n),
                    _ => return None,
                };
                let n = if n.is_empty() { 1 } else { number(n)? };
                if n == 0 || n > count {
                    return None;
                }
                (
                    number(faces)?,
                    Some(if highest {
                        Keep::Highest(n)
                    } else {
                        Keep::Lowest(n)
                    }),
                )
            }
        };
        if count == 0 || !(2..=1000).contains(&faces) {
            return None;
        }
        dice += count;
        if dice > 100 {
            return None;
        }
        terms.push(Term::Dice {
            negative,
            count,
            faces,
            keep,
        });
    }
    Some(terms)
}

/// SplitMix64 as `plugins/sdk/README.md` states it: stream `n` of `seed`
/// starts at `seed ^ n * 0xD1B54A32D192ED03`, skips one number; a die of
/// `k` faces is the first number under the largest multiple of `k`,
/// modulo `k`, plus one.
struct Model(u64);

impl Model {
    fn new(seed: u64, n: u64) -> Model {
        let mut model = Model(seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        model.next();
        model
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn die(&mut self, faces: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % faces;
        loop {
            let x = self.next();
            if x < zone {
                return x % faces + 1;
            }
        }
    }
}

/// Replays `roll` from `seed`: the expression read by the model, each die
/// drawn again, each term's value and the total recomputed.
fn replay(seed: u64, roll: &Roll) {
    let terms = model_parse(&roll.expr).expect("a logged roll's expression reads");
    assert_eq!(terms.len(), roll.terms.len());
    let mut rng = Model::new(seed, roll.n);
    let mut total = 0;
    for (term, rolled) in terms.iter().zip(&roll.terms) {
        let value = match *term {
            Term::Flat(n) => {
                assert!(rolled.dice.is_empty());
                n
            }
            Term::Dice {
                negative,
                count,
                faces,
                keep,
            } => {
                let drawn: Vec<u32> = (0..count).map(|_| rng.die(faces as u64) as u32).collect();
                assert_eq!(rolled.dice, drawn, "roll {} replays from the seed", roll.n);
                assert!(drawn.iter().all(|d| (1..=faces).contains(d)));
                let mut sorted = drawn.clone();
                sorted.sort();
                let kept: u32 = match keep {
                    None => sorted.iter().sum(),
                    Some(Keep::Highest(k)) => sorted[sorted.len() - k as usize..].iter().sum(),
                    Some(Keep::Lowest(k)) => sorted[..k as usize].iter().sum(),
                };
                if negative {
                    -(kept as i64)
                } else {
                    kept as i64
                }
            }
        };
        assert_eq!(rolled.value, value);
        total += value;
    }
    assert_eq!(roll.total, total);
}

fn goblin() -> StatBlock {
    StatBlock {
        name: "Goblin".into(),
        hp: 7,
        ac: 13,
        speed: 6,
        attacks: vec![Attack {
            name: "Scimitar".into(),
            hit: "1d20+4".into(),
            damage: "1d6+2".into(),
        }],
    }
}

const EXPRESSIONS: &[&str] = &[
    "3d6+2",
    "d20",
    "2d20kh1",
    "2d20kl1+5",
    "4d6kh3",
    "1d8-1+1d4",
    "-2d4+10",
    "100d2",
    "101d6",
    "100000d100000",
    "3d",
    "d1",
    "2d6k",
    "1 0d6",
    "",
    "  d 6 ",
    "60d6+50d6",
];

fn action() -> impl Strategy<Value = (usize, Action)> {
    let who = 0usize..4;
    let xy = (0u16..24, 0u16..24);
    let token = (1u64..12).prop_map(|n| format!("t{n}"));
    let text = prop_oneof![
        Just("hello".to_string()),
        Just(String::new()),
        Just("x".repeat(CHAT_MAX_CHARS)),
        Just("x".repeat(CHAT_MAX_CHARS + 1)),
        Just("bell\u{7}".to_string()),
    ];
    let action = prop_oneof![
        4 => (xy.clone(), any::<bool>(), any::<bool>()).prop_map(|((x, y), templated, hidden)| Action::AddToken {
            name: "piece".into(), x, y, template: templated.then(|| "goblin".into()), hidden,
        }),
        6 => (token.clone(), xy).prop_map(|(token, (x, y))| Action::MoveToken { token, x, y }),
        1 => token.clone().prop_map(|token| Action::RemoveToken { token }),
        1 => token.clone().prop_map(|token| Action::Reveal { token }),
        4 => prop::sample::select(EXPRESSIONS).prop_map(|d| Action::Roll { dice: d.into(), label: None }),
        2 => (token.clone(), token).prop_map(|(token, target)| Action::Attack { token, target, attack: "Scimitar".into() }),
        2 => text.prop_map(|text| Action::Chat { text }),
        1 => any::<bool>().prop_map(|allowed| Action::FreeMovement { allowed }),
        1 => Just(Action::Close),
    ];
    (who, action)
}

/// What must hold of a room after any action.
fn check(room: &Room, seed: u64, hp_max: i64) {
    assert!(room.tokens.len() <= TOKENS_MAX);
    let mut ids: Vec<&str> = room.tokens.iter().map(|t| t.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), room.tokens.len(), "token ids are unique");
    for token in &room.tokens {
        assert!(
            token.x < room.width && token.y < room.height,
            "{token:?} on the board"
        );
        assert!(room.players.contains(&token.owner));
        if let Some(hp) = token.hp {
            assert!(
                (0..=hp_max).contains(&hp),
                "hit points within 0 and the stat block's"
            );
        }
    }
    assert!(room.chat.len() <= CHAT_KEPT && room.roll_log.len() <= ROLLS_KEPT);
    assert!(
        room.chat
            .iter()
            .all(|m| m.text.chars().count() <= CHAT_MAX_CHARS)
    );
    for roll in &room.roll_log {
        replay(seed, roll);
    }
    // Hidden tokens reach only the GM's view.
    for player in room
        .players
        .iter()
        .skip(1)
        .map(|p| Some(p.as_str()))
        .chain([None])
    {
        let view = room.view(player);
        let hidden: Vec<&Value> = view["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["hidden"] == true)
            .collect();
        assert!(hidden.is_empty(), "{player:?} sees a hidden token");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dice_read_as_the_model_reads_them(text in "[0-9dDkhl+ -]{0,14}") {
        let parsed = dice::parse(&text).ok().map(|e| e.terms);
        prop_assert_eq!(parsed, model_parse(&text), "{:?}", text);
    }

    #[test]
    fn random_sessions_keep_every_invariant(
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 1..80),
    ) {
        let config = Config { width: 20, height: 20, system: "basic".into() };
        let mut room = Room::new("r", seed, config).unwrap();
        let players = ["gm", "ann", "bob", "cy"];
        for player in players {
            room.join(player).unwrap();
        }
        for (who, action) in actions {
            let player = players[who];
            let before = room.clone();
            let stats = room.template_key(&action).map(|_| goblin());
            let rolls_before = room.rolls;
            match room.act(player, action.clone(), stats) {
                Ok(rolls) => {
                    prop_assert_eq!(room.rolls, rolls_before + rolls.len() as u64);
                    if let Action::MoveToken { token, .. } = &action {
                        let owner = &before.tokens.iter().find(|t| &t.id == token).unwrap().owner;
                        prop_assert!(owner == player || player == "gm" || before.free_movement,
                            "{} moved {}'s token", player, owner);
                    }
                }
                Err(refusal) => {
                    prop_assert_eq!(&room, &before, "a refusal changes nothing");
                    // Everyone is seated: a roll is refused only for its
                    // expression, or once the room is closed.
                    if let (Action::Roll { dice, .. }, false) = (&action, room.closed) {
                        prop_assert!(model_parse(dice).is_none(), "{} refused: {:?}", dice, refusal);
                        prop_assert!(matches!(refusal, Refusal::Malformed(..)));
                    }
                }
            }
            check(&room, seed, goblin().hp);
        }
    }
}

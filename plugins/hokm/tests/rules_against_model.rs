//! Property test: thousands of whole games of Hokm, played by generated
//! players through the plugin's rules (`Game::act`, the code the plugin
//! runs), checked move by move against the independent model in
//! `model/`: the first Hakem, every deal, every trick's winner, every hand's
//! points and Kot, the Hakem's rotation and the final result. Illegal moves
//! are tried along the way and must be refused without changing anything.
//!
//! The generated players are not only random: some play lopsided (one team
//! always plays high, the other low, which produces Kots) and some lead
//! their lowest card (which leads twos nobody follows, the case a handful
//! of fixed seeds once missed).

mod model;

use hokm::cards::Suit;
use hokm::game::{Game, Phase, Refusal};
use model::{Card, Played, Table};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const NAMES: [&str; 4] = ["north", "west", "south", "east"];

/// How the generated players choose.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// Any legal card, any suit for trump.
    Random,
    /// `strong` team plays its highest card (trumping when it can), the
    /// other its lowest; a Hakem names their longest suit.
    Lopsided { strong: usize },
    /// A leader leads their lowest card; everyone else plays at random.
    LowLeads,
    /// A new style, chosen at random, for every hand.
    Mixed,
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Random),
        (0..2usize).prop_map(|strong| Style::Lopsided { strong }),
        Just(Style::LowLeads),
        Just(Style::Mixed),
    ]
}

/// A small generator for the players' choices, seeded by the case.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// What the whole run covered, so the test can show it was not vacuous.
#[derive(Default)]
struct Coverage {
    games: AtomicU64,
    hands: AtomicU64,
    tricks: AtomicU64,
    kots: AtomicU64,
    kots_against_hakem: AtomicU64,
    hakem_changes: AtomicU64,
    unfollowed_twos: AtomicU64,
    refusals: AtomicU64,
}

/// Spells a JSON string value, sometimes with every letter escaped: any
/// valid spelling of an action must be accepted.
fn spell(text: &str, escaped: bool) -> String {
    if escaped {
        text.chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect()
    } else {
        text.to_owned()
    }
}

fn trump_action(suit: char, escaped: bool) -> String {
    format!(
        r#"{{"type": "trump", "suit": "{}"}}"#,
        spell(&suit.to_string(), escaped)
    )
}

fn play_action(card: Card, escaped: bool) -> String {
    let mut name = card.name();
    if card.rank == 10 && escaped {
        name = format!("10{}", card.suit);
    }
    format!(
        r#"{{"type": "{}", "card": "{}"}}"#,
        spell("play", escaped),
        spell(&name, escaped)
    )
}

fn model_card(card: hokm::cards::Card) -> Card {
    Card::parse(&card.to_string())
}

fn suit_letter(suit: Suit) -> char {
    suit.letter()
}

/// Asserts the plugin refuses `action` by `player` and changes nothing.
fn refused(
    game: &mut Game,
    player: &str,
    action: &str,
    expected: fn(&Refusal) -> bool,
    coverage: &Coverage,
) -> Result<(), TestCaseError> {
    let before = game.clone();
    let result = game.act(player, action);
    prop_assert!(
        matches!(&result, Err(refusal) if expected(refusal)),
        "{player} {action}: {result:?}"
    );
    prop_assert_eq!(&*game, &before, "a refused action changed the game");
    coverage.refusals.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The plugin's hands and table match the model's.
fn same_table(game: &Game, table: &Table) -> Result<(), TestCaseError> {
    for seat in 0..4 {
        let mut theirs: Vec<Card> = game.hands[seat].iter().map(model_card).collect();
        let mut ours = table.hands[seat].clone();
        theirs.sort();
        ours.sort();
        prop_assert_eq!(theirs, ours, "seat {}'s hand", seat);
    }
    prop_assert_eq!(game.hand_number, table.hand_number);
    prop_assert_eq!(usize::from(game.hakem), table.hakem, "the Hakem");
    prop_assert_eq!(game.trump.map(suit_letter), table.trump, "trump");
    prop_assert_eq!(game.points.map(u32::from), table.points, "points");
    prop_assert_eq!(game.tricks.map(u32::from), table.tricks, "tricks this hand");
    if table.winner.is_none() {
        prop_assert_eq!(usize::from(game.turn), table.turn, "whose turn");
    }
    // One audience each time, in turn: each seat and a spectator.
    let viewer = (usize::from(game.tricks[0] + game.tricks[1]) + game.trick.len()) % 5;
    same_view(game, table, viewer, NAMES.get(viewer).copied())
}

/// What `player` (at `seat`) sees, as JSON, shows the model's table: their
/// own hand and nobody else's, every seat's count of cards, the trick.
fn same_view(
    game: &Game,
    table: &Table,
    seat: usize,
    player: Option<&str>,
) -> Result<(), TestCaseError> {
    let view = serde_json::to_value(game.view(player)).expect("a view serializes");
    let names = |cards: &[Card]| -> Vec<String> {
        let mut names: Vec<String> = cards.iter().map(|c| c.name()).collect();
        names.sort();
        names
    };
    match player {
        Some(_) => {
            prop_assert_eq!(&view["you"]["seat"], &json!(seat));
            prop_assert_eq!(&view["you"]["team"], &json!(seat % 2));
            let mut hand: Vec<String> = serde_json::from_value(view["you"]["hand"].clone())
                .expect("a hand is a list of card names");
            hand.sort();
            prop_assert_eq!(hand, names(&table.hands[seat]), "seat {}'s hand", seat);
        }
        None => prop_assert_eq!(&view["you"], &Value::Null, "a spectator has no hand"),
    }
    let seats = view["seats"].as_array().expect("seats");
    prop_assert_eq!(seats.len(), 4);
    for (i, shown) in seats.iter().enumerate() {
        let expected = json!({
            "seat": i, "player": NAMES[i], "team": i % 2, "cards": table.hands[i].len(),
        });
        prop_assert_eq!(shown, &expected, "seat {} as shown", i);
    }
    let trick: Vec<Value> = table
        .trick
        .iter()
        .map(|(seat, card)| json!({"seat": seat, "card": card.name()}))
        .collect();
    prop_assert_eq!(&view["trick"], &json!(trick), "the trick on the table");
    let phase = match table.winner {
        Some(_) => "finished",
        None if table.trump.is_none() => "choosing_trump",
        None => "playing",
    };
    prop_assert_eq!(&view["phase"], &json!(phase));
    prop_assert_eq!(&view["trump"], &json!(table.trump.map(String::from)));
    prop_assert_eq!(&view["hakem"], &json!(table.hakem));
    prop_assert_eq!(&view["hand_number"], &json!(table.hand_number));
    prop_assert_eq!(&view["points"], &json!(table.points));
    prop_assert_eq!(&view["tricks"], &json!(table.tricks));
    prop_assert_eq!(&view["winner_team"], &json!(table.winner));
    let turn = table.winner.is_none().then_some(table.turn);
    prop_assert_eq!(&view["turn"], &json!(turn), "whose turn");
    // Nothing else: a key added to the view is added here on purpose.
    let mut keys: Vec<&str> = view
        .as_object()
        .expect("a view is an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    let mut expected = vec![
        "game",
        "hakem",
        "hand_number",
        "last_hand",
        "last_trick",
        "phase",
        "points",
        "seats",
        "target_points",
        "trick",
        "tricks",
        "trump",
        "turn",
        "winner_team",
        "you",
    ];
    if table.hand_number == 1 && table.trump.is_none() && table.winner.is_none() {
        expected.push("hakem_draw");
        expected.sort();
    }
    prop_assert_eq!(keys, expected);
    Ok(())
}

/// The trump a Hakem names.
fn choose_trump(table: &Table, style: Style, choices: &mut Choices) -> char {
    let hand = &table.hands[table.hakem];
    match style {
        Style::Lopsided { .. } => {
            let count = |suit: char| hand.iter().filter(|c| c.suit == suit).count();
            ['S', 'H', 'D', 'C']
                .into_iter()
                .max_by_key(|s| count(*s))
                .expect("four suits")
        }
        _ if choices.chance(50) => choices.pick(&['S', 'H', 'D', 'C']),
        _ => choices.pick(hand).suit,
    }
}

/// The card the player whose turn it is plays.
fn choose_card(table: &Table, style: Style, choices: &mut Choices) -> Card {
    let mut legal = table.legal();
    let trump = table.trump.expect("trump is named");
    match style {
        Style::Lopsided { strong } => {
            // Trumps count above everything, then rank.
            legal.sort_by_key(|c| (c.suit == trump, c.rank));
            if table.turn % 2 == strong {
                *legal.last().expect("a legal card")
            } else {
                legal[0]
            }
        }
        Style::LowLeads if table.trick.is_empty() => {
            *legal.iter().min_by_key(|c| c.rank).expect("a legal card")
        }
        _ => choices.pick(&legal),
    }
}

/// Tries moves the rules forbid now; each must be refused and change nothing.
fn try_illegal(
    game: &mut Game,
    table: &Table,
    choices: &mut Choices,
    coverage: &Coverage,
) -> Result<(), TestCaseError> {
    let other = NAMES[(table.turn + 1 + choices.below(3)) % 4];
    if table.choosing_trump() {
        refused(
            game,
            other,
            &trump_action('S', false),
            |r| matches!(r, Refusal::Illegal("not_hakem", _)),
            coverage,
        )?;
        let card = table.hands[table.hakem][0];
        refused(
            game,
            NAMES[table.hakem],
            &play_action(card, false),
            |r| matches!(r, Refusal::Illegal("waiting_for_trump", _)),
            coverage,
        )?;
        return Ok(());
    }
    let player = NAMES[table.turn];
    let own = &table.hands[table.turn];
    refused(
        game,
        other,
        &play_action(own[0], false),
        |r| matches!(r, Refusal::NotYourTurn),
        coverage,
    )?;
    refused(
        game,
        player,
        &trump_action('H', false),
        |r| matches!(r, Refusal::Illegal("trump_already_named", _)),
        coverage,
    )?;
    if let Some(held_elsewhere) = table.hands[(table.turn + 1) % 4].first() {
        refused(
            game,
            player,
            &play_action(*held_elsewhere, false),
            |r| matches!(r, Refusal::Illegal("card_not_in_hand", _)),
            coverage,
        )?;
    }
    let legal = table.legal();
    if let Some(off_suit) = own.iter().find(|c| !legal.contains(c)) {
        refused(
            game,
            player,
            &play_action(*off_suit, false),
            |r| matches!(r, Refusal::Illegal("must_follow_suit", _)),
            coverage,
        )?;
    }
    Ok(())
}

/// Plays one whole game through the plugin's rules and the model side by
/// side, comparing them after every move.
fn play(
    seed: u64,
    choice_seed: u64,
    style: Style,
    target: u32,
    coverage: &Coverage,
) -> Result<(), TestCaseError> {
    let mut choices = Choices(choice_seed);
    let mut game = Game::new(seed, &format!(r#"{{"target_points": {target}}}"#))
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    for name in NAMES {
        game.join(name)
            .map_err(|e| TestCaseError::fail(format!("join: {e:?}")))?;
    }
    prop_assert_eq!(game.join("fifth"), Err(Refusal::Full));
    let mut table = Table::new(seed, target);
    let draw: Vec<(usize, Card)> = game
        .hakem_draw
        .iter()
        .map(|(s, c)| (usize::from(*s), model_card(*c)))
        .collect();
    prop_assert_eq!(
        draw,
        table.draw.clone(),
        "the face-up draw for the first Hakem"
    );
    same_table(&game, &table)?;
    let mut hand_style = style;
    let mut actions = 0u32;
    while table.winner.is_none() {
        actions += 1;
        prop_assert!(actions < 10_000, "the game ends");
        let escaped = choices.chance(10);
        if choices.chance(4) {
            try_illegal(&mut game, &table, &mut choices, coverage)?;
        }
        if table.choosing_trump() {
            if let Style::Mixed = style {
                hand_style = [
                    Style::Random,
                    Style::Lopsided {
                        strong: choices.below(2),
                    },
                    Style::LowLeads,
                ][choices.below(3)];
            }
            let suit = choose_trump(&table, hand_style, &mut choices);
            let result = game.act(NAMES[table.hakem], &trump_action(suit, escaped));
            prop_assert!(result.is_ok(), "naming {} failed: {:?}", suit, result);
            table.name_trump(suit);
            prop_assert_eq!(game.phase, Phase::Playing);
            same_table(&game, &table)?;
            continue;
        }
        let seat = table.turn;
        let card = choose_card(&table, hand_style, &mut choices);
        let trick_before: Vec<(usize, Card)> = [table.trick.clone(), vec![(seat, card)]].concat();
        let (hakem_before, trump) = (table.hakem, table.trump.expect("trump is named"));
        let result = game.act(NAMES[seat], &play_action(card, escaped));
        prop_assert!(
            result.is_ok(),
            "seat {} playing {} failed: {:?}",
            seat,
            card.name(),
            result
        );
        let played = table.play(card);
        let (winner, hand) = match played {
            Played::Open => {
                same_table(&game, &table)?;
                continue;
            }
            Played::Trick { winner } => (winner, None),
            Played::Hand { winner, result } => (winner, Some(result)),
        };
        coverage.tricks.fetch_add(1, Ordering::Relaxed);
        let led = trick_before[0].1;
        let unfollowed = trick_before[1..]
            .iter()
            .all(|(_, c)| c.suit != led.suit && c.suit != trump);
        if led.rank == 2 && unfollowed {
            coverage.unfollowed_twos.fetch_add(1, Ordering::Relaxed);
        }
        let last = game
            .last_trick
            .as_ref()
            .expect("a completed trick is shown");
        let served: Vec<(usize, Card)> = last
            .plays
            .iter()
            .map(|(s, c)| (usize::from(*s), model_card(*c)))
            .collect();
        prop_assert_eq!(&served, &trick_before, "the trick as played");
        prop_assert_eq!(
            usize::from(last.winner),
            winner,
            "the winner of trick {:?}",
            trick_before
                .iter()
                .map(|(s, c)| format!("{s}:{}", c.name()))
                .collect::<Vec<_>>()
        );
        if let Some(result) = hand {
            coverage.hands.fetch_add(1, Ordering::Relaxed);
            let theirs = game.last_hand.as_ref().expect("a completed hand is shown");
            prop_assert_eq!(usize::from(theirs.hakem), result.hakem);
            prop_assert_eq!(theirs.tricks.map(u32::from), result.tricks);
            prop_assert_eq!(theirs.points.map(u32::from), result.points);
            prop_assert_eq!(theirs.kot, result.kot);
            if result.kot {
                coverage.kots.fetch_add(1, Ordering::Relaxed);
                if winner % 2 != hakem_before % 2 {
                    coverage.kots_against_hakem.fetch_add(1, Ordering::Relaxed);
                }
            }
            if table.hakem != hakem_before {
                coverage.hakem_changes.fetch_add(1, Ordering::Relaxed);
            }
        }
        same_table(&game, &table)?;
    }
    let winner = table.winner.expect("the loop ends with a winner");
    prop_assert_eq!(
        game.phase,
        Phase::Finished {
            winner: winner as u8
        }
    );
    let outcome = game.outcome().expect("a finished game has an outcome");
    prop_assert_eq!(
        &outcome["winners"],
        &serde_json::json!([NAMES[winner], NAMES[winner + 2]])
    );
    prop_assert_eq!(&outcome["points"], &serde_json::json!(table.points));
    prop_assert_eq!(
        game.act(NAMES[0], &play_action(Card::parse("AS"), false)),
        Err(Refusal::Finished)
    );
    coverage.games.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Thousands of generated games (fresh seeds on every run; a failing case
/// is printed with its seeds and kept in `proptest-regressions/`), then a
/// check that the corners the rules have were all reached.
#[test]
fn thousands_of_games_follow_the_rules_of_the_model() {
    let coverage = Coverage::default();
    let cases = 3000;
    let mut runner = TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..Config::default()
    });
    // Mostly the usual 7 points; short games reach the end more often.
    let target = prop_oneof![4 => Just(7u32), 1 => 1..7u32];
    let strategy = (any::<u64>(), any::<u64>(), style(), target);
    let result = runner.run(&strategy, |(seed, choice_seed, style, target)| {
        play(seed, choice_seed, style, target, &coverage)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let games = count(&coverage.games);
    eprintln!(
        "{games} games, {} hands, {} tricks, {} Kots ({} against the Hakem), {} Hakem changes, {} unfollowed twos led, {} refusals",
        count(&coverage.hands),
        count(&coverage.tricks),
        count(&coverage.kots),
        count(&coverage.kots_against_hakem),
        count(&coverage.hakem_changes),
        count(&coverage.unfollowed_twos),
        count(&coverage.refusals),
    );
    // Every generated case, and the saved regressions replayed before them.
    assert!(games >= u64::from(cases), "every case played a whole game");
    assert!(count(&coverage.kots) >= 100, "Kots were played");
    assert!(
        count(&coverage.kots_against_hakem) >= 10,
        "Kots against the Hakem were played"
    );
    assert!(
        count(&coverage.hakem_changes) >= 1000,
        "the Hakem changed hands"
    );
    assert!(
        count(&coverage.unfollowed_twos) >= 100,
        "twos were led that nobody followed or trumped"
    );
    assert!(
        count(&coverage.refusals) >= 1000,
        "illegal moves were tried"
    );
}

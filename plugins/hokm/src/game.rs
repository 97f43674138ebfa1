//! The rules of Hokm as a state machine: [`Game`] plus [`Game::act`].
//!
//! Pure and deterministic: no storage, no clock, randomness only from the
//! session's seed. The plugin glue (`plugin.rs`) and the benchmark both call
//! it.

use crate::cards::{Card, CardName, Hand, Suit, shuffled_deck};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::borrow::Cow;

pub const SEATS: usize = 4;
/// Tricks a side needs to win a hand.
pub const TRICKS_TO_WIN: u8 = 7;

/// Where a game stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Fewer than four players have joined.
    Waiting,
    /// Cards are dealt five each; the Hakem must name trump.
    ChoosingTrump,
    Playing,
    /// A side reached the target; `winner` is its team (0 or 1).
    Finished {
        winner: u8,
    },
}

/// A completed trick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trick {
    /// The hand it belongs to: after a hand ends, its last trick stays on
    /// show while the next hand is dealt from a fresh deck.
    pub hand_number: u32,
    /// (seat, card) in the order played.
    pub plays: Vec<(u8, Card)>,
    pub winner: u8,
}

/// A completed hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandResult {
    pub hakem: u8,
    pub tricks: [u8; 2],
    pub points: [u8; 2],
    /// 7-0: worth 2 to the Hakem's side, 3 against it.
    pub kot: bool,
}

/// A whole game. Seats are numbered in play order (anticlockwise round the
/// table): seat `s + 1` plays after seat `s`, and partners sit opposite, so
/// team = seat % 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Game {
    pub seed: u64,
    pub target_points: u8,
    /// Player names by seat, in join order.
    pub players: Vec<String>,
    pub phase: Phase,
    /// 1 for the first hand; 0 before it.
    pub hand_number: u32,
    pub hakem: u8,
    /// The face-up deal that chose the first Hakem: up to the first ace.
    /// Cleared once the first trump is named.
    pub hakem_draw: Vec<(u8, Card)>,
    pub hands: [Hand; SEATS],
    /// Cards dealt only after trump is named.
    pub stock: Vec<Card>,
    pub trump: Option<Suit>,
    pub turn: u8,
    /// The trick being played: (seat, card).
    pub trick: Vec<(u8, Card)>,
    /// Tricks won by each team in this hand.
    pub tricks: [u8; 2],
    /// Points of each team in the game.
    pub points: [u8; 2],
    pub last_trick: Option<Trick>,
    pub last_hand: Option<HandResult>,
}

/// What a player sends: `{"type": "trump", "suit": "H"}` (the Hakem names
/// trump) or `{"type": "play", "card": "QS"}`. Parsed as one flat record:
/// serde's tagged enums buffer the whole document first, which costs more
/// than the rest of an action. Strings borrow from the action text when they
/// can and are copied only when JSON escapes them (`"\u0048"`), so every
/// valid spelling of an action is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub suit: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub card: Option<Text<'a>>,
}

/// A JSON string, borrowed from the document unless escapes force a copy.
/// serde borrows a bare `Cow<str>` field this way, but not one inside an
/// `Option`, which it always copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// An action after parsing: what the rules act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    Trump(Suit),
    Play(Card),
}

impl Action<'_> {
    /// Checks the action's shape and names, whatever the game's phase.
    pub fn resolve(&self) -> Result<Move, Refusal> {
        let malformed = |message: &str| Refusal::Malformed("bad_action", message.to_owned());
        let (suit, card) = (
            self.suit.as_ref().map(Text::as_str),
            self.card.as_ref().map(Text::as_str),
        );
        match (self.kind.as_ref(), suit, card) {
            ("trump", Some(suit), None) => Suit::parse(suit).map(Move::Trump).ok_or_else(|| {
                Refusal::Malformed(
                    "bad_suit",
                    format!("{suit:?} is not a suit: use S, H, D or C"),
                )
            }),
            ("play", None, Some(card)) => Card::parse(card).map(Move::Play).ok_or_else(|| {
                Refusal::Malformed(
                    "bad_card",
                    format!("{card:?} is not a card: use rank then suit, e.g. QS or 10H"),
                )
            }),
            ("trump", ..) => Err(malformed(r#"name trump as {"type": "trump", "suit": "H"}"#)),
            ("play", ..) => Err(malformed(
                r#"play a card as {"type": "play", "card": "QS"}"#,
            )),
            (other, ..) => Err(malformed(&format!(
                "unknown action type {other:?}: use \"trump\" or \"play\""
            ))),
        }
    }
}

pub use hoard_sdk::Refusal;

/// Settings a session may choose.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Points that win the game: 7 by the usual rules.
    pub target_points: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config { target_points: 7 }
    }
}

fn illegal(code: &'static str, message: &str) -> Refusal {
    Refusal::Illegal(code, message.to_owned())
}

impl Game {
    pub fn new(seed: u64, config: &str) -> Result<Game, Refusal> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| Refusal::Malformed("bad_config", format!("bad config: {e}")))?;
        if !(1..=50).contains(&config.target_points) {
            return Err(Refusal::Malformed(
                "bad_config",
                "target_points must be 1 to 50".into(),
            ));
        }
        Ok(Game {
            seed,
            target_points: config.target_points,
            players: Vec::with_capacity(SEATS),
            phase: Phase::Waiting,
            hand_number: 0,
            hakem: 0,
            hakem_draw: Vec::new(),
            hands: Default::default(),
            stock: Vec::new(),
            trump: None,
            turn: 0,
            trick: Vec::with_capacity(SEATS),
            tricks: [0; 2],
            points: [0; 2],
            last_trick: None,
            last_hand: None,
        })
    }

    pub fn seat_of(&self, player: &str) -> Option<u8> {
        self.players
            .iter()
            .position(|p| p == player)
            .map(|s| s as u8)
    }

    /// Seats a player; the fourth starts the game.
    pub fn join(&mut self, player: &str) -> Result<(), Refusal> {
        if self.players.len() == SEATS {
            return Err(Refusal::Full);
        }
        if self.seat_of(player).is_some() {
            return Err(illegal("already_seated", "you are already seated"));
        }
        self.players.push(player.to_owned());
        if self.players.len() == SEATS {
            self.choose_first_hakem();
            self.deal();
        }
        Ok(())
    }

    /// Deals face up, one card each in seat order, until an ace shows: its
    /// holder is the first Hakem.
    fn choose_first_hakem(&mut self) {
        let deck = shuffled_deck(self.seed, 0);
        for (i, card) in deck.into_iter().enumerate() {
            let seat = (i % SEATS) as u8;
            self.hakem_draw.push((seat, card));
            if card.is_ace() {
                self.hakem = seat;
                return;
            }
        }
        unreachable!("a deck holds four aces");
    }

    /// Starts a hand: five cards each, beginning with the Hakem, who then
    /// names trump; the rest wait in the stock.
    fn deal(&mut self) {
        self.hand_number += 1;
        let mut deck = shuffled_deck(self.seed, self.hand_number);
        for offset in 0..SEATS {
            let seat = (self.hakem as usize + offset) % SEATS;
            self.hands[seat] = deck.drain(..5).collect();
        }
        self.stock = deck;
        self.trump = None;
        self.trick.clear();
        self.tricks = [0; 2];
        self.turn = self.hakem;
        self.phase = Phase::ChoosingTrump;
    }

    /// The move a turn clock makes for whoever must move now, as `act`
    /// takes it (player, action): the Hakem names the suit of the first
    /// card dealt to them; a player plays their lowest legal card (lowest
    /// rank, then suit in `C D H S` order). `None` when nobody must move.
    pub fn timeout_move(&self) -> Option<(String, String)> {
        let player = |seat: u8| self.players[seat as usize].clone();
        match self.phase {
            Phase::ChoosingTrump => {
                let first = shuffled_deck(self.seed, self.hand_number)[0];
                let action = json!({"type": "trump", "suit": first.suit().letter().to_string()});
                Some((player(self.hakem), action.to_string()))
            }
            Phase::Playing => {
                let hand = self.hands[self.turn as usize];
                let led = self.trick.first().map(|(_, card)| card.suit());
                let card = hand
                    .iter()
                    .filter(|card| match led {
                        Some(led) if hand.has_suit(led) => card.suit() == led,
                        _ => true,
                    })
                    .min_by_key(|card| (card.rank(), card.suit().letter()))?;
                let action = json!({"type": "play", "card": card.to_string()});
                Some((player(self.turn), action.to_string()))
            }
            Phase::Waiting | Phase::Finished { .. } => None,
        }
    }

    /// Applies `player`'s action. On error nothing changes.
    pub fn act(&mut self, player: &str, action: &str) -> Result<(), Refusal> {
        self.seat_of(player).ok_or(Refusal::NotSeated)?;
        let action: Action = serde_json::from_str(action)
            .map_err(|e| Refusal::Malformed("bad_action", format!("bad action: {e}")))?;
        self.apply(player, &action)
    }

    /// Applies `player`'s action, already read. On error nothing changes.
    pub fn apply(&mut self, player: &str, action: &Action) -> Result<(), Refusal> {
        let seat = self.seat_of(player).ok_or(Refusal::NotSeated)?;
        // Well formed before legal: a malformed action is refused as such in
        // any phase.
        let action = action.resolve()?;
        match self.phase {
            Phase::Finished { .. } => return Err(Refusal::Finished),
            Phase::Waiting => {
                return Err(illegal(
                    "waiting_for_players",
                    "the game starts when four players have joined",
                ));
            }
            Phase::ChoosingTrump | Phase::Playing => {}
        }
        match action {
            Move::Trump(suit) => self.name_trump(seat, suit),
            Move::Play(card) => self.play(seat, card),
        }
    }

    fn name_trump(&mut self, seat: u8, suit: Suit) -> Result<(), Refusal> {
        if self.phase != Phase::ChoosingTrump {
            return Err(illegal(
                "trump_already_named",
                "trump has already been named for this hand",
            ));
        }
        if seat != self.hakem {
            return Err(illegal("not_hakem", "only the Hakem names trump"));
        }
        self.trump = Some(suit);
        // The rest of the deck: four each, then four each, from the Hakem.
        for _ in 0..2 {
            for offset in 0..SEATS {
                let seat = (self.hakem as usize + offset) % SEATS;
                for card in self.stock.drain(..4) {
                    self.hands[seat].insert(card);
                }
            }
        }
        debug_assert!(self.stock.is_empty());
        // The draw was shown while the first trump was chosen; no longer.
        self.hakem_draw.clear();
        self.turn = self.hakem;
        self.phase = Phase::Playing;
        Ok(())
    }

    fn play(&mut self, seat: u8, card: Card) -> Result<(), Refusal> {
        if self.phase == Phase::ChoosingTrump {
            return Err(illegal(
                "waiting_for_trump",
                "the Hakem has not named trump yet",
            ));
        }
        if seat != self.turn {
            return Err(Refusal::NotYourTurn);
        }
        let hand = self.hands[seat as usize];
        if !hand.contains(card) {
            return Err(illegal(
                "card_not_in_hand",
                &format!("you do not hold {card}"),
            ));
        }
        if let Some((_, led)) = self.trick.first() {
            let led = led.suit();
            if card.suit() != led && hand.has_suit(led) {
                return Err(illegal(
                    "must_follow_suit",
                    &format!("you must follow suit: play a card of {}", led.letter()),
                ));
            }
        }
        self.hands[seat as usize].remove(card);
        self.trick.push((seat, card));
        if self.trick.len() < SEATS {
            self.turn = (seat + 1) % SEATS as u8;
            return Ok(());
        }
        let winner = trick_winner(
            &self.trick,
            self.trump.expect("trump is named while playing"),
        );
        self.last_trick = Some(Trick {
            hand_number: self.hand_number,
            plays: std::mem::take(&mut self.trick),
            winner,
        });
        let team = (winner % 2) as usize;
        self.tricks[team] += 1;
        self.turn = winner;
        if self.tricks[team] == TRICKS_TO_WIN {
            self.end_hand(team);
        }
        Ok(())
    }

    /// Scores a hand won by `team`, passes the Hakem on if his side lost, and
    /// deals the next hand unless the game is over.
    fn end_hand(&mut self, team: usize) {
        let hakem_team = (self.hakem % 2) as usize;
        let kot = self.tricks[1 - team] == 0;
        let won = match (kot, team == hakem_team) {
            (false, _) => 1,
            (true, true) => 2,
            (true, false) => 3,
        };
        let mut points = [0; 2];
        points[team] = won;
        self.points[team] += won;
        self.last_hand = Some(HandResult {
            hakem: self.hakem,
            tricks: self.tricks,
            points,
            kot,
        });
        if team != hakem_team {
            self.hakem = (self.hakem + 1) % SEATS as u8;
        }
        if self.points[team] >= self.target_points {
            self.phase = Phase::Finished { winner: team as u8 };
            self.hands = Default::default();
        } else {
            self.deal();
        }
    }

    /// The outcome document once the game is over.
    pub fn outcome(&self) -> Option<Value> {
        let Phase::Finished { winner } = self.phase else {
            return None;
        };
        let winners: Vec<&str> = (0..SEATS)
            .filter(|s| s % 2 == winner as usize)
            .map(|s| self.players[s].as_str())
            .collect();
        Some(json!({
            "winner_team": winner,
            "winners": winners,
            "players": self.players,
            "points": self.points,
            "hands": self.hand_number,
            "seed": self.seed,
        }))
    }

    /// The game as `player` may see it: their own hand and nothing of
    /// anyone else's; `None` is a spectator, who sees no hand.
    /// What `player` may see (`None`: a spectator): their own hand and
    /// nobody else's. Serialized straight to JSON, with no document built
    /// on the way: a view is rendered for every player after every action.
    pub fn view(&self, player: Option<&str>) -> View<'_> {
        let you = player.and_then(|p| self.seat_of(p)).map(|seat| You {
            seat,
            team: seat % 2,
            hand: Cards(self.hands[seat as usize]),
        });
        let (phase, winner_team) = match self.phase {
            Phase::Waiting => ("waiting", None),
            Phase::ChoosingTrump => ("choosing_trump", None),
            Phase::Playing => ("playing", None),
            Phase::Finished { winner } => ("finished", Some(winner)),
        };
        // The face-up draw for the first Hakem is public while it matters.
        let hakem_draw = (self.hand_number == 1 && self.phase == Phase::ChoosingTrump)
            .then_some(Plays(&self.hakem_draw));
        View {
            game: "hokm",
            phase,
            seats: Seats(self),
            you,
            hand_number: self.hand_number,
            hakem: self.hakem,
            trump: self.trump.map(Suit::name),
            turn: matches!(self.phase, Phase::ChoosingTrump | Phase::Playing).then_some(self.turn),
            trick: Plays(&self.trick),
            tricks: self.tricks,
            points: self.points,
            target_points: self.target_points,
            last_trick: self.last_trick.as_ref().map(|t| LastTrick {
                hand_number: t.hand_number,
                plays: Plays(&t.plays),
                winner: t.winner,
            }),
            last_hand: self.last_hand.as_ref(),
            winner_team,
            hakem_draw,
            turn_ms: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a game always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Game, Refusal> {
        postcard::from_bytes(bytes).map_err(|_| {
            Refusal::Malformed("bad_state", "the session state is not a Hokm game".into())
        })
    }
}

/// A player's view of a [`Game`] (see [`Game::view`]), as JSON.
#[derive(Serialize)]
pub struct View<'a> {
    game: &'static str,
    phase: &'static str,
    seats: Seats<'a>,
    you: Option<You>,
    hand_number: u32,
    hakem: u8,
    trump: Option<&'static str>,
    turn: Option<u8>,
    trick: Plays<'a>,
    tricks: [u8; 2],
    points: [u8; 2],
    target_points: u8,
    last_trick: Option<LastTrick<'a>>,
    last_hand: Option<&'a HandResult>,
    winner_team: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hakem_draw: Option<Plays<'a>>,
    /// The turn clock's length, for a table that has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_ms: Option<u64>,
}

/// Every seat: who sits there and how many cards they hold.
struct Seats<'a>(&'a Game);

impl Serialize for Seats<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Seat<'a> {
            seat: usize,
            player: &'a str,
            team: usize,
            cards: usize,
        }
        let game = self.0;
        serializer.collect_seq(game.players.iter().enumerate().map(|(seat, name)| Seat {
            seat,
            player: name,
            team: seat % 2,
            cards: game.hands[seat].len(),
        }))
    }
}

#[derive(Serialize)]
struct You {
    seat: u8,
    team: u8,
    hand: Cards,
}

/// A hand as card names.
struct Cards(Hand);

impl Serialize for Cards {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Card::name))
    }
}

/// Cards played, each with its seat.
struct Plays<'a>(&'a [(u8, Card)]);

impl Serialize for Plays<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Play {
            seat: u8,
            card: CardName,
        }
        let plays = self.0.iter().map(|&(seat, card)| Play {
            seat,
            card: card.name(),
        });
        serializer.collect_seq(plays)
    }
}

#[derive(Serialize)]
struct LastTrick<'a> {
    hand_number: u32,
    plays: Plays<'a>,
    winner: u8,
}

/// Rule 6: the highest trump wins; without a trump, the highest card of the
/// suit led. A discard (neither trump nor the suit led) never wins, so the
/// card led wins whenever nobody follows or trumps, even a two.
pub fn trick_winner(trick: &[(u8, Card)], trump: Suit) -> u8 {
    let led = trick[0].1.suit();
    // Discards rank below everything; the led card itself is never a
    // discard, so it is always a candidate.
    let strength = |card: Card| match card.suit() {
        s if s == trump => Some((1, card.rank())),
        s if s == led => Some((0, card.rank())),
        _ => None,
    };
    let (mut winner, mut best) = (trick[0].0, strength(trick[0].1));
    for &(seat, card) in &trick[1..] {
        let candidate = strength(card);
        if candidate > best {
            (winner, best) = (seat, candidate);
        }
    }
    winner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_clock_plays_legal_moves_to_the_end() {
        for seed in 0..20 {
            let mut game = seated(seed);
            let (hakem, action) = game.timeout_move().unwrap();
            assert_eq!(hakem, game.players[game.hakem as usize]);
            let first = shuffled_deck(seed, 1)[0];
            assert!(
                action.contains(&format!("\"suit\":\"{}\"", first.suit().letter())),
                "{action}"
            );
            let mut moves = 0;
            while let Some((player, action)) = game.timeout_move() {
                if game.phase == Phase::Playing {
                    // The lowest legal card: following suit when it can.
                    let card: Action = serde_json::from_str(&action).unwrap();
                    let card = Card::parse(card.card.unwrap().as_str()).unwrap();
                    let hand = game.hands[game.turn as usize];
                    if let Some((_, led)) = game.trick.first() {
                        assert!(card.suit() == led.suit() || !hand.has_suit(led.suit()));
                    }
                }
                game.act(&player, &action)
                    .expect("the clock's move is legal");
                moves += 1;
                assert!(moves < 10_000);
            }
            assert!(matches!(game.phase, Phase::Finished { .. }), "seed {seed}");
        }
    }

    fn card(name: &str) -> Card {
        Card::parse(name).unwrap()
    }

    fn seated(seed: u64) -> Game {
        let mut game = Game::new(seed, "{}").unwrap();
        for name in ["a", "b", "c", "d"] {
            game.join(name).unwrap();
        }
        game
    }

    /// A trick of four plays starting at seat `leader`.
    fn trick_from(leader: u8, cards: [&str; 4]) -> Vec<(u8, Card)> {
        (0..4)
            .map(|i| ((leader + i as u8) % 4, card(cards[i])))
            .collect()
    }

    #[test]
    fn trump_beats_the_suit_led_and_off_suits_never_win() {
        let trick = |cards| trick_from(0, cards);
        assert_eq!(
            trick_winner(&trick(["5H", "KH", "AS", "2H"]), Suit::Clubs),
            1,
            "highest of the suit led"
        );
        assert_eq!(
            trick_winner(&trick(["5H", "KH", "AS", "2C"]), Suit::Clubs),
            3,
            "any trump beats the suit led"
        );
        assert_eq!(
            trick_winner(&trick(["5H", "3C", "AS", "2C"]), Suit::Clubs),
            1,
            "the higher trump wins"
        );
        assert_eq!(
            trick_winner(&trick(["5H", "AD", "AS", "AC"]), Suit::Hearts),
            0,
            "off-suit aces lose to the suit led"
        );
    }

    // Rule 6, corner by corner. Issue 12: a led two lost to discards,
    // because a two and a discard both counted as strength 0.

    #[test]
    fn a_led_two_wins_when_nobody_follows_or_trumps() {
        for leader in 0..4 {
            let trick = trick_from(leader, ["2H", "AD", "KD", "8D"]);
            assert_eq!(
                trick_winner(&trick, Suit::Spades),
                leader,
                "leader {leader}"
            );
        }
        // The issue's three reproductions.
        assert_eq!(
            trick_winner(&trick_from(0, ["2H", "AD", "KD", "8D"]), Suit::Spades),
            0
        );
        assert_eq!(
            trick_winner(&trick_from(0, ["2D", "TC", "5C", "6C"]), Suit::Hearts),
            0
        );
        assert_eq!(
            trick_winner(&trick_from(2, ["2C", "QH", "8H", "KS"]), Suit::Diamonds),
            2
        );
    }

    #[test]
    fn the_lowest_trump_beats_an_ace_of_the_suit_led() {
        for leader in 0..4 {
            let trick = trick_from(leader, ["AH", "KH", "2S", "QH"]);
            assert_eq!(trick_winner(&trick, Suit::Spades), (leader + 2) % 4);
        }
    }

    #[test]
    fn two_trumps_compare_by_rank() {
        let trick = trick_from(1, ["5H", "3S", "2S", "AH"]);
        assert_eq!(trick_winner(&trick, Suit::Spades), 2, "3S over 2S");
        let trick = trick_from(1, ["5H", "2S", "3S", "AH"]);
        assert_eq!(trick_winner(&trick, Suit::Spades), 3, "3S over 2S, later");
        let trick = trick_from(3, ["2S", "KS", "AS", "3S"]);
        assert_eq!(trick_winner(&trick, Suit::Spades), 1, "trump led: the ace");
    }

    #[test]
    fn a_discard_never_wins() {
        // Aces of a third suit against the lowest card of the suit led.
        let trick = trick_from(2, ["2H", "AC", "AD", "3H"]);
        assert_eq!(
            trick_winner(&trick, Suit::Spades),
            1,
            "3H, the highest heart"
        );
        let trick = trick_from(2, ["3H", "AC", "AD", "2H"]);
        assert_eq!(trick_winner(&trick, Suit::Spades), 2, "3H led");
    }

    #[test]
    fn any_json_spelling_of_an_action_is_accepted() {
        let mut game = seated(3);
        let hakem = game.players[game.hakem as usize].clone();
        game.act(&hakem, r#"{"type": "trump", "suit": "\u0048"}"#)
            .expect("an escaped suit letter");
        assert_eq!(game.trump, Some(Suit::Hearts));
        let lead = game.hands[game.hakem as usize].iter().next().unwrap();
        let escaped: String = lead
            .to_string()
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        game.act(
            &hakem,
            &format!(r#"{{"t\u0079pe": "pl\u0061y", "card": "{escaped}"}}"#),
        )
        .expect("escapes in every string");
        assert_eq!(game.trick, vec![(game.hakem, lead)]);
    }

    #[test]
    fn scoring_kot_and_the_hakems_seat() {
        // (hakem, winning team, loser's tricks) -> (points, kot, next hakem)
        let cases = [
            (0, 0, 3, 1, false, 0),
            (0, 1, 3, 1, false, 1),
            (1, 1, 0, 2, true, 1),
            (1, 0, 0, 3, true, 2),
            (3, 0, 6, 1, false, 0),
        ];
        for (hakem, team, loser_tricks, points, kot, next_hakem) in cases {
            let mut game = seated(1);
            game.hakem = hakem;
            game.tricks = [0; 2];
            game.tricks[team] = TRICKS_TO_WIN;
            game.tricks[1 - team] = loser_tricks;
            game.end_hand(team);
            let result = game.last_hand.clone().unwrap();
            assert_eq!(
                (result.points[team], result.kot),
                (points, kot),
                "hakem {hakem}, team {team}, {loser_tricks}"
            );
            assert_eq!(game.points[team], points);
            assert_eq!(game.hakem, next_hakem);
            assert_eq!(game.phase, Phase::ChoosingTrump, "the next hand is dealt");
            assert_eq!(
                game.hands.iter().map(|h| h.len()).collect::<Vec<_>>(),
                [5; 4]
            );
        }
    }

    #[test]
    fn the_game_ends_at_the_target() {
        let mut game = seated(1);
        game.points = [6, 2];
        game.hakem = 0;
        game.tricks = [TRICKS_TO_WIN, 2];
        game.end_hand(0);
        assert_eq!(game.phase, Phase::Finished { winner: 0 });
        let outcome = game.outcome().unwrap();
        assert_eq!(outcome["winners"], serde_json::json!(["a", "c"]));
        assert_eq!(
            game.act("b", r#"{"type":"play","card":"AS"}"#),
            Err(Refusal::Finished)
        );
    }

    #[test]
    fn follow_suit_turns_and_trump_rules_are_enforced() {
        let mut game = seated(3);
        let hakem = game.hakem as usize;
        let other = game.players[(hakem + 1) % 4].clone();
        let hakem_name = game.players[hakem].clone();
        assert_eq!(
            game.act(&other, r#"{"type":"trump","suit":"H"}"#)
                .unwrap_err(),
            illegal("not_hakem", "only the Hakem names trump")
        );
        game.act(&hakem_name, r#"{"type":"trump","suit":"H"}"#)
            .unwrap();
        assert!(matches!(
            game.act(&hakem_name, r#"{"type":"trump","suit":"S"}"#),
            Err(Refusal::Illegal("trump_already_named", _))
        ));
        assert!(game.hands.iter().all(|h| h.len() == 13));
        let lead = game.hands[hakem].iter().next().unwrap();
        assert_eq!(
            game.act(&other, &format!(r#"{{"type":"play","card":"{lead}"}}"#)),
            Err(Refusal::NotYourTurn)
        );
        game.act(
            &hakem_name,
            &format!(r#"{{"type":"play","card":"{lead}"}}"#),
        )
        .unwrap();
        let next = (hakem + 1) % 4;
        let hand = game.hands[next];
        if hand.has_suit(lead.suit())
            && let Some(off) = hand.iter().find(|c| c.suit() != lead.suit())
        {
            let before = game.clone();
            let refused = game.act(&other, &format!(r#"{{"type":"play","card":"{off}"}}"#));
            assert!(matches!(
                refused,
                Err(Refusal::Illegal("must_follow_suit", _))
            ));
            assert_eq!(game, before, "a refused play changes nothing");
        }
        assert!(matches!(
            game.act(&other, r#"{"type":"play","card":"ZZ"}"#),
            Err(Refusal::Malformed("bad_card", _))
        ));
        assert!(matches!(
            game.act(&other, r#"{"type":"bid"}"#),
            Err(Refusal::Malformed("bad_action", _))
        ));
        assert_eq!(game.join("e"), Err(Refusal::Full));
    }

    #[test]
    fn malformed_actions_are_malformed_in_every_phase() {
        let mut waiting = Game::new(1, "{}").unwrap();
        waiting.join("a").unwrap();
        for game in [waiting, seated(1)] {
            let mut game = game;
            for action in [
                r#"{"type":"dance"}"#,
                r#"{"type":"play"}"#,
                r#"{"type":"play","card":"1Z"}"#,
                "[]",
            ] {
                assert!(
                    matches!(game.act("a", action), Err(Refusal::Malformed(..))),
                    "{action} in {:?}",
                    game.phase
                );
            }
        }
    }

    #[test]
    fn state_round_trips_through_its_encoding() {
        let game = seated(9);
        assert_eq!(Game::decode(&game.encode()).unwrap(), game);
        assert!(Game::decode(b"garbage").is_err());
    }
}

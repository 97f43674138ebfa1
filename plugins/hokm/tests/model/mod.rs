//! An independent model of the Hokm rules in `plugins/hokm/README.md`,
//! written apart from the plugin's `src/`: its own cards, deal, trick rule,
//! scoring and Hakem rotation, in a different shape (cards as rank and suit
//! letter, hands as lists, the trick rule as "filter, then take the
//! highest").
//!
//! It shares one thing with the plugin: the order of each shuffled deck,
//! which is the game's random input, not a rule. Everything done with that
//! order (who gets which cards, who is the first Hakem) is the model's own.

/// A card: rank 2 to 14 (ace) and a suit letter `S`, `H`, `D` or `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Card {
    pub rank: u8,
    pub suit: char,
}

const RANK_LETTERS: &str = "23456789TJQKA";

impl Card {
    /// `QS`, `TD`, `2C`: the names the plugin's views and actions use.
    pub fn parse(name: &str) -> Card {
        let mut chars = name.chars();
        let rank_letter = chars.next().expect("a rank");
        let suit = chars.next().expect("a suit");
        assert!(chars.next().is_none(), "a card name is two letters: {name}");
        let rank = RANK_LETTERS.find(rank_letter).expect("a rank letter") as u8 + 2;
        assert!("SHDC".contains(suit), "a suit letter: {name}");
        Card { rank, suit }
    }

    pub fn name(self) -> String {
        let rank = RANK_LETTERS.as_bytes()[usize::from(self.rank - 2)] as char;
        format!("{rank}{}", self.suit)
    }
}

/// The deck for deal `deal` (0 is the face-up draw for the first Hakem),
/// in the order the game's seeded shuffle put it.
pub fn deck(seed: u64, deal: u32) -> Vec<Card> {
    hokm::cards::shuffled_deck(seed, deal)
        .iter()
        .map(|card| Card::parse(&card.to_string()))
        .collect()
}

/// What one play led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Played {
    /// The trick is still open.
    Open,
    /// The trick is complete and `winner` took it.
    Trick { winner: usize },
    /// That trick also ended the hand.
    Hand { winner: usize, result: HandResult },
}

/// How a hand ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandResult {
    pub hakem: usize,
    pub tricks: [u32; 2],
    pub points: [u32; 2],
    pub kot: bool,
}

/// A game of Hokm as the rules describe it.
#[derive(Clone, Debug)]
pub struct Table {
    seed: u64,
    pub target: u32,
    pub hand_number: u32,
    pub hakem: usize,
    /// The face-up draw that chose the first Hakem.
    pub draw: Vec<(usize, Card)>,
    pub hands: [Vec<Card>; 4],
    /// Cards dealt only once trump is named.
    undealt: Vec<Card>,
    pub trump: Option<char>,
    pub turn: usize,
    pub trick: Vec<(usize, Card)>,
    pub tricks: [u32; 2],
    pub points: [u32; 2],
    /// The winning team, once the game is over.
    pub winner: Option<usize>,
}

impl Table {
    /// Four players have joined: draw for the first Hakem and deal hand 1.
    pub fn new(seed: u64, target: u32) -> Table {
        // Face up, one card to each seat in turn from seat 0, until an ace.
        let mut draw = Vec::new();
        for (i, card) in deck(seed, 0).into_iter().enumerate() {
            draw.push((i % 4, card));
            if card.rank == 14 {
                break;
            }
        }
        let mut table = Table {
            seed,
            target,
            hand_number: 0,
            hakem: draw.last().expect("a deck has aces").0,
            draw,
            hands: Default::default(),
            undealt: Vec::new(),
            trump: None,
            turn: 0,
            trick: Vec::new(),
            tricks: [0; 2],
            points: [0; 2],
            winner: None,
        };
        table.deal();
        table
    }

    /// Five cards to each player, the Hakem first, who then names trump.
    fn deal(&mut self) {
        self.hand_number += 1;
        let mut cards = deck(self.seed, self.hand_number).into_iter();
        for i in 0..4 {
            let seat = (self.hakem + i) % 4;
            self.hands[seat] = cards.by_ref().take(5).collect();
        }
        self.undealt = cards.collect();
        self.trump = None;
        self.trick.clear();
        self.tricks = [0; 2];
        self.turn = self.hakem;
    }

    pub fn choosing_trump(&self) -> bool {
        self.winner.is_none() && self.trump.is_none()
    }

    /// The Hakem names trump; the rest of the deck is dealt four and four.
    pub fn name_trump(&mut self, suit: char) {
        assert!(self.choosing_trump());
        self.trump = Some(suit);
        let mut cards = std::mem::take(&mut self.undealt).into_iter();
        for _ in 0..2 {
            for i in 0..4 {
                let seat = (self.hakem + i) % 4;
                self.hands[seat].extend(cards.by_ref().take(4));
            }
        }
        assert!(cards.next().is_none(), "the whole deck is dealt");
        self.turn = self.hakem;
    }

    /// The cards the player whose turn it is may play.
    pub fn legal(&self) -> Vec<Card> {
        let hand = &self.hands[self.turn];
        let Some(&(_, led)) = self.trick.first() else {
            return hand.clone();
        };
        let following: Vec<Card> = hand
            .iter()
            .copied()
            .filter(|c| c.suit == led.suit)
            .collect();
        if following.is_empty() {
            hand.clone()
        } else {
            following
        }
    }

    /// Who takes a complete trick: the highest trump if any was played,
    /// otherwise the highest card of the suit led.
    pub fn winner_of(trick: &[(usize, Card)], trump: char) -> usize {
        let led = trick[0].1.suit;
        let trumps: Vec<&(usize, Card)> = trick.iter().filter(|(_, c)| c.suit == trump).collect();
        let contenders = if trumps.is_empty() {
            trick.iter().filter(|(_, c)| c.suit == led).collect()
        } else {
            trumps
        };
        contenders
            .into_iter()
            .max_by_key(|(_, c)| c.rank)
            .expect("the led card contends")
            .0
    }

    /// The player whose turn it is plays `card`, which must be legal.
    pub fn play(&mut self, card: Card) -> Played {
        assert!(self.legal().contains(&card), "{} is not legal", card.name());
        let seat = self.turn;
        self.hands[seat].retain(|c| *c != card);
        self.trick.push((seat, card));
        if self.trick.len() < 4 {
            self.turn = (seat + 1) % 4;
            return Played::Open;
        }
        let winner = Self::winner_of(&self.trick, self.trump.expect("trump is named"));
        self.trick.clear();
        let team = winner % 2;
        self.tricks[team] += 1;
        self.turn = winner;
        if self.tricks[team] < 7 {
            return Played::Trick { winner };
        }
        // The hand is over: 1 point, or a Kot (7-0): 2 for the Hakem's
        // side, 3 against it.
        let hakem_team = self.hakem % 2;
        let kot = self.tricks[1 - team] == 0;
        let won = match (kot, team == hakem_team) {
            (false, _) => 1,
            (true, true) => 2,
            (true, false) => 3,
        };
        let mut points = [0; 2];
        points[team] = won;
        let result = HandResult {
            hakem: self.hakem,
            tricks: self.tricks,
            points,
            kot,
        };
        self.points[team] += won;
        if team != hakem_team {
            self.hakem = (self.hakem + 1) % 4;
        }
        if self.points[team] >= self.target {
            self.winner = Some(team);
            self.hands = Default::default();
        } else {
            self.deal();
        }
        Played::Hand { winner, result }
    }
}

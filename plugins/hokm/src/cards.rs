//! Cards, suits, the deck, and the seeded shuffle.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A suit; also its index 0..4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suit {
    Spades,
    Hearts,
    Diamonds,
    Clubs,
}

impl Suit {
    pub const ALL: [Suit; 4] = [Suit::Spades, Suit::Hearts, Suit::Diamonds, Suit::Clubs];

    pub fn letter(self) -> char {
        ['S', 'H', 'D', 'C'][self as usize]
    }

    /// The letter as text: `"S"`.
    pub fn name(self) -> &'static str {
        ["S", "H", "D", "C"][self as usize]
    }

    /// Accepts a letter (`S`) or a name (`spades`), any case.
    pub fn parse(text: &str) -> Option<Suit> {
        let text = text.to_ascii_lowercase();
        Suit::ALL.into_iter().find(|s| {
            let name = ["spades", "hearts", "diamonds", "clubs"][*s as usize];
            text == name || text.len() == 1 && text.starts_with(s.letter().to_ascii_lowercase())
        })
    }
}

/// A card: `suit * 13 + rank`, rank 0 is a two and 12 an ace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Card(pub u8);

const RANKS: &[u8; 13] = b"23456789TJQKA";

impl Card {
    pub fn new(suit: Suit, rank: u8) -> Card {
        debug_assert!(rank < 13);
        Card(suit as u8 * 13 + rank)
    }

    pub fn suit(self) -> Suit {
        Suit::ALL[(self.0 / 13) as usize]
    }

    /// 0 (two) to 12 (ace).
    pub fn rank(self) -> u8 {
        self.0 % 13
    }

    pub fn is_ace(self) -> bool {
        self.rank() == 12
    }

    /// The card's name, rank then suit letter: `QS`, `TH`.
    pub fn name(self) -> CardName {
        CardName([RANKS[self.rank() as usize], self.suit().letter() as u8])
    }

    /// Parses `AS`, `TH`, `10H`, `9c`: rank then suit letter.
    pub fn parse(text: &str) -> Option<Card> {
        let text = text.trim().to_ascii_uppercase();
        let (rank, suit) = text.split_at(text.len().checked_sub(1)?);
        let rank = if rank == "10" {
            b'T'
        } else if rank.len() == 1 {
            rank.as_bytes()[0]
        } else {
            return None;
        };
        let rank = RANKS.iter().position(|r| *r == rank)? as u8;
        Some(Card::new(Suit::parse(suit)?, rank))
    }
}

/// A card's name, kept without allocating; serializes as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardName([u8; 2]);

impl CardName {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a card's name is ASCII")
    }
}

impl Serialize for CardName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name().as_str())
    }
}

/// All 52 cards, shuffled by a generator seeded from `seed` and `round`, so
/// the same session replays the same deals.
pub fn shuffled_deck(seed: u64, round: u32) -> Vec<Card> {
    let mut deck: Vec<Card> = (0..52).map(Card).collect();
    let mut rng = SplitMix64(seed ^ (u64::from(round)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // Fisher-Yates.
    for i in (1..deck.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        deck.swap(i, j);
    }
    deck
}

/// A small, well-mixed generator: plenty for shuffling, and the same on every
/// platform, which matters more here than cryptographic strength.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_round_trip_through_their_names() {
        for card in (0..52).map(Card) {
            assert_eq!(Card::parse(&card.to_string()), Some(card));
        }
        assert_eq!(Card::parse("10h"), Card::parse("TH"));
        assert_eq!(Card::parse("1H"), None);
        assert_eq!(Card::parse("AX"), None);
        assert_eq!(Card::parse(""), None);
    }

    #[test]
    fn a_seed_fixes_the_shuffle() {
        let deck = shuffled_deck(7, 1);
        assert_eq!(deck, shuffled_deck(7, 1));
        assert_ne!(deck, shuffled_deck(7, 2));
        let mut sorted = deck.clone();
        sorted.sort();
        assert_eq!(sorted, (0..52).map(Card).collect::<Vec<_>>());
    }
}

/// A set of cards as a 52-bit mask (bit `n` is `Card(n)`): copying,
/// encoding and follow-suit checks cost next to nothing. Iterates in card
/// order: by suit, then rank.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hand(u64);

impl Hand {
    pub fn insert(&mut self, card: Card) {
        self.0 |= 1 << card.0;
    }

    /// Removes `card`, returning whether it was held.
    pub fn remove(&mut self, card: Card) -> bool {
        let held = self.contains(card);
        self.0 &= !(1 << card.0);
        held
    }

    pub fn contains(self, card: Card) -> bool {
        self.0 & (1 << card.0) != 0
    }

    pub fn has_suit(self, suit: Suit) -> bool {
        self.0 & (0x1FFF << (suit as u8 * 13)) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Card> {
        (0..52u8).filter(move |n| self.0 & (1 << n) != 0).map(Card)
    }
}

impl FromIterator<Card> for Hand {
    fn from_iter<I: IntoIterator<Item = Card>>(cards: I) -> Self {
        let mut hand = Hand::default();
        cards.into_iter().for_each(|card| hand.insert(card));
        hand
    }
}

#[cfg(test)]
mod hand_tests {
    use super::*;

    #[test]
    fn a_hand_is_a_set_in_card_order() {
        let cards = ["AS", "2S", "KH", "3C"].map(|c| Card::parse(c).unwrap());
        let mut hand: Hand = cards.into_iter().collect();
        assert_eq!(hand.len(), 4);
        assert_eq!(
            hand.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            ["2S", "AS", "KH", "3C"]
        );
        assert!(hand.has_suit(Suit::Hearts) && !hand.has_suit(Suit::Diamonds));
        assert!(hand.remove(cards[2]) && !hand.remove(cards[2]));
        assert!(!hand.has_suit(Suit::Hearts));
        assert_eq!(hand.len(), 3);
    }
}

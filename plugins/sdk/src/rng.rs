//! A deterministic random number generator seeded from the session, so a
//! session replays exactly from its seed (which the host commits to at
//! creation and reveals at the end: see `Session::seed`). SplitMix64:
//! small, fast, and the same on every platform.

use crate::Session;

/// Random numbers drawn from a session's seed and a stream number (one
/// stream per purpose: hand 3's shuffle, the dice of turn 12).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Stream `stream` of `session`'s seed.
    pub fn of(session: &Session, stream: u64) -> Rng {
        Rng::seeded(session.seed, stream)
    }

    /// Stream `stream` of `seed`.
    pub fn seeded(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A die of `sides` sides: 1 to `sides`.
    pub fn roll(&mut self, sides: u64) -> u64 {
        self.below(sides) + 1
    }

    /// Shuffles `items` (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_and_differ() {
        let draw = |seed, stream| {
            let mut rng = Rng::seeded(seed, stream);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 1), draw(7, 1));
        assert_ne!(draw(7, 1), draw(7, 2));
        assert_ne!(draw(7, 1), draw(8, 1));
    }

    #[test]
    fn rolls_are_in_range_and_roughly_even() {
        let mut rng = Rng::seeded(42, 0);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            let roll = rng.roll(6);
            assert!((1..=6).contains(&roll));
            counts[roll as usize - 1] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
        let mut cards: Vec<u32> = (0..52).collect();
        rng.shuffle(&mut cards);
        let mut sorted = cards.clone();
        sorted.sort();
        assert_eq!(sorted, (0..52).collect::<Vec<_>>());
        assert_ne!(cards, sorted);
    }
}

//! The random numbers a plugin draws from its session's seed, modelled
//! from the SDK's documentation (`plugins/sdk/README.md`) and not from its
//! code: tests replay dice from the seed the host reveals at the end.

/// Stream `n` of `seed`: SplitMix64 started at `seed ^ n *
/// 0xD1B54A32D192ED03`, one number skipped.
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64, n: u64) -> Stream {
        let mut stream = Stream(seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        stream.next_u64();
        stream
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A die of `faces` faces: the first number under the largest multiple
    /// of `faces`, modulo `faces`, plus one.
    pub fn die(&mut self, faces: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % faces;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % faces + 1;
            }
        }
    }
}

//! Counter-based pseudo-randomness: every random number is a pure function of a key, so
//! generation is reproducible whatever the thread count or order (SplitMix64 mixing).

/// Mixes `value` into `state` (SplitMix64 finaliser of their combination).
pub(crate) fn mix(state: u64, value: u64) -> u64 {
    let mut z = state
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(value.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A key built from parts: `key(&[a, b, c])`.
pub(crate) fn key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5157_5f53_494d_0001, |s, p| mix(s, *p))
}

/// A uniform number in [0, 1) from a key.
pub(crate) fn unit(key: u64) -> f64 {
    (mix(key, 0x1234_5678) >> 11) as f64 / (1u64 << 53) as f64
}

/// A small sequential generator seeded from a key.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
    counter: u64,
}

impl Rng {
    pub fn new(key: u64) -> Rng {
        Rng {
            state: key,
            counter: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.counter += 1;
        mix(self.state, self.counter)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in lo..=hi.
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_values_cover_the_unit_interval() {
        let mut rng = Rng::new(key(&[1, 2, 3]));
        let values: Vec<f64> = (0..10_000).map(|_| rng.unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!(values.iter().filter(|v| **v < 0.1).count() > 800);
        assert_ne!(key(&[1, 2]), key(&[2, 1]));
        assert_eq!(unit(key(&[5])), unit(key(&[5])));
    }
}

//! How many distinct flows a capture holds, in fixed memory: HyperLogLog
//! (Flajolet et al. 2007) with 2^14 one-byte registers (16 KiB, relative
//! standard error 1.04/√2^14 ≈ 0.81%) and Ertl's improved estimator ("New
//! cardinality estimation algorithms for HyperLogLog sketches", 2017), which
//! needs no bias tables and is accurate from one flow up.
//!
//! Until [`EXACT_UP_TO`] distinct hashes have been seen they are also kept in
//! a set and the count is exact (64-bit hashes: a collision among 4,096 is a
//! one-in-10^12 event); past that the set is dropped.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// log2 of the number of registers.
const P: u32 = 14;
const M: usize = 1 << P;
/// Hash bits left for the rank.
const Q: u32 = 64 - P;
/// The relative standard error of the estimate once it is not exact.
pub const STANDARD_ERROR: f64 = 1.04 / 128.0;
/// Distinct hashes counted exactly.
pub const EXACT_UP_TO: usize = 4096;

/// Hashes are already uniform: the set uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A distinct count of 64-bit hashes.
#[derive(Debug, Clone)]
pub struct DistinctCount {
    registers: Box<[u8]>,
    exact: Option<HashSet<u64, BuildHasherDefault<Identity>>>,
}

impl Default for DistinctCount {
    fn default() -> DistinctCount {
        DistinctCount {
            registers: vec![0u8; M].into_boxed_slice(),
            exact: Some(HashSet::default()),
        }
    }
}

impl DistinctCount {
    /// Counts `hash`, which must be uniformly distributed over u64.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        let at = (hash >> Q) as usize;
        // 1 + the leading zeros of the remaining Q bits; Q + 1 when all are 0.
        let rank = ((hash << P).leading_zeros() + 1).min(Q + 1) as u8;
        let r = &mut self.registers[at];
        if rank > *r {
            *r = rank;
        }
        if let Some(set) = &mut self.exact {
            set.insert(hash);
            if set.len() > EXACT_UP_TO {
                self.exact = None;
            }
        }
    }

    /// True while the count is exact.
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// The number of distinct hashes inserted: exact while [`Self::is_exact`],
    /// else within about [`STANDARD_ERROR`] (relative) of it.
    pub fn count(&self) -> u64 {
        match &self.exact {
            Some(set) => set.len() as u64,
            None => self.estimate().round() as u64,
        }
    }

    /// Ertl's improved raw estimator over the register histogram.
    fn estimate(&self) -> f64 {
        let mut hist = [0u32; Q as usize + 2];
        for &r in self.registers.iter() {
            hist[r as usize] += 1;
        }
        let m = M as f64;
        if hist[0] as usize == M {
            return 0.0;
        }
        let mut z = m * tau(1.0 - f64::from(hist[Q as usize + 1]) / m);
        for k in (1..=Q as usize).rev() {
            z = 0.5 * (z + f64::from(hist[k]));
        }
        z += m * sigma(f64::from(hist[0]) / m);
        let alpha_inf = 0.5 / std::f64::consts::LN_2;
        alpha_inf * m * m / z
    }
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), for 0 ≤ x < 1.
fn sigma(x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let (mut x, mut y, mut z) = (x, 1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))² 2^-k) / 3, for 0 ≤ x ≤ 1.
fn tau(x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let (mut x, mut y, mut z) = (x, 1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(i: u64) -> u64 {
        foldhash::quality::FixedState::default().hash_one(i)
    }

    #[test]
    fn small_counts_are_exact() {
        let mut d = DistinctCount::default();
        assert_eq!(d.count(), 0);
        for round in 0..5 {
            for i in 0..1000 {
                d.insert(hash(i));
            }
            assert_eq!(d.count(), 1000, "round {round}");
        }
        assert!(d.is_exact());
    }

    #[test]
    fn large_counts_are_within_the_standard_error() {
        // Several magnitudes, each checked at 3 standard errors (a failure
        // by chance is a 0.3% event per point, and the hashes are fixed).
        for n in [5_000u64, 20_000, 50_000, 100_000, 1_000_000, 5_000_000] {
            let mut d = DistinctCount::default();
            for i in 0..n {
                d.insert(hash(i ^ 0x5555_0000_0000));
            }
            assert!(!d.is_exact());
            let got = d.count() as f64;
            let rel = (got - n as f64).abs() / n as f64;
            assert!(
                rel < 3.0 * STANDARD_ERROR,
                "n={n}: estimate {got}, off by {:.2}%",
                rel * 100.0
            );
        }
    }

    #[test]
    fn repeats_are_not_counted_again() {
        // 100,000 distinct values each seen 10 times: about 100,000, not 1,000,000.
        let mut d = DistinctCount::default();
        for _ in 0..10 {
            for i in 0..100_000u64 {
                d.insert(hash(i));
            }
        }
        let got = d.count() as f64;
        assert!(
            (got - 100_000.0).abs() < 3.0 * STANDARD_ERROR * 100_000.0,
            "{got}"
        );
    }

    #[test]
    fn the_estimator_is_unbiased_over_many_sketches() {
        // The mean over 40 independent sketches is much closer than one sketch.
        let n = 30_000u64;
        let mut sum = 0.0;
        for s in 0..40u64 {
            let mut d = DistinctCount::default();
            for i in 0..n {
                d.insert(hash(i | s << 40));
            }
            sum += d.estimate();
        }
        let mean = sum / 40.0;
        let rel = (mean - n as f64).abs() / n as f64;
        assert!(rel < 3.0 * STANDARD_ERROR / 40f64.sqrt(), "mean {mean}");
    }

    #[test]
    fn sigma_and_tau_at_their_ends() {
        assert_eq!(sigma(0.0), 0.0);
        assert!(sigma(1.0).is_infinite());
        assert_eq!(tau(0.0), 0.0);
        assert_eq!(tau(1.0), 0.0);
        // σ(1/2) = 1/2 + 1/4 + 2/16 + 4/256 + … ≈ 0.8906.
        assert!((sigma(0.5) - 0.890_625).abs() < 0.01);
    }
}

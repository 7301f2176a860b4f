//! A small seedable generator whose whole state is one `u64` (SplitMix64), so a checkpoint can
//! store it and a resumed run draws exactly the same dropout masks and data orders.
use serde::{Deserialize, Serialize};

use crate::model::par::{run_split, OutPtr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    pub state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for `(seed, stream)` (e.g. one per epoch).
    pub fn derived(seed: u64, stream: u64) -> Self {
        let mut r = SplitMix64::new(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 24 bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// An inverted-dropout mask of `n` values: `0` with probability `p`, else `1 / (1 - p)`.
    /// Four draws per `u64`. Draw `w` is the generator's `w`-th next output, computed from the
    /// state directly (SplitMix64 is a counter run through a mixer), so the words are
    /// independent: the loop vectorises and splits across threads, and the stream is exactly the
    /// one `next_u64` would give.
    pub fn dropout_mask(&mut self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        let threshold = (p * 65536.0) as u64;
        let words = n.div_ceil(4);
        let base = self.state;
        let mut out = vec![0f32; n];
        let fill = |first_word: usize, dst: &mut [f32]| {
            for (i, chunk) in dst.chunks_mut(4).enumerate() {
                let w = (first_word + i) as u64 + 1;
                let z = mix(base.wrapping_add(w.wrapping_mul(GOLDEN)));
                for (k, o) in chunk.iter_mut().enumerate() {
                    *o = if (z >> (16 * k)) & 0xFFFF < threshold {
                        0.0
                    } else {
                        keep
                    };
                }
            }
        };
        // Blocks of words, each filled by one thread.
        const BLOCK_WORDS: usize = 1 << 14;
        let ptr = OutPtr(out.as_mut_ptr());
        run_split(words.div_ceil(BLOCK_WORDS), n, |range| {
            for b in range {
                let start = b * BLOCK_WORDS * 4;
                // SAFETY: block `b` of `out` belongs to this call alone.
                let dst = unsafe { ptr.slice(start, (BLOCK_WORDS * 4).min(n - start)) };
                fill(b * BLOCK_WORDS, dst);
            }
        });
        self.state = base.wrapping_add((words as u64).wrapping_mul(GOLDEN));
        out
    }
}

/// SplitMix64's increment.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_mask_is_the_generator_stream_four_draws_a_word() {
        for n in [1, 7, 4 * (1 << 14) + 5, 3 * 4 * (1 << 14)] {
            let mut fast = SplitMix64::new(9);
            let mut slow = fast;
            let m = fast.dropout_mask(n, 0.25);
            let mut want = Vec::with_capacity(n);
            while want.len() < n {
                let r = slow.next_u64();
                for k in 0..4 {
                    if want.len() < n {
                        let u = (r >> (16 * k)) & 0xFFFF;
                        want.push(if u < 16384 { 0.0 } else { 1.0 / 0.75 });
                    }
                }
            }
            assert_eq!(m, want, "n = {n}");
            assert_eq!(fast, slow, "n = {n}: the state advanced differently");
        }
    }

    #[test]
    fn dropout_mask_has_the_right_rate_and_scale() {
        let mut r = SplitMix64::new(1);
        let m = r.dropout_mask(100_000, 0.1);
        let zeros = m.iter().filter(|&&x| x == 0.0).count() as f64 / m.len() as f64;
        assert!((zeros - 0.1).abs() < 0.005, "zero rate {zeros}");
        let mean = m.iter().map(|&x| x as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn state_restores_the_stream_and_shuffle_is_a_permutation() {
        let mut a = SplitMix64::new(42);
        a.next_u64();
        let saved = a;
        let x: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let mut b = saved;
        let y: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(x, y);
        let mut v: Vec<usize> = (0..50).collect();
        SplitMix64::derived(0, 3).shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}

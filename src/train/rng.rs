//! A small seedable generator whose whole state is one `u64` (SplitMix64), so a checkpoint can
//! store it and a resumed run draws exactly the same dropout masks and data orders.
use serde::{Deserialize, Serialize};

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
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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
    /// Four draws per `u64`.
    pub fn dropout_mask(&mut self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        let threshold = (p * 65536.0) as u32;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = self.next_u64();
            for k in 0..4 {
                if out.len() == n {
                    break;
                }
                let u = ((r >> (16 * k)) & 0xFFFF) as u32;
                out.push(if u < threshold { 0.0 } else { keep });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

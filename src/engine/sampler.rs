//! Token sampling: repetition penalty, then greedy (temperature 0) or temperature + top-k +
//! top-p sampling from a per-request `StdRng` (seeded from the request's seed when given).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Validated sampling parameters of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (None = all).
    pub top_k: Option<usize>,
    /// Nucleus mass in (0, 1]; 1 = off.
    pub top_p: f32,
    /// None = a random seed.
    pub seed: Option<u64>,
    /// CTRL-style penalty on tokens already in the sequence; 1 = off.
    pub repetition_penalty: f32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: 1.0,
            seed: None,
            repetition_penalty: 1.0,
        }
    }
}

pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let seed = params.seed.unwrap_or_else(|| rand::rng().random());
        Self {
            params,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Pick the next token from `logits` given the tokens already in the sequence.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = &self.params;
        if p.repetition_penalty != 1.0 {
            for &t in history {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 {
                        *l / p.repetition_penalty
                    } else {
                        *l * p.repetition_penalty
                    };
                }
            }
        }
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l / p.temperature))
            .collect();
        if cand.is_empty() {
            return argmax(logits);
        }
        let n = cand.len();
        let max = cand.iter().fold(f32::NEG_INFINITY, |m, c| m.max(c.1));
        // Best first, ties to the lower id. Only as much of the order as the filters need is
        // computed: sorting a whole 49k vocabulary cost about 2.4 ms per token.
        let k = p.top_k.map_or(n, |k| k.clamp(1, n));
        if k < n {
            cand.select_nth_unstable_by(k - 1, by_rank);
            cand.truncate(k);
        }
        if p.top_p < 1.0 {
            nucleus(&mut cand, max, p.top_p);
        }
        // Draw from the kept candidates, weights exp(score - max) (their softmax, unnormalised).
        let weights: Vec<f32> = cand.iter().map(|c| (c.1 - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        let mut r = self.rng.random::<f32>() * total;
        for (c, &w) in cand.iter().zip(&weights) {
            if r < w {
                return c.0;
            }
            r -= w;
        }
        cand[cand.len() - 1].0
    }
}

/// Best first: higher score, then lower id.
fn by_rank(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Keeps the smallest best-first prefix of `cand` whose softmax mass (over all of `cand`, top
/// score `max`) reaches `top_p`, sorted. Sorts the best 64 first and only widens (x8) while their
/// mass falls short.
fn nucleus(cand: &mut Vec<(u32, f32)>, max: f32, top_p: f32) {
    let sum: f32 = cand.iter().map(|c| (c.1 - max).exp()).sum();
    let mut m = cand.len().min(64);
    loop {
        if m < cand.len() {
            cand.select_nth_unstable_by(m - 1, by_rank);
        }
        cand[..m].sort_unstable_by(by_rank);
        let mut acc = 0f32;
        for (i, c) in cand[..m].iter().enumerate() {
            acc += (c.1 - max).exp() / sum;
            if acc >= top_p {
                cand.truncate(i + 1);
                return;
            }
        }
        if m == cand.len() {
            return; // rounding left the whole set short of top_p: keep it all
        }
        m = (m * 8).min(cand.len());
    }
}

/// Index of the first largest logit (NaNs never win; all NaN gives 0). Chunk maxima first, then
/// the one chunk that holds the maximum. This runs on the engine thread for every sequence of
/// every step (a vocabulary of 49k): see [`chunk_max`].
fn argmax(logits: &[f32]) -> u32 {
    const CHUNK: usize = 256;
    let (mut best, mut at) = (f32::NEG_INFINITY, None);
    for (c, chunk) in logits.chunks(CHUNK).enumerate() {
        let m = chunk_max(chunk);
        if m > best || at.is_none() && m == best {
            (best, at) = (m, Some(c));
        }
    }
    let Some(c) = at else { return 0 };
    let i = logits[c * CHUNK..]
        .iter()
        .position(|&l| l == best)
        .unwrap_or(0);
    (c * CHUNK + i) as u32
}

/// Largest non-NaN value of `chunk` (-inf when none). Sixteen running maxima, one per lane, so
/// the compiler turns the loop into vector max operations; a single running maximum kept the
/// loop scalar (each comparison waited on the previous one): 54 us per 49k-logit row against
/// 8 us.
fn chunk_max(chunk: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut rows = chunk.chunks_exact(16);
    for v in &mut rows {
        for (l, &x) in lanes.iter_mut().zip(v) {
            *l = if x > *l { x } else { *l };
        }
    }
    rows.remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, k: Option<usize>, p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature: t,
            top_k: k,
            top_p: p,
            seed: Some(seed),
            repetition_penalty: 1.0,
        }
    }

    #[test]
    fn greedy_picks_argmax() {
        let mut s = Sampler::new(SamplingParams::default());
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.0], &[]), 1);
    }

    #[test]
    fn argmax_over_a_vocabulary_takes_the_first_maximum_and_skips_nan() {
        let mut v: Vec<f32> = (0..49_152)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .collect();
        v[300] = f32::NAN;
        v[40_000] = 12.5;
        v[40_001] = 12.5;
        v[45_000] = 12.5;
        assert_eq!(argmax(&v), 40_000);
        v[5] = 13.0;
        assert_eq!(argmax(&v), 5);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY, -1.0]), 2);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn argmax_equals_a_plain_scan_at_every_length_and_nan_pattern() {
        // the first index of the largest non-NaN value, as a one-at-a-time scan finds it
        fn scan(v: &[f32]) -> u32 {
            let mut best: Option<(usize, f32)> = None;
            for (i, &x) in v.iter().enumerate() {
                if !x.is_nan() && best.is_none_or(|(_, b)| x > b) {
                    best = Some((i, x));
                }
            }
            best.map_or(0, |(i, _)| i as u32)
        }
        let mut s = 12345u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for len in [1, 15, 16, 17, 255, 256, 257, 1000, 4099] {
            for _ in 0..20 {
                // few distinct values, so ties within and across chunks are common
                let v: Vec<f32> = (0..len)
                    .map(|_| match next() % 50 {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        r => (r % 7) as f32 - 3.0,
                    })
                    .collect();
                assert_eq!(argmax(&v), scan(&v), "len {len}: {v:?}");
            }
        }
    }

    #[test]
    fn repetition_penalty_changes_choice() {
        let mut s = Sampler::new(SamplingParams {
            repetition_penalty: 2.0,
            ..SamplingParams::default()
        });
        assert_eq!(s.sample(&mut [0.0, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn top_k_one_is_greedy_and_seed_is_reproducible() {
        let logits = [0.5, 1.0, 0.9, 0.2];
        let mut s = Sampler::new(params(1.0, Some(1), 1.0, 7));
        assert_eq!(s.sample(&mut logits.clone(), &[]), 1);
        let draw = |seed| {
            let mut s = Sampler::new(params(1.5, None, 1.0, seed));
            (0..32)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    /// Frequencies follow the softmax of the kept candidates; tokens outside top-k and the
    /// nucleus never come, including a nucleus wider than the first 64 sorted.
    #[test]
    fn draws_follow_the_filtered_softmax() {
        // softmax of [2, 1, 0.5, 0, -1, -3] at T = 1: 0.561 0.206 0.125 0.076 0.028 0.004
        let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0, -3.0];
        let freq = |params: SamplingParams| {
            let mut s = Sampler::new(params);
            let mut n = [0usize; 6];
            for _ in 0..20_000 {
                n[s.sample(&mut logits.clone(), &[]) as usize] += 1;
            }
            n.map(|c| c as f64 / 20_000.0)
        };
        let close = |got: [f64; 6], want: [f64; 6]| {
            got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 0.015)
        };
        let all = freq(params(1.0, None, 1.0, 5));
        assert!(
            close(all, [0.561, 0.206, 0.125, 0.076, 0.028, 0.004]),
            "{all:?}"
        );
        // top_p 0.8: 0.561 + 0.206 + 0.125 = 0.892 is the smallest prefix reaching it
        let p = freq(params(1.0, None, 0.8, 6));
        assert!(close(p, [0.628, 0.231, 0.140, 0.0, 0.0, 0.0]), "{p:?}");
        assert_eq!(p[3..], [0.0; 3]);
        // top_k 2 at T = 2: softmax of [1, 0.5]
        let k = freq(params(2.0, Some(2), 1.0, 7));
        assert!(close(k, [0.622, 0.378, 0.0, 0.0, 0.0, 0.0]), "{k:?}");

        // 5000 near-flat logits: a nucleus of thousands, reached only after widening
        let wide: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0)
            .collect();
        let mut order: Vec<usize> = (0..wide.len()).collect();
        order.sort_by(|&a, &b| wide[b].total_cmp(&wide[a]).then(a.cmp(&b)));
        let sum: f64 = wide.iter().map(|&l| (l as f64 - 2.0).exp()).sum();
        let (mut acc, mut size) = (0.0, 0);
        while acc < 0.9 {
            acc += (wide[order[size]] as f64 - 2.0).exp() / sum;
            size += 1;
        }
        assert!(size > 512, "nucleus of {size}");
        // two extra: the f32 running sum may cross 0.9 a token or two after the f64 one
        let allowed: std::collections::HashSet<usize> = order[..size + 2].iter().copied().collect();
        let mut s = Sampler::new(params(1.0, None, 0.9, 8));
        for _ in 0..2000 {
            let t = s.sample(&mut wide.clone(), &[]) as usize;
            assert!(allowed.contains(&t), "token {t} outside the nucleus");
        }
    }

    #[test]
    fn top_p_keeps_nucleus_only() {
        let mut s = Sampler::new(params(1.0, None, 0.5, 1));
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [5.0, 0.0, 0.0, 0.0], &[]), 0);
        }
    }
}

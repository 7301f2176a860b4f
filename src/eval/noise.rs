//! Noise for the robustness task, applied to the preprocessed (z-scored, `NU`) model input
//! (`12 x 5000`, lead-major), seeded so every run sees the same noisy records.
//!
//! - **Partial white noise** (MEIT's robustness test): one random time window covering at most
//!   a fraction `p` of the record is corrupted. The window length is drawn uniformly in
//!   `1..=floor(p * samples)`, its start uniformly among the positions where it fits; one
//!   `sigma ~ U(0, 0.1)` is drawn per record and every lead gets independent `N(0, sigma^2)`
//!   samples inside the same window (a motion burst hits all electrodes at once). MEIT's
//!   description ("a random segment of up to p of the record", sigma ~ U(0, 0.1)) does not say
//!   whether the window is shared across leads; sharing it is our reading.
//! - **Gaussian noise at a target SNR** over the whole record: per lead, white Gaussian noise
//!   is drawn and then rescaled so that its empirical power is exactly
//!   `P_signal / 10^(snr/10)` (`P = mean(x^2)` of that lead), so the achieved SNR equals the
//!   target up to rounding rather than only in expectation.
//!
//! Normal samples come from the Box-Muller transform over `StdRng::seed_from_u64`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// MEIT's partial-noise fractions.
pub const PARTIAL_FRACTIONS: [f64; 4] = [0.05, 0.10, 0.15, 0.20];
/// Upper bound of the per-record noise standard deviation (NU).
pub const PARTIAL_SIGMA_MAX: f64 = 0.1;
/// Signal-to-noise ratios of the Gaussian sweep, in dB.
pub const SNR_LEVELS_DB: [f64; 5] = [24.0, 18.0, 12.0, 6.0, 0.0];

/// One corruption applied to a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseSpec {
    /// A random window of at most `fraction` of the record gets `N(0, sigma)`, sigma ~ U(0, 0.1).
    Partial { fraction: f64 },
    /// White Gaussian noise at this SNR (dB) on every lead.
    Snr { db: f64 },
}

impl NoiseSpec {
    /// The sweep: the four partial levels, then the five SNR levels.
    pub fn sweep() -> Vec<NoiseSpec> {
        PARTIAL_FRACTIONS
            .iter()
            .map(|&fraction| NoiseSpec::Partial { fraction })
            .chain(SNR_LEVELS_DB.iter().map(|&db| NoiseSpec::Snr { db }))
            .collect()
    }

    /// Stable label, e.g. `partial_p0.05`, `snr_24db`.
    pub fn label(&self) -> String {
        match self {
            NoiseSpec::Partial { fraction } => format!("partial_p{fraction:.2}"),
            NoiseSpec::Snr { db } => format!("snr_{db:.0}db"),
        }
    }

    /// Family name: `partial` or `snr`.
    pub fn family(&self) -> &'static str {
        match self {
            NoiseSpec::Partial { .. } => "partial",
            NoiseSpec::Snr { .. } => "snr",
        }
    }

    /// The swept value (fraction or dB).
    pub fn level(&self) -> f64 {
        match self {
            NoiseSpec::Partial { fraction } => *fraction,
            NoiseSpec::Snr { db } => *db,
        }
    }

    /// Applies the noise to a lead-major record of `leads` rows, seeded.
    pub fn apply(&self, data: &mut [f32], leads: usize, seed: u64) -> NoiseApplied {
        let mut rng = StdRng::seed_from_u64(seed);
        match *self {
            NoiseSpec::Partial { fraction } => partial_white_noise(data, leads, fraction, &mut rng),
            NoiseSpec::Snr { db } => {
                gaussian_snr(data, leads, db, &mut rng);
                NoiseApplied::default()
            }
        }
    }
}

/// What a partial-noise draw did (for the per-record output).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoiseApplied {
    pub start: usize,
    pub len: usize,
    pub sigma: f64,
}

/// One standard normal sample (Box-Muller; `u1` in (0, 1]).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// MEIT's partial white noise on a lead-major record (see the module docs).
pub fn partial_white_noise(
    data: &mut [f32],
    leads: usize,
    fraction: f64,
    rng: &mut StdRng,
) -> NoiseApplied {
    let n = data.len().checked_div(leads).unwrap_or(0);
    let max_len = ((fraction.clamp(0.0, 1.0) * n as f64).floor() as usize).min(n);
    if max_len == 0 {
        return NoiseApplied::default();
    }
    let len = rng.random_range(1..=max_len);
    let start = rng.random_range(0..=n - len);
    let sigma = rng.random::<f64>() * PARTIAL_SIGMA_MAX;
    for l in 0..leads {
        for v in &mut data[l * n + start..l * n + start + len] {
            *v += (sigma * standard_normal(rng)) as f32;
        }
    }
    NoiseApplied { start, len, sigma }
}

/// Adds white Gaussian noise to every lead at exactly `snr_db` (empirical powers).
pub fn gaussian_snr(data: &mut [f32], leads: usize, snr_db: f64, rng: &mut StdRng) {
    let n = data.len().checked_div(leads).unwrap_or(0);
    for l in 0..leads {
        let lead = &mut data[l * n..(l + 1) * n];
        let p_sig = power(lead);
        let noise: Vec<f64> = (0..n).map(|_| standard_normal(rng)).collect();
        let p_noise = noise.iter().map(|v| v * v).sum::<f64>() / n.max(1) as f64;
        if p_sig <= 0.0 || p_noise <= 0.0 {
            continue;
        }
        let scale = (p_sig / 10f64.powf(snr_db / 10.0) / p_noise).sqrt();
        for (v, e) in lead.iter_mut().zip(&noise) {
            *v = (*v as f64 + scale * e) as f32;
        }
    }
}

/// Mean square of a signal.
pub fn power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64
}

/// SNR in dB of `noisy` against `clean` (noise = difference), for checks.
pub fn snr_db(clean: &[f32], noisy: &[f32]) -> f64 {
    let diff: Vec<f32> = clean.iter().zip(noisy).map(|(a, b)| b - a).collect();
    10.0 * (power(clean) / power(&diff)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(leads: usize, n: usize) -> Vec<f32> {
        (0..leads * n)
            .map(|i| ((i % n) as f32 * 0.01 + (i / n) as f32).sin())
            .collect()
    }

    #[test]
    fn partial_window_respects_the_bound_and_is_shared() {
        for seed in 0..200 {
            let clean = sine(12, 5000);
            for &p in &PARTIAL_FRACTIONS {
                let mut x = clean.clone();
                let a = NoiseSpec::Partial { fraction: p }.apply(&mut x, 12, seed);
                assert!(a.len >= 1 && a.len <= (p * 5000.0).floor() as usize);
                assert!(a.start + a.len <= 5000);
                assert!((0.0..PARTIAL_SIGMA_MAX).contains(&a.sigma));
                for l in 0..12 {
                    for i in 0..5000 {
                        let changed = x[l * 5000 + i] != clean[l * 5000 + i];
                        if changed {
                            assert!(i >= a.start && i < a.start + a.len, "outside window");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn snr_is_achieved_within_0_1_db() {
        let clean = sine(12, 5000);
        for &db in &SNR_LEVELS_DB {
            let mut x = clean.clone();
            NoiseSpec::Snr { db }.apply(&mut x, 12, 7);
            for l in 0..12 {
                let r = l * 5000..(l + 1) * 5000;
                let got = snr_db(&clean[r.clone()], &x[r]);
                assert!((got - db).abs() < 0.1, "lead {l}: {got} dB for {db} dB");
            }
        }
    }

    #[test]
    fn deterministic_by_seed() {
        let clean = sine(12, 5000);
        for spec in NoiseSpec::sweep() {
            let (mut a, mut b, mut c) = (clean.clone(), clean.clone(), clean.clone());
            spec.apply(&mut a, 12, 42);
            spec.apply(&mut b, 12, 42);
            spec.apply(&mut c, 12, 43);
            assert_eq!(a, b, "{}", spec.label());
            assert_ne!(a, c, "{}", spec.label());
        }
    }

    #[test]
    fn normal_samples_have_unit_variance() {
        let mut rng = StdRng::seed_from_u64(1);
        let v: Vec<f64> = (0..20000).map(|_| standard_normal(&mut rng)).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
        assert!(m.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{m} {var}");
    }

    #[test]
    fn labels() {
        let s = NoiseSpec::sweep();
        assert_eq!(s.len(), 9);
        assert_eq!(s[0].label(), "partial_p0.05");
        assert_eq!(s[4].label(), "snr_24db");
        assert_eq!(s[8].label(), "snr_0db");
    }
}

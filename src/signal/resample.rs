//! Polyphase rational resampling, reproducing `scipy.signal.resample_poly(x, up, down)`
//! with its defaults (`window=('kaiser', 5.0)`, `padtype='constant'`, `cval=0`).

use std::f64::consts::PI;

/// Kaiser window shape parameter used by `resample_poly`'s default window.
pub const KAISER_BETA: f64 = 5.0;

/// Greatest common divisor.
pub fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Modified Bessel function of the first kind, order 0 (power series; accurate to a few
/// ulps for the arguments used by Kaiser windows).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// `scipy.signal.windows.kaiser(m, beta, sym=True)`.
fn kaiser(m: usize, beta: f64) -> Vec<f64> {
    if m == 1 {
        return vec![1.0];
    }
    let alpha = (m as f64 - 1.0) / 2.0;
    let denom = bessel_i0(beta);
    (0..m)
        .map(|n| {
            let r = (n as f64 - alpha) / alpha;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// `scipy.signal.firwin(numtaps, cutoff, window=('kaiser', beta))`: low-pass with
/// `cutoff` relative to Nyquist, scaled to unit DC gain.
fn firwin_lowpass(numtaps: usize, cutoff: f64, beta: f64) -> Vec<f64> {
    let alpha = 0.5 * (numtaps as f64 - 1.0);
    let win = kaiser(numtaps, beta);
    let h: Vec<f64> = (0..numtaps)
        .zip(&win)
        .map(|(i, w)| {
            let m = i as f64 - alpha;
            cutoff * sinc(cutoff * m) * w
        })
        .collect();
    let s: f64 = h.iter().sum();
    h.into_iter().map(|v| v / s).collect()
}

/// `scipy.signal._upfirdn._output_len`.
fn upfirdn_output_len(len_h: usize, in_len: usize, up: usize, down: usize) -> usize {
    let in_len_copy = in_len + len_h.div_ceil(up) - 1;
    (in_len_copy * up).div_ceil(down)
}

/// `scipy.signal.resample_poly(x, up, down)`: upsample by `up`, apply a Kaiser-windowed
/// (beta 5) FIR low-pass of `2 * 10 * max(up, down) + 1` taps with cutoff
/// `1 / max(up, down)` of Nyquist (gain `up`), downsample by `down`, zero padding outside
/// the signal. `up` and `down` are first reduced by their gcd. Output length is
/// `ceil(x.len() * up / down)`. `up == 0` or `down == 0` gives an empty output.
pub fn resample_poly(x: &[f64], up: usize, down: usize) -> Vec<f64> {
    if up == 0 || down == 0 {
        return Vec::new();
    }
    let g = gcd(up, down);
    let (up, down) = (up / g, down / g);
    if up == 1 && down == 1 {
        return x.to_vec();
    }
    let n_in = x.len();
    let n_out = (n_in * up).div_ceil(down);
    let max_rate = up.max(down);
    let half_len = 10 * max_rate;
    let fir = firwin_lowpass(2 * half_len + 1, 1.0 / max_rate as f64, KAISER_BETA);
    let n_pre_pad = down - half_len % down;
    let n_pre_remove = (half_len + n_pre_pad) / down;
    let mut n_post_pad = 0;
    while upfirdn_output_len(fir.len() + n_pre_pad + n_post_pad, n_in, up, down)
        < n_out + n_pre_remove
    {
        n_post_pad += 1;
    }
    let mut h = vec![0.0; n_pre_pad];
    h.extend(fir.iter().map(|v| v * up as f64));
    h.extend(std::iter::repeat_n(0.0, n_post_pad));
    // upfirdn: y[j] = sum_k h[j*down - k*up] * x[k]; keep j in n_pre_remove..+n_out.
    (n_pre_remove..n_pre_remove + n_out)
        .map(|j| {
            let t = j * down;
            // k ranges over t - k*up in [0, h.len()), 0 <= k < n_in.
            let k_max = (t / up).min(n_in.saturating_sub(1));
            let k_min = (t + 1).saturating_sub(h.len()).div_ceil(up);
            if n_in == 0 || k_min > k_max {
                return 0.0;
            }
            (k_min..=k_max).map(|k| h[t - k * up] * x[k]).sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i0_known_values() {
        // scipy.special.i0(5.0) = 27.239871823604442, i0(1.0) = 1.2660658777520082
        assert!((bessel_i0(5.0) - 27.239_871_823_604_442).abs() < 1e-12);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_2).abs() < 1e-15);
        assert_eq!(bessel_i0(0.0), 1.0);
    }

    #[test]
    fn kaiser_is_symmetric_with_unit_peak() {
        let w = kaiser(11, 5.0);
        assert!((w[5] - 1.0).abs() < 1e-15);
        for i in 0..11 {
            assert!((w[i] - w[10 - i]).abs() < 1e-15);
        }
        // scipy.signal.windows.kaiser(11, 5.0)[0] == 1/i0(5)
        assert!((w[0] - 1.0 / 27.239_871_823_604_442).abs() < 1e-12);
    }

    #[test]
    fn output_lengths() {
        assert_eq!(resample_poly(&[1.0; 1000], 5, 1).len(), 5000);
        assert_eq!(resample_poly(&[1.0; 4000], 5, 4).len(), 5000);
        assert_eq!(resample_poly(&[1.0; 7], 1, 2).len(), 4);
        assert_eq!(resample_poly(&[1.0; 7], 3, 3), vec![1.0; 7]);
        assert!(resample_poly(&[], 5, 1).is_empty());
        assert!(resample_poly(&[1.0], 0, 1).is_empty());
    }

    #[test]
    fn constant_is_preserved_in_the_interior() {
        for (up, down) in [(5, 1), (2, 1), (1, 2), (5, 4), (25, 18)] {
            let y = resample_poly(&[2.0; 2000], up, down);
            let n = y.len();
            for v in &y[n / 4..3 * n / 4] {
                // Kaiser(beta 5) passband ripple: scipy output has the same ~1e-3 DC ripple.
                assert!((v - 2.0).abs() < 5e-3, "{up}/{down}: {v}");
            }
        }
    }

    #[test]
    fn upsampling_keeps_original_samples_approximately() {
        let x: Vec<f64> = (0..500).map(|i| (i as f64 * 0.05).sin()).collect();
        let y = resample_poly(&x, 5, 1);
        for i in 50..450 {
            assert!((y[5 * i] - x[i]).abs() < 1e-3);
        }
    }
}

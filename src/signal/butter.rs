//! Butterworth IIR design, reproducing `scipy.signal.butter(N, Wn, btype, fs=fs)` with
//! `output='ba'`.
//!
//! The steps mirror scipy exactly: analog prototype (`buttap`), frequency pre-warping,
//! low-pass to band-pass transformation (`lp2bp_zpk`), bilinear transform (`bilinear_zpk`)
//! and expansion of zeros/poles into polynomial coefficients (`zpk2tf`, i.e. `numpy.poly`).

use std::f64::consts::PI;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Minimal complex number used by the filter design.
#[derive(Clone, Copy, Debug, PartialEq)]
struct C {
    re: f64,
    im: f64,
}

impl C {
    const fn new(re: f64, im: f64) -> Self {
        C { re, im }
    }
    fn real(re: f64) -> Self {
        C { re, im: 0.0 }
    }
    /// Principal square root, with glibc's `csqrt` algorithm (what numpy calls), which
    /// avoids cancellation by deriving one part from `Im z = 2 Re Im`.
    fn sqrt(self) -> Self {
        let (x, y) = (self.re, self.im);
        if y == 0.0 {
            return if x >= 0.0 {
                C::new(x.sqrt(), y)
            } else {
                C::new(0.0, (-x).sqrt().copysign(y))
            };
        }
        let d = x.hypot(y);
        let (r, s) = if x > 0.0 {
            let r = (0.5 * (d + x)).sqrt();
            (r, 0.5 * (y / r))
        } else {
            let s = (0.5 * (d - x)).sqrt();
            ((0.5 * (y / s)).abs(), s)
        };
        C::new(r, s.copysign(y))
    }
    fn exp_i(theta: f64) -> Self {
        C::new(theta.cos(), theta.sin())
    }
}

impl Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
}
impl Sub for C {
    type Output = C;
    fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
}
impl Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}
/// numpy's complex division (Smith's algorithm), for bit-compatible results.
impl Div for C {
    type Output = C;
    fn div(self, o: C) -> C {
        if o.re.abs() >= o.im.abs() {
            let rat = o.im / o.re;
            let scl = 1.0 / (o.re + o.im * rat);
            C::new(
                (self.re + self.im * rat) * scl,
                (self.im - self.re * rat) * scl,
            )
        } else {
            let rat = o.re / o.im;
            let scl = 1.0 / (o.im + o.re * rat);
            C::new(
                (self.re * rat + self.im) * scl,
                (self.im * rat - self.re) * scl,
            )
        }
    }
}
impl Neg for C {
    type Output = C;
    fn neg(self) -> C {
        C::new(-self.re, -self.im)
    }
}

/// `numpy.poly`: coefficients (highest power first) of the monic polynomial with these roots,
/// built by successive `numpy.convolve(a, [1, -root])`.
///
/// The rounding order reproduces numpy's: the convolution's interior outputs are 2-term
/// dot products `a[k-1] * (-r) + a[k] * 1` evaluated by BLAS `zdotu` (separate real/imag
/// partial sums, combined at the end). This makes the coefficients bit-identical to scipy's
/// for the service's filter; the order-8 transfer function is so ill-conditioned that a few
/// ulps in `a` move `filtfilt`'s output by ~5e-5 near the edges.
fn poly(roots: &[C]) -> Vec<C> {
    let mut a = vec![C::real(1.0)];
    for &r in roots {
        let n = -r;
        let len = a.len();
        let mut next = Vec::with_capacity(len + 1);
        next.push(a[0]);
        for k in 1..len {
            let (x0, x1) = (a[k - 1], a[k]);
            let dot0 = x0.re * n.re + x1.re;
            let dot1 = x0.im * n.im;
            let dot2 = x0.re * n.im;
            let dot3 = x0.im * n.re + x1.im;
            next.push(C::new(dot0 - dot1, dot2 + dot3));
        }
        next.push(a[len - 1] * n);
        a = next;
    }
    a
}

/// Band-pass Butterworth filter of analog-prototype order `order` (digital order `2*order`)
/// with edges `low_hz`..`high_hz` at sampling rate `fs`; returns `(b, a)` with `a[0] == 1`,
/// exactly as `scipy.signal.butter(order, [low_hz, high_hz], btype='band', fs=fs)`.
///
/// Returns `None` when the edges are not `0 < low_hz < high_hz < fs/2` or `order == 0`.
pub fn butter_bandpass(
    order: usize,
    low_hz: f64,
    high_hz: f64,
    fs: f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let nyq = fs / 2.0;
    let ok = order > 0
        && fs.is_finite()
        && low_hz.is_finite()
        && high_hz.is_finite()
        && low_hz > 0.0
        && low_hz < high_hz
        && high_hz < nyq;
    if !ok {
        return None;
    }
    // scipy: Wn = 2*Wn/fs, then works with fs = 2: warped = 2*fs*tan(pi*Wn/fs).
    let wn = [2.0 * low_hz / fs, 2.0 * high_hz / fs];
    let fs_n = 2.0;
    let warped = [
        2.0 * fs_n * (PI * wn[0] / fs_n).tan(),
        2.0 * fs_n * (PI * wn[1] / fs_n).tan(),
    ];
    // buttap: p = -exp(1j*pi*arange(-N+1, N, 2)/(2N)), no zeros, k = 1.
    let n = order as i64;
    let proto: Vec<C> = (0..order)
        .map(|i| {
            let m = (-n + 1 + 2 * i as i64) as f64;
            -C::exp_i(PI * m / (2.0 * order as f64))
        })
        .collect();
    // lp2bp_zpk
    let bw = warped[1] - warped[0];
    let wo = (warped[0] * warped[1]).sqrt();
    let wo2 = C::real(wo * wo);
    let p_lp: Vec<C> = proto.iter().map(|&p| p * C::real(bw / 2.0)).collect();
    let mut p_bp: Vec<C> = p_lp.iter().map(|&p| p + (p * p - wo2).sqrt()).collect();
    p_bp.extend(p_lp.iter().map(|&p| p - (p * p - wo2).sqrt()));
    let z_bp = vec![C::real(0.0); order]; // degree = len(p) - len(z) zeros at the origin
    let k_bp = bw.powi(order as i32);
    // bilinear_zpk with fs = 2 (fs2 = 4)
    let fs2 = C::real(2.0 * fs_n);
    let mut z_z: Vec<C> = z_bp.iter().map(|&z| (fs2 + z) / (fs2 - z)).collect();
    let p_z: Vec<C> = p_bp.iter().map(|&p| (fs2 + p) / (fs2 - p)).collect();
    z_z.extend(std::iter::repeat_n(C::real(-1.0), p_bp.len() - z_bp.len()));
    let num = z_bp.iter().fold(C::real(1.0), |acc, &z| acc * (fs2 - z));
    let den = p_bp.iter().fold(C::real(1.0), |acc, &p| acc * (fs2 - p));
    let k_z = k_bp * (num / den).re;
    // zpk2tf
    let b = poly(&z_z).iter().map(|c| k_z * c.re).collect();
    let a = poly(&p_z).iter().map(|c| c.re).collect();
    Some((b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poly_of_real_roots() {
        let p = poly(&[C::real(1.0), C::real(2.0)]);
        let re: Vec<f64> = p.iter().map(|c| c.re).collect();
        assert_eq!(re, vec![1.0, -3.0, 2.0]);
    }

    #[test]
    fn complex_sqrt_principal_branch() {
        let s = C::new(-4.0, 0.0).sqrt();
        assert!((s.re).abs() < 1e-15 && (s.im - 2.0).abs() < 1e-15);
        let s = C::new(-4.0, -0.0).sqrt();
        assert!((s.im + 2.0).abs() < 1e-15);
    }

    #[test]
    fn rejects_invalid_band() {
        assert!(butter_bandpass(4, 0.5, 40.0, 80.0).is_none());
        assert!(butter_bandpass(4, 40.0, 0.5, 500.0).is_none());
        assert!(butter_bandpass(0, 0.5, 40.0, 500.0).is_none());
        assert!(butter_bandpass(4, 0.5, 40.0, f64::NAN).is_none());
    }

    #[test]
    fn unit_gain_at_center_frequency() {
        // |H(e^{jw0})| == 1 at the geometric centre of the warped band.
        for fs in [250.0, 500.0, 1000.0] {
            let (b, a) = butter_bandpass(4, 0.5, 40.0, fs).unwrap();
            let w_lo = (PI * 0.5 / fs).tan();
            let w_hi = (PI * 40.0 / fs).tan();
            let w0 = 2.0 * (w_lo * w_hi).sqrt().atan();
            let eval = |c: &[f64]| {
                c.iter().enumerate().fold(C::real(0.0), |acc, (k, &v)| {
                    acc + C::real(v) * C::exp_i(-w0 * k as f64)
                })
            };
            let h = eval(&b) / eval(&a);
            let g = h.re.hypot(h.im);
            // tf-form evaluation near z = 1 is ill-conditioned at high fs.
            assert!((g - 1.0).abs() < 1e-4, "fs={fs}: {g}");
        }
    }
}

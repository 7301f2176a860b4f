//! The SwiGLU activation on plain slices, and the AVX-512 `exp` it and the fused attention share.
//!
//! `silu(gate) * up` over a stacked `[gate | up]` matmul output: one pass, no intermediate
//! tensors (as candle ops, SiLU, the strided views and the product cost more than the matmul
//! they follow at decode sizes).

use super::par::{run_split, OutPtr};

/// `m (rows, i) = silu(gu[:, ..i]) * gu[:, i..]` for `gu: (rows, 2i)` row-major.
/// Rows run in parallel on candle's worker pool when there are many (prefill).
pub fn silu_mul(gu: &[f32], rows: usize, i: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * i];
    silu_mul_into(gu, rows, i, &mut out);
    out
}

/// As [`silu_mul`], into `out: (rows, i)`.
pub fn silu_mul_into(gu: &[f32], rows: usize, i: usize, out: &mut [f32]) {
    debug_assert_eq!(gu.len(), rows * 2 * i);
    debug_assert_eq!(out.len(), rows * i);
    let ptr = OutPtr(out.as_mut_ptr());
    let run = |range: std::ops::Range<usize>| {
        for r in range {
            // SAFETY: each row of `out` is written by the one call that owns its index.
            let o = unsafe { ptr.slice(r * i, i) };
            silu_mul_row(&gu[r * 2 * i..(r + 1) * 2 * i], o);
        }
    };
    // An exp and a division per element: worth the worker pool from a few rows (a batched
    // decode step) on, where plain element-wise work would stay on the calling thread.
    run_split(rows, rows * i * SILU_WORK, run);
}

/// One row: `o = silu(gu[..i]) * gu[i..]` for `gu` of `2i` values and `o` of `i`.
pub fn silu_mul_row(gu: &[f32], o: &mut [f32]) {
    let i = o.len();
    let (g, u) = gu[..2 * i].split_at(i);
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() && i.is_multiple_of(16) {
        // SAFETY: AVX-512 F present; the three slices hold `i` floats, a multiple of 16.
        unsafe { avx512::silu_mul(g, u, o) };
        return;
    }
    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
        *o = g / (1.0 + (-g).exp()) * u;
    }
}

/// Work of one SwiGLU element relative to a plain element-wise op, for [`run_split`].
const SILU_WORK: usize = 6;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// `e^x` with `x` clamped to at most 88 and exactly 0 below -87 (so that no subnormal
    /// value, which costs a microcode assist in every later multiply, comes out of it), relative
    /// error about 2e-7: `x = n ln2 + r`, a degree-6 polynomial for `e^r` on `|r| <= ln2 / 2`,
    /// scaled by `2^n`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp(x: __m512) -> __m512 {
        let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(-87.0));
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n =
            _mm512_roundscale_ps::<0>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n))
    }

    /// # Safety
    /// AVX-512 F present; `g`, `u`, `o` hold the same multiple of 16 floats.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn silu_mul(g: &[f32], u: &[f32], o: &mut [f32]) {
        let one = _mm512_set1_ps(1.0);
        for c in 0..g.len() / 16 {
            let gv = _mm512_loadu_ps(g.as_ptr().add(16 * c));
            let uv = _mm512_loadu_ps(u.as_ptr().add(16 * c));
            let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), gv));
            let s = _mm512_div_ps(gv, _mm512_add_ps(one, e));
            _mm512_storeu_ps(o.as_mut_ptr().add(16 * c), _mm512_mul_ps(s, uv));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_mul_matches_the_formula() {
        for (rows, i) in [(3, 48), (80, 1024)] {
            let gu: Vec<f32> = (0..rows * 2 * i)
                .map(|j| ((j * 37 % 101) as f32 - 50.0) / 4.0)
                .collect();
            let got = silu_mul(&gu, rows, i);
            for r in 0..rows {
                for c in 0..i {
                    let (g, u) = (gu[r * 2 * i + c] as f64, gu[r * 2 * i + i + c] as f64);
                    let want = g / (1.0 + (-g).exp()) * u;
                    let d = (got[r * i + c] as f64 - want).abs();
                    assert!(
                        d <= 1e-5 * want.abs().max(1.0),
                        "{r},{c}: {} vs {want}",
                        got[r * i + c]
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_exp_is_accurate() {
        if !crate::model::qmatmul::has_avx512() {
            eprintln!("no AVX-512 here: the vector exp is not exercised");
            return;
        }
        use std::arch::x86_64::*;
        for base in [-100.0f32, -20.0, -1.0, 0.0, 3.0, 60.0, 90.0] {
            let xs: Vec<f32> = (0..16).map(|j| base + j as f32 * 0.37).collect();
            let mut out = [0f32; 16];
            // SAFETY: AVX-512 checked above; 16 floats each.
            unsafe {
                let v = avx512::exp(_mm512_loadu_ps(xs.as_ptr()));
                _mm512_storeu_ps(out.as_mut_ptr(), v);
            }
            for (x, y) in xs.iter().zip(out) {
                if *x < -87.0 {
                    assert_eq!(y, 0.0, "exp({x}) = {y}, want 0 (no subnormals)");
                    continue;
                }
                let want = (x.min(88.0) as f64).exp();
                assert!(
                    ((y as f64) - want).abs() <= 1e-6 * want,
                    "exp({x}) = {y}, want {want}"
                );
            }
        }
    }
}

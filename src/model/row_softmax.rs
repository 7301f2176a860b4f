//! Row softmax pieces on AVX-512 (with a portable fallback): a row's log-sum-exp, the softmax
//! scaled by a row gradient, and softmax in place. Shared by the cross-entropy over the
//! vocabulary and the training attention.
/// Log-sum-exp of one row.
pub(crate) fn row_lse(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present.
        return unsafe { avx512::row_lse(row) };
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    max + sum.ln()
}

/// `d = g * exp(row - lse)` (the softmax scaled by the row's incoming gradient).
pub(crate) fn scaled_softmax(row: &[f32], lse: f32, g: f32, d: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present; `d` as long as `row`.
        return unsafe { avx512::scaled_softmax(row, lse, g, d) };
    }
    for (d, &x) in d.iter_mut().zip(row) {
        *d = g * (x - lse).exp();
    }
}

/// `row = softmax(row)` in place.
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    let lse = row_lse(row);
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present; source and destination are the same row.
        return unsafe { avx512::scaled_raw(row.as_ptr(), row.as_mut_ptr(), row.len(), lse, 1.0) };
    }
    for v in row.iter_mut() {
        *v = (*v - lse).exp();
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::act::avx512::exp;

    fn mask(k: usize) -> __mmask16 {
        if k >= 16 {
            0xFFFF
        } else {
            (1u16 << k) - 1
        }
    }

    /// # Safety
    /// AVX-512 F present.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn row_lse(row: &[f32]) -> f32 {
        let (p, n) = (row.as_ptr(), row.len());
        let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in (0..n).step_by(16) {
            let m = mask(n - i);
            mv = _mm512_mask_max_ps(mv, m, mv, _mm512_maskz_loadu_ps(m, p.add(i)));
        }
        let max = _mm512_reduce_max_ps(mv);
        let maxv = _mm512_set1_ps(max);
        let mut sv = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let m = mask(n - i);
            let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(i)), maxv));
            sv = _mm512_add_ps(sv, _mm512_maskz_mov_ps(m, e));
        }
        max + _mm512_reduce_add_ps(sv).ln()
    }

    /// # Safety
    /// AVX-512 F present; `d` as long as `row`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn scaled_softmax(row: &[f32], lse: f32, g: f32, d: &mut [f32]) {
        scaled_raw(row.as_ptr(), d.as_mut_ptr(), row.len(), lse, g)
    }

    /// `q[i] = g * exp(p[i] - lse)` for `i < n`; `q` may be `p`.
    ///
    /// # Safety
    /// AVX-512 F present; `p` and `q` address `n` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn scaled_raw(p: *const f32, q: *mut f32, n: usize, lse: f32, g: f32) {
        let (lv, gv) = (_mm512_set1_ps(lse), _mm512_set1_ps(g));
        for i in (0..n).step_by(16) {
            let m = mask(n - i);
            let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(i)), lv));
            _mm512_mask_storeu_ps(q.add(i), m, _mm512_mul_ps(gv, e));
        }
    }
}

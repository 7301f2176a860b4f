//! Slice helpers written so the compiler vectorises them.

/// Dot product in 64 independent lanes (a plain `sum()` over f32 is a serial chain that the
/// compiler may not reorder; 64 lanes keep every FMA unit busy).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 64];
    let (ac, bc) = (a.chunks_exact(64), b.chunks_exact(64));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..64 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `dst[..] += w * src[..]`
#[inline]
pub fn axpy(dst: &mut [f32], w: f32, src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += w * s;
    }
}

/// Prefetches every cache line of `buf` into L2 (a hint: no effect on results).
pub(crate) fn prefetch_l2<T>(buf: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let p = buf.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(buf)).step_by(64) {
            // SAFETY: a prefetch never faults; the address is within `buf`.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = buf;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_axpy_match_plain_loops() {
        for n in [0, 5, 64, 150] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "n = {n}");
            let mut d = b.clone();
            axpy(&mut d, 2.0, &a);
            for i in 0..n {
                assert_eq!(d[i], b[i] + 2.0 * a[i]);
            }
        }
    }
}

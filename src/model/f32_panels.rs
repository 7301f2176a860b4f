//! f32 matmul against a constant weight on AVX-512, for the frozen backbone in training.
//!
//! candle's f32 GEMM (the `gemm` crate on a stable toolchain) runs 256-bit kernels; a frozen
//! weight can instead be packed once into panels of 32 output columns (`[panel][k][32]`, so the
//! kernel reads one panel as a contiguous stream) and multiplied with a register-blocked 512-bit
//! kernel: 8 input rows x 32 outputs in 16 accumulators, one broadcast and two FMAs per input
//! value. Panels are split across candle's worker pool. Same arithmetic as a plain matmul
//! (f32 products summed over `k` in order), so results match it to rounding.
use super::par::{run_split, OutPtr};

/// Output columns per panel (two 16-lane registers).
const PANEL: usize = 32;
/// Input rows per kernel call.
const ROWS: usize = 8;

/// A `(n, k)` weight, packed for `x (m, k) W^T`.
#[derive(Debug, Clone)]
pub struct F32Panels {
    n: usize,
    k: usize,
    /// `[panel][k][PANEL]`, zero past column `n`.
    data: Vec<f32>,
}

/// Whether this CPU runs the kernel (AVX-512 F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::qmatmul::has_avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl F32Panels {
    /// From a row-major `(n, k)` matrix; `None` when the sizes disagree or are zero.
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Option<Self> {
        if n == 0 || k == 0 || w.len() != n * k {
            return None;
        }
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0f32; panels * k * PANEL];
        for (i, row) in w.chunks_exact(k).enumerate() {
            let (p, j) = (i / PANEL, i % PANEL);
            for (c, &v) in row.iter().enumerate() {
                data[(p * k + c) * PANEL + j] = v;
            }
        }
        Some(F32Panels { n, k, data })
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// `out (m, n) = x (m, k) W^T`; call only when [`available`].
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        assert_eq!(x.len(), m * self.k, "f32 panels: input size");
        assert_eq!(out.len(), m * self.n, "f32 panels: output size");
        let (n, k) = (self.n, self.k);
        let dst = OutPtr(out.as_mut_ptr());
        run_split(n.div_ceil(PANEL), m * n * k, |panels| {
            for p in panels {
                let w = &self.data[p * k * PANEL..(p + 1) * k * PANEL];
                let cols = (n - p * PANEL).min(PANEL);
                for r0 in (0..m).step_by(ROWS) {
                    let rows = (m - r0).min(ROWS);
                    let xs = &x[r0 * k..(r0 + rows) * k];
                    // SAFETY: AVX-512 F present (caller checks `available`); `xs` holds `rows`
                    // rows of `k`, `w` a panel of `k * PANEL`; the output block (rows
                    // `r0..r0 + rows`, columns of panel `p`) belongs to this call alone.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx512::block(xs, rows, k, w, dst.get().add(r0 * n + p * PANEL), n, cols)
                    };
                    #[cfg(not(target_arch = "x86_64"))]
                    unsafe {
                        portable_block(xs, rows, k, w, dst.get().add(r0 * n + p * PANEL), n, cols)
                    };
                }
            }
        });
    }
}

/// # Safety
/// As for `avx512::block`, without the CPU feature.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn portable_block(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    out: *mut f32,
    ld: usize,
    cols: usize,
) {
    for r in 0..rows {
        for j in 0..cols {
            let s: f32 = (0..k).map(|c| x[r * k + c] * w[c * PANEL + j]).sum();
            *out.add(r * ld + j) = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::PANEL;

    /// `R` rows of `x` against one panel, into `out` (row stride `ld`, `cols` valid columns).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        out: *mut f32,
        ld: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for c in 0..k {
            let w0 = _mm512_loadu_ps(w.add(c * PANEL));
            let w1 = _mm512_loadu_ps(w.add(c * PANEL + 16));
            for (r, a) in acc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*x.add(r * k + c));
                a[0] = _mm512_fmadd_ps(xb, w0, a[0]);
                a[1] = _mm512_fmadd_ps(xb, w1, a[1]);
            }
        }
        let m0: __mmask16 = if cols >= 16 {
            0xFFFF
        } else {
            (1u16 << cols) - 1
        };
        let m1: __mmask16 = if cols >= 32 {
            0xFFFF
        } else if cols > 16 {
            (1u16 << (cols - 16)) - 1
        } else {
            0
        };
        for (r, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(r * ld), m0, a[0]);
            _mm512_mask_storeu_ps(out.add(r * ld + 16), m1, a[1]);
        }
    }

    /// # Safety
    /// AVX-512 F present; `x` holds `rows` (1-8) rows of `k`; `w` one panel of `k * PANEL`;
    /// `out` addresses `rows` rows of stride `ld` with `cols` (1-32) writable values each.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block(
        x: &[f32],
        rows: usize,
        k: usize,
        w: &[f32],
        out: *mut f32,
        ld: usize,
        cols: usize,
    ) {
        let (x, w) = (x.as_ptr(), w.as_ptr());
        match rows {
            8 => kernel::<8>(x, k, w, out, ld, cols),
            7 => kernel::<7>(x, k, w, out, ld, cols),
            6 => kernel::<6>(x, k, w, out, ld, cols),
            5 => kernel::<5>(x, k, w, out, ld, cols),
            4 => kernel::<4>(x, k, w, out, ld, cols),
            3 => kernel::<3>(x, k, w, out, ld, cols),
            2 => kernel::<2>(x, k, w, out, ld, cols),
            _ => kernel::<1>(x, k, w, out, ld, cols),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_equal_a_plain_matmul() {
        if !available() {
            eprintln!("no AVX-512 here: the f32 panel kernel is not exercised");
            return;
        }
        // whole and partial panels and row blocks, a long k
        for (m, n, k) in [(1, 5, 3), (8, 32, 16), (13, 70, 37), (37, 96, 600)] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let p = F32Panels::from_f32(&w, n, k).expect("shape");
            let mut got = vec![f32::NAN; m * n];
            p.matmul(&x, m, &mut got);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|c| x[i * k + c] as f64 * w[j * k + c] as f64)
                        .sum();
                    let d = (got[i * n + j] as f64 - want).abs();
                    assert!(
                        d <= 1e-5 * (k as f64),
                        "{m}x{n}x{k} at {i},{j}: {} vs {want}",
                        got[i * n + j]
                    );
                }
            }
        }
    }
}

//! f32 matmul against a constant weight on AVX-512, for the frozen backbone in training.
//!
//! candle's f32 GEMM (the `gemm` crate on a stable toolchain) runs 256-bit kernels; a frozen
//! weight can instead be packed once into panels of 32 output columns (`[panel][k][32]`, so the
//! kernel reads one panel as a contiguous stream) and multiplied with a register-blocked 512-bit
//! kernel: [`MR`] input rows x 32 outputs in 28 accumulators, one broadcast and two FMAs per
//! input value. `k` runs in slices of at most [`KC`], so the slice of a panel that every row
//! block reuses stays in L1. Threads take tiles of row chunks by panel groups (inputs and
//! weights of a tile stay in the core's L2); for a long `k` (the LM head's input gradient)
//! they take runs of panels over every row instead, so the weight is read from memory once. Same arithmetic as a plain matmul
//! up to the order of the sums, so results match it to rounding.
use super::par::{run_split, OutPtr};

/// Output columns per panel (two 16-lane registers).
const PANEL: usize = 32;
/// Input rows per kernel call.
const MR: usize = 14;
/// Largest `k` slice per kernel call: a panel slice of `KC * PANEL` f32 (16 KiB) stays in L1.
const KC: usize = 128;
/// Work items are tiles of this many row blocks by [`GROUP_PANELS`] panels (56 x 192 outputs),
/// handed out group by group so a thread's consecutive tiles share their weights in L2.
const CHUNK_BLOCKS: usize = 4;
const GROUP_PANELS: usize = 6;
/// A chunk of input rows up to this size stays in L2, and each panel runs over all of `k`.
/// Larger ones run one `k` slice at a time across every panel.
const A_IN_L2: usize = 1 << 20;

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
        if m == 0 {
            return;
        }
        let (n, k) = (self.n, self.k);
        let nt = candle_core::utils::get_num_threads().max(1);
        let panels = n.div_ceil(PANEL);
        let dst = OutPtr(out.as_mut_ptr());
        let (chunk, pg) = (CHUNK_BLOCKS * MR, GROUP_PANELS);
        if chunk.min(m) * k * 4 <= A_IN_L2 {
            let chunks = m.div_ceil(chunk);
            let groups = panels.div_ceil(pg);
            run_split(chunks * groups, m * n * k, |range| {
                for item in range {
                    let (g, ch) = (item / chunks, item % chunks);
                    let r0 = ch * chunk;
                    let ps = g * pg..((g + 1) * pg).min(panels);
                    // SAFETY: this block of `out` belongs to this item alone.
                    unsafe { self.rows(x, r0, chunk.min(m - r0), ps, dst, false) };
                }
            });
        } else {
            // A long k: row chunks would each read the whole weight from memory, so threads
            // take runs of panels instead, each over every row.
            let parts = (2 * nt).min(panels);
            run_split(parts, m * n * k, |range| {
                for part in range {
                    let ps = part * panels / parts..(part + 1) * panels / parts;
                    // SAFETY: the columns of panels `ps` belong to this part alone.
                    unsafe { self.rows(x, 0, m, ps, dst, true) };
                }
            });
        }
    }

    /// Rows `r0..r0 + rows` and the columns of `panels` of the product; with `long_k`, one `k`
    /// slice at a time across every panel, else each panel over all of `k`.
    ///
    /// # Safety
    /// AVX-512 F present; no other thread writes this block of `out` meanwhile.
    unsafe fn rows(
        &self,
        x: &[f32],
        r0: usize,
        rows: usize,
        panels: std::ops::Range<usize>,
        out: OutPtr,
        long_k: bool,
    ) {
        let (n, k) = (self.n, self.k);
        let blocks = rows.div_ceil(MR);
        // even k slices of at most KC
        let slices = k.div_ceil(KC);
        let kc = k.div_ceil(slices);
        // slice `s` of panel `p` over every row block
        let run = |p: usize, s: usize| {
            let (s0, s1) = (s * kc, ((s + 1) * kc).min(k));
            let w = &self.data[(p * k + s0) * PANEL..(p * k + s1) * PANEL];
            let cols = (n - p * PANEL).min(PANEL);
            for b in 0..blocks {
                let r = r0 + b * MR;
                let nr = (rows - b * MR).min(MR);
                block(
                    &x[r * k + s0..(r + nr - 1) * k + s1],
                    k,
                    w,
                    out.get().add(r * n + p * PANEL),
                    n,
                    nr,
                    cols,
                    s > 0,
                );
            }
        };
        if !long_k {
            // the chunk stays in L2; each panel over all of k
            for p in panels {
                for s in 0..slices {
                    run(p, s);
                }
            }
        } else {
            // a long k: one slice at a time across every panel
            for s in 0..slices {
                for p in panels.clone() {
                    run(p, s);
                }
            }
        }
    }
}

/// One row block against one panel slice; `accumulate` adds to `out` instead of storing.
///
/// # Safety
/// `x` starts at the block's first input and holds `rows` (1..=MR) rows of stride `ldx`, each
/// of `w.len() / PANEL` values; `out` addresses `rows` rows of stride `ld` with `cols`
/// (1..=PANEL) writable values each; AVX-512 F present.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    x: &[f32],
    ldx: usize,
    w: &[f32],
    out: *mut f32,
    ld: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let steps = w.len() / PANEL;
    debug_assert!(x.len() >= (rows - 1) * ldx + steps);
    #[cfg(target_arch = "x86_64")]
    {
        let (x, w) = (x.as_ptr(), w.as_ptr());
        let k = (x, ldx, steps, w, out, ld, cols, accumulate);
        match rows {
            14 => avx512::kernel::<14>(k),
            13 => avx512::kernel::<13>(k),
            12 => avx512::kernel::<12>(k),
            11 => avx512::kernel::<11>(k),
            10 => avx512::kernel::<10>(k),
            9 => avx512::kernel::<9>(k),
            8 => avx512::kernel::<8>(k),
            7 => avx512::kernel::<7>(k),
            6 => avx512::kernel::<6>(k),
            5 => avx512::kernel::<5>(k),
            4 => avx512::kernel::<4>(k),
            3 => avx512::kernel::<3>(k),
            2 => avx512::kernel::<2>(k),
            _ => avx512::kernel::<1>(k),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for r in 0..rows {
        for j in 0..cols {
            let s: f32 = (0..steps).map(|c| x[r * ldx + c] * w[c * PANEL + j]).sum();
            let o = out.add(r * ld + j);
            *o = if accumulate { *o + s } else { s };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::PANEL;

    /// Input, its row stride, k steps, panel slice, output, its row stride, valid columns,
    /// whether to add to the output.
    pub type Args = (
        *const f32,
        usize,
        usize,
        *const f32,
        *mut f32,
        usize,
        usize,
        bool,
    );

    /// # Safety
    /// As for `super::block`, with `R` rows.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel<const R: usize>((x, ldx, steps, w, out, ld, cols, accumulate): Args) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for c in 0..steps {
            let w0 = _mm512_loadu_ps(w.add(c * PANEL));
            let w1 = _mm512_loadu_ps(w.add(c * PANEL + 16));
            for (r, a) in acc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*x.add(r * ldx + c));
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
            let (o0, o1) = (out.add(r * ld), out.add(r * ld + 16));
            let (mut v0, mut v1) = (a[0], a[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, o0));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, o1));
            }
            _mm512_mask_storeu_ps(o0, m0, v0);
            _mm512_mask_storeu_ps(o1, m1, v1);
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
        // whole and partial panels, row blocks, k slices and tiles; a k long enough for runs of
        // panels
        for (m, n, k) in [
            (1, 5, 3),
            (8, 32, 16),
            (13, 70, 37),
            (37, 96, 600),
            (70, 260, 130),
            (20, 40, 20000),
        ] {
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

//! The LoRA products of one layer on plain slices, each one f32 GEMM (the `gemm` crate, which
//! takes any row and column strides, so no operand is transposed in memory) split into
//! contiguous parts of the output across candle's worker pool, one part per thread.
//!
//! Shapes: `x, mask: (m, din)`, `a: (r, din)`, `b: (dout, r)`, `dy, y: (m, dout)`; `mask`
//! multiplies `x` (inverted dropout), `s` scales the LoRA branch.
use std::borrow::Cow;
use std::ops::Range;

use crate::model::par::{run_split, OutPtr};
use crate::model::strided_gemm::{gemm1, Operand};

/// One LoRA layer's operands.
pub struct LoraShapes<'a> {
    pub x: &'a [f32],
    pub mask: Option<&'a [f32]>,
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub m: usize,
    pub din: usize,
    pub dout: usize,
    pub r: usize,
    pub s: f32,
}

/// Output rows `0..total` in one contiguous part per thread (the pool has one thread per core).
fn split_rows(total: usize, work: usize, f: impl Fn(Range<usize>) + Sync) {
    let parts = candle_core::utils::barrier_pool().n_workers() + 1;
    let per = total.div_ceil(parts).max(1);
    run_split(total.div_ceil(per), work, |ps| {
        for p in ps {
            f(p * per..((p + 1) * per).min(total));
        }
    });
}

impl LoraShapes<'_> {
    /// `x * mask` (borrowed when there is no mask).
    pub fn dropped(&self) -> Cow<'_, [f32]> {
        let Some(mask) = self.mask else {
            return Cow::Borrowed(self.x);
        };
        let mut xd = vec![0f32; self.x.len()];
        let out = OutPtr(xd.as_mut_ptr());
        split_rows(self.m, self.x.len(), |rows| {
            let span = rows.start * self.din..rows.end * self.din;
            // SAFETY: these rows of `xd` belong to this call alone.
            let d = unsafe { out.slice(span.start, span.len()) };
            for ((d, x), k) in d.iter_mut().zip(&self.x[span.clone()]).zip(&mask[span]) {
                *d = x * k;
            }
        });
        Cow::Owned(xd)
    }

    /// `h = xd A^T: (m, r)`, from `xd = x * mask` ([`LoraShapes::dropped`]).
    pub fn hidden(&self, xd: &[f32]) -> Vec<f32> {
        let (m, din, r) = (self.m, self.din, self.r);
        let mut h = vec![0f32; m * r];
        let out = OutPtr(h.as_mut_ptr());
        let lhs = Operand(xd.as_ptr(), 1, din as isize);
        let rhs = Operand(self.a.as_ptr(), din as isize, 1);
        split_rows(m, m * din * r, |rows| {
            // SAFETY: rows of `h` and `xd` within bounds, each part's rows its own.
            unsafe {
                gemm1(
                    rows.len(),
                    r,
                    din,
                    out.get().add(rows.start * r),
                    r,
                    false,
                    1.0,
                    lhs.at(rows.start, 0),
                    rhs,
                )
            };
        });
        h
    }

    /// `y += s * h B^T`.
    pub fn add_output(&self, h: &[f32], y: &mut [f32]) {
        let (m, dout, r) = (self.m, self.dout, self.r);
        let out = OutPtr(y.as_mut_ptr());
        let lhs = Operand(h.as_ptr(), 1, r as isize);
        let rhs = Operand(self.b.as_ptr(), r as isize, 1);
        split_rows(m, m * dout * r, |rows| {
            // SAFETY: rows of `y` and `h` within bounds, each part's rows its own.
            unsafe {
                gemm1(
                    rows.len(),
                    dout,
                    r,
                    out.get().add(rows.start * dout),
                    dout,
                    true,
                    self.s,
                    lhs.at(rows.start, 0),
                    rhs,
                )
            };
        });
    }

    /// `gb = dy B: (m, r)`.
    pub fn grad_hidden(&self, dy: &[f32]) -> Vec<f32> {
        let (m, dout, r) = (self.m, self.dout, self.r);
        let mut gb = vec![0f32; m * r];
        let out = OutPtr(gb.as_mut_ptr());
        let lhs = Operand(dy.as_ptr(), 1, dout as isize);
        let rhs = Operand(self.b.as_ptr(), 1, r as isize);
        split_rows(m, m * dout * r, |rows| {
            // SAFETY: rows of `gb` and `dy` within bounds, each part's rows its own.
            unsafe {
                gemm1(
                    rows.len(),
                    r,
                    dout,
                    out.get().add(rows.start * r),
                    r,
                    false,
                    1.0,
                    lhs.at(rows.start, 0),
                    rhs,
                )
            };
        });
        gb
    }

    /// `dx += s * (gb A) * mask`.
    pub fn add_input_grad(&self, gb: &[f32], dx: &mut [f32]) {
        let (m, din, r) = (self.m, self.din, self.r);
        let out = OutPtr(dx.as_mut_ptr());
        let lhs = Operand(gb.as_ptr(), 1, r as isize);
        let rhs = Operand(self.a.as_ptr(), 1, din as isize);
        split_rows(m, m * din * r, |rows| {
            let span = rows.start * din..rows.end * din;
            let lhs = lhs.at(rows.start, 0);
            // SAFETY: these rows of `dx` belong to this call alone; `gb`, `a` within bounds.
            unsafe {
                let Some(mask) = self.mask else {
                    let d = out.get().add(span.start);
                    return gemm1(rows.len(), din, r, d, din, true, self.s, lhs, rhs);
                };
                let mut t = vec![0f32; span.len()];
                gemm1(
                    rows.len(),
                    din,
                    r,
                    t.as_mut_ptr(),
                    din,
                    false,
                    1.0,
                    lhs,
                    rhs,
                );
                let d = out.slice(span.start, span.len());
                for ((d, t), k) in d.iter_mut().zip(&t).zip(&mask[span]) {
                    *d += self.s * t * k;
                }
            }
        });
    }

    /// `dA = s * gb^T xd: (r, din)`, from `xd = x * mask`; parts are column ranges.
    pub fn grad_a(&self, gb: &[f32], xd: &[f32]) -> Vec<f32> {
        let (m, din, r) = (self.m, self.din, self.r);
        let mut da = vec![0f32; r * din];
        let out = OutPtr(da.as_mut_ptr());
        let lhs = Operand(gb.as_ptr(), r as isize, 1);
        let rhs = Operand(xd.as_ptr(), 1, din as isize);
        split_rows(din, m * din * r, |cols| {
            // SAFETY: columns `cols` of `da` belong to this call alone; `xd` within bounds.
            unsafe {
                gemm1(
                    r,
                    cols.len(),
                    m,
                    out.get().add(cols.start),
                    din,
                    false,
                    self.s,
                    lhs,
                    rhs.at(0, cols.start),
                )
            };
        });
        da
    }

    /// `dB = s * dy^T h: (dout, r)`.
    pub fn grad_b(&self, dy: &[f32], h: &[f32]) -> Vec<f32> {
        let (m, dout, r) = (self.m, self.dout, self.r);
        let mut db = vec![0f32; dout * r];
        let out = OutPtr(db.as_mut_ptr());
        let lhs = Operand(dy.as_ptr(), dout as isize, 1);
        let rhs = Operand(h.as_ptr(), 1, r as isize);
        split_rows(dout, m * dout * r, |rows| {
            // SAFETY: rows of `db` belong to this call alone; `dy`, `h` within bounds.
            unsafe {
                gemm1(
                    rows.len(),
                    r,
                    m,
                    out.get().add(rows.start * r),
                    r,
                    false,
                    self.s,
                    lhs.at(rows.start, 0),
                    rhs,
                )
            };
        });
        db
    }
}

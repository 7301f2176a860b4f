//! The LoRA products of one layer on plain slices: rank `r` is small (8-64), so every product
//! is a sequence of short axpys that the compiler vectorises, run in parallel over rows or
//! columns on candle's worker pool. General matmul kernels spend more on packing and dispatch
//! than on arithmetic at these shapes.
//!
//! Shapes: `x, mask: (m, din)`, `a: (r, din)`, `b: (dout, r)`, `dy, y: (m, dout)`; `mask`
//! multiplies `x` (inverted dropout), `s` scales the LoRA branch.
use crate::model::par::{run_split, OutPtr};
use crate::model::vecops::{axpy, dot};

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

impl LoraShapes<'_> {
    /// Row `n` of `x * mask` into `dst`.
    fn dropped_row(&self, n: usize, dst: &mut [f32]) {
        let row = &self.x[n * self.din..(n + 1) * self.din];
        match self.mask {
            Some(m) => {
                let mr = &m[n * self.din..(n + 1) * self.din];
                for ((d, x), k) in dst.iter_mut().zip(row).zip(mr) {
                    *d = x * k;
                }
            }
            None => dst.copy_from_slice(row),
        }
    }

    /// `h = (x * mask) A^T: (m, r)`: one dot product of length `din` per entry.
    pub fn hidden(&self) -> Vec<f32> {
        let (m, din, r) = (self.m, self.din, self.r);
        let mut h = vec![0f32; m * r];
        let out = OutPtr(h.as_mut_ptr());
        run_split(m, m * din * r, |rows| {
            let mut xd = vec![0f32; din];
            for n in rows {
                self.dropped_row(n, &mut xd);
                for j in 0..r {
                    let v = dot(&xd, &self.a[j * din..(j + 1) * din]);
                    // SAFETY: row `n` of `h` belongs to this call alone.
                    unsafe { *out.get().add(n * r + j) = v };
                }
            }
        });
        h
    }

    /// `y += s * h B^T`, from `b_t = B^T: (r, dout)`.
    pub fn add_output(&self, h: &[f32], b_t: &[f32], y: &mut [f32]) {
        let (m, dout, r) = (self.m, self.dout, self.r);
        let out = OutPtr(y.as_mut_ptr());
        run_split(m, m * dout * r, |rows| {
            for n in rows {
                // SAFETY: row `n` of `y` belongs to this call alone.
                let yr = unsafe { out.slice(n * dout, dout) };
                for j in 0..r {
                    axpy(yr, self.s * h[n * r + j], &b_t[j * dout..(j + 1) * dout]);
                }
            }
        });
    }

    /// `gb = dy B: (m, r)`, from `b_t = B^T: (r, dout)`.
    pub fn grad_hidden(&self, dy: &[f32], b_t: &[f32]) -> Vec<f32> {
        let (m, dout, r) = (self.m, self.dout, self.r);
        let mut gb = vec![0f32; m * r];
        let out = OutPtr(gb.as_mut_ptr());
        run_split(m, m * dout * r, |rows| {
            for n in rows {
                let dr = &dy[n * dout..(n + 1) * dout];
                for j in 0..r {
                    let v = dot(dr, &b_t[j * dout..(j + 1) * dout]);
                    // SAFETY: row `n` of `gb` belongs to this call alone.
                    unsafe { *out.get().add(n * r + j) = v };
                }
            }
        });
        gb
    }

    /// `dx += s * (gb A) * mask`: 64 columns at a time, summed over the rank in registers.
    pub fn add_input_grad(&self, gb: &[f32], dx: &mut [f32]) {
        let (m, din, r) = (self.m, self.din, self.r);
        let out = OutPtr(dx.as_mut_ptr());
        run_split(m, m * din * r, |rows| {
            for n in rows {
                // SAFETY: row `n` of `dx` belongs to this call alone.
                let dr = unsafe { out.slice(n * din, din) };
                let g = &gb[n * r..(n + 1) * r];
                let mut c0 = 0;
                while c0 < din {
                    let w = (din - c0).min(64);
                    let mut acc = [0f32; 64];
                    for (j, &gj) in g.iter().enumerate() {
                        let arow = &self.a[j * din + c0..j * din + c0 + w];
                        for (a, v) in acc.iter_mut().zip(arow) {
                            *a += gj * v;
                        }
                    }
                    let d = &mut dr[c0..c0 + w];
                    match self.mask {
                        Some(mk) => {
                            let mk = &mk[n * din + c0..n * din + c0 + w];
                            for ((d, a), k) in d.iter_mut().zip(&acc).zip(mk) {
                                *d += self.s * a * k;
                            }
                        }
                        None => {
                            for (d, a) in d.iter_mut().zip(&acc) {
                                *d += self.s * a;
                            }
                        }
                    }
                    c0 += w;
                }
            }
        });
    }

    /// `dA = s * gb^T (x * mask): (r, din)`: partial sums over row blocks (each input row
    /// read once, in parallel), then added.
    pub fn grad_a(&self, gb: &[f32]) -> Vec<f32> {
        let (r, din) = (self.r, self.din);
        self.sum_rows(r * din, |n, acc, xd| {
            xd.resize(din, 0.0);
            self.dropped_row(n, xd);
            for j in 0..r {
                axpy(&mut acc[j * din..(j + 1) * din], self.s * gb[n * r + j], xd);
            }
        })
    }

    /// `dB = s * dy^T h: (dout, r)`, built as `dB^T` (one axpy of length `dout` per row and
    /// rank) from partial sums over row blocks.
    pub fn grad_b(&self, dy: &[f32], h: &[f32]) -> Vec<f32> {
        let (r, dout) = (self.r, self.dout);
        let dbt = self.sum_rows(r * dout, |n, acc, _| {
            let dyr = &dy[n * dout..(n + 1) * dout];
            for j in 0..r {
                axpy(
                    &mut acc[j * dout..(j + 1) * dout],
                    self.s * h[n * r + j],
                    dyr,
                );
            }
        });
        transpose(&dbt, r, dout)
    }

    /// `sum over rows n of f(n)`, where `f(n, acc, scratch)` adds row `n`'s part into `acc`
    /// (`len` floats): row blocks in parallel, each into its own buffer, then the buffers
    /// summed.
    fn sum_rows<F>(&self, len: usize, f: F) -> Vec<f32>
    where
        F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
    {
        const BLOCKS: usize = 8;
        let m = self.m;
        let blocks = BLOCKS.min(m.max(1));
        let mut partial = vec![0f32; blocks * len];
        let out = OutPtr(partial.as_mut_ptr());
        run_split(blocks, m * len, |bs| {
            let mut scratch = Vec::new();
            for blk in bs {
                // SAFETY: block `blk`'s buffer belongs to this call alone.
                let acc = unsafe { out.slice(blk * len, len) };
                for n in blk * m / blocks..(blk + 1) * m / blocks {
                    f(n, acc, &mut scratch);
                }
            }
        });
        let (first, rest) = partial.split_at_mut(len);
        for p in rest.chunks_exact(len) {
            for (a, b) in first.iter_mut().zip(p) {
                *a += b;
            }
        }
        partial.truncate(len);
        partial
    }
}

/// `(rows, cols)` row-major transposed.
pub fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = x[i * cols + j];
        }
    }
    t
}

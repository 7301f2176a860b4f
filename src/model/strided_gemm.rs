//! One single-threaded f32 GEMM over strided operands (the `gemm` crate takes any row and
//! column strides, so no operand is ever transposed in memory), for kernels that split their
//! own work across candle's worker pool: the LoRA products and the training attention.
/// A row-major or strided operand: `(pointer, column stride, row stride)`.
#[derive(Clone, Copy)]
pub(crate) struct Operand(pub(crate) *const f32, pub(crate) isize, pub(crate) isize);

impl Operand {
    /// The operand from row `row` and column `col` on.
    pub(crate) fn at(self, row: usize, col: usize) -> Operand {
        let off = row as isize * self.2 + col as isize * self.1;
        // SAFETY: callers only offset within the operand they describe.
        Operand(unsafe { self.0.offset(off) }, self.1, self.2)
    }
}

// SAFETY: operands are read-only views of slices that outlive the kernel call.
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

/// `dst (rows, n) = [dst +] beta * lhs (rows, k) rhs (k, n)` on one thread; `dst` row-major
/// with row stride `dst_rs`.
///
/// # Safety
/// Every element addressed through `dst`, `lhs` and `rhs` lies within its buffer, and no
/// other thread touches the `dst` elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm1(
    rows: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    beta: f32,
    lhs: Operand,
    rhs: Operand,
) {
    if rows == 0 || n == 0 {
        return;
    }
    gemm::gemm(
        rows,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.0,
        lhs.1,
        lhs.2,
        rhs.0,
        rhs.1,
        rhs.2,
        1.0,
        beta,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

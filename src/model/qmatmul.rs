//! Int8 weights (blocks of 64 values with one f32 scale, Q8_0's scheme with the block of the
//! AMX int8 kernel) and a batched matmul whose every block of weights serves up to 16 input rows
//! from L1.
//!
//! candle's quantized matmul is a matrix-vector kernel: eight input rows cost about eight times
//! one row, so batched decoding gained nothing from it. Here the inputs are quantized per block
//! of 64 too, as signed bytes; the weights are stored biased to unsigned (`w + 128`) for AVX-512
//! VNNI's `vpdpbusd` (unsigned x signed bytes), so the input is the signed operand and each of
//! its 4-byte chunks is broadcast from memory inside the instruction. Weights are stored in
//! groups of 16 rows, interleaved 4 bytes at a time, so one 64-byte load holds the same 4
//! columns of 16 rows and one `vpdpbusd` advances 16 dot products; the 16 lanes then take their
//! own block scales in one multiply. A call covers 3 groups and 4 rows (see [`PANEL`] and
//! [`ROWS`]). The +128 bias is removed exactly in integers: each block's accumulator starts at
//! `-128 * sum(input values of the block)`, computed once per input row, so the weight stream
//! holds values and scales only (68 bytes per 64 weights).
//! Without AVX-512 VNNI a portable loop computes the same integers and the same sums.
use std::ops::Range;

use candle_core::{Device, Tensor};

use super::amx::{self, Bf16Matrix};
use super::amx_int8::I8TileMatrix;
use super::error::{ModelError, Result};
use super::huge::HugeBuf;
use super::par::run_two;
pub(crate) use super::par::OutPtr;

/// Values per quantization block (one AMX tile row, so the AMX int8 copy quantizes alike).
pub const BLOCK: usize = 64;
/// 4-byte chunks per block.
const CHUNKS: usize = BLOCK / 4;
/// Weight rows interleaved together (the 16 int32 lanes of an AVX-512 register).
pub const GROUP: usize = 16;
/// Groups one micro-kernel call covers (each input broadcast feeds this many weight loads).
const PANEL: usize = 3;
/// Input rows one micro-kernel call covers: with [`PANEL`] groups, 12 independent
/// accumulators, enough to keep two `vpdpbusd` ports busy through the instruction's latency.
const ROWS: usize = 4;
/// Input rows that take each block of weights while it is in L1.
const CHUNK: usize = 16;
/// How many blocks ahead a product asks for weights and their scales: one block of 3 groups is
/// about 0.2 us of arithmetic at 16 rows, less than memory's latency plus the time to stream
/// it, and one block ahead left the loads waiting (2 blocks: a 16-row step's matmuls 7-9%
/// faster, an 8-row one's 11-15%, on a 2-vCPU Zen 4 guest; 3 blocks no better). The scales'
/// lines, prefetched too, took another 4-9%, and one row, which had no software prefetch, 5-19%.
const AHEAD: usize = 2;
/// Products of at least this many rows (prefill) run each 4-row tile over all of a panel's
/// blocks with its sums in registers, the panel in L2 after the first tile; fewer rows (decode
/// steps) take each block's weights for 16 rows while it is in L1 (see `avx512::panel`). The
/// 30 layers' products at 49-120 rows took 8-11% less time this way, at 32 rows 0-5%, at 16-24
/// rows 1-9% more (alternated in one process, weights from memory, a 2-vCPU Zen 4 guest).
const TILES_OUTER_MIN_ROWS: usize = 48;

/// A `(n, k)` weight matrix in int8 blocks; `n` a multiple of 16, `k` of 64.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    n: usize,
    k: usize,
    /// Interleaved values plus 128: group `g`, block `b`, 4-byte chunk `t`, row-in-group `r`,
    /// byte `u` at `((g * nb + b) * 16 + t) * 64 + r * 4 + u`.
    qs: HugeBuf<u8>,
    /// Block scales at `(g * nb + b) * 16 + r`.
    scales: HugeBuf<f32>,
    /// A bf16 copy for steps of many rows on CPUs with AMX (see `amx`), where the int8
    /// kernel would be bound by `vpdpbusd` throughput.
    amx: Option<Bf16Matrix>,
    /// An int8 tile copy (see `amx_int8`) for batched decode steps, which are bound by reading
    /// the weights: half the bytes of the bf16 copy.
    amx_i8: Option<I8TileMatrix>,
}

/// Steps with at least this many rows use an AMX copy when there is one (`MEIT_AMX_MIN_ROWS`
/// overrides it for measurements).
fn amx_min_rows() -> usize {
    use std::sync::OnceLock;
    static MIN: OnceLock<usize> = OnceLock::new();
    *MIN.get_or_init(|| {
        std::env::var("MEIT_AMX_MIN_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(AMX_MIN_ROWS)
    })
}

/// Default of [`amx_min_rows`]: below it the VNNI kernel keeps up with the tiles (a 3072 x 576
/// matrix, 30 copies, this machine: 1-3 rows about even, 4 rows 63 us on int8 tiles vs 79 us).
pub const AMX_MIN_ROWS: usize = 4;

/// Steps of [`amx_min_rows`] up to this many rows use the AMX int8 copy; larger ones (prefill)
/// the bf16 copy, whose products need no per-block scaling (`MEIT_AMX_I8_MAX_ROWS` overrides
/// it for measurements).
fn amx_i8_max_rows() -> usize {
    use std::sync::OnceLock;
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("MEIT_AMX_I8_MAX_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(AMX_I8_MAX_ROWS)
    })
}

/// Default of [`amx_i8_max_rows`] (same matrices: int8 vs bf16 tiles 93 vs 145 us at 16 rows,
/// 236 vs 275 at 48, even at 64).
pub const AMX_I8_MAX_ROWS: usize = 48;

thread_local! {
    /// The calling thread's quantized input, reused across calls (a prefill input is hundreds
    /// of KiB; allocating and zeroing it per matmul showed in profiles).
    static INPUT: std::cell::RefCell<QInput> = std::cell::RefCell::new(QInput::default());
    /// One produced input row of [`Q8Matrix::matmul_rows`] before it is quantized.
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where a product's output goes: up to three row-major buffers side by side, each a whole
/// number of groups of 16 columns wide (one buffer for a plain product).
#[derive(Clone, Copy)]
struct Cols {
    /// Each buffer and its width in columns; unused entries are `usize::MAX` wide.
    parts: [(OutPtr, usize); 3],
}

impl Cols {
    /// The `outs` of `m` rows each, side by side `n` columns in all.
    fn new<const N: usize>(outs: [&mut [f32]; N], m: usize, n: usize) -> Self {
        assert!(N <= 3, "at most three output buffers, got {N}");
        let mut parts = [(OutPtr(std::ptr::null_mut()), usize::MAX); 3];
        let mut cols = 0;
        for (p, out) in parts.iter_mut().zip(outs) {
            // one buffer is the whole product's; several split it by their lengths
            let w = if N == 1 {
                n
            } else {
                out.len().checked_div(m).unwrap_or(0)
            };
            assert!(
                out.len() >= w * m && w.is_multiple_of(GROUP),
                "{} values for {m} rows of {w}",
                out.len()
            );
            *p = (OutPtr(out.as_mut_ptr()), w);
            cols += w;
        }
        assert!(
            m == 0 || cols == n,
            "outputs {cols} columns wide for a product of {n}"
        );
        Cols { parts }
    }

    /// The first of the 16 outputs of group `g` in row `r`.
    ///
    /// # Safety
    /// `r` is a row of the product and `g` one of its groups.
    #[inline(always)]
    unsafe fn group(&self, r: usize, g: usize) -> *mut f32 {
        let (mut c, mut i) = (g * GROUP, 0);
        while c >= self.parts[i].1 {
            c -= self.parts[i].1;
            i += 1;
        }
        let (p, w) = self.parts[i];
        p.get().add(r * w + c)
    }
}

/// An AMX copy of the weights.
enum Tiles<'a> {
    I8(&'a I8TileMatrix),
    Bf16(&'a Bf16Matrix),
}

impl Tiles<'_> {
    fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        match self {
            Tiles::I8(b) => b.matmul(x, m, out),
            Tiles::Bf16(b) => b.matmul(x, m, out),
        }
    }
}

/// Inputs quantized per block.
#[derive(Default)]
struct QInput {
    m: usize,
    /// `m * k` values, row-major.
    qs: Vec<i8>,
    /// `m * nb` block scales.
    scales: Vec<f32>,
    /// `m * nb` starts of the block accumulators, `-128 * sum(block values)` (removes the
    /// weights' +128 bias).
    starts: Vec<i32>,
}

impl QInput {
    /// Sizes the buffers for `m` rows of `k` values (they only grow).
    fn resize(&mut self, m: usize, k: usize) {
        let nb = k / BLOCK;
        self.m = m;
        self.qs.resize(m * k, 0);
        self.scales.resize(m * nb, 0.0);
        self.starts.resize(m * nb, 0);
    }

    /// Writes rows of the quantized input: `write(r0, x)` quantizes the rows of `x` (`k` values
    /// each) into rows `r0..`, through pointers taken from buffers sized by [`QInput::resize`],
    /// so threads can fill disjoint rows.
    fn writer(&mut self, k: usize) -> impl Fn(usize, &[f32]) + Sync + use<> {
        let nb = k / BLOCK;
        let (qp, sp, tp) = (
            OutPtr(self.qs.as_mut_ptr()),
            OutPtr(self.scales.as_mut_ptr()),
            OutPtr(self.starts.as_mut_ptr()),
        );
        move |r0: usize, x: &[f32]| {
            let n = x.len() / k;
            // SAFETY: the caller's rows are within the sized buffers, and no other thread
            // writes or reads them meanwhile.
            let (q, s, t) = unsafe {
                (
                    qp.slice(r0 * k, n * k),
                    sp.slice(r0 * nb, n * nb),
                    tp.slice(r0 * nb, n * nb),
                )
            };
            quantize_blocks_with(x, q, s, Some(t));
        }
    }

    /// Quantizes the `m` rows of `k` values in `x`, reusing the buffers; rows are split across
    /// the worker pool when there are many.
    #[cfg(test)]
    fn fill(&mut self, x: &[f32], m: usize, k: usize) {
        self.resize(m, k);
        let write = self.writer(k);
        // Work counted as one unit per value (a few dozen instructions per block of 64).
        super::par::run_split(m, m * k, |rows: Range<usize>| {
            write(rows.start, &x[rows.start * k..rows.end * k])
        });
    }
}

/// Quantizes one block to `[-127, 127]` with scale `max|x| / 127`.
pub fn quantize_block(x: &[f32], out: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 {
        out.iter_mut().for_each(|q| *q = 0);
        return 0.0;
    }
    let d = amax / 127.0;
    let inv = 1.0 / d;
    // |v * inv| <= 127 (up to rounding; `as` saturates); ties to even vectorises.
    for (q, v) in out.iter_mut().zip(x) {
        *q = (v * inv).round_ties_even() as i8;
    }
    d
}

/// `quantize_block` on every block of `x` (whole blocks) into `q` (at least `x.len()` bytes) and
/// `scales` (at least one per block): four AVX-512 registers per block where present.
pub(crate) fn quantize_blocks(x: &[f32], q: &mut [i8], scales: &mut [f32]) {
    quantize_blocks_with(x, q, scales, None);
}

/// [`quantize_blocks`], and with `starts` (one per block) each block's accumulator start for the
/// VNNI kernel, `-128 * sum(quantized values)`.
fn quantize_blocks_with(x: &[f32], q: &mut [i8], scales: &mut [f32], starts: Option<&mut [i32]>) {
    assert!(x.len().is_multiple_of(BLOCK) && q.len() >= x.len());
    let nb = x.len() / BLOCK;
    assert!(scales.len() >= nb && starts.as_ref().is_none_or(|s| s.len() >= nb));
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: AVX-512 F present; lengths checked above.
        return unsafe { quantize_rows(x, q, scales, starts) };
    }
    for (b, (src, dst)) in x
        .chunks_exact(BLOCK)
        .zip(q.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        scales[b] = quantize_block(src, dst);
    }
    if let Some(starts) = starts {
        for (st, blk) in starts.iter_mut().zip(q[..x.len()].chunks_exact(BLOCK)) {
            *st = -128 * blk.iter().map(|&v| v as i32).sum::<i32>();
        }
    }
}

/// The AVX-512 body of [`quantize_blocks_with`], 16 blocks at a time: their maxima first, then
/// the 16 scales and reciprocals in two vector divisions (the same roundings as the scalar
/// `amax / 127` and `1 / d`), then the values. One block at a time, every block waited on its
/// reduction and a scalar division.
///
/// # Safety
/// AVX-512 F present; `q` holds `x.len()` bytes, `scales` (and `starts`, if given)
/// `x.len() / 64` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn quantize_rows(
    x: &[f32],
    q: &mut [i8],
    scales: &mut [f32],
    mut starts: Option<&mut [i32]>,
) {
    use std::arch::x86_64::*;
    let nb = x.len() / BLOCK;
    let (lo, hi) = (_mm512_set1_epi32(-128), _mm512_set1_epi32(127));
    for b0 in (0..nb).step_by(16) {
        let count = (nb - b0).min(16);
        let mut amax = [0f32; 16];
        for (i, a) in amax[..count].iter_mut().enumerate() {
            let src = x.as_ptr().add((b0 + i) * BLOCK);
            let m01 = _mm512_max_ps(
                _mm512_abs_ps(_mm512_loadu_ps(src)),
                _mm512_abs_ps(_mm512_loadu_ps(src.add(16))),
            );
            let m23 = _mm512_max_ps(
                _mm512_abs_ps(_mm512_loadu_ps(src.add(32))),
                _mm512_abs_ps(_mm512_loadu_ps(src.add(48))),
            );
            *a = _mm512_reduce_max_ps(_mm512_max_ps(m01, m23));
        }
        let am = _mm512_loadu_ps(amax.as_ptr());
        let d = _mm512_div_ps(am, _mm512_set1_ps(127.0));
        let inv = _mm512_div_ps(_mm512_set1_ps(1.0), d);
        let (mut ds, mut invs) = ([0f32; 16], [0f32; 16]);
        _mm512_storeu_ps(ds.as_mut_ptr(), d);
        _mm512_storeu_ps(invs.as_mut_ptr(), inv);
        for i in 0..count {
            let b = b0 + i;
            let dst = q.as_mut_ptr().add(b * BLOCK);
            let a = amax[i];
            if a.is_nan() || a <= 0.0 || a.is_infinite() {
                scales[b] = 0.0;
                std::ptr::write_bytes(dst, 0, BLOCK);
                if let Some(st) = starts.as_deref_mut() {
                    st[b] = 0;
                }
                continue;
            }
            scales[b] = ds[i];
            let inv = _mm512_set1_ps(invs[i]);
            let src = x.as_ptr().add(b * BLOCK);
            let mut sum = _mm512_setzero_si512();
            for j in 0..4 {
                // round to nearest even (the default rounding mode), saturate to int8
                let qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src.add(16 * j)), inv));
                _mm_storeu_si128(dst.add(16 * j).cast(), _mm512_cvtsepi32_epi8(qi));
                // the stored (saturated) values
                sum = _mm512_add_epi32(sum, _mm512_min_epi32(_mm512_max_epi32(qi, lo), hi));
            }
            if let Some(st) = starts.as_deref_mut() {
                st[b] = -128 * _mm512_reduce_add_epi32(sum);
            }
        }
    }
}

impl Q8Matrix {
    /// Whether a `(n, k)` matrix fits the layout.
    pub fn supports(n: usize, k: usize) -> bool {
        n.is_multiple_of(GROUP) && k.is_multiple_of(BLOCK) && n > 0 && k > 0
    }

    /// Quantizes a row-major `(n, k)` matrix.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Result<Self> {
        if !Self::supports(n, k) || w.len() != n * k {
            return Err(ModelError::Input(format!(
                "int8 weights need (n, k) with n a multiple of {GROUP} and k of {BLOCK}: \
                 n={n}, k={k}, {} values",
                w.len()
            )));
        }
        let nb = k / BLOCK;
        let mut qs = HugeBuf::<u8>::new(n * k);
        let mut scales = HugeBuf::<f32>::new(n * nb);
        let mut q = [0i8; BLOCK];
        for i in 0..n {
            let (g, r) = (i / GROUP, i % GROUP);
            for b in 0..nb {
                let d = quantize_block(&w[i * k + b * BLOCK..i * k + (b + 1) * BLOCK], &mut q);
                scales[(g * nb + b) * GROUP + r] = d;
                for (c, &v) in q.iter().enumerate() {
                    let (t, u) = (c / 4, c % 4);
                    qs[((g * nb + b) * CHUNKS + t) * 64 + r * 4 + u] = (v as i16 + 128) as u8;
                }
            }
        }
        let amx = if amx::available() {
            Bf16Matrix::from_f32(w, n, k)
        } else {
            None
        };
        let amx_i8 = if amx::int8_available() {
            I8TileMatrix::from_f32(w, n, k)
        } else {
            None
        };
        Ok(Q8Matrix {
            n,
            k,
            qs,
            scales,
            amx,
            amx_i8,
        })
    }

    /// Quantizes a 2-D f32 tensor `(n, k)`.
    pub fn from_tensor(w: &Tensor) -> Result<Self> {
        let (n, k) = w.dims2()?;
        let data = w.flatten_all()?.to_vec1::<f32>()?;
        Self::quantize(&data, n, k)
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Drops the AMX copies, so every row count runs the VNNI (or portable) kernel: for
    /// measurements and tests of that kernel on CPUs with AMX.
    pub fn drop_tile_copies(&mut self) {
        self.amx = None;
        self.amx_i8 = None;
    }

    /// `x: (m, k) -> (m, n)` on the CPU.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.k {
            return Err(ModelError::Input(format!(
                "int8 matmul: input width {k}, weights take {}",
                self.k
            )));
        }
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; m * self.n];
        self.matmul(&data, m, &mut out);
        Ok(Tensor::from_vec(out, (m, self.n), &Device::Cpu)?)
    }

    #[cfg(test)]
    fn quantize_input(&self, x: &[f32], m: usize) -> QInput {
        let mut xi = QInput::default();
        xi.fill(x, m, self.k);
        xi
    }

    /// `out (m, n) = x (m, k) W^T`, threads over groups of 16 output columns.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), m * self.k);
        if let Some(tiles) = self.tile_copy(m) {
            return tiles.matmul(x, m, out);
        }
        let k = self.k;
        self.matmul_int8(m, Cols::new([out], m, self.n), |write, rows| {
            write(rows.start, &x[rows.start * k..rows.end * k])
        });
    }

    /// [`Self::matmul`] of the input whose row `r` is `fill(r, row)` (`k` values written into
    /// `row`), produced as the product's quantization pass reaches it: the element-wise step
    /// before a product (a norm, SwiGLU) then runs on the product's threads, inside its one
    /// dispatch, and its rows are never written to memory whole.
    pub fn matmul_rows(&self, m: usize, fill: impl Fn(usize, &mut [f32]) + Sync, out: &mut [f32]) {
        self.matmul_rows_into(m, fill, [out]);
    }

    /// [`Self::matmul_rows`] with the output columns written to `outs`, row-major buffers side
    /// by side, each a multiple of 16 columns wide (a fused q/k/v product writes q, k and v
    /// apart, with no copy after it).
    pub fn matmul_rows_into<const N: usize>(
        &self,
        m: usize,
        fill: impl Fn(usize, &mut [f32]) + Sync,
        outs: [&mut [f32]; N],
    ) {
        let k = self.k;
        if let Some(tiles) = self.tile_copy(m) {
            let mut x = vec![0f32; m * k];
            let xp = OutPtr(x.as_mut_ptr());
            super::par::run_split(m, m * k, |rows: Range<usize>| {
                // SAFETY: each call writes only the rows of its range.
                let x = unsafe { xp.slice(rows.start * k, rows.len() * k) };
                for (r, row) in rows.zip(x.chunks_exact_mut(k)) {
                    fill(r, row);
                }
            });
            let mut y = vec![0f32; m * self.n];
            tiles.matmul(&x, m, &mut y);
            let mut col = 0;
            for out in outs {
                let w = out.len() / m.max(1);
                for (o, row) in out.chunks_exact_mut(w).zip(y.chunks_exact(self.n)) {
                    o.copy_from_slice(&row[col..col + w]);
                }
                col += w;
            }
            return;
        }
        self.matmul_int8(m, Cols::new(outs, m, self.n), |write, rows| {
            ROW.with_borrow_mut(|row| {
                row.resize(k, 0.0);
                for r in rows {
                    fill(r, row);
                    write(r, row);
                }
            })
        });
    }

    /// The AMX copy for steps of `m` rows, when there is one for that many.
    fn tile_copy(&self, m: usize) -> Option<Tiles<'_>> {
        if m == 0 || m < amx_min_rows() {
            return None;
        }
        if let Some(b) = self.amx_i8.as_ref().filter(|_| m <= amx_i8_max_rows()) {
            return Some(Tiles::I8(b));
        }
        self.amx.as_ref().map(Tiles::Bf16)
    }

    /// The VNNI (or portable) product: `quantize(write, rows)` hands input rows `rows` to
    /// `write(first_row, values)`; every row is written before any panel runs, in the same
    /// dispatch of the worker pool.
    fn matmul_int8(
        &self,
        m: usize,
        out: Cols,
        quantize: impl Fn(&(dyn Fn(usize, &[f32]) + Sync), Range<usize>) + Sync,
    ) {
        if m == 0 {
            return;
        }
        INPUT.with_borrow_mut(|xi| {
            xi.resize(m, self.k);
            let write = xi.writer(self.k);
            let xi: &QInput = xi;
            // Threads take whole panels of groups, so every call but the last is a full one.
            let groups = self.n / GROUP;
            let run = |p: Range<usize>| {
                let r = p.start * PANEL..(p.end * PANEL).min(groups);
                // SAFETY: ranges are disjoint column groups of `out`, whose buffers outlive the
                // call; every input row was written before any panel runs.
                unsafe { self.groups(xi, r, out) }
            };
            // The input's rows first (work: one unit per value), then the panels.
            run_two(
                (m, m * self.k, |rows: Range<usize>| quantize(&write, rows)),
                (groups.div_ceil(PANEL), m * self.n * self.k, run),
            );
        });
    }

    /// Output columns of groups `groups` for every input row.
    ///
    /// # Safety
    /// `out` must point to `m * n` floats; no other thread may write these columns.
    unsafe fn groups(&self, xi: &QInput, groups: Range<usize>, out: Cols) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_vnni512() {
                return avx512::groups(self, xi, groups, out);
            }
        }
        self.groups_portable(xi, groups, out)
    }

    unsafe fn groups_portable(&self, xi: &QInput, groups: Range<usize>, out: Cols) {
        let (k, nb) = (self.k, self.k / BLOCK);
        for g in groups {
            for j in 0..xi.m {
                let x = &xi.qs[j * k..(j + 1) * k];
                let mut acc = [0f32; GROUP];
                for b in 0..nb {
                    let lanes = (g * nb + b) * GROUP;
                    let mut dot = [xi.starts[j * nb + b]; GROUP];
                    for t in 0..CHUNKS {
                        let wq = &self.qs[((g * nb + b) * CHUNKS + t) * 64..][..64];
                        let xq = &x[b * BLOCK + 4 * t..][..4];
                        for (r, d) in dot.iter_mut().enumerate() {
                            for u in 0..4 {
                                *d += wq[r * 4 + u] as i32 * xq[u] as i32;
                            }
                        }
                    }
                    let xs = xi.scales[j * nb + b];
                    for (r, a) in acc.iter_mut().enumerate() {
                        *a += dot[r] as f32 * (self.scales[lanes + r] * xs);
                    }
                }
                let o = out.group(j, g);
                for (r, a) in acc.iter().enumerate() {
                    *o.add(r) = *a;
                }
            }
        }
    }
}

/// AVX-512 F usable (`MEIT_NO_AVX512` turns every AVX-512 path off).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::env::var_os("MEIT_NO_AVX512").is_none()
    })
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_vnni512() -> bool {
    has_avx512() && std::arch::is_x86_feature_detected!("avx512vnni")
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{
        Cols, Q8Matrix, QInput, AHEAD, BLOCK, CHUNK, CHUNKS, GROUP, PANEL, ROWS,
        TILES_OUTER_MIN_ROWS,
    };
    use crate::model::vecops::prefetch_l2;

    /// # Safety
    /// AVX-512 F and VNNI present; see `Q8Matrix::groups`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn groups(w: &Q8Matrix, xi: &QInput, groups: Range<usize>, out: Cols) {
        // The first blocks of this share's first panel: the prefetch inside `panel` runs
        // ahead of the blocks it computes, so without this each share started on memory.
        let (nb, first) = (w.k / BLOCK, AHEAD.min(w.k / BLOCK));
        for g in groups.start..groups.end.min(groups.start + PANEL) {
            prefetch_l2(&w.qs[g * nb * CHUNKS * 64..][..first * CHUNKS * 64]);
            prefetch_l2(&w.scales[g * nb * GROUP..][..first * GROUP]);
        }
        let mut g = groups.start;
        let outer = xi.m >= TILES_OUTER_MIN_ROWS;
        while g < groups.end {
            let ng = (groups.end - g).min(PANEL);
            match (ng, outer) {
                (3, true) => panel_tiles::<3>(w, xi, g, out),
                (3, false) => panel::<3>(w, xi, g, out),
                (2, _) => panel::<2>(w, xi, g, out),
                _ => panel::<1>(w, xi, g, out),
            }
            g += ng;
        }
    }

    /// Groups `g..g+NG` against every input row, [`ROWS`] rows at a time, each tile of rows
    /// over all blocks with its sums in registers (no accumulator goes through memory per
    /// block). The first tile asks for the weights and scales [`AHEAD`] blocks on (past the
    /// last, the next panel's first blocks); later tiles find the panel in L2. The same
    /// operations per row and block as [`panel`], so the results are the same to the bit.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn panel_tiles<const NG: usize>(w: &Q8Matrix, xi: &QInput, g: usize, out: Cols) {
        let mut j = 0;
        while j < xi.m {
            let mr = (xi.m - j).min(ROWS);
            match mr {
                4 => tile::<4, NG>(w, xi, g, j, j == 0, out),
                3 => tile::<3, NG>(w, xi, g, j, j == 0, out),
                2 => tile::<2, NG>(w, xi, g, j, j == 0, out),
                _ => tile::<1, NG>(w, xi, g, j, j == 0, out),
            }
            j += mr;
        }
    }

    /// The group and block whose weights to ask memory for while computing block `b` of the
    /// panel of groups `g..g+NG`: [`AHEAD`] blocks on, past the last the next panel's first
    /// blocks (none past the matrix's last full panel).
    #[inline]
    fn ahead<const NG: usize>(w: &Q8Matrix, g: usize, b: usize) -> Option<(usize, usize)> {
        let (nb, ahead) = (w.k / BLOCK, b + AHEAD);
        if ahead < nb {
            Some((g, ahead))
        } else {
            (g + 2 * NG <= w.n / GROUP && ahead - nb < nb).then_some((g + NG, ahead - nb))
        }
    }

    /// Rows `j..j+MR` of [`panel_tiles`], written to `out`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const MR: usize, const NG: usize>(
        w: &Q8Matrix,
        xi: &QInput,
        g: usize,
        j: usize,
        first: bool,
        out: Cols,
    ) {
        let nb = w.k / BLOCK;
        let gstride = nb * CHUNKS * 64;
        // The sums stay in registers across the blocks: kept in memory, as the block-by-block
        // walk must keep its 16 rows', 16 prompts of 34 tokens (544 rows) took 4-11% longer.
        let mut sums = [[_mm512_setzero_ps(); NG]; MR];
        for b in 0..nb {
            if first {
                if let Some((g, b)) = ahead::<NG>(w, g, b) {
                    for i in 0..NG {
                        _mm_prefetch::<_MM_HINT_T1>(
                            w.scales.as_ptr().add(((g + i) * nb + b) * GROUP).cast(),
                        );
                    }
                    ask_block::<NG>(w.qs.as_ptr().add(g * gstride + b * CHUNKS * 64), gstride);
                }
            }
            let dot = dots::<MR, NG, 0>(w, xi, g, j, b, std::ptr::null());
            for (c, (dc, sc)) in dot.iter().zip(sums.iter_mut()).enumerate() {
                for (i, (d, s)) in dc.iter().zip(sc.iter_mut()).enumerate() {
                    *s = scaled(w, xi, (g + i, j + c, b), *d, (b > 0).then_some(*s));
                }
            }
        }
        for (c, row) in sums.iter().enumerate() {
            for (i, a) in row.iter().enumerate() {
                _mm512_storeu_ps(out.group(j + c, g + i), *a);
            }
        }
    }

    /// Groups `g..g+NG` against every input row, [`CHUNK`] rows at a time. Block by block
    /// (64 values of `k`), every row of the chunk takes the block's weights while they are in
    /// L1. In the first chunk, the tiles of 4 rows ask for the lines of the block [`AHEAD`]
    /// blocks on (past the last, the next panel's first blocks) and their scales, so memory
    /// delivers them while the arithmetic runs; one pass over the weights per 8 rows instead
    /// stalled on memory in its first pass and left it idle in the second. With several tiles
    /// each asks for its share of the lines between its own loads, one chunk of each group
    /// every `tiles` steps of its loop: asked for in a burst before each tile, they cost 10% of
    /// a 16-row product whose weights were already in cache; a 16-sequence decode step took 2%
    /// less with the first tile asking for them all in its loop, and 1.5-2% less again with
    /// them spread over the tiles (8 rows: 1%; alternated step by step in one process). Each
    /// row's blocks are summed in order with the same operations whatever the other rows, so
    /// a row's result does not depend on the batch it came in.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn panel<const NG: usize>(w: &Q8Matrix, xi: &QInput, g: usize, out: Cols) {
        const TILES: usize = CHUNK / ROWS;
        let nb = w.k / BLOCK;
        let gstride = nb * CHUNKS * 64;
        let mut j0 = 0;
        while j0 < xi.m {
            let rows = (xi.m - j0).min(CHUNK);
            let tiles = rows.div_ceil(ROWS);
            // Written by the first block before any read (zeroing all 3 KB for every panel and
            // chunk, whatever the rows, showed as 2-3% of a decode step in memset).
            let mut acc = std::mem::MaybeUninit::<[[[__m512; NG]; ROWS]; TILES]>::uninit();
            let tile_acc = acc.as_mut_ptr().cast::<[[__m512; NG]; ROWS]>();
            for b in 0..nb {
                // Later chunks find the panel in L2.
                let at = if j0 > 0 { None } else { ahead::<NG>(w, g, b) };
                let next = at.map(|(g, b)| w.qs.as_ptr().add(g * gstride + b * CHUNKS * 64));
                if let Some((g, b)) = at {
                    for i in 0..NG {
                        _mm_prefetch::<_MM_HINT_T1>(
                            w.scales.as_ptr().add(((g + i) * nb + b) * GROUP).cast(),
                        );
                    }
                }
                for t in 0..tiles {
                    let (acc, j) = (tile_acc.add(t), j0 + t * ROWS);
                    let mr = (rows - t * ROWS).min(ROWS);
                    match next {
                        // A lone tile asks for all the block's lines before its arithmetic.
                        Some(next) if tiles == 1 => {
                            ask_block::<NG>(next, gstride);
                            tile_block::<NG, 0>(w, xi, (g, j, b, mr), acc, next);
                        }
                        // Several share them: tile `t` asks for its run of the block's
                        // chunks (all groups), one chunk every `tiles` steps of its loop. With
                        // 3 tiles the last run reaches 2 chunks past the block: harmless for a
                        // prefetch, and bounding it inside the loop cost the gain.
                        Some(next) => {
                            let span = CHUNKS.div_ceil(tiles);
                            let first = t * span;
                            let ask = next.wrapping_add(first * 64);
                            match tiles {
                                2 => tile_block::<NG, 2>(w, xi, (g, j, b, mr), acc, ask),
                                3 => tile_block::<NG, 3>(w, xi, (g, j, b, mr), acc, ask),
                                _ => tile_block::<NG, 4>(w, xi, (g, j, b, mr), acc, ask),
                            }
                        }
                        _ => tile_block::<NG, 0>(w, xi, (g, j, b, mr), acc, std::ptr::null()),
                    }
                }
            }
            // Rows `0..rows` of the used tiles, all written by block 0.
            for c in 0..rows {
                let a = &*tile_acc.add(c / ROWS).cast::<[__m512; NG]>().add(c % ROWS);
                for (i, a) in a.iter().enumerate() {
                    _mm512_storeu_ps(out.group(j0 + c, g + i), *a);
                }
            }
            j0 += rows;
        }
    }

    /// Asks memory (into L2) for every line of one block of `NG` groups at `at`, whose groups
    /// are `gstride` bytes apart.
    ///
    /// # Safety
    /// None beyond the target features: a prefetch never faults.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn ask_block<const NG: usize>(at: *const u8, gstride: usize) {
        for i in 0..NG {
            for c in 0..CHUNKS {
                _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(i * gstride + c * 64).cast());
            }
        }
    }

    /// [`block`] of `mr` rows (at most [`ROWS`]) at `(g, j, b)`, asking memory for `ask`.
    ///
    /// # Safety
    /// As [`block`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile_block<const NG: usize, const EVERY: usize>(
        w: &Q8Matrix,
        xi: &QInput,
        (g, j, b, mr): (usize, usize, usize, usize),
        acc: *mut [[__m512; NG]; ROWS],
        ask: *const u8,
    ) {
        match mr {
            4 => block::<4, NG, EVERY>(w, xi, g, j, b, acc, ask),
            3 => block::<3, NG, EVERY>(w, xi, g, j, b, acc, ask),
            2 => block::<2, NG, EVERY>(w, xi, g, j, b, acc, ask),
            _ => block::<1, NG, EVERY>(w, xi, g, j, b, acc, ask),
        }
    }

    /// Block `b` of groups `g..g+NG` (16 rows of W each) against input rows `j..j+MR` (see
    /// [`dots`]), scaled and added to the first `MR` rows of `acc` (written, not added, by
    /// block 0).
    ///
    /// # Safety
    /// As `groups`; `acc` points to `ROWS` rows of `NG` registers whose first `MR` rows this
    /// call wrote for block 0 when `b > 0`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn block<const MR: usize, const NG: usize, const EVERY: usize>(
        w: &Q8Matrix,
        xi: &QInput,
        g: usize,
        j: usize,
        b: usize,
        acc: *mut [[__m512; NG]; ROWS],
        next: *const u8,
    ) {
        let dot = dots::<MR, NG, EVERY>(w, xi, g, j, b, next);
        // The groups' block scales, loaded once for every row (each row's stores to `acc`
        // could alias them for all the compiler knows, so it reloaded them row by row).
        let nb = w.k / BLOCK;
        let mut ws = [_mm512_setzero_ps(); NG];
        for (i, v) in ws.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(w.scales.as_ptr().add(((g + i) * nb + b) * GROUP));
        }
        for (c, dc) in dot.iter().enumerate() {
            let row = acc.cast::<[__m512; NG]>().add(c).cast::<__m512>();
            let xs = _mm512_set1_ps(*xi.scales.as_ptr().add((j + c) * nb + b));
            for (i, d) in dc.iter().enumerate() {
                // block 0 starts the row's sums; no accumulator is read before it is written
                let sum = if b == 0 {
                    None
                } else {
                    Some(row.add(i).read())
                };
                row.add(i).write(scale_sum(ws[i], xs, *d, sum));
            }
        }
    }

    /// The integer sums of block `b` of groups `g..g+NG` against input rows `j..j+MR`: `MR * NG`
    /// independent accumulators, so the multiply-adds do not wait on each other's latency, and
    /// each 4-byte input broadcast serves `NG` weight loads. Each starts at the row's
    /// `-128 * sum` of the block, which removes the weights' bias. With `EVERY > 0`, every
    /// `EVERY` steps it asks memory for the next 64-byte chunk of each group from `next` (a
    /// block laid out as this one); a prefetch never faults, so a request past the weights is
    /// harmless. Always inlined (no target features of its own): the 4-row tile keeps its
    /// sums in registers across blocks only so.
    ///
    /// # Safety
    /// As `groups`; called only from functions with AVX-512 F and VNNI enabled.
    #[inline(always)]
    unsafe fn dots<const MR: usize, const NG: usize, const EVERY: usize>(
        w: &Q8Matrix,
        xi: &QInput,
        g: usize,
        j: usize,
        b: usize,
        next: *const u8,
    ) -> [[__m512i; NG]; MR] {
        let k = w.k;
        let nb = k / BLOCK;
        let gstride = nb * CHUNKS * 64;
        let wq = w.qs.as_ptr().add(g * gstride + b * CHUNKS * 64);
        let xq = xi.qs.as_ptr().add(j * k + b * BLOCK);
        let mut dot = [[_mm512_setzero_si512(); NG]; MR];
        for (c, d) in dot.iter_mut().enumerate() {
            let start = _mm512_set1_epi32(*xi.starts.as_ptr().add((j + c) * nb + b));
            d.iter_mut().for_each(|d| *d = start);
        }
        for t in 0..CHUNKS {
            if EVERY > 0 && t % EVERY == 0 {
                for i in 0..NG {
                    let line = next.wrapping_add(i * gstride + t / EVERY * 64);
                    _mm_prefetch::<_MM_HINT_T1>(line.cast());
                }
            }
            let mut wv = [_mm512_setzero_si512(); NG];
            for (i, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(wq.add(i * gstride + t * 64) as *const _);
            }
            for (c, d) in dot.iter_mut().enumerate() {
                // The signed operand, broadcast from memory within the instruction.
                let xv = _mm512_set1_epi32((xq.add(c * k + 4 * t) as *const i32).read_unaligned());
                for (d, v) in d.iter_mut().zip(&wv) {
                    *d = _mm512_dpbusd_epi32(*d, *v, xv);
                }
            }
        }
        dot
    }

    /// Integer sum `dot` of group `g`, input row `row` and block `b` times the weights' and the
    /// row's block scales, added to `sum` (`None` for block 0: a product, not a sum with zero,
    /// so a row's result is the same to the bit whichever walk computed it).
    ///
    /// # Safety
    /// As [`dots`].
    #[inline(always)]
    unsafe fn scaled(
        w: &Q8Matrix,
        xi: &QInput,
        (g, row, b): (usize, usize, usize),
        dot: __m512i,
        sum: Option<__m512>,
    ) -> __m512 {
        let nb = w.k / BLOCK;
        scale_sum(
            _mm512_loadu_ps(w.scales.as_ptr().add((g * nb + b) * GROUP)),
            _mm512_set1_ps(*xi.scales.as_ptr().add(row * nb + b)),
            dot,
            sum,
        )
    }

    /// [`scaled`] with the group's block scales `ws` and the row's block scale `xs` (broadcast)
    /// already loaded: their product, then one multiply (block 0) or multiply-add.
    ///
    /// # Safety
    /// As [`dots`].
    #[inline(always)]
    unsafe fn scale_sum(ws: __m512, xs: __m512, dot: __m512i, sum: Option<__m512>) -> __m512 {
        let s = _mm512_mul_ps(ws, xs);
        let p = _mm512_cvtepi32_ps(dot);
        match sum {
            None => _mm512_mul_ps(p, s),
            Some(a) => _mm512_fmadd_ps(p, s, a),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1] for kernel tests.
    pub(crate) fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20001) as f32 / 10000.0 - 1.0
            })
            .collect()
    }

    fn reference(w: &Q8Matrix, x: &[f32], m: usize) -> Vec<f32> {
        // f32 matmul of the dequantized weights with the dequantized inputs
        let (n, k, nb) = (w.n, w.k, w.k / BLOCK);
        let xi = w.quantize_input(x, m);
        let mut out = vec![0f32; m * n];
        for j in 0..m {
            for i in 0..n {
                let mut acc = 0f64;
                for t in 0..k {
                    let (g, r, b, c) = (i / GROUP, i % GROUP, t / BLOCK, t % BLOCK);
                    let lane = (g * nb + b) * GROUP + r;
                    let q = w.qs[((g * nb + b) * CHUNKS + c / 4) * 64 + r * 4 + c % 4];
                    let wv = (q as f64 - 128.0) * w.scales[lane] as f64;
                    let xv = xi.qs[j * k + t] as f64 * xi.scales[j * nb + b] as f64;
                    acc += wv * xv;
                }
                out[j * n + i] = acc as f32;
            }
        }
        out
    }

    #[test]
    fn blocks_round_trip_within_half_a_step() {
        let x = data(64, 3);
        let mut q = [0i8; 32];
        let d = quantize_block(&x[..32], &mut q);
        for (v, &q) in x[..32].iter().zip(&q) {
            assert!((v - q as f32 * d).abs() <= d * 0.5 + 1e-6);
        }
        assert_eq!(quantize_block(&[0.0; 32], &mut q), 0.0);
        assert!(Q8Matrix::quantize(&x, 2, 32).is_err());
        assert!(Q8Matrix::quantize(&vec![0.0; 16 * 31], 16, 31).is_err());
    }

    #[test]
    fn matmul_equals_dequantized_reference_for_every_batch_shape() {
        // 1 to 5 groups (partial panels), one to three chunks of 16 rows, split across threads
        for (n, k) in [(16, 64), (48, 192), (32, 576), (80, 1536)] {
            let mut w = Q8Matrix::quantize(&data(n * k, n as u32), n, k).expect("quantize");
            w.drop_tile_copies(); // the int8 kernel at every row count
            for m in [1, 2, 3, 4, 5, 7, 9, 16, 19, 33, 130] {
                let x = data(m * k, (m * 7) as u32);
                let mut out = vec![0f32; m * n];
                w.matmul(&x, m, &mut out);
                let want = reference(&w, &x, m);
                let err = out
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(err < 1e-3, "n={n} k={k} m={m}: {err}");
            }
        }
    }

    #[test]
    fn produced_rows_give_the_product_of_the_stored_rows_to_the_bit() {
        // each row written by `fill` once, on the calling thread (few rows) or across the pool
        let (n, k) = (96, 576);
        for tiles in [false, true] {
            let mut w = Q8Matrix::quantize(&data(n * k, 3), n, k).expect("quantize");
            if !tiles {
                w.drop_tile_copies();
            }
            for m in [1, 5, 16, 300] {
                let x = data(m * k, m as u32);
                let mut want = vec![0f32; m * n];
                w.matmul(&x, m, &mut want);
                let calls: Vec<std::sync::atomic::AtomicUsize> =
                    (0..m).map(|_| Default::default()).collect();
                let mut got = vec![f32::NAN; m * n];
                w.matmul_rows(
                    m,
                    |r, row| {
                        calls[r].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        row.copy_from_slice(&x[r * k..(r + 1) * k]);
                    },
                    &mut got,
                );
                assert!(
                    calls
                        .iter()
                        .all(|c| c.load(std::sync::atomic::Ordering::Relaxed) == 1),
                    "m={m}"
                );
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "m={m}, tile copies kept: {tiles}");
            }
        }
    }

    #[test]
    fn a_product_written_in_parts_equals_the_whole_split_by_columns() {
        // q, k and v of a fused projection: 576 + 192 + 192 columns
        let (n, k, widths) = (960, 64, [576, 192, 192]);
        let mut w = Q8Matrix::quantize(&data(n * k, 6), n, k).expect("quantize");
        w.drop_tile_copies();
        for m in [1, 16, TILES_OUTER_MIN_ROWS + 1] {
            let x = data(m * k, 8);
            let mut whole = vec![0f32; m * n];
            w.matmul(&x, m, &mut whole);
            let mut parts: Vec<Vec<f32>> = widths.iter().map(|&c| vec![f32::NAN; m * c]).collect();
            let [a, b, c] = &mut parts[..] else {
                unreachable!()
            };
            let fill = |r: usize, row: &mut [f32]| row.copy_from_slice(&x[r * k..(r + 1) * k]);
            w.matmul_rows_into(m, fill, [&mut a[..], &mut b[..], &mut c[..]]);
            for r in 0..m {
                let mut col = 0;
                for (part, &c) in parts.iter().zip(&widths) {
                    let got = &part[r * c..(r + 1) * c];
                    assert_eq!(got, &whole[r * n + col..r * n + col + c], "row {r} of {m}");
                    col += c;
                }
            }
        }
    }

    #[test]
    fn a_rows_product_does_not_depend_on_its_batch() {
        // one row alone, in a decode-sized batch and in a prefill-sized one (tiles outer)
        let (n, k) = (112, 576);
        let mut w = Q8Matrix::quantize(&data(n * k, 9), n, k).expect("quantize");
        w.drop_tile_copies();
        let m = TILES_OUTER_MIN_ROWS + 3;
        let x = data(m * k, 4);
        let mut all = vec![0f32; m * n];
        w.matmul(&x, m, &mut all);
        let mut some = vec![0f32; 16 * n];
        w.matmul(&x[..16 * k], 16, &mut some);
        for r in [0, 5, 15, m - 1] {
            let mut one = vec![0f32; n];
            w.matmul(&x[r * k..(r + 1) * k], 1, &mut one);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&all[r * n..(r + 1) * n]), bits(&one), "row {r} of {m}");
            if r < 16 {
                assert_eq!(bits(&some[r * n..(r + 1) * n]), bits(&one), "row {r} of 16");
            }
        }
    }

    #[test]
    fn portable_and_simd_kernels_agree() {
        let (n, k, m) = (32, 192, 15);
        let w = Q8Matrix::quantize(&data(n * k, 11), n, k).expect("quantize");
        let x = data(m * k, 5);
        let xi = w.quantize_input(&x, m);
        let mut a = vec![0f32; m * n];
        let mut b = vec![0f32; m * n];
        unsafe {
            w.groups_portable(&xi, 0..n / GROUP, Cols::new([&mut a[..]], m, n));
            w.groups(&xi, 0..n / GROUP, Cols::new([&mut b[..]], m, n));
        }
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-3, "{x} vs {y}");
        }
    }

    #[test]
    fn simd_input_quantization_equals_the_block_quantizer() {
        let mut x = data(BLOCK * 7, 21);
        x[BLOCK..2 * BLOCK].iter_mut().for_each(|v| *v = 0.0);
        let k = BLOCK * 7;
        let w = Q8Matrix::quantize(&data(16 * k, 1), 16, k).expect("quantize");
        let xi = w.quantize_input(&x, 1);
        let mut q = [0i8; BLOCK];
        for b in 0..7 {
            let d = quantize_block(&x[b * BLOCK..(b + 1) * BLOCK], &mut q);
            assert_eq!(xi.scales[b], d, "block {b}");
            assert_eq!(&xi.qs[b * BLOCK..(b + 1) * BLOCK], &q[..], "block {b}");
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            assert_eq!(xi.starts[b], -128 * sum, "block {b}");
        }
    }

    #[test]
    fn close_to_the_f32_product() {
        let (n, k, m) = (64, 576, 3);
        let wf = data(n * k, 9);
        let w = Q8Matrix::quantize(&wf, n, k).expect("quantize");
        let x = data(m * k, 4);
        let mut out = vec![0f32; m * n];
        w.matmul(&x, m, &mut out);
        for j in 0..m {
            for i in 0..n {
                let exact: f32 = (0..k).map(|t| wf[i * k + t] * x[j * k + t]).sum();
                // two 8-bit roundings of values in [-1, 1] over 576 terms
                assert!(
                    (out[j * n + i] - exact).abs() < 0.25,
                    "{} vs {exact}",
                    out[j * n + i]
                );
            }
        }
    }
}

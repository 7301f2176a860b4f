//! Int8 matmul on AMX tiles (`tdpbssd`), for batched decode steps (a few to a few dozen rows).
//!
//! At decode batch sizes a step is bound by reading the weights, and the bf16 copy (see `amx`)
//! reads twice the bytes of int8. Here weights are int8 in blocks of 64 along `k` with an f32
//! scale per row and block (Q8_0's scheme with 64-value blocks: one tile product spans one
//! block), inputs likewise per row and block. A tile product gives the exact int32 block dot
//! products of 16 rows x 16 columns; they are scaled by `scale_x * scale_w` and summed in f32
//! registers. Weights are stored as the B tile wants them
//! (`[group][block][k % 64 / 4][row in group][k % 4]`), 1 KiB per group and block.
use std::ops::Range;

use super::amx::TileConfig;
use super::huge::HugeBuf;
use super::qmatmul::{quantize_block, quantize_blocks, OutPtr};

/// Output rows per group (columns of a tile).
const GROUP: usize = 16;
/// Values per quantization block (64 int8 = one tile row; the VNNI copy's block too, so both
/// kernels give the same numbers).
pub const KBLOCK: usize = super::qmatmul::BLOCK;
/// Input rows per tile.
const TILE_ROWS: usize = 16;
/// How far ahead (in 1 KiB weight tiles) the kernel prefetches, one tile per product.
const PREFETCH_TILES: usize = 4;

/// A `(n, k)` weight matrix in int8 blocks, AMX layout; `n` a multiple of 16, `k` of 64.
#[derive(Debug, Clone)]
pub struct I8TileMatrix {
    n: usize,
    k: usize,
    w: HugeBuf<i8>,
    /// `[group][block][row in group]`
    scales: HugeBuf<f32>,
}

/// One tile of int32 products, 16 x 16.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Tile([i32; 256]);

thread_local! {
    /// Per-thread block products of the tile kernel (one tile per block of `k`).
    static SCRATCH: std::cell::RefCell<Vec<Tile>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Inputs quantized per row and block, rows padded with zeros to a multiple of 16.
struct I8Input {
    m: usize,
    padded: usize,
    q: Vec<i8>,
    /// `[row][block]`
    scales: Vec<f32>,
}

impl I8TileMatrix {
    pub fn supports(n: usize, k: usize) -> bool {
        n > 0 && k > 0 && n.is_multiple_of(GROUP) && k.is_multiple_of(KBLOCK)
    }

    /// From a row-major `(n, k)` f32 matrix; `None` when the shape does not fit the layout.
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Option<Self> {
        if !Self::supports(n, k) || w.len() != n * k {
            return None;
        }
        let nb = k / KBLOCK;
        let mut q = HugeBuf::<i8>::new(n * k);
        let mut scales = HugeBuf::<f32>::new(n * nb);
        let mut blk = [0i8; KBLOCK];
        for i in 0..n {
            let (g, r) = (i / GROUP, i % GROUP);
            for b in 0..nb {
                let d = quantize_block(&w[i * k + b * KBLOCK..][..KBLOCK], &mut blk);
                scales[(g * nb + b) * GROUP + r] = d;
                for (c, &v) in blk.iter().enumerate() {
                    q[((g * nb + b) * 16 + c / 4) * 64 + r * 4 + c % 4] = v;
                }
            }
        }
        Some(I8TileMatrix { n, k, w: q, scales })
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn quantize_input(&self, x: &[f32], m: usize) -> I8Input {
        let nb = self.k / KBLOCK;
        let padded = m.div_ceil(TILE_ROWS) * TILE_ROWS;
        let mut q = vec![0i8; padded * self.k];
        let mut scales = vec![0f32; padded * nb];
        quantize_blocks(&x[..m * self.k], &mut q, &mut scales);
        I8Input {
            m,
            padded,
            q,
            scales,
        }
    }

    /// `out (m, n) = x (m, k) W^T`; call only when [`super::amx::int8_available`].
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), m * self.k);
        debug_assert_eq!(out.len(), m * self.n);
        if m == 0 {
            return;
        }
        let xi = self.quantize_input(x, m);
        let ptr = OutPtr(out.as_mut_ptr());
        let run = |r: Range<usize>| {
            // SAFETY: AMX-INT8 usable (checked by the caller); ranges are disjoint column
            // groups of `out`.
            unsafe { self.groups(&xi, r, ptr) }
        };
        super::par::run_chunked(self.n / GROUP, run);
    }

    /// The same quantization and integer block products without AMX, for tests.
    pub fn matmul_reference(&self, x: &[f32], m: usize) -> Vec<f32> {
        let xi = self.quantize_input(x, m);
        let nb = self.k / KBLOCK;
        let mut out = vec![0f32; m * self.n];
        for j in 0..m {
            for i in 0..self.n {
                let (g, r) = (i / GROUP, i % GROUP);
                let mut acc = 0f32;
                for b in 0..nb {
                    let mut dot = 0i32;
                    for c in 0..KBLOCK {
                        let wq = self.w[((g * nb + b) * 16 + c / 4) * 64 + r * 4 + c % 4];
                        dot += wq as i32 * xi.q[j * self.k + b * KBLOCK + c] as i32;
                    }
                    let s = self.scales[(g * nb + b) * GROUP + r] * xi.scales[j * nb + b];
                    acc += dot as f32 * s;
                }
                out[j * self.n + i] = acc;
            }
        }
        out
    }

    /// # Safety
    /// AMX-INT8 available and permitted; `out` holds `m * n` floats, these groups' columns ours.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn groups(&self, xi: &I8Input, groups: Range<usize>, out: OutPtr) {
        let nb = self.k / KBLOCK;
        let cfg = TileConfig::uniform(8);
        std::arch::asm!("ldtilecfg [{0}]", in(reg) &cfg as *const TileConfig);
        // The int32 products of every block of one (group, row tile), 1 KiB each: the tile
        // loop only multiplies and stores (tiles are not renamed, so scaling in between would
        // stall it), then one pass scales and sums them.
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < nb {
                scratch.resize(nb, Tile([0; 256]));
            }
            self.groups_with(xi, groups, out, &mut scratch[..nb]);
        });
        std::arch::asm!("tilerelease");
    }

    /// # Safety
    /// As [`Self::groups`], with the tile configuration loaded; `scratch` holds one tile per
    /// block.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn groups_with(
        &self,
        xi: &I8Input,
        groups: Range<usize>,
        out: OutPtr,
        scratch: &mut [Tile],
    ) {
        use std::arch::x86_64::*;
        let (k, nb) = (self.k, self.k / KBLOCK);
        let sp = scratch.as_mut_ptr();
        for g in groups {
            let bg = self.w.as_ptr().add(g * nb * 1024);
            for m0 in (0..xi.padded).step_by(TILE_ROWS) {
                let a = xi.q.as_ptr().add(m0 * k);
                // Four blocks per round on four accumulator tiles (A in tmm4/5, B in tmm6/7
                // alternating).
                let mut b = 0;
                while b < nb {
                    let left = nb - b;
                    // One weight tile a few products ahead per product (the first row tile
                    // only: later ones find the group in cache). Spread out, the requests
                    // keep memory busy without queueing behind each other.
                    macro_rules! product {
                        ($c:literal, $a:literal, $b:literal, $blk:expr) => {
                            if m0 == 0 {
                                let ahead = bg.wrapping_add(($blk + PREFETCH_TILES) * 1024);
                                for line in 0..16 {
                                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 64).cast());
                                }
                            }
                            std::arch::asm!(
                                concat!("tilezero tmm", $c),
                                concat!("tileloadd tmm", $a, ", [{a} + {sa}*1]"),
                                concat!("tileloadd tmm", $b, ", [{b} + {sb}*1]"),
                                concat!("tdpbssd tmm", $c, ", tmm", $a, ", tmm", $b),
                                concat!("tilestored [{s} + {sb}*1], tmm", $c),
                                a = in(reg) a.add($blk * KBLOCK),
                                sa = in(reg) k,
                                b = in(reg) bg.add($blk * 1024),
                                sb = in(reg) 64usize,
                                s = in(reg) sp.add($blk),
                            )
                        };
                    }
                    product!("0", "4", "6", b);
                    if left > 1 {
                        product!("1", "5", "7", b + 1);
                    }
                    if left > 2 {
                        product!("2", "4", "6", b + 2);
                    }
                    if left > 3 {
                        product!("3", "5", "7", b + 3);
                    }
                    b += 4;
                }
                let rows = xi.m.saturating_sub(m0).min(TILE_ROWS);
                for r in 0..rows {
                    let mut acc = _mm512_setzero_ps();
                    let xs = xi.scales.as_ptr().add((m0 + r) * nb);
                    for (blk, t) in scratch.iter().enumerate() {
                        let w = _mm512_loadu_ps(self.scales.as_ptr().add((g * nb + blk) * GROUP));
                        let c =
                            _mm512_cvtepi32_ps(_mm512_load_si512(t.0.as_ptr().add(r * 16).cast()));
                        acc =
                            _mm512_fmadd_ps(c, _mm512_mul_ps(w, _mm512_set1_ps(*xs.add(blk))), acc);
                    }
                    _mm512_storeu_ps(out.0.add((m0 + r) * self.n + g * GROUP), acc);
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn groups(&self, _: &I8Input, _: Range<usize>, _: OutPtr) {
        unreachable!("AMX is x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::amx::int8_available;
    use crate::model::qmatmul::tests::data;

    #[test]
    fn reference_is_close_to_f32() {
        let (n, k) = (32, 128);
        let w = data(n * k, 3);
        let m = I8TileMatrix::from_f32(&w, n, k).expect("layout");
        let x = data(2 * k, 7);
        let r = m.matmul_reference(&x, 2);
        for j in 0..2 {
            for i in 0..n {
                let exact: f32 = (0..k).map(|c| w[i * k + c] * x[j * k + c]).sum();
                assert!(
                    (r[j * n + i] - exact).abs() < 0.05,
                    "{} vs {exact}",
                    r[j * n + i]
                );
            }
        }
        assert!(I8TileMatrix::from_f32(&w[..32 * 96], 32, 96).is_none());
    }

    #[test]
    fn tiles_equal_the_reference() {
        if !int8_available() {
            eprintln!("AMX-INT8 not available here: only the reference was checked");
            return;
        }
        let (n, k) = (48, 192); // three blocks: one pair and a single
        let w = I8TileMatrix::from_f32(&data(n * k, 5), n, k).expect("layout");
        for m in [1, 8, 16, 17, 33] {
            let x = data(m * k, m as u32 + 1);
            let mut out = vec![0f32; m * n];
            w.matmul(&x, m, &mut out);
            let want = w.matmul_reference(&x, m);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "m={m}: {a} vs {b}");
            }
        }
    }
}

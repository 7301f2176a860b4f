//! bf16 matmul on AMX tiles (Intel Sapphire Rapids and later), for steps of many rows.
//!
//! The int8 kernel (`qmatmul`) is bound by `vpdpbusd` throughput once a step has more than a few
//! rows; an AMX `tdpbf16ps` does a 16 x 16 x 32 product per instruction. Weights are kept in bf16,
//! 16 output rows per group, in the pair-interleaved layout the B tile wants
//! (`[group][k / 32][k % 32 / 2][row in group][k % 2]`), so a B tile is 1 KiB of contiguous
//! memory; inputs are rounded to bf16 row-major and loaded 16 rows at a time; products are
//! accumulated in f32 inside the tile over the whole `k` and stored straight into the output.
//! Linux hands out AMX state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); without it, or
//! without the instructions, [`available`] is false and callers use the int8 kernel.
//! `MEIT_NO_AMX` turns this path off.
use std::ops::Range;

use super::huge::HugeBuf;
use super::par::{run_split, OutPtr};

/// Output rows per group (columns of a tile).
const GROUP: usize = 16;
/// `k` per tile step (32 bf16 = 64 bytes per tile row).
const KSTEP: usize = 32;

/// A `(n, k)` weight matrix in bf16, AMX layout; `n` a multiple of 16, `k` of 32.
#[derive(Debug, Clone)]
pub struct Bf16Matrix {
    n: usize,
    k: usize,
    data: HugeBuf<u16>,
}

/// Round to nearest even.
fn bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let r = ((b >> 16) & 1) + 0x7FFF;
    (b.wrapping_add(r) >> 16) as u16
}

fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `x (m, k)` f32 rounded to bf16 in A-tile order: blocks of 16 rows (the last one `m % 16`
/// rows), within a block `k / 32` tiles of `rows x 32`, each contiguous (64-byte rows), so a tile
/// load reads whole consecutive cache lines. Block `b` starts at element `16 b k`. Blocks are
/// converted on the worker pool, not on the calling thread while the others wait.
fn pack_rows(x: &[f32], m: usize, k: usize) -> Vec<u16> {
    let mut xb = vec![0u16; m * k];
    let dst = OutPtr(xb.as_mut_ptr());
    run_split(m.div_ceil(16), m * k, |blocks| {
        for b in blocks {
            let (r0, h) = (b * 16, (m - b * 16).min(16));
            // SAFETY: block `b` owns elements `16 b k .. (16 b + h) k` of `xb`.
            let block = unsafe { dst.slice(r0 * k, h * k) };
            for r in 0..h {
                let row = &x[(r0 + r) * k..(r0 + r + 1) * k];
                for (kc, chunk) in row.chunks_exact(KSTEP).enumerate() {
                    let at = kc * h * KSTEP + r * KSTEP;
                    bf16_row(chunk, &mut block[at..at + KSTEP]);
                }
            }
        }
    });
    xb
}

/// 32 floats to bf16 (round to nearest even, as [`bf16`]).
fn bf16_row(src: &[f32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present; both slices hold 32 elements.
        return unsafe { bf16_row_avx512(src, dst) };
    }
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = bf16(v);
    }
}

/// # Safety
/// AVX-512 F; `src` and `dst` hold 32 elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn bf16_row_avx512(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    debug_assert!(src.len() == KSTEP && dst.len() == KSTEP);
    for h in 0..2 {
        let b = _mm512_castps_si512(_mm512_loadu_ps(src.as_ptr().add(16 * h)));
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let r = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF));
        let y = _mm512_srli_epi32::<16>(_mm512_add_epi32(b, r));
        _mm256_storeu_si256(
            dst.as_mut_ptr().add(16 * h) as *mut __m256i,
            _mm512_cvtepi32_epi16(y),
        );
    }
}

/// Address of the A tile of the row block starting at `r0` (`h` rows) at `k` step `kc`.
///
/// # Safety
/// `xb` packed by [`pack_rows`] for these `m` and `k`, `r0` a block start.
#[cfg(target_arch = "x86_64")]
unsafe fn a_tile(xb: &[u16], k: usize, r0: usize, h: usize, kc: usize) -> *const u16 {
    xb.as_ptr().add(r0 * k + kc * h * KSTEP)
}

impl Bf16Matrix {
    pub fn supports(n: usize, k: usize) -> bool {
        n > 0 && k > 0 && n.is_multiple_of(GROUP) && k.is_multiple_of(KSTEP)
    }

    /// From a row-major `(n, k)` f32 matrix; `None` when the shape does not fit the layout.
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Option<Self> {
        if !Self::supports(n, k) || w.len() != n * k {
            return None;
        }
        let mut data = HugeBuf::<u16>::new(n * k);
        for i in 0..n {
            let (g, r) = (i / GROUP, i % GROUP);
            for c in 0..k {
                let (kc, pair, half) = (c / KSTEP, (c % KSTEP) / 2, c % 2);
                let at = (((g * (k / KSTEP) + kc) * (KSTEP / 2) + pair) * GROUP + r) * 2 + half;
                data[at] = bf16(w[i * k + c]);
            }
        }
        Some(Bf16Matrix { n, k, data })
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// `out (m, n) = x (m, k) W^T`; call only when [`available`].
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), m * self.k);
        debug_assert_eq!(out.len(), m * self.n);
        let xb = pack_rows(x, m, self.k);
        let groups = self.n / GROUP;
        let pairs = groups.div_ceil(2);
        // Work items are (pair of groups, chunk of rows), pair-major: every item but the last
        // pair runs the two-by-two path, and there are enough items that the threads finish
        // together even when a matrix has only a few dozen groups.
        let chunk = if m >= 256 { 64 } else { 32 };
        let chunks = m.div_ceil(chunk);
        let ptr = OutPtr(out.as_mut_ptr());
        let run = |items: Range<usize>| {
            let mut i = items.start;
            while i < items.end {
                let (pair, c0) = (i / chunks, i % chunks);
                let c1 = (c0 + items.end - i).min(chunks);
                let g = pair * 2..(pair * 2 + 2).min(groups);
                let rows = c0 * chunk..(c1 * chunk).min(m);
                // SAFETY: AMX usable (checked by the caller through `available`); items are
                // disjoint (rows, column groups) blocks of `out`.
                unsafe { self.groups(&xb, m, rows, g, ptr) }
                i += c1 - c0;
            }
        };
        super::par::run_chunked(pairs * chunks, run);
    }

    /// Reference on the CPU without AMX (same bf16 rounding), for tests.
    pub fn matmul_reference(&self, x: &[f32], m: usize) -> Vec<f32> {
        let nk = self.k / KSTEP;
        let mut out = vec![0f32; m * self.n];
        for j in 0..m {
            for i in 0..self.n {
                let (g, r) = (i / GROUP, i % GROUP);
                let mut acc = 0f32;
                for c in 0..self.k {
                    let (kc, pair, half) = (c / KSTEP, (c % KSTEP) / 2, c % 2);
                    let at = (((g * nk + kc) * (KSTEP / 2) + pair) * GROUP + r) * 2 + half;
                    acc += from_bf16(self.data[at]) * from_bf16(bf16(x[j * self.k + c]));
                }
                out[j * self.n + i] = acc;
            }
        }
        out
    }

    /// # Safety
    /// AMX available and permitted; `xb` packed by [`pack_rows`]; `out` holds `m * n` floats,
    /// the block of these rows and these groups' columns ours.
    #[cfg(target_arch = "x86_64")]
    unsafe fn groups(
        &self,
        xb: &[u16],
        m: usize,
        rows: Range<usize>,
        groups: Range<usize>,
        out: OutPtr,
    ) {
        // `rows` starts on a multiple of 32 and ends on one or at `m`. Full 16-row blocks
        // first, then the remainder with its own tile shape. Within a shape, each group's
        // weights (a few KiB per `k` step) are loaded once from memory and reused from cache
        // by every row block.
        let full = (rows.end.min(m / 16 * 16)).max(rows.start);
        // Pairs of row blocks against pairs of groups: four accumulator tiles, and each
        // pair of A and B loads feeds four products (the single-block path gets three from four).
        let paired_rows = rows.start + (full - rows.start) / 32 * 32;
        let paired_end = groups.start + groups.len() / 2 * 2;
        let mut done = rows.start;
        if paired_rows > rows.start && paired_end > groups.start {
            self.blocks_2x2(xb, rows.start..paired_rows, groups.start..paired_end, out);
            if paired_end < groups.end {
                self.blocks(xb, rows.start..paired_rows, 16, paired_end..groups.end, out);
            }
            done = paired_rows;
        }
        if full > done {
            self.blocks(xb, done..full, 16, groups.clone(), out);
        }
        if full < rows.end {
            self.blocks(xb, full..rows.end, rows.end - full, groups, out);
        }
    }

    /// Rows `rows` (a multiple of 32) against groups `groups` (an even count), two row blocks
    /// by two groups at a time.
    ///
    /// # Safety
    /// As [`Self::groups`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn blocks_2x2(&self, xb: &[u16], rows: Range<usize>, groups: Range<usize>, out: OutPtr) {
        let nk = self.k / KSTEP;
        let c_stride = self.n * 4;
        let cfg = TileConfig::uniform(8);
        std::arch::asm!("ldtilecfg [{0}]", in(reg) &cfg as *const TileConfig);
        let bp = |g: usize| self.data.as_ptr().add(g * nk * KSTEP * GROUP);
        let cp = |m0: usize, g: usize| out.0.add(m0 * self.n + g * GROUP);
        for g in groups.step_by(2) {
            let (b0, b1) = (bp(g), bp(g + 1));
            for m0 in rows.clone().step_by(32) {
                std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3"
                );
                for kc in 0..nk {
                    let o = kc * KSTEP * GROUP;
                    std::arch::asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tileloadd tmm7, [{b1} + {sb}*1]",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a_tile(xb, self.k, m0, 16, kc),
                        a1 = in(reg) a_tile(xb, self.k, m0 + 16, 16, kc),
                        sa = in(reg) 64usize,
                        b0 = in(reg) b0.add(o),
                        b1 = in(reg) b1.add(o),
                        sb = in(reg) 64usize,
                    );
                }
                std::arch::asm!(
                    "tilestored [{c0} + {sc}*1], tmm0",
                    "tilestored [{c1} + {sc}*1], tmm1",
                    "tilestored [{c2} + {sc}*1], tmm2",
                    "tilestored [{c3} + {sc}*1], tmm3",
                    c0 = in(reg) cp(m0, g),
                    c1 = in(reg) cp(m0, g + 1),
                    c2 = in(reg) cp(m0 + 16, g),
                    c3 = in(reg) cp(m0 + 16, g + 1),
                    sc = in(reg) c_stride,
                );
            }
        }
        std::arch::asm!("tilerelease");
    }

    /// Rows `rows` (a multiple of `tile_rows`) against these groups.
    ///
    /// # Safety
    /// As [`Self::groups`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn blocks(
        &self,
        xb: &[u16],
        rows: Range<usize>,
        tile_rows: usize,
        groups: Range<usize>,
        out: OutPtr,
    ) {
        let nk = self.k / KSTEP;
        let c_stride = self.n * 4;
        let cfg = TileConfig::new(tile_rows);
        std::arch::asm!("ldtilecfg [{0}]", in(reg) &cfg as *const TileConfig);
        let bp = |g: usize| self.data.as_ptr().add(g * nk * KSTEP * GROUP);
        let cp = |m0: usize, g: usize| out.0.add(m0 * self.n + g * GROUP);
        // Three groups at a time: three independent accumulator chains hide the latency of
        // `tdpbf16ps` (several times its issue interval).
        let mut g = groups.start;
        while g + 3 <= groups.end {
            let (b0, b1, b2) = (bp(g), bp(g + 1), bp(g + 2));
            for m0 in rows.clone().step_by(tile_rows) {
                std::arch::asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2");
                for kc in 0..nk {
                    let o = kc * KSTEP * GROUP;
                    std::arch::asm!(
                        "tileloadd tmm3, [{a} + {sa}*1]",
                        "tileloadd tmm4, [{b0} + {sb}*1]",
                        "tileloadd tmm5, [{b1} + {sb}*1]",
                        "tileloadd tmm6, [{b2} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm3, tmm4",
                        "tdpbf16ps tmm1, tmm3, tmm5",
                        "tdpbf16ps tmm2, tmm3, tmm6",
                        a = in(reg) a_tile(xb, self.k, m0, tile_rows, kc),
                        sa = in(reg) 64usize,
                        b0 = in(reg) b0.add(o),
                        b1 = in(reg) b1.add(o),
                        b2 = in(reg) b2.add(o),
                        sb = in(reg) 64usize,
                    );
                }
                std::arch::asm!(
                    "tilestored [{c0} + {sc}*1], tmm0",
                    "tilestored [{c1} + {sc}*1], tmm1",
                    "tilestored [{c2} + {sc}*1], tmm2",
                    c0 = in(reg) cp(m0, g),
                    c1 = in(reg) cp(m0, g + 1),
                    c2 = in(reg) cp(m0, g + 2),
                    sc = in(reg) c_stride,
                );
            }
            g += 3;
        }
        while g < groups.end {
            let b = bp(g);
            for m0 in rows.clone().step_by(tile_rows) {
                std::arch::asm!("tilezero tmm0");
                for kc in 0..nk {
                    std::arch::asm!(
                        "tileloadd tmm3, [{a} + {sa}*1]",
                        "tileloadd tmm4, [{b} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm3, tmm4",
                        a = in(reg) a_tile(xb, self.k, m0, tile_rows, kc),
                        sa = in(reg) 64usize,
                        b = in(reg) b.add(kc * KSTEP * GROUP),
                        sb = in(reg) 64usize,
                    );
                }
                std::arch::asm!(
                    "tilestored [{c} + {sc}*1], tmm0",
                    c = in(reg) cp(m0, g),
                    sc = in(reg) c_stride,
                );
            }
            g += 1;
        }
        std::arch::asm!("tilerelease");
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn groups(&self, _: &[u16], _: usize, _: Range<usize>, _: Range<usize>, _: OutPtr) {
        unreachable!("AMX is x86-64 only")
    }
}

/// Palette 1: tmm0-2 = C (`rows` x 16 f32), tmm3 = A (`rows` x 32 bf16), tmm4-6 = B (16 x 32
/// bf16 pairs).
#[repr(C, align(64))]
pub(crate) struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    /// Tiles `0..count` all 16 rows of 64 bytes.
    pub(crate) fn uniform(count: usize) -> Self {
        let mut c = Self::new(16);
        for t in 0..16 {
            let on = t < count;
            c.colsb[t] = if on { 64 } else { 0 };
            c.rows[t] = if on { 16 } else { 0 };
        }
        c
    }

    fn new(rows: usize) -> Self {
        let mut c = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        for (t, r) in [
            (0, rows),
            (1, rows),
            (2, rows),
            (3, rows),
            (4, 16),
            (5, 16),
            (6, 16),
        ] {
            c.colsb[t] = 64;
            c.rows[t] = r as u8;
        }
        c
    }
}

/// Whether the AMX int8 path can run here: [`available`] and the CPU has AMX-INT8.
pub fn int8_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID leaf 7: EDX bit 25 AMX-INT8.
        available() && std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 25) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AMX path can run here: the CPU has AMX-BF16 and the kernel granted this process
/// the tile state. Asked once.
pub fn available() -> bool {
    use std::sync::OnceLock;
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if std::env::var_os("MEIT_NO_AMX").is_some() {
            return false;
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE (the std detection macro
            // does not take AMX names on stable Rust).
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            if edx & (1 << 22) == 0 || edx & (1 << 24) == 0 {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: a plain syscall asking for permission; no memory is passed.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_arch_prctl,
                    ARCH_REQ_XCOMP_PERM,
                    XFEATURE_XTILEDATA,
                )
            };
            r == 0
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::qmatmul::tests::data;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(from_bf16(bf16(1.0)), 1.0);
        assert_eq!(from_bf16(bf16(-2.5)), -2.5);
        let x = 1.0 + 1.0 / 256.0; // halfway between two bf16 values: to even
        assert_eq!(from_bf16(bf16(x)), 1.0);
        assert!((from_bf16(bf16(0.1234)) - 0.1234).abs() < 1e-3);
        assert!(Bf16Matrix::from_f32(&[0.0; 15 * 32], 15, 32).is_none());
    }

    #[test]
    fn amx_matmul_equals_the_bf16_reference() {
        let (n, k) = (80, 96);
        let w = Bf16Matrix::from_f32(&data(n * k, 3), n, k).expect("layout");
        // the reference itself against f32
        let x1 = data(k, 9);
        let r = w.matmul_reference(&x1, 1);
        let wf = data(n * k, 3);
        for i in 0..n {
            let exact: f32 = (0..k).map(|c| wf[i * k + c] * x1[c]).sum();
            assert!((r[i] - exact).abs() < 0.05, "{} vs {exact}", r[i]);
        }
        if !available() {
            eprintln!("AMX not available here: only the reference was checked");
            return;
        }
        eprintln!("AMX available: checking the tile kernel");
        for m in [1, 5, 16, 17, 40, 48, 64, 81, 300] {
            // 5 groups: pairs and a remainder, one triple and the remainder path; 300 rows:
            // chunks of 64 rows ending in a partial 16-row block
            let x = data(m * k, m as u32);
            let mut out = vec![0f32; m * n];
            w.matmul(&x, m, &mut out);
            let want = w.matmul_reference(&x, m);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-3, "m={m}: {a} vs {b}");
            }
            // all groups on this thread in one range: the triple path and the remainder
            let xb = pack_rows(&x, m, k);
            let mut one = vec![0f32; m * n];
            unsafe { w.groups(&xb, m, 0..m, 0..n / GROUP, OutPtr(one.as_mut_ptr())) };
            for (a, b) in one.iter().zip(&want) {
                assert!((a - b).abs() < 1e-3, "m={m} one range: {a} vs {b}");
            }
        }
    }
}

//! Fused attention for small query counts (decode steps and short chunks): RoPE, cache write
//! and one pass over one sequence's cache on plain slices, with no intermediate tensors. At 30
//! layers per token and one call per sequence, the dozen small candle ops this replaces cost
//! more than the arithmetic, and candle's softmax fans out to its thread pool per row. The
//! engine runs the sequences of a batch on separate threads. The cache may hold f32, f16 or
//! int8 with row scales (see `kv`); products and sums are f32 either way.
use half::f16;

#[cfg(target_arch = "x86_64")]
use super::attn_i8;
use super::kv::{KvElem, KEY_BLOCK};
use super::vecops::dot;

/// Head geometry.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub h: usize,
    pub hkv: usize,
    pub d: usize,
}

/// HF rotate-half RoPE in place on `n` token-major rows of `heads * d` values, at positions
/// `pos0..pos0 + n`; `cos`, `sin`: `(max_pos, d / 2)` row-major.
pub fn rope_rows(
    x: &mut [f32],
    n: usize,
    heads: usize,
    d: usize,
    pos0: usize,
    cos: &[f32],
    sin: &[f32],
) {
    let half = d / 2;
    assert!(x.len() >= n * heads * d && cos.len() >= (pos0 + n) * half && sin.len() >= cos.len());
    #[cfg(target_arch = "x86_64")]
    if half.is_multiple_of(16) && super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present; lengths checked above, halves in whole registers.
        return unsafe { avx512::rope(x, n, heads, d, pos0, cos, sin) };
    }
    rope_scalar(x, n, heads, d, pos0, cos, sin);
}

/// The portable loop of [`rope_rows`] (its AVX-512 body does the same multiplies and adds,
/// unfused, so both give the same bits).
fn rope_scalar(
    x: &mut [f32],
    n: usize,
    heads: usize,
    d: usize,
    pos0: usize,
    cos: &[f32],
    sin: &[f32],
) {
    let half = d / 2;
    for t in 0..n {
        let (c, s) = (
            &cos[(pos0 + t) * half..][..half],
            &sin[(pos0 + t) * half..][..half],
        );
        for hh in 0..heads {
            let row = &mut x[(t * heads + hh) * d..][..d];
            let (a, b) = row.split_at_mut(half);
            for i in 0..half {
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

/// A cache element the AVX-512 kernel can load 16 at a time as f32.
pub trait KvLoad: KvElem {
    /// Whether each key row and value row carries a scale (int8): the kernel multiplies the
    /// scores of a block of 16 keys by their scales and each value row's weight by its scale.
    const SCALED: bool = false;

    /// The elements as int8, for the int8 kernel (`None` for float elements).
    fn int8(_s: &[Self]) -> Option<&[i8]> {
        None
    }

    /// # Safety
    /// AVX-512 F present; 16 elements readable at `p`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
}

impl KvLoad for f32 {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
}

impl KvLoad for f16 {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
    }
}

impl KvLoad for i8 {
    const SCALED: bool = true;

    fn int8(s: &[Self]) -> Option<&[i8]> {
        Some(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.cast())))
    }
}

/// One kv head's keys and values from its first slot, and for int8 their row scales (empty
/// otherwise), as the AVX-512 kernels read them.
pub struct Head<'a, T> {
    pub k: &'a [T],
    pub v: &'a [T],
    pub ks: &'a [f32],
    pub vs: &'a [f32],
}

/// One layer's cache buffers as attention reads them.
pub struct CacheSlices<'a, T> {
    /// Keys in the element type's layout (`KvElem::key_index`).
    pub k: &'a [T],
    /// Values in the element type's layout (`KvElem::value_index`).
    pub v: &'a [T],
    /// The key row and value row scales, `(Hkv, cap)` each: required when `T::SCALED`.
    pub scales: Option<(&'a [f32], &'a [f32])>,
    /// Slots per head, a multiple of [`KEY_BLOCK`].
    pub cap: usize,
}

/// Attention of `n` new queries `q: (n, H*D)` (RoPE applied) over the first `total` slots of
/// the cache `c`; query `t` sees slots `0..=before + t`. Writes `out: (n, H*D)`.
#[allow(clippy::too_many_arguments)]
pub fn attend_cached<T: KvLoad>(
    q: &[f32],
    n: usize,
    c: &CacheSlices<'_, T>,
    before: usize,
    total: usize,
    heads: Heads,
    scale: f32,
    out: &mut [f32],
) {
    let Heads { h, hkv, d } = heads;
    let (k, v, cap) = (c.k, c.v, c.cap);
    let g = h / hkv;
    assert!(
        cap.is_multiple_of(KEY_BLOCK),
        "cache capacity {cap} not in blocks of 16"
    );
    // Unscaled elements read as scale 1 in the portable loop; the kernel ignores the slices.
    let (ks, vs): (&[f32], &[f32]) = match c.scales {
        Some(s) => s,
        None => {
            assert!(!T::SCALED, "int8 cache attention needs the row scales");
            (&[], &[])
        }
    };
    assert!(!T::SCALED || ks.len() >= hkv * cap && vs.len() >= hkv * cap);
    let row_scale = |sc: &[f32], i: usize| if T::SCALED { sc[i] } else { 1.0 };
    #[cfg(target_arch = "x86_64")]
    if d == 64 {
        let int8 = (T::int8(c.k), T::int8(c.v));
        if let (Some(k), Some(v)) = int8 {
            if super::qmatmul::has_vnni512() && std::arch::is_x86_feature_detected!("avx512bw") {
                // One pass over each kv head's int8 keys and values for its whole query group
                // (or for each run of up to 4 of its heads), on integer products (`attn_i8`).
                let per = heads_per_call(g);
                let c = CacheSlices {
                    k,
                    v,
                    scales: c.scales,
                    cap,
                };
                let groups = Groups {
                    q,
                    n,
                    c: &c,
                    before,
                    total,
                    heads,
                };
                groups.run(per, out, |qg, kv, limit, sc, o| {
                    // SAFETY: AVX-512 F, BW and VNNI present (checked above); `run` passes
                    // rows of 64 and whole blocks of 16 keys, pairs of value rows and blocks of
                    // scales within the buffers (limit <= total <= cap, cap a multiple of 16),
                    // and `scores` of `per` rows of `limit` rounded up to 16.
                    unsafe {
                        match per {
                            1 => attn_i8::group64_i8::<1>(qg, kv, limit, scale, sc, o),
                            2 => attn_i8::group64_i8::<2>(qg, kv, limit, scale, sc, o),
                            3 => attn_i8::group64_i8::<3>(qg, kv, limit, scale, sc, o),
                            _ => attn_i8::group64_i8::<4>(qg, kv, limit, scale, sc, o),
                        }
                    }
                });
                return;
            }
        }
        if !T::SCALED && super::qmatmul::has_avx512() {
            let groups = Groups {
                q,
                n,
                c,
                before,
                total,
                heads,
            };
            // One pass over each kv head's keys and values for a whole query group (GQA, up to
            // 4 heads): each is widened from the cache once, not once per query head.
            let per = heads_per_call(g);
            groups.run(per, out, |qg, kv, limit, sc, o| {
                // SAFETY: AVX-512 F present (checked above); rows of 64 within `k`, `v`
                // (limit <= total <= cap); `scores` holds `per` rows of `limit` rounded up to
                // 16.
                unsafe {
                    match per {
                        1 => avx512::group64::<T, 1>(qg, kv, limit, scale, sc, o),
                        2 => avx512::group64::<T, 2>(qg, kv, limit, scale, sc, o),
                        3 => avx512::group64::<T, 3>(qg, kv, limit, scale, sc, o),
                        _ => avx512::group64::<T, 4>(qg, kv, limit, scale, sc, o),
                    }
                }
            });
            return;
        }
    }
    out[..n * h * d].iter_mut().for_each(|o| *o = 0.0);
    let mut scores = vec![0f32; total.div_ceil(16) * 16];
    let mut row = vec![0f32; d];
    for head in 0..h {
        let sbase = (head / g) * cap;
        for t in 0..n {
            let limit = (before + t + 1).min(total);
            let qrow = &q[(t * h + head) * d..][..d];
            let mut max = f32::NEG_INFINITY;
            for (s, score) in scores[..limit].iter_mut().enumerate() {
                for (i, r) in row.iter_mut().enumerate() {
                    *r = k[T::key_index(cap, d, head / g, s, i)].to_f32();
                }
                *score = dot(qrow, &row) * row_scale(ks, sbase + s) * scale;
                max = max.max(*score);
            }
            let mut sum = 0f32;
            for score in scores[..limit].iter_mut() {
                *score = (*score - max).exp();
                sum += *score;
            }
            let o = &mut out[(t * h + head) * d..][..d];
            for (s, p) in scores[..limit].iter().enumerate() {
                let w = p / sum * row_scale(vs, sbase + s);
                for (c, r) in row.iter_mut().enumerate() {
                    *r = v[T::value_index(cap, d, head / g, s, c)].to_f32();
                }
                for (oi, vi) in o.iter_mut().zip(&row) {
                    *oi += w * vi;
                }
            }
        }
    }
}

/// Query heads per kernel call for groups of `g` (the kernels take 1-4): the whole group, or
/// the largest run of up to 4 that divides it, each run one pass over its kv head's cache.
#[cfg(target_arch = "x86_64")]
fn heads_per_call(g: usize) -> usize {
    (1..=4).rev().find(|p| g.is_multiple_of(*p)).unwrap_or(1)
}

/// The query rows of one call, for the kernels that take a GQA group of heads at a time.
#[cfg(target_arch = "x86_64")]
struct Groups<'a, 'c, T> {
    q: &'a [f32],
    n: usize,
    c: &'a CacheSlices<'c, T>,
    before: usize,
    total: usize,
    heads: Heads,
}

#[cfg(target_arch = "x86_64")]
impl<T: KvElem> Groups<'_, '_, T> {
    /// Calls `kernel(queries, kv head, limit, scores, out)` for each query row and each run of
    /// `per` heads of one kv head's group, `per` rows of 64 each; every output row is written
    /// whole by its call.
    fn run(
        &self,
        per: usize,
        out: &mut [f32],
        kernel: impl Fn(&[f32], &Head<'_, T>, usize, &mut [f32], &mut [f32]),
    ) {
        let Heads { h, hkv, d } = self.heads;
        let (g, cap) = (h / hkv, self.c.cap);
        let (ks, vs) = self.c.scales.unwrap_or((&[], &[]));
        let mut scores = vec![0f32; per * self.total.div_ceil(16) * 16];
        for head0 in (0..h).step_by(per) {
            let (kbase, sbase) = ((head0 / g) * cap * d, (head0 / g) * cap);
            let kv = Head {
                k: &self.c.k[kbase..],
                v: &self.c.v[kbase..],
                ks: ks.get(sbase..).unwrap_or(&[]),
                vs: vs.get(sbase..).unwrap_or(&[]),
            };
            for t in 0..self.n {
                let limit = (self.before + t + 1).min(self.total);
                let at = (t * h + head0) * d;
                let o = &mut out[at..][..per * d];
                kernel(&self.q[at..][..per * d], &kv, limit, &mut scores, o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::{Head, KvLoad};
    use crate::model::act::avx512::exp;

    /// [`super::rope_rows`] 16 lanes at a time. In a prefill of 11 prompts (539 rows) the
    /// scalar loop had 2.6% of the samples, about 3.5 times this body's share.
    ///
    /// # Safety
    /// AVX-512 F present; `x` holds `n * heads * d` values, `cos`, `sin` `(pos0 + n) * d / 2`;
    /// `d / 2` a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rope(
        x: &mut [f32],
        n: usize,
        heads: usize,
        d: usize,
        pos0: usize,
        cos: &[f32],
        sin: &[f32],
    ) {
        let half = d / 2;
        for t in 0..n {
            let (c, s) = (
                cos.as_ptr().add((pos0 + t) * half),
                sin.as_ptr().add((pos0 + t) * half),
            );
            for hh in 0..heads {
                let a = x.as_mut_ptr().add((t * heads + hh) * d);
                let b = a.add(half);
                for i in (0..half).step_by(16) {
                    let (ci, si) = (_mm512_loadu_ps(c.add(i)), _mm512_loadu_ps(s.add(i)));
                    let (x1, x2) = (_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)));
                    let y1 = _mm512_sub_ps(_mm512_mul_ps(x1, ci), _mm512_mul_ps(x2, si));
                    let y2 = _mm512_add_ps(_mm512_mul_ps(x2, ci), _mm512_mul_ps(x1, si));
                    _mm512_storeu_ps(a.add(i), y1);
                    _mm512_storeu_ps(b.add(i), y2);
                }
            }
        }
    }

    /// The lanes of block `b` (of 16 keys) that hold one of the first `limit` keys.
    #[inline]
    pub(crate) fn block_mask(limit: usize, b: usize) -> __mmask16 {
        let count = (limit - b * 16).min(16);
        if count == 16 {
            0xFFFF
        } else {
            (1u16 << count) - 1
        }
    }

    /// Asks for rows `0..rows` of 64 elements at `p` in L1 (cache streams of one sequence's
    /// heads are short: the hardware prefetcher alone left attention waiting on memory).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn prefetch_rows<T>(p: *const T, rows: usize) {
        let p = p.cast::<u8>();
        for off in (0..rows * 64 * std::mem::size_of::<T>()).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast());
        }
    }

    /// The `G` query heads of one GQA group (rows of 64 in `q`, `o`) against the same `limit`
    /// keys and values of one kv head of a float cache (int8 caches take `attn_i8`): each block
    /// of 16 keys (stored dimension-major, see `kv::key_at`) is widened one dimension at a time
    /// and scored for every head with multiply-adds of broadcast query values (4 partial sums
    /// per head, no horizontal sums); each value row is loaded once and accumulated into every
    /// head's output (4 G independent chains).
    ///
    /// # Safety
    /// AVX-512 F present; `kv.k` holds `limit` keys rounded up to whole blocks of 16 x 64,
    /// `kv.v` `limit` rows of 64; `q`, `o` hold `G` rows of 64; `scores` holds `G` times
    /// `limit` rounded up to 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn group64<T: KvLoad, const G: usize>(
        q: &[f32],
        kv: &Head<'_, T>,
        limit: usize,
        scale: f32,
        scores: &mut [f32],
        o: &mut [f32],
    ) {
        let (k, v) = (kv.k, kv.v);
        let blocks = limit.div_ceil(16);
        let stride = blocks * 16;
        debug_assert!(!T::SCALED);
        debug_assert!(scores.len() >= G * stride && q.len() >= G * 64 && o.len() >= G * 64);
        // The queries, scaled, as scalars to broadcast.
        let mut qs = [0f32; 4 * 64];
        for (x, &y) in qs[..G * 64].iter_mut().zip(&q[..G * 64]) {
            *x = y * scale;
        }
        let sp = scores.as_mut_ptr();
        let mut maxv = [_mm512_set1_ps(f32::NEG_INFINITY); G];
        for b in 0..blocks {
            let mask = block_mask(limit, b);
            // Two blocks ahead: the keys, then the first values.
            if b + 2 < blocks {
                prefetch_rows(k.as_ptr().add((b + 2) * 16 * 64), 16);
            } else if let Some(rows) = limit.checked_sub((b + 2 - blocks) * 16) {
                prefetch_rows(v.as_ptr().add((b + 2 - blocks) * 16 * 64), rows.min(16));
            }
            // Lanes past `limit` in the last block hold whatever the cache has there; they are
            // masked out of the maximum and the sum and never weight a value.
            let kb = k.as_ptr().add(b * 16 * 64);
            let mut acc = [[_mm512_setzero_ps(); 4]; G];
            for i in (0..64).step_by(4) {
                for u in 0..4 {
                    let kd = T::load16(kb.add((i + u) * 16));
                    for (h, ah) in acc.iter_mut().enumerate() {
                        let qd = _mm512_set1_ps(qs[h * 64 + i + u]);
                        ah[u] = _mm512_fmadd_ps(qd, kd, ah[u]);
                    }
                }
            }
            for (h, ah) in acc.iter().enumerate() {
                let s = _mm512_add_ps(_mm512_add_ps(ah[0], ah[1]), _mm512_add_ps(ah[2], ah[3]));
                maxv[h] = _mm512_mask_max_ps(maxv[h], mask, maxv[h], s);
                _mm512_storeu_ps(sp.add(h * stride + b * 16), s);
            }
        }
        // Scalars, not registers: the value loop below needs all 4 G accumulators, the value
        // row and a weight in registers (with 1/sum live there, one accumulator went to the
        // stack and every key waited on a store and reload).
        let mut inv = [0f32; G];
        for h in 0..G {
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(maxv[h]));
            let mut sumv = _mm512_setzero_ps();
            for b in 0..blocks {
                let mask = block_mask(limit, b);
                let p = sp.add(h * stride + b * 16);
                let e = _mm512_maskz_mov_ps(mask, exp(_mm512_sub_ps(_mm512_loadu_ps(p), max)));
                sumv = _mm512_add_ps(sumv, e);
                _mm512_storeu_ps(p, e);
            }
            inv[h] = 1.0 / _mm512_reduce_add_ps(sumv);
        }
        let mut acc = [[_mm512_setzero_ps(); 4]; G];
        let vp = v.as_ptr();
        // Runs of 8 keys, the prefetch between runs, so the inner loop has no branch.
        for s0 in (0..limit).step_by(8) {
            if s0 + 32 < limit {
                prefetch_rows(vp.add((s0 + 32) * 64), (limit - s0 - 32).min(8));
            }
            for s in s0..(s0 + 8).min(limit) {
                let r = vp.add(s * 64);
                let row = [
                    T::load16(r),
                    T::load16(r.add(16)),
                    T::load16(r.add(32)),
                    T::load16(r.add(48)),
                ];
                for (h, ah) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*sp.add(h * stride + s));
                    for (a, x) in ah.iter_mut().zip(row) {
                        *a = _mm512_fmadd_ps(w, x, *a);
                    }
                }
            }
        }
        for (h, (ah, ih)) in acc.iter().zip(inv).enumerate() {
            let ih = _mm512_set1_ps(ih);
            for (i, a) in ah.iter().enumerate() {
                _mm512_storeu_ps(o.as_mut_ptr().add(h * 64 + 16 * i), _mm512_mul_ps(*a, ih));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, D};

    use super::*;
    use crate::model::kv::{key_at_i8, keys_to_blocks, rows_to_layout, value_at_i8};
    use crate::model::qmatmul::quantize_block;

    type Result<T> = candle_core::Result<T>;

    /// The unfused reference: grouped matmuls, additive causal mask, softmax.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, before: usize, total: usize) -> Tensor {
        let (h, n, d) = q.dims3().unwrap();
        let hkv = k.dim(0).unwrap();
        let g = h / hkv;
        let (kc, vc) = (
            k.narrow(1, 0, total).unwrap(),
            v.narrow(1, 0, total).unwrap(),
        );
        let q = q.reshape((hkv, g * n, d)).unwrap();
        let att = (q.matmul(&kc.t().unwrap()).unwrap() * (1.0 / (d as f64).sqrt())).unwrap();
        let mut mask = Vec::new();
        for _ in 0..g {
            for t in 0..n {
                for j in 0..total {
                    mask.push(if j > before + t {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    });
                }
            }
        }
        let mask = Tensor::from_vec(mask, (g * n, total), &Device::Cpu).unwrap();
        let att = att.broadcast_add(&mask).unwrap();
        let att = candle_nn::ops::softmax(&att, D::Minus1).unwrap();
        att.matmul(&vc.contiguous().unwrap())
            .unwrap()
            .reshape((h, n, d))
            .unwrap()
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((n, h * d))
            .unwrap()
    }

    #[test]
    fn fused_equals_unfused_for_decode_and_small_chunks() -> Result<()> {
        let dev = Device::Cpu;
        // d = 64 with query groups of 1-4 runs the grouped AVX-512 kernels, a group of 6 runs
        // them on runs of 3 heads, d = 16 the portable loop.
        for (h, hkv, d, cap) in [
            (6, 2, 16, 48),
            (9, 3, 64, 48),
            (9, 3, 64, 208),
            (4, 4, 64, 48),
            (8, 4, 64, 48),
            (8, 2, 64, 48),
            (12, 2, 64, 48),
        ] {
            let k = Tensor::randn(0f32, 1f32, (hkv, cap, d), &dev)?;
            let v = Tensor::randn(0f32, 1f32, (hkv, cap, d), &dev)?;
            for (n, before) in [(1, 0), (1, 17), (5, 10), (16, 3), (1, 150), (3, 181)] {
                if before + n > cap {
                    continue;
                }
                let q = Tensor::randn(0f32, 1f32, (h, n, d), &dev)?;
                let total = before + n;
                let scale = 1.0 / (d as f32).sqrt();
                // (H, n, D) -> token-major (n, H*D)
                let qt = q
                    .transpose(0, 1)?
                    .contiguous()?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let mut out = vec![0f32; n * h * d];
                let (kv, vv) = (
                    k.flatten_all()?.to_vec1::<f32>()?,
                    v.flatten_all()?.to_vec1::<f32>()?,
                );
                let heads = Heads { h, hkv, d };
                let kblocks = keys_to_blocks(&kv, hkv, cap, d);
                let c = CacheSlices {
                    k: &kblocks,
                    v: &vv,
                    scales: None,
                    cap,
                };
                attend_cached(&qt, n, &c, before, total, heads, scale, &mut out);
                let got = Tensor::from_vec(out, (n, h * d), &dev)?;
                let want = reference(&q, &k, &v, before, total);
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "d={d} n={n} before={before}: {diff}");
                // f16 cache: against the reference on the same f16-rounded keys and values
                let (kh, vh): (Vec<f16>, Vec<f16>) = (
                    kv.iter().map(|&x| f16::from_f32(x)).collect(),
                    vv.iter().map(|&x| f16::from_f32(x)).collect(),
                );
                let round = |t: &[f16]| {
                    let f: Vec<f32> = t.iter().map(|x| x.to_f32()).collect();
                    Tensor::from_vec(f, (hkv, cap, d), &dev)
                };
                let mut out = vec![0f32; n * h * d];
                let khb = keys_to_blocks(&kh, hkv, cap, d);
                let c = CacheSlices {
                    k: &khb,
                    v: &vh,
                    scales: None,
                    cap,
                };
                attend_cached(&qt, n, &c, before, total, heads, scale, &mut out);
                let got = Tensor::from_vec(out, (n, h * d), &dev)?;
                let want = reference(&q, &round(&kh)?, &round(&vh)?, before, total);
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "f16 cache d={d} n={n} before={before}: {diff}");
                // int8 cache with row scales: against the reference on the dequantized rows
                let quant = |x: &[f32]| {
                    let (mut q8, mut sc) = (vec![0i8; x.len()], Vec::new());
                    for (r, o) in x.chunks_exact(d).zip(q8.chunks_exact_mut(d)) {
                        sc.push(quantize_block(r, o));
                    }
                    let deq: Vec<f32> = q8
                        .iter()
                        .zip(sc.iter().flat_map(|&s| std::iter::repeat_n(s, d)))
                        .map(|(&v, s)| v as f32 * s)
                        .collect();
                    (q8, sc, deq)
                };
                let ((kq, ksc, kdq), (vq, vsc, vdq)) = (quant(&kv), quant(&vv));
                let kqb = rows_to_layout(&kq, hkv, cap, d, key_at_i8);
                let vqb = rows_to_layout(&vq, hkv, cap, d, value_at_i8);
                let c = CacheSlices {
                    k: &kqb,
                    v: &vqb,
                    scales: Some((&ksc, &vsc)),
                    cap,
                };
                let mut out = vec![0f32; n * h * d];
                attend_cached(&qt, n, &c, before, total, heads, scale, &mut out);
                let got = Tensor::from_vec(out, (n, h * d), &dev)?;
                let (kt, vt) = (
                    Tensor::from_vec(kdq, (hkv, cap, d), &dev)?,
                    Tensor::from_vec(vdq, (hkv, cap, d), &dev)?,
                );
                let want = reference(&q, &kt, &vt, before, total);
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                // The kernel rounds queries and softmax weights to 16 bits (a head's largest to
                // 32767): at most 8e-5 over these cases, against O(1) for a misplaced element.
                assert!(
                    diff < 2.5e-4,
                    "int8 cache d={d} n={n} before={before}: {diff}"
                );
            }
        }
        Ok(())
    }

    /// A thousand keys of equal score (zero queries) over values of the largest int8 magnitude:
    /// the softmax weights in 16 bits are scaled down so that no int32 sum overflows, and every
    /// output is the value.
    #[test]
    fn int8_attention_over_many_equal_keys_does_not_overflow() {
        let (h, hkv, d, cap, total) = (3, 1, 64, 1024, 1000);
        let kq = vec![-127i8; hkv * cap * d];
        let vq = vec![127i8; hkv * cap * d];
        let (ks, vs) = (vec![0.5f32; hkv * cap], vec![0.25f32; hkv * cap]);
        let (kqb, vqb) = (
            rows_to_layout(&kq, hkv, cap, d, key_at_i8),
            rows_to_layout(&vq, hkv, cap, d, value_at_i8),
        );
        let c = CacheSlices {
            k: &kqb,
            v: &vqb,
            scales: Some((&ks, &vs)),
            cap,
        };
        let q = vec![0f32; h * d];
        let mut out = vec![0f32; h * d];
        let heads = Heads { h, hkv, d };
        attend_cached(&q, 1, &c, total - 1, total, heads, 0.125, &mut out);
        let want = 127.0 * 0.25;
        assert!(
            out.iter().all(|o| (o - want).abs() < want * 1e-4),
            "{:?}",
            &out[..4]
        );
    }
}

#[cfg(test)]
mod rope_tests {
    use candle_core::{Device, Tensor};

    use super::rope_rows;

    #[test]
    fn rope_rows_equals_candle_rope() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (n, heads, d, pos0, max) = (3, 2, 8, 5, 16);
        let cos = Tensor::randn(0f32, 1f32, (max, d / 2), &dev)?;
        let sin = Tensor::randn(0f32, 1f32, (max, d / 2), &dev)?;
        let x = Tensor::randn(0f32, 1f32, (n, heads * d), &dev)?;
        // candle: (1, heads, n, d)
        let xt = x.reshape((1, n, heads, d))?.transpose(1, 2)?.contiguous()?;
        let want =
            candle_nn::rotary_emb::rope(&xt, &cos.narrow(0, pos0, n)?, &sin.narrow(0, pos0, n)?)?
                .squeeze(0)?
                .transpose(0, 1)?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<f32>()?;
        let mut got = x.flatten_all()?.to_vec1::<f32>()?;
        let (c, s) = (
            cos.flatten_all()?.to_vec1::<f32>()?,
            sin.flatten_all()?.to_vec1::<f32>()?,
        );
        rope_rows(&mut got, n, heads, d, pos0, &c, &s);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn rope_rows_vector_body_equals_scalar_loop_bitwise() {
        // head dimension 64 (the vector body where AVX-512 is present) and 96 (two registers
        // per half plus one); positions past the first
        for d in [64, 96] {
            let (n, heads, pos0, max) = (5, 3, 7, 16);
            let vals = |len: usize, seed: u32| -> Vec<f32> {
                (0..len as u32)
                    .map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 * 1e-3 - 1.0)
                    .collect()
            };
            let (c, s) = (vals(max * d / 2, 1), vals(max * d / 2, 2));
            let x = vals(n * heads * d, 3);
            let (mut fast, mut slow) = (x.clone(), x);
            rope_rows(&mut fast, n, heads, d, pos0, &c, &s);
            super::rope_scalar(&mut slow, n, heads, d, pos0, &c, &s);
            assert_eq!(fast, slow, "head dimension {d}");
        }
    }
}

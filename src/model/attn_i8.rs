//! The AVX-512 attention kernel for int8 caches: integer dot products on 16-bit operands.
//!
//! Keys and values stay int8 with one f32 scale per row (see `kv`); the queries of a GQA group
//! and the softmax weights are rounded to 16 bits with one scale per head, so both products run
//! as `vpdpwssd` (AVX-512 VNNI: 32 products of 16-bit pairs summed into 16 int32 lanes), exact
//! in int32, scaled once per block of scores and once per output. Widening 16 int8 keys to f32
//! took two instructions per dimension before three multiply-adds (one per query head); here one
//! widening feeds three `vpdpwssd` per two dimensions. The 16-bit rounding is at most 1/65534 of
//! a head's largest query value or weight, far inside the int8 cache's own rounding (1/254 of a
//! row's largest value).
use std::arch::x86_64::*;

use super::attention::avx512::{block_mask, prefetch_rows};
use super::attention::Head;
use crate::model::act::avx512::exp;

/// Keys per block of the key layout.
const KB: usize = 16;
/// Dimensions per head the kernel takes.
const D: usize = 64;

/// The `G` query heads of one GQA group (rows of 64 in `q`, `o`) against the first `limit`
/// keys and values of one kv head of an int8 cache: keys in the layout of `kv::key_at_i8`
/// (blocks of 16 keys in pairs of dimensions), values in that of `kv::value_at_i8` (pairs of
/// rows interleaved), each row with its scale.
///
/// Each query row, times `scale`, is rounded to 16 bits with the scale `max|x| / 32767`; each
/// block of 16 keys is scored for every head with one 32-byte load widened to 16-bit pairs per
/// two dimensions and one `vpdpwssd` per head (two sums per head in turn). The scores are
/// scaled by the query's scale and the keys' 16 scales, softmaxed in f32 (maximum and sum over
/// the `limit` keys), multiplied by each value row's scale, and rounded to 16 bits with one
/// scale per head, chosen so that no int32 sum can overflow; each pair of value rows is widened
/// once and added to every head's four sums of 16 dimensions with one `vpdpwssd` each.
///
/// # Safety
/// AVX-512 F, BW and VNNI present; `kv.k` holds `limit` keys rounded up to whole blocks of 16
/// x 64, `kv.v` `limit` rows of 64 rounded up to a pair, `kv.ks`, `kv.vs` `limit` rounded up to
/// 16 scales; `q`, `o` hold `G` rows of 64; `scores` holds `G` times `limit` rounded up to 16;
/// `G <= 4`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn group64_i8<const G: usize>(
    q: &[f32],
    kv: &Head<'_, i8>,
    limit: usize,
    scale: f32,
    scores: &mut [f32],
    o: &mut [f32],
) {
    let (k, v) = (kv.k, kv.v);
    let blocks = limit.div_ceil(KB);
    let stride = blocks * KB;
    debug_assert!(G <= 4 && scores.len() >= G * stride && q.len() >= G * D && o.len() >= G * D);
    // The queries times `scale` in 16 bits, two dimensions per i32 to broadcast, and their
    // scales.
    let mut qp = [0i32; 4 * D / 2];
    let mut qsc = [0f32; G];
    for (h, qs) in qsc.iter_mut().enumerate() {
        let row = q.as_ptr().add(h * D);
        let s = _mm512_set1_ps(scale);
        let x = [0, 16, 32, 48].map(|i| _mm512_mul_ps(_mm512_loadu_ps(row.add(i)), s));
        let m = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_max_ps(_mm512_abs_ps(x[0]), _mm512_abs_ps(x[1])),
            _mm512_max_ps(_mm512_abs_ps(x[2]), _mm512_abs_ps(x[3])),
        ));
        let to16 = _mm512_set1_ps(if m > 0.0 { 32767.0 / m } else { 0.0 });
        *qs = m / 32767.0;
        let dst = qp.as_mut_ptr().cast::<i16>().add(h * D);
        for (i, xi) in x.iter().enumerate() {
            let r = _mm512_cvtps_epi32(_mm512_mul_ps(*xi, to16));
            _mm256_storeu_si256(dst.add(16 * i).cast(), _mm512_cvtepi32_epi16(r));
        }
    }
    let sp = scores.as_mut_ptr();
    let mut maxv = [_mm512_set1_ps(f32::NEG_INFINITY); G];
    for b in 0..blocks {
        let mask = block_mask(limit, b);
        // Two blocks ahead: the keys, then the first values.
        if b + 2 < blocks {
            prefetch_rows(k.as_ptr().add((b + 2) * KB * D), KB);
        } else if let Some(rows) = limit.checked_sub((b + 2 - blocks) * KB) {
            prefetch_rows(v.as_ptr().add((b + 2 - blocks) * KB * D), rows.min(KB));
        }
        let kb = k.as_ptr().add(b * KB * D);
        // Two sums per head, each taking every other pair of dimensions.
        let (mut even, mut odd) = ([_mm512_setzero_si512(); G], [_mm512_setzero_si512(); G]);
        for p in (0..D / 2).step_by(2) {
            let k0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(kb.add(p * 32).cast()));
            let k1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(kb.add(p * 32 + 32).cast()));
            for (h, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
                let q0 = _mm512_set1_epi32(qp[h * D / 2 + p]);
                let q1 = _mm512_set1_epi32(qp[h * D / 2 + p + 1]);
                *e = _mm512_dpwssd_epi32(*e, k0, q0);
                *o = _mm512_dpwssd_epi32(*o, k1, q1);
            }
        }
        let kscale = _mm512_loadu_ps(kv.ks.as_ptr().add(b * KB));
        for h in 0..G {
            let s = _mm512_cvtepi32_ps(_mm512_add_epi32(even[h], odd[h]));
            let s = _mm512_mul_ps(s, _mm512_mul_ps(kscale, _mm512_set1_ps(qsc[h])));
            maxv[h] = _mm512_mask_max_ps(maxv[h], mask, maxv[h], s);
            _mm512_storeu_ps(sp.add(h * stride + b * KB), s);
        }
    }
    // Softmax numerators times the value rows' scales (lanes past `limit` zero), then in 16
    // bits over each head's row of `scores`, from its start (a block's 16-bit weights land on
    // bytes of blocks already read).
    let mut out_scale = [0f32; G];
    for (h, mh) in maxv.iter().enumerate() {
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(*mh));
        let (mut sumv, mut pmax, mut psum) = (
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
        );
        let row = sp.add(h * stride);
        for b in 0..blocks {
            let mask = block_mask(limit, b);
            let p = row.add(b * KB);
            let e = _mm512_maskz_mov_ps(mask, exp(_mm512_sub_ps(_mm512_loadu_ps(p), max)));
            sumv = _mm512_add_ps(sumv, e);
            let w = _mm512_mul_ps(e, _mm512_loadu_ps(kv.vs.as_ptr().add(b * KB)));
            pmax = _mm512_max_ps(pmax, w);
            psum = _mm512_add_ps(psum, w);
            _mm512_storeu_ps(p, w);
        }
        let (pmax, psum) = (_mm512_reduce_max_ps(pmax), _mm512_reduce_add_ps(psum));
        // The largest weight to 32767, unless the sum of every weight times the largest int8
        // magnitude would pass 2^30 (each rounded weight adds at most a half more).
        let to16 = if pmax > 0.0 {
            (32767.0 / pmax).min((1u32 << 30) as f32 / (127.0 * psum))
        } else {
            0.0
        };
        let sum = _mm512_reduce_add_ps(sumv);
        out_scale[h] = if to16 > 0.0 { 1.0 / (to16 * sum) } else { 0.0 };
        let to16 = _mm512_set1_ps(to16);
        let dst = row.cast::<i16>();
        for b in 0..blocks {
            let w = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row.add(b * KB)), to16));
            _mm256_storeu_si256(dst.add(b * KB).cast(), _mm512_cvtepi32_epi16(w));
        }
    }
    let mut acc = [[_mm512_setzero_si512(); 4]; G];
    let vp = v.as_ptr();
    let pairs = limit.div_ceil(2);
    // Runs of 4 pairs (8 rows), the prefetch between runs, so the inner loop has no branch.
    for j0 in (0..pairs).step_by(4) {
        let ahead = 2 * j0 + 32;
        if ahead < limit {
            prefetch_rows(vp.add(ahead * D), (limit - ahead).min(8));
        }
        for j in j0..(j0 + 4).min(pairs) {
            let r = vp.add(j * 2 * D);
            let w =
                [0, 32, 64, 96].map(|c| _mm512_cvtepi8_epi16(_mm256_loadu_si256(r.add(c).cast())));
            for (h, ah) in acc.iter_mut().enumerate() {
                let pb = _mm512_set1_epi32(*sp.add(h * stride).cast::<i32>().add(j));
                for (a, x) in ah.iter_mut().zip(w) {
                    *a = _mm512_dpwssd_epi32(*a, x, pb);
                }
            }
        }
    }
    for (h, (ah, sh)) in acc.iter().zip(out_scale).enumerate() {
        let sh = _mm512_set1_ps(sh);
        for (i, a) in ah.iter().enumerate() {
            let y = _mm512_mul_ps(_mm512_cvtepi32_ps(*a), sh);
            _mm512_storeu_ps(o.as_mut_ptr().add(h * D + 16 * i), y);
        }
    }
}

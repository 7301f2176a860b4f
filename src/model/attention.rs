//! Fused attention for small query counts (decode steps): one pass over one sequence's cache,
//! with no intermediate tensors. candle's softmax kernel fans out to rayon per row, which costs
//! hundreds of microseconds per call when candle's own worker pool is spinning on the other
//! core; at 30 layers per token that overhead dominated decode. This op runs single-threaded
//! loops that the compiler vectorises.
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::error::Result;

/// `q: (H, n, D)` (RoPE applied), `k, v: (Hkv, cap, D)` cache buffers whose first `total` slots
/// are valid; query `t` sees keys `0..=before + t`. Output `(n, H * D)`.
struct DecodeAttention {
    before: usize,
    total: usize,
    scale: f32,
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("decode attention: {what} must be contiguous"),
    }
}

impl CustomOp3 for DecodeAttention {
    fn name(&self) -> &'static str {
        "meit-decode-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (h, n, d) = ql.shape().dims3()?;
        let (hkv, cap, d2) = kl.shape().dims3()?;
        if d != d2 || vl.shape().dims() != kl.shape().dims() || self.total > cap || h % hkv != 0 {
            candle_core::bail!("decode attention: inconsistent shapes");
        }
        let (q, k, v) = (
            contiguous(qs, ql, "q")?,
            contiguous(ks, kl, "k")?,
            contiguous(vs, vl, "v")?,
        );
        let g = h / hkv;
        let mut out = vec![0f32; n * h * d];
        let mut scores = vec![0f32; self.total];
        for head in 0..h {
            let kvh = head / g;
            let kbase = kvh * cap * d;
            for t in 0..n {
                let limit = (self.before + t + 1).min(self.total);
                let qrow = &q[(head * n + t) * d..(head * n + t + 1) * d];
                let mut max = f32::NEG_INFINITY;
                for (s, score) in scores[..limit].iter_mut().enumerate() {
                    let krow = &k[kbase + s * d..kbase + (s + 1) * d];
                    let dot: f32 = qrow.iter().zip(krow).map(|(a, b)| a * b).sum();
                    *score = dot * self.scale;
                    max = max.max(*score);
                }
                let mut sum = 0f32;
                for score in scores[..limit].iter_mut() {
                    *score = (*score - max).exp();
                    sum += *score;
                }
                let o = &mut out[(t * h + head) * d..(t * h + head + 1) * d];
                for (s, p) in scores[..limit].iter().enumerate() {
                    let w = p / sum;
                    let vrow = &v[kbase + s * d..kbase + (s + 1) * d];
                    for (oi, vi) in o.iter_mut().zip(vrow) {
                        *oi += w * vi;
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&[n, h * d])))
    }
}

/// Attention of `n` new queries over the first `total` cache slots (see [`DecodeAttention`]).
pub fn decode_attention(
    q: &Tensor,
    k_cache: &Tensor,
    v_cache: &Tensor,
    before: usize,
    total: usize,
    scale: f32,
) -> Result<Tensor> {
    Ok(q.apply_op3_no_bwd(
        k_cache,
        v_cache,
        &DecodeAttention {
            before,
            total,
            scale,
        },
    )?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, D};

    use super::*;

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
        let (h, hkv, d, cap) = (6, 2, 16, 40);
        let k = Tensor::randn(0f32, 1f32, (hkv, cap, d), &dev)?;
        let v = Tensor::randn(0f32, 1f32, (hkv, cap, d), &dev)?;
        for (n, before) in [(1, 0), (1, 17), (5, 10), (16, 3)] {
            let q = Tensor::randn(0f32, 1f32, (h, n, d), &dev)?;
            let total = before + n;
            let scale = 1.0 / (d as f32).sqrt();
            let got = decode_attention(&q, &k, &v, before, total, scale)?;
            let want = reference(&q, &k, &v, before, total);
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "n={n} before={before}: {diff}");
        }
        Ok(())
    }
}

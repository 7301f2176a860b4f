//! Cross-entropy over the vocabulary as one custom op with its analytic backward
//! (`dlogits = softmax - onehot`, per row). candle's `cross_entropy` is six tracked ops over the
//! `(K, V)` logits (V = 49,152), each a full pass over them forward and backward.
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::error::Result;

struct RowXent {
    targets: Vec<u32>,
}

/// `(max, log-sum-exp)` of one row.
fn row_lse(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    (max, max + sum.ln())
}

impl CustomOp1 for RowXent {
    fn name(&self) -> &'static str {
        "row-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
            candle_core::Error::Msg("cross-entropy: logits not contiguous".into())
        })?;
        let x = &storage.as_slice::<f32>()?[start..end];
        let (k, v) = layout.shape().dims2()?;
        if self.targets.len() != k {
            candle_core::bail!("cross-entropy: {} targets for {k} rows", self.targets.len());
        }
        let mut out = Vec::with_capacity(k);
        for (row, &t) in x.chunks(v).zip(&self.targets) {
            let (_, lse) = row_lse(row);
            let t = t as usize;
            if t >= v {
                candle_core::bail!("cross-entropy: target {t} outside a vocabulary of {v}");
            }
            out.push(lse - row[t]);
        }
        Ok((CpuStorage::F32(out), Shape::from(k)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (_, v) = arg.dims2()?;
        let x = arg.flatten_all()?.to_vec1::<f32>()?;
        let g = grad_res.to_vec1::<f32>()?;
        let mut dx = vec![0f32; x.len()];
        for (((row, d), &t), &gk) in x.chunks(v).zip(dx.chunks_mut(v)).zip(&self.targets).zip(&g) {
            let (_, lse) = row_lse(row);
            for (d, &xv) in d.iter_mut().zip(row) {
                *d = gk * (xv - lse).exp();
            }
            d[t as usize] -= gk;
        }
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Mean cross-entropy of `logits: (K, V)` against `targets: (K)` u32, differentiable in the
/// logits. Off the CPU, candle's composed version.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if !logits.device().is_cpu() {
        return Ok(candle_nn::loss::cross_entropy(logits, targets)?);
    }
    let op = RowXent {
        targets: targets.to_vec1::<u32>()?,
    };
    Ok(logits.contiguous()?.apply_op1(op)?.mean_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_cross_entropy_value_and_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 3f32, (5, 11), &dev)?;
        let t = Tensor::from_slice(&[0u32, 10, 3, 3, 7], 5, &dev)?;
        let ours = cross_entropy(x.as_tensor(), &t)?;
        let theirs = candle_nn::loss::cross_entropy(x.as_tensor(), &t)?;
        let (a, b) = (ours.to_scalar::<f32>()?, theirs.to_scalar::<f32>()?);
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let g1 = ours.backward()?;
        let g2 = theirs.backward()?;
        let (Some(d1), Some(d2)) = (g1.get(x.as_tensor()), g2.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        let d = (d1 - d2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-6, "gradient differs by {d}");
        Ok(())
    }
}

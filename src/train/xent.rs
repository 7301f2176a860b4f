//! Cross-entropy over the vocabulary as one custom op with its analytic backward
//! (`dlogits = softmax - onehot`, per row). candle's `cross_entropy` is six tracked ops over the
//! `(K, V)` logits (V = 49,152), each a full pass over them forward and backward.
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::error::Result;
use crate::model::cpu_data::with_data;
use crate::model::par::{run_split, OutPtr};
use crate::model::row_softmax::{row_lse, scaled_softmax};

struct RowXent {
    targets: Vec<u32>,
    /// Each row's log-sum-exp, kept by the forward for the backward.
    lse: OnceLock<Vec<f32>>,
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
        if let Some(t) = self.targets.iter().find(|&&t| t as usize >= v) {
            candle_core::bail!("cross-entropy: target {t} outside a vocabulary of {v}");
        }
        let mut lse = vec![0f32; k];
        let out = OutPtr(lse.as_mut_ptr());
        run_split(k, k * v, |rows| {
            for r in rows {
                // SAFETY: entry `r` belongs to this call alone.
                unsafe { *out.get().add(r) = row_lse(&x[r * v..(r + 1) * v]) };
            }
        });
        let loss = (0..k)
            .map(|r| lse[r] - x[r * v + self.targets[r] as usize])
            .collect();
        let _ = self.lse.set(lse);
        Ok((CpuStorage::F32(loss), Shape::from(k)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (k, v) = arg.dims2()?;
        let g = grad_res.to_vec1::<f32>()?;
        let mut dx = vec![0f32; k * v];
        let out = OutPtr(dx.as_mut_ptr());
        with_data(arg, "cross-entropy", |x| {
            let fresh;
            let lse = match self.lse.get() {
                Some(l) => l.as_slice(),
                None => {
                    fresh = x.chunks(v).map(row_lse).collect::<Vec<_>>();
                    fresh.as_slice()
                }
            };
            run_split(k, k * v, |rows| {
                for r in rows {
                    // SAFETY: row `r` of `dx` belongs to this call alone.
                    let d = unsafe { out.slice(r * v, v) };
                    scaled_softmax(&x[r * v..(r + 1) * v], lse[r], g[r], d);
                    d[self.targets[r] as usize] -= g[r];
                }
            });
        })?;
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
        lse: OnceLock::new(),
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

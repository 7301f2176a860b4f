//! RMSNorm with a frozen scale as a custom op with a backward: the forward is candle's fused
//! kernel arithmetic (so training and inference agree to the bit), the backward is the analytic
//! input gradient. candle's fused `rms_norm` has no backward, and `rms_norm_slow` rounds
//! differently and costs six tracked ops per call.
//!
//! `y = x / m * a` with `m = sqrt(sum(x^2) / n + eps)`, so
//! `dx = (a * g) / m - x * sum(a * g * x) / (n * m^3)`.
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

use super::error::Result;

struct FrozenRmsNorm {
    alpha: Vec<f32>,
    eps: f32,
}

fn row_m(x: &[f32], eps: f32) -> f32 {
    let sum2 = x.iter().map(|&v| v * v).sum::<f32>();
    (sum2 / x.len() as f32 + eps).sqrt()
}

fn contiguous_f32(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl CustomOp1 for FrozenRmsNorm {
    fn name(&self) -> &'static str {
        "frozen-rms-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("rms-norm: input not contiguous".into()))?;
        let src = &storage.as_slice::<f32>()?[start..end];
        let n = self.alpha.len();
        let mut dst = vec![0f32; src.len()];
        for (s, d) in src.chunks(n).zip(dst.chunks_mut(n)) {
            let m = row_m(s, self.eps);
            for ((d, &s), &a) in d.iter_mut().zip(s).zip(&self.alpha) {
                *d = s / m * a;
            }
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let x = contiguous_f32(arg)?;
        let g = contiguous_f32(grad_res)?;
        let n = self.alpha.len();
        let mut dx = vec![0f32; x.len()];
        for ((xs, gs), ds) in x.chunks(n).zip(g.chunks(n)).zip(dx.chunks_mut(n)) {
            let m = row_m(xs, self.eps);
            let dot: f32 = xs
                .iter()
                .zip(gs)
                .zip(&self.alpha)
                .map(|((&x, &g), &a)| a * g * x)
                .sum();
            let c = dot / (n as f32 * m * m * m);
            for (((d, &x), &g), &a) in ds.iter_mut().zip(xs).zip(gs).zip(&self.alpha) {
                *d = a * g / m - x * c;
            }
        }
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// `x: (.., n)` normalised over the last dimension and scaled by `alpha: (n)`, differentiable
/// in `x` (the scale is a constant). On a device other than the CPU, candle's composed version.
pub fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f32) -> Result<Tensor> {
    if !matches!(x.device(), Device::Cpu) {
        return Ok(candle_nn::ops::rms_norm_slow(x, alpha, eps)?);
    }
    let op = FrozenRmsNorm {
        alpha: alpha.to_vec1::<f32>()?,
        eps,
    };
    Ok(x.contiguous()?.apply_op1(op)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn matches_fused_forward_bitwise_and_composed_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1f32, (5, 16), &dev)?;
        let a = (Tensor::randn(0f32, 0.3f32, 16, &dev)? + 1.0)?;
        let w = Tensor::randn(0f32, 1f32, (5, 16), &dev)?;
        let ours = rms_norm(x.as_tensor(), &a, 1e-5)?;
        let fused = candle_nn::ops::rms_norm(x.as_tensor(), &a, 1e-5)?;
        let d = (&ours - &fused)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(d, 0.0, "forward must equal the fused kernel");
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let slow = candle_nn::ops::rms_norm_slow(x.as_tensor(), &a, 1e-5)?;
        let g2 = (slow * &w)?.sum_all()?.backward()?;
        let (Some(a1), Some(a2)) = (g1.get(x.as_tensor()), g2.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        let d = (a1 - a2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "gradient differs by {d}");
        Ok(())
    }
}

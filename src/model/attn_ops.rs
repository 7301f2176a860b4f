//! RoPE as a custom op with a backward, for the training forward. The forward runs candle's
//! fused kernel (the one inference uses, so training and inference agree to the bit); the
//! backward is analytic: RoPE (rotate-half) is a rotation by the position's angle, so its
//! transpose is the rotation by the negative angle: `dx = rope(g, cos, -sin)`.
//! (The attention's softmax is part of [`super::attn_core`].)
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

use super::error::Result;

/// Runs `f` on a tensor copied from a contiguous CPU storage and returns its result's storage.
pub(crate) fn via_tensor(
    storage: &CpuStorage,
    layout: &Layout,
    f: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("custom op: input not contiguous".into()))?;
    let data = storage.as_slice::<f32>()?;
    let x = Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu)?;
    let y = f(&x)?;
    let shape = y.shape().clone();
    Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
}

struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-with-grad"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        via_tensor(storage, layout, |x| {
            candle_nn::rotary_emb::rope(x, &self.cos, &self.sin)
        })
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.contiguous()?;
        Ok(Some(candle_nn::rotary_emb::rope(
            &g,
            &self.cos,
            &self.sin.neg()?,
        )?))
    }
}

/// HF rotate-half RoPE of `x: (B, H, T, D)` with tables `cos, sin: (T, D/2)`, differentiable
/// in `x`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(candle_nn::rotary_emb::rope_slow(x, cos, sin)?);
    }
    let op = Rope {
        cos: cos.contiguous()?,
        sin: sin.contiguous()?,
    };
    Ok(x.contiguous()?.apply_op1(op)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
    }

    #[test]
    fn rope_matches_fused_forward_and_composed_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1f32, (2, 3, 5, 8), &dev)?;
        let w = Tensor::randn(0f32, 1f32, (2, 3, 5, 8), &dev)?;
        let ang = Tensor::randn(0f32, 2f32, (5, 4), &dev)?;
        let (cos, sin) = (ang.cos()?, ang.sin()?);
        let ours = rope(x.as_tensor(), &cos, &sin)?;
        let fused = candle_nn::rotary_emb::rope(x.as_tensor(), &cos, &sin)?;
        assert_eq!(max_diff(&ours, &fused)?, 0.0);
        let slow = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin)?;
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (slow * &w)?.sum_all()?.backward()?;
        let (Some(a), Some(b)) = (g1.get(x.as_tensor()), g2.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        assert!(max_diff(a, b)? < 1e-5);
        Ok(())
    }
}

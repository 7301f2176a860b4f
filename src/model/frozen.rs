//! A linear layer with a frozen weight whose backward computes only the input gradient.
//!
//! candle's matmul backward always computes the gradient of both operands, even when the
//! weight is a constant; with a frozen backbone that doubles the backward's matmul work. This
//! custom op runs the same `x W^T` forward and returns only `dL/dx = dL/dy W` in backward.
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

use super::error::Result;

struct FrozenMatmul {
    /// `(out, in)`
    w: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen-linear: input not contiguous".into()))?;
        let data = storage.as_slice::<f32>()?;
        let x = Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu)?;
        // (N, in) x (in, out) -> (N, out)
        let y = x.matmul(&self.w.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // (N, out) x (out, in) -> (N, in)
        Ok(Some(grad_res.contiguous()?.matmul(&self.w)?))
    }
}

/// `x: (N, in) -> (N, out)` with `w: (out, in)` treated as a constant in backward. On a device
/// other than the CPU, or for an input that carries no gradient, a plain matmul.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || !x.track_op() {
        return Ok(x.matmul(&w.t()?)?);
    }
    Ok(x.contiguous()?.apply_op1(FrozenMatmul { w: w.clone() })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn forward_and_input_gradient_match_plain_matmul() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1f32, (5, 3), &dev)?;
        let x = Var::randn(0f32, 1f32, (4, 3), &dev)?;
        let y1 = frozen_linear(x.as_tensor(), &w)?;
        let y2 = x.as_tensor().matmul(&w.t()?)?;
        let d = (&y1 - &y2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-6, "forward differs by {d}");
        let g1 = y1.sqr()?.sum_all()?.backward()?;
        let g2 = y2.sqr()?.sum_all()?.backward()?;
        let (Some(a), Some(b)) = (g1.get(x.as_tensor()), g2.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "gradient differs by {d}");
        Ok(())
    }
}

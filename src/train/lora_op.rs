//! A LoRA linear layer as one differentiable op:
//! `y = x W^T + s * ((x * mask) A^T) B^T`, with `W` frozen, `A: (r, in)` and `B: (out, r)`
//! trained, `mask` an inverted-dropout mask (or none) and `s = alpha / r`.
//!
//! Written as candle ops, one LoRA layer is eight graph nodes (the frozen matmul, the mask, its
//! product, two matmuls, the scale, the sum), each with its own tensors and backward; across
//! 210+ layers per step that bookkeeping cost more than the frozen matmuls themselves. Here the
//! forward writes `y` once, and the backward computes `dx`, `dA` and `dB` directly:
//! `gB = dy B`, `dx = dy W + s * (gB A) * mask`, `dA = s * gB^T (x * mask)`,
//! `dB = s * dy^T ((x * mask) A^T)`.
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::lora_kernels::LoraShapes;
use crate::model::cpu_data;
use crate::model::frozen::{frozen_forward_cpu, frozen_input_grad_cpu};

/// The op; `apply` runs it.
pub struct LoraLinear {
    /// Frozen `(out, in)`.
    w: Tensor,
    scale: f64,
    /// Inverted-dropout mask over the input `(N, in)`, or none (evaluation, `p = 0`).
    mask: Option<Arc<Vec<f32>>>,
}

impl LoraLinear {
    /// `x: (N, in) -> (N, out)` with `a: (r, in)`, `b: (out, r)` (variables), `mask` of
    /// `x`'s shape.
    pub fn apply(
        x: &Tensor,
        w: &Tensor,
        a: &Tensor,
        b: &Tensor,
        scale: f64,
        mask: Option<Vec<f32>>,
    ) -> candle_core::Result<Tensor> {
        if mask.as_ref().is_some_and(|m| m.len() != x.elem_count()) {
            return Err(candle_core::Error::Msg(
                "lora-linear: mask and input differ in size".into(),
            ));
        }
        let mask = mask.map(Arc::new);
        x.contiguous()?.apply_op3(
            &a.contiguous()?,
            &b.contiguous()?,
            LoraLinear {
                w: w.clone(),
                scale,
                mask,
            },
        )
    }
}

const OP: &str = "lora-linear";

fn slice_of<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    cpu_data::slice_of(s, l, OP)
}

fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    cpu_data::with_data(t, OP, f)
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, din) = l1.shape().dims2()?;
        let (r, _) = l2.shape().dims2()?;
        let (dout, _) = l3.shape().dims2()?;
        let x = slice_of(s1, l1)?;
        let mut y = frozen_forward_cpu(x, m, &self.w)?;
        let op = LoraShapes {
            x,
            mask: self.mask.as_deref().map(|m| m.as_slice()),
            a: slice_of(s2, l2)?,
            b: slice_of(s3, l3)?,
            m,
            din,
            dout,
            r,
            s: self.scale as f32,
        };
        let h = op.hidden(&op.dropped());
        op.add_output(&h, &mut y);
        Ok((CpuStorage::F32(y), Shape::from_dims(&[m, dout])))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (m, din) = x.dims2()?;
        let (r, dout) = (a.dim(0)?, b.dim(0)?);
        let dev = x.device();
        // The input's gradient only where it is needed (not below the first layer).
        let want_dx = x.track_op();
        let ((da, db), dx) = with_data(x, |xv| {
            with_data(a, |av| {
                with_data(b, |bv| {
                    with_data(dy, |dyv| {
                        let op = LoraShapes {
                            x: xv,
                            mask: self.mask.as_deref().map(|m| m.as_slice()),
                            a: av,
                            b: bv,
                            m,
                            din,
                            dout,
                            r,
                            s: self.scale as f32,
                        };
                        let gb = op.grad_hidden(dyv);
                        let xd = op.dropped();
                        let h = op.hidden(&xd);
                        let grads = (op.grad_a(&gb, &xd), op.grad_b(dyv, &h));
                        let dx = if want_dx {
                            let mut g = frozen_input_grad_cpu(dyv, m, &self.w)?;
                            op.add_input_grad(&gb, &mut g);
                            Some(g)
                        } else {
                            None
                        };
                        Ok::<_, candle_core::Error>((grads, dx))
                    })
                })
            })
        })?????;
        let da = Tensor::from_vec(da, (r, din), dev)?;
        let db = Tensor::from_vec(db, (dout, r), dev)?;
        let dx = match dx {
            Some(g) => Some(Tensor::from_vec(g, (m, din), dev)?),
            None => None,
        };
        Ok((dx, Some(da), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The same layer as candle ops.
    fn unfused(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, s: f64, mask: &Tensor) -> Tensor {
        let y = x.matmul(&w.t().unwrap()).unwrap();
        let h = (x * mask).unwrap().matmul(&a.t().unwrap()).unwrap();
        (y + (h.matmul(&b.t().unwrap()).unwrap() * s).unwrap()).unwrap()
    }

    #[test]
    fn forward_and_gradients_equal_the_unfused_ops() -> candle_core::Result<()> {
        // tiny (every loop a remainder) and larger (whole vector chunks, the worker pool)
        for (n, din, dout, r) in [(6, 12, 10, 4), (40, 130, 200, 16)] {
            check(n, din, dout, r)?;
        }
        Ok(())
    }

    fn check(n: usize, din: usize, dout: usize, r: usize) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let s = 2.0;
        let w = Tensor::randn(0f32, 1f32, (dout, din), &dev)?;
        let x = Var::randn(0f32, 1f32, (n, din), &dev)?;
        let a = Var::randn(0f32, 1f32, (r, din), &dev)?;
        let b = Var::randn(0f32, 1f32, (dout, r), &dev)?;
        let mask: Vec<f32> = (0..n * din)
            .map(|i| if i % 7 == 3 { 0.0 } else { 1.0 / 0.9 })
            .collect();
        let m = Tensor::from_vec(mask.clone(), (n, din), &dev)?;
        // a weight the loss sees unevenly, so every gradient is non-trivial
        let probe = Tensor::randn(0f32, 1f32, (n, dout), &dev)?;
        let y1 = LoraLinear::apply(
            x.as_tensor(),
            &w,
            a.as_tensor(),
            b.as_tensor(),
            s,
            Some(mask),
        )?;
        let y2 = unfused(x.as_tensor(), &w, a.as_tensor(), b.as_tensor(), s, &m);
        let scale = y2.abs()?.max_all()?.to_scalar::<f32>()?;
        let diff = (&y1 - &y2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            diff < 1e-5 * scale.max(1.0),
            "{din}x{dout}: forward differs by {diff}"
        );
        let g1 = (y1 * &probe)?.sum_all()?.backward()?;
        let g2 = (y2 * &probe)?.sum_all()?.backward()?;
        let vars = [("x", &x), ("a", &a), ("b", &b)];
        crate::model::grad_check::assert_same_gradients(&g1, &g2, &vars, 1e-5)?;
        Ok(())
    }
}

//! RMSNorm with a frozen scale as a custom op with a backward, used by inference and training
//! alike (so they agree to the bit): the forward sums squares in 16 lanes and runs rows in
//! parallel (candle's fused kernel is a serial loop per row, a tenth of a prefill step), the
//! backward is the analytic input gradient. candle's fused `rms_norm` has no backward, and
//! `rms_norm_slow` costs six tracked ops per call.
//!
//! `y = x / m * a` with `m = sqrt(sum(x^2) / n + eps)`, so
//! `dx = (a * g) / m - x * sum(a * g * x) / (n * m^3)`.
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

use super::error::Result;
use super::par::{run_split, OutPtr};

struct FrozenRmsNorm {
    alpha: Vec<f32>,
    eps: f32,
}

/// `sqrt(mean(x^2) + eps)`, the squares summed in 16 lanes (vectorises).
fn row_m(x: &[f32], eps: f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&v| v * v).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    let sum2 = acc.iter().sum::<f32>() + tail;
    (sum2 / x.len() as f32 + eps).sqrt()
}

/// One row of RMSNorm: `dst = x / m * alpha`.
pub fn norm_row(x: &[f32], alpha: &[f32], eps: f32, dst: &mut [f32]) {
    let m = row_m(x, eps);
    for ((d, &s), &a) in dst.iter_mut().zip(x).zip(alpha) {
        *d = s / m * a;
    }
}

/// `y = x / m * alpha` for every row of `alpha.len()` values of `src`; rows in parallel on
/// candle's worker pool when there are many (prefill, training).
fn normalize_rows(src: &[f32], alpha: &[f32], eps: f32) -> Vec<f32> {
    let mut dst = vec![0f32; src.len()];
    rms_norm_into(src, alpha, eps, &mut dst);
    dst
}

/// As [`rms_norm`] on slices: every row of `alpha.len()` values of `src` into `dst`.
pub fn rms_norm_into(src: &[f32], alpha: &[f32], eps: f32, dst: &mut [f32]) {
    let n = alpha.len().max(1);
    debug_assert_eq!(src.len(), dst.len());
    let out = OutPtr(dst.as_mut_ptr());
    let run = |rows: std::ops::Range<usize>| {
        for r in rows {
            // SAFETY: row `r` of `dst` belongs to this call alone.
            let d = unsafe { out.slice(r * n, n) };
            norm_row(&src[r * n..(r + 1) * n], alpha, eps, d);
        }
    };
    run_split(src.len() / n, src.len(), run);
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
        if src.len() % self.alpha.len().max(1) != 0 {
            return Err(candle_core::Error::Msg(format!(
                "rms-norm: {} values are not rows of {}",
                src.len(),
                self.alpha.len()
            )));
        }
        let dst = normalize_rows(src, &self.alpha, self.eps);
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
        // the fused kernel where no gradient is needed (inference), the composed one otherwise
        return Ok(if x.track_op() {
            candle_nn::ops::rms_norm_slow(x, alpha, eps)?
        } else {
            candle_nn::ops::rms_norm(x, alpha, eps)?
        });
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
    fn matches_fused_forward_and_composed_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1f32, (5, 16), &dev)?;
        let a = (Tensor::randn(0f32, 0.3f32, 16, &dev)? + 1.0)?;
        let w = Tensor::randn(0f32, 1f32, (5, 16), &dev)?;
        let ours = rms_norm(x.as_tensor(), &a, 1e-5)?;
        let fused = candle_nn::ops::rms_norm(x.as_tensor(), &a, 1e-5)?;
        let d = (&ours - &fused)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            d < 1e-6,
            "forward differs from candle's fused kernel by {d}"
        );
        // many rows (the parallel path), a width with a remainder of 16
        let big = Tensor::randn(0f32, 3f32, (300, 200), &dev)?;
        let ab = (Tensor::randn(0f32, 0.3f32, 200, &dev)? + 1.0)?;
        let d = (rms_norm(&big, &ab, 1e-5)? - candle_nn::ops::rms_norm(&big, &ab, 1e-5)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-5, "many rows: differs by {d}");
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

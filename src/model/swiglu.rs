//! SwiGLU `silu(gate) * up` as one differentiable op for the training forward: one parallel
//! pass forward, one vectorised pass backward for both inputs (`s = sigmoid(g)`):
//! `dgate = dm * up * s * (1 + g * (1 - s))`, `dup = dm * g * s`.
//! As candle ops it is SiLU, a product and, in backward, about ten elementwise tensors per
//! layer.
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu_data::{slice_of, with_data};
use super::error::Result;
use super::par::{run_split, OutPtr};

/// Elements per unit of parallel work.
const CHUNK: usize = 4096;

struct SwiGlu;

/// `f(range)` over `0..n` in chunks of [`CHUNK`] on the worker pool.
fn chunks(n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    run_split(n.div_ceil(CHUNK), n, |cs| {
        for c in cs {
            f(c * CHUNK..((c + 1) * CHUNK).min(n));
        }
    });
}

/// `silu(g) * u`, in exactly the operations of candle's `silu` followed by the product (so the
/// training forward equals the f32 inference forward to the bit).
fn forward_span(g: &[f32], u: &[f32], o: &mut [f32]) {
    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
        *o = g / (1.0 + (-g).exp()) * u;
    }
}

/// The gradients `(dgate, dup)` of one span.
fn backward_span(g: &[f32], u: &[f32], dm: &[f32], dg: &mut [f32], du: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::qmatmul::has_avx512() {
        // SAFETY: AVX-512 F present; all slices have the same length.
        return unsafe { avx512::backward_span(g, u, dm, dg, du) };
    }
    for i in 0..g.len() {
        let s = 1.0 / (1.0 + (-g[i]).exp());
        dg[i] = dm[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        du[i] = dm[i] * g[i] * s;
    }
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, u) = (slice_of(s1, l1, "swiglu")?, slice_of(s2, l2, "swiglu")?);
        if g.len() != u.len() {
            candle_core::bail!("swiglu: gate and up differ in size");
        }
        let mut out = vec![0f32; g.len()];
        let o = OutPtr(out.as_mut_ptr());
        chunks(g.len(), |r| {
            // SAFETY: each chunk of `out` belongs to this call alone.
            let dst = unsafe { o.slice(r.start, r.len()) };
            forward_span(&g[r.clone()], &u[r], dst);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let n = gate.elem_count();
        let (mut dg, mut du) = (vec![0f32; n], vec![0f32; n]);
        let (pg, pu) = (OutPtr(dg.as_mut_ptr()), OutPtr(du.as_mut_ptr()));
        with_data(gate, "swiglu", |g| {
            with_data(up, "swiglu", |u| {
                with_data(grad, "swiglu", |dm| {
                    chunks(n, |r| {
                        // SAFETY: each chunk of `dg` and `du` belongs to this call alone.
                        let (a, b) =
                            unsafe { (pg.slice(r.start, r.len()), pu.slice(r.start, r.len())) };
                        backward_span(&g[r.clone()], &u[r.clone()], &dm[r], a, b);
                    })
                })
            })
        })???;
        let dev = gate.device();
        Ok((
            Some(Tensor::from_vec(dg, gate.shape(), dev)?),
            Some(Tensor::from_vec(du, up.shape(), dev)?),
        ))
    }
}

/// `silu(gate) * up`, differentiable in both (candle's ops off the CPU).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !gate.device().is_cpu() {
        return Ok((candle_nn::ops::silu(gate)? * up)?);
    }
    Ok(gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)?)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::model::act::avx512::exp;

    /// # Safety
    /// AVX-512 F present; all slices of one length.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn backward_span(g: &[f32], u: &[f32], dm: &[f32], dg: &mut [f32], du: &mut [f32]) {
        let n = g.len();
        let one = _mm512_set1_ps(1.0);
        for i in (0..n).step_by(16) {
            let k = (n - i).min(16);
            let mask: __mmask16 = if k == 16 { 0xFFFF } else { (1u16 << k) - 1 };
            let gv = _mm512_maskz_loadu_ps(mask, g.as_ptr().add(i));
            let uv = _mm512_maskz_loadu_ps(mask, u.as_ptr().add(i));
            let d = _mm512_maskz_loadu_ps(mask, dm.as_ptr().add(i));
            let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), gv));
            let s = _mm512_div_ps(one, _mm512_add_ps(one, e));
            let gs = _mm512_mul_ps(gv, s);
            // s * (1 + g * (1 - s)) = s + gs * (1 - s)
            let ds = _mm512_fmadd_ps(gs, _mm512_sub_ps(one, s), s);
            let gd = _mm512_mul_ps(_mm512_mul_ps(d, uv), ds);
            _mm512_mask_storeu_ps(dg.as_mut_ptr().add(i), mask, gd);
            _mm512_mask_storeu_ps(du.as_mut_ptr().add(i), mask, _mm512_mul_ps(d, gs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn value_and_gradients_equal_candle_ops() -> Result<()> {
        let dev = Device::Cpu;
        // 3 x 2741: whole chunks, a partial chunk and a partial vector; values far into both tails
        let g = Var::from_tensor(&(Tensor::randn(0f32, 4f32, (3, 2741), &dev)?))?;
        let u = Var::randn(0f32, 1f32, (3, 2741), &dev)?;
        let probe = Tensor::randn(0f32, 1f32, (3, 2741), &dev)?;
        let ours = swiglu(g.as_tensor(), u.as_tensor())?;
        let theirs = (candle_nn::ops::silu(g.as_tensor())? * u.as_tensor())?;
        let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "forward differs by {d}");
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        let vars = [("gate", &g), ("up", &u)];
        crate::model::grad_check::assert_same_gradients(&g1, &g2, &vars, 1e-5)?;
        Ok(())
    }
}

//! The core of the training attention as one differentiable op: `O = softmax(s * Q K^T + M) V`
//! per sequence and key/value head, with its analytic backward (`P` the probabilities, kept
//! from the forward):
//! `dV = P^T dO`, `dS = P * (dO V^T - rowsum(P * dO V^T))`, `dQ = s * dS K`, `dK = s * dS^T Q`.
//! Each (sequence, head) is a few single-threaded strided GEMMs and the pool's threads take
//! them in parallel. As candle ops it is two matmuls, a scale, a mask add and a softmax,
//! each a tracked tensor of scores whose gradient is allocated, zeroed and summed on its own.
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::cpu_data::{slice_of, with_data};
use super::error::Result;
use super::par::{run_split, OutPtr};
use super::row_softmax::softmax_in_place;
use super::strided_gemm::{gemm1, Operand};

struct AttnCore {
    scale: f32,
    /// Additive mask `(B, M, L)` (the batch's one tensor, read in place); item `i` uses block
    /// `i / heads`.
    mask: Tensor,
    heads: usize,
    /// The probabilities `(N, M, L)`, kept by the forward for the backward.
    probs: OnceLock<Vec<f32>>,
}

/// `(N, M, L, D)` from `q: (N, M, D)`, `k, v: (N, L, D)`, checked.
fn dims(
    q: &[usize],
    k: &[usize],
    v: &[usize],
) -> candle_core::Result<(usize, usize, usize, usize)> {
    let (&[n, m, d], &[nk, l, dk]) = (q, k) else {
        candle_core::bail!("attention core: q {q:?} and k {k:?} must be 3-D");
    };
    if nk != n || dk != d || v != k {
        candle_core::bail!("attention core: q {q:?}, k {k:?}, v {v:?} do not fit");
    }
    Ok((n, m, l, d))
}

impl CustomOp3 for AttnCore {
    fn name(&self) -> &'static str {
        "attention-core"
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
        let (n, m, l, d) = dims(l1.dims(), l2.dims(), l3.dims())?;
        let masked = self.mask.elem_count();
        if self.heads == 0 || n % self.heads != 0 || masked != n / self.heads * m * l {
            candle_core::bail!("attention core: mask of {masked} for {n} x {m} x {l}");
        }
        let q = slice_of(s1, l1, "attention core")?;
        let k = slice_of(s2, l2, "attention core")?;
        let v = slice_of(s3, l3, "attention core")?;
        let mut probs = vec![0f32; n * m * l];
        let mut out = vec![0f32; n * m * d];
        let (pp, po) = (OutPtr(probs.as_mut_ptr()), OutPtr(out.as_mut_ptr()));
        with_data(&self.mask, "attention core", |mask| {
            run_split(n, n * m * l * d, |items| {
                for i in items {
                    let (qi, ki, vi) = (
                        Operand(q[i * m * d..].as_ptr(), 1, d as isize),
                        Operand(k[i * l * d..].as_ptr(), d as isize, 1),
                        Operand(v[i * l * d..].as_ptr(), 1, d as isize),
                    );
                    // SAFETY: block `i` of `probs` belongs to this item alone.
                    let p = unsafe { pp.slice(i * m * l, m * l) };
                    // SAFETY (both GEMMs): the operands address item `i` (`q`: m x d, `k^T`: d x l,
                    // `p`: m x l, `v`: l x d); the outputs are this item's blocks.
                    // S = s Q K^T
                    unsafe { gemm1(m, l, d, p.as_mut_ptr(), l, false, self.scale, qi, ki) };
                    let mask = &mask[(i / self.heads) * m * l..(i / self.heads + 1) * m * l];
                    for (row, mrow) in p.chunks_mut(l).zip(mask.chunks(l)) {
                        for (x, &a) in row.iter_mut().zip(mrow) {
                            *x += a;
                        }
                        softmax_in_place(row);
                    }
                    // O = P V
                    let pv = Operand(p.as_ptr(), 1, l as isize);
                    unsafe { gemm1(m, d, l, po.get().add(i * m * d), d, false, 1.0, pv, vi) };
                }
            });
        })?;
        let _ = self.probs.set(probs);
        Ok((CpuStorage::F32(out), Shape::from((n, m, d))))
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, m, l, d) = dims(q.dims(), k.dims(), v.dims())?;
        let Some(probs) = self.probs.get() else {
            candle_core::bail!("attention core: backward before forward");
        };
        let (mut dq, mut dk, mut dv) = (
            vec![0f32; n * m * d],
            vec![0f32; n * l * d],
            vec![0f32; n * l * d],
        );
        let (pq, pk, pv) = (
            OutPtr(dq.as_mut_ptr()),
            OutPtr(dk.as_mut_ptr()),
            OutPtr(dv.as_mut_ptr()),
        );
        let s = self.scale;
        with_data(q, "attention core", |q| {
            with_data(k, "attention core", |k| {
                with_data(v, "attention core", |v| {
                    with_data(grad, "attention core", |g| {
                        run_split(n, 3 * n * m * l * d, |items| {
                            let mut ds = vec![0f32; m * l];
                            for i in items {
                                let (qs, ks, vs, gs, ps) = (
                                    q[i * m * d..].as_ptr(),
                                    k[i * l * d..].as_ptr(),
                                    v[i * l * d..].as_ptr(),
                                    g[i * m * d..].as_ptr(),
                                    &probs[i * m * l..(i + 1) * m * l],
                                );
                                let (dsp, pp) = (ds.as_mut_ptr(), ps.as_ptr());
                                // SAFETY (all GEMMs): the operands address item `i` of theirs
                                // (`q`, `dO`: m x d, `k`, `v`: l x d, `P`, `dS`: m x l); the
                                // output blocks belong to this item alone.
                                unsafe {
                                    // dV = P^T dO
                                    let (pt, gi) =
                                        (Operand(pp, l as isize, 1), Operand(gs, 1, d as isize));
                                    gemm1(l, d, m, pv.get().add(i * l * d), d, false, 1.0, pt, gi);
                                    // dP = dO V^T
                                    gemm1(
                                        m,
                                        l,
                                        d,
                                        dsp,
                                        l,
                                        false,
                                        1.0,
                                        gi,
                                        Operand(vs, d as isize, 1),
                                    );
                                }
                                // dS = P * (dP - rowsum(P * dP))
                                for (drow, prow) in ds.chunks_mut(l).zip(ps.chunks(l)) {
                                    let dot: f32 = drow.iter().zip(prow).map(|(a, b)| a * b).sum();
                                    for (x, &y) in drow.iter_mut().zip(prow) {
                                        *x = y * (*x - dot);
                                    }
                                }
                                let dsp = ds.as_ptr();
                                unsafe {
                                    // dQ = s dS K
                                    let (dsv, kv) =
                                        (Operand(dsp, 1, l as isize), Operand(ks, 1, d as isize));
                                    gemm1(m, d, l, pq.get().add(i * m * d), d, false, s, dsv, kv);
                                    // dK = s dS^T Q
                                    let (dst, qv) =
                                        (Operand(dsp, l as isize, 1), Operand(qs, 1, d as isize));
                                    gemm1(l, d, m, pk.get().add(i * l * d), d, false, s, dst, qv);
                                }
                            }
                        })
                    })
                })
            })
        })????;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, k.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

/// `softmax(scale * q k^T + mask) v` for `q: (N, M, D)`, `k, v: (N, L, D)` and an additive
/// `mask: (N / heads, M, L)` shared by the `heads` consecutive items of each sequence;
/// `(N, M, D)`, differentiable in `q`, `k` and `v` (candle's ops off the CPU).
pub fn attention_core(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f32,
) -> Result<Tensor> {
    if !q.device().is_cpu() {
        let (n, m, _) = q.dims3()?;
        let l = k.dim(1)?;
        let att = (q.matmul(&k.t()?)? * scale as f64)?.reshape((n / heads, heads, m, l))?;
        let mask = mask.unsqueeze(1)?;
        let att = candle_nn::ops::softmax_last_dim(&att.broadcast_add(&mask)?)?;
        return Ok(att.reshape((n, m, l))?.matmul(&v.contiguous()?)?);
    }
    let op = AttnCore {
        scale,
        mask: mask.contiguous()?,
        heads,
        probs: OnceLock::new(),
    };
    Ok(q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::model::grad_check::assert_same_gradients;

    #[test]
    fn attention_core_equals_candle_ops_with_gradients() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (b, heads, m, l, d) = (2, 3, 6, 9, 8);
        let n = b * heads;
        let q = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, m, d), &dev)?)?;
        let k = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, l, d), &dev)?)?;
        let v = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, l, d), &dev)?)?;
        // a causal-style mask with some keys hidden
        let mask: Vec<f32> = (0..b * m * l)
            .map(|i| if (i % l) > (i / l) % m + 3 { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (b, m, l), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (n, m, d), &dev)?;
        let ours = attention_core(
            q.as_tensor(),
            k.as_tensor(),
            v.as_tensor(),
            &mask,
            heads,
            0.3,
        )
        .expect("attention core");
        let att = (q.as_tensor().matmul(&k.as_tensor().t()?)? * 0.3)?
            .reshape((b, heads, m, l))?
            .broadcast_add(&mask.unsqueeze(1)?)?;
        let want = candle_nn::ops::softmax(&att, candle_core::D::Minus1)?
            .reshape((n, m, l))?
            .matmul(v.as_tensor())?;
        let diff = (&ours - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "forward differs by {diff}");
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (want * &w)?.sum_all()?.backward()?;
        assert_same_gradients(&g1, &g2, &[("q", &q), ("k", &k), ("v", &v)], 1e-5)
    }
}

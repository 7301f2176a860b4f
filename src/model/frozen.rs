//! A linear layer with a frozen weight whose backward computes only the input gradient.
//!
//! candle's matmul backward always computes the gradient of both operands, even when the
//! weight is a constant; with a frozen backbone that doubles the backward's matmul work. This
//! custom op runs the same `x W^T` forward and returns only `dL/dx = dL/dy W` in backward.
//!
//! Optionally ([`use_bf16_tiles`]) both products of the weights given there run as bf16 AMX
//! tile matmuls with f32 accumulation (mixed precision, as bf16 autocast does), from bf16 copies
//! of `W` and `W^T` made once per weight; or ([`use_f32_panels`]) in f32 on an AVX-512 kernel
//! from packed f32 copies.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor, TensorId};

use super::amx::{self, Bf16Matrix};
use super::error::Result;
use super::f32_panels::{self, F32Panels};

/// Packed copies of one frozen weight: `W (out, in)` for the forward, `W^T` for the input
/// gradient, as bf16 AMX tiles or as f32 panels for the AVX-512 kernel.
enum Tiles {
    Bf16 { w: Bf16Matrix, wt: Bf16Matrix },
    F32 { w: F32Panels, wt: F32Panels },
}

impl Tiles {
    /// `x (m, in) W^T -> (m, out)`.
    fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        match self {
            Tiles::Bf16 { w, .. } => product(w.dims().0, m, |o| w.matmul(x, m, o)),
            Tiles::F32 { w, .. } => product(w.dims().0, m, |o| w.matmul(x, m, o)),
        }
    }

    /// `g (m, out) W -> (m, in)`.
    fn input_grad(&self, g: &[f32], m: usize) -> Vec<f32> {
        match self {
            Tiles::Bf16 { wt, .. } => product(wt.dims().0, m, |o| wt.matmul(g, m, o)),
            Tiles::F32 { wt, .. } => product(wt.dims().0, m, |o| wt.matmul(g, m, o)),
        }
    }
}

/// An `(m, n)` output written by `f`.
fn product(n: usize, m: usize, f: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    f(&mut out);
    out
}

type TileCache = Mutex<HashMap<TensorId, Arc<Tiles>>>;

fn tile_cache() -> &'static TileCache {
    static CACHE: OnceLock<TileCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Packs each weight with `pack(W, W^T, out, in)` and registers the copies; registers nothing
/// and returns false when one does not pack.
fn register(
    weights: &[&Tensor],
    pack: impl Fn(&[f32], &[f32], usize, usize) -> Option<Tiles>,
) -> Result<bool> {
    let mut made = Vec::with_capacity(weights.len());
    for w in weights {
        let (n, k) = w.dims2()?;
        let data = w.flatten_all()?.to_vec1::<f32>()?;
        let tdata = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let Some(t) = pack(&data, &tdata, n, k) else {
            return Ok(false);
        };
        made.push((w.id(), Arc::new(t)));
    }
    let mut cache = tile_cache()
        .lock()
        .map_err(|_| super::ModelError::Input("frozen weight cache poisoned".into()))?;
    cache.extend(made);
    Ok(true)
}

/// Runs the frozen matmuls of these weights on bf16 AMX tiles from now on; returns false (and
/// changes nothing) when the CPU has no AMX or a weight's shape does not fit the tile layout.
pub fn use_bf16_tiles(weights: &[&Tensor]) -> Result<bool> {
    if !amx::available() {
        return Ok(false);
    }
    register(weights, |w, wt, n, k| {
        Some(Tiles::Bf16 {
            w: Bf16Matrix::from_f32(w, n, k)?,
            wt: Bf16Matrix::from_f32(wt, k, n)?,
        })
    })
}

/// Runs the frozen matmuls of these weights in f32 on the AVX-512 panel kernel from now on
/// (the same f32 arithmetic as a plain matmul); returns false (and changes nothing) without
/// AVX-512.
pub fn use_f32_panels(weights: &[&Tensor]) -> Result<bool> {
    if !f32_panels::available() {
        return Ok(false);
    }
    register(weights, |w, wt, n, k| {
        Some(Tiles::F32 {
            w: F32Panels::from_f32(w, n, k)?,
            wt: F32Panels::from_f32(wt, k, n)?,
        })
    })
}

fn tiles_for(w: &Tensor) -> Option<Arc<Tiles>> {
    tile_cache().lock().ok()?.get(&w.id()).cloned()
}

struct FrozenMatmul {
    /// `(out, in)`
    w: Tensor,
    tiles: Option<Arc<Tiles>>,
}

/// `y (m, out) = x (m, in) W^T` on the CPU for a frozen `w: (out, in)`: on its packed copies
/// when [`use_bf16_tiles`] or [`use_f32_panels`] registered it, else candle's f32 matmul.
pub fn frozen_forward_cpu(x: &[f32], m: usize, w: &Tensor) -> candle_core::Result<Vec<f32>> {
    frozen_forward_with(x, m, w, tiles_for(w).as_deref())
}

fn frozen_forward_with(
    x: &[f32],
    m: usize,
    w: &Tensor,
    tiles: Option<&Tiles>,
) -> candle_core::Result<Vec<f32>> {
    if let Some(t) = tiles {
        return Ok(t.forward(x, m));
    }
    let (_, k) = w.dims2()?;
    let x = Tensor::from_slice(x, (m, k), &Device::Cpu)?;
    // (m, in) x (in, out) -> (m, out)
    x.matmul(&w.t()?)?.flatten_all()?.to_vec1::<f32>()
}

/// The input gradient of [`frozen_forward_cpu`]: `g (m, out) W -> (m, in)`.
pub fn frozen_input_grad_cpu(g: &[f32], m: usize, w: &Tensor) -> candle_core::Result<Vec<f32>> {
    frozen_input_grad_with(g, m, w, tiles_for(w).as_deref())
}

fn frozen_input_grad_with(
    g: &[f32],
    m: usize,
    w: &Tensor,
    tiles: Option<&Tiles>,
) -> candle_core::Result<Vec<f32>> {
    if let Some(t) = tiles {
        return Ok(t.input_grad(g, m));
    }
    let (n, _) = w.dims2()?;
    // (m, out) x (out, in) -> (m, in)
    Tensor::from_slice(g, (m, n), &Device::Cpu)?
        .matmul(w)?
        .flatten_all()?
        .to_vec1::<f32>()
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
        let (n, k) = self.w.dims2()?;
        // leading dimensions flattened into rows: (.., in) -> (.., out)
        let m = layout.shape().elem_count() / k.max(1);
        let out = frozen_forward_with(&data[start..end], m, &self.w, self.tiles.as_deref())?;
        let mut dims = layout.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&dims)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // (.., out) x (out, in) -> (.., in), leading dimensions as rows
        let (n, k) = self.w.dims2()?;
        let g = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let m = g.len() / n.max(1);
        let dx = frozen_input_grad_with(&g, m, &self.w, self.tiles.as_deref())?;
        let mut dims = grad_res.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = k;
        }
        Ok(Some(Tensor::from_vec(dx, dims, grad_res.device())?))
    }
}

/// `x: (N, in) -> (N, out)` with `w: (out, in)` treated as a constant in backward. On a device
/// other than the CPU, or for an input that carries no gradient, a plain matmul.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || !x.track_op() {
        return Ok(x.matmul(&w.t()?)?);
    }
    let tiles = if x.rank() == 2 { tiles_for(w) } else { None };
    Ok(x.contiguous()?.apply_op1(FrozenMatmul {
        w: w.clone(),
        tiles,
    })?)
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

    #[test]
    fn f32_panels_equal_the_plain_matmul_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1f32, (40, 64), &dev)?;
        let x = Var::randn(0f32, 1f32, (11, 64), &dev)?;
        let y1 = frozen_linear(x.as_tensor(), &w)?;
        let g1 = y1.sqr()?.sum_all()?.backward()?;
        // a copy with its own id, so the plain test beside this one is unaffected
        let wp = w.copy()?;
        if !use_f32_panels(&[&wp])? {
            eprintln!("no AVX-512 here: the f32 panel path is not exercised");
            return Ok(());
        }
        let y2 = frozen_linear(x.as_tensor(), &wp)?;
        let g2 = y2.sqr()?.sum_all()?.backward()?;
        let d = (&y1 - &y2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "forward differs by {d}");
        let (Some(a), Some(b)) = (g1.get(x.as_tensor()), g2.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-3, "gradient differs by {d}");
        Ok(())
    }

    #[test]
    fn bf16_tiles_stay_close_to_f32() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1f32, (32, 64), &dev)?;
        let x = Var::randn(0f32, 1f32, (5, 64), &dev)?;
        let y32 = frozen_linear(x.as_tensor(), &w)?;
        let g32 = y32.sqr()?.sum_all()?.backward()?;
        // a copy with its own id, so the f32 test beside this one is unaffected
        let w16 = w.copy()?;
        if !use_bf16_tiles(&[&w16])? {
            eprintln!("no AMX here: the bf16 path is not exercised");
            return Ok(());
        }
        let y16 = frozen_linear(x.as_tensor(), &w16)?;
        let g16 = y16.sqr()?.sum_all()?.backward()?;
        // bf16 keeps 8 bits of mantissa: relative error of a 64-term product well under 2%
        let rel = |a: &Tensor, b: &Tensor| -> Result<f32> {
            let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let s = b.abs()?.max_all()?.to_scalar::<f32>()?;
            Ok(d / s)
        };
        assert!(rel(&y16, &y32)? < 0.02);
        let (Some(a), Some(b)) = (g16.get(x.as_tensor()), g32.get(x.as_tensor())) else {
            panic!("missing gradient");
        };
        assert!(rel(a, b)? < 0.03);
        Ok(())
    }
}

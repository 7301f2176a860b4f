//! AdamW (decoupled weight decay, PyTorch's formula) with moments that a checkpoint can save and
//! restore, and global-norm gradient clipping. candle's own `AdamW` keeps its moments private,
//! so a resumed run could not continue exactly with it.
use std::collections::HashMap;

use candle_core::{Tensor, Var};

use super::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Parameters (named, in a fixed order) and their first/second moments.
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<(String, Var)>,
    /// Per-parameter multiplier of the step's learning rate (1 unless set).
    lr_scale: Vec<f64>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    t: usize,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let m = params
            .iter()
            .map(|(_, p)| p.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        let lr_scale = vec![1.0; params.len()];
        Ok(AdamW {
            cfg,
            lr_scale,
            params,
            m,
            v,
            t: 0,
        })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Multiplies the learning rate of every parameter whose name starts with `prefix`
    /// (a parameter group, e.g. the encoder trained from scratch next to LoRA).
    pub fn scale_lr(&mut self, prefix: &str, scale: f64) {
        for (i, (name, _)) in self.params.iter().enumerate() {
            if name.starts_with(prefix) {
                self.lr_scale[i] = scale;
            }
        }
    }

    pub fn steps(&self) -> usize {
        self.t
    }

    /// One update with `grads[i]` for `params[i]` (`None`: no gradient, moments still decay as
    /// with a zero gradient, as PyTorch skips the parameter instead; we skip it too).
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(TrainError::Config(format!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        self.t += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        let bc1 = 1.0 - beta1.powi(self.t as i32);
        let bc2 = 1.0 - beta2.powi(self.t as i32);
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            // Moments must not carry the step's autograd graph from one step to the next.
            let g = &g.detach();
            let p = &self.params[i].1;
            let lr = lr * self.lr_scale[i];
            let m = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&m / bc1)?;
            let v_hat = (&v / bc2)?;
            let decayed = (p.as_tensor() * (1.0 - lr * weight_decay))?;
            let upd = (m_hat / (v_hat.sqrt()? + eps)?)?;
            p.set(&(decayed - (upd * lr)?)?)?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// Moments as named tensors (`m.{name}`, `v.{name}`) for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] after `t` steps.
    pub fn load_state(&mut self, mut tensors: HashMap<String, Tensor>, t: usize) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (key, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let tn = tensors.remove(&format!("{key}.{name}")).ok_or_else(|| {
                    TrainError::Config(format!("optimizer state lacks `{key}.{name}`"))
                })?;
                if tn.dims() != p.dims() {
                    return Err(TrainError::Config(format!(
                        "optimizer state `{key}.{name}` has shape {:?}, parameter {:?}",
                        tn.dims(),
                        p.dims()
                    )));
                }
                *slot = tn;
            }
        }
        self.t = t;
        Ok(())
    }
}

/// Scales all gradients so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Returns the norm before
/// clipping.
pub fn clip_global_norm(grads: &mut [Option<Tensor>], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter().flatten() {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut().flatten() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_adamw_formula_over_three_steps() -> Result<()> {
        let dev = Device::Cpu;
        let p = Var::from_slice(&[1.0f32, -2.0], 2, &dev)?;
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("p".into(), p.clone())], cfg)?;
        let grads = [[0.5f64, -1.0], [0.1, 0.2], [-0.3, 0.4]];
        let lr = 0.01;
        let (mut theta, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for (t, g) in grads.iter().enumerate() {
            let gt = Tensor::from_slice(&[g[0] as f32, g[1] as f32], 2, &dev)?;
            opt.step(&[Some(gt)], lr)?;
            for j in 0..2 {
                theta[j] *= 1.0 - lr * 0.1;
                m[j] = 0.9 * m[j] + 0.1 * g[j];
                v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
                let mh = m[j] / (1.0 - 0.9f64.powi(t as i32 + 1));
                let vh = v[j] / (1.0 - 0.999f64.powi(t as i32 + 1));
                theta[j] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = p.as_tensor().to_vec1::<f32>()?;
        for j in 0..2 {
            assert!(
                (got[j] as f64 - theta[j]).abs() < 1e-6,
                "{got:?} vs {theta:?}"
            );
        }
        // moments round-trip
        let st = opt.state_tensors();
        let mut opt2 = AdamW::new(vec![("p".into(), p.clone())], cfg)?;
        opt2.load_state(st, 3)?;
        assert_eq!(opt2.steps(), 3);
        let mv = opt2.state_tensors()["m.p"].to_vec1::<f32>()?;
        assert!((mv[0] as f64 - m[0]).abs() < 1e-7);
        Ok(())
    }

    #[test]
    fn clipping_scales_to_max_norm() -> Result<()> {
        let dev = Device::Cpu;
        let mut g = vec![
            Some(Tensor::from_slice(&[3.0f32], 1, &dev)?),
            None,
            Some(Tensor::from_slice(&[4.0f32], 1, &dev)?),
        ];
        let n = clip_global_norm(&mut g, 1.0)?;
        assert!((n - 5.0).abs() < 1e-6);
        let a = g[0].as_ref().map(|t| t.to_vec1::<f32>()).transpose()?;
        assert!((a.unwrap_or_default()[0] - 0.6).abs() < 1e-5);
        Ok(())
    }
}

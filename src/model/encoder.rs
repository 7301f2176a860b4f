//! The ECG encoder: temporal conv blocks (Conv1d, BatchNorm, ReLU, average pooling) over
//! `(B, 12, T)`, global average over time, then a non-linear up-then-down projector to `P`
//! L2-normalised vectors of the backbone's head size.
use candle_core::{DType, Device, Module, ModuleT, Tensor, D};
use candle_nn::{BatchNorm, Conv1d, Conv1dConfig, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub in_leads: usize,
    /// Output channels of each conv block.
    pub channels: Vec<usize>,
    /// Average-pooling factor after each block (1 = none).
    pub pools: Vec<usize>,
    pub kernel: usize,
    /// Width of the projector's hidden layer (the "up" of up-then-down).
    pub proj_hidden: usize,
    /// `P`: ECG vectors per record (MEIT uses 1).
    pub prefix_slots: usize,
    /// Size of each ECG vector: the backbone's head dim.
    pub out_dim: usize,
}

impl EncoderConfig {
    /// Default encoder for a backbone with head size `head_dim` (about 0.8 M parameters).
    pub fn default_for(head_dim: usize, prefix_slots: usize) -> Self {
        EncoderConfig {
            in_leads: 12,
            channels: vec![32, 64, 128, 128, 256],
            pools: vec![4, 4, 4, 4, 1],
            kernel: 7,
            proj_hidden: 1024,
            prefix_slots,
            out_dim: head_dim,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.channels.is_empty() || self.channels.len() != self.pools.len() {
            return Err(ModelError::Input(format!(
                "encoder: {} channel entries but {} pool entries",
                self.channels.len(),
                self.pools.len()
            )));
        }
        if self.kernel.is_multiple_of(2) || self.prefix_slots == 0 || self.pools.contains(&0) {
            return Err(ModelError::Input(
                "encoder: kernel must be odd, prefix_slots and pools positive".into(),
            ));
        }
        Ok(())
    }
}

struct ConvBlock {
    conv: Conv1d,
    bn: BatchNorm,
    pool: usize,
}

pub struct EcgEncoder {
    cfg: EncoderConfig,
    blocks: Vec<ConvBlock>,
    fc1: candle_nn::Linear,
    fc2: candle_nn::Linear,
}

impl EcgEncoder {
    pub fn load(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        cfg.validate()?;
        let mut blocks = Vec::new();
        let mut c_in = cfg.in_leads;
        for (i, (&c_out, &pool)) in cfg.channels.iter().zip(&cfg.pools).enumerate() {
            let conv_cfg = Conv1dConfig {
                padding: cfg.kernel / 2,
                ..Default::default()
            };
            let conv = candle_nn::conv1d_no_bias(
                c_in,
                c_out,
                cfg.kernel,
                conv_cfg,
                vb.pp(format!("blocks.{i}.conv")),
            )?;
            let bn = candle_nn::batch_norm(c_out, 1e-5, vb.pp(format!("blocks.{i}.bn")))?;
            blocks.push(ConvBlock { conv, bn, pool });
            c_in = c_out;
        }
        let fc1 = candle_nn::linear(c_in, cfg.proj_hidden, vb.pp("proj.fc1"))?;
        let fc2 = candle_nn::linear(
            cfg.proj_hidden,
            cfg.prefix_slots * cfg.out_dim,
            vb.pp("proj.fc2"),
        )?;
        Ok(EcgEncoder {
            cfg: cfg.clone(),
            blocks,
            fc1,
            fc2,
        })
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// The conv blocks: convolution, BatchNorm, pooling factor.
    pub fn blocks(&self) -> impl Iterator<Item = (&Conv1d, &BatchNorm, usize)> + '_ {
        self.blocks.iter().map(|b| (&b.conv, &b.bn, b.pool))
    }

    /// The projector's two layers (up, down).
    pub fn projector(&self) -> (&candle_nn::Linear, &candle_nn::Linear) {
        (&self.fc1, &self.fc2)
    }

    /// `x: (B, 12, T) -> (B, P, D)`, each vector L2-normalised. `train` selects BatchNorm's
    /// batch statistics (and updates its running statistics) over its running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, c, _t) = x.dims3()?;
        if c != self.cfg.in_leads {
            return Err(ModelError::Input(format!(
                "encoder expects {} leads, got {c}",
                self.cfg.in_leads
            )));
        }
        let mut h = x.clone();
        for blk in &self.blocks {
            h = blk.conv.forward(&h)?;
            h = blk.bn.forward_t(&h, train)?.relu()?;
            if blk.pool > 1 {
                h = avg_pool1d(&h, blk.pool)?;
            }
        }
        // (B, C, T') -> (B, C)
        let pooled = h.mean(D::Minus1)?;
        let z = self.fc1.forward(&pooled)?.gelu()?;
        // (B, P*D) -> (B, P, D)
        let z = self
            .fc2
            .forward(&z)?
            .reshape((b, self.cfg.prefix_slots, self.cfg.out_dim))?;
        l2_normalize(&z)
    }

    /// Inference on one preprocessed record (lead-major `12 * T` samples): `(P, D)`.
    pub fn encode(&self, data: &[f32], samples: usize, dev: &Device) -> Result<Tensor> {
        let x = Tensor::from_slice(data, (1, self.cfg.in_leads, samples), dev)?;
        Ok(self.forward_t(&x, false)?.squeeze(0)?)
    }

    /// Copies BatchNorm running statistics (updated in training mode) into `vm` so they are
    /// saved with the weights. When the encoder was built from `vm` itself, BatchNorm updates the
    /// map's own variables in place and there is nothing to copy.
    pub fn sync_running_stats(&self, vm: &mut VarMap, prefix: &str) -> Result<()> {
        for (i, blk) in self.blocks.iter().enumerate() {
            for (stat, t) in [
                ("running_mean", blk.bn.running_mean()),
                ("running_var", blk.bn.running_var()),
            ] {
                let name = format!("{prefix}blocks.{i}.bn.{stat}");
                let shared = vm
                    .data()
                    .lock()
                    .map(|d| d.get(&name).is_some_and(|v| v.as_tensor().id() == t.id()))
                    .unwrap_or(false);
                if !shared {
                    vm.set_one(name, t)?;
                }
            }
        }
        Ok(())
    }
}

/// `(B, C, T) -> (B, C, T / k)`: mean over non-overlapping windows (a tail shorter than `k` is
/// dropped, as PyTorch's AvgPool1d does).
fn avg_pool1d(x: &Tensor, k: usize) -> Result<Tensor> {
    let (b, c, t) = x.dims3()?;
    let t2 = t / k;
    Ok(x.narrow(2, 0, t2 * k)?.reshape((b, c, t2, k))?.mean(3)?)
}

/// Normalises the last dimension to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}

/// Fills every variable of `vm` deterministically from `seed` (Kaiming-uniform-like for weights,
/// zeros for biases and running means, ones for BatchNorm scales and running variances).
pub fn seeded_init(vm: &VarMap, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let data = vm
        .data()
        .lock()
        .map_err(|_| ModelError::Input("poisoned var map".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let t = var.as_tensor();
        let dims = t.dims().to_vec();
        let value = if name.ends_with("running_var") || name.ends_with("bn.weight") {
            Tensor::ones(dims, DType::F32, t.device())?
        } else if name.ends_with("bias") || name.ends_with("running_mean") {
            Tensor::zeros(dims, DType::F32, t.device())?
        } else {
            let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
            let bound = (1.0 / fan_in as f64).sqrt() as f32 * 3f32.sqrt();
            let v: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            Tensor::from_vec(v, dims, t.device())?
        };
        var.set(&value)?;
    }
    Ok(())
}

/// Number of trainable parameters (BatchNorm running statistics excluded).
pub fn parameter_count(vm: &VarMap) -> usize {
    vm.data()
        .lock()
        .map(|d| {
            d.iter()
                .filter(|(n, _)| !n.contains("running_"))
                .map(|(_, v)| v.elem_count())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(p: usize) -> Result<(VarMap, EcgEncoder)> {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let enc = EcgEncoder::load(vb, &EncoderConfig::default_for(64, p))?;
        seeded_init(&vm, 7)?;
        Ok((vm, enc))
    }

    #[test]
    fn outputs_unit_vectors_of_head_size() -> Result<()> {
        let (vm, enc) = build(4)?;
        assert!(parameter_count(&vm) < 3_000_000);
        let x = Tensor::randn(0f32, 1f32, (2, 12, 5000), &Device::Cpu)?;
        let y = enc.forward_t(&x, false)?;
        assert_eq!(y.dims(), &[2, 4, 64]);
        let norms = y.sqr()?.sum(D::Minus1)?.flatten_all()?.to_vec1::<f32>()?;
        for n in norms {
            assert!((n - 1.0).abs() < 1e-4, "norm {n}");
        }
        Ok(())
    }

    #[test]
    fn batchnorm_train_and_eval_modes_differ_and_eval_is_per_record() -> Result<()> {
        let (_vm, enc) = build(1)?;
        let x = (Tensor::randn(0f32, 1f32, (3, 12, 2000), &Device::Cpu)? * 3.0)?;
        let eval_batch = enc.forward_t(&x, false)?;
        let eval_one = enc.forward_t(&x.narrow(0, 1, 1)?, false)?;
        let diff = (eval_batch.narrow(0, 1, 1)? - &eval_one)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(
            diff < 1e-5,
            "eval mode must not depend on the batch: {diff}"
        );
        let train = enc.forward_t(&x, true)?;
        let d2 = (train - eval_batch)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d2 > 1e-4, "train mode uses batch statistics");
        Ok(())
    }

    #[test]
    fn seeded_init_is_deterministic() -> Result<()> {
        let (_, a) = build(1)?;
        let (_, b) = build(1)?;
        let x = Tensor::randn(0f32, 1f32, (1, 12, 1000), &Device::Cpu)?;
        let d = (a.forward_t(&x, false)? - b.forward_t(&x, false)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(d, 0.0);
        Ok(())
    }
}

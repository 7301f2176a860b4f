//! Trainable LoRA factors on every linear layer of the backbone (q, k, v, o, gate, up, down),
//! initialised as PEFT does (`A` Kaiming-uniform with `a = sqrt(5)`, i.e. `U(-1/sqrt(in),
//! 1/sqrt(in))`, seeded; `B = 0`), with dropout on the LoRA input during training.
//! The variables live in a `VarMap` under their PEFT names.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use crate::model::frozen::frozen_linear;
use crate::model::linear::{Linear, LoraDelta};
use crate::model::lora::{self, Adapter, AdapterConfig};
use crate::model::train_forward::{LinearAdapter, LINEAR_SLOTS};
use crate::model::weights::layer_linear_names;
use crate::model::{Llama, ModelError};

use super::error::{Result, TrainError};
use super::lora_op::LoraLinear;
use super::rng::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraSettings {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
}

impl LoraSettings {
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    pub fn adapter_config(&self) -> AdapterConfig {
        AdapterConfig {
            r: self.r,
            lora_alpha: self.alpha,
            target_modules: LINEAR_SLOTS.iter().map(|s| s.to_string()).collect(),
            lora_dropout: self.dropout as f64,
            peft_type: "LORA".into(),
            base_model_name_or_path: Some("HuggingFaceTB/SmolLM2-135M-Instruct".into()),
            use_rslora: false,
        }
    }
}

struct Factor {
    /// HF name of the base weight (`model.layers.3.self_attn.q_proj.weight`).
    base: String,
    /// `(r, in)`
    a: Var,
    /// `(out, r)`
    b: Var,
}

pub struct LoraSet {
    settings: LoraSettings,
    vm: VarMap,
    /// `[layer][slot]`
    factors: Vec<Vec<Factor>>,
}

fn peft_name(base: &str, which: &str) -> String {
    let stem = base.strip_suffix(".weight").unwrap_or(base);
    format!("base_model.model.{stem}.lora_{which}.weight")
}

impl LoraSet {
    /// Fresh factors for every linear layer of `llm`, `A` drawn from `seed`.
    pub fn new(llm: &Llama, settings: LoraSettings, seed: u64) -> Result<Self> {
        if settings.r == 0 || !(0.0..1.0).contains(&settings.dropout) {
            return Err(TrainError::Config(format!(
                "LoRA rank must be positive and dropout in [0, 1): r={}, dropout={}",
                settings.r, settings.dropout
            )));
        }
        let mut rng = SplitMix64::new(seed);
        let vm = VarMap::new();
        let mut factors = Vec::new();
        let dev = llm.device();
        for (l, blk) in llm.blocks().iter().enumerate() {
            let names = layer_linear_names(l);
            let lins = [
                &blk.q, &blk.k, &blk.v, &blk.o, &blk.gate, &blk.up, &blk.down,
            ];
            let mut row = Vec::new();
            for (name, lin) in names.into_iter().zip(lins) {
                let (out, inp) = lin.weight().dims2()?;
                let bound = 1.0 / (inp as f32).sqrt();
                let av: Vec<f32> = (0..settings.r * inp)
                    .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound)
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(av, (settings.r, inp), dev)?)?;
                let b = Var::from_tensor(&Tensor::zeros((out, settings.r), DType::F32, dev)?)?;
                if let Ok(mut data) = vm.data().lock() {
                    data.insert(peft_name(&name, "A"), a.clone());
                    data.insert(peft_name(&name, "B"), b.clone());
                }
                row.push(Factor { base: name, a, b });
            }
            factors.push(row);
        }
        Ok(LoraSet {
            settings,
            vm,
            factors,
        })
    }

    pub fn settings(&self) -> LoraSettings {
        self.settings
    }

    pub fn var_map(&self) -> &VarMap {
        &self.vm
    }

    /// `(PEFT name, variable)` in layer / slot / A-then-B order.
    pub fn params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for f in self.factors.iter().flatten() {
            out.push((peft_name(&f.base, "A"), f.a.clone()));
            out.push((peft_name(&f.base, "B"), f.b.clone()));
        }
        out
    }

    /// Current factors keyed by base weight name, as the model's LoRA merge expects them.
    pub fn deltas(&self) -> HashMap<String, LoraDelta> {
        let scale = self.settings.scale();
        self.factors
            .iter()
            .flatten()
            .map(|f| {
                (
                    f.base.clone(),
                    LoraDelta {
                        a: f.a.as_tensor().clone(),
                        b: f.b.as_tensor().clone(),
                        scale,
                    },
                )
            })
            .collect()
    }

    /// Writes `adapter_config.json` + `adapter_model.safetensors` (PEFT layout) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        Ok(lora::save(
            dir,
            &self.settings.adapter_config(),
            &self.deltas(),
        )?)
    }

    /// Overwrites the factors with the adapter saved in `dir` (same rank and layers).
    pub fn load_values(&self, dir: &Path, dev: &Device) -> Result<()> {
        let adapter = Adapter::load(dir, dev)?;
        if adapter.config.r != self.settings.r {
            return Err(TrainError::checkpoint(
                dir,
                format!(
                    "adapter rank {} but the run uses {}",
                    adapter.config.r, self.settings.r
                ),
            ));
        }
        for f in self.factors.iter().flatten() {
            let d = adapter
                .deltas
                .get(&f.base)
                .ok_or_else(|| ModelError::MissingWeight(f.base.clone()))?;
            f.a.set(&d.a)?;
            f.b.set(&d.b)?;
        }
        Ok(())
    }

    /// The adapter that the training forward runs through: dropout from `rng` when given
    /// (training), none otherwise (evaluation).
    pub fn adapter<'a>(&'a self, rng: Option<&'a mut SplitMix64>) -> LoraAdapter<'a> {
        LoraAdapter { set: self, rng }
    }
}

pub struct LoraAdapter<'a> {
    set: &'a LoraSet,
    rng: Option<&'a mut SplitMix64>,
}

impl LinearAdapter for LoraAdapter<'_> {
    fn linear(
        &mut self,
        layer: usize,
        slot: usize,
        base: &Linear,
        x: &Tensor,
    ) -> crate::model::error::Result<Tensor> {
        let f = &self.set.factors[layer][slot];
        let p = self.set.settings.dropout;
        let mask = match self.rng.as_deref_mut() {
            Some(rng) if p > 0.0 => Some(rng.dropout_mask(x.elem_count(), p)),
            _ => None,
        };
        let (a, b, scale) = (f.a.as_tensor(), f.b.as_tensor(), self.set.settings.scale());
        if x.device().is_cpu() && x.rank() == 2 {
            // one graph node (see `lora_op`)
            return Ok(LoraLinear::apply(x, base.weight(), a, b, scale, mask)?);
        }
        let y = frozen_linear(x, base.weight())?;
        let xd = match mask {
            Some(m) => (x * Tensor::from_vec(m, x.shape(), x.device())?)?,
            None => x.clone(),
        };
        // (N, in) x (in, r) -> (N, r), scaled here where it is cheap, x (r, out) -> (N, out)
        let h = (xd.matmul(&a.t()?)? * scale)?;
        Ok((y + h.matmul(&b.t()?)?)?)
    }
}

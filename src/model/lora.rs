//! LoRA adapters in the HF PEFT layout: `adapter_config.json` (`r`, `lora_alpha`,
//! `target_modules`) and `adapter_model.safetensors` with tensors named
//! `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` (`(r, in)`) and
//! `...lora_B.weight` (`(out, r)`). Serving merges them: `W' = W + (alpha / r) * B @ A`.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};
use super::linear::LoraDelta;
use super::weights::Weights;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const PEFT_PREFIX: &str = "base_model.model.";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub lora_dropout: f64,
    #[serde(default = "peft_type")]
    pub peft_type: String,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub use_rslora: bool,
}

fn peft_type() -> String {
    "LORA".into()
}

impl AdapterConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }
}

/// LoRA factors keyed by the HF name of the base weight they modify
/// (`model.layers.3.self_attn.q_proj.weight`).
pub struct Adapter {
    pub config: AdapterConfig,
    pub deltas: HashMap<String, LoraDelta>,
}

impl Adapter {
    pub fn load(dir: &Path, device: &Device) -> Result<Adapter> {
        let bad = |msg: String| ModelError::Adapter {
            path: dir.to_path_buf(),
            msg,
        };
        let cfg_path = dir.join(CONFIG_FILE);
        let raw = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let config: AdapterConfig =
            serde_json::from_str(&raw).map_err(|e| bad(format!("{CONFIG_FILE}: {e}")))?;
        if config.r == 0 {
            return Err(bad(format!("{CONFIG_FILE}: r must be positive, got 0")));
        }
        let w_path = dir.join(WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&w_path, device)
            .map_err(|e| bad(format!("{WEIGHTS_FILE}: {e}")))?;
        let mut a_map = HashMap::new();
        let mut b_map = HashMap::new();
        for (name, t) in tensors {
            let Some(rest) = name.strip_prefix(PEFT_PREFIX) else {
                continue;
            };
            let t = t.to_dtype(DType::F32)?;
            if let Some(base) = rest.strip_suffix(".lora_A.weight") {
                a_map.insert(format!("{base}.weight"), t);
            } else if let Some(base) = rest.strip_suffix(".lora_B.weight") {
                b_map.insert(format!("{base}.weight"), t);
            }
        }
        let scale = config.scale();
        let mut deltas = HashMap::new();
        for (name, a) in a_map {
            let b = b_map
                .remove(&name)
                .ok_or_else(|| bad(format!("`{name}` has lora_A but no lora_B")))?;
            let (ra, _) = a.dims2()?;
            let (_, rb) = b.dims2()?;
            if ra != config.r || rb != config.r {
                return Err(bad(format!(
                    "`{name}`: rank {ra}/{rb} in the weights, r = {} in the config",
                    config.r
                )));
            }
            deltas.insert(name, LoraDelta { a, b, scale });
        }
        if let Some(name) = b_map.keys().next() {
            return Err(bad(format!("`{name}` has lora_B but no lora_A")));
        }
        Ok(Adapter { config, deltas })
    }

    /// Merges every delta into `weights`: `W += scale * B @ A`.
    pub fn merge_into(&self, weights: &mut Weights) -> Result<()> {
        for (name, d) in &self.deltas {
            let w = weights
                .get_any(name)
                .ok_or_else(|| ModelError::MissingWeight(name.clone()))?;
            let merged = merged_weight(w, d)?;
            weights.replace(name, merged)?;
        }
        Ok(())
    }
}

/// `W + scale * B @ A`, checked for shape.
pub fn merged_weight(w: &Tensor, d: &LoraDelta) -> Result<Tensor> {
    let delta = (d.b.matmul(&d.a)? * d.scale)?;
    if delta.dims() != w.dims() {
        return Err(ModelError::WeightShape {
            name: "lora B@A".into(),
            got: delta.dims().to_vec(),
            expected: w.dims().to_vec(),
        });
    }
    Ok((w + delta)?)
}

/// Writes an adapter in the PEFT layout (used by the trainer and by tests).
pub fn save(dir: &Path, config: &AdapterConfig, deltas: &HashMap<String, LoraDelta>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let cfg_path = dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(config)
        .map_err(|e| ModelError::format(&cfg_path, e.to_string()))?;
    std::fs::write(&cfg_path, json).map_err(|e| ModelError::io(&cfg_path, e))?;
    let mut out: HashMap<String, Tensor> = HashMap::new();
    for (name, d) in deltas {
        let base = name.strip_suffix(".weight").unwrap_or(name);
        out.insert(format!("{PEFT_PREFIX}{base}.lora_A.weight"), d.a.clone());
        out.insert(format!("{PEFT_PREFIX}{base}.lora_B.weight"), d.b.clone());
    }
    let w_path = dir.join(WEIGHTS_FILE);
    candle_core::safetensors::save(&out, &w_path)
        .map_err(|e| ModelError::format(&w_path, e.to_string()))
}

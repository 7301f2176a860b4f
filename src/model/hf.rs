//! Loading an HF-layout model directory (`config.json`, `model.safetensors` or sharded
//! `model-*.safetensors`, `tokenizer.json`), so larger Llama-family backbones are served the same
//! way as the default GGUF.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device};
use tokenizers::Tokenizer;

use super::config::LlamaConfig;
use super::error::{ModelError, Result};
use super::weights::Weights;

pub struct HfModel {
    pub config: LlamaConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
}

pub fn load(dir: &Path, device: &Device) -> Result<HfModel> {
    let cfg_path = dir.join("config.json");
    let raw = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
    let config: LlamaConfig =
        serde_json::from_str(&raw).map_err(|e| ModelError::format(&cfg_path, e.to_string()))?;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ModelError::format(
            dir,
            "no .safetensors file in the directory",
        ));
    }
    let mut tensors = HashMap::new();
    for f in &files {
        let ts = candle_core::safetensors::load(f, device)
            .map_err(|e| ModelError::format(f, e.to_string()))?;
        for (name, t) in ts {
            tensors.insert(name, t.to_dtype(DType::F32)?);
        }
    }
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tok_path)
        .map_err(|e| ModelError::format(&tok_path, e.to_string()))?;
    Ok(HfModel {
        config,
        weights: Weights::new(tensors),
        tokenizer,
    })
}

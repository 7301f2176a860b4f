//! Random tiny backbones for tests and smoke runs (no file needed).
use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

use super::config::LlamaConfig;
use super::error::Result;
use super::weights::{layer_linear_names, Weights};

/// HF-named weights of a Llama with config `cfg`, drawn uniformly with a fixed seed (norm
/// weights around 1). Returns the weights and the config.
pub fn tiny_backbone(cfg: &LlamaConfig, seed: u64) -> Result<(Weights, LlamaConfig)> {
    let dev = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut t = |shape: &[usize], s: f32| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-s..s)).collect();
        Ok(Tensor::from_vec(v, shape, &dev)?)
    };
    let (e, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kvd = cfg.num_key_value_heads * cfg.head_dim();
    let mut w = HashMap::new();
    w.insert("model.embed_tokens.weight".to_string(), t(&[v, e], 1.0)?);
    w.insert("model.norm.weight".to_string(), (t(&[e], 0.2)? + 1.0)?);
    for l in 0..cfg.num_hidden_layers {
        let shapes = [[e, e], [kvd, e], [kvd, e], [e, e], [i, e], [i, e], [e, i]];
        for (n, s) in layer_linear_names(l).into_iter().zip(shapes) {
            let scale = 1.0 / (s[1] as f32).sqrt() * 1.7;
            w.insert(n, t(&s, scale)?);
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            w.insert(
                format!("model.layers.{l}.{norm}.weight"),
                (t(&[e], 0.2)? + 1.0)?,
            );
        }
    }
    Ok((Weights::new(w), cfg.clone()))
}

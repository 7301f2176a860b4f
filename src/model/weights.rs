//! A name -> tensor store in HF naming (`model.layers.{i}.self_attn.q_proj.weight`), whatever the
//! file format the weights came from. LoRA adapters in the PEFT layout address these names.
use std::collections::HashMap;

use candle_core::Tensor;

use super::error::{ModelError, Result};

#[derive(Debug, Default, Clone)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        Weights { tensors }
    }

    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// The tensor `name`, checked against `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingWeight(name.to_string()))?;
        if t.dims() != shape {
            return Err(ModelError::WeightShape {
                name: name.to_string(),
                got: t.dims().to_vec(),
                expected: shape.to_vec(),
            });
        }
        Ok(t.clone())
    }

    pub fn get_any(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    pub fn replace(&mut self, name: &str, t: Tensor) -> Result<()> {
        match self.tensors.get_mut(name) {
            Some(slot) => {
                *slot = t;
                Ok(())
            }
            None => Err(ModelError::MissingWeight(name.to_string())),
        }
    }
}

/// HF names of the linear layers of block `i`, the ones LoRA can target.
pub fn layer_linear_names(i: usize) -> [String; 7] {
    [
        format!("model.layers.{i}.self_attn.q_proj.weight"),
        format!("model.layers.{i}.self_attn.k_proj.weight"),
        format!("model.layers.{i}.self_attn.v_proj.weight"),
        format!("model.layers.{i}.self_attn.o_proj.weight"),
        format!("model.layers.{i}.mlp.gate_proj.weight"),
        format!("model.layers.{i}.mlp.up_proj.weight"),
        format!("model.layers.{i}.mlp.down_proj.weight"),
    ]
}

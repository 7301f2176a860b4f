//! A linear layer `y = x W^T`, optionally with an unmerged LoRA delta `scale * (x A^T) B^T`.
use candle_core::{Module, Tensor};

use super::error::Result;

/// LoRA factors of one linear layer: `A: (r, in)`, `B: (out, r)`, `scale = alpha / r`.
#[derive(Debug, Clone)]
pub struct LoraDelta {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

#[derive(Debug, Clone)]
pub struct Linear {
    /// `(out, in)`
    w: Tensor,
    lora: Option<LoraDelta>,
}

impl Linear {
    pub fn new(w: Tensor) -> Self {
        Linear { w, lora: None }
    }

    pub fn with_lora(w: Tensor, lora: LoraDelta) -> Self {
        Linear {
            w,
            lora: Some(lora),
        }
    }

    pub fn weight(&self) -> &Tensor {
        &self.w
    }

    pub fn lora(&self) -> Option<&LoraDelta> {
        self.lora.as_ref()
    }

    /// `x: (.., in) -> (.., out)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match x.rank() {
            2 => x.matmul(&self.w.t()?)?,
            _ => candle_nn::Linear::new(self.w.clone(), None).forward(x)?,
        };
        match &self.lora {
            None => Ok(y),
            Some(l) => {
                let a = candle_nn::Linear::new(l.a.clone(), None);
                let b = candle_nn::Linear::new(l.b.clone(), None);
                let d = b.forward(&a.forward(x)?)?;
                Ok((y + (d * l.scale)?)?)
            }
        }
    }
}

//! A linear layer `y = x W^T`, optionally with an unmerged LoRA delta `scale * (x A^T) B^T`, and
//! optionally with a quantized copy of `W` used for small steps (decode), where reading the weights
//! dominates and f32 hits the memory-bandwidth wall.
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

use super::error::Result;
use super::qmatmul::Q8Matrix;

/// LoRA factors of one linear layer: `A: (r, in)`, `B: (out, r)`, `scale = alpha / r`.
#[derive(Debug, Clone)]
pub struct LoraDelta {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

/// A quantized copy of the weight, used when a step has at most `max_rows` rows: our int8
/// kernel for Q8_0 (it batches), candle's matrix-vector kernels for other types.
#[derive(Debug, Clone)]
enum QKernel {
    Int8(Box<Q8Matrix>),
    Candle(QMatMul),
}

#[derive(Debug, Clone)]
struct Quantized {
    mm: QKernel,
    max_rows: usize,
}

#[derive(Debug, Clone)]
pub struct Linear {
    /// `(out, in)`
    w: Tensor,
    lora: Option<LoraDelta>,
    quant: Option<Quantized>,
}

impl Linear {
    pub fn new(w: Tensor) -> Self {
        Linear {
            w,
            lora: None,
            quant: None,
        }
    }

    pub fn with_lora(w: Tensor, lora: LoraDelta) -> Self {
        Linear {
            w,
            lora: Some(lora),
            quant: None,
        }
    }

    pub fn weight(&self) -> &Tensor {
        &self.w
    }

    pub fn lora(&self) -> Option<&LoraDelta> {
        self.lora.as_ref()
    }

    /// The int8 copy when it serves every step (Q8_0 without a row limit, no LoRA delta).
    pub fn int8_for_all_rows(&self) -> Option<&Q8Matrix> {
        match &self.quant {
            Some(Quantized {
                mm: QKernel::Int8(m),
                max_rows: usize::MAX,
            }) if self.lora.is_none() => Some(m),
            _ => None,
        }
    }

    /// Adds a quantized copy of the weight (e.g. Q8_0), used for inputs of at most `max_rows`
    /// rows. Not for layers with an unmerged LoRA delta.
    pub fn quantize(&mut self, dtype: GgmlDType, max_rows: usize) -> Result<()> {
        let (n, k) = self.w.dims2()?;
        let mm = match dtype {
            GgmlDType::Q8_0 if Q8Matrix::supports(n, k) => {
                QKernel::Int8(Box::new(Q8Matrix::from_tensor(&self.w)?))
            }
            _ => QKernel::Candle(QMatMul::from_qtensor(QTensor::quantize(&self.w, dtype)?)?),
        };
        self.quant = Some(Quantized { mm, max_rows });
        Ok(())
    }

    /// `x: (.., in) -> (.., out)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(q) = &self.quant {
            if x.rank() == 2 && x.dim(0)? <= q.max_rows && self.lora.is_none() {
                return match &q.mm {
                    QKernel::Int8(m) => m.forward(x),
                    QKernel::Candle(m) => Ok(m.forward(&x.contiguous()?)?),
                };
            }
        }
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

//! One sequence's key/value cache: per layer `(Hkv, capacity, D)` buffers written in place.
//! The first `prefix` slots hold the ECG prefix keys/values (no RoPE); text follows.
use candle_core::{DType, Device, Tensor};

use super::config::LlamaConfig;
use super::error::{ModelError, Result};

#[derive(Debug)]
pub struct SeqCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    prefix: usize,
    capacity: usize,
    growable: bool,
}

impl SeqCache {
    /// A cache with room for `capacity` slots (prefix included). A `growable` cache reallocates
    /// (doubling) when full; a fixed one returns `CacheFull`.
    pub fn new(cfg: &LlamaConfig, capacity: usize, growable: bool, dev: &Device) -> Result<Self> {
        let (hkv, d) = (cfg.num_key_value_heads, cfg.head_dim());
        let capacity = capacity.max(1);
        let mut k = Vec::with_capacity(cfg.num_hidden_layers);
        let mut v = Vec::with_capacity(cfg.num_hidden_layers);
        for _ in 0..cfg.num_hidden_layers {
            k.push(Tensor::zeros((hkv, capacity, d), DType::F32, dev)?);
            v.push(Tensor::zeros((hkv, capacity, d), DType::F32, dev)?);
        }
        Ok(SeqCache {
            k,
            v,
            len: 0,
            prefix: 0,
            capacity,
            growable,
        })
    }

    /// Slots filled so far (prefix + text).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// ECG prefix slots at the front.
    pub fn prefix(&self) -> usize {
        self.prefix
    }

    /// Text tokens cached so far; the next text token's RoPE position.
    pub fn text_len(&self) -> usize {
        self.len - self.prefix
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes sure `n` more slots fit.
    pub fn reserve(&mut self, n: usize) -> Result<()> {
        let needed = self.len + n;
        if needed <= self.capacity {
            return Ok(());
        }
        if !self.growable {
            return Err(ModelError::CacheFull {
                needed,
                capacity: self.capacity,
            });
        }
        let new_cap = needed.max(self.capacity * 2);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            let (hkv, _, d) = buf.dims3()?;
            let bigger = Tensor::zeros((hkv, new_cap, d), buf.dtype(), buf.device())?;
            bigger.slice_set(&buf.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
            *buf = bigger;
        }
        self.capacity = new_cap;
        Ok(())
    }

    /// Writes `k, v: (Hkv, n, D)` of `layer` at the current end. Call `advance(n)` once all layers
    /// have written.
    pub fn write(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<()> {
        self.k[layer].slice_set(k, 1, self.len)?;
        self.v[layer].slice_set(v, 1, self.len)?;
        Ok(())
    }

    /// Keys and values of `layer` over the first `upto` slots: `(Hkv, upto, D)` each.
    pub fn view(&self, layer: usize, upto: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.k[layer].narrow(1, 0, upto)?,
            self.v[layer].narrow(1, 0, upto)?,
        ))
    }

    /// The whole key and value buffers of `layer`, `(Hkv, capacity, D)` each.
    pub fn buffers(&self, layer: usize) -> (&Tensor, &Tensor) {
        (&self.k[layer], &self.v[layer])
    }

    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Marks the slots written so far as the ECG prefix (call once, before any text).
    pub fn mark_prefix(&mut self) {
        self.prefix = self.len;
    }

    /// Bytes held by the buffers.
    pub fn bytes(&self) -> usize {
        self.k
            .iter()
            .chain(self.v.iter())
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
}

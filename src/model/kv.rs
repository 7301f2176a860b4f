//! One sequence's key/value cache: per layer `(Hkv, capacity, D)` buffers written in place.
//! The first `prefix` slots hold the ECG prefix keys/values (no RoPE); text follows.
use candle_core::{Device, Tensor};

use super::config::LlamaConfig;
use super::error::{ModelError, Result};

#[derive(Debug)]
pub struct SeqCache {
    /// Per layer `(Hkv, capacity, D)` row-major.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    hkv: usize,
    d: usize,
    len: usize,
    prefix: usize,
    capacity: usize,
    growable: bool,
    device: Device,
}

impl SeqCache {
    /// A cache with room for `capacity` slots (prefix included). A `growable` cache reallocates
    /// (doubling) when full; a fixed one returns `CacheFull`.
    pub fn new(cfg: &LlamaConfig, capacity: usize, growable: bool, dev: &Device) -> Result<Self> {
        let (hkv, d) = (cfg.num_key_value_heads, cfg.head_dim());
        let capacity = capacity.max(1);
        let layer = || vec![0f32; hkv * capacity * d];
        Ok(SeqCache {
            k: (0..cfg.num_hidden_layers).map(|_| layer()).collect(),
            v: (0..cfg.num_hidden_layers).map(|_| layer()).collect(),
            hkv,
            d,
            len: 0,
            prefix: 0,
            capacity,
            growable,
            device: dev.clone(),
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
        let (hkv, d, old, len) = (self.hkv, self.d, self.capacity, self.len);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            let mut bigger = vec![0f32; hkv * new_cap * d];
            for h in 0..hkv {
                bigger[h * new_cap * d..][..len * d]
                    .copy_from_slice(&buf[h * old * d..][..len * d]);
            }
            *buf = bigger;
        }
        self.capacity = new_cap;
        Ok(())
    }

    /// Writes `k, v: (Hkv, n, D)` of `layer` at the current end. Call `advance(n)` once all layers
    /// have written.
    pub fn write(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<()> {
        let (hkv, n, d) = k.dims3()?;
        if (hkv, d) != (self.hkv, self.d) || v.dims3()? != (hkv, n, d) {
            return Err(ModelError::Input(format!(
                "cache write of shape {:?} into a cache of {} heads x {} dims",
                k.dims(),
                self.hkv,
                self.d
            )));
        }
        if self.len + n > self.capacity {
            return Err(ModelError::CacheFull {
                needed: self.len + n,
                capacity: self.capacity,
            });
        }
        let (kd, vd) = (
            k.flatten_all()?.to_vec1::<f32>()?,
            v.flatten_all()?.to_vec1::<f32>()?,
        );
        let cap = self.capacity;
        for h in 0..hkv {
            let dst = (h * cap + self.len) * d;
            self.k[layer][dst..dst + n * d].copy_from_slice(&kd[h * n * d..(h + 1) * n * d]);
            self.v[layer][dst..dst + n * d].copy_from_slice(&vd[h * n * d..(h + 1) * n * d]);
        }
        Ok(())
    }

    /// Keys and values of `layer` over the first `upto` slots: `(Hkv, upto, D)` each (copies).
    pub fn view(&self, layer: usize, upto: usize) -> Result<(Tensor, Tensor)> {
        let (hkv, d, cap) = (self.hkv, self.d, self.capacity);
        let take = |buf: &[f32]| -> Result<Tensor> {
            let mut out = Vec::with_capacity(hkv * upto * d);
            for h in 0..hkv {
                out.extend_from_slice(&buf[h * cap * d..][..upto * d]);
            }
            Ok(Tensor::from_vec(out, (hkv, upto, d), &self.device)?)
        };
        Ok((take(&self.k[layer])?, take(&self.v[layer])?))
    }

    /// The key and value buffers of `layer`, `(Hkv, capacity, D)` row-major, for in-place
    /// writes and fused attention.
    pub fn layer_mut(&mut self, layer: usize) -> (&mut [f32], &mut [f32]) {
        (&mut self.k[layer], &mut self.v[layer])
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
            .map(|b| b.len() * std::mem::size_of::<f32>())
            .sum()
    }
}

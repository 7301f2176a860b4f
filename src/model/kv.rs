//! One sequence's key/value cache: per layer `(Hkv, capacity, D)` buffers written in place.
//! The first `prefix` slots hold the ECG prefix keys/values (no RoPE); text follows.
//!
//! Elements are f32 (the exact path) or f16 ([`KvDtype`]): with quantized weights a batched
//! decode step reads more cache than weights at a few hundred tokens of context, and f16 halves
//! that (as llama.cpp's default cache type does).
use candle_core::{Device, Tensor};
use half::f16;

use super::config::LlamaConfig;
use super::error::{ModelError, Result};

/// Element type of the cache buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDtype {
    F32,
    F16,
}

/// A cache element: f32 or f16, converted to and from f32 at the edges.
pub trait KvElem: Copy + Send + Sync + 'static {
    const ZERO: Self;
    fn from_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;
}

impl KvElem for f32 {
    const ZERO: Self = 0.0;
    fn from_f32(x: f32) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl KvElem for f16 {
    const ZERO: Self = f16::ZERO;
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

/// One layer's keys and values, `(Hkv, capacity, D)` each.
#[derive(Debug)]
enum LayerBuf {
    F32(Vec<f32>, Vec<f32>),
    F16(Vec<f16>, Vec<f16>),
}

/// A copy of `(Hkv, old, D)` with room for `cap` slots per head, the first `len` slots kept.
fn grow<T: KvElem>(b: &[T], hkv: usize, d: usize, old: usize, cap: usize, len: usize) -> Vec<T> {
    let mut bigger = vec![T::ZERO; hkv * cap * d];
    for h in 0..hkv {
        bigger[h * cap * d..][..len * d].copy_from_slice(&b[h * old * d..][..len * d]);
    }
    bigger
}

fn to_f32<T: KvElem>(b: &[T], out: &mut Vec<f32>) {
    out.extend(b.iter().map(|v| v.to_f32()));
}

impl LayerBuf {
    fn new(dtype: KvDtype, len: usize) -> Self {
        match dtype {
            KvDtype::F32 => LayerBuf::F32(vec![0.0; len], vec![0.0; len]),
            KvDtype::F16 => LayerBuf::F16(vec![f16::ZERO; len], vec![f16::ZERO; len]),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            LayerBuf::F32(k, v) => (k.len() + v.len()) * 4,
            LayerBuf::F16(k, v) => (k.len() + v.len()) * 2,
        }
    }

    /// Writes keys `ks` and values `vs` at `at`, converting.
    fn put(&mut self, at: usize, ks: &[f32], vs: &[f32]) {
        match self {
            LayerBuf::F32(k, v) => {
                k[at..at + ks.len()].copy_from_slice(ks);
                v[at..at + vs.len()].copy_from_slice(vs);
            }
            LayerBuf::F16(k, v) => {
                put(&mut k[at..at + ks.len()], ks);
                put(&mut v[at..at + vs.len()], vs);
            }
        }
    }

    /// Appends `len` keys and values from `at` to `ko`, `vo` as f32.
    fn get(&self, at: usize, len: usize, ko: &mut Vec<f32>, vo: &mut Vec<f32>) {
        match self {
            LayerBuf::F32(k, v) => {
                to_f32(&k[at..at + len], ko);
                to_f32(&v[at..at + len], vo);
            }
            LayerBuf::F16(k, v) => {
                to_f32(&k[at..at + len], ko);
                to_f32(&v[at..at + len], vo);
            }
        }
    }

    fn grown(&self, hkv: usize, d: usize, old: usize, cap: usize, len: usize) -> Self {
        match self {
            LayerBuf::F32(k, v) => LayerBuf::F32(
                grow(k, hkv, d, old, cap, len),
                grow(v, hkv, d, old, cap, len),
            ),
            LayerBuf::F16(k, v) => LayerBuf::F16(
                grow(k, hkv, d, old, cap, len),
                grow(v, hkv, d, old, cap, len),
            ),
        }
    }
}

/// Converts `src` into `dst` (same length).
pub fn put<T: KvElem>(dst: &mut [T], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = T::from_f32(s);
    }
}

/// One layer's key and value buffers, `(Hkv, capacity, D)` row-major, in their element type.
pub enum LayerMut<'a> {
    F32(&'a mut [f32], &'a mut [f32]),
    F16(&'a mut [f16], &'a mut [f16]),
}

#[derive(Debug)]
pub struct SeqCache {
    /// Per layer, keys and values `(Hkv, capacity, D)` row-major.
    layers: Vec<LayerBuf>,
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
    pub fn new(
        cfg: &LlamaConfig,
        capacity: usize,
        growable: bool,
        dtype: KvDtype,
        dev: &Device,
    ) -> Result<Self> {
        let (hkv, d) = (cfg.num_key_value_heads, cfg.head_dim());
        let capacity = capacity.max(1);
        Ok(SeqCache {
            layers: (0..cfg.num_hidden_layers)
                .map(|_| LayerBuf::new(dtype, hkv * capacity * d))
                .collect(),
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
        for buf in self.layers.iter_mut() {
            *buf = buf.grown(hkv, d, old, new_cap, len);
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
        let (kd, vd) = (
            k.flatten_all()?.to_vec1::<f32>()?,
            v.flatten_all()?.to_vec1::<f32>()?,
        );
        self.write_slices(layer, n, &kd, &vd)
    }

    /// As [`Self::write`], from `(Hkv, n, D)` row-major slices.
    pub fn write_slices(&mut self, layer: usize, n: usize, k: &[f32], v: &[f32]) -> Result<()> {
        let (hkv, d, cap) = (self.hkv, self.d, self.capacity);
        if k.len() != hkv * n * d || v.len() != k.len() {
            return Err(ModelError::Input(format!(
                "cache write of {} keys and {} values for {n} slots of {hkv} heads x {d} dims",
                k.len(),
                v.len()
            )));
        }
        if self.len + n > cap {
            return Err(ModelError::CacheFull {
                needed: self.len + n,
                capacity: cap,
            });
        }
        for h in 0..hkv {
            let dst = (h * cap + self.len) * d;
            let src = h * n * d..(h + 1) * n * d;
            self.layers[layer].put(dst, &k[src.clone()], &v[src]);
        }
        Ok(())
    }

    /// Keys and values of `layer` over the first `upto` slots: `(Hkv, upto, D)` each (f32
    /// copies).
    pub fn view(&self, layer: usize, upto: usize) -> Result<(Tensor, Tensor)> {
        let (hkv, d, cap) = (self.hkv, self.d, self.capacity);
        let mut ko = Vec::with_capacity(hkv * upto * d);
        let mut vo = Vec::with_capacity(hkv * upto * d);
        for h in 0..hkv {
            self.layers[layer].get(h * cap * d, upto * d, &mut ko, &mut vo);
        }
        Ok((
            Tensor::from_vec(ko, (hkv, upto, d), &self.device)?,
            Tensor::from_vec(vo, (hkv, upto, d), &self.device)?,
        ))
    }

    /// The key and value buffers of `layer`, `(Hkv, capacity, D)` row-major, for in-place
    /// writes and fused attention.
    pub fn layer_mut(&mut self, layer: usize) -> LayerMut<'_> {
        match &mut self.layers[layer] {
            LayerBuf::F32(k, v) => LayerMut::F32(k, v),
            LayerBuf::F16(k, v) => LayerMut::F16(k, v),
        }
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
        self.layers.iter().map(LayerBuf::bytes).sum()
    }
}

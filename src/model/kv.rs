//! One sequence's key/value cache: per layer `(Hkv, capacity, D)` buffers written in place.
//! The first `prefix` slots hold the ECG prefix keys/values (no RoPE); text follows.
//!
//! Elements are f32 (the exact path), f16, or int8 with one f32 scale per key row and per value
//! row ([`KvDtype`]): with quantized weights a batched decode step reads more cache than weights
//! at a few hundred tokens of context, and f16 halves that (as llama.cpp's default cache type
//! does), int8 halves it again (llama.cpp's `q8_0` cache type, with rows of 64 for blocks of
//! 32). The buffers are on transparent huge pages (see `huge`), faulted in as the cache fills.
use candle_core::{Device, Tensor};
use half::f16;

use super::config::LlamaConfig;
use super::error::{ModelError, Result};
use super::huge::{HugeBuf, ZeroBits};
use super::qmatmul::{quantize_block, quantize_blocks, BLOCK};
use super::vecops::prefetch_l2;

/// Keys per block of the key layout (one AVX-512 register of f32 lanes).
pub const KEY_BLOCK: usize = 16;

/// Where dimension `i` of key `s` of kv head `h` lives in a key buffer of `cap` slots per head
/// (a multiple of [`KEY_BLOCK`]) and `d` dimensions: each head's keys in blocks of 16, each
/// block stored dimension-major (`[h][s / 16][i][s % 16]`), so one load holds one dimension of
/// 16 keys and attention scores 16 keys with plain multiply-adds, no horizontal sums. Values
/// stay row-major, `(Hkv, cap, D)`.
#[inline]
pub fn key_at(cap: usize, d: usize, h: usize, s: usize, i: usize) -> usize {
    (h * cap + s / KEY_BLOCK * KEY_BLOCK) * d + i * KEY_BLOCK + s % KEY_BLOCK
}

/// Where dimension `i` of key `s` of kv head `h` lives in an int8 key buffer: blocks of 16 keys
/// as for [`key_at`], each block stored in pairs of dimensions (`[h][s / 16][i / 2][s % 16][i %
/// 2]`), so 32 bytes widen to the 16 keys' two dimensions as 16-bit pairs, one operand of a
/// `vpdpwssd` that advances 16 scores by two dimensions. `d` even.
#[inline]
pub fn key_at_i8(cap: usize, d: usize, h: usize, s: usize, i: usize) -> usize {
    (h * cap + s / KEY_BLOCK * KEY_BLOCK) * d + i / 2 * 2 * KEY_BLOCK + s % KEY_BLOCK * 2 + i % 2
}

/// Where dimension `c` of value `s` of kv head `h` lives in a value buffer of `cap` slots per
/// head: rows of `d`, `(Hkv, cap, D)`.
#[inline]
pub fn value_at(cap: usize, d: usize, h: usize, s: usize, c: usize) -> usize {
    (h * cap + s) * d + c
}

/// [`value_at`] for int8 values: rows in pairs of slots, interleaved (`[h][s / 2][c][s % 2]`),
/// so 32 bytes widen to 16 dimensions of two value rows as 16-bit pairs, one operand of a
/// `vpdpwssd` that adds two weighted rows to 16 sums. A pair of rows spans the bytes of the
/// two rows row-major (`cap` even).
#[inline]
pub fn value_at_i8(cap: usize, d: usize, h: usize, s: usize, c: usize) -> usize {
    (h * cap + s / 2 * 2) * d + c * 2 + s % 2
}

/// Writes key row `src` (`d` values) as key `s` of head `h`, converting.
pub fn put_key<T: KvElem>(keys: &mut [T], cap: usize, d: usize, h: usize, s: usize, src: &[f32]) {
    for (i, &x) in src[..d].iter().enumerate() {
        keys[T::key_index(cap, d, h, s, i)] = T::from_f32(x);
    }
}

/// Where an element goes: `(cap, d, head, slot, dimension)` to its index.
pub type Layout = fn(usize, usize, usize, usize, usize) -> usize;

/// Row-major rows `(Hkv, cap, D)` in the layout `at` (`cap` a multiple of [`KEY_BLOCK`]).
pub fn rows_to_layout<T: Copy>(rows: &[T], hkv: usize, cap: usize, d: usize, at: Layout) -> Vec<T> {
    assert!(cap.is_multiple_of(KEY_BLOCK) && rows.len() == hkv * cap * d);
    let mut out = rows.to_vec();
    for h in 0..hkv {
        for s in 0..cap {
            for i in 0..d {
                out[at(cap, d, h, s, i)] = rows[(h * cap + s) * d + i];
            }
        }
    }
    out
}

/// Row-major keys `(Hkv, cap, D)` in the block layout of [`key_at`].
pub fn keys_to_blocks<T: Copy>(rows: &[T], hkv: usize, cap: usize, d: usize) -> Vec<T> {
    rows_to_layout(rows, hkv, cap, d, key_at)
}

/// Element type of the cache buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDtype {
    F32,
    F16,
    /// Int8, each key row and value row (`D` values of one head and slot) quantized to
    /// `[-127, 127]` with its own scale `max|x| / 127`.
    I8,
}

impl KvDtype {
    /// `f32`, `f16` or `int8`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(KvDtype::F32),
            "f16" => Some(KvDtype::F16),
            "int8" => Some(KvDtype::I8),
            _ => None,
        }
    }

    /// A cache choice as settings and flags spell it: `auto` (`None`: the precision's default)
    /// or an element type; the error names the accepted values and the one received.
    pub fn parse_choice(s: &str) -> std::result::Result<Option<Self>, String> {
        match s {
            "auto" => Ok(None),
            other => Self::parse(other)
                .map(Some)
                .ok_or_else(|| format!("must be auto, f32, f16 or int8, got {other:?}")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::I8 => "int8",
        }
    }
}

/// A cache element: f32 or f16, converted to and from f32 at the edges.
pub trait KvElem: Copy + Send + Sync + 'static {
    const ZERO: Self;
    fn from_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;

    /// Where dimension `i` of key `s` of head `h` lives in this type's key buffer.
    #[inline]
    fn key_index(cap: usize, d: usize, h: usize, s: usize, i: usize) -> usize {
        key_at(cap, d, h, s, i)
    }

    /// Where dimension `c` of value `s` of head `h` lives in this type's value buffer.
    #[inline]
    fn value_index(cap: usize, d: usize, h: usize, s: usize, c: usize) -> usize {
        value_at(cap, d, h, s, c)
    }
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

/// Int8 as a raw element: the values without their row scales (see [`KvDtype::I8`]).
impl KvElem for i8 {
    const ZERO: Self = 0;
    fn from_f32(x: f32) -> Self {
        x.round() as i8
    }
    fn to_f32(self) -> f32 {
        self as f32
    }

    #[inline]
    fn key_index(cap: usize, d: usize, h: usize, s: usize, i: usize) -> usize {
        key_at_i8(cap, d, h, s, i)
    }

    #[inline]
    fn value_index(cap: usize, d: usize, h: usize, s: usize, c: usize) -> usize {
        value_at_i8(cap, d, h, s, c)
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

/// One layer's keys (the block layout of [`key_at`]) and values (`(Hkv, capacity, D)`).
#[derive(Debug)]
enum LayerBuf {
    F32(HugeBuf<f32>, HugeBuf<f32>),
    F16(HugeBuf<f16>, HugeBuf<f16>),
    /// Keys, values, and their row scales `(Hkv, capacity)`.
    I8 {
        k: HugeBuf<i8>,
        v: HugeBuf<i8>,
        ks: HugeBuf<f32>,
        vs: HugeBuf<f32>,
    },
}

/// Longest int8 cache row (head dimension) supported.
const MAX_I8_ROW: usize = 256;

/// Quantizes head `h`'s key rows `keys` and value rows `vals` (rows of `d`) into the int8
/// buffers from slot `at`, each row with its scale.
#[allow(clippy::too_many_arguments)]
fn put_rows_i8(
    buf: &mut Int8Mut<'_>,
    cap: usize,
    d: usize,
    h: usize,
    at: usize,
    keys: &[f32],
    vals: &[f32],
) {
    assert!(
        d <= MAX_I8_ROW,
        "int8 cache rows of {d} values (at most {MAX_I8_ROW})"
    );
    let mut q = [0i8; MAX_I8_ROW];
    let q = &mut q[..d];
    for (t, row) in keys.chunks_exact(d).enumerate() {
        let s = at + t;
        buf.ks[h * cap + s] = quantize_row(row, q);
        for (i, &x) in q.iter().enumerate() {
            buf.k[key_at_i8(cap, d, h, s, i)] = x;
        }
    }
    for (t, row) in vals.chunks_exact(d).enumerate() {
        let s = at + t;
        buf.vs[h * cap + s] = quantize_row(row, q);
        for (c, &x) in q.iter().enumerate() {
            buf.v[value_at_i8(cap, d, h, s, c)] = x;
        }
    }
}

/// One cache row quantized with one scale: rows of 64 through the matmul input's vector
/// quantizer (the same values as [`quantize_block`]; 30 ns a row against 75 for the scalar
/// loop, whose running maximum is one chain of dependent instructions), others through
/// [`quantize_block`].
fn quantize_row(row: &[f32], q: &mut [i8]) -> f32 {
    if row.len() == BLOCK {
        let mut scale = [0f32];
        quantize_blocks(row, q, &mut scale);
        return scale[0];
    }
    quantize_block(row, q)
}

/// A copy of a buffer of `old` slots per head with room for `cap`, the first `len` slots
/// kept. `rows` is the slots' span in elements from the head's start: whole blocks of 16 keys
/// for keys, rows for values (either way the head's first `rows` elements).
fn grow<T: ZeroBits>(
    b: &[T],
    hkv: usize,
    d: usize,
    old: usize,
    cap: usize,
    rows: usize,
) -> HugeBuf<T> {
    let mut bigger = HugeBuf::zeroed(hkv * cap * d);
    for h in 0..hkv {
        bigger[h * cap * d..][..rows].copy_from_slice(&b[h * old * d..][..rows]);
    }
    bigger
}

/// Appends the first `len` keys of head `h` as rows of `d`, f32.
fn keys_f32<T: KvElem>(b: &[T], cap: usize, d: usize, h: usize, len: usize, out: &mut Vec<f32>) {
    for s in 0..len {
        out.extend((0..d).map(|i| b[T::key_index(cap, d, h, s, i)].to_f32()));
    }
}

fn to_f32<T: KvElem>(b: &[T], out: &mut Vec<f32>) {
    out.extend(b.iter().map(|v| v.to_f32()));
}

/// The span of `len` value rows from a head's start, in elements: whole pairs of rows (the
/// int8 layout's unit; row-major layouts take the row after an odd count along).
fn value_span(len: usize, d: usize) -> usize {
    len.div_ceil(2) * 2 * d
}

/// Writes `n` key rows and value rows of head `h` from slot `at`, converting.
#[allow(clippy::too_many_arguments)]
fn put_rows<T: KvElem>(
    kb: &mut [T],
    vb: &mut [T],
    cap: usize,
    d: usize,
    h: usize,
    at: usize,
    ks: &[f32],
    vs: &[f32],
) {
    for (t, row) in ks.chunks_exact(d).enumerate() {
        put_key(kb, cap, d, h, at + t, row);
    }
    put(&mut vb[(h * cap + at) * d..][..vs.len()], vs);
}

impl LayerBuf {
    /// Buffers for `rows` head slots (`Hkv * capacity`) of `d` values.
    fn new(dtype: KvDtype, rows: usize, d: usize) -> Self {
        let len = rows * d;
        match dtype {
            KvDtype::F32 => LayerBuf::F32(HugeBuf::zeroed(len), HugeBuf::zeroed(len)),
            KvDtype::F16 => LayerBuf::F16(HugeBuf::zeroed(len), HugeBuf::zeroed(len)),
            KvDtype::I8 => LayerBuf::I8 {
                k: HugeBuf::zeroed(len),
                v: HugeBuf::zeroed(len),
                ks: HugeBuf::zeroed(rows),
                vs: HugeBuf::zeroed(rows),
            },
        }
    }

    fn bytes(&self) -> usize {
        match self {
            LayerBuf::F32(k, v) => (k.len() + v.len()) * 4,
            LayerBuf::F16(k, v) => (k.len() + v.len()) * 2,
            LayerBuf::I8 { k, v, ks, vs } => k.len() + v.len() + (ks.len() + vs.len()) * 4,
        }
    }

    /// Writes head `h`'s key rows `ks` and value rows `vs` (rows of `d`) from slot `at`.
    #[allow(clippy::too_many_arguments)]
    fn put(&mut self, cap: usize, d: usize, h: usize, at: usize, ks: &[f32], vs: &[f32]) {
        self.as_mut().put(cap, d, h, at, ks, vs);
    }

    fn as_mut(&mut self) -> LayerMut<'_> {
        match self {
            LayerBuf::F32(k, v) => LayerMut::F32(k, v),
            LayerBuf::F16(k, v) => LayerMut::F16(k, v),
            LayerBuf::I8 { k, v, ks, vs } => LayerMut::I8(Int8Mut { k, v, ks, vs }),
        }
    }

    /// Appends head `h`'s first `len` keys and values to `ko`, `vo` as f32 rows.
    #[allow(clippy::too_many_arguments)]
    fn get(
        &self,
        cap: usize,
        d: usize,
        h: usize,
        len: usize,
        ko: &mut Vec<f32>,
        vo: &mut Vec<f32>,
    ) {
        let vals = (h * cap * d)..(h * cap + len) * d;
        match self {
            LayerBuf::F32(k, v) => {
                keys_f32(k, cap, d, h, len, ko);
                to_f32(&v[vals], vo);
            }
            LayerBuf::F16(k, v) => {
                keys_f32(k, cap, d, h, len, ko);
                to_f32(&v[vals], vo);
            }
            LayerBuf::I8 { k, v, ks, vs } => {
                let scales = h * cap..h * cap + len;
                for (s, &sc) in ks[scales.clone()].iter().enumerate() {
                    ko.extend((0..d).map(|i| k[key_at_i8(cap, d, h, s, i)] as f32 * sc));
                }
                for (s, &sc) in vs[scales].iter().enumerate() {
                    vo.extend((0..d).map(|c| v[value_at_i8(cap, d, h, s, c)] as f32 * sc));
                }
            }
        }
    }

    fn grown(&self, hkv: usize, d: usize, old: usize, cap: usize, len: usize) -> Self {
        // Keys move in whole blocks (their layout within a head does not depend on `cap`).
        let (krows, vrows) = (len.div_ceil(KEY_BLOCK) * KEY_BLOCK * d, value_span(len, d));
        match self {
            LayerBuf::F32(k, v) => LayerBuf::F32(
                grow(k, hkv, d, old, cap, krows),
                grow(v, hkv, d, old, cap, vrows),
            ),
            LayerBuf::F16(k, v) => LayerBuf::F16(
                grow(k, hkv, d, old, cap, krows),
                grow(v, hkv, d, old, cap, vrows),
            ),
            LayerBuf::I8 { k, v, ks, vs } => LayerBuf::I8 {
                k: grow(k, hkv, d, old, cap, krows),
                v: grow(v, hkv, d, old, cap, vrows),
                ks: grow(ks, hkv, 1, old, cap, len),
                vs: grow(vs, hkv, 1, old, cap, len),
            },
        }
    }
}

/// Converts `src` into `dst` (same length).
pub fn put<T: KvElem>(dst: &mut [T], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = T::from_f32(s);
    }
}

/// One layer's key buffer (the block layout of [`key_at`]) and value buffer (`(Hkv, capacity,
/// D)` row-major), in their element type.
pub enum LayerMut<'a> {
    F32(&'a mut [f32], &'a mut [f32]),
    F16(&'a mut [f16], &'a mut [f16]),
    I8(Int8Mut<'a>),
}

/// An int8 layer: keys and values as in [`LayerMut`], and the scale of each key row and each
/// value row, `(Hkv, capacity)`.
pub struct Int8Mut<'a> {
    pub k: &'a mut [i8],
    pub v: &'a mut [i8],
    pub ks: &'a mut [f32],
    pub vs: &'a mut [f32],
}

impl LayerMut<'_> {
    /// Writes head `h`'s key rows `keys` and value rows `vals` (rows of `d`) from slot `at`,
    /// converting (or quantizing) to the cache's element type.
    #[allow(clippy::too_many_arguments)]
    pub fn put(&mut self, cap: usize, d: usize, h: usize, at: usize, keys: &[f32], vals: &[f32]) {
        match self {
            LayerMut::F32(k, v) => put_rows(k, v, cap, d, h, at, keys, vals),
            LayerMut::F16(k, v) => put_rows(k, v, cap, d, h, at, keys, vals),
            LayerMut::I8(b) => put_rows_i8(b, cap, d, h, at, keys, vals),
        }
    }
}

#[derive(Debug)]
pub struct SeqCache {
    /// Per layer, keys (the block layout of [`key_at`]) and values `(Hkv, capacity, D)`.
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
    /// A cache with room for `capacity` slots (prefix included), rounded up to whole blocks of
    /// [`KEY_BLOCK`]. A `growable` cache reallocates (doubling) when full; a fixed one returns
    /// `CacheFull`.
    pub fn new(
        cfg: &LlamaConfig,
        capacity: usize,
        growable: bool,
        dtype: KvDtype,
        dev: &Device,
    ) -> Result<Self> {
        let (hkv, d) = (cfg.num_key_value_heads, cfg.head_dim());
        let capacity = capacity.max(1).next_multiple_of(KEY_BLOCK);
        Ok(SeqCache {
            layers: (0..cfg.num_hidden_layers)
                .map(|_| LayerBuf::new(dtype, hkv * capacity, d))
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
        let new_cap = needed.max(self.capacity * 2).next_multiple_of(KEY_BLOCK);
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
            let src = h * n * d..(h + 1) * n * d;
            self.layers[layer].put(cap, d, h, self.len, &k[src.clone()], &v[src]);
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
            self.layers[layer].get(cap, d, h, upto, &mut ko, &mut vo);
        }
        Ok((
            Tensor::from_vec(ko, (hkv, upto, d), &self.device)?,
            Tensor::from_vec(vo, (hkv, upto, d), &self.device)?,
        ))
    }

    /// Asks memory for layer `layer`'s keys, values and scales of the first `slots` slots, into
    /// L2, all at once: a batched decode step finds its caches in memory (the weights streamed
    /// through every step evict them), and the attention kernel's own prefetch, two blocks of
    /// keys ahead, covers the latency of one run but not the start of each head's runs.
    pub fn prefetch_layer(&self, layer: usize, slots: usize) {
        let (cap, d) = (self.capacity, self.d);
        let slots = slots.min(cap);
        let keys = slots.div_ceil(KEY_BLOCK) * KEY_BLOCK * d;
        let vals = value_span(slots, d).min(cap * d);
        for h in 0..self.hkv {
            match &self.layers[layer] {
                LayerBuf::F32(k, v) => {
                    prefetch_l2(&k[h * cap * d..][..keys]);
                    prefetch_l2(&v[h * cap * d..][..vals]);
                }
                LayerBuf::F16(k, v) => {
                    prefetch_l2(&k[h * cap * d..][..keys]);
                    prefetch_l2(&v[h * cap * d..][..vals]);
                }
                LayerBuf::I8 { k, v, ks, vs } => {
                    prefetch_l2(&k[h * cap * d..][..keys]);
                    prefetch_l2(&v[h * cap * d..][..vals]);
                    prefetch_l2(&ks[h * cap..][..slots]);
                    prefetch_l2(&vs[h * cap..][..slots]);
                }
            }
        }
    }

    /// The key buffer and value buffer of `layer` (the element type's layouts, see
    /// [`KvElem::key_index`]), for in-place writes and fused attention.
    pub fn layer_mut(&mut self, layer: usize) -> LayerMut<'_> {
        self.layers[layer].as_mut()
    }

    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Marks the slots written so far as the ECG prefix (call once, before any text).
    pub fn mark_prefix(&mut self) {
        self.prefix = self.len;
    }

    /// Empties the cache for another sequence, keeping its buffers (slots past the length are
    /// never read as data, so nothing is cleared).
    pub fn reset(&mut self) {
        self.len = 0;
        self.prefix = 0;
    }

    /// Writes every element of every buffer, so the OS backs the whole cache with pages now
    /// (a fresh buffer's pages are faulted in, and zeroed, on first write; a burst of new
    /// sequences then paid that on the engine thread). Contents stay zero.
    pub fn prefault(&mut self) {
        for l in 0..self.layers.len() {
            match self.layer_mut(l) {
                LayerMut::F32(k, v) => {
                    k.fill(0.0);
                    v.fill(0.0);
                }
                LayerMut::F16(k, v) => {
                    k.fill(f16::ZERO);
                    v.fill(f16::ZERO);
                }
                LayerMut::I8(b) => {
                    b.k.fill(0);
                    b.v.fill(0);
                    b.ks.fill(0.0);
                    b.vs.fill(0.0);
                }
            }
        }
    }

    /// Bytes held by the buffers.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(LayerBuf::bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_row_quantizes_as_the_block_quantizer_does() {
        // rows of 64 (the vector path), of 32 (the scalar one), a zero row, large values
        let mut q = [0i8; 64];
        let mut want = [0i8; 64];
        for (seed, len) in [(1u32, 64usize), (2, 64), (3, 32), (4, 64)] {
            let mut row: Vec<f32> = (0..len)
                .map(|i| {
                    (((i as u32).wrapping_mul(2654435761) ^ (seed * 40503)) % 2001) as f32 / 1000.0
                        - 1.0
                })
                .collect();
            match seed {
                2 => row.iter_mut().for_each(|v| *v = 0.0),
                4 => row.iter_mut().for_each(|v| *v *= 3e4),
                _ => {}
            }
            let d = quantize_row(&row, &mut q[..len]);
            assert_eq!(
                d.to_bits(),
                quantize_block(&row, &mut want[..len]).to_bits()
            );
            assert_eq!(q[..len], want[..len], "seed {seed}");
        }
    }

    fn cfg() -> LlamaConfig {
        LlamaConfig {
            vocab_size: 8,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
        }
    }

    #[test]
    fn key_blocks_are_dimension_major_per_16_keys() {
        let (cap, d) = (32, 4);
        assert_eq!(key_at(cap, d, 0, 0, 0), 0);
        assert_eq!(key_at(cap, d, 0, 1, 0), 1);
        assert_eq!(key_at(cap, d, 0, 0, 1), 16);
        assert_eq!(key_at(cap, d, 0, 17, 2), 16 * d + 2 * 16 + 1);
        assert_eq!(key_at(cap, d, 1, 0, 0), cap * d);
        let rows: Vec<u32> = (0..(2 * cap * d) as u32).collect();
        let blocks = keys_to_blocks(&rows, 2, cap, d);
        for h in 0..2 {
            for s in 0..cap {
                for i in 0..d {
                    assert_eq!(blocks[key_at(cap, d, h, s, i)], rows[(h * cap + s) * d + i]);
                }
            }
        }
    }

    /// A prefaulted cache is still empty, reads zero everywhere, keeps its capacity, and takes
    /// writes like a fresh one.
    #[test]
    fn a_prefaulted_cache_is_empty_and_takes_writes_and_prefetches() -> Result<()> {
        let c = cfg();
        let (hkv, d) = (c.num_key_value_heads, c.head_dim());
        for dtype in [KvDtype::F32, KvDtype::F16, KvDtype::I8] {
            let mut cache = SeqCache::new(&c, 40, true, dtype, &Device::Cpu)?;
            let cap = cache.capacity();
            cache.prefault();
            assert_eq!((cache.len(), cache.capacity()), (0, cap));
            let (k, v) = cache.view(1, cap)?;
            assert!(k.flatten_all()?.to_vec1::<f32>()?.iter().all(|x| *x == 0.0));
            assert!(v.flatten_all()?.to_vec1::<f32>()?.iter().all(|x| *x == 0.0));
            let k: Vec<f32> = (0..hkv * 2 * d).map(|i| i as f32 + 1.0).collect();
            for layer in 0..c.num_hidden_layers {
                cache.write_slices(layer, 2, &k, &k)?;
            }
            cache.advance(2);
            // prefetching any slot count, none or past the capacity, leaves the data alone
            for layer in 0..c.num_hidden_layers {
                cache.prefetch_layer(layer, 0);
                cache.prefetch_layer(layer, cap + 7);
            }
            let (kr, vr) = cache.view(0, 2)?;
            let (kr, vr) = (
                kr.flatten_all()?.to_vec1::<f32>()?,
                vr.flatten_all()?.to_vec1::<f32>()?,
            );
            if dtype == KvDtype::I8 {
                assert!(within_half_a_step(&kr, &k, d) && within_half_a_step(&vr, &k, d));
            } else {
                assert_eq!(kr, k, "{dtype:?}");
                assert_eq!(vr, k, "{dtype:?}");
            }
        }
        Ok(())
    }

    /// Writes every layer in steps of 3, 11, 1 and 20 slots (growing the cache as needed), key
    /// `i` of a step's `(Hkv, n, D)` rows being `key(step, i)` and its value `value(key)`;
    /// returns the keys and values a view of the 35 slots should give, head by head.
    fn write_in_steps(
        cache: &mut SeqCache,
        c: &LlamaConfig,
        key: impl Fn(usize, usize) -> f32,
        value: impl Fn(f32) -> f32,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (hkv, d) = (c.num_key_value_heads, c.head_dim());
        let mut want_k = vec![Vec::new(); hkv];
        let mut want_v = vec![Vec::new(); hkv];
        for (step, n) in [3usize, 11, 1, 20].into_iter().enumerate() {
            cache.reserve(n)?;
            let k: Vec<f32> = (0..hkv * n * d).map(|i| key(step, i)).collect();
            let v: Vec<f32> = k.iter().map(|&x| value(x)).collect();
            for layer in 0..c.num_hidden_layers {
                cache.write_slices(layer, n, &k, &v)?;
            }
            for h in 0..hkv {
                want_k[h].extend_from_slice(&k[h * n * d..(h + 1) * n * d]);
                want_v[h].extend_from_slice(&v[h * n * d..(h + 1) * n * d]);
            }
            cache.advance(n);
        }
        assert_eq!(cache.len(), 35);
        Ok((want_k.concat(), want_v.concat()))
    }

    /// Every value of `got` within half a quantization step of `want`, rows of `d` each
    /// quantized with its own scale `max|x| / 127`.
    fn within_half_a_step(got: &[f32], want: &[f32], d: usize) -> bool {
        got.len() == want.len()
            && got.chunks(d).zip(want.chunks(d)).all(|(g, w)| {
                let step = w.iter().fold(0f32, |a, x| a.max(x.abs())) / 127.0;
                g.iter()
                    .zip(w)
                    .all(|(a, b)| (a - b).abs() <= step * 0.5 + 1e-6)
            })
    }

    /// Int8 rows: writes, growth (scales included) and views give every key and value back
    /// within half its row's quantization step, each row with its own scale.
    #[test]
    fn int8_rows_survive_growth_within_half_a_step() -> Result<()> {
        let c = cfg();
        let (hkv, d) = (c.num_key_value_heads, c.head_dim());
        let mut cache = SeqCache::new(&c, 5, true, KvDtype::I8, &Device::Cpu)?;
        cache.prefault();
        // rows of very different magnitudes, so a shared scale would lose the small ones
        let key = |step: usize, i: usize| {
            ((i * 37 + step) % 101) as f32 * 10f32.powi((i / d % 5) as i32 - 2)
        };
        let (want_k, want_v) = write_in_steps(&mut cache, &c, key, |x| -0.5 * x)?;
        for layer in 0..c.num_hidden_layers {
            let (k, v) = cache.view(layer, 35)?;
            let (k, v) = (
                k.flatten_all()?.to_vec1::<f32>()?,
                v.flatten_all()?.to_vec1::<f32>()?,
            );
            assert!(within_half_a_step(&k, &want_k, d), "keys, layer {layer}");
            assert!(within_half_a_step(&v, &want_v, d), "values, layer {layer}");
        }
        // a quarter of the bytes of f32 plus one scale per row
        let f32_cache = SeqCache::new(&c, 5, true, KvDtype::F32, &Device::Cpu)?;
        let rows = 2 * c.num_hidden_layers * hkv * KEY_BLOCK;
        assert_eq!(
            SeqCache::new(&c, 5, true, KvDtype::I8, &Device::Cpu)?.bytes(),
            f32_cache.bytes() / 4 + rows * 4
        );
        Ok(())
    }

    /// Writes, growth and views keep every key and value where the layout says, for both
    /// float element types.
    #[test]
    fn writes_survive_growth_and_read_back_as_rows() -> Result<()> {
        let c = cfg();
        for dtype in [KvDtype::F32, KvDtype::F16] {
            let mut cache = SeqCache::new(&c, 5, true, dtype, &Device::Cpu)?;
            assert_eq!(cache.capacity(), KEY_BLOCK, "rounded up to a block");
            let key = |step: usize, i: usize| (step * 400 + i) as f32;
            let (want_k, want_v) = write_in_steps(&mut cache, &c, key, |x| -x)?;
            assert!(cache.capacity() >= 35 && cache.capacity().is_multiple_of(KEY_BLOCK));
            for layer in 0..c.num_hidden_layers {
                let (k, v) = cache.view(layer, 35)?;
                let (k, v) = (
                    k.flatten_all()?.to_vec1::<f32>()?,
                    v.flatten_all()?.to_vec1::<f32>()?,
                );
                // the values are integers below 2048, exact in f16
                assert_eq!(k, want_k, "{dtype:?} keys, layer {layer}");
                assert_eq!(v, want_v, "{dtype:?} values, layer {layer}");
            }
        }
        Ok(())
    }
}

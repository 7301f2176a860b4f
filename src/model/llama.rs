//! Llama decoder with MEIT prefix fusion, over ragged batches.
//!
//! Every sequence in a batch brings its own new tokens (a prefill chunk or one decode token) and
//! its own cache. Linear layers run once over all `N` new tokens; attention runs per sequence
//! over that sequence's cache: `P` ECG prefix slots (keys/values from the layer's own
//! `k_proj`/`v_proj` of the tiled ECG vector, no norm, no RoPE, visible to every text query),
//! then the text slots under a causal mask. Text positions start at 0.
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor, D};

use std::sync::Mutex;

use super::attention::KvLoad;
use super::attention::{attend_cached, rope_rows, CacheSlices, Heads};
use super::config::LlamaConfig;
use super::error::{ModelError, Result};
use super::kv::{KvDtype, LayerMut, SeqCache};
use super::linear::Linear;
use super::par::run_owned;
use super::qmatmul::Q8Matrix;
use super::rms_norm::rms_norm;
use super::weights::{layer_linear_names, Weights};

mod phases;
mod step;

/// Sequences with at most this many new tokens in a step (decode, prompts, prefill chunks) use
/// the fused attention on slices; longer chunks use batched matmuls.
const FUSED_ATTENTION_MAX_QUERIES: usize = 128;

/// Where one sequence's new rows go in its cache, and their attention geometry.
struct CachedRows {
    n: usize,
    before: usize,
    cap: usize,
    heads: Heads,
    scale: f32,
}

impl CachedRows {
    /// Keys and values (RoPE applied to keys) into the cache layer, then attention.
    fn write_and_attend(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mut layer: LayerMut<'_>,
        out: &mut [f32],
    ) {
        let Heads { hkv, d, .. } = self.heads;
        for t in 0..self.n {
            for hh in 0..hkv {
                let src = (t * hkv + hh) * d..(t * hkv + hh + 1) * d;
                layer.put(self.cap, d, hh, self.before + t, &k[src.clone()], &v[src]);
            }
        }
        let cap = self.cap;
        match layer {
            LayerMut::F32(k, v) => self.attend(
                q,
                &CacheSlices {
                    k,
                    v,
                    scales: None,
                    cap,
                },
                out,
            ),
            LayerMut::F16(k, v) => self.attend(
                q,
                &CacheSlices {
                    k,
                    v,
                    scales: None,
                    cap,
                },
                out,
            ),
            LayerMut::I8(b) => {
                let scales = Some((&*b.ks, &*b.vs));
                self.attend(
                    q,
                    &CacheSlices {
                        k: b.k,
                        v: b.v,
                        scales,
                        cap,
                    },
                    out,
                )
            }
        }
    }

    fn attend<T: KvLoad>(&self, q: &[f32], c: &CacheSlices<'_, T>, out: &mut [f32]) {
        let total = self.before + self.n;
        attend_cached(
            q,
            self.n,
            c,
            self.before,
            total,
            self.heads,
            self.scale,
            out,
        );
    }
}

/// One sequence's rows of a layer's attention on the fused path.
struct SmallSeq<'a> {
    cache: &'a mut SeqCache,
    n: usize,
    q: &'a mut [f32],
    k: &'a mut [f32],
    v: &'a [f32],
    out: &'a mut [f32],
}

/// One sequence's part of a ragged batch.
pub struct SeqInput<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut SeqCache,
}

pub struct Block {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub ln_attn: Tensor,
    pub ln_mlp: Tensor,
    /// Int8 copies of `[q; k; v]` and `[gate; up]` stacked (one matmul each), when quantized
    /// to Q8_0 with no unmerged LoRA.
    fused: Option<FusedInt8>,
}

struct FusedInt8 {
    qkv: Q8Matrix,
    gate_up: Q8Matrix,
    /// The block's two norm scales as slices (for the slice step).
    ln_attn: Vec<f32>,
    ln_mlp: Vec<f32>,
}

pub struct Llama {
    cfg: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    /// The RoPE tables as slices for the fused attention.
    cos_v: Vec<f32>,
    sin_v: Vec<f32>,
    /// Element type of new caches: f32, or f16 once the weights are quantized.
    kv_dtype: KvDtype,
    /// The ECG prefix projection folded (CPU, merged weights; see [`fold_prefix_projection`]).
    prefix_kv: Option<Vec<f32>>,
    /// Activation buffers of the int8 slice step (see `step`).
    /// One set per part of a step run as parts (see `step`).
    scratch: Mutex<Vec<step::Scratch>>,
    device: Device,
}

/// The k and v projections of every layer applied to an ECG vector tiled `H` times equal the
/// projections with the `H` column blocks of each weight summed: `W [e; ...; e] = (sum_h W_h) e`.
/// Returns `[layer][k, v][D][Hkv * D]`, each folded projection transposed, so a slot's keys and
/// values of every layer come from a few thousand vector multiply-adds across the outputs (a
/// dot product per output, each ending in a 64-term sum, took 0.4 ms of every admission).
fn fold_prefix_projection(blocks: &[Block], h: usize, d: usize) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for b in blocks {
        for lin in [&b.k, &b.v] {
            let w = lin.weight().flatten_all()?.to_vec1::<f32>()?;
            let rows = w.len() / (h * d);
            let mut folded = vec![0f32; d * rows];
            for (j, row) in w.chunks_exact(h * d).enumerate() {
                for i in 0..d {
                    let mut f = row[i];
                    for blk in 1..h {
                        f += row[blk * d + i];
                    }
                    folded[i * rows + j] = f;
                }
            }
            out.extend_from_slice(&folded);
        }
    }
    Ok(out)
}

impl Llama {
    /// Builds the model from HF-named weights. `linear` chooses each linear layer's form
    /// (plain, or with an unmerged LoRA delta) from its HF weight name and weight.
    pub fn load_with(
        w: &Weights,
        cfg: &LlamaConfig,
        device: &Device,
        mut linear: impl FnMut(&str, Tensor) -> Result<Linear>,
    ) -> Result<Self> {
        let (e, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (hd, hkv) = (cfg.head_dim(), cfg.num_key_value_heads);
        if !cfg.num_attention_heads.is_multiple_of(hkv) || hd * cfg.num_attention_heads != e {
            return Err(ModelError::Input(format!(
                "inconsistent heads: {} heads, {} kv heads, hidden {}",
                cfg.num_attention_heads, hkv, e
            )));
        }
        let embed = w.get("model.embed_tokens.weight", &[v, e])?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let [qn, kn, vn, on, gn, un, dn] = layer_linear_names(l);
            let mut lin = |name: &str, shape: &[usize]| -> Result<Linear> {
                let t = w.get(name, shape)?;
                linear(name, t)
            };
            blocks.push(Block {
                q: lin(&qn, &[e, e])?,
                k: lin(&kn, &[hkv * hd, e])?,
                v: lin(&vn, &[hkv * hd, e])?,
                o: lin(&on, &[e, e])?,
                gate: lin(&gn, &[i, e])?,
                up: lin(&un, &[i, e])?,
                down: lin(&dn, &[e, i])?,
                ln_attn: w.get(&format!("model.layers.{l}.input_layernorm.weight"), &[e])?,
                ln_mlp: w.get(
                    &format!("model.layers.{l}.post_attention_layernorm.weight"),
                    &[e],
                )?,
                fused: None,
            });
        }
        let norm = w.get("model.norm.weight", &[e])?;
        let lm_head = if w.contains("lm_head.weight") && !cfg.tie_word_embeddings {
            w.get("lm_head.weight", &[v, e])?
        } else {
            embed.clone()
        };
        let lm_head = Linear::new(lm_head);
        let (cos, sin) = rope_tables(cfg, device)?;
        let cos_v = cos.flatten_all()?.to_vec1::<f32>()?;
        let sin_v = sin.flatten_all()?.to_vec1::<f32>()?;
        let merged = blocks
            .iter()
            .all(|b| b.k.lora().is_none() && b.v.lora().is_none());
        let prefix_kv = if device.is_cpu() && merged {
            Some(fold_prefix_projection(
                &blocks,
                cfg.num_attention_heads,
                hd,
            )?)
        } else {
            None
        };
        Ok(Llama {
            prefix_kv,
            scratch: Mutex::new(vec![step::Scratch::default()]),
            cos_v,
            sin_v,
            kv_dtype: KvDtype::F32,
            cfg: cfg.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
            device: device.clone(),
        })
    }

    /// Element type of the caches made from now on (`quantize` sets f16).
    pub fn set_kv_dtype(&mut self, dtype: KvDtype) {
        self.kv_dtype = dtype;
    }

    pub fn kv_dtype(&self) -> KvDtype {
        self.kv_dtype
    }

    /// Builds the model with plain linear layers.
    pub fn load(w: &Weights, cfg: &LlamaConfig, device: &Device) -> Result<Self> {
        Self::load_with(w, cfg, device, |_, t| Ok(Linear::new(t)))
    }

    /// Adds quantized copies (`dtype`, e.g. Q8_0) of every linear layer and the LM head, used
    /// for steps of at most `max_rows` tokens; larger steps stay in f32. With Q8_0 for every
    /// step (`max_rows == usize::MAX`) and merged weights, q/k/v and gate/up are stacked into one
    /// int8 matrix each, so a layer runs four matmuls instead of seven. Caches made afterwards
    /// hold f16 (half the bytes a batched decode step reads from them).
    pub fn quantize(&mut self, dtype: GgmlDType, max_rows: usize) -> Result<()> {
        self.kv_dtype = KvDtype::F16;
        for b in &mut self.blocks {
            let plain = [&b.q, &b.k, &b.v, &b.gate, &b.up]
                .iter()
                .all(|l| l.lora().is_none());
            if dtype == GgmlDType::Q8_0 && max_rows == usize::MAX && plain {
                let qkv = Tensor::cat(&[b.q.weight(), b.k.weight(), b.v.weight()], 0)?;
                let gate_up = Tensor::cat(&[b.gate.weight(), b.up.weight()], 0)?;
                let (nq, k) = qkv.dims2()?;
                let (ng, kg) = gate_up.dims2()?;
                if Q8Matrix::supports(nq, k) && Q8Matrix::supports(ng, kg) {
                    b.fused = Some(FusedInt8 {
                        qkv: Q8Matrix::from_tensor(&qkv)?,
                        gate_up: Q8Matrix::from_tensor(&gate_up)?,
                        ln_attn: b.ln_attn.flatten_all()?.to_vec1::<f32>()?,
                        ln_mlp: b.ln_mlp.flatten_all()?.to_vec1::<f32>()?,
                    });
                }
            }
            // The fused copies replace q/k/v/gate/up in the step (k and v stay f32 for the one
            // ECG prefix row written per request).
            let mut layers = vec![&mut b.o, &mut b.down];
            if b.fused.is_none() {
                layers.extend([&mut b.q, &mut b.k, &mut b.v, &mut b.gate, &mut b.up]);
            }
            for l in layers {
                l.quantize(dtype, max_rows)?;
            }
        }
        self.lm_head.quantize(dtype, max_rows)
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Token embeddings `(V, E)`.
    pub fn embed(&self) -> &Tensor {
        &self.embed
    }

    /// Final RMSNorm weight `(E)`.
    pub fn final_norm(&self) -> &Tensor {
        &self.norm
    }

    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }

    /// RoPE tables `(cos, sin)`, each `(max_pos, D/2)`.
    pub fn rope(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    /// A fresh cache sized for `capacity` slots.
    pub fn new_cache(&self, capacity: usize, growable: bool) -> Result<SeqCache> {
        SeqCache::new(&self.cfg, capacity, growable, self.kv_dtype, &self.device)
    }

    /// Writes the ECG prefix (`ecg: (P, D)`) into the first `P` slots of an empty cache.
    pub fn write_prefix(&self, ecg: &Tensor, cache: &mut SeqCache) -> Result<()> {
        if !cache.is_empty() {
            return Err(ModelError::Input(
                "the ECG prefix must be written before any text".into(),
            ));
        }
        let (p, d) = ecg.dims2()?;
        let (h, hkv) = (self.cfg.num_attention_heads, self.cfg.num_key_value_heads);
        if d != self.cfg.head_dim() {
            return Err(ModelError::Input(format!(
                "ECG vectors have size {d}, the backbone's head size is {}",
                self.cfg.head_dim()
            )));
        }
        cache.reserve(p)?;
        if let Some(w) = &self.prefix_kv {
            let e = ecg.flatten_all()?.to_vec1::<f32>()?;
            let ekv = hkv * d;
            let (mut k, mut v) = (vec![0f32; p * ekv], vec![0f32; p * ekv]);
            let mut acc = vec![0f32; ekv];
            for (l, lw) in w.chunks_exact(2 * ekv * d).enumerate() {
                for (which, dst) in [&mut k, &mut v].into_iter().enumerate() {
                    // (D, Hkv*D): row i holds input i's weight for every output.
                    let wt = &lw[which * ekv * d..(which + 1) * ekv * d];
                    for (s, x) in e.chunks_exact(d).enumerate() {
                        // Output j sums its products in input order, as a dot product would.
                        let mut rows = wt.chunks_exact(ekv).zip(x);
                        if let Some((r, &xi)) = rows.next() {
                            acc.iter_mut().zip(r).for_each(|(a, w)| *a = w * xi);
                        }
                        for (r, &xi) in rows {
                            acc.iter_mut().zip(r).for_each(|(a, w)| *a += w * xi);
                        }
                        // (Hkv, P, D): output j is head j / D, dim j % D.
                        for (j, a) in acc.iter().enumerate() {
                            dst[((j / d) * p + s) * d + j % d] = *a;
                        }
                    }
                }
                cache.write_slices(l, p, &k, &v)?;
            }
            cache.advance(p);
            cache.mark_prefix();
            return Ok(());
        }
        // (P, D) -> (P, H*D): each vector tiled H times
        let tiled = ecg.repeat((1, h))?;
        for (l, b) in self.blocks.iter().enumerate() {
            // (P, Hkv*D) -> (Hkv, P, D)
            let k = b.k.forward(&tiled)?.reshape((p, hkv, d))?.transpose(0, 1)?;
            let v = b.v.forward(&tiled)?.reshape((p, hkv, d))?.transpose(0, 1)?;
            cache.write(l, &k.contiguous()?, &v.contiguous()?)?;
        }
        cache.advance(p);
        cache.mark_prefix();
        Ok(())
    }

    /// Runs the new tokens of every sequence through the model, appending them to the caches,
    /// and returns the logits of each sequence's last new token: `(B, V)`.
    pub fn forward(&self, seqs: &mut [SeqInput<'_>]) -> Result<Tensor> {
        if let Some(view) = self.int8_view() {
            let mut logits = Vec::new();
            self.forward_int8(&view, seqs, &mut logits)?;
            let vocab = logits.len() / seqs.len();
            return Ok(Tensor::from_vec(logits, (seqs.len(), vocab), &self.device)?);
        }
        self.forward_tensors(seqs)
    }

    /// [`Self::forward`] into `logits` (`B` rows of the vocabulary, flat; the buffer is
    /// resized, its old contents overwritten), so a caller stepping many times reuses one
    /// buffer.
    pub fn forward_into(&self, seqs: &mut [SeqInput<'_>], logits: &mut Vec<f32>) -> Result<()> {
        if let Some(view) = self.int8_view() {
            return self.forward_int8(&view, seqs, logits);
        }
        let t = self.forward_tensors(seqs)?;
        logits.clear();
        logits.extend(t.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }

    /// [`Self::forward`] as candle tensor ops (any device, any precision).
    fn forward_tensors(&self, seqs: &mut [SeqInput<'_>]) -> Result<Tensor> {
        let hidden = self.forward_hidden(seqs)?;
        let mut last = Vec::with_capacity(seqs.len());
        let mut off = 0;
        for s in seqs.iter() {
            off += s.tokens.len();
            last.push(hidden.narrow(0, off - 1, 1)?);
        }
        // (B, E) -> (B, V)
        let h = Tensor::cat(&last, 0)?;
        let h = rms_norm(&h, &self.norm, self.cfg.rms_norm_eps as f32)?;
        self.lm_head.forward(&h)
    }

    /// Hidden states after the last block for all new tokens, `(N, E)`, before the final norm.
    pub fn forward_hidden(&self, seqs: &mut [SeqInput<'_>]) -> Result<Tensor> {
        let mut ids = Vec::new();
        for s in seqs.iter_mut() {
            if s.tokens.is_empty() {
                return Err(ModelError::Input("a sequence brought no tokens".into()));
            }
            s.cache.reserve(s.tokens.len())?;
            ids.extend_from_slice(s.tokens);
        }
        let n_total = ids.len();
        let ids = Tensor::from_vec(ids, n_total, &self.device)?;
        // (N, E)
        let mut x = self.embed.index_select(&ids, 0)?;
        for (l, b) in self.blocks.iter().enumerate() {
            x = self.block_forward(l, b, &x, seqs)?;
        }
        for s in seqs.iter_mut() {
            s.cache.advance(s.tokens.len());
        }
        Ok(x)
    }

    fn block_forward(
        &self,
        l: usize,
        b: &Block,
        x: &Tensor,
        seqs: &mut [SeqInput<'_>],
    ) -> Result<Tensor> {
        let eps = self.cfg.rms_norm_eps as f32;
        let h = rms_norm(x, &b.ln_attn, eps)?;
        let (q, k, v) = match &b.fused {
            Some(f) => {
                let (e, ekv) = (self.cfg.hidden_size, b.k.weight().dim(0)?);
                let y = f.qkv.forward(&h)?;
                (
                    y.narrow(1, 0, e)?,
                    y.narrow(1, e, ekv)?,
                    y.narrow(1, e + ekv, ekv)?,
                )
            }
            None => (b.q.forward(&h)?, b.k.forward(&h)?, b.v.forward(&h)?),
        };
        let att = self.attention(l, &q, &k, &v, seqs)?;
        let x = (x + b.o.forward(&att)?)?;
        let h = rms_norm(&x, &b.ln_mlp, eps)?;
        let m = match &b.fused {
            Some(f) => {
                let i = self.cfg.intermediate_size;
                let rows = h.dim(0)?;
                let hv = h.flatten_all()?.to_vec1::<f32>()?;
                let mut gu = vec![0f32; rows * 2 * i];
                f.gate_up.matmul(&hv, rows, &mut gu);
                let m = super::act::silu_mul(&gu, rows, i);
                Tensor::from_vec(m, (rows, i), &self.device)?
            }
            None => {
                let (gate, up) = (b.gate.forward(&h)?, b.up.forward(&h)?);
                (candle_nn::ops::silu(&gate)? * up)?
            }
        };
        Ok((x + b.down.forward(&m)?)?)
    }

    /// Attention of every sequence's new tokens over its own cache: `q: (N, H*D)`,
    /// `k, v: (N, Hkv*D)` -> `(N, H*D)`. Sequences with few new tokens (decode) take the fused
    /// path on slices, in parallel across sequences; longer chunks take the tensor path.
    fn attention(
        &self,
        l: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        seqs: &mut [SeqInput<'_>],
    ) -> Result<Tensor> {
        let heads = Heads {
            h: self.cfg.num_attention_heads,
            hkv: self.cfg.num_key_value_heads,
            d: self.cfg.head_dim(),
        };
        let e = heads.h * heads.d;
        let n_total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if !self.device.is_cpu() {
            let mut outs = Vec::with_capacity(seqs.len());
            let mut off = 0;
            for s in seqs.iter_mut() {
                let n = s.tokens.len();
                outs.push(self.attend(
                    l,
                    &q.narrow(0, off, n)?,
                    &k.narrow(0, off, n)?,
                    &v.narrow(0, off, n)?,
                    s.cache,
                )?);
                off += n;
            }
            return Ok(Tensor::cat(&outs, 0)?);
        }
        let mut qv = q.flatten_all()?.to_vec1::<f32>()?;
        let mut kv = k.flatten_all()?.to_vec1::<f32>()?;
        let vv = v.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; n_total * e];
        self.attend_rows(l, heads, seqs, &mut qv, &mut kv, &vv, &mut out)?;
        Ok(Tensor::from_vec(out, (n_total, e), &self.device)?)
    }

    /// [`Self::attention`] on slices: `q: (N, H*D)`, `k, v: (N, Hkv*D)` (RoPE is applied to
    /// `q` and `k` in place), `out: (N, H*D)`.
    #[allow(clippy::too_many_arguments)]
    fn attend_rows(
        &self,
        l: usize,
        heads: Heads,
        seqs: &mut [SeqInput<'_>],
        q: &mut [f32],
        k: &mut [f32],
        v: &[f32],
        out: &mut [f32],
    ) -> Result<()> {
        let (e, ekv) = (heads.h * heads.d, heads.hkv * heads.d);
        // Split the rows per sequence.
        let mut small = Vec::new();
        let (mut qr, mut kr, mut vr, mut or) = (q, k, v, out);
        for s in seqs.iter_mut() {
            let n = s.tokens.len();
            let (qs, qrest) = std::mem::take(&mut qr).split_at_mut(n * e);
            let (ks, krest) = std::mem::take(&mut kr).split_at_mut(n * ekv);
            let (vs, vrest) = vr.split_at(n * ekv);
            let (os, orest) = std::mem::take(&mut or).split_at_mut(n * e);
            (qr, kr, vr, or) = (qrest, krest, vrest, orest);
            if n <= FUSED_ATTENTION_MAX_QUERIES {
                small.push(SmallSeq {
                    cache: &mut *s.cache,
                    n,
                    q: qs,
                    k: ks,
                    v: vs,
                    out: os,
                });
            } else {
                let t = self.attend(
                    l,
                    &Tensor::from_slice(qs, (n, e), &self.device)?,
                    &Tensor::from_slice(ks, (n, ekv), &self.device)?,
                    &Tensor::from_slice(vs, (n, ekv), &self.device)?,
                    s.cache,
                )?;
                os.copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        if small.len() > 1 {
            // Sequences in parallel on candle's worker pool, each taken once, every thread
            // first through its own share: while it works on one sequence it asks memory for
            // its next one's layer of the cache (16-sequence decode steps' attention 6-9% shorter).
            let cells: Vec<Mutex<Option<SmallSeq<'_>>>> =
                small.into_iter().map(|w| Mutex::new(Some(w))).collect();
            let failed: Mutex<Option<ModelError>> = Mutex::new(None);
            run_owned(cells.len(), |i, next| {
                let work = cells[i].lock().ok().and_then(|mut c| c.take());
                if let Some(next) = next.and_then(|j| cells[j].try_lock().ok()) {
                    if let Some(s) = next.as_ref() {
                        s.cache.prefetch_layer(l, s.cache.len() + s.n);
                    }
                }
                if let Some(w) = work {
                    if let Err(e) = self.attend_small(l, heads, w) {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                    }
                }
            });
            if let Some(e) = failed.into_inner().ok().flatten() {
                return Err(e);
            }
        } else {
            for w in small {
                self.attend_small(l, heads, w)?;
            }
        }
        Ok(())
    }

    /// The fused path of one sequence: RoPE on its `n` query and key rows, keys and values into
    /// its cache, attention into `out`.
    fn attend_small(&self, l: usize, heads: Heads, w: SmallSeq<'_>) -> Result<()> {
        let SmallSeq {
            cache,
            n,
            q,
            k,
            v,
            out,
        } = w;
        let Heads { h, hkv, d } = heads;
        let (pos, before, cap) = (cache.text_len(), cache.len(), cache.capacity());
        if before + n > cap {
            return Err(ModelError::CacheFull {
                needed: before + n,
                capacity: cap,
            });
        }
        if (pos + n) * (d / 2) > self.cos_v.len() {
            return Err(ModelError::Input(format!(
                "position {} beyond the RoPE table ({} positions)",
                pos + n,
                self.cfg.max_position_embeddings
            )));
        }
        cache.prefetch_layer(l, before + n);
        rope_rows(q, n, h, d, pos, &self.cos_v, &self.sin_v);
        rope_rows(k, n, hkv, d, pos, &self.cos_v, &self.sin_v);
        let scale = 1.0 / (d as f32).sqrt();
        let at = CachedRows {
            n,
            before,
            cap,
            heads,
            scale,
        };
        at.write_and_attend(q, k, v, cache.layer_mut(l), out);
        Ok(())
    }

    /// Attention of one sequence's `n` new tokens over its cache. `q: (n, H*D)`,
    /// `k, v: (n, Hkv*D)`; returns `(n, H*D)`.
    fn attend(
        &self,
        l: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cache: &mut SeqCache,
    ) -> Result<Tensor> {
        let (h, hkv, d) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim(),
        );
        let g = h / hkv;
        let n = q.dim(0)?;
        let pos = cache.text_len();
        let cos = self.cos.narrow(0, pos, n)?;
        let sin = self.sin.narrow(0, pos, n)?;
        // (n, H*D) -> (1, H, n, D), RoPE, -> (H, n, D)
        let q = q.reshape((1, n, h, d))?.transpose(1, 2)?.contiguous()?;
        let q = candle_nn::rotary_emb::rope(&q, &cos, &sin)?.squeeze(0)?;
        let k = k.reshape((1, n, hkv, d))?.transpose(1, 2)?.contiguous()?;
        let k = candle_nn::rotary_emb::rope(&k, &cos, &sin)?.squeeze(0)?;
        // (n, Hkv*D) -> (Hkv, n, D)
        let v = v.reshape((n, hkv, d))?.transpose(0, 1)?.contiguous()?;
        cache.write(l, &k, &v)?;
        let before = cache.len();
        let total = before + n;
        let scale = 1.0 / (d as f64).sqrt();
        let (kc, vc) = cache.view(l, total)?;
        // (H, n, D) -> (Hkv, g*n, D): query heads j*g..j*g+g share kv head j
        let q = q.reshape((hkv, g * n, d))?;
        // (Hkv, g*n, D) x (Hkv, D, L) -> (Hkv, g*n, L)
        let att = (q.matmul(&kc.t()?)? * scale)?;
        let att = if n > 1 {
            let mask = causal_mask(n, g, before, total, &self.device)?;
            att.broadcast_add(&mask)?
        } else {
            att
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        // (Hkv, g*n, L) x (Hkv, L, D) -> (Hkv, g*n, D) -> (H, n, D) -> (n, H*D)
        let out = att.matmul(&vc.contiguous()?)?;
        Ok(out
            .reshape((h, n, d))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((n, h * d))?)
    }
}

/// Additive mask `(g*n, L)`: new token `t` (at cache index `before + t`) sees keys `0..=before+t`,
/// which includes every prefix slot.
fn causal_mask(n: usize, g: usize, before: usize, total: usize, dev: &Device) -> Result<Tensor> {
    let mut m = Vec::with_capacity(g * n * total);
    for _ in 0..g {
        for t in 0..n {
            for j in 0..total {
                m.push(if j > before + t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                });
            }
        }
    }
    Ok(Tensor::from_vec(m, (g * n, total), dev)?)
}

/// RoPE tables `(max_pos, D/2)`, HF rotate-half convention.
fn rope_tables(cfg: &LlamaConfig, dev: &Device) -> Result<(Tensor, Tensor)> {
    let d = cfg.head_dim();
    let inv: Vec<f32> = (0..d / 2)
        .map(|i| 1.0 / (cfg.rope_theta as f32).powf(2.0 * i as f32 / d as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, d / 2), dev)?;
    let max = cfg.max_position_embeddings;
    let t = Tensor::arange(0u32, max as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((max, 1))?;
    let freqs = t.broadcast_mul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// Index of the largest logit of a `(V,)` or `(1, V)` tensor.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    Ok(logits
        .flatten_all()?
        .argmax(D::Minus1)?
        .to_scalar::<u32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tiny::tiny_backbone;

    #[test]
    fn folded_prefix_projection_equals_the_tiled_one() -> Result<()> {
        let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(64), 5)?;
        let mut llm = Llama::load(&w, &cfg, &Device::Cpu)?;
        assert!(llm.prefix_kv.is_some());
        let d = cfg.head_dim();
        let ecg =
            crate::model::encoder::l2_normalize(&Tensor::randn(0f32, 1f32, (3, d), &Device::Cpu)?)?;
        let mut folded = llm.new_cache(8, false)?;
        llm.write_prefix(&ecg, &mut folded)?;
        llm.prefix_kv = None;
        let mut tiled = llm.new_cache(8, false)?;
        llm.write_prefix(&ecg, &mut tiled)?;
        assert_eq!((folded.len(), folded.prefix()), (3, 3));
        for l in 0..cfg.num_hidden_layers {
            let (ka, va) = folded.view(l, 3)?;
            let (kb, vb) = tiled.view(l, 3)?;
            for (a, b) in [(ka, kb), (va, vb)] {
                let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "layer {l}: {diff}");
            }
        }
        Ok(())
    }

    /// A tiny backbone whose shapes fit the int8 layout (4 heads over `hidden`, 2 kv heads),
    /// quantized, with every layer on the int8 slice step.
    fn tiny_int8(hidden: usize, seed: u64) -> Result<(Llama, LlamaConfig)> {
        let cfg = LlamaConfig {
            vocab_size: 64,
            hidden_size: hidden,
            intermediate_size: 128,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            ..LlamaConfig::tiny(64)
        };
        let (w, cfg) = tiny_backbone(&cfg, seed)?;
        let mut llm = Llama::load(&w, &cfg, &Device::Cpu)?;
        llm.quantize(GgmlDType::Q8_0, usize::MAX)?;
        assert!(llm.int8_view().is_some());
        Ok((llm, cfg))
    }

    /// With an f16 and with an int8 KV cache (the fused attention reads the same cached values
    /// the tensor step dequantizes).
    #[test]
    fn int8_slice_step_equals_the_tensor_step() -> Result<()> {
        for kv in [KvDtype::F16, KvDtype::I8] {
            slice_step_equals_the_tensor_step(kv)?;
        }
        Ok(())
    }

    fn slice_step_equals_the_tensor_step(kv: KvDtype) -> Result<()> {
        let (mut llm, cfg) = tiny_int8(64, 9)?;
        llm.set_kv_dtype(kv);
        let d = cfg.head_dim();
        let ecg =
            crate::model::encoder::l2_normalize(&Tensor::randn(0f32, 1f32, (1, d), &Device::Cpu)?)?;
        let caches = || -> Result<Vec<SeqCache>> {
            let mut cs = Vec::new();
            for _ in 0..3 {
                let mut c = llm.new_cache(40, false)?;
                llm.write_prefix(&ecg, &mut c)?;
                cs.push(c);
            }
            Ok(cs)
        };
        let (mut a, mut b) = (caches()?, caches()?);
        // A ragged prefill (one prompt longer than 16 rows: int8 tiles), then decode steps.
        let steps: [[&[u32]; 3]; 3] = [
            [&[1, 2, 3], &[4; 20], &[7, 8]],
            [&[9], &[10], &[11]],
            [&[12], &[13], &[14]],
        ];
        for toks in steps {
            let mut ia: Vec<SeqInput> = a
                .iter_mut()
                .zip(toks)
                .map(|(cache, tokens)| SeqInput { tokens, cache })
                .collect();
            let mut ib: Vec<SeqInput> = b
                .iter_mut()
                .zip(toks)
                .map(|(cache, tokens)| SeqInput { tokens, cache })
                .collect();
            let fast = llm.forward(&mut ia)?;
            let slow = llm.forward_tensors(&mut ib)?;
            let diff = (fast - slow)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{kv:?} cache: {diff}");
        }
        Ok(())
    }

    /// A step run as parts, one thread each through the whole model, gives every sequence the
    /// same logits to the bit as the step run whole, and leaves the same caches: over a ragged
    /// step (prefill rows of uneven lengths) and decode steps.
    #[test]
    fn a_step_run_as_parts_equals_the_step_run_whole() -> Result<()> {
        let (llm, cfg) = tiny_int8(64, 11)?;
        let view = llm.int8_view().expect("int8 view");
        let d = cfg.head_dim();
        let ecg =
            crate::model::encoder::l2_normalize(&Tensor::randn(0f32, 1f32, (2, d), &Device::Cpu)?)?;
        let caches = || -> Result<Vec<SeqCache>> {
            (0..5)
                .map(|_| {
                    let mut c = llm.new_cache(48, false)?;
                    llm.write_prefix(&ecg, &mut c)?;
                    Ok(c)
                })
                .collect()
        };
        let steps: [[&[u32]; 5]; 3] = [
            [&[1, 2, 3], &[4; 9], &[7, 8], &[5], &[6, 1, 2, 3]],
            [&[9], &[10], &[11], &[12], &[13]],
            [&[14], &[15], &[16], &[17], &[18]],
        ];
        // Every step's logits, and the caches after the last, run in `n` parts.
        let run = |n: usize| -> Result<(Vec<Vec<f32>>, Vec<SeqCache>)> {
            let mut cs = caches()?;
            let mut out = Vec::new();
            for toks in &steps {
                let mut inputs: Vec<SeqInput> = cs
                    .iter_mut()
                    .zip(toks)
                    .map(|(cache, &tokens)| SeqInput { tokens, cache })
                    .collect();
                let mut logits = Vec::new();
                llm.forward_int8_parts(&view, &mut inputs, &mut logits, n)?;
                out.push(logits);
            }
            Ok((out, cs))
        };
        let (whole, whole_caches) = run(1)?;
        for n in [2, 3, 5] {
            let (parts, caches) = run(n)?;
            assert_eq!(parts, whole, "{n} parts");
            for (a, b) in whole_caches.iter().zip(&caches) {
                assert_eq!(a.len(), b.len());
                for l in 0..cfg.num_hidden_layers {
                    let (ka, va) = a.view(l, a.len())?;
                    let (kb, vb) = b.view(l, b.len())?;
                    for (x, y) in [(ka, kb), (va, vb)] {
                        let diff = (x - y)?.abs()?.max_all()?.to_scalar::<f32>()?;
                        assert_eq!(diff, 0.0, "{n} parts, layer {l}");
                    }
                }
            }
        }
        Ok(())
    }

    /// Decode steps of 8 to 20 rows a thread run as one part per thread; prefill-sized steps,
    /// too few rows, a single thread or parts that would come out uneven, whole. Parts cover the sequences in order with about
    /// as many rows each.
    #[test]
    fn steps_of_a_few_rows_a_thread_run_as_parts_with_even_rows() -> Result<()> {
        let (llm, _) = tiny_int8(64, 3)?;
        let mut caches: Vec<SeqCache> = (0..41)
            .map(|_| llm.new_cache(8, false))
            .collect::<Result<_>>()?;
        let tok: &[u32] = &[1];
        fn inputs<'a>(caches: &'a mut [SeqCache], k: usize, tok: &'a [u32]) -> Vec<SeqInput<'a>> {
            caches[..k]
                .iter_mut()
                .map(|cache| SeqInput { tokens: tok, cache })
                .collect()
        }
        assert_eq!(step::parts_for(&inputs(&mut caches, 16, tok), 2), 2);
        assert_eq!(step::parts_for(&inputs(&mut caches, 40, tok), 2), 2);
        assert_eq!(step::parts_for(&inputs(&mut caches, 15, tok), 2), 1);
        assert_eq!(step::parts_for(&inputs(&mut caches, 41, tok), 2), 1);
        assert_eq!(step::parts_for(&inputs(&mut caches, 16, tok), 1), 1);
        assert_eq!(step::parts_for(&inputs(&mut caches, 32, tok), 4), 4);
        let long = [2u32; 30];
        let mut mixed = inputs(&mut caches, 3, tok);
        mixed[0].tokens = &long;
        // 32 rows, but 3 sequences of 30, 1 and 1: two parts would be 30 rows and 2
        assert_eq!(step::part_bounds(&mixed, 2), vec![1, 3]);
        assert_eq!(step::parts_for(&mixed, 2), 1);
        // 10 + 10 against 7 + 7: uneven
        let (ten, seven) = ([3u32; 10], [3u32; 7]);
        let mut close = inputs(&mut caches, 4, tok);
        close[0].tokens = &ten;
        close[1].tokens = &ten;
        close[2].tokens = &seven;
        close[3].tokens = &seven;
        assert_eq!(step::part_bounds(&close, 2), vec![2, 4]);
        assert_eq!(step::parts_for(&close, 2), 1);
        close[0].tokens = &seven;
        close[2].tokens = &ten;
        // 7 + 10 against 10 + 7
        assert_eq!(step::parts_for(&close, 2), 2);
        assert_eq!(
            step::part_bounds(&inputs(&mut caches, 17, tok), 2),
            vec![8, 17]
        );
        assert_eq!(
            step::part_bounds(&inputs(&mut caches, 16, tok), 3),
            vec![5, 10, 16]
        );
        Ok(())
    }

    /// A writer into a shared buffer, for capturing log lines in tests.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// With debug logging on for `meit::model::llama::phases`, each int8 forward logs its rows,
    /// its sequences and a time for every phase; with it off, nothing.
    #[test]
    fn int8_forward_logs_its_phases_only_at_debug() -> Result<()> {
        let (llm, _) = tiny_int8(64, 5)?;
        let run = |filter: &str| -> Result<String> {
            let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = buf.clone();
            let sub = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .finish();
            tracing::subscriber::with_default(sub, || -> Result<()> {
                let (mut a, mut b) = (llm.new_cache(40, false)?, llm.new_cache(40, false)?);
                let mut inputs = [
                    SeqInput {
                        tokens: &[1, 2, 3],
                        cache: &mut a,
                    },
                    SeqInput {
                        tokens: &[4; 5],
                        cache: &mut b,
                    },
                ];
                llm.forward(&mut inputs)?;
                Ok(())
            })?;
            let text = buf.lock().expect("sink").clone();
            Ok(String::from_utf8_lossy(&text).into_owned())
        };
        let on = run("meit::model::llama::phases=debug")?;
        assert!(on.contains("forward phases rows=8 sequences=2"), "{on}");
        for field in [
            "qkv_ms",
            "attention_ms",
            "out_ms",
            "gate_up_ms",
            "down_ms",
            "lm_head_ms",
            "other_ms",
        ] {
            assert!(on.contains(&format!(" {field}=")), "{field} missing: {on}");
        }
        let off = run("meit=info")?;
        assert!(!off.contains("forward phases"), "{off}");
        Ok(())
    }

    /// A cache emptied with `reset` after another sequence (the engine reuses finished
    /// sequences' caches) gives exactly the logits of a fresh cache: nothing stale is read.
    #[test]
    fn a_reset_cache_equals_a_fresh_one() -> Result<()> {
        for kv in [KvDtype::F16, KvDtype::I8] {
            reset_cache_equals_a_fresh_one(kv)?;
        }
        Ok(())
    }

    fn reset_cache_equals_a_fresh_one(kv: KvDtype) -> Result<()> {
        // head_dim 64: the AVX-512 attention kernel where present
        let (mut llm, cfg) = tiny_int8(256, 3)?;
        llm.set_kv_dtype(kv);
        let d = cfg.head_dim();
        let ecg = |seed: f32| {
            let v: Vec<f32> = (0..d).map(|i| ((i as f32 + seed) * 0.37).sin()).collect();
            crate::model::encoder::l2_normalize(&Tensor::from_vec(v, (1, d), &Device::Cpu)?)
        };
        let run = |cache: &mut SeqCache, prefix: &Tensor, toks: &[u32]| -> Result<Vec<f32>> {
            llm.write_prefix(prefix, cache)?;
            let mut logits = Vec::new();
            let mut inputs = [SeqInput {
                tokens: toks,
                cache,
            }];
            llm.forward_into(&mut inputs, &mut logits)?;
            for t in [5u32, 9, 2] {
                let mut step = [SeqInput {
                    tokens: &[t],
                    cache: &mut *inputs[0].cache,
                }];
                let mut l = Vec::new();
                llm.forward_into(&mut step, &mut l)?;
                logits.extend(l);
            }
            Ok(logits)
        };
        // A longer first sequence fills slots the second will not reach.
        let mut used = llm.new_cache(48, true)?;
        run(&mut used, &ecg(1.0)?, &[3; 30])?;
        used.reset();
        let reused = run(&mut used, &ecg(2.0)?, &[7, 1, 4])?;
        let fresh = run(&mut llm.new_cache(48, true)?, &ecg(2.0)?, &[7, 1, 4])?;
        assert_eq!(reused, fresh);
        Ok(())
    }
}

//! The differentiable (training) forward of the prefix-fused Llama over a padded batch.
//!
//! Same model as [`Llama::forward`], written with ops that have a backward (candle's fused
//! rms-norm, softmax and RoPE kernels have none: ours wrap the same kernels and add one, see
//! [`super::attn_ops`] and [`super::rms_norm`]): text ids `(B, T)` padded on the right with
//! per-sequence lengths, an optional ECG prefix `(B, P, D)` whose per-layer keys/values are the
//! layer's `k_proj`/`v_proj` of the tiled ECG vectors (no norm, no RoPE, visible to every text
//! query), a causal mask over the text plus a key padding mask, text positions from 0.
//!
//! Every linear layer of a block goes through a [`LinearAdapter`], which is where training adds
//! LoRA (and its dropout); the backbone's own weights are constants ([`frozen_linear`]).
use candle_core::{Device, Tensor};

use super::attn_core::attention_core;
use super::attn_ops::rope;
use super::error::{ModelError, Result};
use super::frozen::frozen_linear;
use super::linear::Linear;
use super::rms_norm::rms_norm;
use super::swiglu::swiglu;
use super::Llama;

/// The linear layers of a block, in the order [`LinearAdapter::linear`] numbers them
/// (the PEFT `target_modules` names).
pub const LINEAR_SLOTS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Additive mask value for hidden keys (finite, so no row can turn into NaN).
const MASKED: f32 = -1e9;

/// Computes linear layer `slot` (index into [`LINEAR_SLOTS`]) of block `layer`.
pub trait LinearAdapter {
    /// `x: (N, in) -> (N, out)`, given the backbone's layer `base`.
    fn linear(&mut self, layer: usize, slot: usize, base: &Linear, x: &Tensor) -> Result<Tensor>;
}

/// The backbone alone (its weights frozen, any unmerged LoRA delta applied as stored).
pub struct Frozen;

impl LinearAdapter for Frozen {
    fn linear(&mut self, _layer: usize, _slot: usize, base: &Linear, x: &Tensor) -> Result<Tensor> {
        if base.lora().is_some() {
            return base.forward(x);
        }
        frozen_linear(x, base.weight())
    }
}

/// A padded training batch.
pub struct TrainInput<'a> {
    /// `(B, T)` u32 token ids, padded on the right.
    pub ids: &'a Tensor,
    /// Text length of each sequence (`<= T`).
    pub lens: &'a [usize],
    /// ECG vectors `(B, P, D)`, or `None` for text only.
    pub prefix: Option<&'a Tensor>,
}

/// Hidden states after the final norm for every text position, `(B*T, E)` (row `b*T + t`).
pub fn forward_train(
    llm: &Llama,
    input: &TrainInput<'_>,
    adapter: &mut dyn LinearAdapter,
) -> Result<Tensor> {
    let cfg = llm.config();
    let (b, t) = input.ids.dims2()?;
    if input.lens.len() != b || input.lens.iter().any(|&l| l == 0 || l > t) {
        return Err(ModelError::Input(format!(
            "lengths {:?} do not fit a batch of {b} x {t}",
            input.lens
        )));
    }
    let (h, d) = (cfg.num_attention_heads, cfg.head_dim());
    let prefix = match input.prefix {
        Some(p) => {
            let (pb, np, pd) = p.dims3()?;
            if pb != b || pd != d {
                return Err(ModelError::Input(format!(
                    "prefix {:?} does not fit batch {b} and head size {d}",
                    p.dims()
                )));
            }
            // (B, P, D) -> (B, P, H*D) -> (B*P, E): each vector tiled H times
            Some((p.repeat((1, 1, h))?.reshape((b * np, h * d))?, np))
        }
        None => None,
    };
    let np = prefix.as_ref().map(|(_, n)| *n).unwrap_or(0);
    let mask = attention_mask(input.lens, t, np, cfg.groups(), llm.device())?;
    // (B*T) -> (B*T, E)
    let ids = input.ids.flatten_all()?;
    let mut x = llm.embed().index_select(&ids, 0)?;
    let eps = cfg.rms_norm_eps as f32;
    for (l, blk) in llm.blocks().iter().enumerate() {
        let hn = rms_norm(&x, &blk.ln_attn, eps)?;
        let q = adapter.linear(l, 0, &blk.q, &hn)?;
        let k = adapter.linear(l, 1, &blk.k, &hn)?;
        let v = adapter.linear(l, 2, &blk.v, &hn)?;
        let pkv = match &prefix {
            Some((tiled, _)) => Some((
                adapter.linear(l, 1, &blk.k, tiled)?,
                adapter.linear(l, 2, &blk.v, tiled)?,
            )),
            None => None,
        };
        let att = attend(llm, b, t, &q, &k, &v, pkv.as_ref(), np, &mask)?;
        x = (x + adapter.linear(l, 3, &blk.o, &att)?)?;
        let hn = rms_norm(&x, &blk.ln_mlp, eps)?;
        let gate = adapter.linear(l, 4, &blk.gate, &hn)?;
        let m = swiglu(&gate, &adapter.linear(l, 5, &blk.up, &hn)?)?;
        x = (x + adapter.linear(l, 6, &blk.down, &m)?)?;
    }
    rms_norm(&x, llm.final_norm(), eps)
}

/// Logits `(N, V)` of normed hidden rows `(N, E)` (the LM head is frozen).
pub fn lm_logits(llm: &Llama, hidden: &Tensor) -> Result<Tensor> {
    frozen_linear(hidden, llm.lm_head().weight())
}

/// Attention of the whole batch. `q: (B*T, H*D)`, `k, v: (B*T, Hkv*D)`, prefix keys/values
/// `(B*P, Hkv*D)`; returns `(B*T, H*D)`.
#[allow(clippy::too_many_arguments)]
fn attend(
    llm: &Llama,
    b: usize,
    t: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    prefix_kv: Option<&(Tensor, Tensor)>,
    np: usize,
    mask: &Tensor,
) -> Result<Tensor> {
    let cfg = llm.config();
    let (h, hkv, d) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    let g = h / hkv;
    let (cos, sin) = llm.rope();
    let cos = cos.narrow(0, 0, t)?;
    let sin = sin.narrow(0, 0, t)?;
    // (B*T, H*D) -> (B, H, T, D), RoPE
    let q = q.reshape((b, t, h, d))?.transpose(1, 2)?.contiguous()?;
    let q = rope(&q, &cos, &sin)?;
    let k = k.reshape((b, t, hkv, d))?.transpose(1, 2)?.contiguous()?;
    let k = rope(&k, &cos, &sin)?;
    // (B*T, Hkv*D) -> (B, Hkv, T, D)
    let v = v.reshape((b, t, hkv, d))?.transpose(1, 2)?;
    let (k, v) = match prefix_kv {
        Some((pk, pv)) => {
            // (B*P, Hkv*D) -> (B, Hkv, P, D)
            let pk = pk.reshape((b, np, hkv, d))?.transpose(1, 2)?;
            let pv = pv.reshape((b, np, hkv, d))?.transpose(1, 2)?;
            (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
        }
        None => (k, v.contiguous()?),
    };
    let l = k.dim(2)?;
    // (B, H, T, D) -> (B*Hkv, g*T, D): query heads j*g..j*g+g share kv head j
    let q = q.contiguous()?.reshape((b * hkv, g * t, d))?;
    let (k, v) = (
        k.contiguous()?.reshape((b * hkv, l, d))?,
        v.contiguous()?.reshape((b * hkv, l, d))?,
    );
    // softmax(s Q K^T + mask) V: (B*Hkv, g*T, D) -> (B, H, T, D) -> (B*T, H*D)
    let out = attention_core(&q, &k, &v, mask, hkv, 1.0 / (d as f32).sqrt())?;
    Ok(out
        .reshape((b, h, t, d))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b * t, h * d))?)
}

/// Additive mask `(B, g*T, P+T)`: text query `t` of sequence `b` sees every prefix slot and
/// text keys `j <= t` with `j < len_b`.
fn attention_mask(lens: &[usize], t: usize, np: usize, g: usize, dev: &Device) -> Result<Tensor> {
    let l = np + t;
    let mut m = Vec::with_capacity(lens.len() * g * t * l);
    for &len in lens {
        for _ in 0..g {
            for q in 0..t {
                m.extend(std::iter::repeat_n(0.0f32, np));
                m.extend((0..t).map(|j| if j <= q && j < len { 0.0 } else { MASKED }));
            }
        }
    }
    Ok(Tensor::from_vec(m, (lens.len(), g * t, l), dev)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kv::SeqCache;
    use crate::model::tiny::tiny_backbone;
    use crate::model::{LlamaConfig, SeqInput};

    #[test]
    fn matches_inference_forward_on_a_ragged_padded_batch() -> Result<()> {
        let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(64), 3)?;
        let llm = Llama::load(&w, &cfg, &Device::Cpu)?;
        let dev = Device::Cpu;
        let d = llm.config().head_dim();
        let seqs: [Vec<u32>; 2] = [vec![1, 5, 9, 3, 7, 2], vec![4, 8, 15]];
        let prefix =
            crate::model::encoder::l2_normalize(&Tensor::randn(0f32, 1f32, (2, 2, d), &dev)?)?;
        // inference: each sequence alone, last-token logits
        let mut want = Vec::new();
        for (i, s) in seqs.iter().enumerate() {
            let mut c: SeqCache = llm.new_cache(16, true)?;
            llm.write_prefix(&prefix.get(i)?, &mut c)?;
            let lg = llm.forward(&mut [SeqInput {
                tokens: s,
                cache: &mut c,
            }])?;
            want.push(lg.flatten_all()?.to_vec1::<f32>()?);
        }
        let t = 6;
        let mut ids = Vec::new();
        for s in &seqs {
            ids.extend(s.iter().copied().chain(std::iter::repeat(0)).take(t));
        }
        let ids = Tensor::from_vec(ids, (2, t), &dev)?;
        let hidden = forward_train(
            &llm,
            &TrainInput {
                ids: &ids,
                lens: &[6, 3],
                prefix: Some(&prefix),
            },
            &mut Frozen,
        )?;
        let logits = lm_logits(&llm, &hidden)?;
        for (i, s) in seqs.iter().enumerate() {
            let got = logits.get(i * t + s.len() - 1)?.to_vec1::<f32>()?;
            let diff = got
                .iter()
                .zip(&want[i])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "sequence {i}: logits differ by {diff}");
        }
        Ok(())
    }
}

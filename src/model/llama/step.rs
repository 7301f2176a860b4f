//! One step of the int8 model on the CPU, on slices: the same arithmetic as the tensor path
//! (same kernels, same order), with the activations in buffers kept between steps instead of
//! a few dozen tensors allocated, zeroed and copied per layer, and each residual add fused
//! with the norm that follows it.
use candle_core::Tensor;

use super::phases::{Phase, PhaseClock};
use super::{FusedInt8, Heads, Llama, SeqInput};
use crate::model::act::silu_mul_row;
use crate::model::error::{ModelError, Result};
use crate::model::par::OutPtr;
use crate::model::qmatmul::Q8Matrix;
use crate::model::rms_norm::{norm_row, rms_norm_into};

/// Activation buffers of a step; they only grow.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    x: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    gu: Vec<f32>,
}

/// `buf` with at least `len` elements, as a slice of exactly `len`.
fn take(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// The int8 copies a slice step needs, when every layer has them.
pub(super) struct Int8View<'a> {
    blocks: Vec<(&'a FusedInt8, &'a Q8Matrix, &'a Q8Matrix)>,
    lm_head: &'a Q8Matrix,
}

impl Llama {
    /// The int8 copies of every layer (fused q/k/v and gate/up, o, down) and the LM head, on
    /// the CPU; `None` when the model is not fully int8 (f32, LoRA unmerged, other devices).
    pub(super) fn int8_view(&self) -> Option<Int8View<'_>> {
        if !self.device.is_cpu() {
            return None;
        }
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Some((
                    b.fused.as_ref()?,
                    b.o.int8_for_all_rows()?,
                    b.down.int8_for_all_rows()?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Int8View {
            blocks,
            lm_head: self.lm_head.int8_for_all_rows()?,
        })
    }

    /// [`Llama::forward`] on slices: logits `(B, V)` of each sequence's last new token, into
    /// `logits` (resized; every element written).
    pub(super) fn forward_int8(
        &self,
        view: &Int8View<'_>,
        seqs: &mut [SeqInput<'_>],
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let mut ids = Vec::new();
        for s in seqs.iter_mut() {
            if s.tokens.is_empty() {
                return Err(ModelError::Input("a sequence brought no tokens".into()));
            }
            s.cache.reserve(s.tokens.len())?;
            ids.extend_from_slice(s.tokens);
        }
        let n = ids.len();
        let heads = Heads {
            h: self.cfg.num_attention_heads,
            hkv: self.cfg.num_key_value_heads,
            d: self.cfg.head_dim(),
        };
        let (e, ekv, i) = (
            heads.h * heads.d,
            heads.hkv * heads.d,
            self.cfg.intermediate_size,
        );
        let eps = self.cfg.rms_norm_eps as f32;
        let mut guard = self
            .scratch
            .lock()
            .map_err(|_| ModelError::Input("step buffers poisoned by an earlier panic".into()))?;
        let sc = &mut *guard;
        let emb = self
            .embed
            .index_select(&Tensor::from_vec(ids, n, &self.device)?, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let x = take(&mut sc.x, n * e);
        x.copy_from_slice(&emb);
        let (q, k, v) = (
            take(&mut sc.q, n * e),
            take(&mut sc.k, n * ekv),
            take(&mut sc.v, n * ekv),
        );
        let (att, tmp) = (take(&mut sc.att, n * e), take(&mut sc.tmp, n * e));
        let gu = take(&mut sc.gu, n * 2 * i);
        let mut clock = PhaseClock::start();
        // The residual adds, the norms and SwiGLU produce the rows of the product that takes
        // them (`matmul_rows`): they run on its threads as its quantization pass reaches each
        // row, and the normalised rows are never stored.
        let xp = OutPtr(x.as_mut_ptr());
        // Row `r` of the residual stream, after `x += add` (the last sublayer's output).
        let residual = |r: usize, add: Option<&[f32]>| {
            // SAFETY: each row index is handed to one call of the quantization pass, which
            // writes only this row of `x`; nothing else reads `x` during the product.
            let xr = unsafe { xp.slice(r * e, e) };
            if let Some(add) = add {
                xr.iter_mut()
                    .zip(&add[r * e..(r + 1) * e])
                    .for_each(|(x, a)| *x += a);
            }
            &*xr
        };
        for (l, &(f, o, down)) in view.blocks.iter().enumerate() {
            clock.lap(Phase::Other);
            // x += the previous layer's MLP output (none before the first layer), then its norm
            let add = (l > 0).then_some(&*tmp);
            f.qkv.matmul_rows_into(
                n,
                |r, row| norm_row(residual(r, add), &f.ln_attn, eps, row),
                [&mut *q, &mut *k, &mut *v],
            );
            clock.lap(Phase::Qkv);
            self.attend_rows(l, heads, seqs, q, k, v, att)?;
            clock.lap(Phase::Attention);
            o.matmul(att, n, tmp);
            clock.lap(Phase::Out);
            let add = Some(&*tmp);
            f.gate_up.matmul_rows(
                n,
                |r, row| norm_row(residual(r, add), &f.ln_mlp, eps, row),
                gu,
            );
            clock.lap(Phase::GateUp);
            let gu = &*gu;
            down.matmul_rows(
                n,
                |r, row| silu_mul_row(&gu[r * 2 * i..(r + 1) * 2 * i], row),
                tmp,
            );
            clock.lap(Phase::Down);
        }
        x.iter_mut().zip(&*tmp).for_each(|(x, t)| *x += t);
        for s in seqs.iter_mut() {
            s.cache.advance(s.tokens.len());
        }
        clock.lap(Phase::Other);
        // The last new row of each sequence, final norm, LM head.
        let b = seqs.len();
        let mut last = Vec::with_capacity(b * e);
        let mut off = 0;
        for s in seqs.iter() {
            off += s.tokens.len();
            last.extend_from_slice(&x[(off - 1) * e..off * e]);
        }
        let norm = self.norm.flatten_all()?.to_vec1::<f32>()?;
        let mut hl = vec![0f32; b * e];
        rms_norm_into(&last, &norm, eps, &mut hl);
        let vocab = view.lm_head.dims().0;
        // Only growth is zeroed; the matmul writes every element.
        logits.resize(b * vocab, 0.0);
        view.lm_head.matmul(&hl, b, logits);
        clock.lap(Phase::LmHead);
        clock.log(n, b);
        Ok(())
    }
}

//! One step of the int8 model on the CPU, on slices: the same arithmetic as the tensor path
//! (same kernels, same order), with the activations in buffers kept between steps instead of
//! a few dozen tensors allocated, zeroed and copied per layer, and each residual add fused
//! with the norm that follows it.
use std::sync::Mutex;

use candle_core::Tensor;

use super::phases::{Phase, PhaseClock};
use super::{FusedInt8, Heads, Llama, SeqInput};
use crate::model::act::silu_mul_row;
use crate::model::error::{ModelError, Result};
use crate::model::par::{pool_threads, run_parts, OutPtr};
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

/// Rows per thread from which a step runs as parts, one per thread (see
/// [`Llama::forward_int8_parts`]), rather than splitting each kernel's columns across the
/// threads. At 16-32 rows on two threads the layers' products took 1-10% less time so (every
/// thread reads all the weights, the second mostly from the shared cache), and a decode step
/// does 1 join instead of about 150; at 8 rows (4 a thread) twice the weight traffic cost 40%.
const PART_MIN_ROWS: usize = 8;
/// Rows per thread up to which a step runs as parts: from 48 rows the split by columns keeps
/// each tile's sums in registers over all blocks (prefill), and 24 rows a thread were 3% slower
/// as parts.
const PART_MAX_ROWS: usize = 20;

/// How many parts a step of `seqs` runs as on `threads` threads: one per thread for
/// [`PART_MIN_ROWS`] to [`PART_MAX_ROWS`] rows a thread (decode steps of a batch) when every
/// sequence's new tokens take the fused attention and the parts come out even (no part more
/// than a quarter, or one row, above the smallest: a step waits for its largest part, where
/// the column split shares every product evenly), else 1.
pub(super) fn parts_for(seqs: &[SeqInput<'_>], threads: usize) -> usize {
    let rows: usize = seqs.iter().map(|s| s.tokens.len()).sum();
    let fits = threads >= 2
        && seqs.len() >= threads
        && (PART_MIN_ROWS * threads..=PART_MAX_ROWS * threads).contains(&rows)
        && seqs
            .iter()
            .all(|s| s.tokens.len() <= super::FUSED_ATTENTION_MAX_QUERIES);
    if !fits {
        return 1;
    }
    let mut start = 0;
    let sizes: Vec<usize> = part_bounds(seqs, threads)
        .into_iter()
        .map(|end| {
            let rows = seqs[start..end].iter().map(|s| s.tokens.len()).sum();
            start = end;
            rows
        })
        .collect();
    let (least, most) = (
        sizes.iter().copied().min().unwrap_or(0),
        sizes.iter().copied().max().unwrap_or(0),
    );
    if most <= least + (least / 4).max(1) {
        threads
    } else {
        1
    }
}

/// Ends of `parts` runs of consecutive sequences with about as many rows each (every run at
/// least one sequence; `parts <= seqs.len()`): run `j` ends at the first sequence whose rows
/// so far reach `j + 1` parts' share, or earlier where the runs after it need a sequence each.
pub(super) fn part_bounds(seqs: &[SeqInput<'_>], parts: usize) -> Vec<usize> {
    let rows: usize = seqs.iter().map(|s| s.tokens.len()).sum();
    let mut ends = Vec::with_capacity(parts);
    let (mut sum, mut start) = (0, 0);
    for j in 0..parts {
        let target = rows * (j + 1) / parts;
        let last = seqs.len() - (parts - 1 - j);
        let mut end = start + 1;
        sum += seqs[start].tokens.len();
        while end < last && sum < target {
            sum += seqs[end].tokens.len();
            end += 1;
        }
        if j + 1 == parts {
            end = seqs.len();
        }
        ends.push(end);
        start = end;
    }
    ends
}

fn poisoned() -> ModelError {
    ModelError::Input("step buffers poisoned by an earlier panic".into())
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
    /// `logits` (resized; every element written). Steps of a few rows per thread run as
    /// [`parts_for`] parts side by side (see there); others split every kernel across the
    /// threads.
    pub(super) fn forward_int8(
        &self,
        view: &Int8View<'_>,
        seqs: &mut [SeqInput<'_>],
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let parts = parts_for(seqs, pool_threads());
        self.forward_int8_parts(view, seqs, logits, parts)
    }

    /// [`Self::forward_int8`] in `parts` parts of consecutive sequences with about as many rows
    /// each, every part on its own thread through the whole model, its kernels inline. A row's
    /// arithmetic does not depend on the rows beside it, so the logits are the same to the bit
    /// whatever `parts`.
    pub(super) fn forward_int8_parts(
        &self,
        view: &Int8View<'_>,
        seqs: &mut [SeqInput<'_>],
        logits: &mut Vec<f32>,
        parts: usize,
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
        let e = self.cfg.hidden_size;
        // Tensor operations stay on this thread, before any part starts.
        let emb = self
            .embed
            .index_select(&Tensor::from_vec(ids, n, &self.device)?, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let norm = self.norm.flatten_all()?.to_vec1::<f32>()?;
        let b = seqs.len();
        let vocab = view.lm_head.dims().0;
        let mut hl = vec![0f32; b * e];
        let parts = parts.clamp(1, b.max(1));
        let mut guard = self.scratch.lock().map_err(|_| poisoned())?;
        if guard.len() < parts {
            guard.resize_with(parts, Scratch::default);
        }
        let mut clock = if parts == 1 {
            self.forward_part(view, seqs, &emb, &norm, &mut hl, &mut guard[0])?
        } else {
            self.run_as_parts(view, seqs, &emb, &norm, &mut hl, &mut guard[..parts])?
        };
        // One LM head over every sequence's row, its columns split across the threads: as
        // parts, each thread read the whole head for its rows.
        // Only growth is zeroed; the LM head writes every element.
        logits.resize(b * vocab, 0.0);
        view.lm_head.matmul(&hl, b, logits);
        clock.lap(Phase::LmHead);
        clock.log(n, b);
        Ok(())
    }

    /// [`Self::forward_part`] on one part of `seqs` per buffer set of `scratch`, side by side;
    /// returns the first part's clock (its phases, then the wait for the others).
    fn run_as_parts(
        &self,
        view: &Int8View<'_>,
        seqs: &mut [SeqInput<'_>],
        emb: &[f32],
        norm: &[f32],
        hl: &mut [f32],
        scratch: &mut [Scratch],
    ) -> Result<PhaseClock> {
        let e = self.cfg.hidden_size;
        // Cut the sequences, their embeddings and their last rows into the parts.
        let bounds = part_bounds(seqs, scratch.len());
        let mut work = Vec::with_capacity(bounds.len());
        let (mut seqs, mut emb, mut out) = (seqs, emb, hl);
        let mut scratch = scratch.iter_mut();
        let mut at = 0;
        for end in bounds {
            let rows: usize = seqs[..end - at].iter().map(|s| s.tokens.len()).sum();
            let (s, s_rest) = std::mem::take(&mut seqs).split_at_mut(end - at);
            let (x, x_rest) = emb.split_at(rows * e);
            let (o, o_rest) = std::mem::take(&mut out).split_at_mut((end - at) * e);
            (seqs, emb, out) = (s_rest, x_rest, o_rest);
            work.push(Mutex::new(Some((s, x, o, scratch.next()))));
            at = end;
        }
        let done: Vec<Mutex<Option<Result<PhaseClock>>>> =
            work.iter().map(|_| Mutex::new(None)).collect();
        run_parts(work.len(), |t| {
            let Some((seqs, emb, out, Some(sc))) = work[t].lock().ok().and_then(|mut w| w.take())
            else {
                return;
            };
            let r = self.forward_part(view, seqs, emb, norm, out, sc);
            if let Ok(mut d) = done[t].lock() {
                *d = Some(r);
            }
        });
        let mut first = None;
        for d in done {
            match d.into_inner().map_err(|_| poisoned())? {
                Some(Ok(clock)) => {
                    first.get_or_insert(clock);
                }
                Some(Err(e)) => return Err(e),
                None => return Err(poisoned()),
            }
        }
        first.ok_or_else(poisoned)
    }

    /// The layers on `seqs` (caches reserved) whose new tokens' embeddings are `emb`, and the
    /// final norm of each sequence's last new row into `hl` (`B * E`); returns the clock of its
    /// phases so far.
    fn forward_part(
        &self,
        view: &Int8View<'_>,
        seqs: &mut [SeqInput<'_>],
        emb: &[f32],
        norm: &[f32],
        hl: &mut [f32],
        sc: &mut Scratch,
    ) -> Result<PhaseClock> {
        let n: usize = seqs.iter().map(|s| s.tokens.len()).sum();
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
        let x = take(&mut sc.x, n * e);
        x.copy_from_slice(emb);
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
        rms_norm_into(&last, norm, eps, hl);
        Ok(clock)
    }
}

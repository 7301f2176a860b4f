//! Greedy report generation with the model being trained (LoRA unmerged, encoder in eval mode),
//! for generation metrics on a few validation examples. It reruns the training forward over the
//! whole sequence for every new token (no KV cache): fine for a handful of short reports.
use candle_core::{Tensor, D};

use crate::model::train_forward::{forward_train, lm_logits, TrainInput};
use crate::model::Llama;

use super::error::Result;
use super::lora::LoraSet;

/// Greedy continuation of `prompt` after the ECG `prefix: (1, P, D)`; stops at a `stop` id (not
/// included) or after `max_new` tokens.
pub fn greedy_report(
    llm: &Llama,
    lora: &LoraSet,
    prefix: &Tensor,
    prompt: &[u32],
    stop: &[u32],
    max_new: usize,
) -> Result<Vec<u32>> {
    let mut seq = prompt.to_vec();
    let mut out = Vec::new();
    for _ in 0..max_new {
        let n = seq.len();
        let ids = Tensor::from_slice(&seq, (1, n), llm.device())?;
        let hidden = forward_train(
            llm,
            &TrainInput {
                ids: &ids,
                lens: &[n],
                prefix: Some(prefix),
            },
            &mut lora.adapter(None),
        )?;
        // last position only: (1, E) -> (1, V)
        let logits = lm_logits(llm, &hidden.narrow(0, n - 1, 1)?)?;
        let id = logits.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?[0];
        if stop.contains(&id) {
            break;
        }
        out.push(id);
        seq.push(id);
    }
    Ok(out)
}

//! Tokenised examples with label masking, and padded batches.
//!
//! Prompt: the backbone's chat template of the instruction (system + user + assistant header).
//! Target: the report followed by `<|im_end|>`. Only target tokens carry loss: the hidden state at
//! position `t` predicts token `t + 1`, so the labelled positions are
//! `prompt_len - 1 ..= len - 2`, one per target token.
use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::model::{chat, tokenizer};

use super::error::{Result, TrainError};

/// One tokenised example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Prompt tokens then target tokens.
    pub ids: Vec<u32>,
    pub prompt_len: usize,
}

impl Encoded {
    /// Tokens that carry loss.
    pub fn targets(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }
}

/// Tokenises `instruction` / `report`; the target (report + `<|im_end|>`) is cut so the whole
/// example fits `max_len` tokens (a cut target loses its `<|im_end|>`, as HF truncation does).
pub fn encode_example(
    tok: &Tokenizer,
    instruction: &str,
    report: &str,
    max_len: usize,
) -> Result<Encoded> {
    let prompt = tokenizer::encode(tok, &chat::user_prompt(instruction))?;
    let mut target = tokenizer::encode(tok, report)?;
    target.push(tokenizer::token_id(tok, "<|im_end|>")?);
    if prompt.len() + 1 > max_len {
        return Err(TrainError::Config(format!(
            "max length {max_len} leaves no room for a report after a prompt of {} tokens",
            prompt.len()
        )));
    }
    target.truncate(max_len - prompt.len());
    let prompt_len = prompt.len();
    let mut ids = prompt;
    ids.extend(target);
    Ok(Encoded { ids, prompt_len })
}

/// A padded batch ready for the training forward.
pub struct Batch {
    /// `(B, T)` u32, right-padded with 0.
    pub ids: Tensor,
    pub lens: Vec<usize>,
    /// Rows `b*T + t` of the `(B*T, E)` hidden states that predict a target token.
    pub label_rows: Tensor,
    /// The token each labelled row predicts.
    pub targets: Tensor,
    /// Labelled tokens in the batch.
    pub n_targets: usize,
}

pub fn collate(examples: &[&Encoded], dev: &Device) -> Result<Batch> {
    let b = examples.len();
    let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    if b == 0 || t == 0 {
        return Err(TrainError::Config("empty batch".into()));
    }
    let mut ids = Vec::with_capacity(b * t);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut lens = Vec::with_capacity(b);
    for (i, e) in examples.iter().enumerate() {
        let n = e.ids.len();
        ids.extend(e.ids.iter().copied().chain(std::iter::repeat(0)).take(t));
        lens.push(n);
        for pos in e.prompt_len.saturating_sub(1)..n - 1 {
            rows.push((i * t + pos) as u32);
            targets.push(e.ids[pos + 1]);
        }
    }
    let n_targets = rows.len();
    Ok(Batch {
        ids: Tensor::from_vec(ids, (b, t), dev)?,
        lens,
        label_rows: Tensor::from_vec(rows, n_targets, dev)?,
        targets: Tensor::from_vec(targets, n_targets, dev)?,
        n_targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_exactly_the_target_tokens() -> Result<()> {
        let a = Encoded {
            ids: vec![10, 11, 12, 20, 21, 2],
            prompt_len: 3,
        };
        let b = Encoded {
            ids: vec![10, 11, 30, 2],
            prompt_len: 2,
        };
        let batch = collate(&[&a, &b], &Device::Cpu)?;
        assert_eq!(batch.ids.dims(), &[2, 6]);
        assert_eq!(batch.n_targets, a.targets().len() + b.targets().len());
        assert_eq!(batch.label_rows.to_vec1::<u32>()?, vec![2, 3, 4, 7, 8]);
        assert_eq!(batch.targets.to_vec1::<u32>()?, vec![20, 21, 2, 30, 2]);
        Ok(())
    }
}

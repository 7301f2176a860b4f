//! Deterministic test backend and a tiny byte-level tokenizer (no files, no network).
//!
//! Logits are derived from a hash of (ECG content, all tokens of the sequence), so the same
//! request always gives the same text and different ECGs give different text. The preferred
//! token is always a lowercase letter, space or full stop, or EOS with a configurable chance.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenizers::Tokenizer;

use super::backend::{Backend, BackendError};

/// Special tokens of the test tokenizer, at SmolLM2's ids.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const BYTE_OFFSET: u32 = 3;
const ECG_LEN: usize = 12 * 5000;

/// GPT-2 byte-to-unicode table used by byte-level BPE.
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// Byte-level BPE without merges: every byte is one token (ids 3..259), plus the special
/// tokens `<|endoftext|>`=0, `<|im_start|>`=1, `<|im_end|>`=2 as added tokens.
pub fn test_tokenizer() -> Tokenizer {
    let mut vocab = serde_json::Map::new();
    for (i, s) in SPECIAL_TOKENS.iter().enumerate() {
        vocab.insert(s.to_string(), (i as u32).into());
    }
    for (b, c) in byte_chars().into_iter().enumerate() {
        vocab.insert(c.to_string(), (b as u32 + BYTE_OFFSET).into());
    }
    let added: Vec<serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []}
    });
    match json.to_string().parse::<Tokenizer>() {
        Ok(t) => t,
        Err(e) => panic!("test tokenizer is invalid: {e}"),
    }
}

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub prefix_slots: usize,
    /// Chance per step (in 1/1000) that EOS is the preferred token; 0 = never.
    pub eos_per_mille: u64,
    /// Sleep per forward call (to make streams last in tests).
    pub step_delay: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            prefix_slots: 1,
            eos_per_mille: 0,
            step_delay: Duration::ZERO,
        }
    }
}

struct MockSeq {
    ecg_hash: u64,
    tokens: Vec<u32>,
}

pub struct MockBackend {
    cfg: MockConfig,
    vocab: usize,
    eos: u32,
    seqs: HashMap<u64, MockSeq>,
    live: Arc<AtomicUsize>,
    preallocated: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl MockBackend {
    pub fn new(tokenizer: &Tokenizer, cfg: MockConfig) -> Self {
        Self {
            cfg,
            vocab: tokenizer.get_vocab_size(true),
            eos: tokenizer.token_to_id("<|im_end|>").unwrap_or(0),
            seqs: HashMap::new(),
            live: Arc::new(AtomicUsize::new(0)),
            preallocated: Arc::default(),
        }
    }

    /// The `(sequences, slots)` of every `preallocate` call so far (shared, readable from
    /// tests).
    pub fn preallocations(&self) -> Arc<Mutex<Vec<(usize, usize)>>> {
        self.preallocated.clone()
    }

    /// Number of sequences the backend currently holds (shared, readable from tests).
    pub fn live_sequences(&self) -> Arc<AtomicUsize> {
        self.live.clone()
    }
}

impl Backend for MockBackend {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn prefix_slots(&self) -> usize {
        self.cfg.prefix_slots
    }

    fn add_sequence(
        &mut self,
        id: u64,
        ecg: Option<&[f32]>,
        _slots: usize,
    ) -> Result<(), BackendError> {
        if self.seqs.contains_key(&id) {
            return Err(BackendError::InvalidInput(format!("sequence {id} exists")));
        }
        let mut h = DefaultHasher::new();
        if let Some(ecg) = ecg {
            if ecg.len() != ECG_LEN {
                return Err(BackendError::InvalidInput(format!(
                    "ECG must have {ECG_LEN} values, got {}",
                    ecg.len()
                )));
            }
            ecg.iter().for_each(|v| v.to_bits().hash(&mut h));
        }
        let seq = MockSeq {
            ecg_hash: h.finish(),
            tokens: Vec::new(),
        };
        self.seqs.insert(id, seq);
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn forward(&mut self, batch: &[(u64, &[u32])], out: &mut Vec<f32>) -> Result<(), BackendError> {
        if !self.cfg.step_delay.is_zero() {
            std::thread::sleep(self.cfg.step_delay);
        }
        out.clear();
        for (id, tokens) in batch {
            if tokens.is_empty() || tokens.iter().any(|t| *t as usize >= self.vocab) {
                return Err(BackendError::InvalidInput(format!("bad tokens for {id}")));
            }
            let seq = self
                .seqs
                .get_mut(id)
                .ok_or(BackendError::UnknownSequence(*id))?;
            seq.tokens.extend_from_slice(tokens);
            let mut h = DefaultHasher::new();
            seq.ecg_hash.hash(&mut h);
            seq.tokens.hash(&mut h);
            let r = h.finish();
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz .";
            let pick = |x: u64| ALPHABET[(x % ALPHABET.len() as u64) as usize] as u32 + BYTE_OFFSET;
            let mut logits = vec![-5.0f32; self.vocab];
            logits[pick(r >> 20) as usize] = 5.0;
            let first = if r % 1000 < self.cfg.eos_per_mille {
                self.eos
            } else {
                pick(r >> 8)
            };
            logits[first as usize] = 10.0;
            out.extend_from_slice(&logits);
        }
        Ok(())
    }

    fn remove_sequence(&mut self, id: u64) {
        if self.seqs.remove(&id).is_some() {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn preallocate(&mut self, sequences: usize, slots: usize) -> Result<(), BackendError> {
        if let Ok(mut p) = self.preallocated.lock() {
            p.push((sequences, slots));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_round_trips_and_keeps_specials() {
        let t = test_tokenizer();
        let text = "<|im_start|>user\nhé<|im_end|>\n";
        let ids = t.encode(text, false).expect("encode").get_ids().to_vec();
        assert_eq!(ids[0], 1);
        assert!(ids.contains(&2));
        assert_eq!(t.decode(&ids, false).expect("decode"), text);
        assert_eq!(t.get_vocab_size(true), 259);
    }

    #[test]
    fn different_ecgs_give_different_logits() {
        let t = test_tokenizer();
        let mut b = MockBackend::new(&t, MockConfig::default());
        let a = vec![0.0; ECG_LEN];
        let mut c = a.clone();
        c[5] = 1.0;
        b.add_sequence(1, Some(&a), 16).expect("add");
        b.add_sequence(2, Some(&c), 16).expect("add");
        let run = |b: &mut MockBackend, id| {
            (0..8u32)
                .map(|i| {
                    let mut l = vec![1.0; 3];
                    b.forward(&[(id, &[i + 10][..])], &mut l).expect("fwd");
                    assert_eq!(l.len(), b.vocab_size(), "one row, the old contents gone");
                    l.iter().position(|x| *x == 10.0)
                })
                .collect::<Vec<_>>()
        };
        assert_ne!(run(&mut b, 1), run(&mut b, 2));
        assert!(b.forward(&[(9, &[1][..])], &mut Vec::new()).is_err());
    }
}

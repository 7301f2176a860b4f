//! `trainer score`: report-generation metrics on a JSONL file of
//! `{"id", "candidate", "references": [...]}` pairs, printed as JSON. BERTScore is included
//! unless `--no-bertscore`; it needs the all-MiniLM-L6-v2 files, fetched on first use.
use std::path::PathBuf;

use crate::metrics::{parse_jsonl, score_all_full, BertScorer, MetricsError};

#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// JSONL of `{"id", "candidate", "references"}` objects.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Batch size of MEIT's per-batch averaging (0 = the whole file as one batch).
    #[arg(long, default_value_t = 0)]
    pub meit_batch_size: usize,
    /// Skip BERTScore (it needs the all-MiniLM-L6-v2 model, fetched with pip on first use).
    #[arg(long)]
    pub no_bertscore: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Pairs {
        path: PathBuf,
        #[source]
        source: MetricsError,
    },
    #[error("BERTScore failed (use --no-bertscore to skip it)")]
    BertScore(#[source] MetricsError),
}

pub fn run(args: &ScoreArgs) -> Result<serde_json::Value, ScoreError> {
    let text = std::fs::read_to_string(&args.pairs).map_err(|source| ScoreError::Io {
        path: args.pairs.clone(),
        source,
    })?;
    let pairs = parse_jsonl(&text).map_err(|source| ScoreError::Pairs {
        path: args.pairs.clone(),
        source,
    })?;
    let scorer = if args.no_bertscore {
        None
    } else {
        Some(BertScorer::load().map_err(ScoreError::BertScore)?)
    };
    score_all_full(&pairs, args.meit_batch_size, scorer.as_ref()).map_err(ScoreError::BertScore)
}

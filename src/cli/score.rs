//! `trainer score`: report-generation metrics on a JSONL file of
//! `{"id", "candidate", "references": [...]}` pairs, printed as JSON.
use std::path::PathBuf;

use crate::metrics::{parse_jsonl, score_all_with_batch, MetricsError};

#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// JSONL of `{"id", "candidate", "references"}` objects.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Batch size of MEIT's per-batch averaging (0 = the whole file as one batch).
    #[arg(long, default_value_t = 0)]
    pub meit_batch_size: usize,
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
    Ok(score_all_with_batch(&pairs, args.meit_batch_size))
}

//! `trainer prepare`: builds the instruction dataset (JSONL) from PTB-XL or MIMIC-IV-ECG and
//! prints its statistics, translation coverage included.
use std::path::PathBuf;

use crate::train::data::{prepare_mimic, prepare_ptbxl, write_jsonl, DataError, Stats};

#[derive(Debug, Clone, clap::Args)]
pub struct PrepareArgs {
    /// PTB-XL root (`ptbxl_database.csv`, `scp_statements.csv`, `records500/`).
    #[arg(long, conflicts_with = "mimic")]
    pub ptbxl: Option<PathBuf>,
    /// MIMIC-IV-ECG root (`record_list.csv`, `machine_measurements.csv`).
    #[arg(long)]
    pub mimic: Option<PathBuf>,
    /// Output JSONL (one example per line).
    #[arg(long, default_value = "data/instructions.jsonl")]
    pub out: PathBuf,
    /// Seed of the instruction sampling (and of the MIMIC patient split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("give --ptbxl DIR or --mimic DIR")]
    NoSource,
}

/// Runs `prepare`; returns the stats (also written next to the JSONL as `.stats.json`).
pub fn run(args: &PrepareArgs) -> Result<Stats, PrepareError> {
    let (examples, stats) = match (&args.ptbxl, &args.mimic) {
        (Some(root), _) => prepare_ptbxl(root, args.seed)?,
        (None, Some(root)) => prepare_mimic(root, args.seed)?,
        (None, None) => return Err(PrepareError::NoSource),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_jsonl(&args.out, &examples)?;
    let stats_path = args.out.with_extension("stats.json");
    let json = serde_json::to_string_pretty(&stats).unwrap_or_default();
    std::fs::write(&stats_path, json).map_err(|source| DataError::Io {
        path: stats_path,
        source,
    })?;
    Ok(stats)
}

/// Human-readable summary of the stats.
pub fn summary(s: &Stats) -> String {
    let mut out = format!(
        "rows {}  examples {}  skipped {}\nper split: {:?}\nper language: {:?}\n",
        s.rows_total, s.examples, s.skipped, s.per_split, s.per_language
    );
    out.push_str(&format!(
        "translation coverage, training examples: {}/{} fully translated = {:.2}%\n",
        s.coverage_train.fully_translated,
        s.coverage_train.reports,
        100.0 * s.coverage_train.share
    ));
    out.push_str(&format!(
        "translation coverage, all metadata rows: {}/{} = {:.2}%\n",
        s.coverage_all.fully_translated,
        s.coverage_all.reports,
        100.0 * s.coverage_all.share
    ));
    out.push_str(&format!(
        "top untranslated words: {:?}\n",
        s.top_untranslated
    ));
    out.push_str(&format!(
        "report length (words): mean {:.1}, max {}",
        s.mean_report_words, s.max_report_words
    ));
    out
}

//! The PTB-XL side of the benchmark: the test fold (fold 10) with English references and
//! ground-truth statements, the training folds (1-8) for the baselines, and signal loading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::signal::{self, TARGET_LEN};
use crate::train::data::ptbxl::{Ptbxl, PtbxlRow, ScpStatement};
use crate::train::data::Translator;

use super::EvalError;

/// PTB-XL's recommended test fold.
pub const TEST_FOLD: u8 = 10;
/// Training folds (1..=8).
pub const TRAIN_FOLDS: std::ops::RangeInclusive<u8> = 1..=8;

/// One PTB-XL record of the benchmark.
#[derive(Debug, Clone)]
pub struct PtbxlRecord {
    /// `filename_hr` (e.g. `records500/00000/00009_hr`).
    pub record: String,
    pub ecg_id: u32,
    /// English report (translated where needed).
    pub reference: String,
    /// Ground-truth statements (`scp_codes` keys, any likelihood).
    pub scp: BTreeSet<String>,
}

/// What the benchmark needs from PTB-XL.
#[derive(Debug, Clone)]
pub struct PtbxlSet {
    pub root: PathBuf,
    pub statements: Vec<ScpStatement>,
    /// Test fold, records on disk, in `ecg_id` order.
    pub test: Vec<PtbxlRecord>,
    /// Training folds, records on disk (retrieval candidates).
    pub train_on_disk: Vec<PtbxlRecord>,
    /// English reports of every training-fold row of the database (on disk or not).
    pub train_reports: Vec<String>,
    /// Every database row, as (English report, statements), for the mapper's own check.
    pub all_rows: Vec<(String, BTreeSet<String>)>,
}

fn to_record(row: &PtbxlRow, t: &Translator) -> PtbxlRecord {
    PtbxlRecord {
        record: row.filename_hr.clone(),
        ecg_id: row.ecg_id,
        reference: t.translate(&row.report).english,
        scp: row.scp_codes.iter().map(|(c, _)| c.clone()).collect(),
    }
}

impl PtbxlSet {
    /// Loads the CSVs, translates the reports and lists the records on disk.
    pub fn load(root: &Path) -> Result<Self, EvalError> {
        let data = Ptbxl::load(root)?;
        let t = Translator::builtin();
        let on_disk = data.on_disk();
        let test = on_disk
            .iter()
            .filter(|r| r.strat_fold == TEST_FOLD)
            .map(|r| to_record(r, t))
            .collect();
        let train_on_disk = on_disk
            .iter()
            .filter(|r| TRAIN_FOLDS.contains(&r.strat_fold))
            .map(|r| to_record(r, t))
            .collect();
        let all: Vec<PtbxlRecord> = data.rows.iter().map(|r| to_record(r, t)).collect();
        let train_reports = data
            .rows
            .iter()
            .zip(&all)
            .filter(|(r, _)| TRAIN_FOLDS.contains(&r.strat_fold))
            .map(|(_, a)| a.reference.clone())
            .collect();
        Ok(PtbxlSet {
            root: root.to_path_buf(),
            statements: data.statements,
            test,
            train_on_disk,
            train_reports,
            all_rows: all.into_iter().map(|a| (a.reference, a.scp)).collect(),
        })
    }

    /// The preprocessed `12 x 5000` input of a record.
    pub fn signal(&self, rec: &PtbxlRecord) -> Result<Vec<f32>, EvalError> {
        let raw = signal::read_wfdb(&self.root.join(&rec.record)).map_err(|source| {
            EvalError::Signal {
                record: rec.record.clone(),
                source,
            }
        })?;
        let ecg = signal::preprocess(&raw).map_err(|source| EvalError::Signal {
            record: rec.record.clone(),
            source,
        })?;
        debug_assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
        Ok(ecg.data)
    }
}

/// The most frequent report (ties: the lexicographically smallest, for determinism).
pub fn mode_report(reports: &[String]) -> Option<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in reports {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let max = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == max)
        .map(|(r, _)| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_deterministic() {
        let v: Vec<String> = ["b", "a", "b", "a", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(mode_report(&v).as_deref(), Some("a"));
        assert_eq!(mode_report(&[]), None);
    }
}

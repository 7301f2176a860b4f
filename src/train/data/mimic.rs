//! MIMIC-IV-ECG loader: `record_list.csv` + `machine_measurements.csv` (`report_0..report_17`),
//! reports joined and cleaned as MEIT does, split by patient (never by record).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::csvio::CsvFile;
use super::dataset::Split;
use super::error::DataError;

pub const RECORD_LIST_CSV: &str = "record_list.csv";
pub const MACHINE_MEASUREMENTS_CSV: &str = "machine_measurements.csv";
/// `report_0` .. `report_17`.
pub const REPORT_COLUMNS: usize = 18;

/// One MIMIC-IV-ECG study with its cleaned machine report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimicRecord {
    pub subject_id: u64,
    pub study_id: u64,
    /// Record path relative to the root, without extension (`path` column).
    pub path: String,
    pub ecg_time: String,
    /// Cleaned report (see [`clean_report`]).
    pub report: String,
    /// Non-empty raw report parts, in order.
    pub report_parts: Vec<String>,
}

/// MEIT's report text: non-empty parts in order joined with ". ", "EKG" -> "ECG", "***" and
/// "=" removed, lower-cased, whitespace collapsed.
pub fn clean_report<S: AsRef<str>>(parts: &[S]) -> String {
    let joined = parts
        .iter()
        .map(|p| p.as_ref().trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(". ");
    let cleaned = joined
        .replace("EKG", "ECG")
        .replace("***", "")
        .replace('=', "");
    cleaned
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Loads both tables under `root` and joins them on `study_id`. Studies without a
/// measurement row or with an empty report are skipped (counted in the second value).
pub fn load(root: &Path) -> Result<(Vec<MimicRecord>, usize), DataError> {
    let reports = load_reports(&root.join(MACHINE_MEASUREMENTS_CSV))?;
    let list_path = root.join(RECORD_LIST_CSV);
    let csv = CsvFile::open(&list_path)?;
    let subject = csv.column("subject_id")?;
    let study = csv.column("study_id")?;
    let ecg_time = csv.column("ecg_time")?;
    let path = csv.column("path")?;
    let mut records = Vec::new();
    let mut skipped = 0;
    csv.for_each(|row| {
        let study_id: u64 = row.parse(study, "study_id")?;
        let subject_id: u64 = row.parse(subject, "subject_id")?;
        let rel = row.get(path).trim().trim_end_matches(".hea").to_string();
        if rel.is_empty() {
            return Err(row.field_error(path, "path", "empty record path"));
        }
        match reports.get(&study_id) {
            Some((parts, report_subject)) if !parts.is_empty() => {
                if *report_subject != subject_id {
                    return Err(row.field_error(
                        subject,
                        "subject_id",
                        format!("study {study_id} belongs to subject {report_subject} in {MACHINE_MEASUREMENTS_CSV}"),
                    ));
                }
                records.push(MimicRecord {
                    subject_id,
                    study_id,
                    path: rel,
                    ecg_time: row.get(ecg_time).trim().to_string(),
                    report: clean_report(parts),
                    report_parts: parts.clone(),
                });
            }
            _ => skipped += 1,
        }
        Ok(())
    })?;
    Ok((records, skipped))
}

/// `study_id -> (non-empty report parts, subject_id)` from `machine_measurements.csv`.
fn load_reports(path: &Path) -> Result<HashMap<u64, (Vec<String>, u64)>, DataError> {
    let csv = CsvFile::open(path)?;
    let subject = csv.column("subject_id")?;
    let study = csv.column("study_id")?;
    let columns = (0..REPORT_COLUMNS)
        .map(|i| csv.column(&format!("report_{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = HashMap::new();
    csv.for_each(|row| {
        let study_id: u64 = row.parse(study, "study_id")?;
        let subject_id: u64 = row.parse(subject, "subject_id")?;
        let parts: Vec<String> = columns
            .iter()
            .map(|&c| row.get(c).trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if out.insert(study_id, (parts, subject_id)).is_some() {
            return Err(row.field_error(study, "study_id", "duplicate study_id"));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Patient-level split: unique subjects sorted, shuffled with `StdRng::seed_from_u64(seed)`,
/// first 80% train, next 10% validation, rest test.
pub fn split_subjects(subjects: impl IntoIterator<Item = u64>, seed: u64) -> HashMap<u64, Split> {
    let mut unique: Vec<u64> = subjects
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    unique.shuffle(&mut StdRng::seed_from_u64(seed));
    let n = unique.len();
    let (train_end, val_end) = (n * 8 / 10, n * 9 / 10);
    unique
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let split = if i < train_end {
                Split::Train
            } else if i < val_end {
                Split::Validation
            } else {
                Split::Test
            };
            (s, split)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_meit() {
        // MEIT keeps the space left where "***" was removed ("quality . qrs").
        let parts = [
            "Sinus rhythm",
            "",
            "  Abnormal EKG  ",
            "*** Poor data quality ***",
            "QRS = 90",
        ];
        assert_eq!(
            clean_report(&parts),
            "sinus rhythm. abnormal ecg. poor data quality . qrs 90"
        );
        assert_eq!(clean_report::<&str>(&[]), "");
    }

    #[test]
    fn split_is_deterministic_and_proportional() {
        let a = split_subjects(0..1000u64, 42);
        assert_eq!(a, split_subjects((0..1000u64).rev(), 42));
        let count = |s| a.values().filter(|&&v| v == s).count();
        assert_eq!(
            (
                count(Split::Train),
                count(Split::Validation),
                count(Split::Test)
            ),
            (800, 100, 100)
        );
        assert_ne!(a, split_subjects(0..1000u64, 43));
    }
}

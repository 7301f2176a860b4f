//! PTB-XL loader: `ptbxl_database.csv` (all rows) + `scp_statements.csv`, records present on
//! disk (`<root>/<filename_hr>.hea`), folds 1-8 train / 9 validation / 10 test.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::csvio::CsvFile;
use super::dataset::Split;
use super::error::DataError;

/// Database file name under the PTB-XL root.
pub const DATABASE_CSV: &str = "ptbxl_database.csv";
/// SCP statement table under the PTB-XL root.
pub const SCP_STATEMENTS_CSV: &str = "scp_statements.csv";

/// One row of `ptbxl_database.csv` (the columns the trainer needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtbxlRow {
    pub ecg_id: u32,
    pub patient_id: Option<u32>,
    /// Original report text (German, Swedish or English), as stored.
    pub report: String,
    /// SCP codes with likelihoods, e.g. `[("NORM", 100.0), ("SR", 0.0)]`.
    pub scp_codes: Vec<(String, f32)>,
    pub strat_fold: u8,
    /// 100 Hz record path relative to the root, without extension.
    pub filename_lr: String,
    /// 500 Hz record path relative to the root, without extension.
    pub filename_hr: String,
}

impl PtbxlRow {
    /// Split recommended by PTB-XL for this row's fold.
    pub fn split(&self) -> Split {
        split_for_fold(self.strat_fold)
    }
}

/// One row of `scp_statements.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScpStatement {
    pub code: String,
    pub description: String,
    pub diagnostic: bool,
    pub form: bool,
    pub rhythm: bool,
    pub diagnostic_class: Option<String>,
    pub diagnostic_subclass: Option<String>,
}

/// PTB-XL as found under a root directory.
#[derive(Debug, Clone)]
pub struct Ptbxl {
    pub root: PathBuf,
    /// Every row of the database (21,837 in v1.0.1), on disk or not.
    pub rows: Vec<PtbxlRow>,
    pub statements: Vec<ScpStatement>,
}

impl Ptbxl {
    /// Loads both CSV files under `root`.
    pub fn load(root: &Path) -> Result<Self, DataError> {
        Ok(Ptbxl {
            root: root.to_path_buf(),
            rows: load_database(&root.join(DATABASE_CSV))?,
            statements: load_scp_statements(&root.join(SCP_STATEMENTS_CSV))?,
        })
    }

    /// Rows whose 500 Hz header `<root>/<filename_hr>.hea` exists.
    pub fn on_disk(&self) -> Vec<&PtbxlRow> {
        self.rows
            .iter()
            .filter(|r| self.root.join(format!("{}.hea", r.filename_hr)).is_file())
            .collect()
    }
}

/// PTB-XL's recommended split: folds 1-8 train, 9 validation, 10 test.
pub fn split_for_fold(fold: u8) -> Split {
    match fold {
        9 => Split::Validation,
        10 => Split::Test,
        _ => Split::Train,
    }
}

/// Reads every row of `ptbxl_database.csv`.
pub fn load_database(path: &Path) -> Result<Vec<PtbxlRow>, DataError> {
    let csv = CsvFile::open(path)?;
    let ecg_id = csv.column("ecg_id")?;
    let patient_id = csv.column("patient_id")?;
    let report = csv.column("report")?;
    let scp_codes = csv.column("scp_codes")?;
    let strat_fold = csv.column("strat_fold")?;
    let filename_lr = csv.column("filename_lr")?;
    let filename_hr = csv.column("filename_hr")?;
    let mut rows = Vec::new();
    csv.for_each(|row| {
        let fold: u8 = row.parse(strat_fold, "strat_fold")?;
        if !(1..=10).contains(&fold) {
            return Err(row.field_error(strat_fold, "strat_fold", "fold must be 1..=10"));
        }
        let pid = row.get(patient_id).trim();
        let patient = if pid.is_empty() {
            None
        } else {
            let v: f64 = row.parse(patient_id, "patient_id")?;
            if !(v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX)) {
                return Err(row.field_error(
                    patient_id,
                    "patient_id",
                    "not a non-negative integer",
                ));
            }
            Some(v as u32)
        };
        let codes = parse_scp_codes(row.get(scp_codes))
            .map_err(|m| row.field_error(scp_codes, "scp_codes", m))?;
        let hr = row.get(filename_hr).trim().to_string();
        if hr.is_empty() {
            return Err(row.field_error(filename_hr, "filename_hr", "empty"));
        }
        rows.push(PtbxlRow {
            ecg_id: row.parse(ecg_id, "ecg_id")?,
            patient_id: patient,
            report: row.get(report).to_string(),
            scp_codes: codes,
            strat_fold: fold,
            filename_lr: row.get(filename_lr).trim().to_string(),
            filename_hr: hr,
        });
        Ok(())
    })?;
    Ok(rows)
}

/// Reads `scp_statements.csv` (first, unnamed column = code).
pub fn load_scp_statements(path: &Path) -> Result<Vec<ScpStatement>, DataError> {
    let csv = CsvFile::open(path)?;
    let code = csv.column("")?;
    let description = csv.column("description")?;
    let diagnostic = csv.column("diagnostic")?;
    let form = csv.column("form")?;
    let rhythm = csv.column("rhythm")?;
    let class = csv.optional_column("diagnostic_class");
    let subclass = csv.optional_column("diagnostic_subclass");
    let mut out = Vec::new();
    csv.for_each(|row| {
        let flag = |i: usize| !row.get(i).trim().is_empty() && row.get(i).trim() != "0.0";
        let opt = |i: Option<usize>| {
            i.map(|i| row.get(i).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let c = row.get(code).trim().to_string();
        if c.is_empty() {
            return Err(row.field_error(code, "code", "empty SCP code"));
        }
        out.push(ScpStatement {
            code: c,
            description: row.get(description).trim().to_string(),
            diagnostic: flag(diagnostic),
            form: flag(form),
            rhythm: flag(rhythm),
            diagnostic_class: opt(class),
            diagnostic_subclass: opt(subclass),
        });
        Ok(())
    })?;
    Ok(out)
}

/// Parses PTB-XL's Python dict literal, e.g. `{'NORM': 100.0, 'SR': 0.0}`.
pub fn parse_scp_codes(text: &str) -> Result<Vec<(String, f32)>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("expected a {...} dict literal")?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|item| {
            let (key, value) = item
                .split_once(':')
                .ok_or_else(|| format!("no ':' in {item:?}"))?;
            let key = key.trim();
            let key = key
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .ok_or_else(|| format!("key {key:?} is not a quoted string"))?;
            let value: f32 = value
                .trim()
                .parse()
                .map_err(|e| format!("value {:?} of {key}: {e}", value.trim()))?;
            Ok((key.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scp_codes() {
        assert_eq!(
            parse_scp_codes("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}").expect("ok"),
            vec![
                ("NORM".into(), 100.0),
                ("LVOLT".into(), 0.0),
                ("SR".into(), 0.0)
            ]
        );
        assert_eq!(parse_scp_codes("{}").expect("ok"), vec![]);
        assert!(parse_scp_codes("NORM: 1").is_err());
        assert!(parse_scp_codes("{'NORM': x}").is_err());
    }

    #[test]
    fn folds_map_to_splits() {
        assert_eq!(split_for_fold(1), Split::Train);
        assert_eq!(split_for_fold(8), Split::Train);
        assert_eq!(split_for_fold(9), Split::Validation);
        assert_eq!(split_for_fold(10), Split::Test);
    }
}

//! Training examples (record + instruction + English report), their JSONL form and the
//! `prepare_*` entry points that build them with statistics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::instructions::sample_instruction;
use super::translate::{Coverage, Language, Translator};
use super::{mimic, ptbxl};

/// Train / validation / test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Which data set an example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Ptbxl,
    Mimic,
}

/// One instruction-tuning example (one JSONL line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Record path relative to the data root, without extension.
    pub record: String,
    pub instruction: String,
    /// English report (translated where needed): the training target.
    pub report: String,
    /// Report as stored in the data set.
    pub report_original: String,
    /// PTB-XL `strat_fold` (1..=10); 0 for MIMIC.
    pub fold: u8,
    pub split: Split,
    pub source: Source,
    /// `ecg_id` (PTB-XL) or `study_id` (MIMIC).
    pub id: u64,
    /// `patient_id` (PTB-XL) or `subject_id` (MIMIC).
    pub subject: Option<u64>,
    pub language: Language,
    /// No German/Swedish word left in `report`.
    pub fully_translated: bool,
}

/// Figures about a prepared data set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Rows in the metadata (PTB-XL: all database rows; MIMIC: record list rows kept).
    pub rows_total: usize,
    /// Examples produced (PTB-XL: records on disk).
    pub examples: usize,
    /// Rows skipped (MIMIC: no measurement row or empty report).
    pub skipped: usize,
    pub per_split: BTreeMap<Split, usize>,
    pub per_language: BTreeMap<Language, usize>,
    /// Translation coverage over the training examples.
    pub coverage_train: Coverage,
    /// Translation coverage over all metadata rows (PTB-XL: all 21,837 reports).
    pub coverage_all: Coverage,
    /// 20 most frequent untranslated words over all rows.
    pub top_untranslated: Vec<(String, usize)>,
    /// Mean / max length of the English reports of the examples, in words.
    pub mean_report_words: f64,
    pub max_report_words: usize,
}

/// Builds PTB-XL examples for the records present under `root`; instructions are sampled
/// with `StdRng::seed_from_u64(seed)` in `ecg_id` order.
pub fn prepare_ptbxl(root: &Path, seed: u64) -> Result<(Vec<Example>, Stats), DataError> {
    let data = ptbxl::Ptbxl::load(root)?;
    let on_disk = data.on_disk();
    if on_disk.is_empty() {
        return Err(DataError::Empty {
            path: root.to_path_buf(),
            message: "no PTB-XL record header (<filename_hr>.hea) found".to_string(),
        });
    }
    let translator = Translator::builtin();
    let mut rng = StdRng::seed_from_u64(seed);
    let examples: Vec<Example> = on_disk
        .iter()
        .map(|row| {
            let t = translator.translate(&row.report);
            Example {
                record: row.filename_hr.clone(),
                instruction: sample_instruction(&mut rng).to_string(),
                report: t.english,
                report_original: row.report.clone(),
                fold: row.strat_fold,
                split: row.split(),
                source: Source::Ptbxl,
                id: u64::from(row.ecg_id),
                subject: row.patient_id.map(u64::from),
                language: t.language,
                fully_translated: t.fully_translated,
            }
        })
        .collect();
    let coverage_all = translator.coverage(data.rows.iter().map(|r| r.report.as_str()), 20);
    let mut stats = stats_for(&examples, translator, data.rows.len(), coverage_all);
    stats.skipped = data.rows.len() - examples.len();
    Ok((examples, stats))
}

/// Builds MIMIC-IV-ECG examples from `record_list.csv` + `machine_measurements.csv` under
/// `root`, split by subject (see [`mimic::split_subjects`]).
pub fn prepare_mimic(root: &Path, seed: u64) -> Result<(Vec<Example>, Stats), DataError> {
    let (records, skipped) = mimic::load(root)?;
    if records.is_empty() {
        return Err(DataError::Empty {
            path: root.to_path_buf(),
            message: "no MIMIC-IV-ECG study with a non-empty report".to_string(),
        });
    }
    let splits = mimic::split_subjects(records.iter().map(|r| r.subject_id), seed);
    let translator = Translator::builtin();
    let mut rng = StdRng::seed_from_u64(seed);
    let examples: Vec<Example> = records
        .iter()
        .map(|r| {
            let t = translator.translate(&r.report);
            Example {
                record: r.path.clone(),
                instruction: sample_instruction(&mut rng).to_string(),
                report: r.report.clone(),
                report_original: r.report_parts.join(" | "),
                fold: 0,
                split: splits.get(&r.subject_id).copied().unwrap_or(Split::Train),
                source: Source::Mimic,
                id: r.study_id,
                subject: Some(r.subject_id),
                language: t.language,
                fully_translated: t.fully_translated,
            }
        })
        .collect();
    let coverage_all = translator.coverage(examples.iter().map(|e| e.report.as_str()), 20);
    let mut stats = stats_for(&examples, translator, records.len() + skipped, coverage_all);
    stats.skipped = skipped;
    Ok((examples, stats))
}

fn stats_for(
    examples: &[Example],
    translator: &Translator,
    rows_total: usize,
    coverage_all: Coverage,
) -> Stats {
    let mut stats = Stats {
        rows_total,
        examples: examples.len(),
        top_untranslated: coverage_all.top_untranslated.clone(),
        coverage_all,
        ..Stats::default()
    };
    let mut total_words = 0usize;
    for e in examples {
        *stats.per_split.entry(e.split).or_default() += 1;
        *stats.per_language.entry(e.language).or_default() += 1;
        let n = e.report.split_whitespace().count();
        total_words += n;
        stats.max_report_words = stats.max_report_words.max(n);
    }
    stats.mean_report_words = if examples.is_empty() {
        0.0
    } else {
        total_words as f64 / examples.len() as f64
    };
    let train = examples
        .iter()
        .filter(|e| e.split == Split::Train)
        .map(|e| e.report_original.as_str());
    stats.coverage_train = if examples.first().is_some_and(|e| e.source == Source::Mimic) {
        translator.coverage(
            examples
                .iter()
                .filter(|e| e.split == Split::Train)
                .map(|e| e.report.as_str()),
            20,
        )
    } else {
        translator.coverage(train, 20)
    };
    stats
}

/// Writes one JSON object per line.
pub fn write_jsonl(path: &Path, examples: &[Example]) -> Result<(), DataError> {
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut out = BufWriter::new(file);
    for (i, e) in examples.iter().enumerate() {
        serde_json::to_writer(&mut out, e).map_err(|err| DataError::Line {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            message: err.to_string(),
        })?;
        out.write_all(b"\n").map_err(|e| DataError::io(path, e))?;
    }
    out.flush().map_err(|e| DataError::io(path, e))
}

/// Reads examples written by [`write_jsonl`] (blank lines ignored).
pub fn read_jsonl(path: &Path) -> Result<Vec<Example>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| DataError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|err| DataError::Line {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            message: err.to_string(),
        })?);
    }
    Ok(out)
}

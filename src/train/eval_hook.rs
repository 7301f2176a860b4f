//! Generation metrics on the validation split (METEOR) for model selection.
//!
//! At every evaluation the trainer generates greedy reports for the first validation examples
//! and logs their score as `val_meteor` next to `val_loss`. Two ways to generate:
//! - [`Generation::InProcess`]: the model being trained (LoRA unmerged), rerunning the training
//!   forward for every token. No extra memory; slow, so for tiny runs and tests.
//! - [`Generation::Saved`]: the adapter is saved at the evaluation and a [`SavedAdapterGenerator`]
//!   (the serving engine, with LoRA merged, KV cache and batched decoding) writes the reports.
use std::path::Path;
use std::sync::Arc;

use super::error::Result;

/// Scores generated reports against reference reports (higher is better).
pub trait ReportScorer {
    /// Name used in the log (`val_meteor` expects "meteor").
    fn name(&self) -> &'static str;
    fn score(&self, hypotheses: &[String], references: &[String]) -> f64;
}

/// One validation example to write a report for.
#[derive(Debug, Clone)]
pub struct ValidationItem {
    pub record: String,
    /// Chat prompt ids (instruction in the backbone's template), without the report.
    pub prompt: Vec<u32>,
    /// The preprocessed ECG (`12 * 5000`, lead-major).
    pub ecg: Arc<Vec<f32>>,
}

/// Writes greedy reports with an adapter saved on disk (in the PEFT layout the server loads).
pub trait SavedAdapterGenerator {
    fn generate(
        &mut self,
        adapter_dir: &Path,
        items: &[ValidationItem],
        max_new: usize,
    ) -> Result<Vec<String>>;
}

/// How validation reports are generated.
pub enum Generation {
    InProcess,
    Saved(Box<dyn SavedAdapterGenerator>),
}

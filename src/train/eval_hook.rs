//! Hook for generation metrics on the validation split (METEOR for model selection).
//!
//! The metrics module lands in a separate branch; until then the trainer computes validation
//! loss only. Plug a scorer in with `Trainer::set_scorer` once METEOR exists.

/// Scores generated reports against reference reports (higher is better).
pub trait ReportScorer {
    /// Name used in the log (`val_meteor` expects "meteor").
    fn name(&self) -> &'static str;
    fn score(&self, hypotheses: &[String], references: &[String]) -> f64;
}

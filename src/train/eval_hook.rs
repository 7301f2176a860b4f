//! Hook for generation metrics on the validation split (METEOR for model selection).
//!
//! The metrics module lands in a separate branch. Once METEOR exists, implement this trait for it
//! and plug it in with `Trainer::set_scorer(scorer, tokenizer, samples, max_new)`: at every
//! evaluation the trainer then generates greedy reports for the first `samples` validation
//! examples and logs the score as `val_meteor` next to `val_loss`. Without a scorer the trainer
//! selects on validation loss only.

/// Scores generated reports against reference reports (higher is better).
pub trait ReportScorer {
    /// Name used in the log (`val_meteor` expects "meteor").
    fn name(&self) -> &'static str;
    fn score(&self, hypotheses: &[String], references: &[String]) -> f64;
}

//! The model seen by the engine. The real (candle) model implements [`Backend`]; tests use
//! [`super::mock::MockBackend`]. Only the engine thread ever touches a backend.

/// Errors a backend reports. The engine fails the affected sequences with them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("unknown sequence {0}")]
    UnknownSequence(u64),
    #[error("invalid backend input: {0}")]
    InvalidInput(String),
    #[error("model failure: {0}")]
    Model(String),
}

pub trait Backend: Send + 'static {
    fn vocab_size(&self) -> usize;
    /// ECG prefix slots per sequence (P) — counts toward the sequence's KV usage.
    fn prefix_slots(&self) -> usize;
    /// Create a sequence's cache, computing the ECG prefix K/V from a preprocessed 12x5000
    /// lead-major signal (None = plain text chat). `slots` is how many cache slots the
    /// sequence can fill (prefix, prompt and `max_tokens`): a hint for the first allocation.
    fn add_sequence(
        &mut self,
        id: u64,
        ecg: Option<&[f32]>,
        slots: usize,
    ) -> Result<(), BackendError>;
    /// One forward over a ragged batch: each entry appends its tokens to that sequence's cache
    /// (prefill chunk or one decode token) and gets the logits of its last token, written to
    /// `logits` as `batch.len()` rows of `vocab_size` (the caller's buffer, reused across
    /// steps: a 16-sequence step has 3 MB of logits).
    fn forward(
        &mut self,
        batch: &[(u64, &[u32])],
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError>;
    fn remove_sequence(&mut self, id: u64);
    /// Make room for `sequences` sequences of up to `slots` cache slots each ahead of time (at
    /// start-up), so a burst of new requests does not wait on memory allocation. The default
    /// does nothing.
    fn preallocate(&mut self, sequences: usize, slots: usize) -> Result<(), BackendError> {
        let _ = (sequences, slots);
        Ok(())
    }
}

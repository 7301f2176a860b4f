//! Model-level events sent from the engine thread to the one consumer of a sequence.
//! They are deliberately not shaped like any HTTP API; `http` maps them.

use std::time::Duration;

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// EOS token or a stop string (the stop string itself is not emitted).
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The server shut down before the sequence finished (grace deadline passed).
    Shutdown,
}

impl FinishReason {
    /// Stable label used on the wire by `/v1/ecg/report`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Shutdown => "shutdown",
        }
    }
}

/// Token counts of a finished sequence. `completion_tokens` counts sampled tokens, EOS included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// Latencies measured from the moment `submit` accepted the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub queue: Duration,
    /// None if no token was generated.
    pub ttft: Option<Duration>,
    pub total: Duration,
}

#[derive(Debug, Clone)]
pub struct Finish {
    pub reason: FinishReason,
    /// Text held back (possible stop-string prefix) and released at the end; may be empty.
    pub tail: String,
    pub usage: Usage,
    pub timings: Timings,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// One sampled token (not sent for EOS) and the text it made final (may be empty while text
    /// is held back for UTF-8 completion or a possible stop string).
    Token { id: u32, text: String },
    /// Last event of a successful sequence.
    Finished(Finish),
    /// Last event of a failed sequence (backend error).
    Failed(String),
}

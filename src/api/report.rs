//! `/v1/ecg/report`: request, response and stream event types.

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;
use utoipa::ToSchema;

use super::ecg::EcgInput;
use super::error::ApiError;
use super::sampling::{tokenize_prompt, SamplingInput, StopInput};
use super::Prepared;
use crate::engine::{Finish, GenerateRequest};
use crate::model::chat::{render, ChatMessage};
use crate::settings::LimitSettings;

/// Instruction used when the request gives none.
/// MEIT's instruction (the first of the training paraphrases).
pub use crate::train::data::DEFAULT_INSTRUCTION;

/// Object names on the wire.
pub const REPORT_OBJECT: &str = "ecg.report";
pub const REPORT_CHUNK_OBJECT: &str = "ecg.report.chunk";

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ReportRequest {
    pub ecg: EcgInput,
    /// Instruction given to the model (default: `DEFAULT_INSTRUCTION`).
    #[serde(default)]
    pub instruction: Option<String>,
    /// 1..=limits.max_tokens_limit (default limits.default_max_tokens).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// 0..=2, 0 = greedy (default 0).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// (0, 1] (default 1).
    #[serde(default)]
    pub top_p: Option<f64>,
    /// >= 0, 0 = off (default off).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Seed of the request's sampler (default random).
    #[serde(default)]
    pub seed: Option<i64>,
    /// (0, 10], 1 = off (default 1).
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
    /// Stop strings (not included in the report).
    #[serde(default)]
    pub stop: Option<StopInput>,
    /// Server-sent events instead of one JSON response (default false).
    #[serde(default)]
    pub stream: bool,
}

impl ReportRequest {
    /// Validate, preprocess the ECG and tokenize the prompt (CPU work: run off the runtime).
    pub fn prepare(
        self,
        tokenizer: &Tokenizer,
        limits: &LimitSettings,
    ) -> Result<Prepared, ApiError> {
        let sampling = SamplingInput {
            max_tokens: self.max_tokens.map(|v| ("max_tokens", v)),
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            repetition_penalty: self.repetition_penalty,
            stop: self.stop,
        }
        .validate(limits, 0.0)?;
        let instruction = self
            .instruction
            .unwrap_or_else(|| DEFAULT_INSTRUCTION.to_string());
        if instruction.trim().is_empty() {
            return Err(ApiError::value(
                "instruction",
                "instruction must not be empty, got \"\"",
            ));
        }
        let ecg = self.ecg.preprocess("ecg")?;
        let text = render(
            &[ChatMessage {
                role: "user".into(),
                content: instruction,
            }],
            true,
        );
        let prompt = tokenize_prompt(tokenizer, &text, "instruction", limits)?;
        Ok(Prepared {
            request: GenerateRequest {
                prompt,
                ecg: Some(ecg),
                sampling: sampling.params,
                max_tokens: sampling.max_tokens,
                stop: sampling.stop,
            },
            stream: self.stream,
            include_usage: true,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UsageBody {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl UsageBody {
    pub fn from_finish(f: &Finish) -> Self {
        Self {
            prompt_tokens: f.usage.prompt_tokens,
            completion_tokens: f.usage.completion_tokens,
            total_tokens: f.usage.prompt_tokens + f.usage.completion_tokens,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TimingsBody {
    /// Submit to admission by the scheduler.
    pub queue_ms: f64,
    /// Submit to first token (null if none was generated).
    pub ttft_ms: Option<f64>,
    /// Submit to finish.
    pub total_ms: f64,
}

impl TimingsBody {
    pub fn from_finish(f: &Finish) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        Self {
            queue_ms: ms(f.timings.queue),
            ttft_ms: f.timings.ttft.map(ms),
            total_ms: ms(f.timings.total),
        }
    }
}

/// Non-streaming answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportResponse {
    pub id: String,
    /// Always `ecg.report`.
    pub object: String,
    pub created: u64,
    pub model: String,
    pub report: String,
    /// `stop` (EOS or stop string), `length` (max_tokens) or `shutdown` (server stopping).
    pub finish_reason: String,
    pub usage: UsageBody,
    pub timings: TimingsBody,
}

/// One SSE event of a streamed report. Text events carry `delta`; the last event has
/// `finish_reason`, `usage` and `timings`; the stream then ends with `data: [DONE]`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportChunk {
    pub id: String,
    /// Always `ecg.report.chunk`.
    pub object: String,
    pub created: u64,
    pub model: String,
    pub delta: String,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<TimingsBody>,
}

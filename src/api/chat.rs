//! OpenAI-compatible `/v1/chat/completions` types. An ECG is a content part
//! `{"type": "input_ecg", "input_ecg": ECG}` of a user message (at most one per request).

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;
use utoipa::ToSchema;

use super::ecg::EcgInput;
use super::error::ApiError;
use super::report::UsageBody;
use super::sampling::{tokenize_prompt, SamplingInput, StopInput};
use super::Prepared;
use crate::engine::GenerateRequest;
use crate::model::chat::{render, ChatMessage};
use crate::settings::LimitSettings;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Accepted and echoed; the server serves one model.
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessageIn>,
    /// Deprecated OpenAI name of `max_completion_tokens`.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// 0..=2 (default 1).
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Extension: >= 0, 0 = off.
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub seed: Option<i64>,
    /// Extension: (0, 10], 1 = off.
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
    #[serde(default)]
    pub stop: Option<StopInput>,
    /// Must be 1.
    #[serde(default)]
    pub n: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with empty `choices` and the `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessageIn {
    /// `system`, `developer` (treated as system), `user` or `assistant`.
    pub role: String,
    #[schema(value_type = Option<MessageContent>)]
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

/// A message's content: a string or an array of parts (documentation type).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    InputEcg { input_ecg: EcgInput },
}

fn part_from_value(v: serde_json::Value, path: &str) -> Result<ContentPart, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let param = if inner == "." {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        ApiError::InvalidBody {
            message: format!("{param}: {}", e.inner()),
            param: Some(param),
        }
    })
}

impl ChatCompletionRequest {
    pub fn prepare(
        self,
        tokenizer: &Tokenizer,
        limits: &LimitSettings,
    ) -> Result<Prepared, ApiError> {
        if let Some(n) = self.n.filter(|n| *n != 1) {
            return Err(ApiError::value("n", format!("n must be 1, got {n}")));
        }
        if self.messages.is_empty() {
            return Err(ApiError::value(
                "messages",
                "messages must have at least 1 entry, got 0",
            ));
        }
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(v), _) => Some(("max_completion_tokens", v)),
            (None, Some(v)) => Some(("max_tokens", v)),
            (None, None) => None,
        };
        let sampling = SamplingInput {
            max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            repetition_penalty: self.repetition_penalty,
            stop: self.stop,
        }
        .validate(limits, 1.0)?;
        let mut ecg: Option<(String, EcgInput)> = None;
        let mut rendered = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::value(
                        format!("messages[{i}].role"),
                        format!(
                            "messages[{i}].role must be one of system, developer, user, assistant, got {other:?}"
                        ),
                    ))
                }
            };
            let mut text = String::new();
            match m.content {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) => text = s,
                Some(serde_json::Value::Array(parts)) => {
                    for (j, p) in parts.into_iter().enumerate() {
                        let path = format!("messages[{i}].content[{j}]");
                        match part_from_value(p, &path)? {
                            ContentPart::Text { text: t } => text.push_str(&t),
                            ContentPart::InputEcg { input_ecg } => {
                                if role != "user" {
                                    return Err(ApiError::value(
                                        path,
                                        format!("input_ecg parts are only allowed in user messages, got one in a {role} message"),
                                    ));
                                }
                                if let Some((first, _)) = &ecg {
                                    return Err(ApiError::value(
                                        path,
                                        format!("at most 1 input_ecg part per request, got a second one (the first is {first})"),
                                    ));
                                }
                                ecg = Some((format!("{path}.input_ecg"), input_ecg));
                            }
                        }
                    }
                }
                Some(other) => {
                    return Err(ApiError::InvalidBody {
                        param: Some(format!("messages[{i}].content")),
                        message: format!(
                            "messages[{i}].content must be a string or an array of content parts, got {}",
                            json_kind(&other)
                        ),
                    })
                }
            }
            rendered.push(ChatMessage {
                role: role.to_string(),
                content: text,
            });
        }
        let ecg = match ecg {
            Some((path, e)) => Some(e.preprocess(&path)?),
            None => None,
        };
        let prompt = tokenize_prompt(tokenizer, &render(&rendered, true), "messages", limits)?;
        Ok(Prepared {
            request: GenerateRequest {
                prompt,
                ecg,
                sampling: sampling.params,
                max_tokens: sampling.max_tokens,
                stop: sampling.stop,
            },
            stream: self.stream,
            include_usage: self.stream_options.is_some_and(|o| o.include_usage),
        })
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionResponse {
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: UsageBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatChoice {
    pub index: u32,
    pub message: ChatMessageOut,
    /// `stop` or `length` (a shutdown-truncated answer reports `length`).
    pub finish_reason: String,
    pub logprobs: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatMessageOut {
    pub role: String,
    pub content: String,
}

/// One `chat.completion.chunk` SSE event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// Only on the last chunk when `stream_options.include_usage` is set (`choices` empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    pub finish_reason: Option<String>,
    pub logprobs: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ChunkDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

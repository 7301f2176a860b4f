//! API-level errors. Each has a stable `code` (JSON body `code` and the metrics `reason` label)
//! and an OpenAI error `type`; `http::error` maps them to status codes.

use crate::engine::SubmitError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Body is not valid JSON (syntax / EOF).
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON of the wrong shape (type mismatch, missing field).
    #[error("{message}")]
    InvalidBody {
        param: Option<String>,
        message: String,
    },
    /// A value outside its bounds.
    #[error("{message}")]
    InvalidValue { param: String, message: String },
    /// The ECG object was rejected by the signal layer.
    #[error("{param}: {message}")]
    InvalidEcg { param: String, message: String },
    #[error("{param} has {prompt_tokens} tokens, the limit is {limit}")]
    PromptTooLong {
        param: String,
        prompt_tokens: usize,
        limit: usize,
    },
    #[error("Content-Type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Engine(#[from] SubmitError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn value(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidValue {
            param: param.into(),
            message: message.into(),
        }
    }

    /// OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "authentication_error",
            ApiError::NotFound(_) => "not_found_error",
            ApiError::Engine(SubmitError::QueueFull { .. }) => "rate_limit_error",
            ApiError::Engine(SubmitError::NotReady | SubmitError::ShuttingDown) => {
                "service_unavailable_error"
            }
            ApiError::Engine(SubmitError::EngineGone) | ApiError::Internal(_) => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidBody { .. } => "invalid_body",
            ApiError::InvalidValue { .. } => "invalid_value",
            ApiError::InvalidEcg { .. } => "invalid_ecg",
            ApiError::PromptTooLong { .. } => "context_length_exceeded",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Engine(e) => e.code(),
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The request field at fault, if any.
    pub fn param(&self) -> Option<String> {
        match self {
            ApiError::InvalidBody { param, .. } => param.clone(),
            ApiError::InvalidValue { param, .. }
            | ApiError::InvalidEcg { param, .. }
            | ApiError::PromptTooLong { param, .. } => Some(param.clone()),
            ApiError::Engine(SubmitError::NeverFits { .. }) => Some("max_tokens".into()),
            _ => None,
        }
    }
}

//! Wire types (serde + utoipa) and their validation into typed engine requests.
//! Nothing here knows HTTP status codes; `http::error` maps [`ApiError`] to them.

pub mod chat;
pub mod ecg;
pub mod error;
pub mod models;
pub mod report;
pub mod sampling;

pub use error::ApiError;

use crate::engine::GenerateRequest;

/// A validated request ready for `EngineHandle::submit`.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub request: GenerateRequest,
    pub stream: bool,
    /// Chat: `stream_options.include_usage`.
    pub include_usage: bool,
}

/// OpenAI error body `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema, PartialEq)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl From<&ApiError> for ErrorBody {
    fn from(e: &ApiError) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: e.to_string(),
                kind: e.kind().to_string(),
                param: e.param(),
                code: Some(e.code().to_string()),
            },
        }
    }
}

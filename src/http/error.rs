//! API errors -> HTTP status + OpenAI error body. The error's code travels in a response
//! extension so the metrics middleware can count rejections by the same label.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::{ApiError, ErrorBody};
use crate::engine::SubmitError;

/// Stable error code attached to error responses (read by `metrics::track`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

pub fn status_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::InvalidJson(_)
        | ApiError::InvalidValue { .. }
        | ApiError::PromptTooLong { .. } => StatusCode::BAD_REQUEST,
        ApiError::InvalidBody { .. } | ApiError::InvalidEcg { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::Engine(s) => match s {
            SubmitError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            SubmitError::NotReady | SubmitError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::NeverFits { .. } | SubmitError::EmptyPrompt => StatusCode::BAD_REQUEST,
            SubmitError::EngineGone => StatusCode::INTERNAL_SERVER_ERROR,
        },
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        if status.is_server_error() {
            tracing::error!(code = self.code(), "{self}");
        }
        let mut resp = (status, Json(ErrorBody::from(&self))).into_response();
        let headers = resp.headers_mut();
        match &self {
            ApiError::Engine(SubmitError::QueueFull { .. }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Engine(SubmitError::NotReady) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp.extensions_mut().insert(ErrorCode(self.code()));
        resp
    }
}

//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::api::{ApiError, ErrorBody};
use crate::engine::SubmitError;

/// 200 while the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, description = "alive")))]
pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// 200 once the model is loaded and warmed up; 503 while loading or shutting down.
#[utoipa::path(get, path = "/ready", tag = "ops", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "loading or shutting down", body = ErrorBody)))]
pub async fn ready(State(st): State<AppState>) -> Response {
    if st.engine.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let err = ApiError::Engine(SubmitError::NotReady);
        (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody::from(&err))).into_response()
    }
}

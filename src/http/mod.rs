//! HTTP layer (axum): `router()`, one file per route family, errors -> status, SSE mapping.
//! Knows the engine only through `EngineHandle` and model-level events.

pub mod auth;
pub mod chat;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod report;
mod serve;
pub mod sse;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tokenizers::Tokenizer;
use tower_http::trace::TraceLayer;

pub use serve::{serve, serve_with_settings, shutdown_signal};

use crate::api::{ApiError, Prepared};
use crate::engine::EngineHandle;
use crate::settings::{LimitSettings, Settings};
use crate::telemetry::Metrics;

/// Everything handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<LimitSettings>,
    pub model_id: Arc<str>,
    pub api_keys: Arc<Vec<String>>,
    pub max_body_bytes: usize,
    /// Unix time the state was built (the model's `created`).
    pub created: u64,
}

impl AppState {
    pub fn new(engine: EngineHandle, metrics: Arc<Metrics>, settings: &Settings) -> Self {
        Self {
            engine,
            metrics,
            limits: Arc::new(settings.limits.clone()),
            model_id: settings.server.model_id.as_str().into(),
            api_keys: Arc::new(settings.server.api_keys.clone()),
            max_body_bytes: settings.server.max_body_bytes,
            created: unix_now(),
        }
    }

    /// Run request validation (ECG preprocessing, tokenization) on the blocking pool.
    pub async fn prepare<F>(&self, f: F) -> Result<Prepared, ApiError>
    where
        F: FnOnce(&Tokenizer, &LimitSettings) -> Result<Prepared, ApiError> + Send + 'static,
    {
        let tok = self.engine.tokenizer().clone();
        let limits = self.limits.clone();
        tokio::task::spawn_blocking(move || f(&tok, &limits))
            .await
            .map_err(|e| ApiError::Internal(format!("validation task failed: {e}")))?
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// All routes. `/v1/*` require a bearer key when `server.api_keys` is set.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/ecg/report", post(report::report))
        .route("/v1/chat/completions", post(chat::chat))
        .route("/v1/models", get(models::list))
        .route_layer(from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::spec))
        .route("/docs", get(openapi::docs))
        .merge(v1)
        .route_layer(from_fn_with_state(state.clone(), metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

//! `GET /v1/models`.

use axum::extract::State;
use axum::Json;

use super::AppState;
use crate::api::models::{ModelCard, ModelList};

/// The one served model.
#[utoipa::path(get, path = "/v1/models", tag = "openai", security(("bearer" = [])),
    responses((status = 200, body = ModelList)))]
pub async fn list(State(st): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelCard {
            id: st.model_id.to_string(),
            object: "model".into(),
            created: st.created,
            owned_by: "meit".into(),
        }],
    })
}

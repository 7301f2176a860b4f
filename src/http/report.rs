//! `POST /v1/ecg/report`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::ApiJson;
use super::sse::{collect, done_event, error_event, json_event, map_events, sse_response};
use super::AppState;
use crate::api::report::{
    ReportChunk, ReportRequest, ReportResponse, TimingsBody, UsageBody, REPORT_CHUNK_OBJECT,
    REPORT_OBJECT,
};
use crate::api::{ApiError, ErrorBody};
use crate::engine::Event;

/// Generate a report for a 12-lead ECG. With `"stream": true` the answer is `text/event-stream`:
/// `ecg.report.chunk` events with text deltas, a last chunk with `finish_reason`, `usage` and
/// `timings`, then `data: [DONE]`.
#[utoipa::path(post, path = "/v1/ecg/report", tag = "ecg", security(("bearer" = [])),
    request_body = ReportRequest,
    responses(
        (status = 200, content((ReportResponse = "application/json"), (ReportChunk = "text/event-stream"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn report(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> Result<Response, ApiError> {
    let prepared = st
        .prepare(move |tok, limits| req.prepare(tok, limits))
        .await?;
    let events = st.engine.submit(prepared.request)?;
    let id = format!("report-{}", events.id);
    let created = super::unix_now();
    let model = st.model_id.to_string();
    if !prepared.stream {
        let (report, finish) = collect(events).await?;
        return Ok(Json(ReportResponse {
            id,
            object: REPORT_OBJECT.into(),
            created,
            model,
            report,
            finish_reason: finish.reason.as_str().into(),
            usage: UsageBody::from_finish(&finish),
            timings: TimingsBody::from_finish(&finish),
        })
        .into_response());
    }
    let chunk = move |delta: String| ReportChunk {
        id: id.clone(),
        object: REPORT_CHUNK_OBJECT.into(),
        created,
        model: model.clone(),
        delta,
        finish_reason: None,
        usage: None,
        timings: None,
    };
    let stream = map_events(events, move |ev| match ev {
        Event::Token { text, .. } if text.is_empty() => (vec![], false),
        Event::Token { text, .. } => (vec![json_event(&chunk(text))], false),
        Event::Finished(f) => {
            let last = ReportChunk {
                finish_reason: Some(f.reason.as_str().into()),
                usage: Some(UsageBody::from_finish(&f)),
                timings: Some(TimingsBody::from_finish(&f)),
                ..chunk(f.tail.clone())
            };
            (vec![json_event(&last), done_event()], true)
        }
        Event::Failed(msg) => (
            vec![error_event(&ApiError::Internal(msg)), done_event()],
            true,
        ),
    });
    Ok(sse_response(stream))
}

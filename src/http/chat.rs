//! `POST /v1/chat/completions` (OpenAI-compatible).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::ApiJson;
use super::sse::{collect, done_event, error_event, json_event, map_events, sse_response};
use super::AppState;
use crate::api::chat::{
    ChatChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessageOut,
    ChunkChoice, ChunkDelta,
};
use crate::api::report::UsageBody;
use crate::api::{ApiError, ErrorBody};
use crate::engine::{Event, FinishReason};

/// OpenAI finish reasons only: a shutdown-truncated answer reports `length`.
fn finish_reason(r: FinishReason) -> String {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length | FinishReason::Shutdown => "length",
    }
    .into()
}

/// Chat completion; an ECG goes in a user message as an `input_ecg` content part. Streaming
/// sends `chat.completion.chunk` events then `data: [DONE]`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", security(("bearer" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, content((ChatCompletionResponse = "application/json"), (ChatCompletionChunk = "text/event-stream"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn chat(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let prepared = st
        .prepare(move |tok, limits| req.prepare(tok, limits))
        .await?;
    let events = st.engine.submit(prepared.request)?;
    let id = format!("chatcmpl-{}", events.id);
    let created = super::unix_now();
    let model = st.model_id.to_string();
    if !prepared.stream {
        let (content, finish) = collect(events).await?;
        return Ok(Json(ChatCompletionResponse {
            id,
            object: "chat.completion".into(),
            created,
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: ChatMessageOut {
                    role: "assistant".into(),
                    content,
                },
                finish_reason: finish_reason(finish.reason),
                logprobs: None,
            }],
            usage: UsageBody::from_finish(&finish),
        })
        .into_response());
    }
    let include_usage = prepared.include_usage;
    let chunk = move |delta: ChunkDelta, finish: Option<String>| ChatCompletionChunk {
        id: id.clone(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.clone(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
            logprobs: None,
        }],
        usage: None,
    };
    let content = |t: String| ChunkDelta {
        role: None,
        content: Some(t),
    };
    let first = chunk(
        ChunkDelta {
            role: Some("assistant".into()),
            content: Some(String::new()),
        },
        None,
    );
    let stream = map_events(events, move |ev| match ev {
        Event::Token { text, .. } if text.is_empty() => (vec![], false),
        Event::Token { text, .. } => (vec![json_event(&chunk(content(text), None))], false),
        Event::Finished(f) => {
            let mut out = Vec::new();
            if !f.tail.is_empty() {
                out.push(json_event(&chunk(content(f.tail.clone()), None)));
            }
            out.push(json_event(&chunk(
                ChunkDelta::default(),
                Some(finish_reason(f.reason)),
            )));
            if include_usage {
                let mut last = chunk(ChunkDelta::default(), None);
                last.choices.clear();
                last.usage = Some(UsageBody::from_finish(&f));
                out.push(json_event(&last));
            }
            out.push(done_event());
            (out, true)
        }
        Event::Failed(msg) => (
            vec![error_event(&ApiError::Internal(msg)), done_event()],
            true,
        ),
    });
    let head = futures::stream::once(async move { Ok(json_event(&first)) });
    Ok(sse_response(futures::StreamExt::chain(head, stream)))
}

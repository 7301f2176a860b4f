//! Mapping engine event streams to SSE responses (every stream ends with `data: [DONE]`) and
//! collecting them for non-streaming responses.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Serialize;

use crate::api::{ApiError, ErrorBody};
use crate::engine::{Event, EventStream, Finish, SubmitError};

pub fn json_event<T: Serialize>(value: &T) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
}

pub fn done_event() -> SseEvent {
    SseEvent::default().data("[DONE]")
}

pub fn error_event(err: &ApiError) -> SseEvent {
    json_event(&ErrorBody::from(err))
}

/// Turn engine events into SSE events with `map`, which returns the SSE events for one engine
/// event and whether it was the last. `[DONE]` is appended by `map` on the last event; if the
/// engine goes away without a last event, an error event and `[DONE]` end the stream.
/// Dropping the returned stream (client gone) drops the receiver and cancels the sequence.
pub fn map_events<F>(
    events: EventStream,
    map: F,
) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnMut(Event) -> (Vec<SseEvent>, bool) + Send + 'static,
{
    futures::stream::unfold(Some((events, map)), |state| async move {
        let (mut events, mut map) = state?;
        match events.recv().await {
            Some(ev) => {
                let (out, last) = map(ev);
                Some((out, (!last).then_some((events, map))))
            }
            None => {
                let err = ApiError::Engine(SubmitError::EngineGone);
                Some((vec![error_event(&err), done_event()], None))
            }
        }
    })
    .flat_map(|v| futures::stream::iter(v.into_iter().map(Ok)))
}

pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Wait for the whole sequence: (text, finish). Dropping the future cancels the sequence.
pub async fn collect(mut events: EventStream) -> Result<(String, Finish), ApiError> {
    let mut text = String::new();
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Finished(f) => {
                text.push_str(&f.tail);
                return Ok((text, f));
            }
            Event::Failed(msg) => return Err(ApiError::Internal(msg)),
        }
    }
    Err(ApiError::Engine(SubmitError::EngineGone))
}

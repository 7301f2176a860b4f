//! Readiness, backpressure (429), KV waiting, cancellation and graceful shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use futures::StreamExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::common::*;
use meit::engine::mock::{test_tokenizer, MockBackend, MockConfig};
use meit::engine::{self, BackendError};
use meit::http::{router, AppState};
use meit::telemetry::Metrics;

fn slow() -> MockConfig {
    MockConfig {
        step_delay: Duration::from_millis(20),
        ..MockConfig::default()
    }
}

fn long_stream(seed: u32) -> Value {
    json!({"ecg": ecg(seed), "max_tokens": 1000, "stream": true})
}

#[tokio::test]
async fn ready_is_503_until_the_backend_is_loaded() {
    let tok = Arc::new(test_tokenizer());
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let t = tok.clone();
    let load = move || {
        gate.recv()
            .map_err(|e| BackendError::Model(e.to_string()))?;
        Ok(MockBackend::new(&t, MockConfig::default()))
    };
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let s = settings();
    let engine = engine::spawn_with(load, tok, s.engine_config(), metrics.clone());
    let app = router(AppState::new(engine.clone(), metrics, &s));
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
    let (status, body) = send_json(&app, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
    let (status, headers, _) = send(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "5");
    release.send(()).expect("release");
    wait_until(|| engine.is_ready()).await;
    assert_eq!(send(&app, get("/ready")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn caps_give_429_with_retry_after() {
    let mut s = settings();
    s.engine.max_running_sequences = 1;
    s.engine.max_waiting_sequences = 1;
    let app = app(s, slow()).await;
    let r = app.router();
    let first = r
        .clone()
        .oneshot(post_json("/v1/ecg/report", &long_stream(1)))
        .await
        .expect("a");
    assert_eq!(first.status(), StatusCode::OK);
    let m = app.state.metrics.clone();
    wait_until(|| m.running_sequences.get() == 1).await;
    let second = r
        .clone()
        .oneshot(post_json("/v1/ecg/report", &long_stream(2)))
        .await
        .expect("b");
    assert_eq!(second.status(), StatusCode::OK);
    wait_until(|| m.waiting_sequences.get() == 1).await;
    let (status, headers, body) = send(&r, post_json("/v1/ecg/report", &long_stream(3))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        body,
        json!({"error": {"message": "too many requests: the waiting queue is full (1 waiting)",
            "type": "rate_limit_error", "param": null, "code": "queue_full"}})
    );
    let text = metrics_text(&r).await;
    assert_eq!(
        metric(&text, "meit_rejections_total", "reason=\"queue_full\""),
        Some(1.0)
    );
    drop((first, second));
    wait_until(|| m.running_sequences.get() == 0 && m.waiting_sequences.get() == 0).await;
}

#[tokio::test]
async fn sequences_wait_for_kv_blocks_instead_of_failing() {
    let mut s = settings();
    // 192 slots: one sequence of 1 prefix + ~100 prompt + 64 tokens (11 blocks) at a time.
    s.engine.kv_total_blocks = 12;
    s.limits.max_prompt_tokens = 128;
    s.limits.max_tokens_limit = 64;
    s.limits.default_max_tokens = 64;
    let app = app(s, MockConfig::default()).await;
    let r = app.router();
    let body = json!({"ecg": ecg(1), "max_tokens": 64, "instruction": "Report."});
    let reqs = (0..4).map(|_| send_json(&r, post_json("/v1/ecg/report", &body)));
    for (status, v) in futures::future::join_all(reqs).await {
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 64);
    }
    let m = app.state.metrics.clone();
    wait_until(|| m.kv_used_blocks.get() == 0).await;
    // The pool never held two of them: every step ran a batch of one sequence.
    let text = metrics_text(&r).await;
    let ones = metric(&text, "meit_batch_size_sequences_bucket", "le=\"1\"");
    assert!(ones.is_some());
    assert_eq!(ones, metric(&text, "meit_batch_size_sequences_count", ""));
}

async fn assert_released(app: &TestApp) {
    let r = app.router();
    let start = Instant::now();
    loop {
        let text = metrics_text(&r).await;
        let running = metric(&text, "meit_running_sequences", "");
        let kv = metric(&text, "meit_kv_used_blocks", "");
        let ratio = metric(&text, "meit_kv_usage_ratio", "");
        if running == Some(0.0) && kv == Some(0.0) && ratio == Some(0.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not released: {running:?} {kv:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        app.live.load(Ordering::SeqCst),
        0,
        "backend still holds the sequence"
    );
}

#[tokio::test]
async fn client_disconnect_cancels_and_frees_kv() {
    let app = app(settings(), slow()).await;
    let server = run_server(&app, Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{}/v1/ecg/report", server.addr))
        .json(&long_stream(1))
        .send()
        .await
        .expect("send");
    let mut body = resp.bytes_stream();
    let first = body.next().await.expect("first chunk").expect("bytes");
    assert!(String::from_utf8_lossy(&first).contains("ecg.report.chunk"));
    let text = metrics_text(&app.router()).await;
    assert_eq!(metric(&text, "meit_running_sequences", ""), Some(1.0));
    assert!(metric(&text, "meit_kv_used_blocks", "") > Some(0.0));
    drop(body);
    assert_released(&app).await;

    // A non-streaming request whose client goes away is cancelled too.
    let url = format!("http://{}/v1/ecg/report", server.addr);
    let body = json!({"ecg": ecg(2), "max_tokens": 1000});
    let call = tokio::spawn(async move { client.post(url).json(&body).send().await });
    let m = app.state.metrics.clone();
    wait_until(|| m.running_sequences.get() == 1).await;
    call.abort();
    assert_released(&app).await;
    let _ = server.shutdown.map(|s| s.send(()));
}

#[tokio::test]
async fn graceful_shutdown_ends_streams_with_a_final_event() {
    let app = app(settings(), slow()).await;
    let mut server = run_server(&app, Duration::from_millis(300)).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/ecg/report", server.addr))
        .json(&long_stream(1))
        .send()
        .await
        .expect("send");
    let mut body = resp.bytes_stream();
    let mut raw = String::from_utf8_lossy(&body.next().await.expect("c").expect("b")).into_owned();
    let started = Instant::now();
    let _ = server.shutdown.take().map(|s| s.send(()));
    while let Some(c) = body.next().await {
        raw.push_str(&String::from_utf8_lossy(&c.expect("chunk")));
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    let data = sse_data(&raw);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let last: Value = serde_json::from_str(&data[data.len() - 2]).expect("json");
    assert_eq!(last["finish_reason"], "shutdown");
    let n = last["usage"]["completion_tokens"].as_u64().expect("n");
    assert!(n > 0 && n < 1000, "{n}");
    let served = tokio::time::timeout(Duration::from_secs(3), server.task).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "serve did not return cleanly"
    );
    assert!(!app.state.engine.is_ready());
    let (status, body) =
        send_json(&app.router(), post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "shutting_down");
}

/// A backend that dies on its first real forward (after warm-up).
struct PanicBackend(usize);

impl meit::engine::Backend for PanicBackend {
    fn vocab_size(&self) -> usize {
        259
    }
    fn prefix_slots(&self) -> usize {
        1
    }
    fn add_sequence(
        &mut self,
        _id: u64,
        _ecg: Option<&[f32]>,
        _slots: usize,
    ) -> Result<(), BackendError> {
        Ok(())
    }
    fn forward(
        &mut self,
        batch: &[(u64, &[u32])],
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        self.0 += 1;
        assert!(self.0 < 2, "simulated backend crash");
        *logits = vec![0.0; 259 * batch.len()];
        Ok(())
    }
    fn remove_sequence(&mut self, _id: u64) {}
}

#[tokio::test]
async fn a_crashed_engine_answers_500_then_not_ready() {
    let tok = Arc::new(test_tokenizer());
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let s = settings();
    let engine = engine::spawn(PanicBackend(0), tok, s.engine_config(), metrics.clone());
    wait_until(|| engine.is_ready()).await;
    let app = router(AppState::new(engine.clone(), metrics, &s));
    let (status, body) = send_json(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "engine_gone");
    wait_until(|| !engine.is_ready()).await;
    assert_eq!(
        send(&app, get("/ready")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, body) = send_json(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
}

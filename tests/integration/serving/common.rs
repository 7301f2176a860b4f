//! Test helpers: build servers on the mock backend, send requests, read SSE and metrics.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tower::ServiceExt;

use meit::engine::mock::{test_tokenizer, MockBackend, MockConfig};
use meit::engine::{self};
use meit::http::{router, serve, AppState};
use meit::settings::Settings;
use meit::telemetry::Metrics;

pub const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

pub struct TestApp {
    pub state: AppState,
    pub live: Arc<AtomicUsize>,
}

impl TestApp {
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }
}

pub fn settings() -> Settings {
    Settings::default()
}

pub async fn app(settings: Settings, mock: MockConfig) -> TestApp {
    let tok = Arc::new(test_tokenizer());
    let backend = MockBackend::new(&tok, mock);
    let live = backend.live_sequences();
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let engine = engine::spawn(backend, tok, settings.engine_config(), metrics.clone());
    let state = AppState::new(engine, metrics, &settings);
    wait_until(|| state.engine.is_ready()).await;
    TestApp { state, live }
}

pub async fn default_app() -> TestApp {
    app(settings(), MockConfig::default()).await
}

/// Poll `cond` every 10 ms for up to 5 s.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "condition not reached in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A 10 s 12-lead ECG at 100 Hz (the service resamples it to 500 Hz) in the lead-map form;
/// `seed` changes the values.
pub fn ecg(seed: u32) -> Value {
    let samples = 1000;
    let mut leads = serde_json::Map::new();
    for (l, name) in LEADS.iter().enumerate() {
        let v: Vec<f32> = (0..samples)
            .map(|i| ((i as f32 * 0.01 + l as f32 + seed as f32).sin() * 1000.0).round() / 1000.0)
            .collect();
        leads.insert(name.to_string(), json!(v));
    }
    json!({"sampling_rate_hz": 100, "units": "mV", "leads": leads})
}

pub fn report_body(seed: u32) -> Value {
    json!({"ecg": ecg(seed), "max_tokens": 24})
}

pub fn post_json(uri: &str, body: &Value) -> Request<Body> {
    post_raw(uri, "application/json", body.to_string())
}

pub fn post_raw(uri: &str, content_type: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request")
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

/// Send one request in-process; returns status, headers and the whole body.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub async fn send_json(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = send(app, req).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (status, v)
}

/// `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .map(str::to_string)
        })
        .collect()
}

/// Value of a metric line `name{labels} value` (labels must match exactly, "" for none).
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' ')?.trim().parse().ok())
}

pub async fn metrics_text(app: &Router) -> String {
    send(app, get("/metrics")).await.2
}

/// A real server on 127.0.0.1:0; drop or send on the returned sender to shut it down.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn run_server(app: &TestApp, grace: Duration) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let state = app.state.clone();
    let task = tokio::spawn(serve(listener, state, grace, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        shutdown: Some(tx),
        task,
    }
}

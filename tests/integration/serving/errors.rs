//! Status codes and exact error bodies for bad input (in-process, `oneshot`).

use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use super::common::*;
use meit::engine::mock::MockConfig;

fn err(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

fn invalid(message: &str, param: Option<&str>, code: &str) -> Value {
    err(message, "invalid_request_error", param, code)
}

fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut v = &mut body;
    for p in &path[..path.len() - 1] {
        v = &mut v[*p];
    }
    v[path[path.len() - 1]] = value;
    body
}

#[tokio::test]
async fn bad_inputs_get_exact_openai_errors() {
    let app = default_app().await.router();
    let report = report_body(1);
    let mut leads11 = report.clone();
    leads11["ecg"]["leads"]
        .as_object_mut()
        .expect("leads")
        .remove("V6");
    let mut nan = report.clone();
    nan["ecg"]["leads"]["V3"][17] = json!(1e39);
    let chat = |extra: Value| {
        let mut b = json!({"messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    let ecg_part = json!({"type": "input_ecg", "input_ecg": ecg(1)});
    let cases: Vec<(&str, axum::http::Request<axum::body::Body>, StatusCode, Value)> = vec![
        (
            "malformed JSON",
            post_raw("/v1/ecg/report", "application/json", "{\"ecg\":".into()),
            StatusCode::BAD_REQUEST,
            invalid("request body is not valid JSON: EOF while parsing a value at line 1 column 7", None, "invalid_json"),
        ),
        (
            "wrong content type",
            post_raw("/v1/ecg/report", "text/plain", report.to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            invalid("Content-Type must be application/json, got \"text/plain\"", None, "unsupported_media_type"),
        ),
        (
            "missing ecg",
            post_json("/v1/ecg/report", &json!({"instruction": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("missing field `ecg` at line 1 column 19", None, "invalid_body"),
        ),
        (
            "max_tokens too large",
            post_json("/v1/ecg/report", &with(report.clone(), &["max_tokens"], json!(5000))),
            StatusCode::BAD_REQUEST,
            invalid("max_tokens must be between 1 and 1024, got 5000", Some("max_tokens"), "invalid_value"),
        ),
        (
            "max_tokens of the wrong type",
            post_json("/v1/ecg/report", &json!({"max_tokens": "many", "ecg": ecg(1)})),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("max_tokens: invalid type: string \"many\", expected i64 at line 1 column 231441", Some("max_tokens"), "invalid_body"),
        ),
        (
            "temperature out of range",
            post_json("/v1/ecg/report", &with(report.clone(), &["temperature"], json!(2.5))),
            StatusCode::BAD_REQUEST,
            invalid("temperature must be between 0 and 2, got 2.5", Some("temperature"), "invalid_value"),
        ),
        (
            "top_p zero",
            post_json("/v1/ecg/report", &with(report.clone(), &["top_p"], json!(0))),
            StatusCode::BAD_REQUEST,
            invalid("top_p must be greater than 0 and at most 1, got 0", Some("top_p"), "invalid_value"),
        ),
        (
            "too many stop strings",
            post_json("/v1/ecg/report", &with(report.clone(), &["stop"], json!(["a", "b", "c", "d", "e"]))),
            StatusCode::BAD_REQUEST,
            invalid("stop must have at most 4 entries, got 5", Some("stop"), "invalid_value"),
        ),
        (
            "missing lead",
            post_json("/v1/ecg/report", &leads11),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("ecg.leads.V6: missing lead V6", Some("ecg.leads.V6"), "invalid_ecg"),
        ),
        (
            "non-finite sample",
            post_json("/v1/ecg/report", &nan),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("ecg.leads.V3: lead V3: non-finite sample at index 17", Some("ecg.leads.V3"), "invalid_ecg"),
        ),
        (
            "bad units",
            post_json("/v1/ecg/report", &with(report.clone(), &["ecg", "units"], json!("volt"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("ecg.units: unknown unit \"volt\" (expected mV, uV or NU)", Some("ecg.units"), "invalid_ecg"),
        ),
        (
            "string sample",
            post_json("/v1/ecg/report", &json!({"ecg": {"sampling_rate_hz": 500, "units": "mV", "leads": {"I": [0.1, "x"]}}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("ecg.leads.I[1]: invalid type: string \"x\", expected f32 at line 1 column 29", Some("ecg.leads.I[1]"), "invalid_body"),
        ),
        (
            "chat n=2",
            post_json("/v1/chat/completions", &chat(json!({"n": 2}))),
            StatusCode::BAD_REQUEST,
            invalid("n must be 1, got 2", Some("n"), "invalid_value"),
        ),
        (
            "chat two ECGs",
            post_json("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": [ecg_part, ecg_part]}]})),
            StatusCode::BAD_REQUEST,
            invalid("at most 1 input_ecg part per request, got a second one (the first is messages[0].content[0].input_ecg)", Some("messages[0].content[1]"), "invalid_value"),
        ),
        (
            "chat unknown role",
            post_json("/v1/chat/completions", &json!({"messages": [{"role": "tool", "content": "x"}]})),
            StatusCode::BAD_REQUEST,
            invalid("messages[0].role must be one of system, developer, user, assistant, got \"tool\"", Some("messages[0].role"), "invalid_value"),
        ),
        (
            "chat unknown part type",
            post_json("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("messages[0].content[0].type: unknown variant `image_url`, expected `text` or `input_ecg`", Some("messages[0].content[0].type"), "invalid_body"),
        ),
        (
            "chat max_completion_tokens zero",
            post_json("/v1/chat/completions", &chat(json!({"max_completion_tokens": 0}))),
            StatusCode::BAD_REQUEST,
            invalid("max_completion_tokens must be between 1 and 1024, got 0", Some("max_completion_tokens"), "invalid_value"),
        ),
        (
            "unknown route",
            get("/v1/nothing"),
            StatusCode::NOT_FOUND,
            err("no route for /v1/nothing", "not_found_error", None, "not_found"),
        ),
        (
            "wrong method",
            get("/v1/ecg/report"),
            StatusCode::METHOD_NOT_ALLOWED,
            invalid("method not allowed", None, "method_not_allowed"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, req, status, body) in cases {
        let (got_status, got) = send_json(&app, req).await;
        if (got_status, &got) != (status, &body) {
            failures.push(format!("{name}: got {got_status} {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let text = metrics_text(&app).await;
    assert_eq!(
        metric(&text, "meit_rejections_total", "reason=\"invalid_ecg\""),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &text,
            "meit_requests_total",
            "route=\"/v1/ecg/report\",status=\"400\""
        ),
        Some(5.0)
    );
}

#[tokio::test]
async fn body_limit_prompt_limit_and_kv_capacity() {
    let mut s = settings();
    s.server.max_body_bytes = 1000;
    let small = app(s, MockConfig::default()).await.router();
    let (status, body) = send_json(&small, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        invalid(
            "request body exceeds the limit of 1000 bytes",
            None,
            "payload_too_large"
        )
    );

    let mut s = settings();
    s.limits.max_prompt_tokens = 256;
    s.limits.max_tokens_limit = 64;
    s.limits.default_max_tokens = 64;
    s.engine.kv_total_blocks = 20; // 320 slots; prefix 200 + prompt ~150 + 24 does not fit
    let mock = MockConfig {
        prefix_slots: 200,
        ..MockConfig::default()
    };
    let app = app(s, mock).await.router();
    let long = with(report_body(1), &["instruction"], json!("x".repeat(200)));
    let (status, body) = send_json(&app, post_json("/v1/ecg/report", &long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["param"], "instruction");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .ends_with("the limit is 256"),
        "{body}"
    );
    let (status, body) = send_json(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["param"], "max_tokens");
}

#[tokio::test]
async fn api_keys_guard_v1_only() {
    let mut s = settings();
    s.server.api_keys = vec!["secret".into()];
    let app = app(s, MockConfig::default()).await.router();
    let (status, headers, body) = send(&app, get("/v1/models")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        err(
            "missing or invalid API key: send `Authorization: Bearer <key>`",
            "authentication_error",
            None,
            "invalid_api_key"
        )
    );
    let req = axum::http::Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer wrong")
        .body(axum::body::Body::empty())
        .expect("req");
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
    let req = axum::http::Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer secret")
        .body(axum::body::Body::empty())
        .expect("req");
    let (status, body) = send_json(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], "meit-smollm2-135m");
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
    assert_eq!(send(&app, get("/metrics")).await.0, StatusCode::OK);
}

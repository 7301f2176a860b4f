//! Successful generation: report and chat, streaming and not, in-process and over a socket.

use std::time::Duration;

use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::{json, Value};

use super::common::*;

#[tokio::test]
async fn report_is_deterministic_and_depends_on_the_ecg() {
    let app = default_app().await.router();
    let (status, a) = send_json(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["object"], "ecg.report");
    assert_eq!(a["model"], "meit-smollm2-135m");
    assert_eq!(a["finish_reason"], "length");
    assert_eq!(a["usage"]["completion_tokens"], 24);
    let prompt = a["usage"]["prompt_tokens"].as_u64().expect("prompt tokens");
    assert_eq!(a["usage"]["total_tokens"].as_u64(), Some(prompt + 24));
    assert!(a["timings"]["ttft_ms"].as_f64().is_some());
    assert!(a["timings"]["total_ms"].as_f64() >= a["timings"]["queue_ms"].as_f64());
    let report = a["report"].as_str().expect("report");
    assert_eq!(
        report.len(),
        24,
        "mock emits one ASCII byte per token: {report:?}"
    );
    let (_, b) = send_json(&app, post_json("/v1/ecg/report", &report_body(1))).await;
    assert_eq!(b["report"], a["report"]);
    let (_, c) = send_json(&app, post_json("/v1/ecg/report", &report_body(2))).await;
    assert_ne!(c["report"], a["report"]);
    // Seeded sampling is reproducible.
    let seeded =
        json!({"ecg": ecg(1), "max_tokens": 24, "temperature": 1.0, "top_k": 5, "seed": 11});
    let (_, s1) = send_json(&app, post_json("/v1/ecg/report", &seeded)).await;
    let (_, s2) = send_json(&app, post_json("/v1/ecg/report", &seeded)).await;
    assert_eq!(s1["report"], s2["report"]);
    let text = metrics_text(&app).await;
    assert_eq!(
        metric(
            &text,
            "meit_requests_total",
            "route=\"/v1/ecg/report\",status=\"200\""
        ),
        Some(5.0)
    );
    assert_eq!(
        metric(&text, "meit_generated_tokens_total", ""),
        Some(120.0)
    );
    assert_eq!(
        metric(&text, "meit_ecg_encode_seconds_count", ""),
        Some(5.0)
    );
}

#[tokio::test]
async fn stop_string_cuts_the_report_and_full_size_ecg_fits_the_body_limit() {
    let app = default_app().await.router();
    let (_, full) = send_json(&app, post_json("/v1/ecg/report", &report_body(3))).await;
    let report = full["report"].as_str().expect("report").to_string();
    let stop = report[10..13].to_string();
    let cut = report.find(&stop).expect("stop occurs");
    let body = json!({"ecg": ecg(3), "max_tokens": 24, "stop": stop});
    let (status, r) = send_json(&app, post_json("/v1/ecg/report", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["report"], report[..cut]);
    assert_eq!(r["finish_reason"], "stop");

    // 12 x 5000 samples in the lead_names/signal form.
    let names: Vec<&str> = LEADS.to_vec();
    let signal: Vec<Vec<f32>> = (0..12)
        .map(|l| {
            (0..5000)
                .map(|i| ((i * (l + 1)) % 997) as f32 * 0.001234)
                .collect()
        })
        .collect();
    let body = json!({"ecg": {"sampling_rate_hz": 500, "units": "uV", "lead_names": names, "signal": signal}, "max_tokens": 4});
    assert!(body.to_string().len() > 500_000);
    let (status, r) = send_json(&app, post_json("/v1/ecg/report", &body)).await;
    assert_eq!(status, StatusCode::OK, "{r}");
}

#[tokio::test]
async fn sse_over_a_real_socket_matches_the_non_streaming_answer() {
    let app = default_app().await;
    let server = run_server(&app, Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/ecg/report", server.addr);
    let plain: Value = client
        .post(&url)
        .json(&report_body(4))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let mut body = report_body(4);
    body["stream"] = json!(true);
    let resp = client.post(&url).json(&body).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut raw = String::new();
    let mut chunks = resp.bytes_stream();
    while let Some(c) = chunks.next().await {
        raw.push_str(&String::from_utf8_lossy(&c.expect("chunk")));
    }
    let data = sse_data(&raw);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("json event"))
        .collect();
    let text: String = events
        .iter()
        .map(|e| e["delta"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(text, plain["report"].as_str().expect("report"));
    let last = events.last().expect("final event");
    assert_eq!(last["object"], "ecg.report.chunk");
    assert_eq!(last["finish_reason"], "length");
    assert_eq!(last["usage"], plain["usage"]);
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e["finish_reason"].is_null()));

    // Chat streaming with include_usage.
    let chat = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe this ECG."},
            {"type": "input_ecg", "input_ecg": ecg(4)}]}],
        "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 8, "temperature": 0});
    let raw = client
        .post(format!("http://{}/v1/chat/completions", server.addr))
        .json(&chat)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let data = sse_data(&raw);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 8);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let _ = server.shutdown.map(|s| s.send(()));
}

#[tokio::test]
async fn async_openai_client_talks_to_the_server() {
    use async_openai::config::OpenAIConfig;
    use async_openai::types::{
        ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs, FinishReason,
    };
    let mut s = settings();
    s.server.api_keys = vec!["k-test".into()];
    let app = app(s, Default::default()).await;
    let server = run_server(&app, Duration::from_secs(5)).await;
    let cfg = OpenAIConfig::new()
        .with_api_base(format!("http://{}/v1", server.addr))
        .with_api_key("k-test");
    let client = async_openai::Client::with_config(cfg);
    let req = CreateChatCompletionRequestArgs::default()
        .model("meit")
        .max_completion_tokens(12u32)
        .seed(5)
        .temperature(0.0)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Summarise the rhythm.")
            .build()
            .expect("message")
            .into()])
        .build()
        .expect("request");
    let resp = client.chat().create(req.clone()).await.expect("create");
    let content = resp.choices[0].message.content.clone().expect("content");
    assert_eq!(content.len(), 12);
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Length));
    assert_eq!(resp.usage.as_ref().map(|u| u.completion_tokens), Some(12));

    let mut stream = client.chat().create_stream(req).await.expect("stream");
    let mut streamed = String::new();
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        for c in chunk.choices {
            streamed.push_str(c.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(c.finish_reason);
        }
    }
    assert_eq!(streamed, content);
    assert_eq!(finish, Some(FinishReason::Length));

    let models = client.models().list().await.expect("models");
    assert_eq!(models.data[0].id, "meit-smollm2-135m");
    let bad = async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{}/v1", server.addr))
            .with_api_key("nope"),
    );
    let err = bad.models().list().await.expect_err("401");
    assert!(err.to_string().contains("invalid API key"), "{err}");
    let _ = server.shutdown.map(|s| s.send(()));
}

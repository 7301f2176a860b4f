//! The committed OpenAPI spec must equal the generated one; docs and models pages answer.

use axum::http::StatusCode;

use super::common::*;
use meit::http::openapi::spec_json;

#[test]
fn committed_openapi_matches_generated() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let generated = spec_json() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("write openapi/openapi.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date; regenerate with:\n  UPDATE_OPENAPI=1 cargo test --release --test integration committed_openapi_matches_generated"
    );
}

#[tokio::test]
async fn openapi_docs_and_models_are_served() {
    let app = default_app().await.router();
    let (status, spec) = send_json(&app, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    for p in [
        "/v1/ecg/report",
        "/v1/chat/completions",
        "/v1/models",
        "/ready",
        "/metrics",
    ] {
        assert!(spec["paths"][p].is_object(), "{p} missing");
    }
    let (status, _, html) = send(&app, get("/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/openapi.json"));
    let (_, models) = send_json(&app, get("/v1/models")).await;
    assert_eq!(models["object"], "list");
    let text = metrics_text(&app).await;
    assert_eq!(
        metric(
            &text,
            "meit_requests_total",
            "route=\"/openapi.json\",status=\"200\""
        ),
        Some(1.0)
    );
}

#[test]
fn readme_documents_every_metric() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for line in meit::telemetry::METRICS_DOC.lines().skip(2) {
        let name = line.split('`').nth(1).expect("metric name");
        assert!(readme.contains(name), "README.md does not document {name}");
    }
}

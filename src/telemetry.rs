//! Prometheus metrics: every name lives here (units in the names), one registry per server.
//!
//! HTTP metrics are labelled by route template (axum's `MatchedPath`), never the raw path.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

pub const REQUESTS_TOTAL: &str = "meit_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "meit_request_duration_seconds";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "meit_time_to_first_token_seconds";
pub const INTER_TOKEN_LATENCY_SECONDS: &str = "meit_inter_token_latency_seconds";
pub const QUEUE_TIME_SECONDS: &str = "meit_queue_time_seconds";
pub const E2E_LATENCY_SECONDS: &str = "meit_e2e_latency_seconds";
pub const PROMPT_TOKENS_TOTAL: &str = "meit_prompt_tokens_total";
pub const GENERATED_TOKENS_TOTAL: &str = "meit_generated_tokens_total";
pub const RUNNING_SEQUENCES: &str = "meit_running_sequences";
pub const WAITING_SEQUENCES: &str = "meit_waiting_sequences";
pub const BATCH_SIZE_SEQUENCES: &str = "meit_batch_size_sequences";
pub const KV_USAGE_RATIO: &str = "meit_kv_usage_ratio";
pub const KV_USED_BLOCKS: &str = "meit_kv_used_blocks";
pub const REJECTIONS_TOTAL: &str = "meit_rejections_total";
pub const ECG_ENCODE_SECONDS: &str = "meit_ecg_encode_seconds";

/// Markdown table of every metric, for the README.
pub const METRICS_DOC: &str = "\
| metric | type | labels | meaning |
| --- | --- | --- | --- |
| `meit_requests_total` | counter | `route`, `status` | HTTP requests by route template and status code |
| `meit_request_duration_seconds` | histogram | `route` | handler time until the response head (streams: until the first byte) |
| `meit_time_to_first_token_seconds` | histogram | | submit to first generated token |
| `meit_inter_token_latency_seconds` | histogram | | time between consecutive generated tokens of a sequence |
| `meit_queue_time_seconds` | histogram | | submit to admission by the scheduler |
| `meit_e2e_latency_seconds` | histogram | | submit to finish (any finish reason) |
| `meit_prompt_tokens_total` | counter | | prompt tokens admitted |
| `meit_generated_tokens_total` | counter | | tokens sampled (EOS included) |
| `meit_running_sequences` | gauge | | sequences admitted and holding KV blocks |
| `meit_waiting_sequences` | gauge | | sequences queued, not yet admitted |
| `meit_batch_size_sequences` | histogram | | sequences in each forward step |
| `meit_kv_usage_ratio` | gauge | | used / total KV blocks |
| `meit_kv_used_blocks` | gauge | | KV blocks owned by sequences |
| `meit_rejections_total` | counter | `reason` | requests refused; `reason` is the error `code` of the JSON body |
| `meit_ecg_encode_seconds` | histogram | | time of `Backend::add_sequence` with an ECG (encoder + prefix K/V) |
";

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// All metrics of one server instance.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub time_to_first_token_seconds: Histogram,
    pub inter_token_latency_seconds: Histogram,
    pub queue_time_seconds: Histogram,
    pub e2e_latency_seconds: Histogram,
    pub prompt_tokens_total: IntCounter,
    pub generated_tokens_total: IntCounter,
    pub running_sequences: IntGauge,
    pub waiting_sequences: IntGauge,
    pub batch_size_sequences: Histogram,
    pub kv_usage_ratio: Gauge,
    pub kv_used_blocks: IntGauge,
    pub rejections_total: IntCounterVec,
    pub ecg_encode_seconds: Histogram,
}

fn hist(name: &str, help: &str, buckets: &[f64]) -> Result<Histogram, prometheus::Error> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let m = Metrics {
            registry: Registry::new(),
            requests_total: IntCounterVec::new(
                Opts::new(REQUESTS_TOTAL, "HTTP requests by route template and status"),
                &["route", "status"],
            )?,
            request_duration_seconds: HistogramVec::new(
                HistogramOpts::new(REQUEST_DURATION_SECONDS, "Handler time until response head")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["route"],
            )?,
            time_to_first_token_seconds: hist(
                TIME_TO_FIRST_TOKEN_SECONDS,
                "Submit to first token",
                LATENCY_BUCKETS,
            )?,
            inter_token_latency_seconds: hist(
                INTER_TOKEN_LATENCY_SECONDS,
                "Time between tokens",
                LATENCY_BUCKETS,
            )?,
            queue_time_seconds: hist(QUEUE_TIME_SECONDS, "Submit to admission", LATENCY_BUCKETS)?,
            e2e_latency_seconds: hist(E2E_LATENCY_SECONDS, "Submit to finish", LATENCY_BUCKETS)?,
            prompt_tokens_total: IntCounter::new(PROMPT_TOKENS_TOTAL, "Prompt tokens admitted")?,
            generated_tokens_total: IntCounter::new(GENERATED_TOKENS_TOTAL, "Tokens generated")?,
            running_sequences: IntGauge::new(RUNNING_SEQUENCES, "Running sequences")?,
            waiting_sequences: IntGauge::new(WAITING_SEQUENCES, "Waiting sequences")?,
            batch_size_sequences: hist(BATCH_SIZE_SEQUENCES, "Sequences per step", BATCH_BUCKETS)?,
            kv_usage_ratio: Gauge::new(KV_USAGE_RATIO, "Used / total KV blocks")?,
            kv_used_blocks: IntGauge::new(KV_USED_BLOCKS, "KV blocks in use")?,
            rejections_total: IntCounterVec::new(
                Opts::new(REJECTIONS_TOTAL, "Refused requests by reason"),
                &["reason"],
            )?,
            ecg_encode_seconds: hist(ECG_ENCODE_SECONDS, "ECG prefix encode", LATENCY_BUCKETS)?,
        };
        let r = &m.registry;
        r.register(Box::new(m.requests_total.clone()))?;
        r.register(Box::new(m.request_duration_seconds.clone()))?;
        r.register(Box::new(m.time_to_first_token_seconds.clone()))?;
        r.register(Box::new(m.inter_token_latency_seconds.clone()))?;
        r.register(Box::new(m.queue_time_seconds.clone()))?;
        r.register(Box::new(m.e2e_latency_seconds.clone()))?;
        r.register(Box::new(m.prompt_tokens_total.clone()))?;
        r.register(Box::new(m.generated_tokens_total.clone()))?;
        r.register(Box::new(m.running_sequences.clone()))?;
        r.register(Box::new(m.waiting_sequences.clone()))?;
        r.register(Box::new(m.batch_size_sequences.clone()))?;
        r.register(Box::new(m.kv_usage_ratio.clone()))?;
        r.register(Box::new(m.kv_used_blocks.clone()))?;
        r.register(Box::new(m.rejections_total.clone()))?;
        r.register(Box::new(m.ecg_encode_seconds.clone()))?;
        Ok(m)
    }

    /// Count a refused request under its stable error code.
    pub fn reject(&self, reason: &str) {
        self.rejections_total.with_label_values(&[reason]).inc();
    }

    /// Prometheus text exposition of all metrics.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_documented() {
        let m = Metrics::new().expect("metrics");
        m.requests_total.with_label_values(&["/x", "200"]).inc();
        m.request_duration_seconds
            .with_label_values(&["/x"])
            .observe(0.1);
        m.reject("queue_full");
        for fam in m.registry.gather() {
            assert!(
                METRICS_DOC.contains(&format!("`{}`", fam.name())),
                "{} missing from METRICS_DOC",
                fam.name()
            );
        }
    }
}

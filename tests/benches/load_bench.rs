//! Load generator for the HTTP service: real ECGs, streaming requests at several concurrency
//! levels; prints generated tok/s and p50/p95 time to first token and end-to-end latency. The
//! same loop drives an OpenAI-compatible peer (llama.cpp's server) with the same instruction, so
//! both are measured in one sitting.
//!
//! `cargo bench --bench load -- --url http://127.0.0.1:8080 --target meit --records DIR`
//! `cargo bench --bench load -- --url http://127.0.0.1:8081 --target openai`
//!
//! `--rounds N` runs the concurrency list N times over, alternating its levels, and ends with a
//! summary line: each level's median tok/s and, when the list has level 1, each level's tok/s
//! over level 1's in the same round, per round and their median. On a machine whose speed drifts
//! within minutes, that ratio compares runs taken moments apart.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

struct Args {
    url: String,
    target: String,
    records: PathBuf,
    concurrency: Vec<usize>,
    requests_per_worker: usize,
    max_tokens: usize,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        target: "meit".into(),
        records: PathBuf::from("tests/fixtures/ptbxl-raw/records500/06000"),
        concurrency: vec![1, 4, 16, 32],
        requests_per_worker: 2,
        max_tokens: 64,
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v(),
            "--target" => a.target = v(),
            "--records" => a.records = PathBuf::from(v()),
            "--concurrency" => {
                a.concurrency = v().split(',').filter_map(|x| x.parse().ok()).collect()
            }
            "--requests-per-worker" => a.requests_per_worker = v().parse().unwrap_or(2),
            "--max-tokens" => a.max_tokens = v().parse().unwrap_or(64),
            "--rounds" => a.rounds = v().parse().unwrap_or(1).max(1),
            _ => {}
        }
    }
    a
}

/// Request bodies built from the WFDB records in `dir` (lead map, mV, 500 Hz).
fn bodies(a: &Args) -> Vec<String> {
    let mut recs: Vec<PathBuf> = std::fs::read_dir(&a.records)
        .expect("records dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hea"))
        .map(|p| p.with_extension(""))
        .collect();
    recs.sort();
    let instruction = meit::train::data::DEFAULT_INSTRUCTION;
    recs.iter()
        .map(|r| {
            let raw = meit::signal::read_wfdb(r).expect("record");
            if a.target == "meit" {
                // The samples as the record holds them (f32 millivolts at the record's
                // resolution, written shortest-first: "0.035", not the f64 widening
                // "0.03500000014901161" a `Value` would print), as a client sends them.
                let body = ReportBody {
                    ecg: EcgBody {
                        sampling_rate_hz: raw.sampling_rate_hz,
                        units: raw.units.as_str(),
                        leads: raw
                            .leads
                            .iter()
                            .map(|(n, v)| (n.as_str(), &v[..]))
                            .collect(),
                    },
                    instruction,
                    max_tokens: a.max_tokens,
                    temperature: 0.0,
                    stream: true,
                };
                serde_json::to_string(&body).expect("serialise")
            } else {
                json!({"model": "default", "messages": [{"role": "user", "content": instruction}],
                       "max_tokens": a.max_tokens, "temperature": 0, "stream": true,
                       "stream_options": {"include_usage": true}})
                .to_string()
            }
        })
        .collect()
}

#[derive(serde::Serialize)]
struct EcgBody<'a> {
    sampling_rate_hz: f64,
    units: &'a str,
    leads: std::collections::BTreeMap<&'a str, &'a [f32]>,
}

#[derive(serde::Serialize)]
struct ReportBody<'a> {
    ecg: EcgBody<'a>,
    instruction: &'a str,
    max_tokens: usize,
    temperature: f32,
    stream: bool,
}

struct Sample {
    ttft: f64,
    e2e: f64,
    tokens: usize,
}

/// One streaming request; counts content deltas as tokens when no usage arrives.
async fn one(client: &reqwest::Client, url: &str, body: String) -> Option<Sample> {
    let t0 = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        eprintln!("status {}", resp.status());
        return None;
    }
    let mut stream = resp.bytes_stream();
    let (mut ttft, mut deltas, mut usage) = (None, 0usize, None);
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            let Some(data) = line.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let delta = v["delta"]
                .as_str()
                .or_else(|| v["choices"][0]["delta"]["content"].as_str())
                .unwrap_or("");
            if !delta.is_empty() {
                ttft.get_or_insert(t0.elapsed().as_secs_f64());
                deltas += 1;
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                usage = Some(n as usize);
            }
        }
    }
    Some(Sample {
        ttft: ttft.unwrap_or(f64::NAN),
        e2e: t0.elapsed().as_secs_f64(),
        tokens: usage.unwrap_or(deltas),
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The middle value (the mean of the middle two for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let bodies = Arc::new(bodies(&a));
    let path = if a.target == "meit" {
        "/v1/ecg/report"
    } else {
        "/v1/chat/completions"
    };
    let url = Arc::new(format!("{}{}", a.url, path));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    // Warm-up.
    let _ = one(&client, &url, bodies[0].clone()).await;
    // tok/s per round, in the order of the concurrency list
    let mut table: Vec<Vec<f64>> = Vec::new();
    for round in 0..a.rounds {
        let mut row = Vec::new();
        for &c in &a.concurrency {
            let mut r = level(&a.target, &client, &url, &bodies, c, a.requests_per_worker).await;
            row.push(r["generated_tok_s"].as_f64().unwrap_or(f64::NAN));
            if a.rounds > 1 {
                r["round"] = json!(round + 1);
            }
            println!("{r}");
        }
        table.push(row);
    }
    if a.rounds > 1 {
        println!("{}", summary(&a, &table));
    }
}

/// `c` workers each sending `n` requests in turn; the level's JSON line.
async fn level(
    target: &str,
    client: &reqwest::Client,
    url: &Arc<String>,
    bodies: &Arc<Vec<String>>,
    c: usize,
    n: usize,
) -> Value {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..n {
                let body = bodies[(w * n + i) % bodies.len()].clone();
                if let Some(s) = one(&client, &url, body).await {
                    out.push(s);
                }
            }
            out
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap_or_default());
    }
    let wall = t0.elapsed().as_secs_f64();
    let tokens: usize = samples.iter().map(|s| s.tokens).sum();
    let mut ttft: Vec<f64> = samples.iter().map(|s| s.ttft).collect();
    let mut e2e: Vec<f64> = samples.iter().map(|s| s.e2e).collect();
    json!({"target": target, "concurrency": c, "requests": samples.len(),
        "generated_tok_s": (tokens as f64 / wall * 10.0).round() / 10.0,
        "ttft_p50_s": pct(&mut ttft, 0.5), "ttft_p95_s": pct(&mut ttft, 0.95),
        "e2e_p50_s": pct(&mut e2e, 0.5), "e2e_p95_s": pct(&mut e2e, 0.95)})
}

/// The rounds' summary: per level the median tok/s and, when level 1 was run, the ratio to
/// level 1 in each round and the ratios' median.
fn summary(a: &Args, table: &[Vec<f64>]) -> Value {
    let base = a.concurrency.iter().position(|&c| c == 1);
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let levels: Vec<Value> = a
        .concurrency
        .iter()
        .enumerate()
        .map(|(j, &c)| {
            let mut tok: Vec<f64> = table.iter().map(|row| row[j]).collect();
            let med = (median(&mut tok) * 10.0).round() / 10.0;
            let mut v = json!({"concurrency": c, "median_tok_s": med});
            if let Some(b) = base.filter(|&b| b != j) {
                let mut ratios: Vec<f64> =
                    table.iter().map(|row| round2(row[j] / row[b])).collect();
                v["ratio_to_c1"] = json!(ratios.clone());
                v["ratio_to_c1_median"] = json!(round2(median(&mut ratios)));
            }
            v
        })
        .collect();
    json!({"target": a.target, "rounds": table.len(), "levels": levels})
}

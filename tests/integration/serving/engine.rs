//! Seeded randomised test of the real engine loop: random requests, random client drops;
//! every sequence ends and the KV pool, gauges and backend are empty at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::common::wait_until;
use meit::engine::mock::{test_tokenizer, MockBackend, MockConfig};
use meit::engine::{self, EngineConfig, Event, FinishReason, GenerateRequest, SamplingParams};
use meit::telemetry::Metrics;

/// Before it reports ready, the engine asks the backend for caches for a full batch
/// (`max_running` sequences), splitting the KV budget between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_preallocates_a_full_batch_of_caches_before_ready() {
    let tok = Arc::new(test_tokenizer());
    let backend = MockBackend::new(&tok, MockConfig::default());
    let calls = backend.preallocations();
    let cfg = EngineConfig {
        max_running: 6,
        max_waiting: 8,
        max_batch_tokens: 64,
        kv_block_size: 16,
        kv_total_blocks: 120,
    };
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let handle = engine::spawn(backend, tok, cfg, metrics);
    wait_until(|| handle.is_ready()).await;
    assert_eq!(*calls.lock().expect("calls"), vec![(6, 120 * 16 / 6)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomised_engine_runs_and_cancellations_free_everything() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let max_running = rng.random_range(1..5);
        let cfg = EngineConfig {
            max_running,
            max_waiting: 64,
            max_batch_tokens: rng.random_range(max_running..max_running + 40),
            kv_block_size: rng.random_range(1..17),
            kv_total_blocks: 0,
        };
        let cfg = EngineConfig {
            // Room for the largest sequence (1 + 40 + 30 slots) and a bit more.
            kv_total_blocks: 71usize.div_ceil(cfg.kv_block_size) + rng.random_range(0..8),
            ..cfg
        };
        let tok = Arc::new(test_tokenizer());
        let mock = MockConfig {
            eos_per_mille: rng.random_range(0..80),
            ..MockConfig::default()
        };
        let backend = MockBackend::new(&tok, mock);
        let live = backend.live_sequences();
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let handle = engine::spawn(backend, tok, cfg, metrics.clone());
        wait_until(|| handle.is_ready()).await;
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let max_tokens = rng.random_range(1..31);
            let req = GenerateRequest {
                prompt: (0..rng.random_range(1..41))
                    .map(|_| rng.random_range(3..259))
                    .collect(),
                ecg: rng.random_bool(0.5).then(|| vec![0.25; 12 * 5000]),
                sampling: SamplingParams {
                    temperature: rng.random_range(0.0..1.5),
                    top_k: Some(rng.random_range(1..50)),
                    top_p: 0.9,
                    seed: Some(rng.random()),
                    repetition_penalty: 1.1,
                },
                max_tokens,
                stop: vec![],
            };
            let drop_after = rng.random_bool(0.3).then(|| rng.random_range(0..5usize));
            let mut events = handle.submit(req).expect("submit");
            tasks.push(tokio::spawn(async move {
                let mut tokens = 0;
                loop {
                    if drop_after == Some(tokens) {
                        return; // client gone: dropping `events` cancels the sequence
                    }
                    match events.recv().await.expect("event") {
                        Event::Token { .. } => tokens += 1,
                        Event::Finished(f) => {
                            let n = f.usage.completion_tokens;
                            assert!(n <= max_tokens && n >= tokens);
                            if f.reason == FinishReason::Length {
                                assert_eq!((n, tokens), (max_tokens, max_tokens));
                            }
                            return;
                        }
                        Event::Failed(e) => panic!("seed {seed}: {e}"),
                    }
                }
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("sequence ended")
                .expect("task");
        }
        wait_until(|| {
            metrics.running_sequences.get() == 0
                && metrics.waiting_sequences.get() == 0
                && metrics.kv_used_blocks.get() == 0
                && live.load(Ordering::SeqCst) == 0
        })
        .await;
    }
}

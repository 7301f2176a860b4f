//! Drives the serving engine in process: every record of a task is submitted at once (the
//! waiting queue is sized for it) so the scheduler batches them exactly as it batches HTTP
//! clients; decoding is greedy. Texts are collected from the model-level events.

use std::time::{Duration, Instant};

use crate::engine::{EngineHandle, Event, GenerateRequest, SamplingParams};

use super::EvalError;

/// One generated report.
#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    pub completion_tokens: usize,
    pub finish: &'static str,
}

/// Waits until the engine is ready (model loaded and warmed up).
pub async fn wait_ready(engine: &EngineHandle, timeout: Duration) -> Result<(), EvalError> {
    let start = Instant::now();
    while !engine.is_ready() {
        if start.elapsed() > timeout {
            return Err(EvalError::EngineNotReady {
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Generates one report per ECG with the same prompt; results in input order.
pub async fn generate_all(
    engine: &EngineHandle,
    prompt: &[u32],
    ecgs: Vec<(String, Vec<f32>)>,
    max_tokens: usize,
) -> Result<Vec<Generated>, EvalError> {
    let items = ecgs
        .into_iter()
        .map(|(record, ecg)| (record, prompt.to_vec(), ecg))
        .collect();
    generate_each(engine, items, max_tokens).await
}

/// Generates one report per `(record, prompt, ECG)`; results in input order.
pub async fn generate_each(
    engine: &EngineHandle,
    items: Vec<(String, Vec<u32>, Vec<f32>)>,
    max_tokens: usize,
) -> Result<Vec<Generated>, EvalError> {
    let mut streams = Vec::with_capacity(items.len());
    for (record, prompt, ecg) in items {
        let req = GenerateRequest {
            prompt,
            ecg: Some(ecg),
            sampling: SamplingParams {
                temperature: 0.0,
                seed: Some(0),
                ..SamplingParams::default()
            },
            max_tokens,
            stop: Vec::new(),
        };
        streams.push((record, engine.submit(req)?));
    }
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(record, mut stream)| {
            tokio::spawn(async move {
                let mut text = String::new();
                while let Some(ev) = stream.recv().await {
                    match ev {
                        Event::Token { text: t, .. } => text.push_str(&t),
                        Event::Finished(f) => {
                            text.push_str(&f.tail);
                            return Ok(Generated {
                                text: text.trim().to_string(),
                                completion_tokens: f.usage.completion_tokens,
                                finish: f.reason.as_str(),
                            });
                        }
                        Event::Failed(msg) => return Err(EvalError::Generation { record, msg }),
                    }
                }
                Err(EvalError::Generation {
                    record,
                    msg: "the engine closed the stream".into(),
                })
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let r = t.await.map_err(|e| EvalError::Generation {
            record: String::new(),
            msg: e.to_string(),
        })??;
        out.push(r);
    }
    Ok(out)
}

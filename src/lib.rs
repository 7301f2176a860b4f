//! MEIT ECG report service: a 12-lead ECG plus an instruction in, a written report out.
//!
//! - [`signal`]: ECG formats and preprocessing, shared by the server and the trainer
//! - [`model`]: candle only: ECG encoder, prefix-fused Llama, LoRA merge, loading, tokenizer
//! - [`train`]: datasets, instruction templating, training and evaluation
//! - [`engine`]: one thread owns the model; continuous-batching scheduler, KV blocks, sampler
//! - [`api`]: wire types (serde + utoipa) and validation into typed engine requests
//! - [`http`]: axum routes, errors, SSE; [`telemetry`]: Prometheus; [`settings`]: layered config
//! - [`metrics`]: BLEU, METEOR, ROUGE, CIDEr-D as the reference tools compute them
//! - [`eval`]: the benchmark (`trainer eval`): quality, clinical F1, zero-shot, noise robustness
//! - [`cli`]: command implementations behind the thin binaries
pub mod api;
pub mod cli;
pub mod engine;
pub mod eval;
pub mod http;
pub mod metrics;
pub mod model;
pub mod settings;
pub mod signal;
pub mod telemetry;
pub mod train;

//! MEIT ECG report service: a 12-lead ECG plus an instruction in, a written report out.
//!
//! - [`signal`]: ECG formats and preprocessing, shared by the server and the trainer
//! - [`model`]: candle only: ECG encoder, prefix-fused Llama, LoRA merge, loading, tokenizer
//! - [`train`]: datasets, instruction templating, training and evaluation
//! - [`cli`]: command implementations behind the thin binaries
pub mod cli;
pub mod model;
pub mod signal;
pub mod train;

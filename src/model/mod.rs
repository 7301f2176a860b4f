//! The MEIT model in candle: ECG encoder, prefix-fused Llama, LoRA, weight loading, tokenizer.
//!
//! Shape legend used in comments throughout this module:
//! - `N`: tokens in a ragged batch (all sequences' new tokens concatenated)
//! - `n`: new tokens of one sequence, `L`: one sequence's cached length (prefix + text)
//! - `H`: query heads, `Hkv`: key/value heads, `g = H / Hkv`, `D`: head dim, `E = H * D`: hidden
//! - `P`: ECG prefix slots, `V`: vocabulary, `B`: batch of records, `C`: channels, `T`: samples
//!
//! This module knows nothing of tokio, axum or metrics.

pub mod act;
pub mod amx;
pub mod amx_int8;
pub mod attention;
pub mod attn_core;
#[cfg(target_arch = "x86_64")]
pub mod attn_i8;
pub mod attn_ops;
pub mod bundle;
pub mod chat;
pub mod config;
pub(crate) mod cpu_data;
pub mod encoder;
pub mod encoder_infer;
pub mod error;
pub mod f32_panels;
pub mod fetch;
pub mod frozen;
pub mod gguf;
#[cfg(test)]
pub(crate) mod grad_check;
pub mod hf;
pub mod huge;
pub mod kv;
pub mod linear;
pub mod llama;
pub mod lora;
pub mod npy;
pub(crate) mod par;
pub mod qmatmul;
pub mod rms_norm;
pub(crate) mod row_softmax;
pub(crate) mod strided_gemm;
pub mod swiglu;
pub mod tiny;
pub mod tokenizer;
pub mod train_forward;
pub mod vecops;
pub mod weights;

pub use config::LlamaConfig;
pub use error::ModelError;
pub use kv::SeqCache;
pub use llama::{Llama, SeqInput};

//! The benchmark behind `trainer eval`: the paper's three tasks (report quality on the PTB-XL
//! test fold, zero-shot transfer to other 12-lead sets, noise robustness) plus clinical
//! correctness over PTB-XL statements with two baselines, all driven through the same
//! continuous-batching engine the server uses.
//!
//! - [`pipeline`]: the run (load, generate, score, write)
//! - [`ptbxl_set`], [`zeroshot`]: the data of each task; [`noise`]: the corruptions
//! - [`runner`]: submitting to the engine and collecting reports
//! - [`scp_map`] + [`scp_patterns`]: report -> PTB-XL statement mapper; [`conditions`]: labels
//!   of the zero-shot sets -> statements/phrases; [`clinical`]: micro/macro F1
//! - [`baselines`]: most frequent report and nearest-embedding retrieval
//! - [`validation`]: validation METEOR of a saved adapter during training
//! - [`scoring`], [`results`], [`markdown`], [`svg`]: numbers and output files

pub mod baselines;
pub mod clinical;
pub mod conditions;
mod error;
pub mod markdown;
pub mod noise;
pub mod pipeline;
pub mod ptbxl_set;
pub mod results;
pub mod runner;
pub mod scoring;
pub mod scp_map;
pub mod scp_patterns;
pub mod svg;
pub mod validation;
pub mod zeroshot;

pub use error::EvalError;
pub use pipeline::{run, EvalOptions, EvalSummary, Tasks};

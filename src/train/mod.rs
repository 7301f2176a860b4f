//! Training: datasets, instruction templating, the LoRA training loop, evaluation.
pub mod batch;
pub mod checkpoint;
pub mod data;
pub mod ecg;
pub mod error;
pub mod eval_hook;
pub mod generate;
pub mod log;
pub mod lora;
pub mod lora_kernels;
pub mod lora_op;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod trainer;
pub mod xent;

pub use error::TrainError;
pub use trainer::{Sample, StepStats, TrainSettings, Trainer};

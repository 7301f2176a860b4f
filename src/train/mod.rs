//! Training: datasets, instruction templating, the LoRA training loop, evaluation.
pub mod data;

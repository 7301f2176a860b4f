//! Checkpoints: a directory that the server can load as an adapter (PEFT adapter + encoder) and
//! that `--resume` continues from exactly (optimizer moments, step, RNG state, data position).
//!
//! ```text
//! adapter_config.json, adapter_model.safetensors   LoRA in the HF PEFT layout
//! encoder_config.json, encoder.safetensors         ECG encoder + projector, BatchNorm stats synced
//! optimizer.safetensors                            AdamW moments (`m.{param}`, `v.{param}`)
//! trainer_state.json                               TrainerState
//! ```
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, TrainError};
use super::rng::SplitMix64;

pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";

/// Where a run stands after a completed optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: usize,
    /// Epoch of the next micro-batch.
    pub epoch: usize,
    /// Index of the next micro-batch within the epoch's order.
    pub pos: usize,
    /// Dropout generator.
    pub rng: SplitMix64,
    /// Samples consumed so far.
    pub samples: usize,
    /// Best validation loss so far.
    pub best_val: Option<f32>,
    /// Best validation METEOR so far (when a scorer is plugged in, it selects `best/`).
    #[serde(default)]
    pub best_meteor: Option<f64>,
    /// Settings the run was started with (checked on resume).
    pub seed: u64,
    pub rank: usize,
    pub batch: usize,
    pub accum: usize,
    pub total_steps: usize,
}

impl TrainerState {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(STATE_FILE);
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
        std::fs::write(&p, json).map_err(|e| TrainError::io(&p, e))
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(STATE_FILE);
        let raw = std::fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
        serde_json::from_str(&raw).map_err(|e| TrainError::checkpoint(&p, e.to_string()))
    }
}

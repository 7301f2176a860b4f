//! Training progress: an indicatif bar (loss, learning rate, samples/s, ETA) and a JSON-lines log.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::error::{Result, TrainError};

/// One optimizer step, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f32,
    pub lr: f64,
    pub grad_norm: f64,
    pub samples_per_s: f64,
    pub elapsed_s: f64,
}

/// One validation pass, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRecord {
    pub step: usize,
    pub val_loss: f32,
    pub val_tokens: usize,
    /// Generation metric (METEOR) when a scorer is plugged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_meteor: Option<f64>,
}

/// Appends one JSON object per line.
pub struct JsonlLog {
    path: PathBuf,
    file: File,
}

impl JsonlLog {
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        Ok(JsonlLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn write<T: Serialize>(&mut self, rec: &T) -> Result<()> {
        let line = serde_json::to_string(rec)
            .map_err(|e| TrainError::Config(format!("log record: {e}")))?;
        writeln!(self.file, "{line}").map_err(|e| TrainError::io(&self.path, e))
    }
}

/// The progress bar (hidden when not wanted, e.g. in tests).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(total: usize, done: usize, visible: bool) -> Self {
        let bar = if visible {
            ProgressBar::new(total as u64)
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_position(done as u64);
        bar.reset_eta();
        Progress { bar }
    }

    pub fn step(&self, r: &StepRecord) {
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "loss {:.4}  lr {:.2e}  {:.2} samples/s",
            r.loss, r.lr, r.samples_per_s
        ));
    }

    pub fn println(&self, msg: &str) {
        self.bar.println(msg);
    }

    pub fn finish(&self) {
        self.bar.finish();
    }
}

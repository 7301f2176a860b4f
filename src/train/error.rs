//! Errors of the training loop.
use std::path::PathBuf;

use crate::model::ModelError;
use crate::signal::SignalError;
use crate::train::data::DataError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("ECG record {record}: {source}")]
    Signal {
        record: String,
        #[source]
        source: SignalError,
    },
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    #[error("validation generation: {0}")]
    Validation(String),
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error("loss is not finite ({loss}) at step {step}")]
    NonFinite { step: usize, loss: f32 },
}

impl TrainError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;

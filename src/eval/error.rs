//! Errors of the benchmark: each names the file, record or step that failed.

use std::path::PathBuf;

use crate::engine::SubmitError;
use crate::model::ModelError;
use crate::signal::SignalError;
use crate::train::data::DataError;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("record {record}: {source}")]
    Signal {
        record: String,
        #[source]
        source: SignalError,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    #[error("engine refused a request: {0}")]
    Submit(#[from] SubmitError),
    #[error("generation failed for {record}: {msg}")]
    Generation { record: String, msg: String },
    #[error("the engine did not become ready within {seconds} s")]
    EngineNotReady { seconds: u64 },
    #[error("invalid option: {0}")]
    Option(String),
    #[error("nothing to evaluate: {0}")]
    Empty(String),
}

impl EvalError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn input(path: &std::path::Path, msg: impl Into<String>) -> Self {
        EvalError::Input {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

//! Errors of the model layer.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path}: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("missing weight `{0}`")]
    MissingWeight(String),
    #[error("weight `{name}` has shape {got:?}, expected {expected:?}")]
    WeightShape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("cannot fetch model files: {0}")]
    Fetch(String),
    #[error("LoRA adapter {path}: {msg}")]
    Adapter { path: PathBuf, msg: String },
    #[error("sequence needs {needed} cache slots but the cache holds {capacity}")]
    CacheFull { needed: usize, capacity: usize },
    #[error("invalid input: {0}")]
    Input(String),
}

impl ModelError {
    /// Stable snake_case label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Candle(_) => "tensor",
            ModelError::Io { .. } => "io",
            ModelError::Format { .. } => "format",
            ModelError::MissingWeight(_) => "missing_weight",
            ModelError::WeightShape { .. } => "weight_shape",
            ModelError::Tokenizer(_) => "tokenizer",
            ModelError::Fetch(_) => "fetch",
            ModelError::Adapter { .. } => "adapter",
            ModelError::CacheFull { .. } => "cache_full",
            ModelError::Input(_) => "input",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        ModelError::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;

//! Errors of the data layer: each names the file and, where there is one, the row and field.

use std::path::PathBuf;

/// Everything that can go wrong while loading or writing training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV reader failed (bad quoting, wrong UTF-8, ...). `row` is 1-based, header = row 1.
    #[error("{path}: row {row}: CSV error: {message}")]
    Csv {
        path: PathBuf,
        row: u64,
        message: String,
    },
    /// A required column is missing from a CSV header.
    #[error("{path}: missing column `{column}` in header")]
    MissingColumn { path: PathBuf, column: String },
    /// A field's value could not be parsed. `row` is 1-based, header = row 1.
    #[error("{path}: row {row}, field `{field}`: {message} (value {value:?})")]
    Field {
        path: PathBuf,
        row: u64,
        field: String,
        value: String,
        message: String,
    },
    /// A line of a text table or JSONL file is malformed. `line` is 1-based.
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// The data set has no usable records (e.g. no `.hea` files under the root).
    #[error("{path}: {message}")]
    Empty { path: PathBuf, message: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn field(
        path: impl Into<PathBuf>,
        row: u64,
        field: &str,
        value: &str,
        message: impl Into<String>,
    ) -> Self {
        DataError::Field {
            path: path.into(),
            row,
            field: field.to_string(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}

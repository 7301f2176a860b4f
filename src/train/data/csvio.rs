//! Small CSV helpers: header lookup by name and row-numbered iteration with file-named errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::DataError;

/// A CSV file being read: its path, column indices by name and the reader.
pub(crate) struct CsvFile {
    pub path: PathBuf,
    columns: HashMap<String, usize>,
    reader: csv::Reader<std::fs::File>,
}

/// One data row with its 1-based line number (header = line 1).
pub(crate) struct Row<'a> {
    pub path: &'a Path,
    pub line: u64,
    pub record: csv::StringRecord,
}

impl CsvFile {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
        let headers = reader
            .headers()
            .map_err(|e| csv_error(path, 1, &e))?
            .clone();
        let columns = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_string(), i))
            .collect();
        Ok(CsvFile {
            path: path.to_path_buf(),
            columns,
            reader,
        })
    }

    /// Index of a required column.
    pub fn column(&self, name: &str) -> Result<usize, DataError> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| DataError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    /// Index of an optional column.
    pub fn optional_column(&self, name: &str) -> Option<usize> {
        self.columns.get(name).copied()
    }

    /// Calls `f` for every data row, stopping at the first error.
    pub fn for_each<F>(mut self, mut f: F) -> Result<(), DataError>
    where
        F: FnMut(Row<'_>) -> Result<(), DataError>,
    {
        let mut record = csv::StringRecord::new();
        let mut last_line = 1;
        loop {
            match self.reader.read_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    last_line = record.position().map_or(last_line + 1, |p| p.line());
                    f(Row {
                        path: &self.path,
                        line: last_line,
                        record: record.clone(),
                    })?;
                }
                Err(e) => {
                    let line = e.position().map_or(last_line + 1, |p| p.line());
                    return Err(csv_error(&self.path, line, &e));
                }
            }
        }
    }
}

impl Row<'_> {
    /// The field at `index` (empty string when the row is short).
    pub fn get(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or("")
    }

    /// Parses a field, naming file, line and field on failure.
    pub fn parse<T: std::str::FromStr>(&self, index: usize, field: &str) -> Result<T, DataError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.get(index).trim();
        value
            .parse::<T>()
            .map_err(|e| DataError::field(self.path, self.line, field, value, e.to_string()))
    }

    pub fn field_error(&self, index: usize, field: &str, message: impl Into<String>) -> DataError {
        DataError::field(self.path, self.line, field, self.get(index), message)
    }
}

fn csv_error(path: &Path, line: u64, e: &csv::Error) -> DataError {
    DataError::Csv {
        path: path.to_path_buf(),
        row: line,
        message: e.to_string(),
    }
}

//! Preprocessed ECG signals of the training records, read once and kept in memory.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::signal::{preprocess, read_wfdb};

use super::error::{Result, TrainError};

/// Samples per lead after preprocessing (500 Hz, 10 s).
pub const SAMPLES: usize = 5000;
/// Leads.
pub const LEADS: usize = 12;

pub struct EcgStore {
    root: PathBuf,
    cache: HashMap<String, Arc<Vec<f32>>>,
}

impl EcgStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        EcgStore {
            root: root.into(),
            cache: HashMap::new(),
        }
    }

    /// Puts a preprocessed signal (`12 * 5000`, lead-major) under `record` (tests, caches).
    pub fn insert(&mut self, record: &str, data: Vec<f32>) -> Result<()> {
        if data.len() != LEADS * SAMPLES {
            return Err(TrainError::Config(format!(
                "record {record}: {} values, expected {}",
                data.len(),
                LEADS * SAMPLES
            )));
        }
        self.cache.insert(record.to_string(), Arc::new(data));
        Ok(())
    }

    /// The preprocessed signal of `record` (path under the root, no extension).
    pub fn get(&mut self, record: &str) -> Result<Arc<Vec<f32>>> {
        if let Some(d) = self.cache.get(record) {
            return Ok(d.clone());
        }
        let sig = |source| TrainError::Signal {
            record: record.to_string(),
            source,
        };
        let raw = read_wfdb(&self.root.join(record)).map_err(sig)?;
        let ecg = preprocess(&raw).map_err(sig)?;
        self.insert(record, ecg.data)?;
        self.cache
            .get(record)
            .cloned()
            .ok_or_else(|| TrainError::Config(format!("record {record} vanished from the cache")))
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

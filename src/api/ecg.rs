//! The ECG object on the wire, and its conversion (via `crate::signal`) into the preprocessed
//! 12 x 5000 lead-major signal the engine takes.
//!
//! Two shapes are accepted (lead names case-insensitive; units `mV`, `uV`, `NU`):
//! `{"sampling_rate_hz": 500, "units": "mV", "leads": {"I": [...], ..., "V6": [...]}}` or
//! `{"sampling_rate_hz": 500, "units": "mV", "lead_names": ["I", ...], "signal": [[...], ...]}`.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::signal;

/// A 12-lead ECG, either as a lead map or as lead names plus a lead-major signal matrix.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"sampling_rate_hz": 500, "units": "mV",
    "leads": {"I": [0.01, 0.02], "II": [0.0, 0.01]}}))]
pub struct EcgInput {
    /// Samples per second of the given signal (resampled to 500 Hz by the service).
    pub sampling_rate_hz: f64,
    /// `mV`, `uV` or `NU` (already normalised).
    pub units: String,
    /// Lead name -> samples. Exclusive with `lead_names` + `signal`.
    #[schema(value_type = Option<std::collections::HashMap<String, Vec<f32>>>)]
    #[serde(default)]
    pub leads: Option<LeadMap>,
    /// Lead names, one per row of `signal`.
    #[serde(default)]
    pub lead_names: Option<Vec<String>>,
    /// Lead-major samples: `signal[i]` belongs to `lead_names[i]`.
    #[serde(default)]
    pub signal: Option<Vec<Vec<f32>>>,
}

/// Lead map that keeps the order and any duplicate names as sent.
#[derive(Debug, Clone, Default)]
pub struct LeadMap(pub Vec<(String, Vec<f32>)>);

impl<'de> Deserialize<'de> for LeadMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LeadMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of lead name -> array of numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LeadMap, A::Error> {
                let mut v = Vec::with_capacity(12);
                while let Some(entry) = m.next_entry::<String, Vec<f32>>()? {
                    v.push(entry);
                }
                Ok(LeadMap(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl EcgInput {
    /// Check the form and build the raw signal; `path` is the JSON path of this object (e.g.
    /// `ecg`), used in error messages such as `ecg.leads.V3: ...`.
    pub fn into_raw(self, path: &str) -> Result<signal::RawEcg, ApiError> {
        match (self.leads, self.lead_names, self.signal) {
            (Some(leads), None, None) => {
                signal::raw_from_lead_map(self.sampling_rate_hz, &self.units, leads.0)
            }
            (None, Some(names), Some(rows)) => {
                signal::raw_from_arrays(self.sampling_rate_hz, &self.units, names, rows)
            }
            _ => {
                return Err(ApiError::InvalidBody {
                    param: Some(path.to_string()),
                    message: format!(
                        "{path} must have either `leads` or both `lead_names` and `signal`"
                    ),
                })
            }
        }
        .map_err(|e| ecg_error(path, e))
    }

    /// Check and preprocess into the 12 x 5000 lead-major model input.
    pub fn preprocess(self, path: &str) -> Result<Vec<f32>, ApiError> {
        let raw = self.into_raw(path)?;
        let ecg = signal::preprocess(&raw).map_err(|e| ecg_error(path, e))?;
        Ok(ecg.data)
    }
}

/// A signal error as an API error whose `param` is rooted at `path`.
fn ecg_error(path: &str, e: signal::SignalError) -> ApiError {
    // The signal layer names fields from `ecg`; re-root them at this object's path.
    let param = match e.field() {
        Some(f) => match f.strip_prefix("ecg") {
            Some(rest) => format!("{path}{rest}"),
            None => format!("{path}.{f}"),
        },
        None => path.to_string(),
    };
    ApiError::InvalidEcg {
        param,
        message: e.to_string(),
    }
}

//! The JSON ECG object (the same everywhere: CLI files, the HTTP API):
//! `{"sampling_rate_hz": 500, "units": "mV", "leads": {"I": [...], ..., "V6": [...]}}` or
//! `{"sampling_rate_hz": 500, "units": "mV", "lead_names": [...], "signal": [[...], ...]}`.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{raw_from_arrays, raw_from_lead_map, RawEcg, SignalError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcgJson {
    pub sampling_rate_hz: f64,
    #[serde(default = "default_units")]
    pub units: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads: Option<BTreeMap<String, Vec<f32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Vec<Vec<f32>>>,
}

fn default_units() -> String {
    "mV".into()
}

impl EcgJson {
    /// Validates the form (exactly one of `leads` or `lead_names` + `signal`) and builds the raw
    /// signal.
    pub fn into_raw(self) -> Result<RawEcg, SignalError> {
        match (self.leads, self.lead_names, self.signal) {
            (Some(leads), None, None) => raw_from_lead_map(
                self.sampling_rate_hz,
                &self.units,
                leads.into_iter().collect(),
            ),
            (None, Some(names), Some(signal)) => {
                raw_from_arrays(self.sampling_rate_hz, &self.units, names, signal)
            }
            _ => Err(SignalError::Form {
                msg: "give either `leads` (an object of lead name -> samples) or both \
                      `lead_names` and `signal`"
                    .into(),
            }),
        }
    }

    /// The JSON form of a raw signal (lead map).
    pub fn from_raw(raw: &RawEcg) -> Self {
        EcgJson {
            sampling_rate_hz: raw.sampling_rate_hz,
            units: raw.units.as_str().to_string(),
            leads: Some(raw.leads.iter().cloned().collect()),
            lead_names: None,
            signal: None,
        }
    }
}

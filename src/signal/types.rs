//! Input/output types and the JSON-facing constructors.

use super::{SignalError, LEADS, TARGET_LEN};

/// Physical unit of the input samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Units {
    /// Millivolts (the pipeline's working unit).
    MilliVolt,
    /// Microvolts (divided by 1000 on input).
    MicroVolt,
    /// "Normalized units": already band-passed and z-scored (PTB-XL processed records);
    /// the pipeline does not filter these again.
    Normalized,
}

impl Units {
    /// Parses `"mV"`, `"uV"` / `"µV"` (micro sign or Greek mu) and `"NU"`, case-insensitively
    /// and ignoring surrounding whitespace.
    pub fn parse(s: &str) -> Result<Units, SignalError> {
        match s.trim().to_lowercase().as_str() {
            "mv" => Ok(Units::MilliVolt),
            "uv" | "\u{b5}v" | "\u{3bc}v" => Ok(Units::MicroVolt),
            "nu" => Ok(Units::Normalized),
            _ => Err(SignalError::UnknownUnit {
                unit: s.to_string(),
            }),
        }
    }

    /// Canonical spelling: `"mV"`, `"uV"` or `"NU"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Units::MilliVolt => "mV",
            Units::MicroVolt => "uV",
            Units::Normalized => "NU",
        }
    }
}

/// An ECG as received: any lead order, lead names as given, any number of leads.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEcg {
    pub sampling_rate_hz: f64,
    pub units: Units,
    pub leads: Vec<(String, Vec<f32>)>,
}

/// The preprocessed model input.
#[derive(Clone, Debug, PartialEq)]
pub struct Ecg {
    /// `12 * 5000` values, lead-major, leads in [`LEADS`] order, 500 Hz, band-passed and
    /// z-scored.
    pub data: Vec<f32>,
}

impl Ecg {
    /// The samples of lead `i` (index into [`LEADS`]). Panics if `i >= 12`.
    pub fn lead(&self, i: usize) -> &[f32] {
        &self.data[i * TARGET_LEN..(i + 1) * TARGET_LEN]
    }

    /// The samples of the lead named `name` (case-insensitive), if it is a standard lead.
    pub fn lead_by_name(&self, name: &str) -> Option<&[f32]> {
        LEADS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name.trim()))
            .map(|i| self.lead(i))
    }
}

/// Builds a [`RawEcg`] from a JSON object of the form `{"I": [...], "II": [...], ...}`
/// (already collected into `(name, samples)` pairs). Only the unit is validated here;
/// leads, lengths and the rate are checked by [`super::preprocess`].
pub fn raw_from_lead_map(
    sampling_rate_hz: f64,
    units: &str,
    leads: Vec<(String, Vec<f32>)>,
) -> Result<RawEcg, SignalError> {
    Ok(RawEcg {
        sampling_rate_hz,
        units: Units::parse(units)?,
        leads,
    })
}

/// Builds a [`RawEcg`] from lead names plus a 2-D signal array.
///
/// `signal` is read as lead-major (`signal[lead][sample]`) when it has exactly
/// `lead_names.len()` rows; otherwise as sample-major (`signal[sample][lead]`, e.g. numpy's
/// `(5000, 12).tolist()`) when every row has exactly `lead_names.len()` values. Anything else
/// is a [`SignalError::LeadCountMismatch`]; ragged lead-major rows are reported later by
/// [`super::preprocess`] as [`SignalError::LengthMismatch`].
pub fn raw_from_arrays(
    sampling_rate_hz: f64,
    units: &str,
    lead_names: Vec<String>,
    signal: Vec<Vec<f32>>,
) -> Result<RawEcg, SignalError> {
    let units = Units::parse(units)?;
    let n = lead_names.len();
    let leads = if signal.len() == n {
        lead_names.into_iter().zip(signal).collect()
    } else if n > 0 && !signal.is_empty() && signal.iter().all(|row| row.len() == n) {
        let mut cols: Vec<Vec<f32>> = vec![Vec::with_capacity(signal.len()); n];
        for row in &signal {
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(*v);
            }
        }
        lead_names.into_iter().zip(cols).collect()
    } else {
        let signals = match signal.first() {
            Some(row) if signal.len() < row.len() => signal.len(),
            Some(row) => row.len(),
            None => 0,
        };
        return Err(SignalError::LeadCountMismatch { names: n, signals });
    };
    Ok(RawEcg {
        sampling_rate_hz,
        units,
        leads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        assert_eq!(Units::parse("mV").unwrap(), Units::MilliVolt);
        assert_eq!(Units::parse(" MV ").unwrap(), Units::MilliVolt);
        assert_eq!(Units::parse("uV").unwrap(), Units::MicroVolt);
        assert_eq!(Units::parse("µV").unwrap(), Units::MicroVolt);
        assert_eq!(Units::parse("μV").unwrap(), Units::MicroVolt);
        assert_eq!(Units::parse("nu").unwrap(), Units::Normalized);
        let e = Units::parse("volts").unwrap_err();
        assert_eq!(e.kind(), "unknown_unit");
        assert_eq!(e.field().as_deref(), Some("ecg.units"));
        assert!(matches!(e, SignalError::UnknownUnit { unit } if unit == "volts"));
        for u in [Units::MilliVolt, Units::MicroVolt, Units::Normalized] {
            assert_eq!(Units::parse(u.as_str()).unwrap(), u);
        }
    }

    #[test]
    fn units_serde_roundtrip() {
        let s = serde_json::to_string(&Units::MicroVolt).unwrap();
        assert_eq!(s, "\"MicroVolt\"");
        let u: Units = serde_json::from_str(&s).unwrap();
        assert_eq!(u, Units::MicroVolt);
    }

    #[test]
    fn arrays_lead_major_and_sample_major() {
        let names: Vec<String> = vec!["I".into(), "II".into()];
        let r = raw_from_arrays(
            500.0,
            "mV",
            names.clone(),
            vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]],
        )
        .unwrap();
        assert_eq!(r.leads[1], ("II".to_string(), vec![4.0, 5.0, 6.0]));
        let r = raw_from_arrays(
            500.0,
            "mV",
            names,
            vec![vec![1.0, 4.0], vec![2.0, 5.0], vec![3.0, 6.0]],
        )
        .unwrap();
        assert_eq!(r.leads[0], ("I".to_string(), vec![1.0, 2.0, 3.0]));
        assert_eq!(r.leads[1], ("II".to_string(), vec![4.0, 5.0, 6.0]));
    }

    #[test]
    fn arrays_count_mismatch() {
        let names: Vec<String> = vec!["I".into(), "II".into(), "III".into()];
        let e = raw_from_arrays(500.0, "mV", names, vec![vec![0.0; 10]; 2]).unwrap_err();
        assert!(matches!(
            e,
            SignalError::LeadCountMismatch {
                names: 3,
                signals: 2
            }
        ));
        assert_eq!(e.kind(), "lead_count_mismatch");
        let e = raw_from_arrays(500.0, "mV", vec!["I".into()], vec![]).unwrap_err();
        assert!(matches!(
            e,
            SignalError::LeadCountMismatch {
                names: 1,
                signals: 0
            }
        ));
    }

    #[test]
    fn lead_map_parses_units() {
        let r = raw_from_lead_map(250.0, "uV", vec![("v1".into(), vec![1.0])]).unwrap();
        assert_eq!(r.units, Units::MicroVolt);
        assert!(raw_from_lead_map(250.0, "?", vec![]).is_err());
    }
}

//! Errors of the signal module. Each variant names the offending lead / value so that the
//! server can answer with a precise message; [`SignalError::kind`] gives a stable label and
//! [`SignalError::field`] the request field it concerns.

use std::path::PathBuf;

/// Everything that can go wrong while reading or preprocessing an ECG.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// A sample is NaN or infinite (WFDB "missing value" samples are read as NaN).
    #[error("lead {lead}: non-finite sample at index {index}")]
    NonFinite { lead: String, index: usize },
    /// One of the 12 standard leads is absent.
    #[error("missing lead {lead}")]
    MissingLead { lead: String },
    /// A standard lead is given more than once (names compared case-insensitively).
    #[error("lead {lead} given more than once")]
    DuplicateLead { lead: String },
    /// A lead is (numerically) constant after filtering: std < 1e-6.
    #[error("lead {lead} is flat (std {std:e} < 1e-6)")]
    FlatLead { lead: String, std: f64 },
    /// The record is shorter than the minimum duration after resampling.
    #[error("record is {seconds:.3} s long, at least {min_seconds} s are required")]
    TooShort { seconds: f64, min_seconds: f64 },
    /// A unit string other than mV, uV/µV or NU.
    #[error("unknown unit {unit:?} (expected mV, uV or NU)")]
    UnknownUnit { unit: String },
    /// A WFDB storage format (or samples-per-frame layout) this reader does not handle.
    #[error("unsupported WFDB format {format:?} (supported: 16, 212, one sample per frame)")]
    UnsupportedFormat { format: String },
    /// A sampling rate that is not a finite integer in 50..=10000 Hz.
    #[error("unsupported sampling rate {hz} Hz (integer rates 50..=10000 Hz are accepted)")]
    UnsupportedRate { hz: f64 },
    /// A lead whose length differs from the first standard lead's.
    #[error("lead {lead} has {len} samples, expected {expected}")]
    LengthMismatch {
        lead: String,
        len: usize,
        expected: usize,
    },
    /// The number of lead names does not match the number of signal rows/columns.
    #[error("{names} lead names but the signal has {signals} leads")]
    LeadCountMismatch { names: usize, signals: usize },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A WFDB header line is malformed (`line` is 1-based).
    #[error("{path}:{line}: {msg}")]
    Header {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// A data file is shorter than the header says, or otherwise inconsistent.
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
}

impl SignalError {
    /// Stable snake_case label, for API error bodies and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SignalError::NonFinite { .. } => "non_finite",
            SignalError::MissingLead { .. } => "missing_lead",
            SignalError::DuplicateLead { .. } => "duplicate_lead",
            SignalError::FlatLead { .. } => "flat_lead",
            SignalError::TooShort { .. } => "too_short",
            SignalError::UnknownUnit { .. } => "unknown_unit",
            SignalError::UnsupportedFormat { .. } => "unsupported_format",
            SignalError::UnsupportedRate { .. } => "unsupported_rate",
            SignalError::LengthMismatch { .. } => "length_mismatch",
            SignalError::LeadCountMismatch { .. } => "lead_count_mismatch",
            SignalError::Io { .. } => "io",
            SignalError::Header { .. } => "header",
            SignalError::Data { .. } => "data",
        }
    }

    /// The JSON request field the error concerns, e.g. `"ecg.leads.V3"`,
    /// `"ecg.sampling_rate_hz"`, `"ecg.units"`; `None` for file errors.
    pub fn field(&self) -> Option<String> {
        match self {
            SignalError::NonFinite { lead, .. }
            | SignalError::MissingLead { lead }
            | SignalError::DuplicateLead { lead }
            | SignalError::FlatLead { lead, .. }
            | SignalError::LengthMismatch { lead, .. } => Some(format!("ecg.leads.{lead}")),
            SignalError::TooShort { .. } | SignalError::LeadCountMismatch { .. } => {
                Some("ecg.leads".to_string())
            }
            SignalError::UnknownUnit { .. } => Some("ecg.units".to_string()),
            SignalError::UnsupportedRate { .. } => Some("ecg.sampling_rate_hz".to_string()),
            SignalError::UnsupportedFormat { .. }
            | SignalError::Io { .. }
            | SignalError::Header { .. }
            | SignalError::Data { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_fields() {
        let e = SignalError::MissingLead { lead: "V3".into() };
        assert_eq!(e.kind(), "missing_lead");
        assert_eq!(e.field().as_deref(), Some("ecg.leads.V3"));
        assert_eq!(e.to_string(), "missing lead V3");
        let e = SignalError::UnsupportedRate { hz: 7.5 };
        assert_eq!(e.field().as_deref(), Some("ecg.sampling_rate_hz"));
        let e = SignalError::Io {
            path: "x.hea".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.kind(), "io");
        assert_eq!(e.field(), None);
    }
}

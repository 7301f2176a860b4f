//! ECG signal input and preprocessing for the MEIT ECG report service (DESIGN.md §3).
//!
//! The service accepts 12-lead ECGs as JSON ([`raw_from_lead_map`], [`raw_from_arrays`]) or
//! WFDB records ([`read_wfdb`]; MATLAB v4 `.mat` via [`read_mat_v4`], MATLAB 5 matrices via
//! [`read_mat_v5`]) and turns them into
//! the model input with [`preprocess`]: a `12 x 5000` lead-major `f32` array at 500 Hz,
//! band-passed 0.5-40 Hz (Butterworth order 4, zero-phase, scipy `filtfilt` semantics) and
//! z-scored per lead — the same preprocessing the PTB-XL training records went through.
//! See [`preprocess`] for the exact rules.

mod butter;
mod error;
mod filtfilt;
mod mat;
mod mat5;
mod pipeline;
mod resample;
mod types;
mod wfdb;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod testutil;

pub use butter::butter_bandpass;
pub use error::SignalError;
pub use filtfilt::{
    bandpass_filtfilt, bandpass_filtfilt_lanes, filtfilt, filtfilt_lanes, lfilter, lfilter_zi,
    BANDPASS_HIGH_HZ, BANDPASS_LOW_HZ, BUTTER_ORDER,
};
pub use mat::{read_mat_v4, read_mat_v4_matrix, MatMatrix};
pub use mat5::{parse_mat_v5, read_mat_v5};
pub use pipeline::{
    preprocess, zscore, FLAT_STD_THRESHOLD, MAX_RATE_HZ, MAX_SECONDS, MIN_RATE_HZ, MIN_SECONDS,
};
pub use resample::resample_poly;
pub use types::{raw_from_arrays, raw_from_lead_map, Ecg, RawEcg, Units};
pub use wfdb::read_wfdb;

/// The 12 standard leads, in the model's order.
pub const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];
/// Sampling rate of the model input.
pub const TARGET_RATE_HZ: f64 = 500.0;
/// Samples per lead of the model input (10 s at 500 Hz).
pub const TARGET_LEN: usize = 5000;

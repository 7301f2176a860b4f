//! Tests against the scipy reference outputs and real records in `tests/fixtures/`.
//! Run with `--nocapture` to see the achieved tolerances.

#![allow(clippy::needless_range_loop)]

use super::testutil::{fixture, max_abs_diff, read_npy};
use super::*;

const RAW_RECORDS: [&str; 10] = [
    "06000", "06001", "06002", "06003", "06004", "06005", "06006", "06007", "06008", "06009",
];

fn raw_record(id: &str) -> RawEcg {
    read_wfdb(&fixture(&format!("ptbxl-raw/records500/06000/{id}_hr"))).unwrap()
}

/// The raw lead matching `LEADS[i]` (case-insensitive), as f64.
fn lead_f64(raw: &RawEcg, i: usize) -> Vec<f64> {
    let (_, v) = raw
        .leads
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(LEADS[i]))
        .unwrap();
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn butter_coefficients_match_manifest() {
    let text = std::fs::read_to_string(fixture("preprocess/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let want = |k: &str| -> Vec<f64> {
        m[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (b, a) = butter_bandpass(BUTTER_ORDER, BANDPASS_LOW_HZ, BANDPASS_HIGH_HZ, 500.0).unwrap();
    for (got, want) in [(b, want("b")), (a, want("a"))] {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * w.abs(), "got {g}, want {w}");
        }
    }
}

#[test]
fn wfdb_reads_raw_record() {
    let raw = raw_record("06000");
    assert_eq!(raw.sampling_rate_hz, 500.0);
    assert_eq!(raw.units, Units::MilliVolt);
    let names: Vec<&str> = raw.leads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[3], "AVR");
    assert!(raw.leads.iter().all(|(_, v)| v.len() == 5000));
    // First sample of lead I: digital 10, baseline 0, gain 1000 (header initial value).
    assert_eq!(raw.leads[0].1[0], 0.01);
    assert_eq!(raw.leads[6].1[0], -0.085);
}

#[test]
fn filtered_matches_scipy() {
    let mut worst: f64 = 0.0;
    for id in RAW_RECORDS {
        let raw = raw_record(id);
        let gold = read_npy(&format!("preprocess/{id}_filtered.npy"));
        assert_eq!(gold.shape, vec![5000, 12]);
        for i in 0..12 {
            let y = bandpass_filtfilt(&lead_f64(&raw, i), 500.0);
            let d = max_abs_diff(&y, &gold.column(i));
            assert!(d <= 1e-4, "{id} {}: {d:e}", LEADS[i]);
            worst = worst.max(d);
        }
    }
    println!("filtered: max abs diff vs scipy = {worst:e} mV");
}

#[test]
fn default_padlen_is_scipys_27() {
    // The manifest's prose says padlen = 3*max-3 (24); scipy's default is 3*max = 27.
    // The golden data decide: 27 must fit better than 24.
    let raw = raw_record("06003");
    let gold = read_npy("preprocess/06003_filtered.npy");
    let (b, a) = butter_bandpass(4, 0.5, 40.0, 500.0).unwrap();
    let (mut d24, mut d27) = (0.0f64, 0.0f64);
    for i in 0..12 {
        let x = lead_f64(&raw, i);
        let g = gold.column(i);
        d24 = d24.max(max_abs_diff(&filtfilt(&b, &a, &x, Some(24)), &g));
        d27 = d27.max(max_abs_diff(&filtfilt(&b, &a, &x, Some(27)), &g));
    }
    println!("padlen 24: {d24:e}, padlen 27: {d27:e}");
    assert!(d27 <= d24, "padlen 24 {d24:e} < 27 {d27:e}");
}

#[test]
fn normalized_matches_scipy() {
    let mut worst: f64 = 0.0;
    for id in RAW_RECORDS {
        let ecg = preprocess(&raw_record(id)).unwrap();
        assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
        let gold = read_npy(&format!("preprocess/{id}_normalized.npy"));
        for i in 0..12 {
            let got: Vec<f64> = ecg.lead(i).iter().map(|&v| v as f64).collect();
            let d = max_abs_diff(&got, &gold.column(i));
            assert!(d <= 1e-3, "{id} {}: {d:e}", LEADS[i]);
            worst = worst.max(d);
        }
    }
    println!("normalized: max abs diff vs scipy = {worst:e}");
}

#[test]
fn resample_matches_scipy() {
    let raw = read_wfdb(&fixture("ptbxl-raw/records100/00000/00001_lr")).unwrap();
    assert_eq!(raw.sampling_rate_hz, 100.0);
    let gold = read_npy("preprocess/00001_lr_resample_poly_5_1.npy");
    assert_eq!(gold.shape, vec![5000, 12]);
    let mut worst: f64 = 0.0;
    for i in 0..12 {
        let y = resample_poly(&lead_f64(&raw, i), 5, 1);
        let d = max_abs_diff(&y, &gold.column(i));
        assert!(d <= 1e-4, "{}: {d:e}", LEADS[i]);
        worst = worst.max(d);
    }
    println!("resample_poly(5, 1): max abs diff vs scipy = {worst:e} mV");
    // The whole pipeline accepts the 100 Hz record.
    let ecg = preprocess(&raw).unwrap();
    assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
}

#[test]
fn processed_nu_records_are_not_filtered_again() {
    for id in ["00009", "00024"] {
        let raw = read_wfdb(&fixture(&format!("ptbxl/records500/00000/{id}_hr"))).unwrap();
        assert_eq!(raw.units, Units::Normalized);
        let ecg = preprocess(&raw).unwrap();
        let mut worst: f64 = 0.0;
        let mut refiltered: f64 = 0.0;
        for i in 0..12 {
            let x = lead_f64(&raw, i);
            let got: Vec<f64> = ecg.lead(i).iter().map(|&v| v as f64).collect();
            worst = worst.max(max_abs_diff(&got, &x));
            // What filtering twice would have produced, for contrast.
            let twice = zscore(&bandpass_filtfilt(&x, 500.0)).unwrap();
            refiltered = refiltered.max(max_abs_diff(&twice, &x));
        }
        println!("NU {id}: preprocess vs own samples {worst:e}; if re-filtered {refiltered:e}");
        assert!(worst <= 5e-3, "{id}: {worst:e}");
        assert!(refiltered > 10.0 * worst, "{id}: contrast too small");
    }
}

#[test]
fn mat_v4_reader_matches_wfdb_reader() {
    // CinC 2021 headers describe the .mat as WFDB format "16x1+24", so both readers apply.
    let rec = fixture("cinc2021/georgia/E07500");
    let a = read_mat_v4(&rec).unwrap();
    let b = read_wfdb(&rec).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.leads.len(), 12);
    assert_eq!(a.leads[0].1.len(), 5000);
    // Header initial value of lead I is -68 (gain 1000).
    assert_eq!(a.leads[0].1[0], -0.068);
    let m = read_mat_v4_matrix(&fixture("cinc2021/georgia/E07500.mat"), "val").unwrap();
    assert_eq!((m.rows, m.cols), (12, 5000));
    assert_eq!(m.get(1, 0), -58.0);
    assert!(preprocess(&a).is_ok());
}

#[test]
fn mat_v4_rejects_matlab5_and_missing_matrix() {
    let e = read_mat_v4_matrix(&fixture("cinc2021/georgia/E07500.mat"), "nope").unwrap_err();
    assert_eq!(e.kind(), "data");
    let dir = std::env::temp_dir().join(format!("meit-signal-mat5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("x.mat");
    std::fs::write(&p, b"MATLAB 5.0 MAT-file, Platform: whatever").unwrap();
    let e = read_mat_v4_matrix(&p, "val").unwrap_err();
    assert_eq!(e.kind(), "unsupported_format");
    std::fs::remove_dir_all(&dir).unwrap();
}

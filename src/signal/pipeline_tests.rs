//! Behaviour of `preprocess` and the readers on synthetic input, one test per error variant.

#![allow(clippy::needless_range_loop)]

use std::f64::consts::PI;
use std::path::PathBuf;

use super::*;

/// 12 standard leads (names as given), `seconds` long at `rate`, distinct sinusoids in mV.
fn synth(rate: f64, seconds: f64, names: &[&str]) -> RawEcg {
    let n = (rate * seconds).round() as usize;
    let leads = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let f = 1.0 + i as f64 * 0.7;
            let v = (0..n)
                .map(|k| {
                    let t = k as f64 / rate;
                    ((2.0 * PI * f * t).sin() + 0.3 * (2.0 * PI * 7.0 * t).cos() + 0.5) as f32
                })
                .collect();
            (name.to_string(), v)
        })
        .collect();
    RawEcg {
        sampling_rate_hz: rate,
        units: Units::MilliVolt,
        leads,
    }
}

fn std12(rate: f64, seconds: f64) -> RawEcg {
    synth(rate, seconds, &LEADS)
}

fn set(raw: &mut RawEcg, lead: &str, f: impl FnOnce(&mut Vec<f32>)) {
    let l = raw.leads.iter_mut().find(|(n, _)| n == lead).unwrap();
    f(&mut l.1);
}

/// A fresh scratch directory under the system temp dir.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meit-signal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn ok_output_shape_and_stats() {
    let ecg = preprocess(&std12(500.0, 10.0)).unwrap();
    assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
    for i in 0..12 {
        let x: Vec<f64> = ecg.lead(i).iter().map(|&v| v as f64).collect();
        let mean = x.iter().sum::<f64>() / 5000.0;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5000.0;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4);
    }
    assert_eq!(ecg.lead_by_name("avf"), Some(ecg.lead(5)));
}

#[test]
fn names_case_insensitive_order_free_extras_ignored() {
    let reference = preprocess(&std12(500.0, 10.0)).unwrap();
    let mut raw = std12(500.0, 10.0);
    for (n, _) in raw.leads.iter_mut() {
        *n = n.to_uppercase();
    }
    raw.leads.reverse();
    raw.leads.push(("vx".into(), vec![0.0; 3])); // extra lead, other length: ignored
    raw.leads.push(("vy".into(), vec![f32::NAN; 5000])); // extra lead, NaN: ignored
    assert_eq!(preprocess(&raw).unwrap(), reference);
}

#[test]
fn microvolts_are_converted() {
    let mut raw = std12(500.0, 10.0);
    let reference = preprocess(&raw).unwrap();
    raw.units = Units::MicroVolt;
    for (_, v) in raw.leads.iter_mut() {
        v.iter_mut().for_each(|x| *x *= 1000.0);
    }
    let got = preprocess(&raw).unwrap();
    let d = got
        .data
        .iter()
        .zip(&reference.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(d < 1e-4, "{d}");
    // 0.5 uV of amplitude is 5e-4 mV: still above the flat threshold after conversion.
    let mut tiny = std12(500.0, 10.0);
    tiny.units = Units::MicroVolt;
    assert!(preprocess(&tiny).is_ok());
}

#[test]
fn other_rates_are_resampled() {
    // Same analog signal sampled at different rates gives nearly the same model input.
    let reference = preprocess(&std12(500.0, 10.0)).unwrap();
    for rate in [100.0, 250.0, 257.0, 400.0, 1000.0] {
        let ecg = preprocess(&std12(rate, 10.0)).unwrap();
        assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
        // Compare away from the edges (filter/resampler transients).
        for i in 0..12 {
            let d = ecg.lead(i)[500..4500]
                .iter()
                .zip(&reference.lead(i)[500..4500])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // The record end (last input sample at 10 s - 1/rate) is extrapolated differently per
            // rate; the high-pass spreads that a little, so allow a few hundredths of a std.
            assert!(d < 0.05, "rate {rate} lead {i}: {d}");
        }
    }
}

#[test]
fn long_records_keep_first_ten_seconds() {
    let long = std12(500.0, 12.0);
    let mut first = long.clone();
    for (_, v) in first.leads.iter_mut() {
        v.truncate(5000);
    }
    assert_eq!(preprocess(&long).unwrap(), preprocess(&first).unwrap());
    // At 1000 Hz only 11 s are resampled; identical to resampling everything then cropping.
    let long = std12(1000.0, 30.0);
    let x: Vec<f64> = long.leads[0].1.iter().map(|&v| v as f64).collect();
    let full = resample_poly(&x, 1, 2);
    let part = resample_poly(&x[..11_000], 1, 2);
    assert_eq!(full[..5000], part[..5000]);
}

#[test]
fn records_between_8_and_10_s_are_reflect_padded() {
    let ecg = preprocess(&std12(500.0, 9.0)).unwrap();
    assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
    let ecg = preprocess(&std12(500.0, 8.0)).unwrap();
    assert_eq!(ecg.data.len(), 12 * TARGET_LEN);
}

#[test]
fn err_too_short() {
    let e = preprocess(&std12(500.0, 7.9)).unwrap_err();
    assert!(matches!(e, SignalError::TooShort { min_seconds, .. } if min_seconds == 8.0));
    assert_eq!(e.kind(), "too_short");
    assert_eq!(e.field().as_deref(), Some("ecg.leads"));
    let e = preprocess(&std12(500.0, 0.0)).unwrap_err();
    assert_eq!(e.kind(), "too_short");
}

#[test]
fn err_non_finite() {
    let mut raw = std12(500.0, 10.0);
    set(&mut raw, "V3", |v| v[123] = f32::NAN);
    set(&mut raw, "V5", |v| v[7] = f32::INFINITY);
    let e = preprocess(&raw).unwrap_err();
    assert!(matches!(&e, SignalError::NonFinite { lead, index: 123 } if lead == "V3"));
    assert_eq!(e.kind(), "non_finite");
    assert_eq!(e.field().as_deref(), Some("ecg.leads.V3"));
}

#[test]
fn err_missing_lead() {
    let mut raw = std12(500.0, 10.0);
    raw.leads.retain(|(n, _)| n != "aVL");
    let e = preprocess(&raw).unwrap_err();
    assert!(matches!(&e, SignalError::MissingLead { lead } if lead == "aVL"));
    assert_eq!(e.field().as_deref(), Some("ecg.leads.aVL"));
}

#[test]
fn err_duplicate_lead() {
    let mut raw = std12(500.0, 10.0);
    raw.leads.push(("AVR".into(), vec![0.0; 5000]));
    let e = preprocess(&raw).unwrap_err();
    assert!(matches!(&e, SignalError::DuplicateLead { lead } if lead == "aVR"));
    assert_eq!(e.kind(), "duplicate_lead");
}

#[test]
fn err_flat_lead() {
    let mut raw = std12(500.0, 10.0);
    set(&mut raw, "II", |v| v.iter_mut().for_each(|x| *x = 0.7));
    let e = preprocess(&raw).unwrap_err();
    assert!(matches!(&e, SignalError::FlatLead { lead, .. } if lead == "II"));
    assert_eq!(e.kind(), "flat_lead");
    // Flat NU input is rejected too.
    raw.units = Units::Normalized;
    assert_eq!(preprocess(&raw).unwrap_err().kind(), "flat_lead");
}

#[test]
fn err_length_mismatch() {
    let mut raw = std12(500.0, 10.0);
    set(&mut raw, "V2", |v| v.truncate(4999));
    let e = preprocess(&raw).unwrap_err();
    assert!(matches!(
        &e,
        SignalError::LengthMismatch { lead, len: 4999, expected: 5000 } if lead == "V2"
    ));
    assert_eq!(e.field().as_deref(), Some("ecg.leads.V2"));
}

#[test]
fn err_unsupported_rate() {
    for rate in [499.5, 20.0, 0.0, -1.0, 20_000.0, f64::NAN] {
        let mut raw = std12(500.0, 10.0);
        raw.sampling_rate_hz = rate;
        let e = preprocess(&raw).unwrap_err();
        assert_eq!(e.kind(), "unsupported_rate", "{rate}");
        assert_eq!(e.field().as_deref(), Some("ecg.sampling_rate_hz"));
    }
}

#[test]
fn err_unknown_unit() {
    let e = raw_from_lead_map(500.0, "mmHg", vec![]).unwrap_err();
    assert!(matches!(&e, SignalError::UnknownUnit { unit } if unit == "mmHg"));
    let e = raw_from_arrays(500.0, "volt", vec![], vec![]).unwrap_err();
    assert_eq!(e.kind(), "unknown_unit");
}

#[test]
fn json_helpers_feed_preprocess() {
    let raw = std12(500.0, 10.0);
    let names: Vec<String> = raw.leads.iter().map(|(n, _)| n.clone()).collect();
    let cols: Vec<Vec<f32>> = raw.leads.iter().map(|(_, v)| v.clone()).collect();
    let rows: Vec<Vec<f32>> = (0..5000)
        .map(|k| cols.iter().map(|c| c[k]).collect())
        .collect();
    let a = raw_from_arrays(500.0, "mV", names.clone(), cols).unwrap();
    let b = raw_from_arrays(500.0, "mV", names, rows).unwrap();
    let c = raw_from_lead_map(500.0, "mV", raw.leads.clone()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert!(preprocess(&a).is_ok());
}

/// Writes a 12-lead WFDB record (format 16 or 212) of small digital values.
fn write_record(dir: &std::path::Path, fmt: u32, nsamp: usize) -> (PathBuf, Vec<Vec<i32>>) {
    let digital: Vec<Vec<i32>> = (0..12)
        .map(|l| {
            (0..nsamp)
                .map(|k| ((k as f64 * 0.05 + l as f64).sin() * 900.0) as i32 - 40)
                .collect()
        })
        .collect();
    let mut hea = format!("rec 12 500 {nsamp}\n");
    for (l, name) in LEADS.iter().enumerate() {
        let d0 = digital[l][0];
        hea += &format!("rec.dat {fmt} 200(10)/mV 12 0 {d0} 0 0 {name}\n");
    }
    std::fs::write(dir.join("rec.hea"), hea).unwrap();
    let frame: Vec<i32> = (0..nsamp)
        .flat_map(|k| (0..12).map(move |l| (k, l)))
        .map(|(k, l)| digital[l][k])
        .collect();
    let bytes: Vec<u8> = if fmt == 16 {
        frame
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect()
    } else {
        frame
            .chunks(2)
            .flat_map(|p| {
                let a = p[0] & 0xfff;
                let b = p.get(1).copied().unwrap_or(0) & 0xfff;
                [
                    (a & 0xff) as u8,
                    ((a >> 8) | ((b >> 8) << 4)) as u8,
                    (b & 0xff) as u8,
                ]
            })
            .collect()
    };
    std::fs::write(dir.join("rec.dat"), bytes).unwrap();
    (dir.join("rec"), digital)
}

#[test]
fn wfdb_formats_16_and_212_roundtrip() {
    for fmt in [16, 212] {
        let dir = scratch(&format!("fmt{fmt}"));
        let (rec, digital) = write_record(&dir, fmt, 4501);
        let raw = read_wfdb(&rec).unwrap();
        assert_eq!(raw.leads.len(), 12);
        for (l, (name, v)) in raw.leads.iter().enumerate() {
            assert_eq!(name, LEADS[l]);
            for (k, &x) in v.iter().enumerate() {
                assert_eq!(
                    x,
                    ((digital[l][k] - 10) as f64 / 200.0) as f32,
                    "{fmt} {l} {k}"
                );
            }
        }
        assert!(preprocess(&raw).is_ok()); // 9 s: padded
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn err_io() {
    let e = read_wfdb(std::path::Path::new("/nonexistent/meit/rec")).unwrap_err();
    assert!(matches!(&e, SignalError::Io { path, .. } if path.ends_with("rec.hea")));
    assert_eq!(e.kind(), "io");
    assert_eq!(e.field(), None);
    // Header present, data file missing.
    let dir = scratch("io");
    std::fs::write(dir.join("r.hea"), "r 1 500 10\nr.dat 16 200 16 0 0 0 0 I\n").unwrap();
    assert_eq!(read_wfdb(&dir.join("r")).unwrap_err().kind(), "io");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn err_header_unsupported_format_and_data() {
    let dir = scratch("hdr");
    std::fs::write(dir.join("h.hea"), "h 2 500 10\nh.dat 16 200 16 0 0 0 0 I\n").unwrap();
    let e = read_wfdb(&dir.join("h")).unwrap_err();
    assert!(matches!(&e, SignalError::Header { line: 1, .. }), "{e}");
    assert_eq!(e.kind(), "header");

    std::fs::write(dir.join("f.hea"), "f 1 500 10\nf.dat 80 200 8 0 0 0 0 I\n").unwrap();
    let e = read_wfdb(&dir.join("f")).unwrap_err();
    assert!(matches!(&e, SignalError::UnsupportedFormat { format } if format == "80"));

    std::fs::write(dir.join("d.hea"), "d 1 500 10\nd.dat 16 200 16 0 0 0 0 I\n").unwrap();
    std::fs::write(dir.join("d.dat"), [0u8; 7]).unwrap();
    let e = read_wfdb(&dir.join("d")).unwrap_err();
    assert_eq!(e.kind(), "data");

    std::fs::write(
        dir.join("u.hea"),
        "u 1 500 1\nu.dat 16 200/mmHg 16 0 0 0 0 V1\n",
    )
    .unwrap();
    std::fs::write(dir.join("u.dat"), [0u8; 2]).unwrap();
    let e = read_wfdb(&dir.join("u")).unwrap_err();
    assert_eq!(e.kind(), "unknown_unit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wfdb_missing_samples_become_non_finite_errors() {
    let dir = scratch("nan");
    let (rec, _) = write_record(&dir, 16, 5000);
    let mut bytes = std::fs::read(dir.join("rec.dat")).unwrap();
    // Sample 42 of V3 (signal index 8) := -32768 (WFDB missing value).
    let off = (42 * 12 + 8) * 2;
    bytes[off..off + 2].copy_from_slice(&i16::MIN.to_le_bytes());
    std::fs::write(dir.join("rec.dat"), bytes).unwrap();
    let e = preprocess(&read_wfdb(&rec).unwrap()).unwrap_err();
    assert!(
        matches!(&e, SignalError::NonFinite { lead, index: 42 } if lead == "V3"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

//! WFDB record reader (`.hea` header + signal files), single-segment records, storage
//! formats 16 and 212 with one sample per frame.
//!
//! Physical value = `(digital - baseline) / gain`, per the header's
//! `gain(baseline)/units` field (WFDB defaults: gain 200 when absent or 0, baseline =
//! ADC zero, units mV). Digital "missing value" samples (`-32768` in format 16, `-2048` in
//! format 212) are read as NaN, which [`super::preprocess`] rejects naming lead and index.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{RawEcg, SignalError, Units, LEADS};

/// One signal line of a header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SignalSpec {
    pub file: String,
    pub format: u32,
    pub byte_offset: u64,
    pub gain: f64,
    pub baseline: f64,
    pub units: String,
    pub name: String,
}

/// A parsed single-segment header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Header {
    pub fs: f64,
    pub nsamp: Option<usize>,
    pub signals: Vec<SignalSpec>,
}

fn header_err(path: &Path, line: usize, msg: impl Into<String>) -> SignalError {
    SignalError::Header {
        path: path.to_path_buf(),
        line,
        msg: msg.into(),
    }
}

/// Parses `format[xspf][:skew][+offset]`.
fn parse_format(tok: &str) -> Result<(u32, u64), SignalError> {
    let unsupported = || SignalError::UnsupportedFormat {
        format: tok.to_string(),
    };
    let (main, offset) = match tok.split_once('+') {
        Some((m, o)) => (m, o.parse::<u64>().map_err(|_| unsupported())?),
        None => (tok, 0),
    };
    let (main, skew) = match main.split_once(':') {
        Some((m, s)) => (m, s.parse::<i64>().map_err(|_| unsupported())?),
        None => (main, 0),
    };
    let (fmt, spf) = match main.split_once('x') {
        Some((f, s)) => (f, s.parse::<u32>().map_err(|_| unsupported())?),
        None => (main, 1),
    };
    let fmt: u32 = fmt.parse().map_err(|_| unsupported())?;
    if !(fmt == 16 || fmt == 212) || spf != 1 || skew != 0 {
        return Err(unsupported());
    }
    Ok((fmt, offset))
}

/// Parses the text of a `.hea` file (`path` is only used in error messages).
pub(crate) fn parse_header(text: &str, path: &Path) -> Result<Header, SignalError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (ln, record) = lines
        .next()
        .ok_or_else(|| header_err(path, 1, "empty header"))?;
    let toks: Vec<&str> = record.split_whitespace().collect();
    if toks[0].contains('/') {
        return Err(header_err(
            path,
            ln,
            "multi-segment records are not supported",
        ));
    }
    let nsig: usize = toks
        .get(1)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| header_err(path, ln, "missing or invalid number of signals"))?;
    let fs = match toks.get(2) {
        Some(t) => {
            let f = t.split(['/', '(']).next().unwrap_or(t);
            f.parse::<f64>()
                .map_err(|_| header_err(path, ln, format!("invalid sampling frequency {t:?}")))?
        }
        None => 250.0,
    };
    let nsamp = match toks.get(3) {
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| header_err(path, ln, format!("invalid number of samples {t:?}")))?,
        ),
        None => None,
    };
    let mut signals = Vec::with_capacity(nsig);
    for (i, (ln, line)) in lines.by_ref().take(nsig).enumerate() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 2 {
            return Err(header_err(
                path,
                ln,
                "signal line needs a file name and a format",
            ));
        }
        let (format, byte_offset) = parse_format(toks[1])?;
        let (mut gain, mut baseline, mut units) = (200.0, None, "mV".to_string());
        if let Some(spec) = toks.get(2) {
            let (g, u) = match spec.split_once('/') {
                Some((g, u)) => (g, Some(u)),
                None => (*spec, None),
            };
            if let Some(u) = u {
                units = u.to_string();
            }
            let (g, b) = match g.split_once('(') {
                Some((g, b)) => (g, Some(b.trim_end_matches(')'))),
                None => (g, None),
            };
            gain = g
                .parse::<f64>()
                .map_err(|_| header_err(path, ln, format!("invalid gain {spec:?}")))?;
            if gain == 0.0 {
                gain = 200.0;
            }
            if let Some(b) = b {
                baseline = Some(
                    b.parse::<f64>()
                        .map_err(|_| header_err(path, ln, format!("invalid baseline {spec:?}")))?,
                );
            }
        }
        let adc_zero = match toks.get(4) {
            Some(t) => t
                .parse::<f64>()
                .map_err(|_| header_err(path, ln, format!("invalid ADC zero {t:?}")))?,
            None => 0.0,
        };
        let name = if toks.len() > 8 {
            toks[8..].join(" ")
        } else {
            format!("sig{i}")
        };
        signals.push(SignalSpec {
            file: toks[0].to_string(),
            format,
            byte_offset,
            gain,
            baseline: baseline.unwrap_or(adc_zero),
            units,
            name,
        });
    }
    if signals.len() != nsig {
        return Err(header_err(
            path,
            ln,
            format!(
                "header declares {nsig} signals but has {} signal lines",
                signals.len()
            ),
        ));
    }
    Ok(Header { fs, nsamp, signals })
}

/// Decodes the interleaved digital samples of `nsig_in_file` signals stored in `bytes`
/// (after the byte offset). Returns frames of digital values, `None` = missing sample.
fn decode(format: u32, bytes: &[u8], nsig_in_file: usize, nsamp: usize) -> Vec<Option<i32>> {
    let total = nsamp * nsig_in_file;
    let mut out = Vec::with_capacity(total);
    match format {
        16 => {
            for c in bytes.chunks_exact(2).take(total) {
                let v = i16::from_le_bytes([c[0], c[1]]);
                out.push((v != i16::MIN).then_some(v as i32));
            }
        }
        _ => {
            let sign12 = |v: i32| if v >= 2048 { v - 4096 } else { v };
            let push = |out: &mut Vec<Option<i32>>, v: i32| {
                out.push((v != -2048).then_some(v));
            };
            for c in bytes.chunks(3) {
                if out.len() >= total {
                    break;
                }
                if c.len() >= 2 {
                    push(&mut out, sign12(c[0] as i32 | ((c[1] as i32 & 0x0f) << 8)));
                }
                if c.len() == 3 && out.len() < total {
                    push(&mut out, sign12(c[2] as i32 | ((c[1] as i32 & 0xf0) << 4)));
                }
            }
        }
    }
    out
}

fn bytes_needed(format: u32, samples: usize) -> usize {
    match format {
        16 => samples.saturating_mul(2),
        _ => samples.saturating_mul(3).div_ceil(2),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, SignalError> {
    std::fs::read(path).map_err(|source| SignalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a WFDB record: `record_path_without_ext` + `.hea`, and the signal files it names
/// (relative to the header's directory). Lead names are taken from the signal descriptions
/// as written; units from the header (`mV`, `uV`/`µV`, `NU`; absent = mV).
///
/// The record's [`Units`] is the common unit of its standard-lead signals; if they mix mV
/// and uV, uV signals are converted to mV. A standard lead with an unknown unit, or NU mixed
/// with mV/uV, is an error. Non-standard leads with an unknown unit are kept unconverted
/// (they are ignored by [`super::preprocess`]).
pub fn read_wfdb(record_path_without_ext: &Path) -> Result<RawEcg, SignalError> {
    let mut hea = record_path_without_ext.as_os_str().to_os_string();
    hea.push(".hea");
    let hea = PathBuf::from(hea);
    let text = std::fs::read_to_string(&hea).map_err(|source| SignalError::Io {
        path: hea.clone(),
        source,
    })?;
    let header = parse_header(&text, &hea)?;
    let dir = hea.parent().map(Path::to_path_buf).unwrap_or_default();

    // Group signals by file, in order of appearance.
    let mut files: Vec<&str> = Vec::new();
    for s in &header.signals {
        if !files.contains(&s.file.as_str()) {
            files.push(&s.file);
        }
    }
    let mut digital: HashMap<usize, Vec<Option<i32>>> = HashMap::new();
    let mut nsamp_all = header.nsamp.filter(|&n| n > 0);
    for file in files {
        let idx: Vec<usize> = (0..header.signals.len())
            .filter(|&i| header.signals[i].file == file)
            .collect();
        let first = &header.signals[idx[0]];
        if idx
            .iter()
            .any(|&i| header.signals[i].format != first.format)
        {
            return Err(SignalError::UnsupportedFormat {
                format: "mixed formats in one signal file".to_string(),
            });
        }
        let path = dir.join(file);
        let bytes = read_bytes(&path)?;
        let start = (first.byte_offset as usize).min(bytes.len());
        let body = &bytes[start..];
        let g = idx.len();
        let nsamp = match nsamp_all {
            Some(n) => n,
            None => {
                let total = match first.format {
                    16 => body.len() / 2,
                    _ => body.len() * 2 / 3,
                };
                let n = total / g;
                nsamp_all = Some(n);
                n
            }
        };
        let need = bytes_needed(first.format, nsamp.saturating_mul(g));
        if body.len() < need {
            return Err(SignalError::Data {
                path,
                msg: format!(
                    "{} data bytes, {need} needed for {nsamp} samples of {g} signals",
                    body.len()
                ),
            });
        }
        let frames = decode(first.format, body, g, nsamp);
        for (k, &sig) in idx.iter().enumerate() {
            digital.insert(sig, frames.iter().skip(k).step_by(g).copied().collect());
        }
    }

    let is_std = |n: &str| LEADS.iter().any(|l| l.eq_ignore_ascii_case(n.trim()));
    let mut parsed: Vec<Option<Units>> = Vec::with_capacity(header.signals.len());
    for s in &header.signals {
        match Units::parse(&s.units) {
            Ok(u) => parsed.push(Some(u)),
            Err(e) if is_std(&s.name) => return Err(e),
            Err(_) => parsed.push(None),
        }
    }
    let std_units: Vec<Units> = header
        .signals
        .iter()
        .zip(&parsed)
        .filter(|(s, _)| is_std(&s.name))
        .filter_map(|(_, u)| *u)
        .collect();
    let record_units = match std_units.first() {
        None => parsed
            .iter()
            .flatten()
            .next()
            .copied()
            .unwrap_or(Units::MilliVolt),
        Some(&u0) if std_units.iter().all(|&u| u == u0) => u0,
        Some(_) if std_units.contains(&Units::Normalized) => {
            return Err(header_err(&hea, 0, "standard leads mix NU with mV/uV"));
        }
        Some(_) => Units::MilliVolt,
    };

    let mut leads = Vec::with_capacity(header.signals.len());
    for (i, s) in header.signals.iter().enumerate() {
        let scale = match (parsed[i], record_units) {
            (Some(Units::MicroVolt), Units::MilliVolt) => 1e-3,
            _ => 1.0,
        };
        let samples = digital
            .remove(&i)
            .unwrap_or_default()
            .into_iter()
            .map(|d| match d {
                Some(d) => ((d as f64 - s.baseline) / s.gain * scale) as f32,
                None => f32::NAN,
            })
            .collect();
        leads.push((s.name.clone(), samples));
    }
    Ok(RawEcg {
        sampling_rate_hz: header.fs,
        units: record_units,
        leads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_specs() {
        assert_eq!(parse_format("16").unwrap(), (16, 0));
        assert_eq!(parse_format("16x1+24").unwrap(), (16, 24));
        assert_eq!(parse_format("212").unwrap(), (212, 0));
        for bad in ["80", "16x2", "212:3", "abc", "310"] {
            let e = parse_format(bad).unwrap_err();
            assert_eq!(e.kind(), "unsupported_format", "{bad}");
        }
    }

    #[test]
    fn header_fields_and_defaults() {
        let text = "# comment\nrec 3 360/1000 7\nrec.dat 16 1000.0(5)/uV 16 3 0 0 0 AVR\n\
                    rec.dat 16 2000 16 7\nrec.dat 16\n";
        let h = parse_header(text, Path::new("rec.hea")).unwrap();
        assert_eq!(h.fs, 360.0);
        assert_eq!(h.nsamp, Some(7));
        assert_eq!(h.signals[0].gain, 1000.0);
        assert_eq!(h.signals[0].baseline, 5.0);
        assert_eq!(h.signals[0].units, "uV");
        assert_eq!(h.signals[0].name, "AVR");
        assert_eq!(h.signals[1].baseline, 7.0); // baseline defaults to ADC zero
        assert_eq!(h.signals[1].units, "mV");
        assert_eq!(h.signals[2].gain, 200.0);
        assert_eq!(h.signals[2].name, "sig2");
    }

    #[test]
    fn header_errors() {
        let p = Path::new("x.hea");
        for (text, line) in [
            ("", 1),
            ("rec/2 2 500\n", 1),
            ("rec x 500\n", 1),
            ("rec 1 fast\n", 1),
            ("#c\nrec 2 500 10\nrec.dat 16 200 16 0 0 0 0 I\n", 2),
            ("rec 1 500 10\nrec.dat\n", 2),
            ("rec 1 500 10\nrec.dat 16 abc/mV\n", 2),
        ] {
            match parse_header(text, p) {
                Err(SignalError::Header { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn decode_212_and_missing_values() {
        // Samples 0x123 = 291 and -1 (0xfff): bytes 0x23, 0xf1, 0xff
        let d = decode(212, &[0x23, 0xf1, 0xff], 1, 2);
        assert_eq!(d, vec![Some(0x123), Some(-1)]);
        // -2048 is the missing-value marker
        let d = decode(212, &[0x00, 0x08, 0x00], 1, 2);
        assert_eq!(d, vec![None, Some(0)]);
        let d = decode(16, &[0x00, 0x80, 0xff, 0xff], 1, 2);
        assert_eq!(d, vec![None, Some(-1)]);
    }
}

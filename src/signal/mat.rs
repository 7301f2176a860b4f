//! MATLAB v4 (Level 4) `.mat` reader, for PhysioNet/CinC Challenge 2021 records: a `val`
//! matrix of digital samples (`leads x samples`) next to a WFDB `.hea` header that gives the
//! sampling rate, gains, baselines, units and lead names.
//!
//! Level-4 layout: per matrix a 20-byte header of five `i32` (`type = M*1000 + O*100 +
//! P*10 + T`, rows, cols, imagf, namlen), the NUL-terminated name, then `rows*cols` values
//! column-major (then the imaginary part if `imagf`). `M` = 0 little-endian, 1 big-endian;
//! `P` = 0 f64, 1 f32, 2 i32, 3 i16, 4 u16, 5 u8; `T` = 0 full numeric matrix. MATLAB 5+
//! files (e.g. the original CPSC 2018 `.mat`) are not Level 4 and are rejected.

use std::path::{Path, PathBuf};

use super::wfdb::parse_header;
use super::{RawEcg, SignalError, Units, LEADS};

/// A numeric matrix read from a Level-4 file; `data` is column-major (`data[c * rows + r]`).
#[derive(Clone, Debug, PartialEq)]
pub struct MatMatrix {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl MatMatrix {
    /// Element at row `r`, column `c`.
    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[c * self.rows + r]
    }
}

fn data_err(path: &Path, msg: impl Into<String>) -> SignalError {
    SignalError::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_i32(b: &[u8], big: bool) -> i32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        i32::from_be_bytes(a)
    } else {
        i32::from_le_bytes(a)
    }
}

fn decode_value(c: &[u8], p: i32, big: bool) -> f64 {
    macro_rules! num {
        ($t:ty, $n:expr) => {{
            let mut a = [0u8; $n];
            a.copy_from_slice(c);
            (if big {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }) as f64
        }};
    }
    match p {
        0 => num!(f64, 8),
        1 => num!(f32, 4),
        2 => num!(i32, 4),
        3 => num!(i16, 2),
        4 => num!(u16, 2),
        _ => c[0] as f64,
    }
}

/// Reads the matrix called `name` from a MATLAB Level-4 file.
pub fn read_mat_v4_matrix(path: &Path, name: &str) -> Result<MatMatrix, SignalError> {
    let bytes = std::fs::read(path).map_err(|source| SignalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.starts_with(b"MATLAB") {
        return Err(SignalError::UnsupportedFormat {
            format: "MATLAB 5+ .mat (only Level 4 is supported)".to_string(),
        });
    }
    let mut pos = 0usize;
    while pos + 20 <= bytes.len() {
        let h = &bytes[pos..pos + 20];
        let le = read_i32(h, false);
        let big = !(0..=52).contains(&le);
        let ty = read_i32(h, big);
        let (m, o, p, t) = (ty / 1000, (ty / 100) % 10, (ty / 10) % 10, ty % 10);
        if !(0..=1).contains(&m) || o != 0 || !(0..=5).contains(&p) {
            return Err(data_err(
                path,
                format!("not a Level-4 MAT file (type {ty})"),
            ));
        }
        let dims = [4, 8, 12, 16].map(|o| read_i32(&h[o..], big));
        if dims.iter().any(|&d| d < 0) {
            return Err(data_err(path, "negative matrix dimension"));
        }
        let [rows, cols, imagf, namlen] = dims.map(|d| d as usize);
        let width = [8, 4, 4, 2, 2, 1][p as usize];
        let count = rows
            .checked_mul(cols)
            .ok_or_else(|| data_err(path, "matrix too large"))?;
        let parts = if imagf != 0 { 2 } else { 1 };
        let name_start = pos + 20;
        let data_start = name_start + namlen;
        let data_end = count
            .saturating_mul(width * parts)
            .saturating_add(data_start);
        if data_end > bytes.len() {
            return Err(data_err(
                path,
                format!(
                    "truncated matrix: needs {data_end} bytes, file has {}",
                    bytes.len()
                ),
            ));
        }
        let raw_name = &bytes[name_start..data_start];
        let this =
            String::from_utf8_lossy(raw_name.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        if this == name {
            if t != 0 {
                return Err(SignalError::UnsupportedFormat {
                    format: format!("MAT matrix type {ty} (only full numeric matrices)"),
                });
            }
            let data = bytes[data_start..data_start + count * width]
                .chunks_exact(width)
                .map(|c| decode_value(c, p, big))
                .collect();
            return Ok(MatMatrix {
                name: this,
                rows,
                cols,
                data,
            });
        }
        pos = data_end;
    }
    Err(data_err(path, format!("no matrix named {name:?}")))
}

/// Reads a CinC 2021 record: `record_path_without_ext.mat` (matrix `val`, one row per
/// signal, digital units) with `record_path_without_ext.hea` for the sampling rate, lead
/// names, gains, baselines and units. Physical = `(val - baseline) / gain`; units as in
/// [`super::read_wfdb`] (all standard leads must share one unit).
pub fn read_mat_v4(record_path_without_ext: &Path) -> Result<RawEcg, SignalError> {
    let with_ext = |ext: &str| {
        let mut p = record_path_without_ext.as_os_str().to_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let hea = with_ext(".hea");
    let mat = with_ext(".mat");
    let text = std::fs::read_to_string(&hea).map_err(|source| SignalError::Io {
        path: hea.clone(),
        source,
    })?;
    let header = parse_header(&text, &hea)?;
    let val = read_mat_v4_matrix(&mat, "val")?;
    if val.rows != header.signals.len() {
        return Err(data_err(
            &mat,
            format!(
                "val has {} rows, header declares {} signals",
                val.rows,
                header.signals.len()
            ),
        ));
    }
    let mut units = None;
    let mut leads = Vec::with_capacity(val.rows);
    for (r, s) in header.signals.iter().enumerate() {
        let is_std = LEADS.iter().any(|l| l.eq_ignore_ascii_case(s.name.trim()));
        if is_std {
            let u = Units::parse(&s.units)?;
            match units {
                None => units = Some(u),
                Some(prev) if prev != u => {
                    return Err(SignalError::Header {
                        path: hea.clone(),
                        line: 0,
                        msg: "standard leads have different units".to_string(),
                    })
                }
                Some(_) => {}
            }
        }
        let samples = (0..val.cols)
            .map(|c| ((val.get(r, c) - s.baseline) / s.gain) as f32)
            .collect();
        leads.push((s.name.clone(), samples));
    }
    Ok(RawEcg {
        sampling_rate_hz: header.fs,
        units: units.unwrap_or(Units::MilliVolt),
        leads,
    })
}

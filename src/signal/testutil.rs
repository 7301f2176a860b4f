//! Test-only helpers: fixture paths and a tiny `.npy` reader (NumPy format 1.0/2.0,
//! little-endian `<f4`/`<f8`, C order).

use std::path::PathBuf;

/// Absolute path of a file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/")).join(rel)
}

/// A C-order array read from a `.npy` file.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Npy {
    /// Element `[row, col]` of a 2-D array.
    pub fn at(&self, row: usize, col: usize) -> f64 {
        self.data[row * self.shape[1] + col]
    }

    /// Column `col` of a 2-D array (one lead of a `(samples, leads)` array).
    pub fn column(&self, col: usize) -> Vec<f64> {
        (0..self.shape[0]).map(|r| self.at(r, col)).collect()
    }
}

/// Reads a `.npy` file; panics on anything unexpected (tests only).
pub fn read_npy(rel: &str) -> Npy {
    let bytes = std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{rel}: not a .npy file");
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[hstart..hstart + hlen]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let width = if header.contains("'<f4'") {
        4
    } else if header.contains("'<f8'") {
        8
    } else {
        panic!("{rel}: unsupported dtype in {header}")
    };
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let body = &bytes[hstart + hlen..];
    let data: Vec<f64> = body
        .chunks_exact(width)
        .map(|c| match width {
            4 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            _ => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{rel}");
    Npy { shape, data }
}

/// Max absolute difference of two equally long sequences.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

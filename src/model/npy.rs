//! Minimal reader for NumPy `.npy` files (format 1.x/2.x, little-endian float32, C order), the
//! format of the golden references.
use std::path::Path;

use super::error::{ModelError, Result};

/// Reads an `<f4` array; returns `(shape, data)`.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    parse_f32(&bytes).map_err(|msg| ModelError::format(path, msg))
}

pub fn parse_f32(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).ok_or("short header")?)
        .map_err(|_| "header is not UTF-8")?;
    if !header.contains("'descr': '<f4'") {
        return Err(format!("only little-endian float32 is supported: {header}"));
    }
    if header.contains("'fortran_order': True") {
        return Err("Fortran order is not supported".into());
    }
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape in header")?;
    let shape = shape_str
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|e| e.to_string()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + hlen..];
    if data.len() != count * 4 {
        return Err(format!(
            "expected {} data bytes for shape {shape:?}, found {}",
            count * 4,
            data.len()
        ));
    }
    let v = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_array() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.extend_from_slice(&(-2f32).to_le_bytes());
        let (shape, v) = parse_f32(&b).unwrap();
        assert_eq!(shape, vec![2, 1]);
        assert_eq!(v, vec![1.5, -2.0]);
        assert!(parse_f32(&b[..b.len() - 1]).is_err());
    }
}

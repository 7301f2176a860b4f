//! Minimal MATLAB 5 (Level 5) `.mat` reader: enough for the CPSC 2018 files (a struct `ECG`
//! with a `data` field of doubles, zlib-compressed) and the CODE-15% exports (`feats`, a
//! single-precision matrix, uncompressed).
//!
//! Layout: a 128-byte header (text, then version `0x0100` and the endian indicator `IM` /
//! `MI`), then data elements: an 8-byte tag (`u32` type, `u32` byte count; the "small
//! element" form packs a count < 4 into the upper 16 bits of the type word and the data in
//! the next 4 bytes), the data, and padding to 8 bytes. `miCOMPRESSED` (15) holds a zlib
//! stream of further elements; `miMATRIX` (14) holds array flags (`miUINT32`, class in the
//! low byte), dimensions (`miINT32`), the name (`miINT8`) and then, for a numeric class, the
//! real part (any numeric type) and, if the complex flag is set, the imaginary part (ignored);
//! for a struct (class 2), the field-name length, the concatenated NUL-padded field names and
//! one `miMATRIX` per field. Struct fields are returned under dotted names (`ECG.data`).
//! Cell arrays, sparse, char and object arrays are skipped. Only 2-D matrices are returned.

use std::io::Read;
use std::path::Path;

use super::mat::MatMatrix;
use super::SignalError;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

const MX_STRUCT: u8 = 2;
/// Numeric classes: double, single, int8 ... uint64.
const MX_NUMERIC: std::ops::RangeInclusive<u8> = 6..=15;

/// Reads every 2-D numeric matrix of a Level-5 file (struct fields flattened to `a.b`).
pub fn read_mat_v5(path: &Path) -> Result<Vec<MatMatrix>, SignalError> {
    let bytes = std::fs::read(path).map_err(|source| SignalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mat_v5(&bytes).map_err(|msg| SignalError::Data {
        path: path.to_path_buf(),
        msg,
    })
}

/// [`read_mat_v5`] on bytes already in memory.
pub fn parse_mat_v5(bytes: &[u8]) -> Result<Vec<MatMatrix>, String> {
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0") {
        return Err("not a MATLAB 5 MAT-file (header text missing)".into());
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => return Err(format!("bad endian indicator {other:?}")),
    };
    let mut out = Vec::new();
    walk(&bytes[128..], big, "", &mut out, 0)?;
    Ok(out)
}

fn u32_at(b: &[u8], pos: usize, big: bool) -> Result<u32, String> {
    let s = b
        .get(pos..pos + 4)
        .ok_or_else(|| format!("truncated at byte {pos}"))?;
    let a = [s[0], s[1], s[2], s[3]];
    Ok(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

/// Splits a buffer into `(type, data)` elements.
fn elements(b: &[u8], big: bool) -> Result<Vec<(u32, &[u8])>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= b.len() {
        let word = u32_at(b, pos, big)?;
        let small = word >> 16;
        if small != 0 {
            let n = small as usize;
            if n > 4 {
                return Err(format!("small element of {n} bytes at {pos}"));
            }
            out.push((word & 0xffff, &b[pos + 4..pos + 4 + n]));
            pos += 8;
            continue;
        }
        let n = u32_at(b, pos + 4, big)? as usize;
        let start = pos + 8;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("element of {n} bytes at {pos} runs past the end"))?;
        out.push((word, &b[start..end]));
        // miCOMPRESSED elements are not padded; all others are padded to 8 bytes.
        pos = if word == MI_COMPRESSED {
            end
        } else {
            start + n.div_ceil(8) * 8
        };
    }
    Ok(out)
}

fn walk(
    b: &[u8],
    big: bool,
    prefix: &str,
    out: &mut Vec<MatMatrix>,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err("nesting deeper than 8 levels".into());
    }
    for (ty, data) in elements(b, big)? {
        match ty {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("zlib: {e}"))?;
                walk(&inflated, big, prefix, out, depth + 1)?;
            }
            MI_MATRIX => matrix(data, big, prefix, None, out, depth)?,
            _ => {}
        }
    }
    Ok(())
}

/// Decodes one `miMATRIX`; `name` overrides the stored name (struct fields have none).
fn matrix(
    data: &[u8],
    big: bool,
    prefix: &str,
    name: Option<&str>,
    out: &mut Vec<MatMatrix>,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err("nesting deeper than 8 levels".into());
    }
    if data.is_empty() {
        return Ok(()); // an empty field
    }
    let parts = elements(data, big)?;
    if parts.len() < 3 {
        return Err("miMATRIX with fewer than 3 sub-elements".into());
    }
    let flags = numbers(parts[0].0, parts[0].1, big)?;
    let class = flags.first().map(|&f| (f as u32 & 0xff) as u8).unwrap_or(0);
    let dims: Vec<usize> = numbers(parts[1].0, parts[1].1, big)?
        .iter()
        .map(|&d| d.max(0.0) as usize)
        .collect();
    let stored = String::from_utf8_lossy(parts[2].1)
        .trim_end_matches('\0')
        .to_string();
    let own = name.unwrap_or(&stored);
    let full = if prefix.is_empty() {
        own.to_string()
    } else {
        format!("{prefix}.{own}")
    };
    if class == MX_STRUCT {
        // parts[3]: field name length, parts[4]: names, then one miMATRIX per field per element.
        let (Some(len), Some(names)) = (parts.get(3), parts.get(4)) else {
            return Err(format!("struct {full}: field names missing"));
        };
        let width = numbers(len.0, len.1, big)?
            .first()
            .copied()
            .unwrap_or(0.0)
            .max(1.0) as usize;
        let fields: Vec<String> = names
            .1
            .chunks(width)
            .map(|c| {
                String::from_utf8_lossy(c)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect();
        // Only the first struct element is read (the ECG files hold a 1x1 struct).
        for (field, (ty, sub)) in fields.iter().zip(parts.iter().skip(5)) {
            if *ty == MI_MATRIX {
                matrix(sub, big, &full, Some(field), out, depth + 1)?;
            }
        }
        return Ok(());
    }
    if !MX_NUMERIC.contains(&class) || dims.len() != 2 {
        return Ok(());
    }
    let Some(&(ty, real)) = parts.get(3) else {
        return Err(format!("matrix {full}: real part missing"));
    };
    let values = numbers(ty, real, big)?;
    let (rows, cols) = (dims[0], dims[1]);
    if values.len() != rows * cols {
        return Err(format!(
            "matrix {full}: {} values for {rows}x{cols}",
            values.len()
        ));
    }
    out.push(MatMatrix {
        name: full,
        rows,
        cols,
        data: values,
    });
    Ok(())
}

/// Decodes a numeric data element into f64.
fn numbers(ty: u32, b: &[u8], big: bool) -> Result<Vec<f64>, String> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            b.chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    (if big {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }) as f64
                })
                .collect()
        };
    }
    Ok(match ty {
        MI_INT8 => b.iter().map(|&v| v as i8 as f64).collect(),
        MI_UINT8 => b.iter().map(|&v| v as f64).collect(),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 => conv!(u32, 4),
        MI_SINGLE => conv!(f32, 4),
        MI_DOUBLE => conv!(f64, 8),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        other => return Err(format!("unsupported numeric data type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(ty: u32, n: usize) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend((n as u32).to_le_bytes());
        v
    }

    fn padded(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = tag(ty, data.len());
        v.extend_from_slice(data);
        v.resize(8 + data.len().div_ceil(8) * 8, 0);
        v
    }

    /// A 2x3 double matrix named `x`, little-endian, written by hand.
    fn file_with_matrix() -> Vec<u8> {
        let mut head = b"MATLAB 5.0 MAT-file, test".to_vec();
        head.resize(124, b' ');
        head.extend([0x00, 0x01, b'I', b'M']);
        let mut body = padded(MI_UINT32, &[6, 0, 0, 0, 0, 0, 0, 0]); // class double
        let dims: Vec<u8> = [2i32, 3].iter().flat_map(|d| d.to_le_bytes()).collect();
        body.extend(padded(MI_INT32, &dims));
        // name "x" as a small element
        body.extend((MI_INT8 | (1 << 16)).to_le_bytes());
        body.extend([b'x', 0, 0, 0]);
        let vals: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        body.extend(padded(MI_DOUBLE, &vals));
        head.extend(padded(MI_MATRIX, &body));
        head
    }

    #[test]
    fn reads_a_double_matrix() {
        let m = parse_mat_v5(&file_with_matrix()).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "x");
        assert_eq!((m[0].rows, m[0].cols), (2, 3));
        // column-major: (row 1, col 2) is the 6th value
        assert_eq!(m[0].get(1, 2), 6.0);
    }

    #[test]
    fn reads_a_compressed_matrix() {
        let plain = file_with_matrix();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &plain[128..]).unwrap();
        let z = enc.finish().unwrap();
        let mut f = plain[..128].to_vec();
        f.extend(tag(MI_COMPRESSED, z.len()));
        f.extend(z);
        let m = parse_mat_v5(&f).unwrap();
        assert_eq!(m[0].get(0, 0), 1.0);
    }

    #[test]
    fn rejects_level4_and_truncation() {
        assert!(parse_mat_v5(b"not a mat file").is_err());
        let mut f = file_with_matrix();
        f.truncate(f.len() - 10);
        assert!(parse_mat_v5(&f).is_err());
    }
}

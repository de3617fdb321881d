//! `.npy` input and output (little-endian f32, C order), through the `npyz`
//! crate, with every header field checked before data is trusted.

use std::io::BufWriter;
use std::path::Path;

use npyz::{DType, Order, WriterBuilder};

use crate::error::{Error, Result};

/// Largest `.npy` file read (4 GiB), a guard against absurd inputs.
///
/// ```
/// assert_eq!(resnet50::npy::MAX_NPY_BYTES, 4 << 30);
/// ```
pub const MAX_NPY_BYTES: u64 = 4 << 30;

fn npy_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Npy { path: path.to_path_buf(), msg: msg.into() }
}

/// Reads a little-endian f32, C-order array; returns `(shape, data)`.
///
/// ```
/// use resnet50::npy;
/// let path = std::env::temp_dir().join(format!("resnet50-doc-read-{}.npy", std::process::id()));
/// npy::write_f32(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let (shape, data) = npy::read_f32(&path)?;
/// assert_eq!((shape, data[5]), (vec![2, 3], 6.0));
/// std::fs::remove_file(&path).ok();
/// assert!(npy::read_f32(std::path::Path::new("no/such.npy")).unwrap_err().to_string().contains("no/such.npy"));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if !meta.is_file() {
        return Err(npy_err(path, "not a regular file"));
    }
    if meta.len() > MAX_NPY_BYTES {
        return Err(npy_err(path, format!("file is {} bytes, larger than the {MAX_NPY_BYTES}-byte limit", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_f32(&bytes).map_err(|m| npy_err(path, m))
}

/// Parses `.npy` bytes holding a little-endian f32, C-order array.
///
/// ```
/// use resnet50::npy;
/// let path = std::env::temp_dir().join(format!("resnet50-doc-parse-{}.npy", std::process::id()));
/// npy::write_f32(&path, &[3], &[0.5, 1.5, 2.5])?;
/// let bytes = std::fs::read(&path).unwrap();
/// std::fs::remove_file(&path).ok();
/// assert_eq!(npy::parse_f32(&bytes).unwrap(), (vec![3], vec![0.5, 1.5, 2.5]));
/// let truncated = npy::parse_f32(&bytes[..bytes.len() - 4]).unwrap_err();
/// assert!(truncated.contains("truncated"), "{truncated}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn parse_f32(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    let file = npyz::NpyFile::new(bytes).map_err(|e| format!("not a valid .npy file: {e}"))?;
    let dtype = file.dtype();
    let f4: DType = DType::Plain("<f4".parse().map_err(|_| "dtype".to_string())?);
    if dtype != f4 {
        return Err(format!("dtype is {}, expected '<f4' (little-endian float32)", dtype.descr()));
    }
    if file.order() != Order::C {
        return Err("array is in Fortran order, expected C order".into());
    }
    let shape: Vec<usize> = file
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
        .collect::<std::result::Result<_, _>>()?;
    let len =
        shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    // The data must be present: compare with the bytes after the header.
    if len.checked_mul(4).is_none_or(|b| b > bytes.len()) {
        return Err(format!("shape {shape:?} needs {len} floats but the file is only {} bytes", bytes.len()));
    }
    let data: Vec<f32> = file.into_vec().map_err(|e| format!("truncated or unreadable data: {e}"))?;
    if data.len() != len {
        return Err(format!("expected {len} values for shape {shape:?}, found {}", data.len()));
    }
    Ok((shape, data))
}

/// Writes `data` with `shape` as a little-endian f32, C-order `.npy` file.
///
/// ```
/// use resnet50::npy;
/// let path = std::env::temp_dir().join(format!("resnet50-doc-write-{}.npy", std::process::id()));
/// npy::write_f32(&path, &[1, 2], &[7.0, 8.0])?;
/// assert_eq!(npy::read_f32(&path)?.1, [7.0, 8.0]);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if shape.iter().product::<usize>() != data.len() {
        return Err(npy_err(path, format!("shape {shape:?} does not hold {} values", data.len())));
    }
    let file = std::fs::File::create(path).map_err(io)?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w =
        npyz::WriteOptions::new().default_dtype().shape(&shape).writer(BufWriter::new(file)).begin_nd().map_err(io)?;
    w.extend(data.iter().copied()).map_err(io)?;
    w.finish().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let dir = std::env::temp_dir().join(format!("resnet50-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        write_f32(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        let (s, d) = read_f32(&p).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        let bytes = std::fs::read(&p).unwrap();
        // Truncated data.
        assert!(parse_f32(&bytes[..bytes.len() - 3]).is_err());
        // Not npy at all.
        assert!(parse_f32(b"hello").unwrap_err().contains("not a valid .npy"));
        // Wrong dtype (f8).
        let mut f8 = bytes.clone();
        let pos = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[pos + 2] = b'8';
        assert!(parse_f32(&f8).unwrap_err().contains("dtype"));
        // A directory.
        assert!(read_f32(&dir).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

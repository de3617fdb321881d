//! `.npy` input and output (little-endian f32, C order).
//!
//! Reading parses the header itself (a small, strict parser of the dict
//! numpy writes), because the `npyz` crate hands the header to `py_literal`,
//! whose parser backtracks exponentially on nested brackets: a 100-byte file
//! whose header holds `{{{{{{{{{{{{{{{{1` took longer than 20 s (12 levels:
//! 4 s), found by the `npy` fuzz target. Writing goes through `npyz`.

use std::io::BufWriter;
use std::path::Path;

use npyz::WriterBuilder;

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
    let bad = |m: &str| format!("not a valid .npy file: {m}");
    let rest = bytes.strip_prefix(b"\x93NUMPY").ok_or_else(|| bad("no \\x93NUMPY magic"))?;
    // Version 1.0: a 2-byte header length; 2.0 and 3.0: 4 bytes.
    let (len_bytes, rest) = match rest {
        [1, 0, rest @ ..] => (2, rest),
        [2 | 3, 0, rest @ ..] => (4, rest),
        [major, minor, ..] => return Err(bad(&format!("format version {major}.{minor}, expected 1.0, 2.0 or 3.0"))),
        _ => return Err(bad("truncated before the version")),
    };
    if rest.len() < len_bytes {
        return Err(bad("truncated in the header length"));
    }
    let (len, rest) = rest.split_at(len_bytes);
    let header_len = len.iter().rev().fold(0usize, |a, &b| (a << 8) | usize::from(b));
    if header_len > rest.len() {
        return Err(bad(&format!("header of {header_len} bytes, but only {} follow", rest.len())));
    }
    let (header, data) = rest.split_at(header_len);
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let Header { descr, fortran_order, shape } = Header::parse(header).map_err(|m| bad(&format!("header: {m}")))?;
    if descr != "<f4" {
        return Err(format!("dtype is '{descr}', expected '<f4' (little-endian float32)"));
    }
    if fortran_order {
        return Err("array is in Fortran order, expected C order".into());
    }
    let len =
        shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    // The data must be present (numpy ignores bytes past it, and so does this).
    if len.checked_mul(4).is_none_or(|b| b > data.len()) {
        return Err(format!(
            "truncated: shape {shape:?} needs {len} floats, but {} bytes follow the header",
            data.len()
        ));
    }
    let values = data[..4 * len].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((shape, values))
}

/// The header dict numpy writes (`{'descr': '<f4', 'fortran_order': False,
/// 'shape': (2, 3), }`), parsed strictly: exactly those three keys, once
/// each, in any order; strings in single or double quotes without escapes;
/// `True`/`False`; a tuple of non-negative integers (a 1-tuple with its
/// comma; Python 2's `L` suffix allowed); spaces and newlines between tokens.
/// Linear in the header's length.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn parse(text: &str) -> std::result::Result<Header, String> {
        let mut p = Cursor { s: text.as_bytes(), i: 0 };
        p.expect(b'{')?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        loop {
            if p.eat(b'}') {
                break;
            }
            let key = p.string()?;
            p.expect(b':')?;
            let seen = match key.as_str() {
                "descr" => descr.replace(p.string()?).is_some(),
                "fortran_order" => fortran_order.replace(p.boolean()?).is_some(),
                "shape" => shape.replace(p.tuple()?).is_some(),
                _ => return Err(format!("unexpected key '{key}'")),
            };
            if seen {
                return Err(format!("'{key}' given twice"));
            }
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
        p.skip_space();
        if p.i != p.s.len() {
            return Err(format!("text after the dict at byte {}", p.i));
        }
        let missing = |k: &str| format!("no '{k}'");
        Ok(Header {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

/// A position in the header text; every method skips leading whitespace.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_space();
        let start = self.i;
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {start}")),
        };
        let body = &self.s[start + 1..];
        let end = body.iter().position(|&c| c == quote || c == b'\\' || c == b'\n');
        match end.map(|e| (e, body[e])) {
            Some((e, c)) if c == quote => {
                self.i = start + 1 + e + 1;
                // Between two quote bytes of valid UTF-8: valid UTF-8.
                Ok(String::from_utf8_lossy(&body[..e]).into_owned())
            }
            Some((e, b'\\')) => Err(format!("escape in a string at byte {} (not supported)", start + 1 + e)),
            _ => Err(format!("unterminated string at byte {start}")),
        }
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        self.skip_space();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(format!("expected True or False at byte {}", self.i))
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        let mut comma = false;
        loop {
            if self.eat(b')') {
                break;
            }
            dims.push(self.integer()?);
            comma = self.eat(b',');
            if !comma {
                self.expect(b')')?;
                break;
            }
        }
        // Python: `(5)` is an int, not a tuple (numpy rejects it).
        if dims.len() == 1 && !comma {
            return Err(format!("shape (n) without its comma before byte {}", self.i));
        }
        Ok(dims)
    }

    fn integer(&mut self) -> std::result::Result<usize, String> {
        self.skip_space();
        let start = self.i;
        let digits = self.s[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("expected a dimension at byte {start}"));
        }
        self.i += digits;
        if matches!(self.s.get(self.i), Some(b'L' | b'l')) {
            self.i += 1;
        }
        // ASCII digits: valid UTF-8; too many for a usize: an error.
        std::str::from_utf8(&self.s[start..start + digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("dimension too large at byte {start}"))
    }
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

    /// A version-`major` file with `header` (padded as numpy pads) and `data`.
    fn npy_bytes(major: u8, header: &str, data: &[f32]) -> Vec<u8> {
        let lead = if major == 1 { 10 } else { 12 };
        let mut h = header.to_string();
        while !(lead + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY".to_vec();
        b.extend_from_slice(&[major, 0]);
        if major == 1 {
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        } else {
            b.extend_from_slice(&(h.len() as u32).to_le_bytes());
        }
        b.extend_from_slice(h.as_bytes());
        data.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        b
    }

    #[test]
    fn headers_numpy_writes_parse_and_others_are_errors() {
        let ok = |major, header: &str, data: &[f32]| parse_f32(&npy_bytes(major, header, data));
        let two = [1.0, 2.0];
        // Key order, quotes, spacing, Python 2's long suffix, versions 2 and 3.
        for (major, h) in [
            (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"),
            (1, "{\"shape\":(1,2),\"descr\":\"<f4\",\"fortran_order\":False}"),
            (1, "{ 'fortran_order' : False ,\n 'shape' : ( 2L , ) , 'descr' : '<f4' }"),
            (2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }"),
            (3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }"),
        ] {
            let (shape, data) = ok(major, h, &two).unwrap_or_else(|e| panic!("{h}: {e}"));
            assert_eq!((shape.iter().product::<usize>(), data), (2, two.to_vec()), "{h}");
        }
        // A 0-d array holds one value; bytes past the data are ignored (as numpy does).
        assert_eq!(ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", &two).unwrap(), (vec![], vec![1.0]));
        for (h, why) in [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "without its comma"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}", "twice"),
            ("{'descr': '<f4', 'fortran_order': False}", "no 'shape'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected key"),
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", "Fortran"),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", "dtype is '<f8'"),
            ("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", "escape"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "after the dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "too large"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "truncated"),
            // py_literal (behind npyz) backtracked exponentially on this:
            // more than 20 s at 16 levels. Here a plain error.
            ("{'descr': '<f4', 'fortran_order': False, 'shape': {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{1}", "expected '('"),
        ] {
            let t = std::time::Instant::now();
            let err = ok(1, h, &two).unwrap_err();
            assert!(err.contains(why), "{h}: {err}");
            assert!(t.elapsed().as_secs() < 1, "{h}: {:?}", t.elapsed());
        }
        assert!(parse_f32(b"\x93NUMPY\x04\x00").unwrap_err().contains("version 4.0"));
        assert!(parse_f32(b"\x93NUMPY\x01\x00\xff\x00{").unwrap_err().contains("only"));
    }
}

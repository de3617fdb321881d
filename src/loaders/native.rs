//! The native weights file: prepared (BatchNorm-folded, packed) weights that
//! are memory-mapped and used in place. Specified in `docs/native-format.md`.
//!
//! Every field is validated before use (size, magic, version, checksum over
//! header and data, variant, classes, each tensor's kernel, layout, shape,
//! alignment and bounds, no overlaps, and a fingerprint of this build's
//! packing), so a truncated, corrupted, mismatched or hostile file is an
//! `Err`, never a panic or an out-of-bounds read.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resnet50_kernels::buffer::ALIGN;
use resnet50_kernels::{ConvAlgo, ConvKernel, ConvParams};
use xxhash_rust::xxh3::Xxh3;

use super::{file_err, io_err};
use crate::arch::{conv_specs, FEATURES, NUM_CONVS};
use crate::config::Variant;
use crate::error::{Error, Result};
use crate::prepare::{conv_params, KernelChoice, PreparedWeights};
use crate::weights::CanonicalWeights;

/// First 8 bytes of every native file.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// assert_eq!(bytes[..8], native::MAGIC);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub const MAGIC: [u8; 8] = *b"\x89RN50W\r\n";
/// The format version this build reads and writes.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// assert_eq!(bytes[8..12], native::VERSION.to_le_bytes()); // right after the magic
/// # Ok::<(), resnet50::Error>(())
/// ```
pub const VERSION: u32 = 1;
/// Bytes of the fixed header.
///
/// ```
/// use resnet50::{arch::NUM_CONVS, init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// let header = native::parse(std::path::Path::new("mem"), &bytes)?;
/// // The header, then one record per tensor (53 convolutions, no classifier), then the data.
/// assert!(header.data_offset >= native::HEADER_LEN + NUM_CONVS * native::RECORD_LEN);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub const HEADER_LEN: usize = 64;
/// Bytes of one tensor record.
///
/// ```
/// use resnet50::{arch::NUM_CONVS, init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, Some(10)), 1e-5)?;
/// let header = native::parse(std::path::Path::new("mem"), &bytes)?;
/// // With the top, the classifier kernel and bias have records too.
/// assert!(header.data_offset >= native::HEADER_LEN + (NUM_CONVS + 2) * native::RECORD_LEN);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub const RECORD_LEN: usize = 64;
/// Byte range of the checksum field (excluded from the checksum itself).
const CHECKSUM_AT: Range<usize> = 48..56;
/// Most classes accepted (a guard against absurd headers).
///
/// ```
/// assert!(resnet50::loaders::native::MAX_CLASSES >= 1000); // ImageNet's 1000 and far more
/// ```
pub const MAX_CLASSES: usize = 1 << 20;

const KIND_CONV: u32 = 1;
const KIND_FC_KERNEL: u32 = 2;
const KIND_FC_BIAS: u32 = 3;

/// A native file, validated and mapped: ready to be a model's weights.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.rn50w", line!(), std::process::id()));
/// native::write(&init::deterministic(Variant::V1_5, Some(10)), 1e-5, &path)?;
/// let n = native::open(&path)?;
/// assert_eq!((n.variant, n.classes, n.bn_epsilon), (Variant::V1_5, Some(10), 1e-5));
/// assert_eq!(n.path, path);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Debug)]
pub struct NativeWeights {
    /// The file.
    pub path: PathBuf,
    /// The variant the weights were prepared for.
    pub variant: Variant,
    /// Classes of the classifier, `None` without the top.
    pub classes: Option<usize>,
    /// The BatchNorm ε folded into the weights.
    pub bn_epsilon: f32,
    /// The prepared weights, reading from the mapping.
    pub weights: Arc<PreparedWeights>,
}

/// The validated header and tensor table of a native file.
///
/// ```
/// use resnet50::{arch::NUM_CONVS, init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, Some(10)), 1e-3)?;
/// let h = native::parse(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((h.variant, h.classes, h.bn_epsilon, h.convs.len()), (Variant::V1, Some(10), 1e-3, NUM_CONVS));
/// let (kernel, bias) = h.fc.unwrap();
/// assert_eq!((kernel.len(), bias.len()), (4 * 2048 * 10, 4 * 10)); // bytes of f32s
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Variant.
    pub variant: Variant,
    /// Classes, `None` without the top.
    pub classes: Option<usize>,
    /// Folded ε.
    pub bn_epsilon: f32,
    /// Byte offset of the data region.
    pub data_offset: usize,
    /// Kernel and packed byte range (in the file) of each convolution.
    pub convs: Vec<(ConvKernel, Range<usize>)>,
    /// Byte ranges of the classifier kernel and bias.
    pub fc: Option<(Range<usize>, Range<usize>)>,
}

/// Opens, validates and maps a native file.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.rn50w", line!(), std::process::id()));
/// native::write(&init::deterministic(Variant::V1, None), 1e-3, &path)?;
/// assert_eq!(native::open(&path)?.classes, None);
/// std::fs::write(&path, b"not a native file").unwrap();
/// assert!(native::open(&path).is_err());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn open(path: &Path) -> Result<NativeWeights> {
    let (file, _) = super::open_regular(path)?;
    open_file(path, file)
}

pub(crate) fn open_file(path: &Path, file: File) -> Result<NativeWeights> {
    if cfg!(target_endian = "big") {
        return Err(file_err(path, "native weights files are little-endian; this machine is big-endian"));
    }
    let map = resnet50_kernels::mapped::map_file(&file).map_err(|e| io_err(path, e))?;
    let h = parse(path, &map)?;
    let map = Arc::new(map);
    let d = h.data_offset;
    let floats = (map.len() - d) / 4;
    let rel = |r: &Range<usize>| (r.start - d) / 4..(r.end - d) / 4;
    let convs = h.convs.iter().map(|(k, r)| (*k, rel(r))).collect();
    let fc = h.fc.as_ref().map(|(k, b)| (rel(k), rel(b), h.classes.unwrap_or(0)));
    let weights = PreparedWeights::from_mapped(map, d, floats, convs, fc).map_err(|e| file_err(path, e))?;
    Ok(NativeWeights {
        path: path.to_path_buf(),
        variant: h.variant,
        classes: h.classes,
        bn_epsilon: h.bn_epsilon,
        weights: Arc::new(weights),
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The checksum of a whole file image: xxh3-64 of every byte except the
/// checksum field.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let mut bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// let sum = native::checksum(&bytes);
/// assert_eq!(bytes[48..56], sum.to_le_bytes()); // the stored checksum
/// bytes[48] ^= 1; // the checksum field itself is not covered
/// assert_eq!(native::checksum(&bytes), sum);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&bytes[..CHECKSUM_AT.start]);
    h.update(&bytes[CHECKSUM_AT.end..]);
    h.digest()
}

/// A fingerprint of how this build packs the given layouts: probe layers are
/// packed with each of them (each algorithm's digest, computed once per
/// process), and the digests of the distinct layout ids, in id order, are
/// hashed with the format version. A file records the fingerprint of the
/// layouts it uses, so a build whose packing of any of them differs (even
/// under the same layout id) refuses it, while a build that only adds layouts
/// still reads it.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// let header = native::parse(std::path::Path::new("mem"), &bytes)?;
/// let algos: Vec<_> = header.convs.iter().map(|(k, _)| k.algo).collect();
/// assert_eq!(bytes[56..64], native::layout_fingerprint(&algos).to_le_bytes()); // recorded in the header
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn layout_fingerprint(algos: &[ConvAlgo]) -> u64 {
    let mut ids: Vec<u32> = algos.iter().map(|a| a.layout_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    let digests = layout_digests();
    let mut h = Xxh3::new();
    h.update(&VERSION.to_le_bytes());
    for id in ids {
        let digest = digests.iter().find(|(i, _)| *i == id).map_or(0, |(_, d)| *d);
        h.update(&id.to_le_bytes());
        h.update(&digest.to_le_bytes());
    }
    h.digest()
}

/// `(record index, layout id)` of every convolution record among the first
/// `n` records of the table in `b`; records past the end of `b` are not read.
/// These are the layouts a file's [`layout_fingerprint`] covers.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// assert_eq!(native::conv_record_layouts(&bytes, 1000).count(), 53);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn conv_record_layouts(b: &[u8], n: usize) -> impl Iterator<Item = (usize, u32)> + '_ {
    (0..n)
        .map_while(move |r| Some((r, b.get(HEADER_LEN + r * RECORD_LEN..HEADER_LEN + (r + 1) * RECORD_LEN)?)))
        .filter(|(_, rec)| u32_at(rec, 0) == KIND_CONV)
        .map(|(r, rec)| (r, u32_at(rec, 8)))
}

/// `(layout id, digest of its packing)` for every algorithm this build knows.
fn layout_digests() -> &'static [(u32, u64)] {
    static DIGESTS: OnceLock<Vec<(u32, u64)>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        (0..64).filter_map(ConvAlgo::from_layout_id).map(|a| (a.layout_id(), layout_digest(a))).collect()
    })
}

/// Probe convolutions packed with `algo` (those it supports), hashed.
fn layout_digest(algo: ConvAlgo) -> u64 {
    let probes = [
        ConvParams { kh: 3, kw: 3, cin: 7, cout: 21, stride: 1, pad: [1; 4] },
        ConvParams { kh: 1, kw: 1, cin: 19, cout: 37, stride: 1, pad: [0; 4] },
        ConvParams { kh: 1, kw: 1, cin: 11, cout: 13, stride: 2, pad: [0; 4] },
        ConvParams { kh: 3, kw: 3, cin: 3, cout: 5, stride: 2, pad: [1; 4] },
        ConvParams { kh: 7, kw: 7, cin: 3, cout: 17, stride: 2, pad: [3; 4] },
    ];
    let mut h = Xxh3::new();
    h.update(&algo.layout_id().to_le_bytes());
    for p in probes.iter().filter(|p| p.supports(algo)) {
        let k = ConvKernel::new(*p, algo).expect("supported");
        let w: Vec<f32> = (0..p.kh * p.kw * p.cin * p.cout).map(|i| ((i as f32) * 0.37).sin()).collect();
        let b: Vec<f32> = (0..p.cout).map(|i| i as f32 * 0.1 - 1.0).collect();
        let mut out = vec![0.0f32; k.packed_len()];
        k.pack(&w, &b, &mut out);
        h.update(&(out.len() as u64).to_le_bytes());
        for v in out {
            h.update(&v.to_le_bytes());
        }
    }
    h.digest()
}

/// Validates a native file image completely (used by [`open`], and by the
/// fuzzer on arbitrary bytes). `path` only names the file in messages.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let mut bytes = native::to_bytes(&init::deterministic(Variant::V1, None), 1e-5)?;
/// let mem = std::path::Path::new("mem");
/// assert_eq!(native::parse(mem, &bytes)?.variant, Variant::V1);
/// assert!(native::parse(mem, &bytes[..bytes.len() - 4]).is_err()); // truncated
/// let last = bytes.len() - 1;
/// bytes[last] ^= 0x40;
/// assert!(native::parse(mem, &bytes).unwrap_err().to_string().contains("checksum"));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn parse(path: &Path, b: &[u8]) -> Result<Header> {
    let bad = |m: String| Err(file_err(path, m));
    if b.len() < HEADER_LEN {
        return bad(format!("truncated native weights file: {} bytes, the header alone needs {HEADER_LEN}", b.len()));
    }
    if b[..8] != MAGIC {
        return bad("not a native resnet50 weights file (bad magic)".into());
    }
    let version = u32_at(b, 8);
    if version != VERSION {
        return bad(format!(
            "native format version {version}, this build reads version {VERSION}: re-run `resnet50 convert` on the original weights"
        ));
    }
    let file_len = u64_at(b, 40);
    if file_len != b.len() as u64 {
        return bad(format!("truncated or padded: the header says {file_len} bytes, the file has {}", b.len()));
    }
    let stored = u64_at(b, CHECKSUM_AT.start);
    let actual = checksum(b);
    if stored != actual {
        return bad(format!("checksum mismatch (stored {stored:016x}, computed {actual:016x}): the file is corrupted"));
    }
    let variant = match u32_at(b, 16) {
        1 => Variant::V1,
        2 => Variant::V1_5,
        v => return bad(format!("unknown variant code {v} in the header (1 = v1, 2 = v1.5)")),
    };
    let classes = u32_at(b, 20) as usize;
    if classes > MAX_CLASSES {
        return bad(format!("{classes} classes exceeds the limit of {MAX_CLASSES}"));
    }
    let n = u32_at(b, 24) as usize;
    let want_n = NUM_CONVS + if classes > 0 { 2 } else { 0 };
    if n != want_n {
        return bad(format!("the header lists {n} tensors, a ResNet50 with {classes} classes has {want_n}"));
    }
    let eps = f32::from_le_bytes(b[28..32].try_into().expect("4 bytes"));
    if !(eps.is_finite() && eps > 0.0) {
        return bad(format!("BatchNorm epsilon {eps} in the header is not positive and finite"));
    }
    let data_offset = u64_at(b, 32);
    let want_off = (HEADER_LEN + n * RECORD_LEN).next_multiple_of(ALIGN) as u64;
    if data_offset != want_off || data_offset > file_len {
        return bad(format!("data offset {data_offset} is invalid (expected {want_off} within {file_len} bytes)"));
    }
    let data_offset = data_offset as usize;
    // The layouts the file uses: an unknown one means a newer build wrote it;
    // the fingerprint of the known ones must be this build's (checked before
    // the table, whose lengths a stale layout would fail less clearly).
    // `layouts[r]`: record r's algorithm, for convolution records (the table
    // loop below takes it from here).
    let specs = conv_specs(variant);
    let mut layouts: Vec<Option<ConvAlgo>> = vec![None; n];
    for (r, layout) in conv_record_layouts(b, n) {
        let Some(algo) = ConvAlgo::from_layout_id(layout) else {
            let name = specs.get(r).map_or_else(|| format!("record {r}"), |s| s.name.clone());
            return bad(format!(
                "tensor {name:?}: unknown kernel layout id {layout}: the file was written by a newer build; re-run `resnet50 convert`"
            ));
        };
        layouts[r] = Some(algo);
    }
    let fp = u64_at(b, 56);
    let algos: Vec<ConvAlgo> = layouts.iter().flatten().copied().collect();
    let this = layout_fingerprint(&algos);
    if fp != this {
        return bad(format!(
            "was packed for kernel layouts with fingerprint {fp:016x}, this build's kernels pack differently ({this:016x}): re-run `resnet50 convert` on the original weights with this build"
        ));
    }
    let mut convs = Vec::with_capacity(NUM_CONVS);
    let mut fc_k = None;
    let mut fc_b = None;
    let mut used: Vec<(Range<usize>, String)> = Vec::with_capacity(n);
    for r in 0..n {
        let rec = &b[HEADER_LEN + r * RECORD_LEN..HEADER_LEN + (r + 1) * RECORD_LEN];
        let kind = u32_at(rec, 0);
        let index = u32_at(rec, 4) as usize;
        let f = |i: usize| u32_at(rec, 12 + 4 * i) as usize;
        let (kh, kw, cin, cout, stride) = (f(0), f(1), f(2), f(3), f(4));
        let pad = [f(5), f(6), f(7), f(8)];
        let offset = u64_at(rec, 48);
        let len = u64_at(rec, 56);
        let (name, want_len) = match (kind, r) {
            (KIND_CONV, r) if r < NUM_CONVS => {
                let s = &specs[r];
                if index != r {
                    return bad(format!("record {r} is for convolution {index}, expected {r} ({})", s.name));
                }
                let want = conv_params(s);
                let got = ConvParams { kh, kw, cin, cout, stride, pad };
                if got != want {
                    return bad(format!(
                        "tensor {:?}: shape {kh}x{kw}x{cin}x{cout} stride {stride} pad {pad:?} does not match ResNet50 {variant}'s {}x{}x{}x{} stride {} pad {:?}",
                        s.name, want.kh, want.kw, want.cin, want.cout, want.stride, want.pad
                    ));
                }
                let algo = layouts[r].expect("every convolution record's layout id was checked above");
                let Some(k) = ConvKernel::new(want, algo) else {
                    return bad(format!(
                        "tensor {:?}: kernel layout {} cannot compute this convolution",
                        s.name,
                        algo.name()
                    ));
                };
                convs.push(k);
                (s.name.clone(), k.packed_len())
            }
            (KIND_FC_KERNEL, r) if r == NUM_CONVS => {
                if (kh, kw, cin, cout) != (1, 1, FEATURES, classes) {
                    return bad(format!(
                        "tensor \"fc/kernel\": shape {kh}x{kw}x{cin}x{cout}, expected 1x1x{FEATURES}x{classes}"
                    ));
                }
                ("fc/kernel".to_string(), FEATURES * classes)
            }
            (KIND_FC_BIAS, r) if r == NUM_CONVS + 1 => {
                if (kh, kw, cin, cout) != (1, 1, 1, classes) {
                    return bad(format!("tensor \"fc/bias\": shape {kh}x{kw}x{cin}x{cout}, expected 1x1x1x{classes}"));
                }
                ("fc/bias".to_string(), classes)
            }
            _ => return bad(format!("record {r} has kind {kind}, which does not belong at that position")),
        };
        if len != want_len as u64 {
            return bad(format!("tensor {name:?}: {len} floats in the table, its layout needs {want_len}"));
        }
        let start = offset as usize;
        let end = len.checked_mul(4).and_then(|l| l.checked_add(offset)).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return bad(format!(
                "tensor {name:?}: {len} floats at byte {offset} run past the end of the file ({file_len} bytes)"
            ));
        };
        let end = end as usize;
        if offset < data_offset as u64 || !offset.is_multiple_of(ALIGN as u64) {
            return bad(format!(
                "tensor {name:?}: offset {offset} is not a {ALIGN}-byte aligned position in the data region (from {data_offset})"
            ));
        }
        if let Some((_, other)) = used.iter().find(|(u, _)| start < u.end && u.start < end) {
            return bad(format!("tensor {name:?} overlaps tensor {other:?}"));
        }
        if let (KIND_CONV, Some(k)) = (kind, convs.last().filter(|_| r < NUM_CONVS)) {
            let prefix: Vec<f32> = b[start..end]
                .chunks_exact(4)
                .take(k.packed_prefix_len())
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            if let Err(e) = k.check_packed_prefix(&prefix) {
                return bad(format!("tensor {name:?}: {e}"));
            }
        }
        used.push((start..end, name));
        match kind {
            KIND_FC_KERNEL => fc_k = Some(start..end),
            KIND_FC_BIAS => fc_b = Some(start..end),
            _ => {}
        }
    }
    let convs = convs.into_iter().zip(used.iter().map(|(r, _)| r.clone())).collect();
    let fc = match (fc_k, fc_b) {
        (Some(k), Some(b)) => Some((k, b)),
        _ => None,
    };
    Ok(Header { variant, classes: (classes > 0).then_some(classes), bn_epsilon: eps, data_offset, convs, fc })
}

/// Prepares `w` (BatchNorm folded with `eps`, packed for this build's fast
/// kernels) and writes it as a native file at `dst`, through a temporary file
/// in the same directory renamed over `dst`, so a process that has the old
/// file mapped keeps reading the old contents.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.rn50w", line!(), std::process::id()));
/// let w = init::deterministic(Variant::V1, Some(10));
/// native::write(&w, 1.001e-5, &path)?;
/// assert_eq!(std::fs::read(&path).unwrap(), native::to_bytes(&w, 1.001e-5)?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn write(w: &CanonicalWeights, eps: f32, dst: &Path) -> Result<()> {
    let bytes = to_bytes(w, eps)?;
    let dir = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "weights".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dst)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(dst, e));
    }
    Ok(())
}

/// The native file image of `w` prepared with `eps`.
///
/// ```
/// use resnet50::{init, loaders::native, Variant};
/// let w = init::deterministic(Variant::V1_5, None);
/// let bytes = native::to_bytes(&w, 1e-5)?;
/// assert!(bytes.starts_with(&native::MAGIC));
/// assert!(native::to_bytes(&w, 0.0).is_err()); // ε must be positive
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn to_bytes(w: &CanonicalWeights, eps: f32) -> Result<Vec<u8>> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::Config(format!("BatchNorm epsilon must be positive and finite, got {eps}")));
    }
    // Packed for Keras' default input, 224×224, one image at a time.
    let p = PreparedWeights::new(
        w,
        eps,
        // Portable: a model with feature maps (no early stride) runs it too,
        // and the choice does not depend on the CPU that converts it.
        KernelChoice::FastFor {
            batch: 1,
            height: 224,
            width: 224,
            early_stride: true,
            portable: true,
            full_width_avx512: false,
        },
        true,
    )?;
    let classes = p.fc.as_ref().map_or(0, |f| f.2);
    let n = NUM_CONVS + if classes > 0 { 2 } else { 0 };
    let data_offset = (HEADER_LEN + n * RECORD_LEN).next_multiple_of(ALIGN);
    let data = p.data();
    let file_len = data_offset + data.len() * 4;
    let mut b = Vec::with_capacity(file_len);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&((HEADER_LEN + n * RECORD_LEN) as u32).to_le_bytes());
    b.extend_from_slice(&(if w.variant == Variant::V1 { 1u32 } else { 2 }).to_le_bytes());
    b.extend_from_slice(&(classes as u32).to_le_bytes());
    b.extend_from_slice(&(n as u32).to_le_bytes());
    b.extend_from_slice(&eps.to_le_bytes());
    b.extend_from_slice(&(data_offset as u64).to_le_bytes());
    b.extend_from_slice(&(file_len as u64).to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // checksum, patched below
    let algos: Vec<ConvAlgo> = p.convs.iter().map(|(k, _)| k.algo).collect();
    b.extend_from_slice(&layout_fingerprint(&algos).to_le_bytes());
    debug_assert_eq!(b.len(), HEADER_LEN);
    let record = |b: &mut Vec<u8>, kind: u32, index: usize, layout: u32, dims: [usize; 9], r: &Range<usize>| {
        for v in [kind, index as u32, layout] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for d in dims {
            b.extend_from_slice(&(d as u32).to_le_bytes());
        }
        b.extend_from_slice(&((data_offset + r.start * 4) as u64).to_le_bytes());
        b.extend_from_slice(&(r.len() as u64).to_le_bytes());
    };
    for (i, (k, r)) in p.convs.iter().enumerate() {
        let q = &k.params;
        let dims = [q.kh, q.kw, q.cin, q.cout, q.stride, q.pad[0], q.pad[1], q.pad[2], q.pad[3]];
        record(&mut b, KIND_CONV, i, k.algo.layout_id(), dims, r);
    }
    if let Some((kr, br, c)) = &p.fc {
        record(&mut b, KIND_FC_KERNEL, 0, 0, [1, 1, FEATURES, *c, 1, 0, 0, 0, 0], kr);
        record(&mut b, KIND_FC_BIAS, 0, 0, [1, 1, 1, *c, 1, 0, 0, 0, 0], br);
    }
    b.resize(data_offset, 0);
    for v in data {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let sum = checksum(&b);
    b[CHECKSUM_AT].copy_from_slice(&sum.to_le_bytes());
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use resnet50_kernels::WinogradTile;

    #[test]
    fn fingerprint_covers_the_set_of_layouts_used() {
        let (g, w4, w3) =
            (ConvAlgo::Gemm1x1, ConvAlgo::Winograd(WinogradTile::F4x4), ConvAlgo::Winograd(WinogradTile::F3x3));
        // Order and repetition do not matter; which layouts are used does.
        assert_eq!(layout_fingerprint(&[g, w4, g]), layout_fingerprint(&[w4, g]));
        assert_ne!(layout_fingerprint(&[g, w4]), layout_fingerprint(&[g, w4, w3]));
        assert_ne!(layout_fingerprint(&[g]), layout_fingerprint(&[w4]));
        // Every known layout has its own digest.
        let d = layout_digests();
        assert_eq!(d.len(), (0..64).filter_map(ConvAlgo::from_layout_id).count());
        for (i, (_, a)) in d.iter().enumerate() {
            assert!(d[i + 1..].iter().all(|(_, b)| b != a));
        }
    }
}

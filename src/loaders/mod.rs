//! Weight files users already have → [`CanonicalWeights`], and the native
//! memory-mapped format.
//!
//! Every importer maps its source's tensors onto the canonical list **by
//! name** (never by position; the name tables are in [`names`]), checks each
//! tensor's shape and values, and reports the variant, classes and BatchNorm ε
//! the source implies. The format is detected from the file's first bytes,
//! not its extension:
//!
//! | format | detected by | variant | ε |
//! |---|---|---|---|
//! | safetensors, torchvision/timm names | 8-byte length + `{` | v1.5 | 1e-5 |
//! | safetensors, Hugging Face `microsoft/resnet-50` names | same | v1.5 | 1e-5 |
//! | safetensors, Keras names | same | v1 | 1.001e-5 (1e-3 for 2016 names) |
//! | Keras HDF5 `save_weights`/applications file, today's names | `\x89HDF\r\n\x1a\n` | v1 | 1.001e-5 |
//! | Keras HDF5, 2016 names (`conv1`, `bn_conv1`, `res2a_branch2a`) | same | v1 | 1e-3 |
//! | Keras 3 `.weights.h5` | same | v1 | 1.001e-5 |
//! | Keras 3 `.keras` model (`model.save`): its `model.weights.h5` | `PK\x03\x04` + that member | v1 | 1.001e-5 |
//! | PyTorch zip checkpoint (`.pth`, `pytorch_model.bin`), torchvision/timm or Hugging Face names | `PK\x03\x04` + a `data.pkl` member | v1.5 | 1e-5 |
//! | PyTorch legacy checkpoint (torch < 1.6), same names | [`pytorch::LEGACY_MAGIC`] | v1.5 | 1e-5 |
//! | ONNX model (`torch.onnx.export`, …): weights by graph structure, not names | `ModelProto` field 1 ([`onnx::looks_like_onnx`]) | from the strides | the BatchNormalization nodes', [`onnx::FOLDED_EPSILON`] if folded |
//! | native (prepared, packed) | `\x89RN50W\r\n` | in header | folded in |
//!
//! See `docs/weights.md` for the user's view and `docs/native-format.md` for
//! the native file.

pub mod archive;
pub mod export;
pub mod imagenet;
pub mod keras_h5;
pub mod names;
pub mod native;
pub mod onnx;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::arch::{conv_specs, ConvSpec, FEATURES, NUM_CONVS};
use crate::config::Variant;
use crate::error::{Error, Result};
use crate::weights::{BatchNorm, CanonicalWeights, ConvWeights, DenseWeights};
use names::{Part, Slot};

pub use native::NativeWeights;

/// Which kind of file the weights came from.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// let loaded = loaders::load(&path)?;
/// assert_eq!(loaded.format, loaders::Format::Safetensors(Scheme::Torchvision));
/// assert!(loaded.format.to_string().starts_with("safetensors"));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A safetensors file with the given naming scheme.
    Safetensors(names::Scheme),
    /// A Keras legacy HDF5 weights file (`save_weights("x.h5")`, the
    /// applications download), today's layer names.
    KerasH5,
    /// A Keras legacy HDF5 weights file with the 2016 layer names (`conv1`,
    /// `bn_conv1`, `res2a_branch2a`, flat `conv1_W:0` datasets).
    KerasH5Old,
    /// A Keras 3 `.weights.h5` file.
    Keras3,
    /// This crate's native prepared-weights file.
    Native,
    /// A PyTorch checkpoint (`torch.save(state_dict)`: `.pth`,
    /// `pytorch_model.bin`; zip or legacy) with the given naming scheme.
    PyTorch(names::Scheme),
    /// An ONNX model (`torch.onnx.export`, …), its weights found by walking
    /// the graph ([`onnx`]).
    Onnx,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Safetensors(s) => write!(f, "safetensors ({})", s.describe()),
            Format::KerasH5 => f.write_str("Keras HDF5 weights (Keras names)"),
            Format::KerasH5Old => f.write_str("Keras HDF5 weights (2016 Keras 1/2 names)"),
            Format::Keras3 => f.write_str("Keras 3 .weights.h5"),
            Format::Native => f.write_str("native resnet50 weights"),
            Format::PyTorch(s) => write!(f, "PyTorch checkpoint ({})", s.describe()),
            Format::Onnx => f.write_str("ONNX model"),
        }
    }
}

/// Weights imported from a file, with what the file implies about the model.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// let loaded = loaders::load(&path)?;
/// assert_eq!(loaded.weights.variant, Variant::V1_5); // implied by the torchvision names
/// assert_eq!(loaded.bn_epsilon, Some(1e-5));
/// assert_eq!(loaded.weights.convs[0].kernel, w.convs[0].kernel);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The canonical weights (variant inferred from the naming scheme).
    pub weights: CanonicalWeights,
    /// The BatchNorm ε of the framework that wrote the file (used when the
    /// configuration does not set one).
    pub bn_epsilon: Option<f32>,
    /// The detected format.
    pub format: Format,
    /// The file.
    pub path: PathBuf,
}

impl Loaded {
    /// Classes of the classifier, or `None` for a file without the top.
    ///
    /// ```
    /// use resnet50::loaders::{self, export, names::Scheme};
    /// use resnet50::{init, Variant};
    /// let dir = std::env::temp_dir();
    /// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
    /// let w = init::keras_random(Variant::V1_5, Some(4), 0);
    /// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
    /// assert_eq!(loaders::load(&path)?.classes(), Some(4));
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn classes(&self) -> Option<usize> {
        self.weights.fc.as_ref().map(|fc| fc.classes)
    }
}

/// A weights file, opened: either imported into canonical weights, or a
/// native file mapped and ready to use in place.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// assert!(matches!(loaders::open(&path)?, loaders::Opened::Canonical(_)));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Debug)]
pub enum Opened {
    /// An imported framework file.
    Canonical(Loaded),
    /// A native prepared-weights file.
    Native(NativeWeights),
}

/// Loads a framework weights file (safetensors, a PyTorch checkpoint, Keras
/// HDF5, Keras 3 `.weights.h5` or `.keras`) into canonical weights. A native file is refused here
/// (it holds prepared weights, not canonical ones): use [`open`].
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// assert_eq!(loaders::load(&path)?.weights.convs.len(), 53);
/// std::fs::write(&path, b"not weights at all").unwrap();
/// let err = loaders::load(&path).unwrap_err();
/// assert!(err.to_string().contains(&path.display().to_string()), "{err}");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load(path: &Path) -> Result<Loaded> {
    match open(path)? {
        Opened::Canonical(l) => Ok(l),
        Opened::Native(_) => Err(file_err(
            path,
            "is a native resnet50 weights file (prepared, packed weights): it can be used directly as a model's weights, but not converted back to canonical weights",
        )),
    }
}

/// Opens any supported weights file, detecting its format from its content.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// match loaders::open(&path)? {
///     loaders::Opened::Canonical(l) => assert_eq!(l.classes(), Some(4)),
///     loaders::Opened::Native(_) => unreachable!("a safetensors file"),
/// }
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn open(path: &Path) -> Result<Opened> {
    let (file, len) = open_regular(path)?;
    let mut head = [0u8; 16];
    let n = read_head(&file, &mut head).map_err(|e| io_err(path, e))?;
    match detect(&head[..n], len) {
        Some(Detected::Native) => Ok(Opened::Native(native::open_file(path, file)?)),
        Some(Detected::Safetensors) => Ok(Opened::Canonical(safetensors::load_file(path, &file)?)),
        Some(Detected::Hdf5) => Ok(Opened::Canonical(keras_h5::load_file(path, &file)?)),
        Some(Detected::Zip) => Ok(Opened::Canonical(archive::load_file(path, &file)?)),
        Some(Detected::TorchLegacy) => Ok(Opened::Canonical(pytorch::load_legacy_file(path, &file)?)),
        Some(Detected::Onnx) => Ok(Opened::Canonical(onnx::load_file(path, &file)?)),
        None => Err(unrecognised(path, &head[..n])),
    }
}

/// `resnet50 convert SRC DST`: imports `src` (any supported framework file),
/// folds BatchNorm with the ε the source implies, packs every convolution for
/// this build's kernels, and writes the native file `dst` (atomically: a
/// temporary file renamed over `dst`). `variant_hint`, when given, must agree
/// with the variant the file implies (Keras files are v1, torchvision/timm/HF
/// files v1.5); a disagreement is an error naming both.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// let native = dir.join(format!("resnet50-doc-{}.r50w", std::process::id()));
/// loaders::convert(&path, &native, Some(Variant::V1_5))?;
/// assert!(matches!(loaders::open(&native)?, loaders::Opened::Native(_)));
/// // A variant hint that disagrees with the file is an error naming both.
/// let err = loaders::convert(&path, &native, Some(Variant::V1)).unwrap_err();
/// assert!(err.to_string().contains("v1.5") && err.to_string().contains("v1 was requested"), "{err}");
/// # std::fs::remove_file(&path).ok();
/// # std::fs::remove_file(&native).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn convert(src: &Path, dst: &Path, variant_hint: Option<Variant>) -> Result<()> {
    let loaded = load(src)?;
    if let Some(v) = variant_hint {
        check_variant(&loaded, v)?;
    }
    let eps = loaded.bn_epsilon.unwrap_or(loaded.weights.variant.default_bn_epsilon());
    native::write(&loaded.weights, eps, dst)
}

/// Checks that `loaded` is for `variant`; the error names the file and both variants.
///
/// ```
/// use resnet50::loaders::{self, export, names::Scheme};
/// use resnet50::{init, Variant};
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(4), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// let loaded = loaders::load(&path)?;
/// assert!(loaders::check_variant(&loaded, Variant::V1_5).is_ok());
/// assert!(loaders::check_variant(&loaded, Variant::V1).is_err());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn check_variant(loaded: &Loaded, variant: Variant) -> Result<()> {
    if loaded.weights.variant != variant {
        return Err(file_err(
            &loaded.path,
            format!(
                "holds ResNet50 {} weights ({}) but ResNet50 {variant} was requested (ask for variant {} — CLI: --variant {})",
                loaded.weights.variant,
                loaded.format,
                loaded.weights.variant,
                loaded.weights.variant
            ),
        ));
    }
    Ok(())
}

/// What the first bytes say.
///
/// ```
/// use resnet50::loaders::{detect, Detected};
/// assert_eq!(detect(b"\x89HDF\r\n\x1a\n", 1 << 20), Some(Detected::Hdf5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// `\x89RN50W\r\n`.
    Native,
    /// The HDF5 signature.
    Hdf5,
    /// A little-endian u64 header length followed by `{`.
    Safetensors,
    /// A zip archive (`PK\x03\x04`, or `PK\x05\x06` when empty): a PyTorch
    /// checkpoint if it has a `data.pkl`, a Keras `.keras` model if it has a
    /// `model.weights.h5` ([`archive`]).
    Zip,
    /// A legacy PyTorch checkpoint (torch < 1.6): [`pytorch::LEGACY_MAGIC`].
    TorchLegacy,
    /// An ONNX model: a protobuf `ModelProto` starting with its `ir_version`
    /// ([`onnx::looks_like_onnx`]).
    Onnx,
}

/// Detects the format from the first (up to 16) bytes and the file length.
///
/// ```
/// use resnet50::loaders::{detect, Detected};
/// let mut st = 2u64.to_le_bytes().to_vec();
/// st.extend_from_slice(b"{}");
/// assert_eq!(detect(&st, st.len() as u64), Some(Detected::Safetensors));
/// assert_eq!(detect(b"GIF89a", 6), None);
/// ```
pub fn detect(head: &[u8], file_len: u64) -> Option<Detected> {
    if head.starts_with(&native::MAGIC) {
        return Some(Detected::Native);
    }
    if head.starts_with(keras_h5::SIGNATURE) {
        return Some(Detected::Hdf5);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Detected::Zip);
    }
    if head.starts_with(pytorch::LEGACY_MAGIC) {
        return Some(Detected::TorchLegacy);
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        // A header longer than the file is still reported as a (truncated)
        // safetensors file; safetensors caps headers at 100 MB.
        let _ = file_len;
        if head[8] == b'{' && (2..=100_000_000).contains(&n) {
            return Some(Detected::Safetensors);
        }
    }
    if onnx::looks_like_onnx(head) {
        return Some(Detected::Onnx);
    }
    None
}

fn unrecognised(path: &Path, head: &[u8]) -> Error {
    // PROTO 2 or 3; 4 and 5 start with a FRAME.
    if [&b"\x80\x02"[..], b"\x80\x03", b"\x80\x04\x95", b"\x80\x05\x95"].iter().any(|p| head.starts_with(p)) {
        return file_err(
            path,
            "is a bare Python pickle that is not a PyTorch checkpoint torch.save wrote (pickle protocol 2 and torch's magic number); \
             save the weights with torch.save(model.state_dict(), path), or export safetensors",
        );
    }
    // The 2017 tar format (`resnet50-19c8e357.pth`): a tar of members
    // `storages`, `tensors`, `pickle`, `sys_info`, each name at offset 0 of
    // its header.
    if ["storages\0", "tensors\0", "pickle\0", "sys_info\0"].iter().any(|m| head.starts_with(m.as_bytes())) {
        return file_err(
            path,
            "is a PyTorch checkpoint in the 2017 tar format, which is not read: re-save it with a current torch \
             (`torch.save(torch.load(p, map_location='cpu'), 'new.pth')`), or use torchvision's current file resnet50-0676ba61.pth",
        );
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    file_err(
        path,
        format!(
            "unrecognised weights format (first bytes {}): expected safetensors, a PyTorch checkpoint (.pth, .bin), Keras HDF5 (.h5, .weights.h5, .keras), ONNX or a native resnet50 file",
            shown.join(" ")
        ),
    )
}

/// Opens `path` for reading, refusing directories, special files and empty files.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if meta.is_dir() {
        return Err(file_err(path, "is a directory, not a weights file"));
    }
    if !meta.is_file() {
        return Err(file_err(path, "is not a regular file"));
    }
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len == 0 {
        return Err(file_err(path, "is empty (0 bytes)"));
    }
    Ok((file, len))
}

/// Reads up to `buf.len()` bytes from the start of `file`.
pub(crate) fn read_head(mut file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `Error::Io` naming the file.
pub(crate) fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source: e }
}

/// `Error::Weights` whose message starts with the file.
pub(crate) fn file_err(path: &Path, msg: impl fmt::Display) -> Error {
    Error::Weights(format!("{}: {msg}", path.display()))
}

/// `Error::Weights` naming the file and the tensor.
pub(crate) fn tensor_err(path: &Path, tensor: &str, msg: impl fmt::Display) -> Error {
    Error::Weights(format!("{}: tensor {tensor:?}: {msg}", path.display()))
}

/// The element types a source tensor may have; all are converted to f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    F64,
    F16,
    BF16,
}

/// Decodes little-endian `bytes` of `elem` into f32 (no alignment needed).
pub(crate) fn decode_le(bytes: &[u8], elem: Elem) -> Vec<f32> {
    match elem {
        Elem::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Elem::F64 => bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
        Elem::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Elem::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
    }
}

/// Expected source shape of `slot`: HWIO / `[2048, classes]` (Keras) or
/// OIHW / `[classes, 2048]` (torch). `classes` is `None` for the fc kernel
/// until the bias is known (then any positive count is accepted).
pub(crate) fn expected_shape(spec: Option<&ConvSpec>, slot: Slot, torch: bool, classes: Option<usize>) -> Vec<usize> {
    match (slot, spec) {
        (Slot::Conv(_, Part::Kernel), Some(s)) if torch => vec![s.cout, s.cin, s.k, s.k],
        (Slot::Conv(_, Part::Kernel), Some(s)) => vec![s.k, s.k, s.cin, s.cout],
        (Slot::Conv(..), Some(s)) => vec![s.cout],
        (Slot::FcKernel, _) if torch => vec![classes.unwrap_or(0), FEATURES],
        (Slot::FcKernel, _) => vec![FEATURES, classes.unwrap_or(0)],
        (Slot::FcBias, _) => vec![classes.unwrap_or(0)],
        _ => vec![],
    }
}

/// Collects source tensors by canonical slot, checking shapes and values as
/// they come in, and assembles [`CanonicalWeights`] at the end.
pub(crate) struct Assembler<'a> {
    path: &'a Path,
    torch: bool,
    specs: Vec<ConvSpec>,
    slots: HashMap<Slot, (Vec<f32>, String)>,
}

impl<'a> Assembler<'a> {
    pub(crate) fn new(path: &'a Path, torch: bool) -> Self {
        Assembler { path, torch, specs: conv_specs(Variant::V1), slots: HashMap::new() }
    }

    /// Checks `shape` for `slot` (fc: `[2048, c]`/`[c, 2048]` or `[c]`, any c ≥ 1).
    pub(crate) fn check_shape(&self, slot: Slot, source: &str, shape: &[usize]) -> Result<()> {
        let spec = match slot {
            Slot::Conv(i, _) => self.specs.get(i),
            _ => None,
        };
        let classes = match slot {
            Slot::FcKernel if self.torch => shape.first().copied(),
            Slot::FcKernel => shape.get(1).copied(),
            Slot::FcBias => shape.first().copied(),
            _ => None,
        };
        let want = expected_shape(spec, slot, self.torch, classes.filter(|&c| c > 0));
        if shape != want.as_slice() {
            let what = match (slot, spec) {
                (Slot::Conv(_, p), Some(s)) => format!("ResNet50's {}/{}", s.name, p.name()),
                _ => format!("ResNet50's {}", slot.canonical_name()),
            };
            let want = if matches!(slot, Slot::FcKernel | Slot::FcBias) {
                match (slot, self.torch) {
                    (Slot::FcKernel, true) => "[classes, 2048] with classes >= 1".to_string(),
                    (Slot::FcKernel, false) => "[2048, classes] with classes >= 1".to_string(),
                    _ => "[classes] with classes >= 1".to_string(),
                }
            } else {
                format!("{want:?}")
            };
            return Err(tensor_err(self.path, source, format!("has shape {shape:?} but {what} needs {want}")));
        }
        Ok(())
    }

    /// Adds a tensor already in the source layout described by `shape`
    /// (checked here), converting torch layouts to Keras'.
    pub(crate) fn put(&mut self, slot: Slot, source: &str, shape: &[usize], values: Vec<f32>) -> Result<()> {
        self.check_shape(slot, source, shape)?;
        let n: usize = shape.iter().product();
        if values.len() != n {
            return Err(tensor_err(
                self.path,
                source,
                format!("holds {} values, its shape {shape:?} needs {n}", values.len()),
            ));
        }
        if let Some(i) = crate::weights::first_non_finite(&values) {
            return Err(tensor_err(self.path, source, format!("value [{i}] is not finite ({})", values[i])));
        }
        if let Slot::Conv(_, Part::Var) = slot
            && let Some(i) = values.iter().position(|&v| v < 0.0)
        {
            return Err(tensor_err(
                self.path,
                source,
                format!("a BatchNorm variance must not be negative, value [{i}] is {}", values[i]),
            ));
        }
        let values = match slot {
            Slot::Conv(_, Part::Kernel) if self.torch => oihw_to_hwio(&values, shape),
            Slot::FcKernel if self.torch => transpose(&values, shape[0], shape[1]),
            _ => values,
        };
        if let Some((_, first)) = self.slots.get(&slot) {
            return Err(tensor_err(
                self.path,
                source,
                format!("holds {} which tensor {first:?} already provided", slot.canonical_name()),
            ));
        }
        self.slots.insert(slot, (values, source.to_string()));
        Ok(())
    }

    /// Builds the canonical weights. `name_of` gives the source name a
    /// missing slot would have had, for the error message.
    pub(crate) fn finish(mut self, variant: Variant, name_of: impl Fn(Slot) -> String) -> Result<CanonicalWeights> {
        let with_bias = (0..NUM_CONVS).filter(|&i| self.slots.contains_key(&Slot::Conv(i, Part::Bias))).count();
        let mut take = |slot: Slot| -> Result<Vec<f32>> {
            self.slots.remove(&slot).map(|(v, _)| v).ok_or_else(|| tensor_err(self.path, &name_of(slot), "is missing"))
        };
        let mut convs = Vec::with_capacity(NUM_CONVS);
        for i in 0..NUM_CONVS {
            let kernel = take(Slot::Conv(i, Part::Kernel))?;
            // Conv biases: all or none (Keras has them, torch does not).
            let bias = if with_bias > 0 { Some(take(Slot::Conv(i, Part::Bias))?) } else { None };
            let bn = BatchNorm {
                gamma: take(Slot::Conv(i, Part::Gamma))?,
                beta: take(Slot::Conv(i, Part::Beta))?,
                mean: take(Slot::Conv(i, Part::Mean))?,
                var: take(Slot::Conv(i, Part::Var))?,
            };
            convs.push(ConvWeights { kernel, bias, bn });
        }
        let fc = match (self.slots.remove(&Slot::FcKernel), self.slots.remove(&Slot::FcBias)) {
            (None, None) => None,
            (Some((kernel, kname)), Some((bias, bname))) => {
                let classes = bias.len();
                if kernel.len() != FEATURES * classes {
                    return Err(tensor_err(
                        self.path,
                        &kname,
                        format!(
                            "has {} values, which does not match the {classes} classes of {bname:?} (needs 2048 x {classes})",
                            kernel.len()
                        ),
                    ));
                }
                Some(DenseWeights { kernel, bias, classes })
            }
            (Some(_), None) => return Err(tensor_err(self.path, &name_of(Slot::FcBias), "is missing")),
            (None, Some(_)) => return Err(tensor_err(self.path, &name_of(Slot::FcKernel), "is missing")),
        };
        let w = CanonicalWeights { variant, convs, fc };
        w.validate().map_err(|e| file_err(self.path, e))?;
        Ok(w)
    }
}

/// OIHW `[o, i, h, w]` → HWIO `[h, w, i, o]`.
pub(crate) fn oihw_to_hwio(src: &[f32], shape: &[usize]) -> Vec<f32> {
    let (o, i, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let mut dst = vec![0.0; src.len()];
    for oo in 0..o {
        for ii in 0..i {
            for hh in 0..h {
                for ww in 0..w {
                    dst[((hh * w + ww) * i + ii) * o + oo] = src[((oo * i + ii) * h + hh) * w + ww];
                }
            }
        }
    }
    dst
}

/// HWIO `[h, w, i, o]` → OIHW `[o, i, h, w]` (for writers of torch-layout files).
///
/// ```
/// // h=1, w=1, i=2, o=3: HWIO [[a, b, c], [d, e, f]] -> OIHW [[a, d], [b, e], [c, f]]
/// let oihw = resnet50::loaders::hwio_to_oihw(&[1., 2., 3., 4., 5., 6.], [1, 1, 2, 3]);
/// assert_eq!(oihw, [1., 4., 2., 5., 3., 6.]);
/// ```
///
/// # Panics
///
/// If `src.len()` is smaller than the product of `hwio` (a caller bug: the
/// writers pass tensors whose length matches their shape).
pub fn hwio_to_oihw(src: &[f32], hwio: [usize; 4]) -> Vec<f32> {
    let [h, w, i, o] = hwio;
    let mut dst = vec![0.0; src.len()];
    for hh in 0..h {
        for ww in 0..w {
            for ii in 0..i {
                for oo in 0..o {
                    dst[((oo * i + ii) * h + hh) * w + ww] = src[((hh * w + ww) * i + ii) * o + oo];
                }
            }
        }
    }
    dst
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
///
/// ```
/// assert_eq!(resnet50::loaders::transpose(&[1., 2., 3., 4., 5., 6.], 2, 3), [1., 4., 2., 5., 3., 6.]);
/// ```
///
/// # Panics
///
/// If `src.len()` is smaller than `rows * cols`.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0.0; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let hwio = [3, 2, 4, 5];
        let v: Vec<f32> = (0..120).map(|x| x as f32).collect();
        let oihw = hwio_to_oihw(&v, hwio);
        assert_eq!(oihw_to_hwio(&oihw, &[5, 4, 3, 2]), v);
        assert_eq!(transpose(&transpose(&v, 10, 12), 12, 10), v);
    }

    #[test]
    fn detection_by_magic() {
        assert_eq!(detect(b"\x89HDF\r\n\x1a\n\0\0\0\0", 100), Some(Detected::Hdf5));
        assert_eq!(detect(&[2, 0, 0, 0, 0, 0, 0, 0, b'{', b'}'], 10), Some(Detected::Safetensors));
        assert_eq!(detect(&[0, 0, 0, 0, 0, 0, 0, 1, b'{', b'}'], 10), None);
        assert_eq!(detect(b"\x89RN50W\r\n", 64), Some(Detected::Native));
        assert_eq!(detect(b"PK\x03\x04", 64), Some(Detected::Zip));
        assert_eq!(
            detect(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e\x80", 64),
            Some(Detected::TorchLegacy)
        );
        assert_eq!(detect(b"\x80\x02}q\x00.", 64), None); // another pickle
    }
}

//! PyTorch checkpoints → canonical weights, by tensor name: what
//! `torch.save(model.state_dict(), "x.pth")` writes, torchvision's own
//! downloads (`~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth`) and
//! Hugging Face's `pytorch_model.bin`.
//!
//! The file is a zip archive (torch ≥ 1.6; [`super::archive`]) whose members
//! are stored uncompressed: `<folder>/data.pkl`, the pickled state dict, and
//! `<folder>/data/<key>`, one raw little-endian storage per key. The pickle
//! is read by [`super::pickle`], which executes nothing; the tensors it
//! describes are sliced from the memory-mapped storages and then placed by
//! name exactly as a safetensors file's are (torchvision/timm or Hugging Face
//! names, v1.5). A checkpoint that wraps the state dict (`{"state_dict": …}`,
//! `{"model": …}`) is unwrapped. The legacy format (before torch 1.6, and
//! `_use_new_zipfile_serialization=False` since) is read too
//! ([`from_legacy_bytes`]). Refused with a message naming the problem: the
//! 2017 tar format, a pickled `nn.Module`, compressed members, big-endian
//! storages, element types other than f32/f16/bf16/f64.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use super::archive::Archive;
use super::pickle::{self, TensorRef, Value};
use super::safetensors::{assemble_by_name, NamedTensor};
use super::{file_err, io_err, Elem, Format, Loaded};
use crate::error::Result;

/// The largest `data.pkl` read: its values may take up to
/// [`pickle::budget`] bytes (~1 GiB at this size).
const MAX_PICKLE: usize = 32 << 20;

/// The `data.pkl` member among an archive's `names` (the shortest such path,
/// so a checkpoint saved inside another's folder is not mistaken for it).
pub(crate) fn data_pkl(names: &[String]) -> Option<&String> {
    names.iter().filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl")).min_by_key(|n| n.len())
}

/// Keys under which training scripts commonly nest the state dict.
const WRAPPER_KEYS: [&str; 5] = ["state_dict", "model_state_dict", "model", "module", "net"];

/// Maps the checkpoint image `bytes` (named `path` in messages) onto canonical weights.
///
/// ```
/// use resnet50::loaders::{export, names::Scheme, pytorch};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1_5, None, 0);
/// let bytes = export::pytorch_bytes(&export::safetensors_tensors(&w, Scheme::HuggingFace))?;
/// let loaded = pytorch::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.weights.variant, loaded.classes()), (Variant::V1_5, None));
/// let err = pytorch::from_bytes(std::path::Path::new("mem"), &bytes[..bytes.len() / 2]).unwrap_err();
/// assert!(err.to_string().contains("zip"), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    from_archive(path, Archive::new(path, bytes)?)
}

/// [`from_bytes`] on an archive already opened.
pub(crate) fn from_archive(path: &Path, archive: Archive<'_>) -> Result<Loaded> {
    let tensors = read_tensors(path, archive)?;
    assemble(path, &tensors)
}

/// The state dict's tensors onto ResNet50, by name.
fn assemble(path: &Path, tensors: &[(String, Entry<'_>)]) -> Result<Loaded> {
    let named = tensors
        .iter()
        .map(|(key, t)| NamedTensor {
            key: key.clone(),
            shape: t.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            data: t.as_ref().map(|(_, e, d)| (*e, d.as_ref())).map_err(Clone::clone),
        })
        .collect();
    assemble_by_name(path, named, "PyTorch checkpoint", Format::PyTorch)
}

/// One state dict entry: shape, element type and little-endian bytes, or why
/// it cannot be used as a float tensor.
type Entry<'b> = std::result::Result<(Vec<usize>, Elem, Cow<'b, [u8]>), String>;

/// The state dict's entries in order, each tensor sliced (or gathered) from
/// its storage.
fn read_tensors<'b>(path: &Path, mut zip: Archive<'b>) -> Result<Vec<(String, Entry<'b>)>> {
    let names = std::mem::take(&mut zip.names);
    let Some(pkl) = data_pkl(&names) else {
        return Err(file_err(path, "is a zip archive without a data.pkl member, so not a PyTorch checkpoint"));
    };
    let prefix = pkl[..pkl.len() - "data.pkl".len()].to_string();
    let byteorder = format!("{prefix}byteorder");
    if names.contains(&byteorder) {
        let order = zip.member(&byteorder).map_err(|msg| file_err(path, msg))?;
        if order != b"little" {
            return Err(file_err(
                path,
                format!(
                    "stores its tensors {:?}-endian; only little-endian checkpoints are read",
                    String::from_utf8_lossy(order)
                ),
            ));
        }
    }
    let pkl_bytes = zip.member(pkl).map_err(|msg| file_err(path, msg))?;
    if pkl_bytes.len() > MAX_PICKLE {
        return Err(file_err(
            path,
            format!(
                "{pkl} is {} bytes; a state dict's pickle is far smaller (ResNet50's: ~30 KB), and more than {} MiB is refused",
                pkl_bytes.len(),
                MAX_PICKLE >> 20
            ),
        ));
    }
    let value = pickle::load(pkl_bytes).map_err(|e| file_err(path, format!("{pkl}: {e}")))?;
    let entries = state_dict(path, value)?;
    Ok(entries
        .into_iter()
        .map(|(key, v)| {
            let t = match v {
                Value::Tensor(t) => tensor_bytes(&mut zip, &prefix, &t),
                other => Err(format!("is {}, not a tensor", other.kind())),
            };
            (key, t)
        })
        .collect())
}

/// The first bytes of a legacy checkpoint (torch < 1.6, or
/// `_use_new_zipfile_serialization=False`): protocol 2, torch's magic number
/// `0x1950a86a20f9469cfc6c` as an 80-bit int, STOP.
pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";

/// Loads a legacy (pre-zip) PyTorch checkpoint, reading it through a read-only mapping.
pub fn load_legacy_file(path: &Path, file: &File) -> Result<Loaded> {
    let map = resnet50_kernels::mapped::map_file(file).map_err(|e| io_err(path, e))?;
    from_legacy_bytes(path, &map)
}

/// Maps a legacy checkpoint image (torch < 1.6's format, still written with
/// `_use_new_zipfile_serialization=False`) onto canonical weights: five
/// pickles in a row — the magic number, the format version (1001), the
/// system info (byte order), the state dict, the list of storage keys — then
/// each storage in that order as a little-endian u64 element count and its
/// bytes.
///
/// ```
/// use resnet50::loaders::{pytorch, names::Scheme, Format};
/// // tests/fixtures/torch/legacy.pth: torch 2.15's legacy save of a small state dict.
/// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch/legacy.pth")).unwrap();
/// assert!(bytes.starts_with(pytorch::LEGACY_MAGIC));
/// // Read, then refused by the mapping: its names are not ResNet50's.
/// let err = pytorch::from_legacy_bytes(std::path::Path::new("legacy.pth"), &bytes).unwrap_err();
/// assert!(err.to_string().contains("names are not those of a ResNet50"), "{err}");
/// ```
pub fn from_legacy_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let tensors = read_legacy_tensors(path, bytes)?;
    assemble(path, &tensors)
}

fn read_legacy_tensors<'b>(path: &Path, bytes: &'b [u8]) -> Result<Vec<(String, Entry<'b>)>> {
    if !bytes.starts_with(LEGACY_MAGIC) {
        return Err(file_err(path, "is not a legacy PyTorch checkpoint (no torch magic number)"));
    }
    let mut pos = LEGACY_MAGIC.len();
    // Each pickle is read from a window of at most MAX_PICKLE bytes, as a
    // zip's data.pkl is capped: the reader's budget grows with the bytes it is
    // given, and the storages after the pickles are not pickle.
    let mut next = |what: &str| -> Result<Value> {
        let end = bytes.len().min(pos + MAX_PICKLE);
        let (v, n) = pickle::load_prefix(&bytes[pos..end]).map_err(|e| {
            let capped = if end < bytes.len() && e.msg.starts_with("truncated") {
                format!(" (more than {} MiB of pickle is refused)", MAX_PICKLE >> 20)
            } else {
                String::new()
            };
            file_err(path, format!("legacy PyTorch checkpoint, {what}: {e}{capped}"))
        })?;
        pos += n;
        Ok(v)
    };
    match next("format version")? {
        Value::Int(1001) => {}
        other => {
            return Err(file_err(
                path,
                format!("legacy PyTorch checkpoint whose format version is {}, not 1001", other.kind()),
            ))
        }
    }
    if let Value::Dict(info, _) = next("system info")?
        && info.iter().any(|(k, v)| *k == Value::Str("little_endian".into()) && *v == Value::Bool(false))
    {
        return Err(file_err(path, "stores its tensors big-endian; only little-endian checkpoints are read"));
    }
    let main = next("state dict")?;
    let keys = match next("storage keys")? {
        Value::List(items, _) => items,
        other => {
            return Err(file_err(path, format!("legacy PyTorch checkpoint: the storage keys are {}", other.kind())))
        }
    };
    // Every storage's class (to size it), from whatever refers to it: the
    // state dict's tensors, or anything else saved beside them (an
    // optimizer's state in a training checkpoint).
    let mut classes = std::collections::HashMap::new();
    storage_classes(&main, &mut classes);
    let entries = state_dict(path, main)?;
    let mut storages: std::collections::HashMap<String, &'b [u8]> = std::collections::HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(file_err(path, format!("legacy PyTorch checkpoint: a storage key is {}", key.kind())));
        };
        let class = classes.get(key.as_str()).ok_or_else(|| {
            file_err(path, format!("legacy PyTorch checkpoint: storage {key:?} is referred to by nothing readable, so its size is unknown"))
        })?;
        let size = storage_size(class)
            .ok_or_else(|| file_err(path, format!("storage {key:?} of unknown class torch.{class}")))?;
        let count = bytes.get(pos..pos + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let span = count
            .and_then(|n| usize::try_from(n).ok()?.checked_mul(size))
            .and_then(|n| Some((pos + 8, (pos + 8).checked_add(n)?)))
            .filter(|&(_, end)| end <= bytes.len())
            .ok_or_else(|| file_err(path, format!("storage {key:?} runs past the end of the file (truncated?)")))?;
        storages.insert(key, &bytes[span.0..span.1]);
        pos = span.1;
    }
    Ok(entries
        .into_iter()
        .map(|(key, v)| {
            let t = match v {
                Value::Tensor(t) => match storages.get(&t.storage.key) {
                    Some(data) => tensor_view(data, &t),
                    None => Err(format!("its storage {:?} is not in the file", t.storage.key)),
                },
                other => Err(format!("is {}, not a tensor", other.kind())),
            };
            (key, t)
        })
        .collect())
}

/// The class of every storage `v` refers to, by key (values nest at most
/// [`pickle::MAX_DEPTH`] deep, so the recursion is bounded).
fn storage_classes(v: &Value, out: &mut std::collections::HashMap<String, String>) {
    match v {
        Value::Tensor(t) => {
            out.insert(t.storage.key.clone(), t.storage.class.clone());
        }
        Value::Storage(s) => {
            out.insert(s.key.clone(), s.class.clone());
        }
        Value::Tuple(items, _) | Value::List(items, _) => items.iter().for_each(|x| storage_classes(x, out)),
        Value::Dict(items, _) => items.iter().for_each(|(k, x)| {
            storage_classes(k, out);
            storage_classes(x, out);
        }),
        _ => {}
    }
}

/// The `(name, value)` items of the state dict in `v` (unwrapping
/// `{"state_dict": …}` and the like).
fn state_dict(path: &Path, v: Value) -> Result<Vec<(String, Value)>> {
    let items = match v {
        Value::Dict(items, _) => items,
        Value::Object(what) => {
            return Err(file_err(
                path,
                format!(
                    "holds a pickled Python object ({what}), not a state dict: save the weights with torch.save(model.state_dict(), path)"
                ),
            ));
        }
        other => return Err(file_err(path, format!("holds {}, not a state dict", other.kind()))),
    };
    let has_tensors = items.iter().any(|(_, x)| matches!(x, Value::Tensor(_)));
    if !has_tensors {
        for want in WRAPPER_KEYS {
            let inner =
                items.iter().find(|(k, x)| matches!(k, Value::Str(s) if s == want) && matches!(x, Value::Dict(..)));
            if let Some((_, Value::Dict(inner, _))) = inner
                && inner.iter().any(|(_, x)| matches!(x, Value::Tensor(_)))
            {
                return named(path, inner.clone());
            }
        }
        return Err(file_err(
            path,
            format!(
                "holds a dict of {} entries without tensors (nor a state dict under {WRAPPER_KEYS:?}): not a checkpoint of model weights",
                items.len()
            ),
        ));
    }
    named(path, items)
}

fn named(path: &Path, items: Vec<(Value, Value)>) -> Result<Vec<(String, Value)>> {
    items
        .into_iter()
        .map(|(k, v)| match k {
            Value::Str(s) => Ok((s, v)),
            other => Err(file_err(path, format!("has a state dict key that is {}, not a string", other.kind()))),
        })
        .collect()
}

/// Bytes per element of a torch storage class (the legacy format needs
/// them for every storage, to step over those it does not use).
fn storage_size(class: &str) -> Option<usize> {
    Some(match class {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" | "UntypedStorage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

/// Element type and size of a torch storage class that holds floats.
fn storage_elem(class: &str) -> std::result::Result<(Elem, usize), String> {
    let elem = match class {
        "FloatStorage" => Elem::F32,
        "DoubleStorage" => Elem::F64,
        "HalfStorage" => Elem::F16,
        "BFloat16Storage" => Elem::BF16,
        other => {
            return Err(format!("has element type torch.{other}; expected float32 (or float16, bfloat16, float64)"))
        }
    };
    Ok((elem, storage_size(class).expect("float storages have a size")))
}

/// The shape, element type and little-endian bytes of tensor `t` (gathered
/// when its strides are not the contiguous ones), or why not.
fn tensor_bytes<'b>(zip: &mut Archive<'b>, prefix: &str, t: &TensorRef) -> Entry<'b> {
    // The element type first: a non-float tensor is named as such even when
    // its storage member is missing too.
    storage_elem(&t.storage.class)?;
    let data = zip.member(&format!("{prefix}data/{}", t.storage.key))?;
    tensor_view(data, t)
}

/// Tensor `t` of the storage bytes `data`.
fn tensor_view<'b>(data: &'b [u8], t: &TensorRef) -> Entry<'b> {
    let (elem, size) = storage_elem(&t.storage.class)?;
    let shape: Vec<usize> = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("has a size of {d}")))
        .collect::<std::result::Result<_, _>>()?;
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("has more elements than memory")?;
    let stored = data.len() / size;
    if (stored as u64) < t.storage.numel {
        return Err(format!(
            "its storage {:?} holds {stored} elements but the checkpoint says {} (truncated?)",
            t.storage.key, t.storage.numel
        ));
    }
    let stored = usize::try_from(t.storage.numel).map_err(|_| "has a storage larger than memory".to_string())?;
    if numel == 0 {
        return Ok((shape, elem, Cow::Borrowed(&[])));
    }
    // The last element's index: offset + Σ (size − 1)·stride.
    t.shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| acc.checked_add((d - 1).checked_mul(s)?))
        .filter(|&l| l < stored as u64)
        .ok_or_else(|| {
            format!(
                "its view (offset {}, sizes {:?}, strides {:?}) reaches past its storage of {stored} elements",
                t.offset, t.shape, t.stride
            )
        })?;
    let offset = t.offset as usize; // ≤ the last index < stored
    let mut contiguous = 1u64;
    let is_contiguous = t.shape.iter().zip(&t.stride).rev().all(|(&d, &s)| {
        let ok = d == 1 || s == contiguous;
        contiguous *= d;
        ok
    });
    if is_contiguous {
        return Ok((shape, elem, Cow::Borrowed(&data[offset * size..(offset + numel) * size])));
    }
    // A strided view (e.g. a transposed weight): gather it in C order.
    let mut out = Vec::with_capacity(numel * size);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = offset + index.iter().zip(&t.stride).map(|(&i, &s)| i * s as usize).sum::<usize>();
        out.extend_from_slice(&data[at * size..(at + 1) * size]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok((shape, elem, Cow::Owned(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaders::decode_le;

    /// `tools/weights/make_torch_fixtures.py`'s values: element i is i/4 − 1.
    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 * 0.25 - 1.0).collect()
    }

    fn read(name: &str) -> Result<Vec<(String, Entry<'static>)>> {
        let bytes: &'static [u8] = match name {
            "state_dict.pth" => include_bytes!("../../tests/fixtures/torch/state_dict.pth"),
            "wrapped.pth" => include_bytes!("../../tests/fixtures/torch/wrapped.pth"),
            "module.pth" => include_bytes!("../../tests/fixtures/torch/module.pth"),
            "legacy.pth" => include_bytes!("../../tests/fixtures/torch/legacy.pth"),
            "legacy_wrapped.pth" => include_bytes!("../../tests/fixtures/torch/legacy_wrapped.pth"),
            _ => unreachable!(),
        };
        if name.starts_with("legacy") {
            return read_legacy_tensors(Path::new(name), bytes);
        }
        read_tensors(Path::new(name), Archive::new(Path::new(name), bytes)?)
    }

    fn floats(entries: &[(String, Entry<'_>)], key: &str) -> (Vec<usize>, Vec<f32>) {
        let (_, e) = entries.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key}"));
        let (shape, elem, data) = e.as_ref().unwrap_or_else(|m| panic!("{key}: {m}"));
        (shape.clone(), decode_le(data, *elem))
    }

    #[test]
    fn reads_what_torch_save_writes() {
        for file in ["state_dict.pth", "wrapped.pth", "legacy.pth", "legacy_wrapped.pth"] {
            let e = read(file).unwrap();
            let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "conv.weight",
                    "half",
                    "bfloat",
                    "double",
                    "scalar",
                    "empty",
                    "param",
                    "transposed",
                    "slice_a",
                    "slice_b",
                    "bn.num_batches_tracked"
                ],
                "{file}"
            );
            assert_eq!(floats(&e, "conv.weight"), (vec![4, 3, 2, 2], ramp(48)));
            // All values of the ramp are exact in f16 and bf16 (small multiples of 1/4).
            assert_eq!(floats(&e, "half"), (vec![5], ramp(5)));
            assert_eq!(floats(&e, "bfloat"), (vec![2, 3], ramp(6)));
            assert_eq!(floats(&e, "double"), (vec![3], ramp(3)));
            assert_eq!(floats(&e, "scalar"), (vec![], ramp(1)));
            assert_eq!(floats(&e, "empty"), (vec![0, 4], vec![]));
            assert_eq!(floats(&e, "param"), (vec![2, 2], ramp(4)));
            // ramp((3, 4)).t(): element [i][j] is the ramp's 4·j + i.
            let t: Vec<f32> = (0..4).flat_map(|i| (0..3).map(move |j| (4 * j + i) as f32 * 0.25 - 1.0)).collect();
            assert_eq!(floats(&e, "transposed"), (vec![4, 3], t));
            assert_eq!(floats(&e, "slice_a"), (vec![3], ramp(10)[2..5].to_vec()));
            assert_eq!(floats(&e, "slice_b"), (vec![3], ramp(10)[6..9].to_vec()));
            let (_, nbt) = e.iter().find(|(k, _)| k == "bn.num_batches_tracked").unwrap();
            assert!(nbt.as_ref().unwrap_err().contains("LongStorage"), "{nbt:?}");
        }
    }

    #[test]
    fn a_pickled_module_is_named() {
        let err = read("module.pth").unwrap_err().to_string();
        assert!(err.contains("torch.nn.modules.linear.Linear") && err.contains("state_dict()"), "{err}");
    }

    #[test]
    fn legacy_pickles_are_capped_like_a_zips_data_pkl() {
        // Magic, version 1001, then a "system info" string longer than the cap.
        let mut bytes = LEGACY_MAGIC.to_vec();
        bytes.extend_from_slice(b"\x80\x02M\xe9\x03.\x8d");
        bytes.extend_from_slice(&(MAX_PICKLE as u64 + 1).to_le_bytes());
        bytes.resize(bytes.len() + MAX_PICKLE + 1, b'x');
        bytes.push(b'.');
        let m = read_legacy_tensors(Path::new("big.pth"), &bytes).unwrap_err().to_string();
        assert!(m.contains("system info") && m.contains("more than 32 MiB of pickle is refused"), "{m}");
    }

    #[test]
    fn legacy_files_cut_short_are_errors() {
        let bytes = include_bytes!("../../tests/fixtures/torch/legacy_wrapped.pth");
        for cut in [0, 10, 15, 20, 100, 500, 1000, bytes.len() - 8, bytes.len() - 1] {
            let e = read_legacy_tensors(Path::new("cut.pth"), &bytes[..cut]);
            let Err(e) = e else { panic!("cut at {cut} was read") };
            let m = e.to_string();
            assert!(m.contains("truncated") || m.contains("magic"), "cut at {cut}: {m}");
        }
    }
}

//! safetensors → canonical weights, by tensor name.
//!
//! Three naming schemes are recognised from the keys themselves
//! (see [`super::names`]): torchvision/timm (`conv1.weight`, OIHW kernels,
//! `fc.weight` `[classes, 2048]`), Hugging Face `microsoft/resnet-50`
//! (`resnet.embedder.embedder.convolution.weight`, …, `classifier.1.*`) and
//! Keras (`conv1_conv/kernel`, HWIO, `predictions/kernel` `[2048, classes]`;
//! also the 2016 names). A common model prefix (`module.`, `model.`, or
//! Hugging Face's `resnet.`) is accepted. `num_batches_tracked` is ignored;
//! any other tensor that is not part of ResNet50 is an error. Element types
//! F32, F16, BF16 and F64 are converted to f32; anything else is refused
//! naming the tensor.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use ::safetensors::{Dtype, SafeTensors};

use super::names::{self, Scheme, Slot};
use super::{file_err, io_err, tensor_err, Assembler, Elem, Format, Loaded};
use crate::error::Result;

/// Loads a safetensors file, reading it through a read-only mapping.
///
/// ```
/// use resnet50::loaders::{export, names::Scheme, safetensors, Format};
/// use resnet50::{init, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.safetensors", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(10), 0);
/// std::fs::write(&path, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?).unwrap();
/// let loaded = safetensors::load_file(&path, &std::fs::File::open(&path).unwrap())?;
/// assert_eq!((loaded.format, loaded.bn_epsilon), (Format::Safetensors(Scheme::Torchvision), Some(1e-5)));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_file(path: &Path, file: &File) -> Result<Loaded> {
    let map = resnet50_kernels::mapped::map_file(file).map_err(|e| io_err(path, e))?;
    from_bytes(path, &map)
}

/// Maps the safetensors image `bytes` (named `path` in messages) onto canonical weights.
///
/// ```
/// use resnet50::loaders::{export, names::Scheme, safetensors};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// let bytes = export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Keras))?;
/// let loaded = safetensors::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.weights.variant, loaded.classes()), (Variant::V1, None));
/// assert!(safetensors::from_bytes(std::path::Path::new("mem"), b"not safetensors").is_err());
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| file_err(path, format!("not a valid safetensors file (truncated or corrupt?): {e}")))?;
    let tensors = st
        .iter()
        .map(|(key, view)| {
            let elem = match view.dtype() {
                Dtype::F32 => Ok(Elem::F32),
                Dtype::F64 => Ok(Elem::F64),
                Dtype::F16 => Ok(Elem::F16),
                Dtype::BF16 => Ok(Elem::BF16),
                other => Err(format!("has element type {other:?}; expected F32 (or F16, BF16, F64)")),
            };
            NamedTensor { key: key.to_string(), shape: view.shape().to_vec(), data: elem.map(|e| (e, view.data())) }
        })
        .collect();
    assemble_by_name(path, tensors, "safetensors", Format::Safetensors)
}

/// A source tensor by name: its shape and its little-endian bytes, or why
/// they cannot be used (checked only if the tensor is needed).
pub(crate) struct NamedTensor<'a> {
    pub(crate) key: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: std::result::Result<(Elem, &'a [u8]), String>,
}

/// Maps named tensors (safetensors, a PyTorch state dict) onto canonical
/// weights: finds the naming scheme and model prefix from the names, then
/// places every tensor by name (`num_batches_tracked` ignored, anything else
/// not in ResNet50 an error). `container` names the file kind in messages.
pub(crate) fn assemble_by_name(
    path: &Path,
    tensors: Vec<NamedTensor<'_>>,
    container: &str,
    format: fn(Scheme) -> Format,
) -> Result<Loaded> {
    let keys: Vec<&str> =
        tensors.iter().map(|t| t.key.as_str()).filter(|k| !k.ends_with("num_batches_tracked")).collect();
    let (scheme, prefix) = detect_scheme(&keys).ok_or_else(|| {
        let mut shown: Vec<&str> = keys.clone();
        shown.sort_unstable();
        shown.truncate(4);
        file_err(
            path,
            format!(
                "{container} tensor names are not those of a ResNet50 from torchvision/timm, Hugging Face or Keras (found {} tensors, e.g. {shown:?}; expected e.g. \"conv1.weight\", \"resnet.embedder.embedder.convolution.weight\" or \"conv1_conv/kernel\")",
                keys.len()
            ),
        )
    })?;
    let table = names::key_table(scheme);
    let mut asm = Assembler::new(path, scheme.torch_layout());
    for t in &tensors {
        let key = t.key.as_str();
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let slot = lookup(scheme, &prefix, &table, key).ok_or_else(|| match names::deeper_resnet_hint(key) {
            Some(hint) => tensor_err(path, key, format!("is not part of ResNet50: {hint}")),
            None => tensor_err(path, key, format!("is not part of ResNet50 ({})", scheme.describe())),
        })?;
        let (elem, bytes) = t.data.as_ref().map_err(|msg| tensor_err(path, key, msg))?;
        asm.check_shape(slot, key, &t.shape)?;
        let values = super::decode_le(bytes, *elem);
        asm.put(slot, key, &t.shape, values)?;
    }
    let reverse: HashMap<Slot, String> = table.iter().map(|(k, s)| (*s, k.clone())).collect();
    let name_of = |slot: Slot| -> String {
        let key = match (scheme, slot) {
            (Scheme::Keras, Slot::FcKernel) => "predictions/kernel".to_string(),
            (Scheme::Keras, Slot::FcBias) => "predictions/bias".to_string(),
            _ => reverse.get(&slot).cloned().unwrap_or_else(|| slot.canonical_name()),
        };
        match (scheme, slot) {
            (Scheme::HuggingFace, Slot::FcKernel | Slot::FcBias) => key,
            (Scheme::Torchvision | Scheme::HuggingFace, _) => format!("{prefix}{key}"),
            _ => key,
        }
    };
    let weights = asm.finish(scheme.variant(), name_of)?;
    Ok(Loaded { weights, bn_epsilon: Some(scheme.bn_epsilon()), format: format(scheme), path: path.to_path_buf() })
}

fn lookup(scheme: Scheme, prefix: &str, table: &HashMap<String, Slot>, key: &str) -> Option<Slot> {
    match scheme {
        Scheme::Torchvision => table.get(key.strip_prefix(prefix)?).copied(),
        Scheme::HuggingFace => match key.strip_prefix("classifier.") {
            Some(_) => table.get(key).copied(),
            None => table.get(key.strip_prefix(prefix)?).copied(),
        },
        _ => table.get(&names::normalize_keras_key(key)).copied(),
    }
}

/// Finds the naming scheme and the model prefix from the keys.
fn detect_scheme(keys: &[&str]) -> Option<(Scheme, String)> {
    let has = |k: &str| keys.contains(&k);
    // Shortest prefix p with p+"conv1.weight" and p+"bn1.running_var" (torchvision/timm).
    let anchored = |anchor: &str, partner: &str| -> Option<String> {
        keys.iter()
            .filter_map(|k| k.strip_suffix(anchor))
            .filter(|p| p.is_empty() || p.ends_with('.'))
            .filter(|p| has(&format!("{p}{partner}")))
            .min_by_key(|p| p.len())
            .map(str::to_string)
    };
    if let Some(p) = anchored("embedder.embedder.convolution.weight", "embedder.embedder.normalization.running_var") {
        return Some((Scheme::HuggingFace, p));
    }
    if let Some(p) = anchored("conv1.weight", "bn1.running_var") {
        return Some((Scheme::Torchvision, p));
    }
    let normalized: Vec<String> = keys.iter().map(|k| names::normalize_keras_key(k)).collect();
    if normalized.iter().any(|k| k == "conv1_conv/kernel") {
        return Some((Scheme::Keras, String::new()));
    }
    if normalized.iter().any(|k| k == "bn_conv1/gamma") {
        return Some((Scheme::KerasOld, String::new()));
    }
    None
}

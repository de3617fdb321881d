//! Keras HDF5 weights → canonical weights, by layer name.
//!
//! Three layouts (weight-formats.md §3):
//! - legacy `save_weights("x.h5")` / the applications download with today's
//!   names: root attribute `layer_names`, one group per layer with attribute
//!   `weight_names` (`conv1_conv/kernel:0`, …), datasets nested
//!   `/conv1_conv/conv1_conv/kernel:0`; classifier `predictions` or `probs`;
//! - the same with the 2016 names (`conv1`, `bn_conv1`, `res2a_branch2a`,
//!   `fc1000`) and flat datasets (`/conv1/conv1_W:0`,
//!   `/bn_conv1/bn_conv1_running_std:0` — which holds the *variance*); this
//!   model used BatchNorm ε = 1e-3, which [`Loaded::bn_epsilon`] reports;
//! - Keras 3 `.weights.h5`: `/layers/<key>/vars/<i>`, where `<key>` is
//!   `conv2d_k`/`batch_normalization_k`/`dense` and, since Keras 3.6, the
//!   `vars` group's `name` attribute holds the layer name (used when present).
//!
//! A full-model file (`model.save("x.h5")`) keeps the legacy layout under
//! `/model_weights`. Layers are found through `layer_names`/`weight_names`
//! and names, never through HDF5's (alphabetical) child order. String
//! attributes may be fixed- or variable-length, and split into
//! `layer_names0`, `layer_names1`, … when large.
//!
//! The HDF5 reader is the pure-Rust `hdf5-pure` crate (no libhdf5, so CI
//! needs nothing installed; it can also *write* files, which the tests use
//! to build every layout). See `docs/weights.md` for why.

use std::collections::HashMap;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use hdf5_pure::{AttrValue, DType};

use super::names::{self, Part, Scheme, Slot};
use super::{file_err, tensor_err, Assembler, Format, Loaded};
use crate::arch::{conv_specs, NUM_CONVS};
use crate::config::Variant;
use crate::error::Result;

/// The HDF5 file signature (at offset 0 for every file Keras writes).
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5};
/// use resnet50::{init, Variant};
/// let layers = export::keras_h5_layers(&init::keras_random(Variant::V1, None, 0), H5Layout::Keras);
/// assert!(export::keras_h5_bytes(&layers, H5Layout::Keras, false)?.starts_with(keras_h5::SIGNATURE));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// The end-of-file address the superblock records (versions 0–3), if the
/// first bytes hold a superblock at offset 0.
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5};
/// use resnet50::{init, Variant};
/// let layers = export::keras_h5_layers(&init::keras_random(Variant::V1, None, 0), H5Layout::Keras);
/// let bytes = export::keras_h5_bytes(&layers, H5Layout::Keras, false)?;
/// assert_eq!(keras_h5::superblock_eof(&bytes), Some(bytes.len() as u64));
/// assert_eq!(keras_h5::superblock_eof(b"PK\x03\x04 not HDF5"), None);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn superblock_eof(head: &[u8]) -> Option<u64> {
    if !head.starts_with(SIGNATURE) {
        return None;
    }
    let version = *head.get(8)?;
    let (offsets, eof_at) = match version {
        0 | 1 => {
            let o = *head.get(13)? as usize;
            (o, if version == 0 { 24 } else { 28 } + 2 * o)
        }
        2 | 3 => {
            let o = *head.get(9)? as usize;
            (o, 12 + 2 * o)
        }
        _ => return None,
    };
    if !matches!(offsets, 2 | 4 | 8) {
        return None;
    }
    let raw = head.get(eof_at..eof_at + offsets)?;
    let mut v = [0u8; 8];
    v[..offsets].copy_from_slice(raw);
    Some(u64::from_le_bytes(v))
}

/// A file shorter than its superblock says is truncated (the reader could
/// otherwise report missing attributes instead).
fn check_length(path: &Path, head: &[u8], len: u64) -> Result<()> {
    match superblock_eof(head) {
        Some(eof) if eof > len && eof != u64::MAX => {
            Err(file_err(path, format!("truncated HDF5 file: its superblock records {eof} bytes, the file has {len}")))
        }
        _ => Ok(()),
    }
}

/// Loads a Keras HDF5 file (read into memory by the HDF5 reader).
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5, Format};
/// use resnet50::{init, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.h5", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1, Some(10), 0);
/// let layers = export::keras_h5_layers(&w, H5Layout::Keras);
/// std::fs::write(&path, export::keras_h5_bytes(&layers, H5Layout::Keras, false)?).unwrap();
/// let loaded = keras_h5::load_file(&path, &std::fs::File::open(&path).unwrap())?;
/// assert_eq!((loaded.format, loaded.classes(), loaded.path == path), (Format::KerasH5, Some(10), true));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_file(path: &Path, file: &File) -> Result<Loaded> {
    let mut head = [0u8; 64];
    let n = super::read_head(file, &mut head).map_err(|e| super::io_err(path, e))?;
    let len = file.metadata().map_err(|e| super::io_err(path, e))?.len();
    check_length(path, &head[..n], len)?;
    guarded(path, || {
        let h5 = hdf5_pure::File::open(path)
            .map_err(|e| file_err(path, format!("not a readable HDF5 file (truncated or corrupt?): {e}")))?;
        import(path, &h5)
    })
}

/// Maps the HDF5 image `bytes` (named `path` in messages) onto canonical weights.
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// let bytes = export::keras_h5_bytes(&export::keras_h5_layers(&w, H5Layout::Keras), H5Layout::Keras, false)?;
/// let loaded = keras_h5::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.weights.variant, loaded.bn_epsilon, loaded.classes()), (Variant::V1, Some(1.001e-5), None));
/// assert!(keras_h5::from_bytes(std::path::Path::new("mem"), &bytes[..bytes.len() / 2]).is_err()); // truncated
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    check_length(path, &bytes[..bytes.len().min(64)], bytes.len() as u64)?;
    guarded(path, || {
        let h5 = hdf5_pure::File::from_bytes(bytes.to_vec())
            .map_err(|e| file_err(path, format!("not a readable HDF5 file (truncated or corrupt?): {e}")))?;
        import(path, &h5)
    })
}

/// Runs the HDF5 reader so that a bug in it on a hostile file becomes an
/// error instead of unwinding through the caller (defence in depth: the
/// reader is fuzz-hardened, but it parses a complex format).
fn guarded(path: &Path, f: impl FnOnce() -> Result<Loaded>) -> Result<Loaded> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(file_err(path, "the HDF5 reader failed on this file (malformed HDF5 structure)")),
    }
}

fn h5err(path: &Path, what: &str, e: hdf5_pure::Error) -> crate::Error {
    file_err(path, format!("{what}: {e} (truncated or corrupt file?)"))
}

/// Strings of an attribute; an empty numeric array (what h5py writes for an
/// empty list) is an empty list.
fn strings(v: &AttrValue) -> Option<Vec<String>> {
    if let Some(s) = v.as_strings() {
        return Some(s.to_vec());
    }
    match v {
        AttrValue::F64Array(a) if a.is_empty() => Some(vec![]),
        AttrValue::F32Array(a) if a.is_empty() => Some(vec![]),
        AttrValue::U8Array(a) if a.is_empty() => Some(vec![]),
        AttrValue::I64Array(a) if a.is_empty() => Some(vec![]),
        _ => None,
    }
}

/// A string-list attribute, possibly split into `name0`, `name1`, … chunks.
fn string_list(attrs: &HashMap<String, AttrValue>, name: &str) -> Option<Vec<String>> {
    if let Some(v) = attrs.get(name) {
        return strings(v);
    }
    let mut out = Vec::new();
    let mut k = 0;
    while let Some(v) = attrs.get(&format!("{name}{k}")) {
        out.extend(strings(v)?);
        k += 1;
    }
    (k > 0).then_some(out)
}

fn import(path: &Path, h5: &hdf5_pure::File) -> Result<Loaded> {
    let root = h5.root();
    let attrs = root.attrs().map_err(|e| h5err(path, "reading the root attributes", e))?;
    if let Some(layers) = string_list(&attrs, "layer_names") {
        return legacy(path, h5, "", &layers);
    }
    let groups = root.groups().map_err(|e| h5err(path, "listing the root groups", e))?;
    if groups.iter().any(|g| g == "model_weights") {
        let g = h5.group("/model_weights").map_err(|e| h5err(path, "opening /model_weights", e))?;
        let a = g.attrs().map_err(|e| h5err(path, "reading /model_weights attributes", e))?;
        if let Some(layers) = string_list(&a, "layer_names") {
            return legacy(path, h5, "/model_weights", &layers);
        }
    }
    if groups.iter().any(|g| g == "layers") {
        return keras3(path, h5);
    }
    Err(file_err(
        path,
        "is an HDF5 file but not Keras weights: no root attribute `layer_names`, no `model_weights` or `layers` group",
    ))
}

/// Reads dataset `ds_path` (tensor `name` in messages) as f32 after checking its shape for `slot`.
fn read_tensor(
    path: &Path,
    h5: &hdf5_pure::File,
    asm: &mut Assembler<'_>,
    slot: Slot,
    ds_path: &str,
    name: &str,
) -> Result<()> {
    let ds = h5.dataset(ds_path).map_err(|e| tensor_err(path, name, format!("cannot be opened: {e}")))?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(|e| tensor_err(path, name, format!("has an unreadable shape: {e}")))?
        .into_iter()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    asm.check_shape(slot, name, &shape)?;
    let dtype = ds.dtype().map_err(|e| tensor_err(path, name, format!("has an unreadable element type: {e}")))?;
    let values = match dtype {
        DType::F32 => ds.read_f32(),
        DType::F64 => ds.read_f64().map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => return Err(tensor_err(path, name, format!("has element type {other}; expected f32 (or f64)"))),
    }
    .map_err(|e| tensor_err(path, name, format!("cannot be read (truncated or corrupt file?): {e}")))?;
    asm.put(slot, name, &shape, values)
}

fn legacy(path: &Path, h5: &hdf5_pure::File, base: &str, layer_names: &[String]) -> Result<Loaded> {
    // Weighted layers, in file order, with their weight names.
    let mut weighted: Vec<(String, Vec<String>)> = Vec::new();
    for layer in layer_names {
        let gpath = format!("{base}/{layer}");
        let g = h5.group(&gpath).map_err(|e| {
            file_err(path, format!("`layer_names` lists {layer:?} but group {gpath} cannot be opened: {e}"))
        })?;
        let a = g.attrs().map_err(|e| h5err(path, &format!("reading the attributes of {gpath}"), e))?;
        let wn = string_list(&a, "weight_names").unwrap_or_default();
        if !wn.is_empty() {
            weighted.push((layer.clone(), wn));
        }
    }
    let has = |n: &str| weighted.iter().any(|(l, _)| l == n);
    let scheme = if has("conv1_conv") {
        Scheme::Keras
    } else if has("bn_conv1") {
        Scheme::KerasOld
    } else {
        let shown: Vec<&str> = weighted.iter().take(4).map(|(l, _)| l.as_str()).collect();
        return Err(file_err(
            path,
            format!(
                "Keras weights, but not of a Keras ResNet50: no layer `conv1_conv` (today's names) or `bn_conv1` (2016 names); weighted layers start {shown:?}"
            ),
        ));
    };
    let table = names::layer_table(scheme);
    let tops = names::keras_top_layers(scheme);
    let mut asm = Assembler::new(path, false);
    for (layer, wnames) in &weighted {
        let target = if let Some(&(i, is_bn)) = table.get(layer.as_str()) {
            Some((Some(i), is_bn))
        } else if tops.contains(&layer.as_str()) {
            Some((None, false))
        } else {
            None
        };
        let Some((conv, is_bn)) = target else {
            let msg = match names::deeper_resnet_hint(layer) {
                Some(h) => format!("is not part of ResNet50: {h}"),
                None => format!("is not part of ResNet50 ({})", scheme.describe()),
            };
            return Err(tensor_err(path, &format!("{base}/{layer}"), format!("layer {msg}")));
        };
        for wn in wnames {
            let name = format!("{base}/{layer}/{wn}");
            let part = names::keras_part(wn, is_bn)
                .ok_or_else(|| tensor_err(path, &name, "is not a weight this layer has in ResNet50"))?;
            let slot = match (conv, part) {
                (Some(i), p) => Slot::Conv(i, p),
                (None, Part::Kernel) => Slot::FcKernel,
                (None, Part::Bias) => Slot::FcBias,
                (None, _) => return Err(tensor_err(path, &name, "is not a weight of a Dense layer")),
            };
            read_tensor(path, h5, &mut asm, slot, &name, &name)?;
        }
    }
    let specs = conv_specs(Variant::V1);
    let name_of = |slot: Slot| -> String {
        let layer = |i: usize, bn: bool| {
            let (c, b) = match scheme {
                Scheme::KerasOld => names::keras_old_layers(&specs[i]),
                _ => names::keras_layers(&specs[i]),
            };
            if bn {
                b
            } else {
                c
            }
        };
        let old = scheme == Scheme::KerasOld;
        let var = |p: Part| match (p, old) {
            (Part::Kernel, false) => "kernel",
            (Part::Kernel, true) => "W",
            (Part::Bias, false) => "bias",
            (Part::Bias, true) => "b",
            (Part::Gamma, _) => "gamma",
            (Part::Beta, _) => "beta",
            (Part::Mean, false) => "moving_mean",
            (Part::Mean, true) => "running_mean",
            (Part::Var, false) => "moving_variance",
            (Part::Var, true) => "running_std",
        };
        let (l, p) = match slot {
            Slot::Conv(i, p) => (layer(i, p.is_bn()), p),
            Slot::FcKernel => (tops[0].to_string(), Part::Kernel),
            Slot::FcBias => (tops[0].to_string(), Part::Bias),
        };
        if old {
            format!("{base}/{l}/{l}_{}:0", var(p))
        } else {
            format!("{base}/{l}/{l}/{}:0", var(p))
        }
    };
    let weights = asm.finish(Variant::V1, name_of)?;
    Ok(Loaded {
        weights,
        bn_epsilon: Some(scheme.bn_epsilon()),
        format: if scheme == Scheme::KerasOld { Format::KerasH5Old } else { Format::KerasH5 },
        path: path.to_path_buf(),
    })
}

fn keras3(path: &Path, h5: &hdf5_pure::File) -> Result<Loaded> {
    let layers = h5.group("/layers").map_err(|e| h5err(path, "opening /layers", e))?;
    let keys = layers.groups().map_err(|e| h5err(path, "listing /layers", e))?;
    let by_name = names::layer_table(Scheme::Keras);
    let by_key = names::layer_table(Scheme::Keras3Keys);
    let mut asm = Assembler::new(path, false);
    for key in &keys {
        let vpath = format!("/layers/{key}/vars");
        let Ok(vars) = h5.group(&vpath) else { continue };
        let mut ds = vars.datasets().map_err(|e| h5err(path, &format!("listing {vpath}"), e))?;
        if ds.is_empty() {
            continue;
        }
        ds.sort_by_key(|d| d.parse::<usize>().unwrap_or(usize::MAX));
        let a = vars.attrs().map_err(|e| h5err(path, &format!("reading the attributes of {vpath}"), e))?;
        let lname = a.get("name").and_then(|v| v.as_str()).map(str::to_string);
        // Layer name (Keras ≥ 3.6) first, the class-counter key otherwise.
        let target = match &lname {
            Some(n) if by_name.contains_key(n) => by_name.get(n).map(|&(i, b)| (Some(i), b)),
            Some(n) if n == "predictions" || n == "probs" => Some((None, false)),
            Some(_) => None,
            None if key == "dense" => Some((None, false)),
            None => by_key.get(key).map(|&(i, b)| (Some(i), b)),
        };
        let shown = match &lname {
            Some(n) => format!("/layers/{key} ({n})"),
            None => format!("/layers/{key}"),
        };
        let Some((conv, is_bn)) = target else {
            let hint = lname.as_deref().and_then(names::deeper_resnet_hint);
            let msg = match hint {
                Some(h) => format!("layer is not part of ResNet50: {h}"),
                None => "layer is not part of ResNet50 (Keras 3 layers of a ResNet50 are conv2d_0..52, batch_normalization_0..52, dense)".into(),
            };
            return Err(tensor_err(path, &shown, msg));
        };
        let parts: &[Part] = match (conv, is_bn) {
            (_, true) => &[Part::Gamma, Part::Beta, Part::Mean, Part::Var],
            _ => &[Part::Kernel, Part::Bias],
        };
        if ds.len() > parts.len() || ds.iter().enumerate().any(|(i, d)| *d != i.to_string()) {
            return Err(tensor_err(
                path,
                &shown,
                format!(
                    "has variables {ds:?}; a ResNet50 {} layer has 0..{}",
                    if is_bn { "BatchNorm" } else { "Conv2D/Dense" },
                    parts.len() - 1
                ),
            ));
        }
        for (d, &part) in ds.iter().zip(parts) {
            let slot = match conv {
                Some(i) => Slot::Conv(i, part),
                None if part == Part::Kernel => Slot::FcKernel,
                None => Slot::FcBias,
            };
            let dpath = format!("{vpath}/{d}");
            let name = match &lname {
                Some(n) => format!("{dpath} ({n}/{})", part.name()),
                None => dpath.clone(),
            };
            read_tensor(path, h5, &mut asm, slot, &dpath, &name)?;
        }
    }
    let k3 = names::keras3_keys();
    let name_of = |slot: Slot| match slot {
        Slot::Conv(i, p) => {
            let (c, b) = &k3[i.min(NUM_CONVS - 1)];
            let (g, idx) = match p {
                Part::Kernel => (c, 0),
                Part::Bias => (c, 1),
                Part::Gamma => (b, 0),
                Part::Beta => (b, 1),
                Part::Mean => (b, 2),
                Part::Var => (b, 3),
            };
            format!("/layers/{g}/vars/{idx}")
        }
        Slot::FcKernel => "/layers/dense/vars/0".into(),
        Slot::FcBias => "/layers/dense/vars/1".into(),
    };
    let weights = asm.finish(Variant::V1, name_of)?;
    Ok(Loaded {
        weights,
        bn_epsilon: Some(Scheme::Keras3Keys.bn_epsilon()),
        format: Format::Keras3,
        path: path.to_path_buf(),
    })
}

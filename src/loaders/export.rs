//! Writers of framework-layout files from canonical weights: safetensors with
//! torchvision/timm, Hugging Face or Keras names, PyTorch zip checkpoints, the
//! three Keras HDF5 layouts and the `.keras` archive around a `.weights.h5`.
//! They produce exactly what the importers read, so tests, fuzz seeds and
//! users (exporting back to a framework) can build real files without
//! Python. Writers take a list of named tensors, so a caller can alter it
//! (drop, add, reshape, poison) before writing.

use std::collections::BTreeMap;

use ::safetensors::tensor::TensorView;
use ::safetensors::Dtype;
use hdf5_pure::{AttrValue, FileBuilder, FinishedGroup, GroupBuilder};

use super::names::{self, Scheme};
use super::{hwio_to_oihw, transpose};
use crate::arch::{conv_specs, FEATURES};
use crate::error::{Error, Result};
use crate::weights::{CanonicalWeights, ConvWeights};

/// A named tensor for a writer.
///
/// ```
/// use resnet50::loaders::{export, names::Scheme};
/// use resnet50::{init, Variant};
/// let tensors = export::safetensors_tensors(&init::keras_random(Variant::V1_5, Some(10), 0), Scheme::Torchvision);
/// let fc = tensors.iter().find(|t| t.name == "fc.weight").unwrap();
/// assert_eq!(fc.shape, [10, 2048]); // torch layout: [out, in]
/// assert_eq!((fc.data.len(), fc.dtype), (10 * 2048, safetensors::Dtype::F32));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Name (a safetensors key, an HDF5 weight name, or a Keras 3 var index).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values (row-major), written in `dtype`.
    pub data: Vec<f32>,
    /// Element type to write (safetensors: any of F32, F16, BF16, F64, I64;
    /// HDF5: F32 or F64).
    pub dtype: Dtype,
}

impl Tensor {
    fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Tensor { name: name.into(), shape, data, dtype: Dtype::F32 }
    }
}

fn bn_values(c: &ConvWeights) -> [&Vec<f32>; 4] {
    [&c.bn.gamma, &c.bn.beta, &c.bn.mean, &c.bn.var]
}

/// The tensors of a safetensors file with `scheme`'s names and layouts
/// (torch schemes also get the I64 `num_batches_tracked` buffers).
///
/// ```
/// use resnet50::loaders::{export, names::Scheme};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1_5, None, 0);
/// let torch = export::safetensors_tensors(&w, Scheme::Torchvision);
/// assert_eq!(torch.iter().filter(|t| t.name.ends_with(".num_batches_tracked")).count(), 53);
/// let keras = export::safetensors_tensors(&w, Scheme::Keras);
/// assert_eq!(keras.iter().find(|t| t.name == "conv1_conv/kernel").unwrap().shape, [7, 7, 3, 64]);
/// ```
pub fn safetensors_tensors(w: &CanonicalWeights, scheme: Scheme) -> Vec<Tensor> {
    let specs = conv_specs(w.variant);
    let mut out = Vec::new();
    for (s, c) in specs.iter().zip(&w.convs) {
        match scheme {
            Scheme::Torchvision | Scheme::HuggingFace => {
                let (cv, bn) = if scheme == Scheme::Torchvision {
                    names::torch_modules(s)
                } else {
                    let (a, b) = names::hf_modules(s);
                    (format!("resnet.{a}"), format!("resnet.{b}"))
                };
                out.push(Tensor::f32(
                    format!("{cv}.weight"),
                    vec![s.cout, s.cin, s.k, s.k],
                    hwio_to_oihw(&c.kernel, s.kernel_shape()),
                ));
                if let Some(b) = &c.bias {
                    out.push(Tensor::f32(format!("{cv}.bias"), vec![s.cout], b.clone()));
                }
                for (suffix, v) in ["weight", "bias", "running_mean", "running_var"].iter().zip(bn_values(c)) {
                    out.push(Tensor::f32(format!("{bn}.{suffix}"), vec![s.cout], v.clone()));
                }
                out.push(Tensor {
                    name: format!("{bn}.num_batches_tracked"),
                    shape: vec![],
                    data: vec![0.0],
                    dtype: Dtype::I64,
                });
            }
            _ => {
                let (cv, bn) = match scheme {
                    Scheme::KerasOld => names::keras_old_layers(s),
                    _ => names::keras_layers(s),
                };
                out.push(Tensor::f32(format!("{cv}/kernel"), s.kernel_shape().to_vec(), c.kernel.clone()));
                if let Some(b) = &c.bias {
                    out.push(Tensor::f32(format!("{cv}/bias"), vec![s.cout], b.clone()));
                }
                for (suffix, v) in ["gamma", "beta", "moving_mean", "moving_variance"].iter().zip(bn_values(c)) {
                    out.push(Tensor::f32(format!("{bn}/{suffix}"), vec![s.cout], v.clone()));
                }
            }
        }
    }
    if let Some(fc) = &w.fc {
        let n = fc.classes;
        match scheme {
            Scheme::Torchvision | Scheme::HuggingFace => {
                let p = if scheme == Scheme::Torchvision { "fc" } else { "classifier.1" };
                out.push(Tensor::f32(format!("{p}.weight"), vec![n, FEATURES], transpose(&fc.kernel, FEATURES, n)));
                out.push(Tensor::f32(format!("{p}.bias"), vec![n], fc.bias.clone()));
            }
            _ => {
                let top = names::keras_top_layers(scheme)[0];
                out.push(Tensor::f32(format!("{top}/kernel"), vec![FEATURES, n], fc.kernel.clone()));
                out.push(Tensor::f32(format!("{top}/bias"), vec![n], fc.bias.clone()));
            }
        }
    }
    out
}

fn encode(t: &Tensor) -> Vec<u8> {
    match t.dtype {
        Dtype::F64 => t.data.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect(),
        Dtype::F16 => t.data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        Dtype::BF16 => t.data.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        Dtype::I64 => t.data.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect(),
        Dtype::I32 => t.data.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
        _ => t.data.iter().flat_map(|&v| v.to_le_bytes()).collect(),
    }
}

/// Serialises `tensors` as a safetensors file.
///
/// ```
/// use resnet50::loaders::{export, names::Scheme, safetensors, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1_5, Some(10), 0);
/// let bytes = export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::HuggingFace))?;
/// let loaded = safetensors::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!(loaded.format, Format::Safetensors(Scheme::HuggingFace));
/// assert_eq!(loaded.weights, w);
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn safetensors_bytes(tensors: &[Tensor]) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> =
        tensors.iter().map(|t| (t.name.clone(), t.shape.clone(), t.dtype, encode(t))).collect();
    let mut views = Vec::with_capacity(encoded.len());
    for (name, shape, dtype, bytes) in &encoded {
        let v = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| Error::Weights(format!("safetensors tensor {name:?}: {e}")))?;
        views.push((name.clone(), v));
    }
    ::safetensors::serialize(views, None).map_err(|e| Error::Weights(format!("writing safetensors: {e}")))
}

/// Serialises `tensors` as a PyTorch zip checkpoint, the way
/// `torch.save(state_dict, path)` does: members stored uncompressed under
/// `archive/` (`data.pkl`, a protocol-2 pickle of an `OrderedDict` whose
/// values are rebuilt by `torch._utils._rebuild_tensor_v2` from persistent
/// storage ids; `data/<i>`, each tensor's storage; `byteorder`; `version`).
///
/// ```
/// use resnet50::loaders::{export, names::Scheme, pytorch, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1_5, Some(10), 0);
/// let bytes = export::pytorch_bytes(&export::safetensors_tensors(&w, Scheme::Torchvision))?;
/// assert_eq!(&bytes[..4], b"PK\x03\x04");
/// let loaded = pytorch::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.format, &loaded.weights), (Format::PyTorch(Scheme::Torchvision), &w));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn pytorch_bytes(tensors: &[Tensor]) -> Result<Vec<u8>> {
    let pickle = pytorch_pickle(tensors);
    let storages: Vec<(String, Vec<u8>)> =
        tensors.iter().enumerate().map(|(i, t)| (format!("archive/data/{i}"), encode(t))).collect();
    let mut members: Vec<(&str, &[u8])> = vec![("archive/data.pkl", &pickle), ("archive/byteorder", b"little")];
    members.extend(storages.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    members.push(("archive/version", b"3\n"));
    zip_bytes(&members)
}

/// A Keras 3 `.keras` model file around the `.weights.h5` image `h5` (as
/// `model.save("x.keras")` writes it: `metadata.json`, `config.json` — here
/// minimal, the loader does not read it — and `model.weights.h5`, stored).
///
/// ```
/// use resnet50::loaders::{archive, export::{self, H5Layout}, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// let layout = H5Layout::Keras3 { names: false };
/// let h5 = export::keras_h5_bytes(&export::keras_h5_layers(&w, layout), layout, false)?;
/// let loaded = archive::from_bytes(std::path::Path::new("mem"), &export::keras_archive_bytes(&h5)?)?;
/// assert_eq!((loaded.format, &loaded.weights), (Format::Keras3, &w));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn keras_archive_bytes(h5: &[u8]) -> Result<Vec<u8>> {
    zip_bytes(&[
        ("metadata.json", br#"{"keras_version": "3.15.1"}"#),
        ("config.json", br#"{"module": "keras.src.models.functional", "class_name": "Functional"}"#),
        ("model.weights.h5", h5),
    ])
}

/// A zip archive of `members` (name, bytes), stored uncompressed and 64-byte
/// aligned, as torch writes its checkpoints (also for tests that need a zip
/// of their own making).
///
/// ```
/// use resnet50::loaders::export;
/// let z = export::zip_bytes(&[("a/data.pkl", b"\x80\x02N.")])?;
/// assert!(z.starts_with(b"PK\x03\x04"));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn zip_bytes(members: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    use std::io::Write;
    use zip::write::{SimpleFileOptions, ZipWriter};
    let fail = |e: &dyn std::fmt::Display| Error::Weights(format!("writing a zip archive: {e}"));
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).with_alignment(64);
    for (name, bytes) in members {
        zip.start_file(*name, opts).map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

/// The `data.pkl` of [`pytorch_bytes`]: the protocol-2 pickle `torch.save`
/// writes for a state dict of `tensors` (tensor `i`'s storage is member
/// `data/<i>`).
///
/// ```
/// use resnet50::loaders::{export, pickle};
/// let t = export::Tensor { name: "w".into(), shape: vec![2], data: vec![1.0, 2.0], dtype: safetensors::Dtype::F32 };
/// let pickle::Value::Dict(items, _) = pickle::load(&export::pytorch_pickle(&[t])).unwrap() else { panic!() };
/// assert!(matches!(&items[0].1, pickle::Value::Tensor(t) if t.shape == [2] && t.storage.key == "0"));
/// ```
pub fn pytorch_pickle(tensors: &[Tensor]) -> Vec<u8> {
    // OrderedDict(), then MARK, (key, tensor)…, SETITEMS, STOP.
    let mut p: Vec<u8> = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
    let text = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: usize| {
        p.push(b'J');
        p.extend_from_slice(&(v as i32).to_le_bytes());
    };
    // Globals are written once and memoised (memo 2: the rebuild function,
    // 3.. the storage classes), as pickle does.
    let mut memo: Vec<String> = Vec::new();
    let mut global = |p: &mut Vec<u8>, module: &str, name: &str| {
        let full = format!("{module}\n{name}\n");
        match memo.iter().position(|m| *m == full) {
            Some(i) => {
                p.push(b'j');
                p.extend_from_slice(&(i as u32 + 2).to_le_bytes());
            }
            None => {
                p.push(b'c');
                p.extend_from_slice(full.as_bytes());
                p.push(b'r');
                p.extend_from_slice(&(memo.len() as u32 + 2).to_le_bytes());
                memo.push(full);
            }
        }
    };
    for (i, t) in tensors.iter().enumerate() {
        let class = match t.dtype {
            Dtype::F64 => "DoubleStorage",
            Dtype::F16 => "HalfStorage",
            Dtype::BF16 => "BFloat16Storage",
            Dtype::I64 => "LongStorage",
            Dtype::I32 => "IntStorage",
            _ => "FloatStorage",
        };
        text(&mut p, &t.name);
        global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend_from_slice(b"((");
        text(&mut p, "storage");
        global(&mut p, "torch", class);
        text(&mut p, &i.to_string());
        text(&mut p, "cpu");
        int(&mut p, t.data.len());
        p.extend_from_slice(b"tQ"); // the persistent id tuple, BINPERSID
        int(&mut p, 0); // storage offset
        p.push(b'(');
        for &d in &t.shape {
            int(&mut p, d);
        }
        p.extend_from_slice(b"t(");
        let mut stride = 1;
        let mut strides = vec![0; t.shape.len()];
        for (s, &d) in strides.iter_mut().zip(&t.shape).rev() {
            *s = stride;
            stride *= d;
        }
        for s in strides {
            int(&mut p, s);
        }
        p.extend_from_slice(b"t\x89"); // requires_grad = False
        p.extend_from_slice(b"h\x00)R"); // backward hooks: OrderedDict()
        p.extend_from_slice(b"tR"); // the argument tuple, REDUCE
    }
    p.extend_from_slice(b"u.");
    p
}

/// The three Keras HDF5 layouts.
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// let layout = H5Layout::Keras3 { names: true };
/// let bytes = export::keras_h5_bytes(&export::keras_h5_layers(&w, layout), layout, false)?;
/// assert_eq!(keras_h5::from_bytes(std::path::Path::new("mem"), &bytes)?.format, Format::Keras3);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H5Layout {
    /// Legacy `save_weights("x.h5")` with today's names (`/conv1_conv/conv1_conv/kernel:0`).
    Keras,
    /// Legacy layout with the 2016 names and flat datasets (`/conv1/conv1_W:0`).
    KerasOld,
    /// Keras 3 `.weights.h5` (`/layers/conv2d/vars/0`); `names` adds the
    /// `vars` group's `name` attribute (Keras ≥ 3.6).
    Keras3 {
        /// Whether to write the layer-name attribute.
        names: bool,
    },
}

/// One Keras layer: its name (or Keras 3 key) and its weights in Keras'
/// order. A weightless layer has no tensors.
///
/// ```
/// use resnet50::loaders::export::{keras_h5_layers, H5Layout};
/// use resnet50::{init, Variant};
/// let layers = keras_h5_layers(&init::keras_random(Variant::V1, None, 0), H5Layout::Keras);
/// let bn = layers.iter().find(|l| l.name == "conv1_bn").unwrap();
/// assert_eq!(bn.weights.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
///     ["conv1_bn/gamma:0", "conv1_bn/beta:0", "conv1_bn/moving_mean:0", "conv1_bn/moving_variance:0"]);
/// assert!(layers[0].weights.is_empty()); // the input layer
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct H5Layer {
    /// Layer name (legacy) or key (Keras 3).
    pub name: String,
    /// Layer name written as the Keras 3 `name` attribute.
    pub keras_name: String,
    /// Weight names (legacy: `conv1_conv/kernel:0`, `conv1_W:0`; Keras 3: `0`, `1`, …).
    pub weights: Vec<Tensor>,
}

/// The layers of a Keras file in Keras' model order (weightless input and
/// padding layers included, to exercise readers that must skip them).
///
/// ```
/// use resnet50::loaders::export::{keras_h5_layers, H5Layout};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, Some(10), 0);
/// let old = keras_h5_layers(&w, H5Layout::KerasOld);
/// assert_eq!(old.iter().find(|l| l.name == "conv1").unwrap().weights[0].name, "conv1_W:0");
/// let k3 = keras_h5_layers(&w, H5Layout::Keras3 { names: false });
/// assert_eq!(k3.last().unwrap().name, "dense"); // the classifier comes last
/// ```
pub fn keras_h5_layers(w: &CanonicalWeights, layout: H5Layout) -> Vec<H5Layer> {
    let specs = conv_specs(w.variant);
    let k3 = names::keras3_keys();
    let old = layout == H5Layout::KerasOld;
    let k3layout = matches!(layout, H5Layout::Keras3 { .. });
    let empty = |n: &str| H5Layer { name: n.into(), keras_name: n.into(), weights: vec![] };
    let mut out = vec![empty(if k3layout { "input_layer" } else { "input_1" })];
    out.push(empty(if k3layout { "zero_padding2d" } else { "conv1_pad" }));
    let wname = |layer: &str, var: &str, idx: usize| -> String {
        match layout {
            H5Layout::Keras => format!("{layer}/{var}:0"),
            H5Layout::KerasOld => {
                let v = match var {
                    "kernel" => "W",
                    "bias" => "b",
                    "moving_mean" => "running_mean",
                    "moving_variance" => "running_std",
                    v => v,
                };
                format!("{layer}_{v}:0")
            }
            H5Layout::Keras3 { .. } => idx.to_string(),
        }
    };
    let mut conv_layers = Vec::with_capacity(specs.len());
    for (i, (s, c)) in specs.iter().zip(&w.convs).enumerate() {
        let (cname, bname) = if old { names::keras_old_layers(s) } else { names::keras_layers(s) };
        let (ckey, bkey) = if k3layout { k3[i].clone() } else { (cname.clone(), bname.clone()) };
        let mut conv = vec![Tensor::f32(wname(&cname, "kernel", 0), s.kernel_shape().to_vec(), c.kernel.clone())];
        if let Some(b) = &c.bias {
            conv.push(Tensor::f32(wname(&cname, "bias", 1), vec![s.cout], b.clone()));
        }
        let bn: Vec<Tensor> = ["gamma", "beta", "moving_mean", "moving_variance"]
            .iter()
            .zip(bn_values(c))
            .enumerate()
            .map(|(k, (v, d))| Tensor::f32(wname(&bname, v, k), vec![s.cout], d.clone()))
            .collect();
        conv_layers.push((
            H5Layer { name: ckey, keras_name: cname, weights: conv },
            H5Layer { name: bkey, keras_name: bname, weights: bn },
        ));
    }
    // Keras' model order: in a projection block 1_conv 1_bn 2_conv 2_bn 0_conv 3_conv 0_bn 3_bn.
    let mut i = 0;
    while i < specs.len() {
        let s = &specs[i];
        if s.index == 0 && s.stage > 1 {
            let l = |j: usize, bn: bool| {
                let (c, b) = &conv_layers[i + j];
                if bn {
                    b.clone()
                } else {
                    c.clone()
                }
            };
            out.extend([
                l(1, false),
                l(1, true),
                l(2, false),
                l(2, true),
                l(0, false),
                l(3, false),
                l(0, true),
                l(3, true),
            ]);
            i += 4;
        } else {
            out.push(conv_layers[i].0.clone());
            out.push(conv_layers[i].1.clone());
            i += 1;
        }
        if specs[i - 1].index == 3 || specs[i - 1].stage == 1 {
            out.push(empty(&format!("{}_out", specs[i - 1].name)));
        }
    }
    if let Some(fc) = &w.fc {
        let top = if old { "fc1000" } else { "predictions" };
        let key = if k3layout { "dense" } else { top };
        out.push(empty("avg_pool"));
        out.push(H5Layer {
            name: key.into(),
            keras_name: top.into(),
            weights: vec![
                Tensor::f32(wname(top, "kernel", 0), vec![FEATURES, fc.classes], fc.kernel.clone()),
                Tensor::f32(wname(top, "bias", 1), vec![fc.classes], fc.bias.clone()),
            ],
        });
    }
    out
}

fn add_dataset(g: &mut GroupBuilder, name: &str, t: &Tensor) {
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    match t.dtype {
        Dtype::F64 => {
            let d: Vec<f64> = t.data.iter().map(|&v| v as f64).collect();
            g.create_dataset(name).with_f64_data(&d).with_shape(&shape);
        }
        Dtype::I64 => {
            let d: Vec<i64> = t.data.iter().map(|&v| v as i64).collect();
            g.create_dataset(name).with_i64_data(&d).with_shape(&shape);
        }
        _ => {
            g.create_dataset(name).with_f32_data(&t.data).with_shape(&shape);
        }
    }
}

/// A tree of groups to build bottom-up (hdf5-pure builds children first).
#[derive(Default)]
struct Node {
    datasets: Vec<(String, Tensor)>,
    attrs: Vec<(String, AttrValue)>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn at(&mut self, path: &[&str]) -> &mut Node {
        path.iter().fold(self, |n, p| n.children.entry((*p).to_string()).or_default())
    }
    fn build(self, name: &str, fb: &mut FileBuilder) -> FinishedGroup {
        let mut g = fb.create_group(name);
        for (n, t) in &self.datasets {
            add_dataset(&mut g, n, t);
        }
        for (n, v) in self.attrs {
            g.set_attr(&n, v);
        }
        for (n, c) in self.children {
            let f = c.build(&n, fb);
            g.add_group(f);
        }
        g.finish()
    }
}

fn string_attr(v: Vec<String>, fixed: bool) -> AttrValue {
    if v.is_empty() {
        // What h5py writes for an empty list.
        AttrValue::F64Array(vec![])
    } else if fixed {
        AttrValue::AsciiStringArray(v)
    } else {
        AttrValue::VarLenAsciiStringArray(v)
    }
}

/// Serialises `layers` as a Keras HDF5 file of `layout`. `fixed_strings`
/// writes fixed-length string attributes (h5py 2.x, the 2016 file) instead
/// of variable-length ones (h5py 3).
///
/// ```
/// use resnet50::loaders::{export::{self, H5Layout}, keras_h5, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, Some(10), 0);
/// let bytes = export::keras_h5_bytes(&export::keras_h5_layers(&w, H5Layout::KerasOld), H5Layout::KerasOld, true)?;
/// assert!(bytes.starts_with(keras_h5::SIGNATURE));
/// let loaded = keras_h5::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.format, loaded.bn_epsilon), (Format::KerasH5Old, Some(1e-3)));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn keras_h5_bytes(layers: &[H5Layer], layout: H5Layout, fixed_strings: bool) -> Result<Vec<u8>> {
    let mut fb = FileBuilder::new();
    let mut root = Node::default();
    match layout {
        H5Layout::Keras | H5Layout::KerasOld => {
            for l in layers {
                let node = root.at(&[l.name.as_str()]);
                let wn: Vec<String> = l.weights.iter().map(|t| t.name.clone()).collect();
                node.attrs.push(("weight_names".into(), string_attr(wn, fixed_strings)));
                for t in &l.weights {
                    // `conv1_conv/kernel:0` nests one group deeper; `conv1_W:0` is flat.
                    let parts: Vec<&str> = t.name.split('/').collect();
                    let (dirs, leaf) = parts.split_at(parts.len() - 1);
                    let n = root.at(&[&[l.name.as_str()], dirs].concat());
                    n.datasets.push((leaf[0].to_string(), t.clone()));
                }
            }
            let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
            fb.set_attr("layer_names", string_attr(names, fixed_strings));
            if layout == H5Layout::Keras {
                fb.set_attr("backend", AttrValue::VarLenAsciiString("tensorflow".into()));
                fb.set_attr("keras_version", AttrValue::VarLenAsciiString("2.21.0".into()));
            }
        }
        H5Layout::Keras3 { names } => {
            let lroot = root.at(&["layers"]);
            for l in layers {
                let vars = lroot.at(&[l.name.as_str(), "vars"]);
                if names {
                    vars.attrs.push(("name".into(), AttrValue::VarLenString(l.keras_name.clone())));
                }
                for t in &l.weights {
                    vars.datasets.push((t.name.clone(), t.clone()));
                }
            }
            root.at(&["vars"]).attrs.push(("name".into(), AttrValue::VarLenString("resnet50".into())));
        }
    }
    for (n, c) in std::mem::take(&mut root.children) {
        let g = c.build(&n, &mut fb);
        fb.add_group(g);
    }
    fb.finish().map_err(|e| Error::Weights(format!("writing HDF5: {e}")))
}

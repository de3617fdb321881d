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

/// An attribute of an [`OnnxNode`].
#[derive(Clone, Debug, PartialEq)]
pub enum OnnxAttr {
    /// `INT`.
    Int(i64),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOAT`.
    Float(f32),
    /// `STRING`.
    Text(String),
}

/// A node of an [`OnnxModel`] (default domain).
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxNode {
    /// `op_type`, e.g. `Conv`.
    pub op: String,
    /// Node name.
    pub name: String,
    /// Input value names (`""` for an omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes, in order.
    pub attrs: Vec<(String, OnnxAttr)>,
}

impl OnnxNode {
    /// A node of the default domain.
    ///
    /// ```
    /// use resnet50::loaders::export::{OnnxAttr, OnnxNode};
    /// let n = OnnxNode::new("Transpose", "", &["x"], &["y"], vec![("perm", OnnxAttr::Ints(vec![0, 3, 1, 2]))]);
    /// assert_eq!((n.op.as_str(), n.inputs.len(), n.attrs[0].0.as_str()), ("Transpose", 1, "perm"));
    /// ```
    pub fn new(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, OnnxAttr)>) -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        OnnxNode {
            op: op.into(),
            name: name.into(),
            inputs: owned(inputs),
            outputs: owned(outputs),
            attrs: attrs.into_iter().map(|(n, a)| (n.to_string(), a)).collect(),
        }
    }
}

/// An ONNX model as [`onnx_model`] builds it: alter `nodes` or
/// `initializers` (a [`Tensor`]'s `dtype` picks the ONNX element type; an
/// initializer named in `external` is written as stored in an external
/// file), then [`OnnxModel::to_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    /// The graph input's name; its dims are `[1, 3, 224, 224]`.
    pub input: String,
    /// The graph outputs' names.
    pub outputs: Vec<String>,
    /// Nodes in topological order.
    pub nodes: Vec<OnnxNode>,
    /// Initializers.
    pub initializers: Vec<Tensor>,
    /// Initializers to mark as external data (`data_location = EXTERNAL`, no data).
    pub external: Vec<String>,
}

/// ResNet50 as an ONNX model (NCHW input `input` `[1, 3, 224, 224]`, opset
/// 17), laid out as `torch.onnx.export` writes torchvision's model: OIHW
/// kernels, `Conv` then `BatchNormalization` (ε `eps`) — or, with `fold`, the
/// BatchNorm folded into each `Conv`'s kernel and bias as the TorchScript
/// exporter does — `Relu`, `MaxPool`, `Add`, `GlobalAveragePool`, `Flatten`
/// and `Gemm` with `transB = 1` (the classifier only when `w` has one; the
/// output is then `logits`, else the pooled features `features`).
///
/// ```
/// use resnet50::loaders::{export, onnx, Format};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, Some(10), 0);
/// let model = export::onnx_model(&w, 1.001e-5, false);
/// assert_eq!(model.nodes.iter().filter(|n| n.op == "Conv").count(), 53);
/// let loaded = onnx::from_bytes(std::path::Path::new("mem"), &model.to_bytes())?;
/// assert_eq!((loaded.format, &loaded.weights, loaded.bn_epsilon), (Format::Onnx, &w, Some(1.001e-5)));
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn onnx_model(w: &CanonicalWeights, eps: f32, fold: bool) -> OnnxModel {
    use OnnxAttr::{Int, Ints};
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let specs = conv_specs(w.variant);
    let mut conv = |x: &str, i: usize, relu: bool, nodes: &mut Vec<OnnxNode>| -> String {
        let (s, c) = (&specs[i], &w.convs[i]);
        let hwio = [s.k, s.k, s.cin, s.cout];
        let oihw = vec![s.cout, s.cin, s.k, s.k];
        let (kernel, bias) = if fold {
            let (k, b) = crate::weights::fold_batch_norm(s, c, eps);
            (k, Some(b))
        } else {
            (c.kernel.clone(), c.bias.clone())
        };
        let wname = format!("{}.weight", s.name);
        inits.push(Tensor::f32(&wname, oihw, hwio_to_oihw(&kernel, hwio)));
        let mut ins = vec![x.to_string(), wname];
        if let Some(b) = bias {
            ins.push(format!("{}.bias", s.name));
            inits.push(Tensor::f32(format!("{}.bias", s.name), vec![s.cout], b));
        }
        let mut y = format!("{}/conv", s.name);
        let attrs = vec![
            ("dilations", Ints(vec![1, 1])),
            ("group", Int(1)),
            ("kernel_shape", Ints(vec![s.k as i64; 2])),
            ("pads", Ints(vec![s.pad as i64; 4])),
            ("strides", Ints(vec![s.stride as i64; 2])),
        ];
        let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
        nodes.push(OnnxNode::new("Conv", &format!("/{}/Conv", s.name), &ins, &[&y], attrs));
        if !fold {
            let mut ins = vec![y.clone()];
            for (part, v) in ["gamma", "beta", "mean", "var"].iter().zip(bn_values(c)) {
                ins.push(format!("{}.bn.{part}", s.name));
                inits.push(Tensor::f32(format!("{}.bn.{part}", s.name), vec![s.cout], v.clone()));
            }
            let bn = format!("{}/bn", s.name);
            let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
            let attrs = vec![("epsilon", OnnxAttr::Float(eps))];
            nodes.push(OnnxNode::new("BatchNormalization", &format!("/{}/BN", s.name), &ins, &[&bn], attrs));
            y = bn;
        }
        if relu {
            let r = format!("{}/relu", s.name);
            nodes.push(OnnxNode::new("Relu", &format!("/{}/Relu", s.name), &[&y], &[&r], vec![]));
            y = r;
        }
        y
    };
    let stem = conv("input", 0, true, &mut nodes);
    let pool = vec![("kernel_shape", Ints(vec![3, 3])), ("pads", Ints(vec![1; 4])), ("strides", Ints(vec![2, 2]))];
    nodes.push(OnnxNode::new("MaxPool", "/maxpool/MaxPool", &[&stem], &["pool1"], pool));
    let mut x = "pool1".to_string();
    let mut i = 1;
    while i < specs.len() {
        let p = specs[i].name.rsplit_once('_').map_or("", |(p, _)| p).to_string();
        let short = if specs[i].index == 0 {
            i += 1;
            conv(&x, i - 1, false, &mut nodes)
        } else {
            x.clone()
        };
        let y = conv(&x, i, true, &mut nodes);
        let y = conv(&y, i + 1, true, &mut nodes);
        let y = conv(&y, i + 2, false, &mut nodes);
        i += 3;
        let (add, out) = (format!("{p}/add"), format!("{p}/out"));
        nodes.push(OnnxNode::new("Add", &format!("/{p}/Add"), &[&y, &short], &[&add], vec![]));
        nodes.push(OnnxNode::new("Relu", &format!("/{p}/Relu"), &[&add], &[&out], vec![]));
        x = out;
    }
    nodes.push(OnnxNode::new("GlobalAveragePool", "/avgpool/GlobalAveragePool", &[&x], &["pooled"], vec![]));
    nodes.push(OnnxNode::new("Flatten", "/Flatten", &["pooled"], &["features"], vec![("axis", Int(1))]));
    let mut out = "features";
    if let Some(fc) = &w.fc {
        inits.push(Tensor::f32("fc.weight", vec![fc.classes, FEATURES], transpose(&fc.kernel, FEATURES, fc.classes)));
        inits.push(Tensor::f32("fc.bias", vec![fc.classes], fc.bias.clone()));
        let attrs = vec![("alpha", OnnxAttr::Float(1.0)), ("beta", OnnxAttr::Float(1.0)), ("transB", Int(1))];
        nodes.push(OnnxNode::new("Gemm", "/fc/Gemm", &["features", "fc.weight", "fc.bias"], &["logits"], attrs));
        out = "logits";
    }
    OnnxModel { input: "input".into(), outputs: vec![out.into()], nodes, initializers: inits, external: Vec::new() }
}

impl OnnxModel {
    /// Serialises the model as an ONNX file (`ModelProto`, IR version 8,
    /// opset 17, producer `resnet50`).
    ///
    /// ```
    /// use resnet50::loaders::{detect, export, Detected};
    /// use resnet50::{init, Variant};
    /// let bytes = export::onnx_model(&init::keras_random(Variant::V1_5, None, 0), 1e-5, true).to_bytes();
    /// assert_eq!(detect(&bytes[..16], bytes.len() as u64), Some(Detected::Onnx));
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        use prost::encoding::{encode_key, encode_varint, WireType};
        fn key(b: &mut Vec<u8>, tag: u32, wire: WireType) {
            encode_key(tag, wire, b);
        }
        fn varint(b: &mut Vec<u8>, tag: u32, v: i64) {
            key(b, tag, WireType::Varint);
            encode_varint(v as u64, b);
        }
        fn bytes(b: &mut Vec<u8>, tag: u32, v: &[u8]) {
            key(b, tag, WireType::LengthDelimited);
            encode_varint(v.len() as u64, b);
            b.extend_from_slice(v);
        }
        fn value_info(name: &str, dims: &[i64]) -> Vec<u8> {
            // ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT, shape { dim { dim_value } } } } }
            let mut shape = Vec::new();
            for &d in dims {
                let mut dim = Vec::new();
                varint(&mut dim, 1, d);
                bytes(&mut shape, 1, &dim);
            }
            let mut tensor = Vec::new();
            varint(&mut tensor, 1, 1);
            if !dims.is_empty() {
                bytes(&mut tensor, 2, &shape);
            }
            let mut ty = Vec::new();
            bytes(&mut ty, 1, &tensor);
            let mut v = Vec::new();
            bytes(&mut v, 1, name.as_bytes());
            bytes(&mut v, 2, &ty);
            v
        }
        let mut graph = Vec::new();
        for n in &self.nodes {
            let mut m = Vec::new();
            for i in &n.inputs {
                bytes(&mut m, 1, i.as_bytes());
            }
            for o in &n.outputs {
                bytes(&mut m, 2, o.as_bytes());
            }
            bytes(&mut m, 3, n.name.as_bytes());
            bytes(&mut m, 4, n.op.as_bytes());
            for (name, a) in &n.attrs {
                let mut attr = Vec::new();
                bytes(&mut attr, 1, name.as_bytes());
                let ty = match a {
                    OnnxAttr::Float(f) => {
                        key(&mut attr, 2, WireType::ThirtyTwoBit);
                        attr.extend_from_slice(&f.to_le_bytes());
                        1
                    }
                    OnnxAttr::Int(i) => {
                        varint(&mut attr, 3, *i);
                        2
                    }
                    OnnxAttr::Text(s) => {
                        bytes(&mut attr, 4, s.as_bytes());
                        3
                    }
                    OnnxAttr::Ints(v) => {
                        // proto2 without [packed]: one field per value, as onnx.helper writes them.
                        for &i in v {
                            varint(&mut attr, 8, i);
                        }
                        7
                    }
                };
                varint(&mut attr, 20, ty);
                bytes(&mut m, 5, &attr);
            }
            bytes(&mut graph, 1, &m);
        }
        bytes(&mut graph, 2, b"resnet50");
        for t in &self.initializers {
            let mut m = Vec::new();
            for &d in &t.shape {
                varint(&mut m, 1, d as i64);
            }
            let ty = match t.dtype {
                Dtype::F16 => 10,
                Dtype::F64 => 11,
                Dtype::BF16 => 16,
                Dtype::I64 => 7,
                Dtype::I32 => 6,
                _ => 1,
            };
            varint(&mut m, 2, ty);
            bytes(&mut m, 8, t.name.as_bytes());
            if self.external.contains(&t.name) {
                let mut entry = Vec::new();
                bytes(&mut entry, 1, b"location");
                bytes(&mut entry, 2, format!("{}.bin", t.name).as_bytes());
                bytes(&mut m, 13, &entry);
                varint(&mut m, 14, 1);
            } else {
                bytes(&mut m, 9, &encode(t));
            }
            bytes(&mut graph, 5, &m);
        }
        bytes(&mut graph, 11, &value_info(&self.input, &[1, 3, 224, 224]));
        for o in &self.outputs {
            bytes(&mut graph, 12, &value_info(o, &[]));
        }
        let mut model = Vec::new();
        varint(&mut model, 1, 8);
        bytes(&mut model, 2, b"resnet50");
        bytes(&mut model, 3, env!("CARGO_PKG_VERSION").as_bytes());
        bytes(&mut model, 7, &graph);
        let mut opset = Vec::new();
        bytes(&mut opset, 1, b"");
        varint(&mut opset, 2, 17);
        bytes(&mut model, 8, &opset);
        model
    }
}

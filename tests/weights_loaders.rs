//! Every importer, on files written from `init::deterministic` weights in each
//! framework's layout, gives back exactly those weights; models built from
//! the files (and from the native file) match models built from memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resnet50::init::deterministic;
use resnet50::loaders::export::{self, H5Layout, Tensor};
use resnet50::loaders::names::Scheme;
use resnet50::loaders::{self, Format, Opened};
use resnet50::{CanonicalWeights, ResNet50, Variant, WeightsSource};
use safetensors::Dtype;

/// A directory for one test's files, removed when the test ends (also when it
/// fails).
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("resnet50-weights-loaders-").tempdir().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn weights(variant: Variant, top: bool) -> &'static CanonicalWeights {
    static W: OnceLock<[CanonicalWeights; 4]> = OnceLock::new();
    let w = W.get_or_init(|| {
        [
            deterministic(Variant::V1, Some(10)),
            deterministic(Variant::V1, None),
            deterministic(Variant::V1_5, Some(10)),
            deterministic(Variant::V1_5, None),
        ]
    });
    &w[(variant == Variant::V1_5) as usize * 2 + (!top) as usize]
}

fn st(dir: &Path, name: &str, tensors: &[Tensor]) -> PathBuf {
    write(dir, name, &export::safetensors_bytes(tensors).unwrap())
}

#[test]
fn torchvision_safetensors_top_and_notop() {
    let tmp = tmp();
    let dir = tmp.path();
    for top in [true, false] {
        let w = weights(Variant::V1_5, top);
        let p = st(dir, &format!("tv-{top}.safetensors"), &export::safetensors_tensors(w, Scheme::Torchvision));
        let l = loaders::load(&p).unwrap();
        assert_eq!(l.format, Format::Safetensors(Scheme::Torchvision));
        assert_eq!(l.bn_epsilon, Some(1e-5));
        assert_eq!(l.classes(), top.then_some(10));
        assert_eq!(&l.weights, w);
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn torchvision_with_module_prefix_and_other_dtypes() {
    let tmp = tmp();
    let dir = tmp.path();
    let w = weights(Variant::V1_5, true);
    let mut t = export::safetensors_tensors(w, Scheme::Torchvision);
    for x in &mut t {
        x.name = format!("module.{}", x.name);
        if x.dtype == Dtype::F32 {
            x.dtype = Dtype::F64;
        }
    }
    let p = st(dir, "tv-module-f64.safetensors", &t);
    assert_eq!(&loaders::load(&p).unwrap().weights, w, "f64 → f32 is exact for f32 values");
    // f16 and bf16 convert (with their precision).
    for dt in [Dtype::F16, Dtype::BF16] {
        let mut t = export::safetensors_tensors(w, Scheme::Torchvision);
        t.iter_mut().filter(|x| x.dtype == Dtype::F32).for_each(|x| x.dtype = dt);
        let p = st(dir, "tv-half.safetensors", &t);
        let l = loaders::load(&p).unwrap();
        let (a, b) = (&l.weights.convs[5].kernel, &w.convs[5].kernel);
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-2 * y.abs().max(1e-3)), "{dt:?}");
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn hugging_face_safetensors() {
    let tmp = tmp();
    let dir = tmp.path();
    for top in [true, false] {
        let w = weights(Variant::V1_5, top);
        let mut t = export::safetensors_tensors(w, Scheme::HuggingFace);
        if !top {
            // A bare `ResNetModel` checkpoint has no `resnet.` prefix.
            t.iter_mut().for_each(|x| x.name = x.name.trim_start_matches("resnet.").to_string());
        }
        let p = st(dir, &format!("hf-{top}.safetensors"), &t);
        let l = loaders::load(&p).unwrap();
        assert_eq!(l.format, Format::Safetensors(Scheme::HuggingFace));
        assert_eq!(&l.weights, w);
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn keras_named_safetensors() {
    let tmp = tmp();
    let dir = tmp.path();
    for (scheme, eps) in [(Scheme::Keras, 1.001e-5), (Scheme::KerasOld, 1e-3)] {
        let w = weights(Variant::V1, true);
        let p = st(dir, "keras.safetensors", &export::safetensors_tensors(w, scheme));
        let l = loaders::load(&p).unwrap();
        assert_eq!(l.format, Format::Safetensors(scheme));
        assert_eq!(l.bn_epsilon, Some(eps));
        assert_eq!(&l.weights, w);
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn keras_h5_all_layouts_top_and_notop() {
    let tmp = tmp();
    let dir = tmp.path();
    let cases = [
        (H5Layout::Keras, false, Format::KerasH5, 1.001e-5),
        (H5Layout::Keras, true, Format::KerasH5, 1.001e-5),
        (H5Layout::KerasOld, true, Format::KerasH5Old, 1e-3),
        (H5Layout::Keras3 { names: true }, false, Format::Keras3, 1.001e-5),
        (H5Layout::Keras3 { names: false }, false, Format::Keras3, 1.001e-5),
    ];
    for (layout, fixed, format, eps) in cases {
        for top in [true, false] {
            let w = weights(Variant::V1, top);
            let layers = export::keras_h5_layers(w, layout);
            let p = write(dir, "k.h5", &export::keras_h5_bytes(&layers, layout, fixed).unwrap());
            let l = loaders::load(&p).unwrap_or_else(|e| panic!("{layout:?} top={top}: {e}"));
            assert_eq!(l.format, format);
            assert_eq!(l.bn_epsilon, Some(eps));
            assert_eq!(&l.weights, w, "{layout:?} top={top}");
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn keras_h5_probs_group_and_shuffled_layer_order() {
    let tmp = tmp();
    let dir = tmp.path();
    // The GCS file names the classifier `probs`; names, not positions, decide.
    let w = weights(Variant::V1, true);
    let mut layers = export::keras_h5_layers(w, H5Layout::Keras);
    layers.reverse();
    for l in &mut layers {
        if l.name == "predictions" {
            l.name = "probs".into();
            l.weights.iter_mut().for_each(|t| t.name = t.name.replace("predictions", "probs"));
        }
    }
    let p = write(dir, "probs.h5", &export::keras_h5_bytes(&layers, H5Layout::Keras, false).unwrap());
    assert_eq!(&loaders::load(&p).unwrap().weights, w);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn pytorch_checkpoints_and_keras_archives() {
    let tmp = tmp();
    let dir = tmp.path();
    // torchvision and Hugging Face names, top and not, plain and nested in a
    // training checkpoint's dict, f16 storages.
    for top in [true, false] {
        let w = weights(Variant::V1_5, top);
        for scheme in [Scheme::Torchvision, Scheme::HuggingFace] {
            let p = write(dir, "m.pth", &export::pytorch_bytes(&export::safetensors_tensors(w, scheme)).unwrap());
            let l = loaders::load(&p).unwrap_or_else(|e| panic!("{scheme:?} top={top}: {e}"));
            assert_eq!((l.format, l.bn_epsilon, l.classes()), (Format::PyTorch(scheme), Some(1e-5), top.then_some(10)));
            assert_eq!(&l.weights, w, "{scheme:?} top={top}");
        }
    }
    let w = weights(Variant::V1_5, true);
    let mut t = export::safetensors_tensors(w, Scheme::Torchvision);
    t.iter_mut().filter(|x| x.dtype == Dtype::F32).for_each(|x| x.dtype = Dtype::F16);
    let p = write(dir, "half.pth", &export::pytorch_bytes(&t).unwrap());
    let l = loaders::load(&p).unwrap();
    let (a, b) = (&l.weights.convs[5].kernel, &w.convs[5].kernel);
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-2 * y.abs().max(1e-3)));
    // The same network as from memory, through the builder.
    let p = write(dir, "m.pth", &export::pytorch_bytes(&export::safetensors_tensors(w, Scheme::Torchvision)).unwrap());
    let base = || ResNet50::new().variant(Variant::V1_5).classes(10);
    let mem = run(base().weights(WeightsSource::Canonical(Arc::new(w.clone()))));
    assert_eq!(run(base().weights(WeightsSource::File(p.clone()))), mem);
    // A Keras 3 `.keras` model file: its model.weights.h5 is read in place.
    for top in [true, false] {
        let w = weights(Variant::V1, top);
        let layout = H5Layout::Keras3 { names: true };
        let h5 = export::keras_h5_bytes(&export::keras_h5_layers(w, layout), layout, false).unwrap();
        let p = write(dir, "m.keras", &export::keras_archive_bytes(&h5).unwrap());
        let l = loaders::load(&p).unwrap();
        assert_eq!((l.format, l.classes()), (Format::Keras3, top.then_some(10)));
        assert_eq!(&l.weights, w);
        if !top {
            let mem = run(ResNet50::new().include_top(false).weights(WeightsSource::Canonical(Arc::new(w.clone()))));
            assert_eq!(run(ResNet50::new().include_top(false).weights(WeightsSource::File(p.clone()))), mem);
        }
    }
}

#[test]
fn onnx_models_by_graph_structure() {
    use resnet50::loaders::export::{OnnxAttr, OnnxModel, OnnxNode};
    use resnet50::loaders::onnx::FOLDED_EPSILON;
    let tmp = tmp();
    let dir = tmp.path();
    // BatchNormalization nodes kept: exactly the canonical weights; the
    // strides say the variant, the Gemm the classes, the nodes the ε.
    for (variant, eps) in [(Variant::V1, 1.001e-5), (Variant::V1_5, 1e-5)] {
        for top in [true, false] {
            let w = weights(variant, top);
            let p = write(dir, "m.onnx", &export::onnx_model(w, eps, false).to_bytes());
            let l = loaders::load(&p).unwrap_or_else(|e| panic!("{variant} top={top}: {e}"));
            assert_eq!((l.format, l.bn_epsilon, l.classes()), (Format::Onnx, Some(eps), top.then_some(10)));
            assert_eq!(&l.weights, w, "{variant} top={top}");
        }
    }
    // BatchNorm folded into each Conv, as torch.onnx.export writes it: the
    // folded kernels and biases are the file's, bit for bit, and the network
    // is the one built from the unfolded weights.
    let w = weights(Variant::V1_5, true);
    let p = write(dir, "folded.onnx", &export::onnx_model(w, 1e-5, true).to_bytes());
    let l = loaders::load(&p).unwrap();
    assert_eq!(l.bn_epsilon, Some(FOLDED_EPSILON));
    for (i, s) in resnet50::arch::conv_specs(Variant::V1_5).iter().enumerate() {
        let want = resnet50::weights::fold_batch_norm(s, &w.convs[i], 1e-5);
        assert_eq!(resnet50::weights::fold_batch_norm(s, &l.weights.convs[i], FOLDED_EPSILON), want, "{}", s.name);
    }
    let base = || ResNet50::new().variant(Variant::V1_5).classes(10);
    let mem = run(base().weights(WeightsSource::Canonical(Arc::new(w.clone()))));
    assert_eq!(run(base().weights(WeightsSource::File(p.clone()))), mem);

    // What other exporters write: float16 initializers; Identity nodes; the
    // dynamo exporter's ReduceMean (axes as an input) + Reshape; a MatMul +
    // Add classifier or a Gemm with a [2048, classes] kernel (transB = 0).
    let model = export::onnx_model(w, 1e-5, false);
    let node = |op: &str, ins: &[&str], outs: &[&str], attrs| OnnxNode::new(op, "", ins, outs, attrs);
    let i64s = |name: &str, v: &[i64]| Tensor {
        name: name.into(),
        shape: vec![v.len()],
        data: v.iter().map(|&x| x as f32).collect(),
        dtype: Dtype::I64,
    };
    let load = |m: &OnnxModel| resnet50::loaders::onnx::from_bytes(Path::new("mem.onnx"), &m.to_bytes());
    let mut half = model.clone();
    half.initializers.iter_mut().for_each(|t| t.dtype = Dtype::F16);
    let l = load(&half).unwrap();
    let (a, b) = (&l.weights.convs[7].kernel, &w.convs[7].kernel);
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-2 * y.abs().max(1e-3)));

    let mut dynamo = model.clone();
    let at = |m: &OnnxModel, op: &str| m.nodes.iter().position(|n| n.op == op).unwrap();
    let gap = at(&dynamo, "GlobalAveragePool");
    dynamo.nodes[gap].op = "ReduceMean".into();
    dynamo.nodes[gap].inputs.push("axes".into());
    dynamo.nodes[gap].attrs.push(("keepdims".into(), OnnxAttr::Int(1)));
    let flat = at(&dynamo, "Flatten");
    dynamo.nodes[flat] = node("Reshape", &["pooled", "shape"], &["features"], vec![]);
    dynamo.initializers.extend([i64s("axes", &[-1, -2]), i64s("shape", &[1, 2048])]);
    // Identity after the stem's Relu and after the classifier.
    let pool = at(&dynamo, "MaxPool");
    let relu = dynamo.nodes[pool].inputs[0].clone();
    dynamo.nodes[pool].inputs[0] = "stem-id".into();
    dynamo.nodes.insert(pool, node("Identity", &[&relu], &["stem-id"], vec![]));
    dynamo.nodes.push(node("Identity", &["logits"], &["output"], vec![]));
    dynamo.outputs = vec!["output".into()];
    // Nodes that read only a value's shape or type do not count as its users.
    dynamo.nodes.push(node("Shape", &["input"], &["input-shape"], vec![]));
    dynamo.nodes.push(node("CastLike", &["input-shape", "conv3_block2/out"], &["shape-like"], vec![]));
    assert_eq!(&load(&dynamo).unwrap().weights, w);

    let fc = w.fc.as_ref().unwrap();
    let keras_fc =
        Tensor { name: "fc.weight".into(), shape: vec![2048, 10], data: fc.kernel.clone(), dtype: Dtype::F32 };
    let mut gemm = model.clone();
    let k = gemm.initializers.iter().position(|t| t.name == "fc.weight").unwrap();
    gemm.initializers[k] = keras_fc.clone();
    let g = at(&gemm, "Gemm");
    gemm.nodes[g].attrs.retain(|(n, _)| n != "transB");
    assert_eq!(&load(&gemm).unwrap().weights, w);
    let mut matmul = gemm.clone();
    matmul.nodes[g] = node("MatMul", &["features", "fc.weight"], &["mm"], vec![]);
    matmul.nodes.push(node("Add", &["fc.bias", "mm"], &["logits"], vec![]));
    assert_eq!(&load(&matmul).unwrap().weights, w);
    // Keras through tf2onnx: an NHWC input transposed to NCHW, ZeroPadding2D
    // as Pad nodes (pads as an int64 input), Squeeze, Gemm with the Keras
    // kernel, Softmax; without the top, the feature maps transposed back.
    let w1 = weights(Variant::V1, true);
    let mut keras = export::onnx_model(w1, 1.001e-5, false);
    let k1 = keras.initializers.iter().position(|t| t.name == "fc.weight").unwrap();
    let fc1 = w1.fc.as_ref().unwrap();
    keras.initializers[k1] =
        Tensor { shape: vec![2048, 10], data: fc1.kernel.clone(), ..keras.initializers[k1].clone() };
    let g1 = at(&keras, "Gemm");
    keras.nodes[g1].attrs.retain(|(n, _)| n != "transB");
    keras.nodes[0].inputs[0] = "stem-padded".into();
    keras.nodes[0].attrs.retain(|(n, _)| n != "pads");
    let pool = at(&keras, "MaxPool");
    let relu = keras.nodes[pool].inputs[0].clone();
    keras.nodes[pool].inputs[0] = "pool-padded".into();
    keras.nodes[pool].attrs.retain(|(n, _)| n != "pads");
    keras.nodes.insert(pool, node("Pad", &[&relu, "pool-pads"], &["pool-padded"], vec![]));
    let perm = |p: [i64; 4]| vec![("perm", OnnxAttr::Ints(p.to_vec()))];
    keras.nodes.insert(0, node("Pad", &["nchw", "stem-pads"], &["stem-padded"], vec![]));
    keras.nodes.insert(0, node("Transpose", &["input_nhwc"], &["nchw"], perm([0, 3, 1, 2])));
    keras.input = "input_nhwc".into();
    let flat = at(&keras, "Flatten");
    keras.nodes[flat] = node("Squeeze", &["pooled", "squeeze-axes"], &["features"], vec![]);
    keras.nodes.push(node("Softmax", &["logits"], &["predictions"], vec![]));
    keras.outputs = vec!["predictions".into()];
    keras.initializers.extend([
        i64s("stem-pads", &[0, 0, 3, 3, 0, 0, 3, 3]),
        i64s("pool-pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
        i64s("squeeze-axes", &[2, 3]),
    ]);
    let l = load(&keras).unwrap();
    assert_eq!((&l.weights, l.bn_epsilon), (w1, Some(1.001e-5)));
    let mut notop = keras.clone();
    let gap = at(&notop, "GlobalAveragePool");
    let last = notop.nodes[gap].inputs[0].clone();
    notop.nodes.truncate(gap);
    notop.nodes.push(node("Transpose", &[&last], &["nhwc-features"], perm([0, 2, 3, 1])));
    notop.outputs = vec!["nhwc-features".into()];
    notop.initializers.retain(|t| !t.name.starts_with("fc."));
    assert_eq!(&load(&notop).unwrap().weights, weights(Variant::V1, false));
    // A Pad that is not a zero padding of H and W is not ResNet50's.
    for (pads, value) in [(&[0i64, 0, 1, 1, 0, 0, 1, 1][..], 1.0f32), (&[0, 1, 1, 1, 0, 0, 1, 1], 0.0)] {
        let mut bad = keras.clone();
        let i = bad.initializers.iter().position(|t| t.name == "pool-pads").unwrap();
        bad.initializers[i] = i64s("pool-pads", pads);
        let p = bad.nodes.iter().position(|n| n.op == "Pad" && n.outputs[0] == "pool-padded").unwrap();
        bad.nodes[p].attrs.push(("value".into(), OnnxAttr::Float(value)));
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("where ResNet50 has a zero padding of H and W"), "{e}");
    }

    // transB = 0 with torch's [classes, 2048] kernel is not ResNet50's.
    let mut wrong = gemm.clone();
    wrong.initializers[k] = model.initializers[k].clone();
    let e = load(&wrong).unwrap_err().to_string();
    assert!(e.contains("fc.weight") && e.contains("[2048, classes]"), "{e}");
}

fn run(b: ResNet50) -> Vec<f32> {
    let m = b.input_shape(32, 32, 3).build().unwrap();
    m.predict(&resnet50::init::deterministic_input(1, 32, 32)).unwrap()
}

#[test]
fn models_from_files_match_models_from_memory() {
    let tmp = tmp();
    let dir = tmp.path();
    // v1.5 torchvision file, with top.
    let w = weights(Variant::V1_5, true);
    let p = st(dir, "model-tv.safetensors", &export::safetensors_tensors(w, Scheme::Torchvision));
    let base = || ResNet50::new().variant(Variant::V1_5).classes(10);
    let mem = run(base().weights(WeightsSource::Canonical(Arc::new(w.clone()))));
    assert_eq!(run(base().weights(WeightsSource::File(p.clone()))), mem);
    // The variant is checked.
    let e = ResNet50::new().classes(10).weights(WeightsSource::File(p.clone())).build().unwrap_err().to_string();
    assert!(e.contains("v1.5") && e.contains("v1 was requested") && e.contains("model-tv.safetensors"), "{e}");
    // The classes are checked.
    let e = base().classes(1000).weights(WeightsSource::File(p.clone())).build().unwrap_err().to_string();
    assert!(e.contains("10 classes") && e.contains("1000"), "{e}");
    std::fs::remove_file(&p).unwrap();

    // The 2016 Keras file implies BN ε 1e-3: used unless the config sets one.
    let w = weights(Variant::V1, false);
    let layers = export::keras_h5_layers(w, H5Layout::KerasOld);
    let p = write(dir, "model-old.h5", &export::keras_h5_bytes(&layers, H5Layout::KerasOld, true).unwrap());
    let base = || ResNet50::new().include_top(false);
    let mem = |eps: f32| run(base().bn_epsilon(eps).weights(WeightsSource::Canonical(Arc::new(w.clone()))));
    assert_eq!(run(base().weights(WeightsSource::File(p.clone()))), mem(1e-3));
    assert_eq!(run(base().bn_epsilon(1.001e-5).weights(WeightsSource::File(p.clone()))), mem(1.001e-5));
    // A notop file cannot serve include_top=true.
    let e = ResNet50::new().weights(WeightsSource::File(p.clone())).build().unwrap_err().to_string();
    assert!(e.contains("no classifier") && e.contains("model-old.h5"), "{e}");
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn native_file_is_used_in_place_and_matches() {
    let tmp = tmp();
    let dir = tmp.path();
    let w = weights(Variant::V1, true);
    let src = st(dir, "native-src.safetensors", &export::safetensors_tensors(w, Scheme::Keras));
    let dst = dir.join("native.r50w");
    loaders::convert(&src, &dst, Some(Variant::V1)).unwrap();
    let e = loaders::convert(&src, &dst, Some(Variant::V1_5)).unwrap_err().to_string();
    assert!(e.contains("v1.5 was requested"), "{e}");

    // The kernels read from inside the mapping: every packed tensor the
    // executor hands them (`PreparedWeights::conv`) lies in the mapped range.
    let Opened::Native(n) = loaders::open(&dst).unwrap() else { panic!("not native") };
    assert_eq!((n.variant, n.classes, n.bn_epsilon), (Variant::V1, Some(10), 1.001e-5));
    let map = n.weights.mapped_range().expect("mapped");
    for i in 0..53 {
        let (_, packed) = n.weights.conv(i);
        let (a, b) = (packed.as_ptr() as usize, packed.as_ptr() as usize + packed.len() * 4);
        assert!(map.start <= a && b <= map.end, "conv {i} not in the mapping");
        assert_eq!(a % 64, 0, "conv {i} not 64-byte aligned");
    }
    let data = n.weights.data();
    assert!(map.contains(&(data.as_ptr() as usize)));

    // Native files are packed for 224×224 at batch 1 (the kernel choice depends
    // on the input size), so a model from memory of that size makes the same
    // choices, but for v1's three early-stride 3×3 layers: a native file keeps
    // them runnable without the early stride (a feature-map model), with
    // implicit GEMM, where a model from memory may use a stride-2 Winograd
    // tile. Same network, within rounding.
    let run224 = |b: ResNet50| {
        let m = b.input_shape(224, 224, 3).build().unwrap();
        m.predict(&resnet50::init::deterministic_input(1, 224, 224)).unwrap()
    };
    let close = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
    };
    let mem = run224(ResNet50::new().classes(10).weights(WeightsSource::Canonical(Arc::new(w.clone()))));
    let file = run224(ResNet50::new().classes(10).weights(WeightsSource::File(dst.clone())));
    assert!(close(&file, &mem), "{file:?} vs {mem:?}");
    // With feature maps there is no early stride: the file's kernels for those
    // layers run at stride 1 (a model from memory picks Winograd there).
    let features = |b: ResNet50| {
        let m = b.input_shape(224, 224, 3).include_top(false).feature_maps(true).build().unwrap();
        let mut s = m.session().unwrap();
        s.predict(&resnet50::init::deterministic_input(1, 224, 224)).unwrap().to_vec()
    };
    assert!(close(
        &features(ResNet50::new().weights(WeightsSource::File(dst.clone()))),
        &features(ResNet50::new().weights(WeightsSource::Canonical(Arc::new(w.clone()))))
    ));
    // At another size the packed choice is kept: same network, within rounding.
    let (a, b) = (
        run(ResNet50::new().classes(10).weights(WeightsSource::File(dst.clone()))),
        run(ResNet50::new().classes(10).weights(WeightsSource::Canonical(Arc::new(w.clone())))),
    );
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale), "{a:?} vs {b:?}");
    let notop = |b: ResNet50| run224(b.include_top(false).pooling(resnet50::Pooling::Avg));
    assert!(close(
        &notop(ResNet50::new().weights(WeightsSource::File(dst.clone()))),
        &notop(ResNet50::new().weights(WeightsSource::Canonical(Arc::new(w.clone()))))
    ));
    // Mismatches are refused, naming the file.
    for (b, want) in [
        (ResNet50::new().variant(Variant::V1_5).classes(10), "v1.5 was requested"),
        (ResNet50::new().classes(1000), "10 classes"),
        (ResNet50::new().classes(10).bn_epsilon(1e-3), "epsilon"),
        (ResNet50::new().classes(10).reference_kernels(true), "reference"),
    ] {
        let e = b.input_shape(32, 32, 3).weights(WeightsSource::File(dst.clone())).build().unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("native.r50w"), "{e}");
    }
    assert!(loaders::load(&dst).unwrap_err().to_string().contains("native"));
    std::fs::remove_file(&src).unwrap();
    std::fs::remove_file(&dst).unwrap();
}

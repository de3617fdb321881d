//! Files written by the real frameworks (Keras 3 `save_weights`, Keras 3
//! `model.save("x.keras")`, Keras 3 legacy `model.save("x.h5")`, an h5py file
//! in the 2016 Keras layout, a torchvision state dict in safetensors and
//! through `torch.save`, zip and legacy), filled with the deterministic
//! weights, load to exactly `init::deterministic`; ONNX files from
//! `torch.onnx.export` and tf2onnx (BatchNorm folded by the exporter) to its
//! folded form.
//!
//! Needs the files: `.venv-golden/bin/python tools/weights/make_framework_files.py DIR`
//! then `RESNET50_FRAMEWORK_FILES=DIR cargo test --release --test weights_frameworks`.
//! Without the variable the test does nothing (CI has no TensorFlow or torch).

use std::path::PathBuf;

use resnet50::arch::conv_specs;
use resnet50::init::deterministic;
use resnet50::loaders::{self, names::Scheme, onnx::FOLDED_EPSILON, Format};
use resnet50::weights::fold_batch_norm;
use resnet50::Variant;

/// The directory of `RESNET50_FRAMEWORK_FILES`, or `None` (and a note) when unset.
fn framework_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RESNET50_FRAMEWORK_FILES").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("RESNET50_FRAMEWORK_FILES not set: skipping (see tools/weights/make_framework_files.py)");
    }
    dir
}

#[test]
fn framework_files_load_to_the_deterministic_weights() {
    let Some(dir) = framework_dir() else { return };
    let cases = [
        ("keras3_top.weights.h5", Format::Keras3, Variant::V1, Some(10), 1.001e-5),
        ("keras3_notop.weights.h5", Format::Keras3, Variant::V1, None, 1.001e-5),
        ("keras_full_top.h5", Format::KerasH5, Variant::V1, Some(10), 1.001e-5),
        ("keras3_top.keras", Format::Keras3, Variant::V1, Some(10), 1.001e-5),
        ("keras_old_notop.h5", Format::KerasH5Old, Variant::V1, None, 1e-3),
        ("torchvision_top.safetensors", Format::Safetensors(Scheme::Torchvision), Variant::V1_5, Some(10), 1e-5),
        ("torchvision_top.pth", Format::PyTorch(Scheme::Torchvision), Variant::V1_5, Some(10), 1e-5),
        ("torchvision_top_legacy.pth", Format::PyTorch(Scheme::Torchvision), Variant::V1_5, Some(10), 1e-5),
    ];
    for (file, format, variant, classes, eps) in cases {
        let p = dir.join(file);
        let l = loaders::load(&p).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(l.format, format, "{file}");
        assert_eq!(l.bn_epsilon, Some(eps), "{file}");
        assert_eq!(l.weights, deterministic(variant, classes), "{file}");
        // And through the native format.
        let native = dir.join(format!("{file}.r50w"));
        loaders::convert(&p, &native, Some(variant)).unwrap();
        assert!(matches!(loaders::open(&native).unwrap(), loaders::Opened::Native(_)));
        std::fs::remove_file(native).unwrap();
    }
}

/// `torch.onnx.export` (TorchScript and dynamo exporters) and tf2onnx (Keras)
/// fold each BatchNorm into its Conv in f32; the folded kernels and biases
/// read from the graph equal ours (folded in f64 from the same weights) to
/// f32 rounding, and the classifier exactly. The tf2onnx files need their own
/// venv (`tools/weights/make_tf2onnx_files.py`) and are checked when present.
#[test]
fn onnx_exports_load_to_the_folded_deterministic_weights() {
    let Some(dir) = framework_dir() else { return };
    let cases = [
        ("torchvision_top.onnx", Variant::V1_5, Some(10), 1e-5, true),
        ("torchvision_top_dynamo.onnx", Variant::V1_5, Some(10), 1e-5, true),
        ("torchvision_notop.onnx", Variant::V1_5, None, 1e-5, true),
        ("keras_tf2onnx.onnx", Variant::V1, Some(10), 1.001e-5, false),
        ("keras_tf2onnx_notop.onnx", Variant::V1, None, 1.001e-5, false),
    ];
    for (file, variant, classes, eps, required) in cases {
        let p = dir.join(file);
        if !required && !p.exists() {
            eprintln!("{file} not found: skipped (tools/weights/make_tf2onnx_files.py writes it)");
            continue;
        }
        let l = loaders::load(&p).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((l.format, l.bn_epsilon, l.weights.variant), (Format::Onnx, Some(FOLDED_EPSILON), variant));
        let det = deterministic(variant, classes);
        let mut worst = 0.0f32;
        for (i, s) in conv_specs(variant).iter().enumerate() {
            let (wk, wb) = fold_batch_norm(s, &det.convs[i], eps);
            let (gk, gb) = fold_batch_norm(s, &l.weights.convs[i], FOLDED_EPSILON);
            let scale = wk.iter().chain(&wb).fold(0.0f32, |m, v| m.max(v.abs()));
            for (g, w) in gk.iter().chain(&gb).zip(wk.iter().chain(&wb)) {
                worst = worst.max((g - w).abs() / scale);
            }
        }
        assert!(worst < 1e-6, "{file}: folded weights differ by {worst} of the layer's largest value");
        assert_eq!(l.weights.fc, det.fc, "{file}");
        eprintln!("{file}: largest difference of a folded weight {worst:.2e} of its layer's largest");
    }
}

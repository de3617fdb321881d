//! Writes small seed inputs for the fuzz targets (`fuzz/`) into
//! `<DIR>/<target>/` (default `fuzz/corpus`): structurally valid files with
//! ResNet50 names (tiny tensors), so the fuzzer starts inside the mapping layers
//! rather than at the magic bytes. Also shows the exporters of
//! `resnet50::loaders::export`.
//!
//!     cargo run --release --example fuzz_seeds [-- DIR]
//!
//! (It lives in the main crate, not in `fuzz/`, so that CI builds it with the
//! release dependencies the tests already compiled.)

use std::path::{Path, PathBuf};

use resnet50::loaders::export::{self, H5Layer, H5Layout, Tensor};
use resnet50::loaders::names::{self, Scheme};
use resnet50::loaders::native;

fn tiny(name: String) -> Tensor {
    Tensor { name, shape: vec![2], data: vec![0.5, -1.0], dtype: safetensors::Dtype::F32 }
}

fn save(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let root = root.as_path();
    for (i, scheme) in
        [Scheme::Torchvision, Scheme::HuggingFace, Scheme::Keras, Scheme::KerasOld].into_iter().enumerate()
    {
        let mut keys: Vec<String> = names::key_table(scheme).into_keys().collect();
        keys.sort();
        if scheme == Scheme::HuggingFace {
            keys =
                keys.into_iter().map(|k| if k.starts_with("classifier") { k } else { format!("resnet.{k}") }).collect();
        }
        let t: Vec<Tensor> = keys.into_iter().map(tiny).collect();
        save(root, "safetensors", &format!("seed{i}"), &export::safetensors_bytes(&t).unwrap());
        save(root, "safetensors", &format!("seed{i}-one"), &export::safetensors_bytes(&t[..3]).unwrap());
        if matches!(scheme, Scheme::Torchvision | Scheme::HuggingFace) {
            save(root, "archive", &format!("seed{i}"), &export::pytorch_bytes(&t).unwrap());
            save(root, "archive", &format!("seed{i}-one"), &export::pytorch_bytes(&t[..3]).unwrap());
            save(root, "pickle", &format!("seed{i}"), &export::pytorch_pickle(&t[..8]));
        }
    }
    // Checkpoints written by torch itself (views, dtypes, a wrapper dict, a module).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    for name in ["state_dict.pth", "wrapped.pth", "module.pth", "legacy.pth", "legacy_wrapped.pth"] {
        let bytes = std::fs::read(fixtures.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
        save(root, if name.starts_with("legacy") { "pickle" } else { "archive" }, name, &bytes);
    }
    for (i, (scheme, layout)) in [
        (Scheme::Keras, H5Layout::Keras),
        (Scheme::KerasOld, H5Layout::KerasOld),
        (Scheme::Keras3Keys, H5Layout::Keras3 { names: false }),
    ]
    .into_iter()
    .enumerate()
    {
        let mut layers: Vec<String> = names::layer_table(scheme).into_keys().collect();
        layers.sort();
        let old = scheme == Scheme::KerasOld;
        let k3 = matches!(layout, H5Layout::Keras3 { .. });
        let l: Vec<H5Layer> = layers
            .iter()
            .map(|n| {
                let w = |v: &str, k: usize| match (k3, old) {
                    (true, _) => k.to_string(),
                    (_, true) => format!("{n}_{v}:0"),
                    _ => format!("{n}/{v}:0"),
                };
                let weights = if n.contains("bn") || n.starts_with("batch") {
                    vec![
                        tiny(w("gamma", 0)),
                        tiny(w("beta", 1)),
                        tiny(w("moving_mean", 2)),
                        tiny(w("moving_variance", 3)),
                    ]
                } else {
                    vec![tiny(w("kernel", 0)), tiny(w("bias", 1))]
                };
                H5Layer { name: n.clone(), keras_name: n.clone(), weights }
            })
            .collect();
        save(root, "keras_h5", &format!("seed{i}"), &export::keras_h5_bytes(&l, layout, i == 1).unwrap());
        save(root, "keras_h5", &format!("seed{i}-few"), &export::keras_h5_bytes(&l[..4], layout, i != 1).unwrap());
        if k3 {
            let h5 = export::keras_h5_bytes(&l[..4], layout, false).unwrap();
            save(root, "archive", "keras3-few.keras", &export::keras_archive_bytes(&h5).unwrap());
        }
    }
    // ONNX: ResNet50's whole graph with every initializer's dims but no data
    // (full tensors would make a 100 MB seed), so the fuzzer starts inside
    // the graph walk; BatchNorm kept (v1, with the top) and folded (v1.5).
    for (variant, fold) in [(resnet50::Variant::V1, false), (resnet50::Variant::V1_5, true)] {
        let w = resnet50::init::keras_random(variant, fold.then_some(3), 0);
        let mut model = export::onnx_model(&w, 1e-5, fold);
        model.initializers.iter_mut().for_each(|t| t.data.clear());
        let bytes = model.to_bytes();
        assert!(bytes.len() < 65_536, "ONNX seed of {} bytes is over the fuzzers' -max_len", bytes.len());
        save(root, "onnx", &format!("graph-{variant}{}", if fold { "-folded" } else { "" }), &bytes);
    }
    // Native: a header + table image (the data region is too large for a seed).
    let w = resnet50::init::keras_random(resnet50::Variant::V1, Some(2), 1);
    let full = native::to_bytes(&w, 1e-5).unwrap();
    let head = 64 + 55 * 64;
    for t in ["native", "native_checksummed"] {
        save(root, t, "seed-header", &full[..head]);
        save(root, t, "seed-header-data", &full[..head + 4096]);
    }
    // npy: a small array and a scalar.
    let npy_dir = root.join("npy");
    std::fs::create_dir_all(&npy_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", npy_dir.display()));
    for (name, shape, data) in
        [("seed-2x3", &[2usize, 3][..], &[1.0f32, -2.0, 0.5, 3.0, 4.0, 5.0][..]), ("seed-0d", &[], &[7.0])]
    {
        let path = npy_dir.join(name);
        resnet50::npy::write_f32(&path, shape, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    // image: one small picture in each format the decoder reads (the fuzz
    // target takes the first byte for its output sizes).
    let picture = image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 50, 128]));
    for format in [
        image::ImageFormat::Png,
        image::ImageFormat::Jpeg,
        image::ImageFormat::Gif,
        image::ImageFormat::Bmp,
        image::ImageFormat::Pnm,
        image::ImageFormat::Tga,
        image::ImageFormat::Ico,
        image::ImageFormat::WebP,
    ] {
        let mut encoded = Vec::new();
        picture
            .write_to(&mut std::io::Cursor::new(&mut encoded), format)
            .unwrap_or_else(|e| panic!("cannot encode {format:?}: {e}"));
        let bytes = [&[0x35u8][..], &encoded].concat();
        save(root, "image", &format!("seed.{}", format.extensions_str()[0]), &bytes);
    }
    println!("seeds written under {}", root.display());
}

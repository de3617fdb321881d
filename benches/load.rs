//! Start-up cost: opening a native weights file (map + validate + checksum)
//! and building a model from it, against importing a framework file.
//!
//! `cargo bench --bench load`

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use resnet50::init::deterministic;
use resnet50::loaders::{self, export, names::Scheme};
use resnet50::{ResNet50, Variant, WeightsSource};

fn files() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("resnet50-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let w = deterministic(Variant::V1, Some(1000));
    let st = dir.join("keras.safetensors");
    std::fs::write(&st, export::safetensors_bytes(&export::safetensors_tensors(&w, Scheme::Keras)).unwrap()).unwrap();
    let native = dir.join("resnet50.r50w");
    loaders::convert(&st, &native, Some(Variant::V1)).unwrap();
    (st, native)
}

fn bench(c: &mut Criterion) {
    let (st, native) = files();
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("native_open_and_build_224", |b| {
        b.iter(|| ResNet50::new().weights(WeightsSource::File(native.clone())).build().unwrap())
    });
    g.bench_function("native_open_only", |b| b.iter(|| loaders::native::open(&native).unwrap()));
    g.bench_function("safetensors_import_prepare_build_224", |b| {
        b.iter(|| ResNet50::new().weights(WeightsSource::File(st.clone())).build().unwrap())
    });
    g.finish();
    let _ = std::fs::remove_dir_all(st.parent().unwrap());
}

criterion_group!(benches, bench);
criterion_main!(benches);

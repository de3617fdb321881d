//! The whole network against outputs of the real frameworks (TensorFlow-Keras
//! for v1, torchvision for v1.5), on deterministic weights and inputs that
//! `resnet50::init` regenerates bit-for-bit. Fixtures: `tools/golden/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use resnet50::{init, ClassifierActivation, Pooling, ResNet50, Variant, WeightsSource};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Case {
    name: String,
    variant: Variant,
    batch: usize,
    height: usize,
    width: usize,
    include_top: bool,
    pooling: Pooling,
    classes: usize,
    activation: ClassifierActivation,
    shape: Vec<usize>,
    expected: Vec<f32>,
}

fn str_field<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str)).unwrap_or_else(|| panic!("no {keys:?} in {v}"))
}
fn num_field(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("no {key} in {v}")) as usize
}

fn cases() -> Vec<Case> {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("golden.json")).expect("tests/fixtures/golden.json"),
    )
    .expect("valid JSON");
    let list = manifest.get("cases").unwrap_or(&manifest).as_array().expect("a list of cases").clone();
    list.iter()
        .map(|c| {
            let file = str_field(c, &["output_file", "output", "file"]);
            let (shape, expected) = resnet50::npy::read_f32(&fixtures().join(file)).unwrap();
            Case {
                name: str_field(c, &["name"]).to_string(),
                variant: str_field(c, &["variant"]).parse().unwrap(),
                batch: num_field(c, "batch"),
                height: num_field(c, "height"),
                width: num_field(c, "width"),
                include_top: c["include_top"].as_bool().unwrap(),
                pooling: str_field(c, &["pooling"]).parse().unwrap(),
                classes: num_field(c, "classes"),
                activation: str_field(c, &["classifier_activation"]).parse().unwrap(),
                shape,
                expected,
            }
        })
        .collect()
}

/// max |y − ref| ≤ 1e-3·max |ref|, cosine ≥ 0.99999 per row, same top-5 where separated.
fn assert_close(name: &str, rows: usize, y: &[f32], r: &[f32]) {
    assert_eq!(y.len(), r.len(), "{name}: output length");
    let max_ref = r.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max_err = y.iter().zip(r).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(max_err <= 1e-3 * max_ref, "{name}: max |Δ| {max_err:e} > 1e-3 · {max_ref:e}");
    let cols = r.len() / rows;
    for (row, (yr, rr)) in y.chunks(cols).zip(r.chunks(cols)).enumerate() {
        let dot: f64 = yr.iter().zip(rr).map(|(a, b)| *a as f64 * *b as f64).sum();
        let ny: f64 = yr.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nr: f64 = rr.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (ny * nr);
        assert!(cos >= 0.99999, "{name} row {row}: cosine {cos}");
        // Top-5 by the reference, compared where the reference's gaps exceed the error bound.
        let mut idx: Vec<usize> = (0..cols).collect();
        idx.sort_by(|&a, &b| rr[b].total_cmp(&rr[a]));
        let mut yidx = idx.clone();
        yidx.sort_by(|&a, &b| yr[b].total_cmp(&yr[a]));
        for k in 0..5.min(cols) {
            let gap_ok = k + 1 < cols && rr[idx[k]] - rr[idx[k + 1]] > 2e-3 * max_ref;
            let prev_ok = k == 0 || rr[idx[k - 1]] - rr[idx[k]] > 2e-3 * max_ref;
            if gap_ok && prev_ok {
                assert_eq!(yidx[k], idx[k], "{name} row {row}: rank {k} differs");
            }
        }
    }
}

fn run_case(c: &Case, reference: bool) -> Vec<f32> {
    let weights = Arc::new(init::deterministic(c.variant, c.include_top.then_some(c.classes)));
    ResNet50::new()
        .variant(c.variant)
        .weights(WeightsSource::Canonical(weights))
        .include_top(c.include_top)
        .pooling(c.pooling)
        .classes(c.classes)
        .classifier_activation(c.activation)
        .input_shape(c.height, c.width, 3)
        .batch(c.batch)
        .threads(2)
        .reference_kernels(reference)
        .build()
        .unwrap()
        .predict(&init::deterministic_input(c.batch, c.height, c.width))
        .unwrap()
}

#[test]
fn every_fixture_matches_with_the_fast_kernels() {
    let cases = cases();
    assert!(cases.len() >= 7, "expected at least 7 golden cases, found {}", cases.len());
    assert!(cases.iter().any(|c| c.variant == Variant::V1) && cases.iter().any(|c| c.variant == Variant::V1_5));
    for c in &cases {
        let y = run_case(c, false);
        assert_eq!(c.shape.iter().product::<usize>(), y.len(), "{}: shape {:?}", c.name, c.shape);
        assert_close(&c.name, c.batch, &y, &c.expected);
    }
}

#[test]
fn the_scalar_reference_matches_too() {
    // The oracle itself against the frameworks, on the cheapest case of each variant.
    for variant in [Variant::V1, Variant::V1_5] {
        let c = cases()
            .into_iter()
            .filter(|c| c.variant == variant)
            .min_by_key(|c| c.batch * c.height * c.width)
            .expect("a case per variant");
        assert_close(&c.name, c.batch, &run_case(&c, true), &c.expected);
    }
}

//! The fast kernels give the reference executor's answer on whole networks,
//! on every ISA this CPU runs and with several threads.

use std::sync::Arc;

use resnet50::{init, Isa, Pooling, ResNet50, Variant, WeightsSource};

fn compare(variant: Variant, h: usize, w: usize, batch: usize) {
    let weights = Arc::new(init::deterministic(variant, Some(10)));
    let base = ResNet50::new()
        .variant(variant)
        .weights(WeightsSource::Canonical(weights))
        .include_top(false)
        .pooling(Pooling::None)
        .input_shape(h, w, 3)
        .batch(batch);
    let x = init::deterministic_input(batch, h, w);
    let reference = base.clone().reference_kernels(true).build().unwrap().predict(&x).unwrap();
    let max_ref = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_ref > 0.0);
    for isa in Isa::under_test() {
        for threads in [1, 2, 3] {
            let y = base.clone().isa(isa).threads(threads).build().unwrap().predict(&x).unwrap();
            let max_err = y.iter().zip(&reference).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                max_err <= 1e-3 * max_ref,
                "{variant} {h}x{w} isa {isa} threads {threads}: max |Δ| {max_err} vs max |ref| {max_ref}"
            );
        }
    }
}

#[test]
fn v1_fast_matches_reference() {
    compare(Variant::V1, 67, 45, 2);
}

#[test]
fn v1_5_fast_matches_reference() {
    compare(Variant::V1_5, 64, 71, 1);
}

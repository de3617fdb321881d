//! The fast kernels give the reference executor's answer on whole networks,
//! on every ISA this CPU runs and with several threads.

use std::sync::Arc;

use resnet50::{init, Isa, Pooling, ResNet50, Variant, WeightsSource};

/// `base` with the scalar reference kernels on `x`: the output, whose largest
/// magnitude must be positive.
fn reference_output(base: &ResNet50, x: &[f32]) -> Vec<f32> {
    let reference = base.clone().reference_kernels(true).build().unwrap().predict(x).unwrap();
    assert!(reference.iter().fold(0.0f32, |m, v| m.max(v.abs())) > 0.0);
    reference
}

/// Every value of `y` within 1e-3 × (the reference's largest magnitude) of its reference value.
fn assert_matches_reference(y: &[f32], reference: &[f32], what: &str) {
    let max_ref = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max_err = y.iter().zip(reference).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(max_err <= 1e-3 * max_ref, "{what}: max |Δ| {max_err} vs max |ref| {max_ref}");
}

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
    let reference = reference_output(&base, &x);
    for isa in Isa::under_test() {
        for threads in [1, 2, 3] {
            let y = base.clone().isa(isa).threads(threads).build().unwrap().predict(&x).unwrap();
            assert_matches_reference(&y, &reference, &format!("{variant} {h}x{w} isa {isa} threads {threads}"));
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

/// The stride-2 3×3 layers' algorithm follows the CPU the model runs on
/// (`ConvParams::best_algo_for_cpu`): on AVX-512 with two full-width FMA pipes
/// v1.5's 56×56×128 3×3/2 takes F(2×2)/2, elsewhere (AVX2 on any CPU, AVX-512
/// at half rate) the cost model's F(4×4)/2 — and both give the reference's
/// answer on the same layer shapes (a 224×224 image, no classifier).
#[test]
fn stride_2_winograd_tile_follows_the_fma_width() {
    use resnet50::plan::Op;
    use resnet50_kernels::{gemm::peak::avx512_full_width, ConvAlgo, WinogradTile};
    let weights = Arc::new(init::deterministic(Variant::V1_5, Some(3)));
    let base = ResNet50::new()
        .variant(Variant::V1_5)
        .weights(WeightsSource::Canonical(weights))
        .include_top(false)
        .pooling(Pooling::Avg);
    let x = init::deterministic_input(1, 224, 224);
    let reference = reference_output(&base, &x);
    for isa in Isa::under_test().into_iter().filter(|&i| i != Isa::Scalar) {
        let model = base.clone().isa(isa).build().unwrap();
        let algo = model
            .plan()
            .steps
            .iter()
            .find_map(|s| match &s.op {
                Op::Conv { kernel, .. } if s.name == "conv3_block1_2" => Some(kernel.algo),
                _ => None,
            })
            .expect("v1.5 has conv3_block1_2");
        let full = isa == Isa::Avx512 && avx512_full_width();
        let want = if full { WinogradTile::F2x2S2 } else { WinogradTile::F4x4S2 };
        assert_eq!(algo, ConvAlgo::Winograd(want), "isa {isa}, full-width AVX-512 {full}");
        assert_matches_reference(&model.predict(&x).unwrap(), &reference, &format!("isa {isa}"));
    }
}

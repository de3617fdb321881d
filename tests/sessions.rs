//! Model/Session as other crates use them: shared across threads, reshaped,
//! and as a backbone returning feature maps.

use std::sync::Arc;

use resnet50::{init, ClassifierActivation, Pooling, ResNet50, Variant, WeightsSource};

/// Asserts `want` is not all zeros and `max |got − want| <= rel · max |want|`.
fn assert_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(max > 0.0 && err <= rel * max, "{what}: max |Δ| {err} vs max {max}");
}

#[test]
fn many_threads_one_model_same_answers() {
    let model = ResNet50::new().input_shape(48, 56, 3).classes(7).build().unwrap();
    let x = init::deterministic_input(1, 48, 56);
    let expected = model.session().unwrap().predict(&x).unwrap().to_vec();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let model = model.clone();
            let x = x.clone();
            std::thread::spawn(move || {
                let mut s = model.session().unwrap();
                (0..5).map(|_| s.predict(&x).unwrap().to_vec()).inspect(|_| assert!(t < 4)).collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for y in h.join().unwrap() {
            assert_eq!(y, expected);
        }
    }
}

#[test]
fn reshape_shares_weights_and_replans() {
    let model = ResNet50::new().include_top(false).pooling(Pooling::Avg).input_shape(32, 32, 3).build().unwrap();
    let big = model.reshape(3, 64, 40).unwrap();
    assert_eq!(big.input_shape(), [3, 64, 40, 3]);
    assert_eq!(big.output_shape(), &[3, 2048]);
    let x = init::deterministic_input(3, 64, 40);
    let y = big.predict(&x).unwrap();
    // Image 1 alone through a batch-1 model gives the same row.
    let one = model.reshape(1, 64, 40).unwrap();
    let y1 = one.predict(&x[64 * 40 * 3..2 * 64 * 40 * 3]).unwrap();
    for (a, b) in y[2048..4096].iter().zip(&y1) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert!(model.reshape(1, 8, 8).is_err());
}

#[test]
fn with_threads_shares_weights_and_gives_the_same_answers() {
    let model = ResNet50::new().input_shape(48, 40, 3).classes(5).build().unwrap();
    let x = init::deterministic_input(1, 48, 40);
    let one = model.predict(&x).unwrap();
    for threads in [2, 3] {
        let m = model.with_threads(threads).unwrap();
        assert_eq!(m.config().threads, threads);
        assert_eq!(m.weights_bytes(), model.weights_bytes());
        // The fast kernels never split a reduction across threads: bit-identical.
        assert_eq!(m.predict(&x).unwrap(), one, "{threads} threads");
    }
    assert!(model.with_threads(0).is_err());
}

#[test]
fn backbone_feature_maps_match_the_reference() {
    let w = Arc::new(init::deterministic(Variant::V1_5, None));
    let build = |reference: bool| {
        ResNet50::new()
            .variant(Variant::V1_5)
            .weights(WeightsSource::Canonical(w.clone()))
            .include_top(false)
            .input_shape(64, 96, 3)
            .batch(2)
            .feature_maps(true)
            .reference_kernels(reference)
            .build()
            .unwrap()
    };
    let x = init::deterministic_input(2, 64, 96);
    let (fast, reference) = (build(false), build(true));
    let (mut sf, mut sr) = (fast.session().unwrap(), reference.session().unwrap());
    let out = sf.predict(&x).unwrap().to_vec();
    sr.predict(&x).unwrap();
    let (f, r) = (sf.features().unwrap(), sr.features().unwrap());
    let shapes: Vec<[usize; 4]> = f.stages.iter().map(|s| s.1).collect();
    assert_eq!(shapes, vec![[2, 16, 24, 256], [2, 8, 12, 512], [2, 4, 6, 1024], [2, 2, 3, 2048]]);
    for ((a, _), (b, _)) in f.stages.iter().zip(&r.stages) {
        assert_close(a, b, 1e-3, "feature map");
    }
    // C5 is the model output; the embedding is its spatial mean.
    assert_eq!(f.stages[3].0, &out[..]);
    for n in 0..2 {
        for c in [0, 77, 2047] {
            let mean: f32 = (0..6).map(|p| out[(n * 6 + p) * 2048 + c]).sum::<f32>() / 6.0;
            assert!((f.embedding[n * 2048 + c] - mean).abs() <= 1e-5 * (1.0 + mean.abs()));
        }
    }
    let plain = ResNet50::new().input_shape(32, 32, 3).build().unwrap();
    assert!(plain.session().unwrap().features().is_none());
}

#[test]
fn a_rejected_input_leaves_a_threaded_session_as_it_was() {
    // The input is written and checked inside the thread team (one thread or
    // two): a non-finite value must still fail the call before any layer
    // runs, leave the session's thread count alone, and not wedge the team
    // for the next call.
    for threads in [1, 2] {
        let model =
            ResNet50::new().input_shape(32, 32, 3).classes(3).threads(threads).adaptive_threads(false).build().unwrap();
        let mut s = model.session().unwrap();
        let x = init::deterministic_input(1, 32, 32);
        let want = s.predict(&x).unwrap().to_vec();
        assert_eq!(s.last_threads(), threads);
        let mut bad = x.clone();
        bad[100] = f32::INFINITY;
        let err = s.predict(&bad).unwrap_err().to_string();
        assert!(err.contains("input[100] is not finite (inf)"), "{err}");
        assert_eq!(s.last_threads(), threads);
        let zeros = vec![0.0; x.len()];
        let other = s.predict(&zeros).unwrap().to_vec();
        assert_ne!(other, want, "threads {threads}: a second input must give another answer");
        let err = s.predict(&bad).unwrap_err().to_string();
        assert!(err.contains("not finite"), "{err}");
        assert_eq!(s.predict(&x).unwrap(), &want[..], "threads {threads}");
    }
}

#[test]
fn non_finite_inputs_can_pass_through() {
    let model = ResNet50::new().input_shape(32, 32, 3).classes(2).reject_non_finite(false).build().unwrap();
    let mut x = vec![0.1; 32 * 32 * 3];
    x[0] = f32::NAN;
    assert!(model.predict(&x).is_ok());
}

#[test]
fn a_batch_run_image_by_image_gives_each_image_its_own_answer() {
    // Five 128×128 images: the stem and stages 2–3 run image by image
    // (Plan::per_image), the rest batched. Each image's output must be what a
    // batch of one gives it, so no image's pass overwrote another's data.
    for variant in [Variant::V1, Variant::V1_5] {
        let w = Arc::new(init::deterministic(variant, Some(10)));
        let build = |batch: usize| {
            ResNet50::new()
                .variant(variant)
                .weights(WeightsSource::Canonical(w.clone()))
                .classes(10)
                .classifier_activation(ClassifierActivation::None)
                .input_shape(128, 128, 3)
                .batch(batch)
                .threads(2)
                .build()
                .unwrap()
        };
        let (five, one) = (build(5), build(1));
        assert!(five.plan().per_image > 0 && one.plan().per_image == 0);
        // The stem runs with its max-pool fused, image by image and batched.
        assert!(five.plan().fused_pool(0).is_some() && one.plan().fused_pool(0).is_some());
        let x = init::deterministic_input(5, 128, 128);
        let y = five.predict(&x).unwrap();
        let per = x.len() / 5;
        let mut session = one.session().unwrap();
        for i in 0..5 {
            let alone = session.predict(&x[i * per..(i + 1) * per]).unwrap();
            assert_close(&y[i * 10..(i + 1) * 10], alone, 1e-5, &format!("{variant} image {i}"));
        }
    }
}

#[test]
fn feature_maps_of_a_batch_run_image_by_image() {
    // C2 and C3 are written image by image into batch-wide buffers that
    // must survive every other image's pass.
    let w = Arc::new(init::deterministic(Variant::V1_5, None));
    let build = |batch: usize| {
        ResNet50::new()
            .variant(Variant::V1_5)
            .weights(WeightsSource::Canonical(w.clone()))
            .include_top(false)
            .input_shape(128, 128, 3)
            .batch(batch)
            .feature_maps(true)
            .threads(2)
            .build()
            .unwrap()
    };
    let (five, one) = (build(5), build(1));
    assert!(five.plan().per_image > 0);
    let x = init::deterministic_input(5, 128, 128);
    let per = x.len() / 5;
    let mut s5 = five.session().unwrap();
    s5.predict(&x).unwrap();
    let f5 = s5.features().unwrap();
    let mut s1 = one.session().unwrap();
    for i in 0..5 {
        s1.predict(&x[i * per..(i + 1) * per]).unwrap();
        let f1 = s1.features().unwrap();
        for (stage, ((a, sa), (b, sb))) in f5.stages.iter().zip(&f1.stages).enumerate() {
            assert_eq!((sa[0], sb[0]), (5, 1));
            let len = b.len();
            let a = &a[i * len..(i + 1) * len];
            assert_close(a, b, 1e-5, &format!("image {i} C{}", stage + 2));
        }
    }
}

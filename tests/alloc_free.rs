//! `Session::predict` performs no heap allocation once the session exists.

use resnet50::{Pooling, ResNet50, Variant};
use resnet50_kernels::alloc_count::CountingAllocator;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

fn allocations_during(f: impl FnOnce()) -> usize {
    GLOBAL.during(f)
}

fn check(builder: ResNet50) {
    let model = builder.build().unwrap();
    let mut session = model.session().unwrap();
    let input =
        resnet50::init::deterministic_input(model.input_shape()[0], model.input_shape()[1], model.input_shape()[2]);
    let mut out = vec![0.0; model.output_len()];
    // First run warms up lazily-initialised runtime state (thread pool workers).
    session.predict(&input).unwrap();
    let n = allocations_during(|| {
        for _ in 0..3 {
            session.predict(&input).unwrap();
            session.predict_into(&input, &mut out).unwrap();
        }
    });
    assert_eq!(n, 0, "predict allocated {n} times ({:?})", model.config());
    assert!(out.iter().all(|v| v.is_finite()));
}

// One test function: the counter is global, so concurrent tests would disturb it.
#[test]
fn predict_allocates_nothing() {
    check(ResNet50::new().input_shape(64, 64, 3).classes(10));
    check(
        ResNet50::new().variant(Variant::V1_5).include_top(false).pooling(Pooling::Max).input_shape(48, 40, 3).batch(2),
    );
    check(ResNet50::new().input_shape(64, 64, 3).reference_kernels(true));
    check(ResNet50::new().input_shape(64, 64, 3).threads(2));
    // A batch whose first stages run image by image (Plan::per_image).
    let batch = ResNet50::new().input_shape(128, 128, 3).batch(5).threads(2);
    assert!(batch.clone().build().unwrap().plan().per_image > 0);
    check(batch);
}

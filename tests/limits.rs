//! Resource limits: absurd sizes or batches fail fast, before anything large
//! is allocated, with an error stating the memory they would need.

use std::time::{Duration, Instant};

use resnet50::{Config, Error, Pooling, ResNet50};

/// `Config::min_arena_bytes` written out: f32 bytes of max(input + stem
/// output, 256 + 64 + 64 channels at a quarter of the side).
fn bound(n: usize, h: usize, w: usize) -> usize {
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let (h4, w4) = (h2.div_ceil(2), w2.div_ceil(2));
    4 * n * (h * w * 3 + h2 * w2 * 64).max(h4 * w4 * 384)
}

/// Builds and returns the error and how long the refusal took.
fn refuse(b: ResNet50) -> (Error, Duration) {
    let t = Instant::now();
    match b.build() {
        Ok(m) => panic!("expected an error, built {:?}", m.config()),
        Err(e) => (e, t.elapsed()),
    }
}

#[test]
fn absurd_input_side_is_a_resource_limit_with_the_bytes() {
    let (e, took) = refuse(ResNet50::new().include_top(false).input_shape(100_000, 100_000, 3));
    let needed = bound(1, 100_000, 100_000);
    assert_eq!(needed, 4 * 25_000 * 25_000 * 384);
    match &e {
        Error::ResourceLimit { what, needed_bytes, lower_bound, limit_bytes } => {
            assert_eq!(what, "input 100000x100000x3, batch 1");
            assert_eq!(*needed_bytes, Some(needed));
            assert!(*lower_bound);
            assert_eq!(*limit_bytes, 16 << 30);
        }
        other => panic!("expected ResourceLimit, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("({needed} bytes)")), "{msg}");
    assert!(msg.contains("894.07 GiB"), "{msg}");
    assert!(msg.contains("the limit is 16 GiB (17179869184 bytes) (ResNet50::memory_limit)"), "{msg}");
    // No weights were loaded, nothing planned or allocated.
    assert!(took < Duration::from_millis(50), "took {took:?}");
}

#[test]
fn huge_batch_and_overflowing_sizes() {
    let (e, took) = refuse(ResNet50::new().batch(1 << 40));
    let Error::ResourceLimit { needed_bytes: Some(b), .. } = e else { panic!("{e:?}") };
    // 56*56*384 floats per image at 224x224.
    assert_eq!(b, (1usize << 40) * 56 * 56 * 384 * 4);
    assert_eq!(b, bound(1 << 40, 224, 224));
    assert!(took < Duration::from_millis(50), "took {took:?}");

    // Products past usize::MAX are reported as such, not wrapped.
    for b in [
        ResNet50::new().input_shape(usize::MAX, usize::MAX, 3),
        ResNet50::new().input_shape(1 << 20, 1 << 20, 3).batch(usize::MAX),
    ] {
        let (e, _) = refuse(b);
        assert!(matches!(e, Error::ResourceLimit { needed_bytes: None, .. }), "{e:?}");
        assert!(e.to_string().contains("would need more than usize::MAX bytes of activation memory"), "{e}");
    }
    // Even without a memory limit, an overflowing request is a typed error.
    let (e, _) = refuse(ResNet50::new().input_shape(usize::MAX, 64, 3).memory_limit(None));
    assert!(e.to_string().contains("more than usize::MAX bytes"), "{e}");
}

#[test]
fn side_and_batch_caps_state_the_memory() {
    // No memory limit: the fixed caps refuse, and say what it would cost.
    let (e, _) = refuse(ResNet50::new().input_shape(20_000, 32, 3).memory_limit(None));
    let msg = e.to_string();
    assert!(matches!(e, Error::Config(_)));
    assert!(msg.contains("20000x32 exceeds the limit of 16384 per side"), "{msg}");
    let needed = bound(1, 20_000, 32);
    assert!(msg.contains(&format!("at least {}", resnet50::error::human_bytes(needed))), "{msg}");
    assert!(msg.contains("58.59 MiB (61440000 bytes)"), "{msg}");

    let (e, _) = refuse(ResNet50::new().input_shape(32, 32, 3).batch(5000).memory_limit(None));
    let msg = e.to_string();
    assert!(msg.contains("batch must be in 1..=4096") && msg.contains("got 5000"), "{msg}");
    assert!(msg.contains(&format!("({} bytes)", bound(5000, 32, 32))), "{msg}");
}

#[test]
fn the_planned_arena_is_checked_too() {
    let base = ResNet50::new().include_top(false).pooling(Pooling::Avg).input_shape(64, 64, 3);
    let arena = base.clone().memory_limit(None).build().unwrap().arena_bytes();
    let bound = base.config().min_arena_bytes().unwrap();
    assert!(bound < arena, "{bound} vs {arena}");
    // Between the lower bound and the planned arena: refused after planning, with the exact figure.
    let (e, _) = refuse(base.clone().memory_limit(Some(arena - 1)));
    match &e {
        Error::ResourceLimit { needed_bytes, lower_bound, limit_bytes, .. } => {
            assert_eq!(*needed_bytes, Some(arena));
            assert!(!*lower_bound);
            assert_eq!(*limit_bytes, arena - 1);
        }
        other => panic!("expected ResourceLimit, got {other:?}"),
    }
    assert!(e.to_string().contains(&format!("would need {}", resnet50::error::human_bytes(arena))), "{e}");
    // At the limit it builds, and runs.
    let model = base.memory_limit(Some(arena)).build().unwrap();
    assert_eq!(model.predict(&vec![0.1; 64 * 64 * 3]).unwrap().len(), 2048);
    // reshape checks the same limit.
    let e = model.reshape(2, 64, 64).unwrap_err();
    assert!(matches!(e, Error::ResourceLimit { .. }), "{e:?}");
    assert!(model.reshape(1, 48, 48).is_ok());
}

#[test]
fn the_lower_bound_never_exceeds_the_plan() {
    for (h, w, n, top) in [(32, 32, 1, true), (33, 47, 2, false), (224, 224, 1, true), (97, 131, 3, false)] {
        let config = Config { height: h, width: w, batch: n, include_top: top, ..Config::default() };
        let min = config.min_arena_bytes().unwrap();
        assert_eq!(min, bound(n, h, w));
        let arena = ResNet50::from_config(config).build().unwrap().arena_bytes();
        assert!(min <= arena && arena < 4 * min, "{h}x{w} batch {n}: {min} vs {arena}");
    }
}

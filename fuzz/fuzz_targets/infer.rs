//! The public inference API on arbitrary configurations and inputs: `Err`,
//! never a panic. From the bytes: a configuration (variant, include_top,
//! pooling, classes 1..=16, feature maps, reject_non_finite, batch 1..=2, input
//! sides mostly 32..=48 but sometimes 1..=31, 0, 16385, 100000, 2^32,
//! usize::MAX…, and an occasional memory limit), then an input buffer of
//! mostly the right length and any content (NaN and ±∞ included) for predict,
//! predict_into, features and reshape. An all-zero input is a valid v1 model
//! at 32×32, so every run from the empty input on reaches the kernels.
//!
//! Building a model prepares ~25 M weights (~0.3 s), so valid configurations
//! share a few cached models built at 32×32 batch 1 and get their shape by
//! `Model::reshape` (which re-plans and re-checks limits); invalid ones go
//! through `build` itself, which refuses them before loading any weights.
#![no_main]
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use resnet50::{Config, Model, Pooling, ResNet50, Variant, WeightsSource};

/// Reads the fuzz input front to back; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Mostly valid sides (32..=48; a zero byte, what the fuzzer starts from,
/// included), sometimes too small, sometimes absurd.
fn side(b: u8) -> usize {
    match b {
        0..=199 => 32 + b as usize % 17,
        200..=239 => 1 + b as usize % 31,
        240 => 0,
        241 => 16384,
        242 => 16385,
        243 => 100_000,
        244 => 1 << 32,
        245 => usize::MAX / 3,
        246 => usize::MAX,
        _ => 32 + (b as usize % 17),
    }
}

fn batch(b: u8) -> usize {
    match b {
        250 => 0,
        251 => 4097,
        252 => 1 << 40,
        253 => usize::MAX,
        _ => 1 + usize::from(b % 4 == 3),
    }
}

/// What the cached models differ in (everything but batch and input size).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    variant: Variant,
    include_top: bool,
    pooling: Pooling,
    classes: usize,
    feature_maps: bool,
    reject_non_finite: bool,
}

impl Key {
    /// The configuration of this key at `batch` × `h` × `w` (seeded random weights).
    fn config(self, batch: usize, height: usize, width: usize, memory_limit: Option<usize>) -> Config {
        Config {
            variant: self.variant,
            include_top: self.include_top,
            pooling: self.pooling,
            classes: self.classes,
            feature_maps: self.feature_maps,
            reject_non_finite: self.reject_non_finite,
            batch,
            height,
            width,
            memory_limit,
            weights: WeightsSource::Random { seed: 7 },
            ..Config::default()
        }
    }
}

/// Up to 8 prepared models (~110 MB each) stay in memory.
const CACHED: usize = 8;
static MODELS: Mutex<Vec<(Key, Model)>> = Mutex::new(Vec::new());

/// A model for `key` at 32×32 batch 1, built once (least recently used out).
fn model(key: Key) -> Model {
    let mut cache = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = cache.iter().position(|(k, _)| *k == key) {
        let entry = cache.remove(i);
        cache.push(entry);
    } else {
        let config = key.config(1, 32, 32, Some(resnet50::config::DEFAULT_MEMORY_LIMIT));
        let built = ResNet50::from_config(config).build().expect("a valid 32x32 configuration builds");
        if cache.len() == CACHED {
            cache.remove(0);
        }
        cache.push((key, built));
    }
    cache.last().expect("just pushed").1.clone()
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let flags = b.u8();
    let include_top = flags & 2 != 0;
    let key = Key {
        variant: if flags & 1 == 0 { Variant::V1 } else { Variant::V1_5 },
        include_top,
        // Keras ignores pooling with the top and classes without it: keep
        // them fixed there so fewer distinct models are needed.
        pooling: if include_top {
            Pooling::None
        } else {
            [Pooling::None, Pooling::Avg, Pooling::Max][(flags as usize >> 2) % 3]
        },
        classes: if include_top { 1 + (b.u8() as usize % 16) } else { 1000 },
        feature_maps: flags & 16 != 0,
        reject_non_finite: flags & 32 == 0,
    };
    let (n, h, w) = (batch(b.u8()), side(b.u8()), side(b.u8()));
    let limit = match b.u8() {
        251 => None,
        252 => Some(0),
        253 => Some(1 << 20),
        254 => Some(usize::MAX),
        _ => Some(resnet50::config::DEFAULT_MEMORY_LIMIT),
    };
    let input_mode = b.u8();
    let out_mode = b.u8();

    let config = key.config(n, h, w, limit);
    let _ = config.min_arena_bytes();
    if config.validate().is_err() {
        // Refused before any weights are made: cheap, and build agrees.
        assert!(ResNet50::from_config(config).build().is_err());
        return;
    }
    // (A valid shape under a non-default limit is checked by validate's lower
    // bound above; checking the planned arena would cost a build per limit,
    // so the cached models keep the default limit.)
    let base = model(key);
    let model = match base.reshape(n, h, w) {
        Ok(m) => m,
        Err(_) => return,
    };
    assert_eq!(model.input_shape(), [n, h, w, 3]);
    let Ok(mut session) = model.session() else { return };

    // The input: the rest of the bytes as little-endian f32 (any bit pattern),
    // used as is, or cycled/cut to the expected length (±1 sometimes).
    let floats: Vec<f32> =
        b.0.chunks(4)
            .map(|c| {
                let mut le = [0u8; 4];
                le[..c.len()].copy_from_slice(c);
                f32::from_le_bytes(le)
            })
            .collect();
    let want = model.input_len();
    // Mostly the right length, so most runs get through to the kernels.
    let len = match input_mode % 8 {
        5 => floats.len(),
        6 => want.saturating_sub(1),
        7 => want + 1,
        _ => want,
    };
    let input: Vec<f32> =
        if floats.is_empty() { vec![0.5; len] } else { floats.iter().copied().cycle().take(len).collect() };

    let ok = session.predict(&input).map(|y| y.len()).ok();
    if let Some(got) = ok {
        assert_eq!(got, model.output_len());
        assert_eq!(input.len(), want);
    }
    let out_len = match out_mode % 3 {
        0 => model.output_len(),
        1 => model.output_len() + 1,
        _ => model.output_len().saturating_sub(1),
    };
    let mut out = vec![0.0f32; out_len];
    let r = session.predict_into(&input, &mut out);
    if out_len != model.output_len() {
        assert!(r.is_err());
    }
    match session.features() {
        Some(f) => {
            assert!(key.feature_maps);
            for (data, shape) in f.stages {
                assert_eq!(data.len(), shape.iter().product::<usize>());
                assert_eq!(shape[0], n);
            }
            assert_eq!(f.embedding.len(), n * 2048);
        }
        None => assert!(!key.feature_maps),
    }
    // Reshape back and forth from the fuzzed model.
    let _ = model.reshape(batch(input_mode), side(out_mode), side(flags));
});

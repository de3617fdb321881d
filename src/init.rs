//! Weights that need no file: Keras-style seeded random initialisation, and
//! the deterministic generator shared with `tools/golden/make_golden.py`.

use crate::arch::{conv_specs, FEATURES};
use crate::config::Variant;
use crate::weights::{BatchNorm, CanonicalWeights, ConvWeights, DenseWeights};

/// SplitMix64 finaliser: a bijective 64-bit hash.
///
/// ```
/// use resnet50::init::splitmix64;
/// assert_eq!(splitmix64(1), splitmix64(1));
/// assert_ne!(splitmix64(1), splitmix64(2));
/// ```
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a of `s`'s UTF-8 bytes.
///
/// ```
/// assert_eq!(resnet50::init::fnv1a64(""), 0xcbf2_9ce4_8422_2325); // the FNV offset basis
/// ```
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Element `i` of the deterministic tensor `name`, uniform in `[lo, hi)`:
/// `f32(lo + (hi − lo)·k/2²⁴)` with `k = splitmix64(fnv1a64(name) + i) >> 40`,
/// evaluated in f64 — bit-identical to the golden script's numpy version.
///
/// ```
/// let v = resnet50::init::det_value(7, 3, -1.0, 1.0);
/// assert!((-1.0..1.0).contains(&v));
/// assert_eq!(v, resnet50::init::det_value(7, 3, -1.0, 1.0));
/// ```
pub fn det_value(seed: u64, i: u64, lo: f64, hi: f64) -> f32 {
    let k = splitmix64(seed.wrapping_add(i)) >> 40;
    (lo + (hi - lo) * (k as f64 / 16_777_216.0)) as f32
}

/// The deterministic tensor `name` of `len` elements in `[lo, hi)`.
///
/// ```
/// let t = resnet50::init::det_tensor("conv1_conv/kernel", 4, 0.0, 0.5);
/// assert_eq!(t.len(), 4);
/// assert!(t.iter().all(|v| (0.0..0.5).contains(v)));
/// ```
pub fn det_tensor(name: &str, len: usize, lo: f64, hi: f64) -> Vec<f32> {
    let seed = fnv1a64(name);
    (0..len as u64).map(|i| det_value(seed, i, lo, hi)).collect()
}

/// The golden generator's ranges, by tensor kind (see `tools/golden/README.md`).
fn det_range(kind: &str, fan_in: usize, fan_out: usize) -> (f64, f64) {
    match kind {
        "kernel" => {
            let a = (6.0 / fan_in as f64).sqrt();
            (-a, a)
        }
        "fc_kernel" => {
            let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
            (-a, a)
        }
        "gamma" => (0.5, 1.0),
        "var" => (0.5, 1.5),
        // bias, beta, mean, fc bias
        _ => (-0.1, 0.1),
    }
}

/// Deterministic weights for the golden tests: every tensor from
/// [`det_tensor`] with the golden script's ranges.
///
/// ```
/// use resnet50::{init, Variant};
/// let a = init::deterministic(Variant::V1_5, None);
/// assert!(a.fc.is_none());
/// assert_eq!(a.convs[5].kernel, init::deterministic(Variant::V1_5, None).convs[5].kernel);
/// ```
pub fn deterministic(variant: Variant, classes: Option<usize>) -> CanonicalWeights {
    let convs = conv_specs(variant)
        .iter()
        .map(|s| {
            let t = |what: &str, len: usize| {
                let (lo, hi) = det_range(what, s.k * s.k * s.cin, s.cout);
                det_tensor(&format!("{}/{what}", s.name), len, lo, hi)
            };
            ConvWeights {
                kernel: t("kernel", s.kernel_len()),
                bias: variant.conv_bias().then(|| t("bias", s.cout)),
                bn: BatchNorm {
                    gamma: t("gamma", s.cout),
                    beta: t("beta", s.cout),
                    mean: t("mean", s.cout),
                    var: t("var", s.cout),
                },
            }
        })
        .collect();
    let fc = classes.map(|classes| {
        let (lo, hi) = det_range("fc_kernel", FEATURES, classes);
        let (blo, bhi) = det_range("bias", 0, 0);
        DenseWeights {
            kernel: det_tensor("fc/kernel", FEATURES * classes, lo, hi),
            bias: det_tensor("fc/bias", classes, blo, bhi),
            classes,
        }
    });
    CanonicalWeights { variant, convs, fc }
}

/// The deterministic NHWC input `[n, h, w, 3]` of the golden tests, in `[-1, 1)`.
///
/// ```
/// let x = resnet50::init::deterministic_input(2, 32, 32);
/// assert_eq!(x.len(), 2 * 32 * 32 * 3);
/// assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
/// ```
pub fn deterministic_input(n: usize, h: usize, w: usize) -> Vec<f32> {
    det_tensor("input", n * h * w * 3, -1.0, 1.0)
}

/// A seeded stream of uniform numbers (SplitMix64).
struct Stream(u64);

impl Stream {
    fn uniform(&mut self, lo: f64, hi: f64) -> f32 {
        self.0 = self.0.wrapping_add(1);
        det_value(self.0, 0, lo, hi)
    }
}

/// Keras' `weights=None`: glorot-uniform kernels (`±√(6/(fan_in+fan_out))`
/// with fans `k·k·cin` and `k·k·cout`), zero biases, BN γ=1 β=0 μ=0 σ²=1,
/// drawn from a stream seeded by `seed`.
///
/// ```
/// use resnet50::{init::keras_random, Variant};
/// let a = keras_random(Variant::V1, Some(10), 1);
/// let limit = (6.0f32 / (7.0 * 7.0 * (3.0 + 64.0))).sqrt(); // glorot-uniform bound of conv1
/// assert!(a.convs[0].kernel.iter().all(|v| v.abs() <= limit));
/// assert_ne!(a.convs[0].kernel, keras_random(Variant::V1, Some(10), 2).convs[0].kernel);
/// ```
pub fn keras_random(variant: Variant, classes: Option<usize>, seed: u64) -> CanonicalWeights {
    let mut rng = Stream(splitmix64(seed ^ 0x5265_734e_6574_3530));
    let convs = conv_specs(variant)
        .iter()
        .map(|s| {
            let a = (6.0 / (s.k * s.k * (s.cin + s.cout)) as f64).sqrt();
            ConvWeights {
                kernel: (0..s.kernel_len()).map(|_| rng.uniform(-a, a)).collect(),
                bias: variant.conv_bias().then(|| vec![0.0; s.cout]),
                bn: BatchNorm {
                    gamma: vec![1.0; s.cout],
                    beta: vec![0.0; s.cout],
                    mean: vec![0.0; s.cout],
                    var: vec![1.0; s.cout],
                },
            }
        })
        .collect();
    let fc = classes.map(|classes| {
        let a = (6.0 / (FEATURES + classes) as f64).sqrt();
        DenseWeights {
            kernel: (0..FEATURES * classes).map(|_| rng.uniform(-a, a)).collect(),
            bias: vec![0.0; classes],
            classes,
        }
    });
    CanonicalWeights { variant, convs, fc }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_matches_the_golden_scripts_test_vectors() {
        assert_eq!(fnv1a64("conv1/kernel"), 0xa72a21dbf73cd84e);
        // The vectors are f32 values printed exactly as f64 by numpy.
        let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
        assert_eq!(
            widen(det_tensor("conv1/kernel", 4, -1.0, 1.0)),
            [0.9535269737243652, 0.46204352378845215, 0.7679299116134644, 0.6791708469390869]
        );
        assert_eq!(
            widen(det_tensor("input", 3, -1.0, 1.0)),
            [-0.8043633699417114, -0.705042839050293, 0.14816880226135254]
        );
    }

    #[test]
    fn weights_are_valid_and_seed_dependent() {
        let a = keras_random(Variant::V1, Some(10), 1);
        a.validate().unwrap();
        assert_ne!(a.convs[0].kernel, keras_random(Variant::V1, Some(10), 2).convs[0].kernel);
        deterministic(Variant::V1_5, Some(1000)).validate().unwrap();
        assert!(deterministic(Variant::V1_5, None).convs[0].bias.is_none());
    }
}

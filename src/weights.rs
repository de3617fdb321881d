//! Canonical weights: the one in-memory form every weights source is mapped
//! onto (53 convolutions with their BatchNorm, plus the classifier), and the
//! BatchNorm folding that turns them into what the kernels run.

use crate::arch::{conv_specs, ConvSpec, FEATURES, NUM_CONVS};
use crate::config::Variant;
use crate::error::{Error, Result};

/// BatchNorm parameters of one layer (inference form).
///
/// ```
/// let w = resnet50::init::keras_random(resnet50::Variant::V1, None, 0);
/// let bn = &w.convs[0].bn;
/// assert_eq!((bn.gamma[0], bn.beta[0], bn.mean[0], bn.var[0]), (1.0, 0.0, 0.0, 1.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Scale γ.
    pub gamma: Vec<f32>,
    /// Shift β.
    pub beta: Vec<f32>,
    /// Moving mean μ.
    pub mean: Vec<f32>,
    /// Moving variance σ².
    pub var: Vec<f32>,
}

/// One convolution and its BatchNorm, as stored by the frameworks.
///
/// ```
/// let w = resnet50::init::keras_random(resnet50::Variant::V1_5, None, 0);
/// assert_eq!(w.convs[0].kernel.len(), 7 * 7 * 3 * 64); // HWIO
/// assert!(w.convs[0].bias.is_none()); // v1.5 convolutions have no bias
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    /// HWIO kernel `[k, k, cin, cout]` (Keras' layout).
    pub kernel: Vec<f32>,
    /// Conv bias (v1 only).
    pub bias: Option<Vec<f32>>,
    /// The BatchNorm that follows.
    pub bn: BatchNorm,
}

/// The classifier: `[2048, classes]` kernel (Keras' `Dense` layout) and bias.
///
/// ```
/// let w = resnet50::init::keras_random(resnet50::Variant::V1, Some(10), 0);
/// let fc = w.fc.as_ref().unwrap();
/// assert_eq!((fc.classes, fc.kernel.len(), fc.bias.len()), (10, 2048 * 10, 10));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DenseWeights {
    /// `[2048, classes]`, row-major.
    pub kernel: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
}

/// All weights of a ResNet50, in the canonical order of [`conv_specs`].
///
/// ```
/// use resnet50::{init, Variant};
/// let w = init::deterministic(Variant::V1, Some(1000));
/// assert_eq!(w.convs.len(), 53);
/// w.validate()?;
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CanonicalWeights {
    /// Which network the weights are for.
    pub variant: Variant,
    /// The 53 convolutions in canonical order.
    pub convs: Vec<ConvWeights>,
    /// The classifier, if the source has one.
    pub fc: Option<DenseWeights>,
}

impl CanonicalWeights {
    /// Checks every tensor's length against the architecture and that every
    /// value is finite; the error names the tensor.
    ///
    /// ```
    /// let mut w = resnet50::init::keras_random(resnet50::Variant::V1, None, 0);
    /// w.validate()?;
    /// w.convs[3].bn.var[0] = -1.0;
    /// assert!(w.validate().is_err());
    /// w.convs[3].bn.var[0] = 1.0;
    /// w.convs.pop();
    /// assert!(w.validate().unwrap_err().to_string().contains("expected 53 convolutions, got 52"));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn validate(&self) -> Result<()> {
        let specs = conv_specs(self.variant);
        if self.convs.len() != NUM_CONVS {
            return Err(Error::Weights(format!("expected {NUM_CONVS} convolutions, got {}", self.convs.len())));
        }
        for (s, c) in specs.iter().zip(&self.convs) {
            check(&s.name, "kernel", &c.kernel, s.kernel_len())?;
            if let Some(b) = &c.bias {
                check(&s.name, "bias", b, s.cout)?;
            }
            check(&s.name, "gamma", &c.bn.gamma, s.cout)?;
            check(&s.name, "beta", &c.bn.beta, s.cout)?;
            check(&s.name, "mean", &c.bn.mean, s.cout)?;
            check(&s.name, "var", &c.bn.var, s.cout)?;
            if let Some(i) = c.bn.var.iter().position(|&v| v < 0.0) {
                return Err(Error::Weights(format!("{}/var[{i}] is negative ({})", s.name, c.bn.var[i])));
            }
        }
        if let Some(fc) = &self.fc {
            if fc.classes == 0 {
                return Err(Error::Weights("fc has 0 classes".into()));
            }
            check("fc", "kernel", &fc.kernel, FEATURES * fc.classes)?;
            check("fc", "bias", &fc.bias, fc.classes)?;
        }
        Ok(())
    }
}

fn check(layer: &str, what: &str, v: &[f32], expect: usize) -> Result<()> {
    if v.len() != expect {
        return Err(Error::Weights(format!("{layer}/{what} has {} values, expected {expect}", v.len())));
    }
    if let Some(i) = first_non_finite(v) {
        return Err(Error::Weights(format!("{layer}/{what}[{i}] is not finite ({})", v[i])));
    }
    Ok(())
}

/// Index of the first value of `v` that is not finite (NaN or ±∞). Scans
/// blocks of values with a reduction the compiler vectorises, then looks
/// inside the first bad block; a plain `position` tests one value at a time
/// (the weights of a model are ~25 M values, checked when it is built).
pub(crate) fn first_non_finite(v: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    v.chunks(BLOCK).enumerate().find_map(|(b, c)| {
        let bad = c.iter().fold(false, |acc, x| acc | !x.is_finite());
        if bad {
            c.iter().position(|x| !x.is_finite()).map(|i| b * BLOCK + i)
        } else {
            None
        }
    })
}

/// Folds BatchNorm into the convolution: with `s = γ/√(σ²+ε)`,
/// `w' = w·s` (per output channel) and `b' = (b − μ)·s + β`.
/// Returns `(HWIO kernel, bias)`.
///
/// ```
/// use resnet50::{arch::conv_specs, init, weights::fold_batch_norm, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// let spec = &conv_specs(Variant::V1)[0];
/// // γ=1, β=0, μ=0, σ²=1: the fold only scales by 1/√(1+ε).
/// let (kernel, bias) = fold_batch_norm(spec, &w.convs[0], 0.0);
/// assert_eq!(kernel, w.convs[0].kernel);
/// assert!(bias.iter().all(|&b| b == 0.0));
/// ```
///
/// # Panics
///
/// If `w`'s BatchNorm vectors (or bias) have fewer than `spec.cout` values;
/// [`CanonicalWeights::validate`] checks every length first.
pub fn fold_batch_norm(spec: &ConvSpec, w: &ConvWeights, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let cout = spec.cout;
    // Computed in f64 so the fold itself adds no error beyond the final rounding.
    let scale: Vec<f64> = (0..cout).map(|c| w.bn.gamma[c] as f64 / (w.bn.var[c] as f64 + eps as f64).sqrt()).collect();
    // HWIO: the output channel is the fastest index, so each row of `cout`
    // values takes `scale` in order (no division per weight).
    let mut kernel = Vec::with_capacity(w.kernel.len());
    for row in w.kernel.chunks(cout.max(1)) {
        kernel.extend(row.iter().zip(&scale).map(|(&v, &s)| (v as f64 * s) as f32));
    }
    let bias = (0..cout)
        .map(|c| {
            let b = w.bias.as_ref().map_or(0.0, |b| b[c] as f64);
            ((b - w.bn.mean[c] as f64) * scale[c] + w.bn.beta[c] as f64) as f32
        })
        .collect();
    (kernel, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_finite_finds_the_first_bad_value() {
        assert_eq!(first_non_finite(&[]), None);
        for len in [1, 5, 255, 256, 257, 1000] {
            let mut v: Vec<f32> = (0..len).map(|i| i as f32 - 3.5).collect();
            assert_eq!(first_non_finite(&v), None, "{len}");
            for (at, bad) in [(len - 1, f32::NAN), (len / 2, f32::INFINITY), (0, f32::NEG_INFINITY)] {
                v[at] = bad;
                assert_eq!(first_non_finite(&v), Some(at), "{len}: {bad} at {at}");
            }
            v[len - 1] = f32::MAX;
            v[len / 2] = -f32::MAX;
            v[0] = f32::MIN_POSITIVE / 2.0; // subnormal: finite
            assert_eq!(first_non_finite(&v), None, "{len}");
        }
    }

    #[test]
    fn fold_matches_conv_then_bn() {
        let spec =
            ConvSpec { name: "t".into(), stage: 1, block: 0, index: 0, k: 1, cin: 1, cout: 2, stride: 1, pad: 0 };
        let w = ConvWeights {
            kernel: vec![2.0, -1.0],
            bias: Some(vec![0.5, 0.0]),
            bn: BatchNorm { gamma: vec![3.0, 1.0], beta: vec![0.1, 0.2], mean: vec![1.0, -1.0], var: vec![4.0, 0.0] },
        };
        let (k, b) = fold_batch_norm(&spec, &w, 0.0);
        // x = 1: conv = [2.5, -1]; bn = (conv - mean)/sqrt(var)*gamma + beta
        let x = 1.0f32;
        let y0 = (2.0 * x + 0.5 - 1.0) / 2.0 * 3.0 + 0.1;
        assert!((k[0] * x + b[0] - y0).abs() < 1e-6);
        assert!(k[1].is_infinite() || k[1].is_nan() || k[1].abs() > 1e6); // var 0, eps 0 -> blows up
    }
}

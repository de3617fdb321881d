//! Model configuration, mirroring `tf.keras.applications.ResNet50(include_top,
//! weights, input_tensor, input_shape, pooling, classes,
//! classifier_activation)` plus the variant, batch size and thread count.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use resnet50_kernels::Isa;

use crate::error::{Error, Result};
use crate::weights::CanonicalWeights;

/// Which ResNet50.
///
/// ```
/// use resnet50::Variant;
/// assert_eq!("torchvision".parse::<Variant>()?, Variant::V1_5);
/// assert_eq!(Variant::V1.to_string(), "v1");
/// assert!("v2".parse::<Variant>().unwrap_err().to_string().contains("\"v2\""));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Variant {
    /// Keras' ResNet50 (the original paper's): conv biases, stride 2 on the
    /// first 1×1 of each downsampling block, BN ε 1.001e-5.
    #[default]
    V1,
    /// torchvision's ResNet50 ("v1.5"): no conv bias, stride 2 on the 3×3,
    /// BN ε 1e-5.
    V1_5,
}

impl Variant {
    /// BatchNorm ε of the variant's reference framework.
    ///
    /// ```
    /// assert_eq!(resnet50::Variant::V1.default_bn_epsilon(), 1.001e-5);
    /// ```
    pub fn default_bn_epsilon(self) -> f32 {
        match self {
            Variant::V1 => 1.001e-5,
            Variant::V1_5 => 1e-5,
        }
    }
    /// Whether convolutions carry a bias before BatchNorm.
    ///
    /// ```
    /// assert!(resnet50::Variant::V1.conv_bias() && !resnet50::Variant::V1_5.conv_bias());
    /// ```
    pub fn conv_bias(self) -> bool {
        self == Variant::V1
    }
    /// The classifier activation of the variant's reference framework.
    ///
    /// ```
    /// use resnet50::{ClassifierActivation, Variant};
    /// assert_eq!(Variant::V1.default_classifier_activation(), ClassifierActivation::Softmax);
    /// ```
    pub fn default_classifier_activation(self) -> ClassifierActivation {
        match self {
            Variant::V1 => ClassifierActivation::Softmax,
            Variant::V1_5 => ClassifierActivation::None,
        }
    }
    /// `"v1"` or `"v1.5"`.
    ///
    /// ```
    /// assert_eq!(resnet50::Variant::V1_5.name(), "v1.5");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Variant::V1 => "v1",
            Variant::V1_5 => "v1.5",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" | "keras" => Ok(Variant::V1),
            "v1.5" | "1.5" | "v15" | "torchvision" | "torch" => Ok(Variant::V1_5),
            _ => Err(Error::Config(format!("unknown variant {s:?}: expected v1 or v1.5"))),
        }
    }
}

/// Keras' `pooling` argument (used when `include_top` is false).
///
/// ```
/// use resnet50::Pooling;
/// assert_eq!("avg".parse::<Pooling>()?, Pooling::Avg);
/// assert_eq!(Pooling::default(), Pooling::None);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Pooling {
    /// 4-D output `[N, h, w, 2048]`.
    #[default]
    None,
    /// Global average pooling: `[N, 2048]`.
    Avg,
    /// Global max pooling: `[N, 2048]`.
    Max,
}

impl FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Pooling::None),
            "avg" | "average" => Ok(Pooling::Avg),
            "max" => Ok(Pooling::Max),
            _ => Err(Error::Config(format!("unknown pooling {s:?}: expected none, avg or max"))),
        }
    }
}

/// Keras' `classifier_activation`.
///
/// ```
/// use resnet50::ClassifierActivation;
/// assert_eq!("logits".parse::<ClassifierActivation>()?, ClassifierActivation::None);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassifierActivation {
    /// Probabilities.
    Softmax,
    /// Logits.
    None,
}

impl FromStr for ClassifierActivation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "softmax" => Ok(ClassifierActivation::Softmax),
            "none" | "linear" | "logits" => Ok(ClassifierActivation::None),
            _ => Err(Error::Config(format!("unknown classifier activation {s:?}: expected softmax or none"))),
        }
    }
}

/// Keras' `weights` argument.
///
/// ```
/// use std::sync::Arc;
/// use resnet50::{init, ResNet50, Variant, WeightsSource};
/// assert!(matches!(WeightsSource::default(), WeightsSource::Random { seed: 0 }));
/// // Weights already in memory, shared without a copy:
/// let w = Arc::new(init::keras_random(Variant::V1, Some(3), 1));
/// let model = ResNet50::new().weights(WeightsSource::Canonical(w)).classes(3).input_shape(32, 32, 3).build()?;
/// assert_eq!(model.output_len(), 3);
/// // A file that does not exist is an error naming it.
/// let err = ResNet50::new().weights(WeightsSource::File("no/such.h5".into())).build().unwrap_err();
/// assert!(err.to_string().contains("no/such.h5"), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum WeightsSource {
    /// `weights=None`: seeded random initialisation with Keras' initializers
    /// (glorot-uniform kernels, zero biases, BN γ=1 β=0 μ=0 σ²=1).
    Random {
        /// Seed of the generator.
        seed: u64,
    },
    /// `weights="imagenet"`: the pretrained weights from the local caches.
    Imagenet,
    /// A weights file.
    File(PathBuf),
    /// Weights already in memory (e.g. from [`crate::init::deterministic`]).
    Canonical(Arc<CanonicalWeights>),
}

impl Default for WeightsSource {
    fn default() -> Self {
        WeightsSource::Random { seed: 0 }
    }
}

/// Everything that determines a model. Build one with [`crate::ResNet50`].
///
/// ```
/// use resnet50::{Config, Pooling, ResNet50};
/// let config = Config { include_top: false, pooling: Pooling::Avg, height: 32, width: 32, ..Config::default() };
/// config.validate()?;
/// let model = ResNet50::from_config(config).build()?;
/// assert_eq!(model.output_shape(), &[1, 2048]);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Keep the classifier (`include_top`).
    pub include_top: bool,
    /// Where the weights come from.
    pub weights: WeightsSource,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels (must be 3).
    pub channels: usize,
    /// Global pooling when `include_top` is false.
    pub pooling: Pooling,
    /// Number of classes of the classifier.
    pub classes: usize,
    /// Activation after the classifier; `None` means "the variant's default".
    pub classifier_activation: Option<ClassifierActivation>,
    /// v1 (Keras) or v1.5 (torchvision).
    pub variant: Variant,
    /// Images per `predict`.
    pub batch: usize,
    /// Threads used inside each kernel.
    pub threads: usize,
    /// Let a session fall back to one thread while other processes keep its
    /// threads waiting for each other (default true; see
    /// [`crate::ResNet50::adaptive_threads`]). Outputs are the same either way.
    pub adaptive_threads: bool,
    /// BatchNorm ε; `None` means the variant's default.
    pub bn_epsilon: Option<f32>,
    /// Kernel ISA; `None` means `RESNET50_ISA` or the best this CPU runs.
    pub isa: Option<Isa>,
    /// Use the scalar reference kernels for every layer (the oracle).
    pub reference: bool,
    /// Keep the stage outputs C2…C5 and the 2048-d embedding readable after
    /// each run ([`crate::Session::features`]).
    pub feature_maps: bool,
    /// Refuse inputs containing NaN or ±∞ (default); when false they pass
    /// through and propagate.
    pub reject_non_finite: bool,
    /// Most bytes one session's arena (activations and kernel scratch) may
    /// take; `None` means no limit. Default [`DEFAULT_MEMORY_LIMIT`] (16 GiB).
    /// See [`crate::ResNet50::memory_limit`].
    pub memory_limit: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            include_top: true,
            weights: WeightsSource::default(),
            height: 224,
            width: 224,
            channels: 3,
            pooling: Pooling::None,
            classes: 1000,
            classifier_activation: None,
            variant: Variant::V1,
            batch: 1,
            threads: 1,
            adaptive_threads: true,
            bn_epsilon: None,
            isa: None,
            reference: false,
            feature_maps: false,
            reject_non_finite: true,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
        }
    }
}

/// Largest input side accepted, a guard against absurd sizes.
///
/// ```
/// let err = resnet50::ResNet50::new().input_shape(20_000, 64, 3).memory_limit(None).build().unwrap_err();
/// assert!(err.to_string().contains("exceeds the limit of 16384 per side"));
/// ```
pub const MAX_SIDE: usize = 16384;
/// Largest batch accepted.
///
/// ```
/// let err = resnet50::ResNet50::new().input_shape(32, 32, 3).batch(4097).build().unwrap_err();
/// assert!(err.to_string().contains("batch must be in 1..=4096"));
/// ```
pub const MAX_BATCH: usize = 4096;
/// Most threads accepted.
///
/// ```
/// assert!(resnet50::ResNet50::new().threads(resnet50::config::MAX_THREADS + 1).build().is_err());
/// ```
pub const MAX_THREADS: usize = 1024;
/// Default [`Config::memory_limit`]: 16 GiB (`usize::MAX` where `usize` is
/// narrower than 35 bits).
///
/// ```
/// # #[cfg(target_pointer_width = "64")]
/// assert_eq!(resnet50::config::DEFAULT_MEMORY_LIMIT, 16 << 30);
/// ```
pub const DEFAULT_MEMORY_LIMIT: usize =
    if (usize::MAX as u64) < (16u64 << 30) { usize::MAX } else { (16u64 << 30) as usize };

/// Output side of the stem and of the max-pool (both `floor((x + 2·pad − k)/2) + 1`
/// = `ceil(x/2)` for the two variants), without overflow.
fn half_up(x: usize) -> usize {
    x / 2 + x % 2
}

impl Config {
    /// The classifier activation in effect.
    ///
    /// ```
    /// use resnet50::{ClassifierActivation, Config, Variant};
    /// let c = Config { variant: Variant::V1_5, ..Config::default() };
    /// assert_eq!(c.activation(), ClassifierActivation::None);
    /// ```
    pub fn activation(&self) -> ClassifierActivation {
        self.classifier_activation.unwrap_or(self.variant.default_classifier_activation())
    }

    /// The BatchNorm ε in effect.
    ///
    /// ```
    /// use resnet50::Config;
    /// assert_eq!(Config::default().epsilon(), 1.001e-5);
    /// assert_eq!(Config { bn_epsilon: Some(1e-3), ..Config::default() }.epsilon(), 1e-3);
    /// ```
    pub fn epsilon(&self) -> f32 {
        self.bn_epsilon.unwrap_or(self.variant.default_bn_epsilon())
    }

    /// `input HxWx3, batch N`, as limit errors name the request.
    fn describe_input(&self) -> String {
        format!("input {}x{}x{}, batch {}", self.height, self.width, self.channels, self.batch)
    }

    /// A lower bound of the bytes one session's arena needs, from the shapes
    /// alone (nothing is planned or allocated); `None` when the count overflows
    /// `usize`. The arena holds at least the input and the stem's output (both
    /// live while the stem runs), and at least the three buffers live in
    /// conv2_block1's middle convolutions (the block's shortcut, their input
    /// and their output: 256, 64 and 64 channels at a quarter of the input
    /// side; the last convolution adds onto the shortcut in place). The planned arena
    /// ([`crate::Model::arena_bytes`]) adds alignment, the other stages and
    /// kernel scratch.
    ///
    /// ```
    /// use resnet50::{Config, ResNet50};
    /// let config = Config { height: 64, width: 48, ..Config::default() };
    /// let bound = config.min_arena_bytes().unwrap();
    /// let model = ResNet50::from_config(config).classes(10).build()?;
    /// assert!(bound <= model.arena_bytes() && bound > model.arena_bytes() / 4);
    /// // Absurd requests are counted without overflow.
    /// let absurd = Config { height: usize::MAX, width: usize::MAX, ..Config::default() };
    /// assert_eq!(absurd.min_arena_bytes(), None);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn min_arena_bytes(&self) -> Option<usize> {
        let (n, h, w) = (self.batch, self.height, self.width);
        let (h2, w2) = (half_up(h), half_up(w));
        let (h4, w4) = (half_up(h2), half_up(w2));
        let floats = |side_h: usize, side_w: usize, channels: usize| {
            n.checked_mul(side_h)?.checked_mul(side_w)?.checked_mul(channels)
        };
        let stem = floats(h, w, self.channels)?.checked_add(floats(h2, w2, 64)?)?;
        let conv2 = floats(h4, w4, 256 + 64 + 64)?;
        stem.max(conv2).checked_mul(std::mem::size_of::<f32>())
    }

    /// Checks [`Config::memory_limit`] against `needed` bytes (`None`: more
    /// than `usize::MAX`).
    pub(crate) fn check_memory(&self, needed: Option<usize>, lower_bound: bool) -> Result<()> {
        match self.memory_limit {
            Some(limit) if needed.is_none_or(|b| b > limit) => Err(Error::ResourceLimit {
                what: self.describe_input(),
                needed_bytes: needed,
                lower_bound,
                limit_bytes: limit,
            }),
            _ => Ok(()),
        }
    }

    /// Applies Keras' rules (and our limits); the error says which value is wrong.
    ///
    /// ```
    /// use resnet50::{Config, Error};
    /// assert!(Config::default().validate().is_ok());
    /// let err = Config { classes: 0, ..Config::default() }.validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid configuration: classes must be at least 1, got 0");
    /// let huge = Config { height: 100_000, width: 100_000, ..Config::default() };
    /// assert!(matches!(huge.validate(), Err(Error::ResourceLimit { .. })));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.channels != 3 {
            return Err(Error::Config(format!(
                "the input must have 3 channels, got {} (input shape {}x{}x{})",
                self.channels, self.height, self.width, self.channels
            )));
        }
        if self.height < 32 || self.width < 32 {
            return Err(Error::Config(format!(
                "input size must be at least 32x32, got {}x{}",
                self.height, self.width
            )));
        }
        // Memory first: an absurd size or batch is reported with what it would cost.
        let needed = self.min_arena_bytes();
        self.check_memory(needed, true)?;
        let cost = || match needed {
            Some(b) => format!("it would need at least {} of activation memory", crate::error::human_bytes(b)),
            None => "it would need more than usize::MAX bytes of activation memory".to_string(),
        };
        if self.height > MAX_SIDE || self.width > MAX_SIDE {
            return Err(Error::Config(format!(
                "input size {}x{} exceeds the limit of {MAX_SIDE} per side (config::MAX_SIDE); {}",
                self.height,
                self.width,
                cost()
            )));
        }
        if self.classes == 0 {
            return Err(Error::Config("classes must be at least 1, got 0".into()));
        }
        if self.batch == 0 {
            return Err(Error::Config(format!("batch must be in 1..={MAX_BATCH}, got 0")));
        }
        if self.batch > MAX_BATCH {
            return Err(Error::Config(format!(
                "batch must be in 1..={MAX_BATCH} (config::MAX_BATCH), got {}; {}",
                self.batch,
                cost()
            )));
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(Error::Config(format!("threads must be in 1..={MAX_THREADS}, got {}", self.threads)));
        }
        if let Some(eps) = self.bn_epsilon
            && !(eps.is_finite() && eps > 0.0)
        {
            return Err(Error::Config(format!("BatchNorm epsilon must be positive and finite, got {eps}")));
        }
        if matches!(self.weights, WeightsSource::Imagenet) && self.include_top {
            if self.classes != 1000 {
                return Err(Error::Config(format!(
                    "if using weights=\"imagenet\" with include_top=true, classes must be 1000, got {}",
                    self.classes
                )));
            }
            if (self.height, self.width) != (224, 224) {
                return Err(Error::Config(format!(
                    "if using weights=\"imagenet\" with include_top=true, the input must be 224x224, got {}x{}",
                    self.height, self.width
                )));
            }
        }
        if let Some(isa) = self.isa
            && !isa.is_supported()
        {
            return Err(Error::Config(format!("ISA {isa} is not supported by this CPU")));
        }
        Ok(())
    }
}

//! The public API: [`ResNet50`] (the Keras-style builder), [`Model`]
//! (immutable, shareable) and [`Session`] (one arena; allocation-free predict).

use std::sync::Arc;
use std::time::Instant;

use resnet50_kernels::{AlignedBuf, Isa};

use crate::adaptive::ThreadChooser;
use crate::config::{ClassifierActivation, Config, Pooling, Variant, WeightsSource};
use crate::error::{Error, Result};
use crate::plan::{Op, Plan, PlanSpec};
use crate::prepare::{KernelChoice, PreparedWeights};
use crate::weights::CanonicalWeights;
use crate::{executor, init, loaders};

/// Builder mirroring `tf.keras.applications.ResNet50(...)`.
///
/// ```
/// use resnet50::{ResNet50, Pooling};
/// let model = ResNet50::new()
///     .include_top(false)
///     .input_shape(64, 64, 3)
///     .pooling(Pooling::Avg)
///     .build()?;
/// let mut session = model.session()?;
/// let features = session.predict(&vec![0.0; 64 * 64 * 3])?;
/// assert_eq!(features.len(), 2048);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ResNet50 {
    config: Config,
}

impl ResNet50 {
    /// Keras' defaults: top included, 1000 classes, 224×224×3, seeded random
    /// weights, variant v1.
    ///
    /// ```
    /// let b = resnet50::ResNet50::new();
    /// assert!(b.config().include_top);
    /// assert_eq!((b.config().classes, b.config().height, b.config().width), (1000, 224, 224));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
    /// Starts from a full configuration.
    ///
    /// ```
    /// use resnet50::{Config, ResNet50};
    /// let b = ResNet50::from_config(Config { classes: 5, ..Config::default() });
    /// assert_eq!(b.config().classes, 5);
    /// ```
    pub fn from_config(config: Config) -> Self {
        ResNet50 { config }
    }
    /// Keras' `include_top`.
    ///
    /// ```
    /// assert!(!resnet50::ResNet50::new().include_top(false).config().include_top);
    /// ```
    pub fn include_top(mut self, v: bool) -> Self {
        self.config.include_top = v;
        self
    }
    /// Keras' `weights`.
    ///
    /// ```
    /// use resnet50::{ResNet50, WeightsSource};
    /// let b = ResNet50::new().weights(WeightsSource::Random { seed: 42 });
    /// assert!(matches!(b.config().weights, WeightsSource::Random { seed: 42 }));
    /// ```
    pub fn weights(mut self, w: WeightsSource) -> Self {
        self.config.weights = w;
        self
    }
    /// Keras' `input_shape` as `(height, width, channels)`.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(48, 64, 3).classes(2).build()?;
    /// assert_eq!(model.input_shape(), [1, 48, 64, 3]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn input_shape(mut self, height: usize, width: usize, channels: usize) -> Self {
        self.config.height = height;
        self.config.width = width;
        self.config.channels = channels;
        self
    }
    /// Keras' `input_tensor`, given by its NHWC shape: sets batch and input shape.
    ///
    /// ```
    /// let b = resnet50::ResNet50::new().input_tensor_shape([2, 64, 48, 3]);
    /// assert_eq!((b.config().batch, b.config().height, b.config().width), (2, 64, 48));
    /// ```
    pub fn input_tensor_shape(self, nhwc: [usize; 4]) -> Self {
        self.batch(nhwc[0]).input_shape(nhwc[1], nhwc[2], nhwc[3])
    }
    /// Keras' `pooling` (without the top).
    ///
    /// ```
    /// use resnet50::{Pooling, ResNet50};
    /// let model = ResNet50::new().include_top(false).pooling(Pooling::Max).input_shape(32, 32, 3).build()?;
    /// assert_eq!(model.output_shape(), &[1, 2048]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn pooling(mut self, p: Pooling) -> Self {
        self.config.pooling = p;
        self
    }
    /// Keras' `classes`.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().classes(7).input_shape(32, 32, 3).build()?;
    /// assert_eq!(model.output_shape(), &[1, 7]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn classes(mut self, n: usize) -> Self {
        self.config.classes = n;
        self
    }
    /// Keras' `classifier_activation`.
    ///
    /// ```
    /// use resnet50::{ClassifierActivation, ResNet50};
    /// let b = ResNet50::new().classifier_activation(ClassifierActivation::None); // logits
    /// assert_eq!(b.config().activation(), ClassifierActivation::None);
    /// ```
    pub fn classifier_activation(mut self, a: ClassifierActivation) -> Self {
        self.config.classifier_activation = Some(a);
        self
    }
    /// v1 (Keras) or v1.5 (torchvision).
    ///
    /// ```
    /// use resnet50::{ClassifierActivation, ResNet50, Variant};
    /// let b = ResNet50::new().variant(Variant::V1_5);
    /// assert_eq!(b.config().epsilon(), 1e-5); // torchvision's BatchNorm ε
    /// assert_eq!(b.config().activation(), ClassifierActivation::None); // torchvision returns logits
    /// ```
    pub fn variant(mut self, v: Variant) -> Self {
        self.config.variant = v;
        self
    }
    /// Images per predict.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().batch(2).classes(3).input_shape(32, 32, 3).build()?;
    /// assert_eq!(model.input_len(), 2 * 32 * 32 * 3);
    /// assert_eq!(model.output_shape(), &[2, 3]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn batch(mut self, n: usize) -> Self {
        self.config.batch = n;
        self
    }
    /// Threads inside each kernel.
    ///
    /// ```
    /// assert_eq!(resnet50::ResNet50::new().threads(4).config().threads, 4);
    /// assert!(resnet50::ResNet50::new().threads(0).build().is_err());
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.config.threads = n;
        self
    }
    /// BatchNorm ε (default: the variant's).
    ///
    /// ```
    /// assert_eq!(resnet50::ResNet50::new().bn_epsilon(1e-3).config().epsilon(), 1e-3);
    /// ```
    pub fn bn_epsilon(mut self, eps: f32) -> Self {
        self.config.bn_epsilon = Some(eps);
        self
    }
    /// Kernel ISA (default: `RESNET50_ISA` or the best supported).
    ///
    /// ```
    /// use resnet50::{Isa, ResNet50};
    /// let model = ResNet50::new().isa(Isa::Scalar).input_shape(32, 32, 3).classes(2).build()?;
    /// assert_eq!(model.isa(), Isa::Scalar);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn isa(mut self, isa: Isa) -> Self {
        self.config.isa = Some(isa);
        self
    }
    /// Keep C2…C5 and the pooled embedding after each run (backbone use;
    /// read them with [`Session::features`]).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().feature_maps(true).input_shape(64, 64, 3).classes(2).build()?;
    /// let mut session = model.session()?;
    /// session.predict(&vec![0.1; 64 * 64 * 3])?;
    /// let f = session.features().unwrap();
    /// assert_eq!(f.stages[0].1, [1, 16, 16, 256]); // C2
    /// assert_eq!(f.stages[3].1, [1, 2, 2, 2048]); // C5
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn feature_maps(mut self, v: bool) -> Self {
        self.config.feature_maps = v;
        self
    }
    /// Let each session fall back to one thread while the machine is
    /// oversubscribed (true, the default), or always run on
    /// [`threads`](Self::threads) threads (false: for benchmarks of a thread
    /// count).
    ///
    /// When another busy process shares the cores, the OS preempts one of the
    /// threads in the middle of a layer's task for a time slice and the others
    /// wait for it at the layer's end: on 2 cores beside one busy process, two
    /// threads took 61 ms (median; 98 at p90) where one took 54. A session
    /// that sees such stalls runs an inference on one thread, keeps one thread
    /// while that is faster and tries its threads again now and then (every 8
    /// to 64 inferences). On an idle machine it stays on its threads. Outputs
    /// are bit-identical at any thread count, so this changes only the time;
    /// [`Session::last_threads`] tells what the last inference ran on.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().threads(2).adaptive_threads(false);
    /// assert!(!model.config().adaptive_threads);
    /// assert!(resnet50::ResNet50::new().config().adaptive_threads);
    /// ```
    pub fn adaptive_threads(mut self, v: bool) -> Self {
        self.config.adaptive_threads = v;
        self
    }
    /// Refuse (true, the default) or pass through inputs with NaN/±∞.
    ///
    /// ```
    /// let strict = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let mut x = vec![0.0; 32 * 32 * 3];
    /// x[7] = f32::NAN;
    /// assert!(strict.predict(&x).unwrap_err().to_string().contains("input[7] is not finite"));
    /// assert!(!resnet50::ResNet50::new().reject_non_finite(false).config().reject_non_finite);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn reject_non_finite(mut self, v: bool) -> Self {
        self.config.reject_non_finite = v;
        self
    }
    /// Most bytes one session's arena (activations and kernel scratch) may
    /// take: `Some(bytes)` (default [`DEFAULT_MEMORY_LIMIT`](crate::config::DEFAULT_MEMORY_LIMIT), 16 GiB) or `None`
    /// for no limit. `build` and [`Model::reshape`] check it before allocating
    /// anything large — first against a lower bound from the shapes
    /// ([`Config::min_arena_bytes`]), then against the planned arena — and
    /// return [`Error::ResourceLimit`] with both figures. The weights (about
    /// 100 MB) and the caller's own input/output buffers are not counted.
    ///
    /// ```
    /// use resnet50::{Error, ResNet50};
    /// let err = ResNet50::new().batch(1 << 40).build().unwrap_err();
    /// assert!(matches!(err, Error::ResourceLimit { limit_bytes, .. } if limit_bytes == 16 << 30));
    /// let small = ResNet50::new().input_shape(32, 32, 3).classes(2).memory_limit(Some(64 << 20)).build()?;
    /// assert!(small.arena_bytes() <= 64 << 20);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.config.memory_limit = bytes;
        self
    }
    /// Run every convolution with the scalar reference kernel.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().reference_kernels(true).input_shape(32, 32, 3).classes(2).build()?;
    /// assert_eq!(model.isa(), resnet50::Isa::Scalar);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn reference_kernels(mut self, v: bool) -> Self {
        self.config.reference = v;
        self
    }
    /// The configuration so far.
    ///
    /// ```
    /// assert_eq!(resnet50::ResNet50::new().batch(3).config().batch, 3);
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Validates the configuration, loads and prepares the weights, and plans.
    ///
    /// ```
    /// use resnet50::{Error, ResNet50};
    /// let model = ResNet50::new().input_shape(32, 32, 3).classes(10).build()?;
    /// assert_eq!(model.output_len(), 10);
    /// // Keras' refusals are typed errors naming the value.
    /// let err = ResNet50::new().input_shape(224, 224, 4).build().unwrap_err();
    /// assert!(matches!(err, Error::Config(ref m) if m.contains("3 channels, got 4")));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn build(self) -> Result<Model> {
        Model::new(self.config)
    }
}

/// A ready model: prepared weights and the static plan. Immutable and cheap
/// to clone (`Arc` inside); create a [`Session`] per thread to run it.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(3).build()?;
/// let x = vec![0.25; model.input_len()];
/// let expected = model.predict(&x)?;
/// let handles: Vec<_> = (0..2)
///     .map(|_| {
///         let (model, x) = (model.clone(), x.clone()); // clones share the weights
///         std::thread::spawn(move || model.session().unwrap().predict(&x).unwrap().to_vec())
///     })
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), expected); // deterministic across threads
/// }
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    plan: Plan,
    weights: Arc<PreparedWeights>,
    isa: Isa,
    /// The `threads − 1` threads that help the caller's inferences (none
    /// for one thread).
    helpers: Option<resnet50_kernels::par::Helpers>,
}

/// Weights as [`resolve_weights`] finds them: canonical (to be prepared, with
/// the ε the source implies), or already prepared (a native file, mapped).
enum Resolved {
    Canonical(Arc<CanonicalWeights>, Option<f32>),
    Prepared(Arc<PreparedWeights>),
}

fn resolve_weights(config: &Config) -> Result<Resolved> {
    let classes = config.include_top.then_some(config.classes);
    // Names the source in mismatch messages.
    let mut source = String::from("the weights");
    let (w, eps) = match &config.weights {
        WeightsSource::Random { seed } => (Arc::new(init::keras_random(config.variant, classes, *seed)), None),
        WeightsSource::Canonical(w) => (w.clone(), None),
        WeightsSource::Imagenet | WeightsSource::File(_) => {
            let path = match &config.weights {
                WeightsSource::File(p) => p.clone(),
                _ => loaders::imagenet::find(config.variant, config.include_top)?,
            };
            match loaders::open(&path)? {
                loaders::Opened::Native(n) => return native_weights(config, n).map(Resolved::Prepared),
                loaders::Opened::Canonical(l) => {
                    loaders::check_variant(&l, config.variant)?;
                    source = format!("{} ({})", path.display(), l.format);
                    (Arc::new(l.weights), l.bn_epsilon)
                }
            }
        }
    };
    if w.variant != config.variant {
        return Err(Error::Weights(format!(
            "the weights are for ResNet50 {} but the model is {}",
            w.variant, config.variant
        )));
    }
    if config.include_top {
        match &w.fc {
            None => {
                return Err(Error::Weights(format!(
                    "include_top=true but {source} has no classifier (a \"notop\" file): build with include_top=false"
                )));
            }
            Some(fc) if fc.classes != config.classes => {
                return Err(Error::Weights(format!(
                    "{source} has a classifier with {} classes but the model asks for {}",
                    fc.classes, config.classes
                )));
            }
            _ => {}
        }
    }
    Ok(Resolved::Canonical(w, eps))
}

/// Checks a native file against the configuration.
fn native_weights(config: &Config, n: loaders::NativeWeights) -> Result<Arc<PreparedWeights>> {
    let file = n.path.display();
    if n.variant != config.variant {
        return Err(Error::Weights(format!(
            "{file}: holds prepared ResNet50 {} weights but ResNet50 {} was requested",
            n.variant, config.variant
        )));
    }
    if config.reference {
        return Err(Error::Weights(format!(
            "{file}: a native file holds weights packed for the fast kernels; the reference kernels need the original weights file"
        )));
    }
    if let Some(eps) = config.bn_epsilon
        && eps != n.bn_epsilon
    {
        return Err(Error::Weights(format!(
            "{file}: BatchNorm was folded with epsilon {} when the file was written, the model asks for {eps}; re-run `resnet50 convert` (epsilon is fixed in a native file)",
            n.bn_epsilon
        )));
    }
    if config.include_top {
        match n.classes {
            None => {
                return Err(Error::Weights(format!(
                    "{file}: include_top=true but the file has no classifier: build with include_top=false"
                )));
            }
            Some(c) if c != config.classes => {
                return Err(Error::Weights(format!(
                    "{file}: has a classifier with {c} classes but the model asks for {}",
                    config.classes
                )));
            }
            _ => {}
        }
    }
    Ok(n.weights)
}

impl Model {
    /// Builds a model from a configuration (see [`ResNet50`]).
    ///
    /// ```
    /// use resnet50::{Config, Model};
    /// let model = Model::new(Config { height: 32, width: 32, classes: 4, ..Config::default() })?;
    /// assert_eq!(model.output_shape(), &[1, 4]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn new(config: Config) -> Result<Model> {
        config.validate()?;
        let isa = match config.isa {
            Some(i) => i,
            None if config.reference => Isa::Scalar,
            None => Isa::from_env().map_err(|e| Error::Config(format!("RESNET50_ISA: {e}")))?,
        };
        // The model's threads also prepare its weights (the layers are packed
        // in parallel inside a pool of that many threads; one thread packs
        // them in order).
        let resolve = || -> Result<Arc<PreparedWeights>> {
            Ok(match resolve_weights(&config)? {
                Resolved::Prepared(w) => w,
                Resolved::Canonical(canonical, source_eps) => {
                    let choice = if config.reference {
                        KernelChoice::Reference
                    } else {
                        KernelChoice::FastFor {
                            batch: config.batch,
                            height: config.height,
                            width: config.width,
                            early_stride: !config.feature_maps,
                            portable: false,
                            full_width_avx512: isa == Isa::Avx512 && resnet50_kernels::gemm::peak::avx512_full_width(),
                        }
                    };
                    // ε: the configuration's, else the source's (e.g. 1e-3 for the 2016 Keras file), else the variant's.
                    let eps = config.bn_epsilon.or(source_eps).unwrap_or(config.variant.default_bn_epsilon());
                    Arc::new(PreparedWeights::new(&canonical, eps, choice, config.include_top)?)
                }
            })
        };
        let weights = if config.threads > 1 { Model::in_pool(config.threads, resolve)?? } else { resolve()? };
        Model::assemble(config, weights, isa)
    }

    /// Runs `f` in a rayon pool of `threads` threads (the weights'
    /// preparation), then stops the pool and joins its threads before
    /// returning: a rayon thread that exits later frees its work-stealing
    /// state at exit, which allocates (crossbeam's epoch garbage) — inside
    /// the first inferences, where a counting-allocator test on a loaded CI
    /// machine saw 2 allocations.
    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
        let mut handles = Vec::with_capacity(threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("resnet50-prepare-{i}"))
            .spawn_handler(|t| {
                let mut b = std::thread::Builder::new();
                if let Some(name) = t.name() {
                    b = b.name(name.to_owned());
                }
                if let Some(size) = t.stack_size() {
                    b = b.stack_size(size);
                }
                handles.push(b.spawn(|| t.run())?);
                Ok(())
            })
            .build()
            .map_err(|e| Error::Config(format!("could not start {threads} threads: {e}")));
        let r = pool.map(|p| p.install(f));
        // The pool is dropped above (or never built): its threads end.
        for h in handles {
            // A pool thread that panicked has already reported through `install`.
            let _ = h.join();
        }
        r
    }

    /// The plan for `config` around the shared weights and the thread pool.
    fn assemble(config: Config, weights: Arc<PreparedWeights>, isa: Isa) -> Result<Model> {
        if isa == Isa::Avx512 {
            // Which kernel runs Winograd's products is measured once per
            // process (1–2 ms): here, not in the first inference.
            resnet50_kernels::gemm::peak::avx512_full_width();
        }
        let spec = PlanSpec {
            variant: config.variant,
            batch: config.batch,
            height: config.height,
            width: config.width,
            include_top: config.include_top,
            pooling: config.pooling,
            classes: config.classes,
            activation: config.activation(),
            threads: config.threads,
            features: config.feature_maps,
        };
        let plan = Plan::new(&spec, &weights.kernels())?;
        config.check_memory(plan.arena_len().checked_mul(std::mem::size_of::<f32>()), false)?;
        let helpers = match config.threads {
            0 | 1 => None,
            n => Some(
                resnet50_kernels::par::Helpers::new(n - 1, "resnet50")
                    .map_err(|e| Error::Config(format!("could not start {} threads: {e}", n)))?,
            ),
        };
        Ok(Model { inner: Arc::new(Inner { config, plan, weights, isa, helpers }) })
    }

    /// The configuration.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 40, 3).classes(2).build()?;
    /// assert_eq!((model.config().height, model.config().width), (32, 40));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The same network and weights (shared, not copied) for another batch
    /// size or input size: a new plan, a new thread pool if needed.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let big = model.reshape(2, 64, 48)?;
    /// assert_eq!(big.input_shape(), [2, 64, 48, 3]);
    /// assert_eq!(big.weights_bytes(), model.weights_bytes()); // the same weights, shared
    /// assert!(model.reshape(1, 16, 16).is_err()); // Keras' 32x32 minimum
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn reshape(&self, batch: usize, height: usize, width: usize) -> Result<Model> {
        self.replanned(Config { batch, height, width, ..self.inner.config.clone() })
    }

    /// This model's weights and ISA under `config` (validated first).
    fn replanned(&self, config: Config) -> Result<Model> {
        config.validate()?;
        Model::assemble(config, self.inner.weights.clone(), self.inner.isa)
    }

    /// The same network and weights (shared, not copied) on `threads`
    /// threads: a new plan and thread pool. The kernels chosen at prepare
    /// time do not depend on the thread count, so the two models run the same
    /// algorithms; side by side they measure thread scaling in one process
    /// (`resnet50 bench --baseline-threads`).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let two = model.with_threads(2)?;
    /// assert_eq!(two.config().threads, 2);
    /// assert_eq!(two.weights_bytes(), model.weights_bytes()); // the same weights, shared
    /// assert!(model.with_threads(0).is_err());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn with_threads(&self, threads: usize) -> Result<Model> {
        self.replanned(Config { threads, ..self.inner.config.clone() })
    }

    /// The static plan.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// assert_eq!(model.plan().num_convs(), 53);
    /// assert_eq!(model.plan().feature_size(), (1, 1));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }
    /// The ISA the kernels run on.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// assert!(model.isa().is_supported());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.inner.isa
    }
    /// NHWC shape of one predict's input: `[batch, height, width, 3]`.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(40, 32, 3).batch(2).classes(2).build()?;
    /// assert_eq!(model.input_shape(), [2, 40, 32, 3]);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn input_shape(&self) -> [usize; 4] {
        let c = &self.inner.config;
        [c.batch, c.height, c.width, 3]
    }
    /// Floats of one predict's input.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(40, 32, 3).batch(2).classes(2).build()?;
    /// assert_eq!(model.input_len(), 2 * 40 * 32 * 3);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn input_len(&self) -> usize {
        self.input_shape().iter().product()
    }
    /// Shape of the output (`[N, classes]`, `[N, 2048]` or `[N, h, w, 2048]`).
    ///
    /// ```
    /// use resnet50::{Pooling, ResNet50};
    /// let features = ResNet50::new().include_top(false).pooling(Pooling::None).input_shape(64, 96, 3).build()?;
    /// assert_eq!(features.output_shape(), &[1, 2, 3, 2048]); // NHWC, 1/32 of the input side
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn output_shape(&self) -> &[usize] {
        &self.inner.plan.output_shape
    }
    /// Floats of one predict's output.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).batch(2).classes(5).build()?;
    /// assert_eq!(model.output_len(), 10);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn output_len(&self) -> usize {
        self.output_shape().iter().product()
    }
    /// Bytes of the arena a [`Session`] allocates.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let input_bytes = model.input_len() * 4;
    /// assert!(model.arena_bytes() > input_bytes); // input, activations, scratch
    /// assert!(model.arena_bytes() >= model.config().min_arena_bytes().unwrap());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn arena_bytes(&self) -> usize {
        self.inner.plan.arena_len().saturating_mul(std::mem::size_of::<f32>())
    }
    /// Bytes of packed weights.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().include_top(false).input_shape(32, 32, 3).build()?;
    /// assert!(model.weights_bytes() > 23_000_000 * 4); // 23.5 M parameters without the top
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn weights_bytes(&self) -> usize {
        self.inner.weights.bytes()
    }
    /// A new session (allocates its arena once).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let mut session = model.session()?;
    /// assert_eq!(session.predict(&vec![0.0; model.input_len()])?.len(), 2);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn session(&self) -> Result<Session> {
        let len = self.inner.plan.arena_len();
        let arena = AlignedBuf::zeroed(len)
            .map_err(|e| Error::Alloc(format!("arena of {:.1} MiB: {e}", len as f64 * 4.0 / 1048576.0)))?;
        Ok(Session {
            model: self.clone(),
            arena,
            chooser: ThreadChooser::new(self.inner.config.threads),
            last_threads: 0,
        })
    }
    /// Convenience: runs one batch in a fresh session and returns the output.
    /// Allocates; use a [`Session`] for repeated inference.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(4).build()?;
    /// let probs: Vec<f32> = model.predict(&vec![0.5; model.input_len()])?;
    /// assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn predict(&self, input: &[f32]) -> Result<Vec<f32>> {
        Ok(self.session()?.predict(input)?.to_vec())
    }
}

/// Per-thread state: the arena. `predict` performs no heap allocation.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
/// let mut session = model.session()?; // allocates the arena once
/// for i in 0..3 {
///     let x = vec![i as f32 * 0.1; model.input_len()];
///     let y = session.predict(&x)?; // allocates nothing
///     assert_eq!(y.len(), 2);
/// }
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Debug)]
pub struct Session {
    model: Model,
    arena: AlignedBuf,
    /// Between the model's threads and one (`Config::adaptive_threads`).
    chooser: ThreadChooser,
    /// Threads the last inference ran on (0 before the first).
    last_threads: usize,
}

impl Session {
    /// The model this session runs.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let session = model.session()?;
    /// assert_eq!(session.model().input_shape(), model.input_shape());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The threads the last inference ran on: the model's
    /// [`threads`](ResNet50::threads), or 1 while the session has fallen back
    /// to one thread ([`ResNet50::adaptive_threads`]); 0 before the first.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).threads(2).build()?;
    /// let mut session = model.session()?;
    /// assert_eq!(session.last_threads(), 0);
    /// session.predict(&vec![0.5; model.input_len()])?;
    /// assert_eq!(session.last_threads(), 2); // an idle machine: no stall seen yet
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn last_threads(&self) -> usize {
        self.last_threads
    }

    /// Runs one batch (`input`: NHWC `[batch, height, width, 3]`, already
    /// preprocessed) and returns the output, borrowed from the arena.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).batch(2).classes(3).build()?;
    /// let mut session = model.session()?;
    /// let y = session.predict(&vec![0.5; 2 * 32 * 32 * 3])?;
    /// assert_eq!(y.len(), 2 * 3); // [2, 3], row-major
    /// let err = session.predict(&[0.0; 5]).unwrap_err();
    /// assert!(err.to_string().contains("expected 6144 values (NHWC 2x32x32x3), got 5"));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn predict(&mut self, input: &[f32]) -> Result<&[f32]> {
        self.run(input, None)?;
        Ok(self.output())
    }

    /// The output of the last run (zeros before the first), NHWC-flat,
    /// [`Model::output_len`] floats.
    pub(crate) fn output(&self) -> &[f32] {
        let plan = &self.model.inner.plan;
        &self.arena.as_slice()[plan.buffers[plan.output].range()]
    }

    /// Validates `input`, copies it into the arena and runs the plan, adding
    /// each step's seconds to `times` when given.
    fn run(&mut self, input: &[f32], times: Option<&mut [[f64; 2]]>) -> Result<()> {
        let expect = self.model.input_len();
        if input.len() != expect {
            let [n, h, w, c] = self.model.input_shape();
            return Err(Error::Input(format!("expected {expect} values (NHWC {n}x{h}x{w}x{c}), got {}", input.len())));
        }
        self.run_with(|dst| dst.copy_from_slice(input), times)
    }

    /// Lets `fill` write the input (exactly [`Model::input_len`] floats, NHWC)
    /// into the arena, checks it is finite when the model asks, and runs the
    /// plan. Allocates nothing.
    pub(crate) fn run_with(
        &mut self,
        fill: impl FnOnce(&mut [f32]) + Send,
        times: Option<&mut [[f64; 2]]>,
    ) -> Result<()> {
        let m = &self.model.inner;
        let plan = &m.plan;
        let arena = self.arena.as_mut_slice();
        // Profiles time the configured threads; otherwise the chooser may
        // pick one thread for this inference (see `adaptive`).
        let adapt = m.config.adaptive_threads && times.is_none();
        let threads = if adapt { self.chooser.next() } else { m.config.threads };
        let load = |arena: &mut [f32]| {
            let dst = &mut arena[plan.buffers[plan.input].range()];
            fill(dst);
            if m.config.reject_non_finite
                && let Some(i) = crate::weights::first_non_finite(dst)
            {
                return Err(Error::Input(format!("input[{i}] is not finite ({})", dst[i])));
            }
            Ok(())
        };
        let start = Instant::now();
        // Nanoseconds this thread waited at layer ends for the others.
        let (loaded, waited_ns) = match &m.helpers {
            // One team per inference, owned by this thread: the helpers spin
            // between layers instead of being woken for each one. The input
            // is written inside it, so that a helper parked since the last
            // inference wakes up (tens of µs on an idle vCPU) while the
            // owner copies, not while the first layer waits for it.
            Some(helpers) if threads > 1 => {
                let (loaded, stats) = helpers.with_team_stats(threads, || {
                    load(arena).map(|()| executor::run(plan, &m.weights, m.isa, threads, arena, times))
                });
                (loaded, stats.waited_ns)
            }
            _ => (load(arena).map(|()| executor::run(plan, &m.weights, m.isa, 1, arena, times)), 0),
        };
        loaded?;
        self.last_threads = threads;
        if adapt {
            self.chooser.observe(threads, start.elapsed().as_secs_f64(), waited_ns as f64 * 1e-9);
        }
        Ok(())
    }

    /// Runs `iters` predicts and returns each step's mean, median and
    /// minimum time, in plan order (for `resnet50 bench --profile`).
    /// Allocates its result (and the `iters` per-run times it keeps for the
    /// medians).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// let steps = model.session()?.profile(&vec![0.0; model.input_len()], 1)?;
    /// assert_eq!(steps.len(), model.plan().steps.len());
    /// assert_eq!(steps.iter().filter(|s| s.macs > 0 && s.kind != "dense").count(), 53);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn profile(&mut self, input: &[f32], iters: usize) -> Result<Vec<StepTime>> {
        let iters = iters.max(1);
        let mut runs = StepRuns::new(self, iters);
        for _ in 0..iters {
            runs.record(self, input)?;
        }
        Ok(runs.summary())
    }

    /// [`Session::profile`] of this session and `other` (another model's,
    /// e.g. the same weights on another thread count: [`Model::with_threads`])
    /// at once, alternating them run by run — and which of the two goes
    /// first — so that load drifting on a shared machine hits both alike.
    /// Returns this session's steps and `other`'s. `input` must suit both.
    /// `resnet50 bench --profile --baseline-threads N` prints the two side by
    /// side with each layer's speedup.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).threads(2).build()?;
    /// let one = model.with_threads(1)?;
    /// let (two_t, one_t) = model.session()?.profile_alternating(&mut one.session()?, &vec![0.1; model.input_len()], 2)?;
    /// assert_eq!(two_t.len(), one_t.len());
    /// assert!(two_t.iter().zip(&one_t).all(|(a, b)| a.name == b.name && a.macs == b.macs));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn profile_alternating(
        &mut self,
        other: &mut Session,
        input: &[f32],
        iters: usize,
    ) -> Result<(Vec<StepTime>, Vec<StepTime>)> {
        let iters = iters.max(1);
        let (mut ours, mut theirs) = (StepRuns::new(self, iters), StepRuns::new(other, iters));
        for i in 0..iters {
            if i % 2 == 1 {
                theirs.record(other, input)?;
                ours.record(self, input)?;
            } else {
                ours.record(self, input)?;
                theirs.record(other, input)?;
            }
        }
        Ok((ours.summary(), theirs.summary()))
    }

    /// Like [`Session::predict`], copying the output into `out`
    /// (`out.len()` must equal [`Model::output_len`]).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(3).build()?;
    /// let mut session = model.session()?;
    /// let x = vec![0.5; model.input_len()];
    /// let mut out = [0.0f32; 3];
    /// session.predict_into(&x, &mut out)?;
    /// assert_eq!(&out[..], session.predict(&x)?);
    /// assert!(session.predict_into(&x, &mut [0.0; 4]).is_err()); // wrong output length
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn predict_into(&mut self, input: &[f32], out: &mut [f32]) -> Result<()> {
        if out.len() != self.model.output_len() {
            return Err(Error::Input(format!(
                "output buffer has {} values, the model produces {}",
                out.len(),
                self.model.output_len()
            )));
        }
        let y = self.predict(input)?;
        out.copy_from_slice(y);
        Ok(())
    }
}

/// Each step's time in every profiled run of one session's plan, and its
/// waits summed over them: what [`Session::profile`] summarises (mean,
/// median and minimum — on a shared machine a few slow runs move a layer's
/// mean well away from its typical time).
struct StepRuns {
    /// The session's model (for its plan).
    model: Model,
    runs: Vec<Vec<f64>>,
    waited: Vec<f64>,
    /// One run's `[time, wait]` per step (reused).
    one: Vec<[f64; 2]>,
}

impl StepRuns {
    /// Room for `iters` runs of `session`'s plan, reserved up to a bound:
    /// a caller's absurd `iters` only runs long.
    fn new(session: &Session, iters: usize) -> Self {
        let steps = session.model.inner.plan.steps.len();
        StepRuns {
            model: session.model.clone(),
            runs: vec![Vec::with_capacity(iters.min(1 << 12)); steps],
            waited: vec![0.0; steps],
            one: vec![[0.0; 2]; steps],
        }
    }

    /// Runs `session` (whose plan this is) once on `input`, keeping each step's time.
    fn record(&mut self, session: &mut Session, input: &[f32]) -> Result<()> {
        self.one.fill([0.0; 2]);
        session.run(input, Some(&mut self.one))?;
        for ((run, w), &[t, wt]) in self.runs.iter_mut().zip(&mut self.waited).zip(&self.one) {
            run.push(t);
            *w += wt;
        }
        Ok(())
    }

    /// Each step's mean, median and minimum over the recorded runs (at least one).
    fn summary(mut self) -> Vec<StepTime> {
        let plan = &self.model.inner.plan;
        plan.steps
            .iter()
            .enumerate()
            .zip(&mut self.runs)
            .zip(&self.waited)
            .map(|(((t, s), run), &w)| {
                let iters = run.len().max(1) as f64;
                // A max-pool fused into the convolution before it
                // (`Plan::fused_pool`) takes no time of its own.
                let fused_into = |t: usize| plan.fused_pool(t).is_some();
                let (kind, macs) = match &s.op {
                    Op::Conv { shape, .. } if fused_into(t) => ("implicit_gemm+maxpool", shape.macs()),
                    Op::Conv { kernel, shape, .. } => (kernel.algo.name(), shape.macs()),
                    Op::MaxPool(_) if t > 0 && fused_into(t - 1) => ("maxpool (fused)", 0),
                    Op::MaxPool(_) => ("maxpool", 0),
                    Op::GlobalPool { .. } => ("global_pool", 0),
                    Op::Dense { n, k, m } => ("dense", (n * k * m) as u64),
                    Op::Softmax { .. } => ("softmax", 0),
                };
                let seconds = run.iter().sum::<f64>() / iters;
                run.sort_by(f64::total_cmp);
                StepTime {
                    name: s.name.clone(),
                    kind,
                    macs,
                    seconds,
                    // The upper middle of an even count, as `resnet50 bench`'s
                    // end-to-end median.
                    median_seconds: run.get(run.len() / 2).copied().unwrap_or(0.0),
                    min_seconds: run.first().copied().unwrap_or(0.0),
                    waited: w / iters,
                }
            })
            .collect()
    }
}

/// Backbone outputs of the last run (see [`ResNet50::feature_maps`]).
///
/// ```
/// use resnet50::{Pooling, ResNet50};
/// // A detection backbone: no top, C2…C5 kept readable.
/// let model = ResNet50::new().include_top(false).pooling(Pooling::Avg).feature_maps(true).input_shape(64, 64, 3).build()?;
/// let mut session = model.session()?;
/// let pooled = session.predict(&vec![0.2; 64 * 64 * 3])?.to_vec();
/// let f = session.features().unwrap();
/// let shapes: Vec<[usize; 4]> = f.stages.iter().map(|s| s.1).collect();
/// assert_eq!(shapes, [[1, 16, 16, 256], [1, 8, 8, 512], [1, 4, 4, 1024], [1, 2, 2, 2048]]);
/// assert_eq!(f.embedding, &pooled[..]); // the embedding is the avg-pooled C5
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    /// C2…C5: outputs of conv2_x…conv5_x, NHWC, with their shapes.
    pub stages: [(&'a [f32], [usize; 4]); 4],
    /// Global average pool of C5, `[n, 2048]`.
    pub embedding: &'a [f32],
}

impl Session {
    /// C2…C5 and the pooled embedding from the last [`Session::predict`];
    /// `None` unless the model was built with [`ResNet50::feature_maps`].
    /// Before the first predict the values are zeros.
    ///
    /// ```
    /// let plain = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
    /// assert!(plain.session()?.features().is_none());
    /// let backbone = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).feature_maps(true).build()?;
    /// let session = backbone.session()?;
    /// assert_eq!(session.features().unwrap().embedding.len(), 2048);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn features(&self) -> Option<Features<'_>> {
        let plan = &self.model.inner.plan;
        let f = plan.features.as_ref()?;
        let arena = self.arena.as_slice();
        let view = |id: usize| (&arena[plan.buffers[id].range()], plan.buffers[id].shape);
        Some(Features { stages: f.stages.map(view), embedding: &arena[plan.buffers[f.embedding].range()] })
    }
}

/// One step's share of a run, from [`Session::profile`].
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(32, 32, 3).classes(2).build()?;
/// let steps = model.session()?.profile(&vec![0.0; model.input_len()], 1)?;
/// assert_eq!(steps[0].name, "conv1");
/// assert!(steps.iter().all(|s| s.seconds >= 0.0 && s.waited == 0.0)); // one thread waits for no one
/// // One run: its time is the mean, the median and the minimum.
/// assert!(steps.iter().all(|s| s.seconds == s.median_seconds && s.seconds == s.min_seconds));
/// let two = model.with_threads(2)?.session()?.profile(&vec![0.0; model.input_len()], 3)?;
/// assert!(two.iter().all(|s| (0.0..=s.seconds).contains(&s.waited)));
/// assert!(two.iter().all(|s| s.min_seconds <= s.median_seconds && s.min_seconds <= s.seconds));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    /// Layer name.
    pub name: String,
    /// Kernel (`gemm1x1`, `winograd_f4x4`, `winograd_f3x3`, `winograd_f2x2`, `implicit_gemm`, `maxpool`, …;
    /// the stem with its max-pool fused, `implicit_gemm+maxpool`, and the
    /// pool's own step then `maxpool (fused)`, with no time of its own).
    pub kind: &'static str,
    /// Multiply-accumulates of the step (direct-convolution count).
    pub macs: u64,
    /// Mean wall time per run, seconds.
    pub seconds: f64,
    /// Median wall time over the runs, seconds (the upper one of an even
    /// count): what the step typically took, less moved than the mean by a
    /// few runs that other processes slowed down.
    pub median_seconds: f64,
    /// Shortest wall time over the runs, seconds.
    pub min_seconds: f64,
    /// Of `seconds`, how long the calling thread waited at the ends of the
    /// step's kernels for the model's other threads still in a task (their
    /// imbalance, or a preempted thread; 0 on one thread).
    pub waited: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_alternating_times_both_sessions_and_rejects_an_input_that_suits_one() {
        let two = ResNet50::new().input_shape(32, 32, 3).classes(3).threads(2).build().unwrap();
        let one = two.with_threads(1).unwrap();
        let x = init::deterministic_input(1, 32, 32);
        let (a, b) = two.session().unwrap().profile_alternating(&mut one.session().unwrap(), &x, 3).unwrap();
        assert_eq!((a.len(), b.len()), (two.plan().steps.len(), one.plan().steps.len()));
        for (p, q) in a.iter().zip(&b) {
            assert_eq!((p.name.as_str(), p.kind, p.macs), (q.name.as_str(), q.kind, q.macs));
            for s in [p, q] {
                assert!(s.min_seconds <= s.median_seconds && s.min_seconds <= s.seconds, "{s:?}");
            }
            // One thread never waits for another.
            assert_eq!(q.waited, 0.0, "{q:?}");
        }
        assert!(a[0].median_seconds > 0.0 && b[0].median_seconds > 0.0);
        let bigger = ResNet50::new().input_shape(64, 64, 3).classes(3).build().unwrap();
        let err = two.session().unwrap().profile_alternating(&mut bigger.session().unwrap(), &x, 1).unwrap_err();
        assert!(err.to_string().contains("input"), "{err}");
    }

    #[test]
    fn a_session_fallen_back_to_one_thread_gives_the_same_answers() {
        // 128×128 at batch 5 also runs stages 2–3 image by image.
        for variant in [Variant::V1, Variant::V1_5] {
            let model = ResNet50::new().variant(variant).input_shape(128, 128, 3).batch(5).threads(3).build().unwrap();
            let x = init::deterministic_input(5, 128, 128);
            let mut threads = model.session().unwrap();
            let want = threads.predict(&x).unwrap().to_vec();
            assert_eq!(threads.last_threads(), 3);
            let mut one = model.session().unwrap();
            one.chooser = ThreadChooser::stuck_on_one(3);
            for _ in 0..2 {
                assert_eq!(one.predict(&x).unwrap(), &want[..], "{variant:?}");
                assert_eq!(one.last_threads(), 1);
            }
        }
    }
}

//! The static plan: built once per (network, input size, batch), an ordered
//! list of steps — the 53 convolutions with their fused epilogues, the
//! max-pool, global pooling, the classifier — and where each activation lives
//! in the arena, from buffer liveness.

use resnet50_kernels::buffer::round_up_floats;
use resnet50_kernels::{ConvKernel, ConvParams, ConvShape, PoolShape, Subsample};

use crate::arch::{conv_specs, BLOCKS, FEATURES};
use crate::config::{ClassifierActivation, Pooling, Variant};
use crate::error::{Error, Result};

/// Index of an activation buffer in [`Plan::buffers`].
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
/// let plan = model.plan();
/// let id: resnet50::plan::BufId = plan.steps.last().unwrap().output;
/// assert_eq!(id, plan.output);
/// assert_eq!(plan.buffers[plan.input].name, "input");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub type BufId = usize;

/// One activation tensor and its place in the arena.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
/// let plan = model.plan();
/// let input = &plan.buffers[plan.input];
/// assert_eq!((input.name.as_str(), input.shape), ("input", [1, 64, 64, 3]));
/// assert!(plan.buffers.iter().all(|b| b.range().end <= plan.activations_len));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// What produces it (the step's name, or `input`).
    pub name: String,
    /// NHWC shape (`[n, 1, 1, c]` for pooled / classifier outputs; `n` is 1
    /// for a buffer that lives only inside the steps run image by image,
    /// [`Plan::per_image`]).
    pub shape: [usize; 4],
    /// Offset in floats from the start of the arena (64-byte aligned).
    pub offset: usize,
}

impl Buffer {
    /// Number of floats.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// assert_eq!(model.plan().buffers[model.plan().input].len(), 64 * 64 * 3);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True for an empty tensor (never in a valid plan).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// assert!(model.plan().buffers.iter().all(|b| !b.is_empty()));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Range of the buffer in the arena.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// let r = model.plan().buffers[model.plan().input].range();
    /// assert_eq!((r.len(), r.start % 16), (64 * 64 * 3, 0)); // 64-byte aligned offsets
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// What a step computes.
///
/// ```
/// use resnet50::plan::Op;
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
/// let ops: Vec<&Op> = model.plan().steps.iter().map(|s| &s.op).collect();
/// assert!(matches!(ops[0], Op::Conv { layer: 0, residual: None, relu: true, .. }));
/// assert!(matches!(ops[1], Op::MaxPool(_)));
/// assert!(ops.iter().any(|op| matches!(op, Op::Dense { n: 1, k: 2048, m: 10 })));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Convolution `conv_specs()[layer]` with BN folded in and the epilogue
    /// `relu?(conv + bias + residual)`.
    Conv {
        /// Index into [`conv_specs`] and the prepared weights.
        layer: usize,
        /// Algorithm and parameters.
        kernel: ConvKernel,
        /// Full shape at this step.
        shape: ConvShape,
        /// Residual added before the ReLU (the block's shortcut). When it is
        /// the step's own output buffer, the convolution adds onto the
        /// shortcut in place ([`Step::residual_in_output`]).
        residual: Option<BufId>,
        /// `Some` when the residual is read at every other pixel of a larger
        /// buffer (the last block of a stage under the early stride, see [`Plan::new`]).
        residual_subsample: Option<Subsample>,
        /// Apply ReLU.
        relu: bool,
    },
    /// 3×3/2 max-pool with padding 1.
    MaxPool(PoolShape),
    /// Global average or max pooling to `[n, c]`.
    GlobalPool {
        /// Avg or Max.
        kind: Pooling,
        /// Batch, height, width, channels of the input.
        nhwc: [usize; 4],
    },
    /// Classifier `[n, 2048] · [2048, classes] + bias`.
    Dense {
        /// Rows.
        n: usize,
        /// Input features.
        k: usize,
        /// Classes.
        m: usize,
    },
    /// Row-wise softmax, in place.
    Softmax {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

/// One step of the plan.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
/// let plan = model.plan();
/// assert_eq!(plan.steps[0].input, plan.input);
/// // Each step reads the input or what an earlier step wrote.
/// let written_before = |t: usize, id| plan.steps[..t].iter().any(|s| s.output == id);
/// assert!(plan.steps.iter().enumerate().all(|(t, s)| s.input == plan.input || written_before(t, s.input)));
/// assert!(plan.steps.iter().any(|s| s.name == "conv2_block1_1"));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Layer name (Keras naming: `conv2_block1_1`, `pool1`, `avg_pool`, `predictions`…).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Buffer read.
    pub input: BufId,
    /// Buffer written: equal to `input` only for in-place softmax, equal to
    /// the residual for a convolution that adds its shortcut in place.
    pub output: BufId,
}

impl Step {
    /// Whether this is a convolution whose residual is its own output buffer:
    /// the buffer holds the shortcut when the step starts and the block's
    /// output after it ([`resnet50_kernels::Epilogue::residual_in_output`]).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).build()?;
    /// let steps = &model.plan().steps;
    /// let in_place: Vec<&str> = steps.iter().filter(|s| s.residual_in_output()).map(|s| s.name.as_str()).collect();
    /// // Every block's last convolution but those that add a subsampled shortcut (v1's early stride).
    /// assert_eq!(in_place.len(), 16 - 3);
    /// assert!(in_place.iter().all(|name| name.ends_with("_3")));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn residual_in_output(&self) -> bool {
        matches!(self.op, Op::Conv { residual: Some(r), .. } if r == self.output)
    }

    /// The buffers the step reads: its input and, for a convolution, its residual.
    fn reads(&self) -> impl Iterator<Item = BufId> + use<> {
        let residual = match self.op {
            Op::Conv { residual, .. } => residual,
            _ => None,
        };
        std::iter::once(self.input).chain(residual)
    }
}

/// What a plan is built from.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 48, 3).classes(10).build()?;
/// let spec = &model.plan().spec;
/// assert_eq!((spec.batch, spec.height, spec.width), (1, 64, 48));
/// assert_eq!((spec.include_top, spec.classes, spec.features), (true, 10, false));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanSpec {
    /// Network.
    pub variant: Variant,
    /// Images per run.
    pub batch: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Keep the classifier.
    pub include_top: bool,
    /// Global pooling without the top.
    pub pooling: Pooling,
    /// Classes of the classifier.
    pub classes: usize,
    /// Activation after the classifier.
    pub activation: ClassifierActivation,
    /// Threads the kernels run with (sizes their scratch).
    pub threads: usize,
    /// Keep the stage outputs C2…C5 and the pooled 2048-d embedding readable
    /// after a run (backbone use).
    pub features: bool,
}

/// Buffers that hold the backbone outputs after a run (see [`PlanSpec::features`]).
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).feature_maps(true).build()?;
/// let plan = model.plan();
/// let f = plan.features.as_ref().unwrap();
/// assert_eq!(plan.buffers[f.stages[3]].shape, [1, 2, 2, 2048]); // C5 at stride 32
/// assert_eq!(plan.buffers[f.embedding].len(), 2048);
/// assert!(resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?.plan().features.is_none());
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureBuffers {
    /// Outputs of conv2_x, conv3_x, conv4_x, conv5_x (C2…C5), NHWC.
    pub stages: [BufId; 4],
    /// Global average pool of C5: `[n, 2048]`.
    pub embedding: BufId,
}

/// The static plan.
///
/// ```
/// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
/// let plan = model.plan();
/// assert_eq!(plan.num_convs(), 53);
/// assert_eq!(plan.buffers[plan.input].shape, [1, 64, 64, 3]);
/// assert_eq!(plan.output_shape, [1, 10]);
/// assert_eq!(plan.arena_len() * 4, model.arena_bytes());
/// // Liveness packs ~110 activations into an arena much smaller than their sum.
/// let total: usize = plan.buffers.iter().map(|b| b.len()).sum();
/// assert!(plan.activations_len < total / 2);
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Plan {
    /// What it was built from.
    pub spec: PlanSpec,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Activation buffers.
    pub buffers: Vec<Buffer>,
    /// The network input (NHWC `[batch, height, width, 3]`).
    pub input: BufId,
    /// The network output.
    pub output: BufId,
    /// Shape of the output as the model returns it (2-D or 4-D).
    pub output_shape: Vec<usize>,
    /// Floats of activations (start of the scratch region).
    pub activations_len: usize,
    /// Floats of kernel scratch after the activations.
    pub scratch_len: usize,
    /// Backbone outputs, when the spec asks for them.
    pub features: Option<FeatureBuffers>,
    /// With a batch of several images, steps `0..per_image` (the stem and
    /// stages 2–3) run image by image: the executor takes each step's
    /// batch-wide buffers one image at a time, and the buffers that live only
    /// inside those steps hold one image (`shape[0] == 1`), so a stage's
    /// activations stay in the caches from one layer to the next instead of a
    /// batch-wide tensor (25 MB per 56×56×256 layer at batch 8) going through
    /// memory. 0 when the batch is one image or the maps are small.
    pub per_image: usize,
}

/// Batch-wide stage-2 tensors above this many bytes make the stem and
/// stages 2–3 run image by image ([`Plan::per_image`]): 224×224 from two
/// images up (6.4 MB at batch 2, where the sum of per-layer minima fell
/// 2.6–4.5 % for v1 and v1.5 at one and two threads), 128×128 from five.
const PER_IMAGE_MIN_BYTES: usize = 4 << 20;

struct Builder {
    steps: Vec<Step>,
    buffers: Vec<Buffer>,
}

impl Builder {
    fn buffer(&mut self, name: &str, shape: [usize; 4]) -> BufId {
        self.buffers.push(Buffer { name: name.to_string(), shape, offset: 0 });
        self.buffers.len() - 1
    }
    fn step(&mut self, name: &str, op: Op, input: BufId, out_shape: [usize; 4]) -> BufId {
        let output = self.buffer(name, out_shape);
        self.step_into(name, op, input, output)
    }
    /// A step writing into an existing buffer of the output's shape (in place).
    fn step_into(&mut self, name: &str, op: Op, input: BufId, output: BufId) -> BufId {
        self.steps.push(Step { name: name.to_string(), op, input, output });
        output
    }
}

impl Plan {
    /// Builds the plan. `kernels[i]` is the kernel chosen for
    /// `conv_specs(variant)[i]` (see [`crate::prepare`]).
    ///
    /// **Early stride** (v1 without feature maps, as OpenVINO does): in v1 the
    /// first block of stages 3–5 strides in its 1×1 convolutions (`_0`, `_1`),
    /// which read only every other pixel of the previous stage's output. So the
    /// previous stage's last block is computed at those pixels only: its 3×3
    /// (`_2`) runs with stride 2, its `_3` at the subsampled pixels, adding its
    /// full-resolution shortcut in place ([`Subsample`]), and the next block's
    /// `_0`/`_1` become stride-1 1×1 convolutions. Same values, 3.48 instead of
    /// 3.86 GMAC at 224×224. It applies where the `_2` kernel can stride:
    /// implicit GEMM or direct, or a kernel packed for stride 2 only (a
    /// stride-2 Winograd tile, which [`crate::prepare`] picks for the model's
    /// own weights), not a stride-1 Winograd kernel; and not when the stage
    /// outputs C2–C4 are kept (feature maps), where a stride-2-only kernel is
    /// refused.
    ///
    /// ```
    /// use resnet50::plan::{Plan, PlanSpec};
    /// use resnet50::{arch::conv_specs, prepare::conv_params, ClassifierActivation, Pooling, Variant};
    /// use resnet50_kernels::{ConvAlgo, ConvKernel};
    /// let direct = |s| ConvKernel::new(conv_params(s), ConvAlgo::Direct).unwrap();
    /// let kernels: Vec<ConvKernel> = conv_specs(Variant::V1).iter().map(direct).collect();
    /// let spec = PlanSpec { variant: Variant::V1, batch: 2, height: 32, width: 32, include_top: false,
    ///     pooling: Pooling::Avg, classes: 0, activation: ClassifierActivation::None, threads: 1, features: false };
    /// let plan = Plan::new(&spec, &kernels)?;
    /// assert_eq!((plan.num_convs(), plan.output_shape.clone()), (53, vec![2, 2048]));
    /// assert!(Plan::new(&spec, &kernels[1..]).is_err()); // one kernel per convolution
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn new(spec: &PlanSpec, kernels: &[ConvKernel]) -> Result<Plan> {
        let specs = conv_specs(spec.variant);
        if kernels.len() != specs.len() {
            return Err(Error::Config(format!("plan needs {} kernels, got {}", specs.len(), kernels.len())));
        }
        // Each kernel computes its layer, except that a 3×3 layer may come
        // packed for v1's early stride, stride 2 only (checked where used:
        // every 3×3 is its block's `_2`).
        for (k, s) in kernels.iter().zip(&specs) {
            let own = crate::prepare::conv_params(s);
            if k.params != own && !(s.k == 3 && k.params == ConvParams { stride: 2, ..own }) {
                return Err(Error::Config(format!(
                    "kernel for layer {} has parameters {:?}, the layer needs {own:?}",
                    s.name, k.params
                )));
            }
        }
        let n = spec.batch;
        let mut b = Builder { steps: Vec::new(), buffers: Vec::new() };
        let input = b.buffer("input", [n, spec.height, spec.width, 3]);
        let with_stride = |i: usize, stride: usize| -> Option<ConvKernel> {
            ConvKernel::new(ConvParams { stride, ..kernels[i].params }, kernels[i].algo)
        };

        // Runs `kernel` (layer `i`) on buffer `x`, returning its output buffer.
        let conv = |b: &mut Builder,
                    i: usize,
                    kernel: ConvKernel,
                    x: BufId,
                    residual: Option<BufId>,
                    residual_subsample: Option<Subsample>,
                    relu: bool|
         -> Result<BufId> {
            let [_, h, w, _] = b.buffers[x].shape;
            let shape = kernel.params.shape(n, h, w);
            if !shape.is_valid() || shape.out_h() == 0 || shape.out_w() == 0 {
                return Err(Error::Config(format!(
                    "input {}x{} is too small: layer {} would get a {h}x{w} input",
                    spec.height, spec.width, specs[i].name
                )));
            }
            let out = [n, shape.out_h(), shape.out_w(), kernel.params.cout];
            // The last conv of a block adds its shortcut in place when the
            // kernel can: the shortcut is read by no later step (identity
            // shortcuts are the previous block's output, projections are new).
            let into = residual.filter(|&r| {
                b.buffers[r].shape == out && residual_subsample.is_none() && kernel.algo.adds_residual_in_output()
            });
            let op = Op::Conv { layer: i, kernel, shape, residual, residual_subsample, relu };
            Ok(match into {
                Some(r) => b.step_into(&specs[i].name, op, x, r),
                None => b.step(&specs[i].name, op, x, out),
            })
        };

        let mut x = conv(&mut b, 0, kernels[0], input, None, None, true)?;
        let [_, h, w, c] = b.buffers[x].shape;
        let pool = PoolShape { batch: n, in_h: h, in_w: w, c, k: 3, stride: 2, pad: 1 };
        x = b.step("pool1", Op::MaxPool(pool), x, [n, pool.out_h(), pool.out_w(), c]);

        let early_stride = spec.variant == Variant::V1 && !spec.features;
        // The previous block already strided: this block's 1×1 convs don't.
        let mut strided_in = false;
        let mut stage_out = [0; 4];
        let mut i = 1;
        while i < specs.len() {
            // One bottleneck block: [_0], _1, _2, _3 (+ shortcut, ReLU).
            let first = usize::from(specs[i].index == 0);
            let (i1, i2, i3) = (i + first, i + first + 1, i + first + 2);
            let entry = |j: usize| if strided_in { with_stride(j, 1).unwrap_or(kernels[j]) } else { kernels[j] };
            let stage = specs[i3].stage;
            let tail = if early_stride && stage < 5 && specs[i3].block == BLOCKS[stage - 2] {
                with_stride(i2, 2)
            } else {
                None
            };
            let shortcut = if first == 1 { conv(&mut b, i, entry(i), x, None, None, false)? } else { x };
            let t = conv(&mut b, i1, entry(i1), x, None, None, true)?;
            let k2 = match tail {
                Some(k) => k,
                None if kernels[i2].params.stride == specs[i2].stride => kernels[i2],
                None => {
                    return Err(Error::Config(format!(
                        "layer {} was packed for stride 2 only (v1's early stride), but this plan runs it at stride {} \
                         (the early stride applies to v1 without feature maps, to the last block of stages 2-4): \
                         prepare the weights with early_stride false, or portable",
                        specs[i2].name, specs[i2].stride
                    )));
                }
            };
            let t = conv(&mut b, i2, k2, t, None, None, true)?;
            let sub = tail.map(|_| {
                let [_, h, w, _] = b.buffers[shortcut].shape;
                Subsample { h, w, stride: 2 }
            });
            x = conv(&mut b, i3, kernels[i3], t, Some(shortcut), sub, true)?;
            stage_out[stage - 2] = x;
            strided_in = tail.is_some();
            i = i3 + 1;
        }

        let [_, h, w, c] = b.buffers[x].shape;
        debug_assert_eq!(c, FEATURES);
        let c5 = x;
        let output_shape;
        let mut embedding = None;
        if spec.include_top || spec.pooling != Pooling::None {
            let kind = if spec.include_top { Pooling::Avg } else { spec.pooling };
            let name = if kind == Pooling::Avg { "avg_pool" } else { "max_pool" };
            x = b.step(name, Op::GlobalPool { kind, nhwc: [n, h, w, c] }, x, [n, 1, 1, c]);
            embedding = (kind == Pooling::Avg).then_some(x);
            output_shape = vec![n, c];
        } else {
            output_shape = vec![n, h, w, c];
        }
        if spec.features && embedding.is_none() {
            let kind = Pooling::Avg;
            embedding = Some(b.step("embedding", Op::GlobalPool { kind, nhwc: [n, h, w, c] }, c5, [n, 1, 1, c]));
        }
        let features = match (spec.features, embedding) {
            (true, Some(embedding)) => Some(FeatureBuffers { stages: stage_out, embedding }),
            _ => None,
        };
        let mut output_shape = output_shape;
        if spec.include_top {
            let m = spec.classes;
            x = b.step("predictions", Op::Dense { n, k: c, m }, x, [n, 1, 1, m]);
            if spec.activation == ClassifierActivation::Softmax {
                b.step_into("softmax", Op::Softmax { rows: n, cols: m }, x, x);
            }
            output_shape = vec![n, m];
        }

        let mut plan = Plan {
            spec: spec.clone(),
            steps: b.steps,
            buffers: b.buffers,
            input,
            output: x,
            output_shape,
            activations_len: 0,
            scratch_len: 0,
            features,
            per_image: 0,
        };
        plan.split_per_image(&specs);
        plan.assign_offsets();
        let per_image = plan.per_image;
        plan.scratch_len = plan
            .steps
            .iter()
            .enumerate()
            .map(|(t, s)| match &s.op {
                Op::Conv { kernel, shape, .. } => {
                    // The whole batch, or one image (a per-image step).
                    let batches = if t < per_image { [shape.batch, 1] } else { [shape.batch; 2] };
                    let fused = plan.fused_pool(t);
                    batches
                        .into_iter()
                        .map(|n| {
                            let plain = kernel.scratch_len(n, shape.in_h, shape.in_w, spec.threads);
                            let shape = ConvShape { batch: n, ..*shape };
                            let pool = fused.map_or(0, |p| {
                                kernel.maxpool_scratch_len(&shape, &PoolShape { batch: n, ..p }, spec.threads)
                            });
                            plain.max(pool)
                        })
                        .max()
                        .unwrap_or(0)
                }
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        plan.scratch_len = round_up_floats(plan.scratch_len);
        Ok(plan)
    }

    /// The max-pool that step `t` (a convolution) runs fused with it
    /// ([`ConvKernel::run_maxpool`]), skipping step `t + 1`: when step `t + 1`
    /// is a max-pool over step `t`'s whole output, nothing else reads that
    /// output, no residual is added, both steps run on the whole batch or both
    /// image by image, and the kernel fuses the pair — ResNet50's stem
    /// (`conv1` + `pool1`) on the fast kernels. The convolution's output is
    /// then never written (its buffer stays in the plan, unused); `pool1`'s
    /// time shows in `conv1`'s.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// let plan = model.plan();
    /// assert!(plan.fused_pool(0).is_some() && plan.steps[1].name == "pool1");
    /// assert!(plan.fused_pool(1).is_none() && plan.fused_pool(2).is_none());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn fused_pool(&self, t: usize) -> Option<PoolShape> {
        let (Some(conv), Some(next)) = (self.steps.get(t), self.steps.get(t + 1)) else {
            return None;
        };
        let (Op::Conv { kernel, shape, residual: None, .. }, Op::MaxPool(pool)) = (&conv.op, &next.op) else {
            return None;
        };
        let private = next.input == conv.output
            && conv.output != self.output
            && self.steps.iter().enumerate().all(|(u, s)| u == t + 1 || s.reads().all(|id| id != conv.output))
            && self.features.as_ref().is_none_or(|f| !f.stages.contains(&conv.output) && f.embedding != conv.output);
        let same_regime = (t < self.per_image) == (t + 1 < self.per_image);
        (private && same_regime && kernel.fuses_maxpool(shape, pool)).then_some(*pool)
    }

    /// Steps during which each buffer is live: from the step that writes it
    /// (0 for the input) to the last step that reads it (the end for the output).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// let plan = model.plan();
    /// let life = plan.lifetimes();
    /// assert_eq!(life.len(), plan.buffers.len());
    /// assert_eq!((life[plan.input].0, life[plan.output].1), (0, plan.steps.len()));
    /// assert!(life.iter().all(|&(first, last)| first <= last));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn lifetimes(&self) -> Vec<(usize, usize)> {
        let mut life: Vec<(usize, usize)> = vec![(usize::MAX, 0); self.buffers.len()];
        life[self.input] = (0, 0);
        for (t, s) in self.steps.iter().enumerate() {
            let mut touch = |id: BufId| {
                life[id].0 = life[id].0.min(t);
                life[id].1 = life[id].1.max(t);
            };
            s.reads().chain([s.output]).for_each(&mut touch);
        }
        // A convolution fused with the max-pool after it reads its input
        // while it writes the pool's output.
        for t in 0..self.steps.len() {
            if self.fused_pool(t).is_some() {
                let input = self.steps[t].input;
                life[input].1 = life[input].1.max(t + 1);
            }
        }
        life[self.output].1 = self.steps.len();
        if let Some(f) = &self.features {
            for &id in f.stages.iter().chain([&f.embedding]) {
                life[id].1 = self.steps.len();
            }
        }
        // Steps run image by image: a batch-wide buffer they touch holds other
        // images before and after each pass, so it lives through all of them.
        if self.per_image > 0 {
            for (id, l) in life.iter_mut().enumerate() {
                if l.0 < self.per_image && self.buffers[id].shape[0] == self.spec.batch {
                    *l = (0, l.1.max(self.per_image - 1));
                }
            }
        }
        life
    }

    /// Sets [`Plan::per_image`]: when a batch-wide stage-2 tensor (256
    /// channels) is over [`PER_IMAGE_MIN_BYTES`], the steps before stage 4 run
    /// image by image (stage 4's Winograd weights are 6.6–9.4 MB per layer:
    /// read once per batch, not per image), and their buffers that no later
    /// step reads hold one image.
    ///
    /// Why: at batch 8 (224×224) stage 2's 1×1 layers ran at 64 % of the two
    /// cores' FMA peak against 77–86 % for stages 3–5, each of their 25 MB
    /// tensors going through DRAM. Alternated in one process on a 2-core Zen 4
    /// (batch 8, per-layer minima of 6 runs, v1 and v1.5 at one and two
    /// threads): stage 2 8–17 % faster, stage 3 −12 to +1 %, stages 4–5
    /// unchanged (±4 %); the batch's median time 2–9 % lower; the arena 43 →
    /// 18 MB (v1) and 54 → 30 MB (v1.5). Outputs are bit-identical: every
    /// kernel computes an image the same way in a batch as alone.
    fn split_per_image(&mut self, specs: &[crate::arch::ConvSpec]) {
        let n = self.spec.batch;
        let stage4 = self.steps.iter().position(|s| matches!(s.op, Op::Conv { layer, .. } if specs[layer].stage >= 4));
        let Some(end) = stage4 else { return };
        let stage2_pixels = self.steps[..end]
            .iter()
            .find_map(|s| match s.op {
                Op::MaxPool(p) => Some(p.out_h() * p.out_w()),
                _ => None,
            })
            .unwrap_or(0);
        if n < 2 || n.saturating_mul(stage2_pixels).saturating_mul(256 * 4) <= PER_IMAGE_MIN_BYTES {
            return;
        }
        let life = self.lifetimes();
        self.per_image = end;
        for (id, buf) in self.buffers.iter_mut().enumerate() {
            // Written and last read inside the segment (not the input, the
            // output or a kept feature map: those end at the last step).
            let (first, last) = life[id];
            if id != self.input && first < end && last < end {
                debug_assert_eq!(buf.shape[0], n);
                buf.shape[0] = 1;
            }
        }
    }

    /// Places buffers in the arena: largest first, each at the lowest
    /// 64-byte-aligned offset that does not overlap a buffer live at the same time.
    fn assign_offsets(&mut self) {
        let life = self.lifetimes();
        let mut order: Vec<BufId> = (0..self.buffers.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.buffers[i].len()), i));
        let mut placed: Vec<BufId> = Vec::new();
        let mut end = 0;
        for id in order {
            let len = round_up_floats(self.buffers[id].len());
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&p| life[p].0 <= life[id].1 && life[id].0 <= life[p].1)
                .map(|&p| (self.buffers[p].offset, self.buffers[p].offset + round_up_floats(self.buffers[p].len())))
                .collect();
            busy.sort_unstable();
            let mut offset = 0;
            for (s, e) in busy {
                if offset + len <= s {
                    break;
                }
                offset = offset.max(e);
            }
            self.buffers[id].offset = offset;
            end = end.max(offset + len);
            placed.push(id);
        }
        self.activations_len = end;
    }

    /// Floats of the whole arena (activations + scratch).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// let plan = model.plan();
    /// assert_eq!(plan.arena_len(), plan.activations_len + plan.scratch_len);
    /// assert_eq!(plan.arena_len() * 4, model.arena_bytes());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn arena_len(&self) -> usize {
        self.activations_len + self.scratch_len
    }

    /// Multiply-accumulates of one run (convolutions and classifier).
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// let two = model.reshape(2, 64, 64)?;
    /// assert_eq!(two.plan().macs(), 2 * model.plan().macs());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn macs(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv { shape, .. } => shape.macs(),
                Op::Dense { n, k, m } => (n * k * m) as u64,
                _ => 0,
            })
            .sum()
    }

    /// Number of convolution steps.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(64, 64, 3).classes(10).build()?;
    /// assert_eq!(model.plan().num_convs(), resnet50::arch::NUM_CONVS);
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn num_convs(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.op, Op::Conv { .. })).count()
    }

    /// Spatial size `(h, w)` of the last feature map.
    ///
    /// ```
    /// let model = resnet50::ResNet50::new().input_shape(96, 64, 3).classes(10).build()?;
    /// assert_eq!(model.plan().feature_size(), (3, 2)); // stride 32
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn feature_size(&self) -> (usize, usize) {
        let last = self.steps.iter().rev().find(|s| matches!(s.op, Op::Conv { .. })).expect("plan has convolutions");
        let [_, h, w, _] = self.buffers[last.output].shape;
        (h, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::conv_params;
    use resnet50_kernels::{ConvAlgo, WinogradTile};

    fn direct_kernels(variant: Variant) -> Vec<ConvKernel> {
        conv_specs(variant).iter().map(|s| ConvKernel::new(conv_params(s), ConvAlgo::Direct).unwrap()).collect()
    }

    fn plan(variant: Variant, h: usize, w: usize, include_top: bool, pooling: Pooling) -> Plan {
        plan_of_batch(variant, 1, h, w, include_top, pooling)
    }

    fn plan_of_batch(variant: Variant, batch: usize, h: usize, w: usize, include_top: bool, pooling: Pooling) -> Plan {
        let kernels = direct_kernels(variant);
        let spec = PlanSpec {
            variant,
            batch,
            height: h,
            width: w,
            include_top,
            pooling,
            classes: 1000,
            activation: ClassifierActivation::Softmax,
            threads: 1,
            features: false,
        };
        Plan::new(&spec, &kernels).unwrap()
    }

    #[test]
    fn fifty_three_convs_and_feature_sizes() {
        for v in [Variant::V1, Variant::V1_5] {
            for (h, w, oh, ow) in
                [(224, 224, 7, 7), (197, 161, 7, 6), (256, 320, 8, 10), (64, 64, 2, 2), (32, 32, 1, 1)]
            {
                let p = plan(v, h, w, false, Pooling::None);
                assert_eq!(p.num_convs(), 53);
                assert_eq!(p.feature_size(), (oh, ow), "{v} {h}x{w}");
                assert_eq!(p.output_shape, vec![1, oh, ow, 2048]);
            }
        }
    }

    #[test]
    fn macs_per_image() {
        let conv_macs = |v, features| {
            let mut spec = plan(v, 224, 224, false, Pooling::Avg).spec;
            spec.features = features;
            Plan::new(&spec, &direct_kernels(v)).unwrap().macs() as f64
        };
        // With feature maps every layer runs at full resolution.
        let v1 = conv_macs(Variant::V1, true);
        let v15 = conv_macs(Variant::V1_5, true);
        assert!((v1 / 3.856e9 - 1.0).abs() < 1e-3, "v1 {v1}");
        assert!((v15 / 4.087e9 - 1.0).abs() < 1e-3, "v1.5 {v15}");
        assert_eq!(conv_macs(Variant::V1_5, false), v15);
        // Early stride: three 3x3 and three 1x1 layers at a quarter of the pixels.
        let saved = 3.0 * 0.75 * (56.0 * 56.0 * 64.0 * 64.0 * 9.0 + 56.0 * 56.0 * 64.0 * 256.0);
        assert_eq!(conv_macs(Variant::V1, false), v1 - saved);
        assert!((v1 - saved) / 3.48e9 - 1.0 < 1e-3);
    }

    #[test]
    fn early_stride_moves_the_stride_into_the_last_block() {
        let p = plan(Variant::V1, 224, 224, true, Pooling::Avg);
        let conv = |name: &str| {
            let s = p.steps.iter().find(|s| s.name == name).unwrap();
            let Op::Conv { kernel, shape, residual_subsample, .. } = &s.op else { panic!("{name}") };
            (kernel.params.stride, shape.in_h, shape.out_h(), *residual_subsample)
        };
        let sub = |h| Some(Subsample { h, w: h, stride: 2 });
        assert_eq!(conv("conv2_block3_2"), (2, 56, 28, None));
        assert_eq!(conv("conv2_block3_3"), (1, 28, 28, sub(56)));
        assert_eq!(conv("conv3_block1_0"), (1, 28, 28, None));
        assert_eq!(conv("conv3_block1_1"), (1, 28, 28, None));
        assert_eq!(conv("conv4_block6_3"), (1, 7, 7, sub(14)));
        assert_eq!(conv("conv5_block1_1"), (1, 7, 7, None));
        assert_eq!(conv("conv5_block3_2"), (1, 7, 7, None));
        // A Winograd-packed 3x3 cannot stride: that block stays at full resolution.
        let mut kernels = direct_kernels(Variant::V1);
        let i = conv_specs(Variant::V1).iter().position(|s| s.name == "conv3_block4_2").unwrap();
        kernels[i] = ConvKernel::new(kernels[i].params, ConvAlgo::Winograd(WinogradTile::F4x4)).unwrap();
        let q = Plan::new(&p.spec, &kernels).unwrap();
        let find = |name: &str| q.steps.iter().find(|s| s.name == name).map(|s| s.op.clone()).unwrap();
        assert!(matches!(find("conv3_block4_2"), Op::Conv { shape, .. } if shape.stride_h == 1));
        assert!(matches!(find("conv4_block1_1"), Op::Conv { shape, .. } if shape.stride_h == 2));
        assert!(matches!(find("conv2_block3_2"), Op::Conv { shape, .. } if shape.stride_h == 2));
    }

    #[test]
    fn stride_two_only_kernels_need_the_early_stride() {
        // A stride-2 Winograd tile on an early-stride 3×3 layer: the plan
        // with the early stride runs it; one with feature maps (no early
        // stride) refuses it, naming the layer; other parameters never pass.
        let p = plan(Variant::V1, 224, 224, true, Pooling::Avg);
        let mut kernels = direct_kernels(Variant::V1);
        let i = conv_specs(Variant::V1).iter().position(|s| s.name == "conv3_block4_2").unwrap();
        let s2 = ConvParams { stride: 2, ..kernels[i].params };
        kernels[i] = ConvKernel::new(s2, ConvAlgo::Winograd(WinogradTile::F2x2S2)).unwrap();
        let q = Plan::new(&p.spec, &kernels).unwrap();
        let step = q.steps.iter().find(|s| s.name == "conv3_block4_2").unwrap();
        assert!(
            matches!(step.op, Op::Conv { shape, kernel, .. } if shape.stride_h == 2 && kernel.algo != ConvAlgo::Direct)
        );
        let features = PlanSpec { features: true, ..p.spec };
        let e = Plan::new(&features, &kernels).unwrap_err().to_string();
        assert!(e.contains("conv3_block4_2") && e.contains("early stride"), "{e}");
        let mut wrong = direct_kernels(Variant::V1);
        wrong[i] = ConvKernel::new(ConvParams { cout: 7, ..wrong[i].params }, ConvAlgo::Direct).unwrap();
        let e = Plan::new(&p.spec, &wrong).unwrap_err().to_string();
        assert!(e.contains("conv3_block4_2"), "{e}");
        // A 1×1 layer never takes another stride; a 3×3 outside the early
        // stride (v1.5, or not a stage's last block) is refused where used.
        let j = conv_specs(Variant::V1).iter().position(|s| s.name == "conv3_block4_1").unwrap();
        let mut wrong = direct_kernels(Variant::V1);
        wrong[j] = ConvKernel::new(ConvParams { stride: 2, ..wrong[j].params }, ConvAlgo::Direct).unwrap();
        assert!(Plan::new(&p.spec, &wrong).unwrap_err().to_string().contains("conv3_block4_1"));
        let j = conv_specs(Variant::V1).iter().position(|s| s.name == "conv3_block2_2").unwrap();
        let mut wrong = direct_kernels(Variant::V1);
        wrong[j] = ConvKernel::new(ConvParams { stride: 2, ..wrong[j].params }, ConvAlgo::Direct).unwrap();
        assert!(Plan::new(&p.spec, &wrong).unwrap_err().to_string().contains("conv3_block2_2"));
    }

    #[test]
    fn live_buffers_never_overlap_and_steps_never_alias() {
        // Batch 3 also runs its first steps image by image (Plan::per_image).
        for (v, batch) in [(Variant::V1, 1), (Variant::V1_5, 1), (Variant::V1, 3), (Variant::V1_5, 3)] {
            let p = plan_of_batch(v, batch, 224, 224, true, Pooling::None);
            assert_eq!(p.per_image > 0, batch > 1);
            let life = p.lifetimes();
            for a in 0..p.buffers.len() {
                for b in a + 1..p.buffers.len() {
                    let live_together = life[a].0 <= life[b].1 && life[b].0 <= life[a].1;
                    let (ra, rb) = (p.buffers[a].range(), p.buffers[b].range());
                    let overlap = ra.start < rb.end && rb.start < ra.end;
                    assert!(!(live_together && overlap), "{} and {} overlap", p.buffers[a].name, p.buffers[b].name);
                }
                assert_eq!(p.buffers[a].offset % 16, 0);
            }
            // The arena is much smaller than all activations together.
            let total: usize = p.buffers.iter().map(|b| b.len()).sum();
            assert!(p.activations_len < total / 3, "{} vs {}", p.activations_len, total);
        }
    }
    #[test]
    fn the_stem_and_stages_2_3_run_image_by_image_in_big_batches() {
        for v in [Variant::V1, Variant::V1_5] {
            let p = plan_of_batch(v, 8, 224, 224, true, Pooling::None);
            // Up to the first stage-4 step; everything before it is the stem or stages 2–3.
            let first4 = p.steps.iter().position(|s| s.name.starts_with("conv4_")).unwrap();
            assert_eq!(p.per_image, first4);
            assert!(p.steps[..first4]
                .iter()
                .all(|s| ["conv1", "pool1", "conv2_", "conv3_"].iter().any(|n| s.name.starts_with(n))));
            // Buffers written and read only by those steps hold one image; the input,
            // what stage 4 reads and the output keep the batch.
            let life = p.lifetimes();
            for (id, b) in p.buffers.iter().enumerate() {
                let inside = id != p.input && life[id].1 < first4;
                assert_eq!(b.shape[0], if inside { 1 } else { 8 }, "{} {:?}", b.name, life[id]);
            }
            let stage3_out = p.steps[first4].input;
            assert_eq!(p.buffers[stage3_out].shape[0], 8);
            assert!(p.buffers.iter().filter(|b| b.shape[0] == 1).count() >= 8);
            // Batch-wide buffers that those steps touch live through all of them.
            assert!(life[p.input].1 >= first4 - 1 && life[stage3_out].0 == 0);
            // The whole-batch plan needs more memory.
            let mut whole = p.clone();
            whole.per_image = 0;
            for b in &mut whole.buffers {
                b.shape[0] = 8;
            }
            whole.assign_offsets();
            assert!(
                p.activations_len * 2 <= whole.activations_len,
                "{} vs {}",
                p.activations_len,
                whole.activations_len
            );
        }
        // One image, or batch-wide stage-2 tensors of at most 4 MiB: layer by layer.
        assert_eq!(plan_of_batch(Variant::V1, 1, 224, 224, true, Pooling::None).per_image, 0);
        assert_eq!(plan_of_batch(Variant::V1, 4, 128, 128, true, Pooling::None).per_image, 0);
        assert!(plan_of_batch(Variant::V1, 5, 128, 128, true, Pooling::None).per_image > 0);
        assert_eq!(plan_of_batch(Variant::V1_5, 16, 64, 64, false, Pooling::Avg).per_image, 0);
    }
}

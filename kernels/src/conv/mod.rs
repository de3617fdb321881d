//! Convolution front door: one [`ConvKernel`] per convolution of a network,
//! chosen at plan time, that packs its weights once and runs on any ISA.
//!
//! The packed weights are a plain `&[f32]` owned by the caller (an aligned
//! heap buffer, or a memory-mapped native weights file), laid out ISA-neutrally
//! so that one packed file serves scalar, AVX2, AVX-512 and NEON:
//!
//! ```text
//! [ bias: round_up(cout, 16) floats | algorithm-specific weights ]
//! ```
//!
//! Algorithms:
//! - [`ConvAlgo::Direct`]: the scalar reference on HWIO weights (any shape);
//! - [`ConvAlgo::Gemm1x1`]: 1×1 convolution (any stride) as a packed GEMM, see [`crate::gemm`];
//! - [`ConvAlgo::Winograd`]: 3×3 convolution via Winograd F(2×2), F(3×3) or
//!   F(4×4) at stride 1, F(2×2) or F(4×4) at stride 2, see [`crate::winograd`];
//! - [`ConvAlgo::ImplicitGemm`]: any other convolution (7×7/2 stem, 3×3/2, any
//!   kernel, stride and padding) as implicit GEMM, A read in place tap by tap,
//!   in runs from a padded copy of the input (AVX-512, few channels: the stem)
//!   or as im2col rows gathered on the fly, see [`crate::gemm::conv_implicit`].

use crate::buffer::round_up_floats;
use crate::isa::Isa;
use crate::shape::{ConvShape, Epilogue, PoolShape, Subsample};
use crate::winograd::WinogradTile;
use crate::{gemm, reference, winograd};

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// Scalar direct convolution on HWIO weights (the reference; any shape).
    Direct,
    /// 1×1 convolution, any stride, no padding: GEMM over pixels.
    Gemm1x1,
    /// 3×3, padding 1, the tile's stride: Winograd with this output tile.
    Winograd(WinogradTile),
    /// Any kernel size, stride and padding: implicit GEMM over the HWIO weights
    /// seen as a `[kh·kw·cin × cout]` matrix.
    ImplicitGemm,
}

impl ConvAlgo {
    /// Stable numeric id, stored in native weight files as the layout id.
    pub fn layout_id(self) -> u32 {
        match self {
            ConvAlgo::Direct => 1,
            ConvAlgo::Gemm1x1 => 2,
            ConvAlgo::Winograd(WinogradTile::F4x4) => 3,
            ConvAlgo::ImplicitGemm => 4,
            ConvAlgo::Winograd(WinogradTile::F2x2) => 5,
            ConvAlgo::Winograd(WinogradTile::F2x2S2) => 6,
            ConvAlgo::Winograd(WinogradTile::F4x4S2) => 7,
            ConvAlgo::Winograd(WinogradTile::F3x3) => 8,
        }
    }

    /// Whether [`ConvKernel::run_residual_in_output`] can run this algorithm:
    /// the GEMM and direct ones (Winograd writes 4×4 output tiles from
    /// transformed sums and takes its residual separately).
    pub fn adds_residual_in_output(self) -> bool {
        !matches!(self, ConvAlgo::Winograd(_))
    }

    /// Inverse of [`ConvAlgo::layout_id`].
    pub fn from_layout_id(id: u32) -> Option<Self> {
        match id {
            1 => Some(ConvAlgo::Direct),
            2 => Some(ConvAlgo::Gemm1x1),
            3 => Some(ConvAlgo::Winograd(WinogradTile::F4x4)),
            4 => Some(ConvAlgo::ImplicitGemm),
            5 => Some(ConvAlgo::Winograd(WinogradTile::F2x2)),
            6 => Some(ConvAlgo::Winograd(WinogradTile::F2x2S2)),
            7 => Some(ConvAlgo::Winograd(WinogradTile::F4x4S2)),
            8 => Some(ConvAlgo::Winograd(WinogradTile::F3x3)),
            _ => None,
        }
    }

    /// Short name for profiles and plans.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Direct => "direct",
            ConvAlgo::Gemm1x1 => "gemm1x1",
            ConvAlgo::Winograd(WinogradTile::F4x4) => "winograd_f4x4",
            ConvAlgo::Winograd(WinogradTile::F2x2) => "winograd_f2x2",
            ConvAlgo::Winograd(WinogradTile::F2x2S2) => "winograd_f2x2s2",
            ConvAlgo::Winograd(WinogradTile::F4x4S2) => "winograd_f4x4s2",
            ConvAlgo::Winograd(WinogradTile::F3x3) => "winograd_f3x3",
            ConvAlgo::ImplicitGemm => "implicit_gemm",
        }
    }
}

/// Shape-independent parameters of a convolution layer (the batch and input
/// size are given at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvParams {
    /// Kernel height and width.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding `(top, left, bottom, right)`.
    pub pad: [usize; 4],
}

impl ConvParams {
    /// The full shape for a batch of `batch` images of `in_h`×`in_w`.
    pub fn shape(&self, batch: usize, in_h: usize, in_w: usize) -> ConvShape {
        ConvShape {
            batch,
            in_h,
            in_w,
            in_c: self.cin,
            out_c: self.cout,
            kh: self.kh,
            kw: self.kw,
            stride_h: self.stride,
            stride_w: self.stride,
            pad_top: self.pad[0],
            pad_left: self.pad[1],
            pad_bottom: self.pad[2],
            pad_right: self.pad[3],
        }
    }

    /// Whether `algo` can compute this convolution.
    pub fn supports(&self, algo: ConvAlgo) -> bool {
        match algo {
            ConvAlgo::Direct | ConvAlgo::ImplicitGemm => true,
            ConvAlgo::Gemm1x1 => self.kh == 1 && self.kw == 1 && self.pad == [0; 4],
            ConvAlgo::Winograd(t) => self.kh == 3 && self.kw == 3 && self.stride == t.stride() && self.pad == [1; 4],
        }
    }

    /// The fastest algorithm that supports this convolution when the input
    /// size is unknown (never [`ConvAlgo::Direct`], the reference): a 1×1 GEMM,
    /// else Winograd, else implicit GEMM. See [`ConvParams::best_algo_for`].
    pub fn best_algo(&self) -> ConvAlgo {
        if self.supports(ConvAlgo::Gemm1x1) {
            ConvAlgo::Gemm1x1
        } else if self.supports(ConvAlgo::Winograd(WinogradTile::F4x4)) {
            ConvAlgo::Winograd(winograd::tile_for(self.cin, self.cout))
        } else {
            ConvAlgo::ImplicitGemm
        }
    }

    /// The fastest algorithm for `batch` images of `in_h × in_w`: as
    /// [`ConvParams::best_algo`], except that a 3×3 layer with padding 1
    /// picks by [`ConvParams::estimated_cost`] between implicit GEMM and
    /// the Winograd tiles of the layer's stride (F(2×2), F(3×3), F(4×4) at
    /// stride 1; F(2×2), F(4×4) at stride 2; ties go to the smaller weights).
    ///
    /// This is the choice for a CPU whose 512-bit FMAs run at the 256-bit
    /// rate, or that has no AVX-512 (the cost model was measured on Zen 4);
    /// [`ConvParams::best_algo_for_cpu`] also knows the other kind.
    pub fn best_algo_for(&self, batch: usize, in_h: usize, in_w: usize) -> ConvAlgo {
        self.best_algo_for_cpu(batch, in_h, in_w, false)
    }

    /// [`ConvParams::best_algo_for`] for kernels that run on AVX-512 with
    /// two full-width FMA pipes when `full_width_avx512`
    /// ([`crate::gemm::peak::avx512_full_width`]). There the FMAs do twice
    /// the work per byte of weights streamed, so the weights cost
    /// [`FLOPS_PER_WEIGHT_BYTE_FULL_WIDTH`] flops a byte, and two tiles are
    /// never picked: F(4×4) at stride 2 and F(2×2) at stride 1.
    ///
    /// Why not F(4×4)/2: it saves a fifth of F(2×2)/2's multiplications (81
    /// positions for 16 outputs against 25 for 4), at the price of 2.3×
    /// the weight matrices and products of 36–81 positions over few tiles.
    /// Where the FMAs are the bottleneck (Zen 4: 512-bit FMAs at half rate)
    /// the saving wins (56×56×128 at batch 1: 1.53 ms against 1.91); with
    /// twice the FMA rate it does not. Measured on a Sapphire Rapids-class
    /// Xeon (2026-12-03, AVX-512, `winograd_ab`, cold weights, medians of 40
    /// interleaved rounds), F(4×4)/2 against F(2×2)/2: 56×56×128 1.20× at
    /// one thread, 1.10× at two, 1.06× at batch 8; 56×56×64 (v1's early
    /// stride) 1.03×, 1.07×, 1.04×; 28×28×128 at batch 8 1.37×; 14×14×256 at
    /// batch 8 1.22×; 14×14×512 at batch 8 a tie (implicit GEMM 0.96×,
    /// F(4×4)/2 0.97×). In the network (same process, alternated models,
    /// per-layer medians): v1.5's conv3_block1_2 0.82–0.86× with F(2×2)/2
    /// at one and two threads, v1's conv2_block3_2 0.87–0.91×.
    ///
    /// Why not F(2×2) at stride 1: its 16 weight matrices serve the fewest
    /// outputs per tile, and with two full-width FMA pipes its products
    /// wait on them. On a 2-vCPU Granite/Sapphire Rapids-class Xeon
    /// (2026-12-05; same process, two models alternated inference by
    /// inference, 60 pairs, per-layer medians): ResNet50's 7×7×512 layers
    /// at batch 1 took 2.17 ms with F(2×2) (16.8 MB of weights per layer:
    /// 7.7 GB/s) against 1.43 ms with implicit GEMM (9.4 MB; 161 GFLOP/s),
    /// 0.74 against 1.10 ms at two threads; 14×14×256 at batch 1 0.78–0.81
    /// ms with F(2×2) against 0.66–0.68 with F(3×3). The whole network:
    /// v1 0.941× the time at one thread and 0.948× at two, v1.5 0.968× and
    /// 0.977× (batch 8 unchanged: there F(4×4) is picked either way).
    /// Without F(2×2) and at 6 flops a byte the 7×7×512 layers would take
    /// F(3×3) (25 MB of weights); at 12 they take implicit GEMM, and
    /// 14×14×256 at batch 8 keeps F(4×4) (F(3×3) measured 1.04–1.08× its
    /// time there).
    ///
    /// The two choices round differently (same tolerance against the
    /// reference), so a model's outputs may differ in the last bits between
    /// the two kinds of CPU; on one machine they are fixed.
    pub fn best_algo_for_cpu(&self, batch: usize, in_h: usize, in_w: usize, full_width_avx512: bool) -> ConvAlgo {
        use WinogradTile::*;
        let algo = self.best_algo();
        let winograd: &[WinogradTile] = if self.supports(ConvAlgo::Winograd(F4x4)) {
            if full_width_avx512 {
                &[F3x3, F4x4]
            } else {
                &[F2x2, F3x3, F4x4]
            }
        } else if self.supports(ConvAlgo::Winograd(F2x2S2)) {
            if full_width_avx512 {
                &[F2x2S2]
            } else {
                &[F2x2S2, F4x4S2]
            }
        } else {
            return algo;
        };
        let flops_per_weight_byte =
            if full_width_avx512 { FLOPS_PER_WEIGHT_BYTE_FULL_WIDTH } else { FLOPS_PER_WEIGHT_BYTE };
        std::iter::once(ConvAlgo::ImplicitGemm)
            .chain(winograd.iter().map(|&t| ConvAlgo::Winograd(t)))
            .min_by_key(|&a| self.estimated_cost_at(a, batch, in_h, in_w, flops_per_weight_byte))
            .unwrap_or(algo)
    }

    /// A rough cost of one call of this layer with `algo`, in flops: the
    /// multiply-adds of its GEMMs (`2·rows·positions·cin·cout`, where rows are
    /// output pixels for implicit GEMM and tiles for Winograd, positions 9, 16,
    /// 25, 36, or 25 and 81 at stride 2) plus the weights it streams once per call
    /// (`weight matrices·cin·cout` floats: 9, 16, 25, 36, or 16 and 36 at stride 2) at
    /// [`FLOPS_PER_WEIGHT_BYTE`]. Transforms and packing are left out. In
    /// `u128`, saturating: never overflows.
    pub fn estimated_cost(&self, algo: ConvAlgo, batch: usize, in_h: usize, in_w: usize) -> u128 {
        self.estimated_cost_at(algo, batch, in_h, in_w, FLOPS_PER_WEIGHT_BYTE)
    }

    /// [`ConvParams::estimated_cost`] with the weights at `flops_per_weight_byte`.
    fn estimated_cost_at(
        &self,
        algo: ConvAlgo,
        batch: usize,
        in_h: usize,
        in_w: usize,
        flops_per_weight_byte: usize,
    ) -> u128 {
        let s = self.shape(batch, in_h, in_w);
        let (b, oh, ow) = (batch as u128, s.out_h() as u128, s.out_w() as u128);
        let (positions, matrices, rows) = match algo {
            ConvAlgo::Winograd(t) => {
                let m = t.m() as u128;
                let tiles = b.saturating_mul(oh.div_ceil(m) * ow.div_ceil(m));
                (t.positions() as u128, t.weight_positions() as u128, tiles)
            }
            _ => ((self.kh * self.kw) as u128, (self.kh * self.kw) as u128, b.saturating_mul(oh * ow)),
        };
        let cc = self.cin as u128 * self.cout as u128;
        let gemm = (positions * cc).saturating_mul(rows.saturating_mul(2));
        gemm.saturating_add(matrices * cc * 4 * flops_per_weight_byte as u128)
    }
}

/// Flops a core does in the time one byte of weights streams from memory, for
/// [`ConvParams::estimated_cost`]: about 117 GFLOP/s of FMA peak against about
/// 20 GB/s on the Zen 4 cores this was tuned on. Every call streams all of a
/// layer's weights (a network's do not stay cached between layers), and
/// Winograd's transformed weights are 16/9 (F(2×2)), 25/9 (F(3×3)) or 36/9 (F(4×4)) the
/// direct ones, so with few tiles a layer is bound by the weights, not the
/// arithmetic. Measured on ResNet50's layers (one image per call unless said,
/// AVX-512, `resnet50 bench --profile` and the Winograd bench):
/// - 7×7×512, batch 1 (16 F(2×2) tiles, 4 F(4×4)): F(2×2) 1.58 ms in the
///   network against 2.02 ms for implicit GEMM; F(4×4) 1.82 ms (bench).
///   The model picks F(2×2).
/// - 7×7×512, batch 8, 2 threads: F(4×4) 3.6 ms against F(2×2) 6.9 ms in the
///   network. The model picks F(4×4).
/// - 14×14×256, batch 1: F(3×3) (25 tiles, 6.6 MB of weights) 0.83 ms
///   against 0.99 for F(2×2) (49 tiles, 4.2 MB) and 0.94 for F(4×4) (16
///   tiles, 9.4 MB) at one thread, 0.48 against 0.53 and 0.64 at two
///   (interleaved, cold weights). The model picks F(3×3) (by 5 %).
/// - 28×28×128 and 56×56×64: F(4×4) by far.
pub const FLOPS_PER_WEIGHT_BYTE: usize = 6;

/// [`FLOPS_PER_WEIGHT_BYTE`] for a core with two full-width 512-bit FMA
/// pipes ([`ConvParams::best_algo_for_cpu`]): twice the FMA rate against
/// the same memory. On the 2-vCPU Xeon measured there, the 7×7×512 layers
/// ran at 161 GFLOP/s with their weights streaming at 7.7 GB/s (~21 flops a
/// byte); 12 is what keeps 14×14×256 at batch 8 on F(4×4) (F(3×3) from
/// 18 up), measured faster there.
pub const FLOPS_PER_WEIGHT_BYTE_FULL_WIDTH: usize = 12;

/// A convolution bound to an algorithm: knows its packed layout, its scratch
/// needs, and how to run on every ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvKernel {
    /// Layer parameters.
    pub params: ConvParams,
    /// Algorithm.
    pub algo: ConvAlgo,
}

impl ConvKernel {
    /// Binds `params` to `algo`; `None` if the algorithm cannot compute it.
    pub fn new(params: ConvParams, algo: ConvAlgo) -> Option<Self> {
        params.supports(algo).then_some(ConvKernel { params, algo })
    }

    fn bias_len(&self) -> usize {
        round_up_floats(self.params.cout)
    }

    /// Floats of the packed weights (bias included).
    pub fn packed_len(&self) -> usize {
        let p = &self.params;
        self.bias_len()
            + match self.algo {
                ConvAlgo::Direct => round_up_floats(p.kh * p.kw * p.cin * p.cout),
                ConvAlgo::Gemm1x1 => gemm::packed_b_len(p.cin, p.cout),
                ConvAlgo::Winograd(tile) => winograd::packed_len_for(tile, p.cin, p.cout),
                ConvAlgo::ImplicitGemm => gemm::packed_b_len(p.kh * p.kw * p.cin, p.cout),
            }
    }

    /// Packs HWIO `weights` and per-channel `bias` into `out`
    /// (`out.len() == self.packed_len()`).
    ///
    /// # Panics
    /// If a length does not match.
    pub fn pack(&self, weights_hwio: &[f32], bias: &[f32], out: &mut [f32]) {
        let p = &self.params;
        assert_eq!(weights_hwio.len(), p.kh * p.kw * p.cin * p.cout, "pack: weights length");
        assert_eq!(bias.len(), p.cout, "pack: bias length");
        assert_eq!(out.len(), self.packed_len(), "pack: output length");
        // Each packer writes every float of its part, padding included (the
        // GEMM and Winograd packers zero their own padding lanes), so there is
        // no blanket zero fill (a second pass over the bulk of the store).
        let (b, w) = out.split_at_mut(self.bias_len());
        b[..p.cout].copy_from_slice(bias);
        b[p.cout..].fill(0.0);
        match self.algo {
            ConvAlgo::Direct => {
                let (taps, pad) = w.split_at_mut(weights_hwio.len());
                taps.copy_from_slice(weights_hwio);
                pad.fill(0.0);
            }
            // A 1×1 HWIO kernel is already the row-major [cin × cout] matrix B.
            ConvAlgo::Gemm1x1 => gemm::pack_b(p.cin, p.cout, weights_hwio, w),
            ConvAlgo::Winograd(tile) => winograd::pack_for(tile, p.cin, p.cout, weights_hwio, w),
            // HWIO is already the row-major [kh·kw·cin × cout] matrix B.
            ConvAlgo::ImplicitGemm => gemm::pack_b(p.kh * p.kw * p.cin, p.cout, weights_hwio, w),
        }
    }

    /// Floats at the start of packed weights that [`ConvKernel::check_packed_prefix`]
    /// reads (0: nothing to check).
    pub fn packed_prefix_len(&self) -> usize {
        match self.algo {
            ConvAlgo::Winograd(_) => self.bias_len() + winograd::HEADER_LEN,
            _ => 0,
        }
    }

    /// Checks the part of packed weights from outside (a weights file) that
    /// the kernels trust rather than read as numbers: Winograd's header must
    /// describe this layer and tile. `prefix` holds the first
    /// [`ConvKernel::packed_prefix_len`] floats. Any float values elsewhere
    /// are just weights.
    pub fn check_packed_prefix(&self, prefix: &[f32]) -> Result<(), String> {
        match self.algo {
            ConvAlgo::Winograd(tile) => {
                let header = prefix.get(self.bias_len()..).unwrap_or(&[]);
                winograd::check_header(tile, self.params.cin, self.params.cout, header)
            }
            _ => Ok(()),
        }
    }

    /// Floats of scratch memory `run` needs for this input size and thread count.
    pub fn scratch_len(&self, batch: usize, in_h: usize, in_w: usize, threads: usize) -> usize {
        let shape = self.params.shape(batch, in_h, in_w);
        match self.algo {
            ConvAlgo::Direct => 0,
            ConvAlgo::Gemm1x1 => gemm::conv1x1_scratch_len(&shape, threads),
            ConvAlgo::Winograd(tile) => winograd::scratch_len_for(tile, &shape, threads),
            ConvAlgo::ImplicitGemm => gemm::implicit_scratch_len(&shape, threads),
        }
    }

    /// Runs the convolution: `output = relu?(conv(input) + bias + residual)`.
    ///
    /// `packed` comes from [`ConvKernel::pack`]; `scratch` has at least
    /// [`ConvKernel::scratch_len`] floats. The residual has the output's shape,
    /// or is read at every `stride`-th pixel of a larger image given by
    /// `residual_subsample` (see [`Epilogue::residual_subsample`]; GEMM and
    /// direct algorithms only). Results are identical for a given `(isa, threads)`.
    ///
    /// # Panics
    /// If a length does not match the shape, or `isa` is not supported by this CPU.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        isa: Isa,
        packed: &[f32],
        shape: &ConvShape,
        input: &[f32],
        residual: Option<&[f32]>,
        residual_subsample: Option<Subsample>,
        relu: bool,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let ep = Epilogue { residual, residual_subsample, relu, ..Default::default() };
        self.run_with(isa, packed, shape, input, ep, output, scratch, threads);
    }

    /// Runs the convolution onto the residual already in `output`:
    /// `output = relu?(conv(input) + bias + output)`
    /// ([`Epilogue::residual_in_output`]); otherwise as [`ConvKernel::run`].
    ///
    /// # Panics
    /// As [`ConvKernel::run`], and if the algorithm is not one that
    /// [`ConvAlgo::adds_residual_in_output`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_residual_in_output(
        &self,
        isa: Isa,
        packed: &[f32],
        shape: &ConvShape,
        input: &[f32],
        relu: bool,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        assert!(self.algo.adds_residual_in_output(), "run_residual_in_output: not supported by {:?}", self.algo);
        let ep = Epilogue { residual_in_output: true, relu, ..Default::default() };
        self.run_with(isa, packed, shape, input, ep, output, scratch, threads);
    }

    /// Whether [`ConvKernel::run_maxpool`] runs this convolution on `shape`
    /// together with the max-pool `pool` over its output: implicit GEMM
    /// followed by a 3×3/2 pool with padding 1 ([`gemm::fuses_maxpool`]).
    pub fn fuses_maxpool(&self, shape: &ConvShape, pool: &PoolShape) -> bool {
        self.algo == ConvAlgo::ImplicitGemm && gemm::fuses_maxpool(shape, pool)
    }

    /// Floats of scratch memory [`ConvKernel::run_maxpool`] needs (0 unless
    /// it [fuses](ConvKernel::fuses_maxpool) `pool`).
    pub fn maxpool_scratch_len(&self, shape: &ConvShape, pool: &PoolShape, threads: usize) -> usize {
        if self.fuses_maxpool(shape, pool) {
            gemm::implicit_maxpool_scratch_len(shape, pool, threads)
        } else {
            0
        }
    }

    /// Runs the convolution and the max-pool `pool` over its output in one
    /// pass ([`gemm::conv_implicit_maxpool`]): `output` is the pool's. The
    /// results are those of [`ConvKernel::run`] then
    /// [`crate::pool::max_pool2d`], bit for bit.
    ///
    /// # Panics
    /// If the kernel does not [fuse](ConvKernel::fuses_maxpool) `pool`, or as
    /// [`ConvKernel::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_maxpool(
        &self,
        isa: Isa,
        packed: &[f32],
        shape: &ConvShape,
        input: &[f32],
        relu: bool,
        pool: &PoolShape,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        assert!(self.fuses_maxpool(shape, pool), "run_maxpool: {:?} does not fuse {pool:?}", self.algo);
        let (bias, w) = self.checked_parts(isa, packed, shape);
        let ep = Epilogue { bias: Some(bias), relu, ..Default::default() };
        gemm::conv_implicit_maxpool(isa, shape, pool, input, w, &ep, output, scratch, threads);
    }

    /// Checks the shape, packed length and ISA; returns the packed bias (`cout`
    /// floats) and the packed weights after it.
    fn checked_parts<'p>(&self, isa: Isa, packed: &'p [f32], shape: &ConvShape) -> (&'p [f32], &'p [f32]) {
        let p = &self.params;
        assert_eq!(*shape, p.shape(shape.batch, shape.in_h, shape.in_w), "run: shape does not match the kernel");
        assert_eq!(packed.len(), self.packed_len(), "run: packed weights length");
        assert!(isa.is_supported(), "run: ISA {isa} not supported by this CPU");
        let (bias, w) = packed.split_at(self.bias_len());
        (&bias[..p.cout], w)
    }

    /// Checks the shared arguments, puts the packed bias into `ep` and runs the algorithm.
    #[allow(clippy::too_many_arguments)]
    fn run_with(
        &self,
        isa: Isa,
        packed: &[f32],
        shape: &ConvShape,
        input: &[f32],
        ep: Epilogue,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let (bias, w) = self.checked_parts(isa, packed, shape);
        let ep = Epilogue { bias: Some(bias), ..ep };
        match self.algo {
            ConvAlgo::Direct => reference::conv2d(shape, input, &w[..shape.weights_len()], &ep, output),
            ConvAlgo::Gemm1x1 => gemm::conv1x1(isa, shape, input, w, &ep, output, scratch, threads),
            ConvAlgo::Winograd(_) => winograd::conv3x3(isa, shape, input, w, &ep, output, scratch, threads),
            ConvAlgo::ImplicitGemm => gemm::conv_implicit(isa, shape, input, w, &ep, output, scratch, threads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winograd_tile_follows_the_number_of_tiles() {
        let c3 = |c: usize| ConvParams { kh: 3, kw: 3, cin: c, cout: c, stride: 1, pad: [1; 4] };
        let (f2, f4) = (ConvAlgo::Winograd(WinogradTile::F2x2), ConvAlgo::Winograd(WinogradTile::F4x4));
        // ResNet50 at 224×224 (the measured points of FLOPS_PER_WEIGHT_BYTE).
        assert_eq!(c3(512).best_algo_for(1, 7, 7), f2);
        assert_eq!(c3(512).best_algo_for(8, 7, 7), f4);
        // 14×14×256 at batch 1 (interleaved, cold weights, AVX-512): F(3×3)
        // 0.83 ms against 0.99 for F(2×2) and 0.94 for F(4×4) at one thread,
        // 0.48 against 0.53 and 0.64 at two; at batch 8 (two threads) F(4×4)
        // 3.34, F(3×3) 3.52, F(2×2) 4.16 ms. 7×7×512 b1: F(3×3) (9 tiles,
        // 25 MB of weights) 2.28 against F(2×2) 1.58 ms; 28×28×128: F(4×4)
        // 0.64 against 0.89 ms (100 F(3×3) tiles for 49 F(4×4) ones).
        let f3 = ConvAlgo::Winograd(WinogradTile::F3x3);
        assert_eq!(c3(256).best_algo_for(1, 14, 14), f3);
        assert_eq!(c3(256).best_algo_for(8, 14, 14), f4);
        assert_eq!(c3(128).best_algo_for(1, 28, 28), f4);
        assert_eq!(c3(64).best_algo_for(1, 56, 56), f4);
        // Few pixels: the weights dominate.
        assert_eq!(c3(512).best_algo_for(1, 1, 1), ConvAlgo::ImplicitGemm);
        assert_eq!(c3(64).best_algo_for(1, 0, 0), ConvAlgo::ImplicitGemm);
        // Huge sizes do not overflow the estimate.
        assert_eq!(c3(64).best_algo_for(usize::MAX, 1 << 20, 1 << 20), f4);
        let pw = ConvParams { kh: 1, kw: 1, cin: 64, cout: 256, stride: 2, pad: [0; 4] };
        assert_eq!(pw.best_algo_for(1, 1, 1), ConvAlgo::Gemm1x1);
        // Stride 2 (v1.5's first 3×3 of stages 3–5), measured (batch 1, one
        // thread; batch 8, two): 56×56×128 F(4×4) 1.53, F(2×2) 1.91, implicit
        // GEMM 2.21 ms (b8: 8.0, 8.6, 10.5); 28×28×256 F(2×2) 1.76, F(4×4) 2.16,
        // implicit 2.19 (b8: 8.1, 11.3, 9.7); 14×14×512 b1 implicit (16 F(2×2)
        // tiles for 49 outputs), b8 F(4×4) 9.7, implicit 9.9, F(2×2) 11.5.
        let s2 = |c: usize| ConvParams { stride: 2, ..c3(c) };
        let f2s2 = ConvAlgo::Winograd(WinogradTile::F2x2S2);
        let f4s2 = ConvAlgo::Winograd(WinogradTile::F4x4S2);
        assert_eq!(s2(128).best_algo_for(1, 56, 56), f4s2);
        assert_eq!(s2(128).best_algo_for(8, 56, 56), f4s2);
        assert_eq!(s2(256).best_algo_for(1, 28, 28), f2s2);
        assert_eq!(s2(256).best_algo_for(8, 28, 28), f2s2);
        assert_eq!(s2(512).best_algo_for(1, 14, 14), ConvAlgo::ImplicitGemm);
        assert_eq!(s2(512).best_algo_for(8, 14, 14), f4s2);
        // With two full-width 512-bit FMA pipes (Sapphire Rapids class,
        // measured: see best_algo_for_cpu) never F(4×4)/2; the rest as above.
        let full = |p: ConvParams, b: usize, hw: usize| p.best_algo_for_cpu(b, hw, hw, true);
        assert_eq!(full(s2(128), 1, 56), f2s2);
        assert_eq!(full(s2(128), 8, 56), f2s2);
        assert_eq!(full(s2(64), 1, 56), f2s2);
        assert_eq!(full(s2(256), 1, 28), f2s2);
        assert_eq!(full(s2(512), 1, 14), ConvAlgo::ImplicitGemm);
        assert_ne!(full(s2(512), 8, 14), f4s2);
        // ... and never F(2×2) at stride 1 (measured: see best_algo_for_cpu).
        assert_eq!(full(c3(512), 1, 7), ConvAlgo::ImplicitGemm);
        assert_eq!(full(c3(512), 8, 7), f4);
        assert_eq!(full(c3(256), 1, 14), f3);
        assert_eq!(full(c3(256), 8, 14), f4);
        assert_eq!(full(c3(128), 1, 28), f4);
        assert_eq!(full(c3(128), 8, 28), f4);
        assert_eq!(full(c3(64), 8, 56), f4);
        assert!((1..=16).all(|b| [7, 14, 28, 56].iter().all(|&hw| full(c3(64 * 56 / hw), b, hw) != f2)));
        assert_eq!(full(c3(64), 1, 56), f4);
        assert_eq!(full(pw, 1, 1), ConvAlgo::Gemm1x1);
        assert!(!c3(64).supports(f2s2) && !s2(64).supports(ConvAlgo::Winograd(WinogradTile::F2x2)));
        let s2_pad0 = ConvParams { pad: [0; 4], ..s2(64) };
        assert_eq!(s2_pad0.best_algo_for(1, 56, 56), ConvAlgo::ImplicitGemm);
    }

    #[test]
    fn pack_writes_every_float_of_its_output() {
        // Packing over a buffer of NaNs gives the bits packing over zeros
        // gives: every algorithm writes its padding (bias lanes past cout,
        // panel columns past cout, Winograd's header) rather than relying on
        // a zero-filled buffer.
        let (cin, cout) = (5, 19);
        let weights = |kk: usize| -> Vec<f32> { (0..kk * kk * cin * cout).map(|i| (i % 23) as f32 - 11.0).collect() };
        let bias: Vec<f32> = (0..cout).map(|i| i as f32 + 0.5).collect();
        let c3 = ConvParams { kh: 3, kw: 3, cin, cout, stride: 1, pad: [1; 4] };
        let shapes = [c3, ConvParams { stride: 2, ..c3 }, ConvParams { kh: 1, kw: 1, pad: [0; 4], ..c3 }];
        // Every known layout (a new one is covered without editing this test).
        for algo in (0..64).filter_map(ConvAlgo::from_layout_id) {
            let p = *shapes.iter().find(|p| p.supports(algo)).expect("a shape for every algorithm");
            let k = ConvKernel::new(p, algo).unwrap();
            let w = weights(p.kh);
            let (mut zeros, mut nans) = (vec![0.0f32; k.packed_len()], vec![f32::NAN; k.packed_len()]);
            k.pack(&w, &bias, &mut zeros);
            k.pack(&w, &bias, &mut nans);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&zeros), bits(&nans), "{}", algo.name());
        }
    }
}

//! 3×3 convolution by Winograd's minimal filtering, NHWC, stride 1 or 2.
//!
//! # Algorithm
//! F(4×4, 3×3) (6×6 input tiles, 36 transform positions: 4× fewer
//! multiplications than direct) with points {0, ±1, 2, −1/2, ∞}, F(3×3,
//! 3×3) (5×5 tiles, 25 positions: 3.24× fewer) with points {0, ±1, 2, ∞},
//! or F(2×2, 3×3) (4×4 tiles, 16 positions: 2.25× fewer), see
//! [`transforms`] for the matrices and the accuracy argument. Which layer
//! gets which is [`crate::conv::ConvParams::best_algo_for`]'s choice, from
//! the number of tiles and the size of the transformed weights: in ResNet50
//! at 224×224, batch 1, F(4×4) for 56×56×64 and 28×28×128, F(3×3) for
//! 14×14×256 (25 tiles covering 15×15: 0.83 ms against 0.99 for F(2×2) and
//! 0.94 for F(4×4) at one thread, 0.48 against 0.53 and 0.64 at two), F(2×2)
//! for 7×7×512 (implicit GEMM where two full-width 512-bit FMA pipes wait on
//! F(2×2)'s weights: [`crate::conv::ConvParams::best_algo_for_cpu`]); at
//! batch 8 F(4×4) from 14×14 up. [`tile_for`] (F(4×4) or
//! F(2×2)) is the choice when the input size is unknown.
//!
//! At stride 2, along each axis the even inputs meet (w0, w2) through
//! F(m, 2) and the odd ones meet w1 directly: F(2×2, 3×3) on 5×5 input
//! tiles ([`WinogradTile::F2x2S2`]: 25 positions for 4 outputs, 1.44× fewer
//! multiplications than direct, 16 transformed weight matrices) or F(4×4,
//! 3×3) on 9×9 tiles ([`WinogradTile::F4x4S2`]: 81 positions for 16
//! outputs, 1.78× fewer, 36 matrices). In v1.5 at 224×224, batch 1, the
//! first 3×3 of stage 3 (56×56×128 input) runs F(4×4): 1.53 ms against
//! 1.91 for F(2×2) and 2.21 for implicit GEMM (one thread, interleaved
//! runs, AVX-512); stage 4's (28×28×256) F(2×2): 1.76 against 2.19; stage
//! 5's stays implicit GEMM (`cargo bench -p resnet50-kernels --bench
//! winograd -- s2`).
//!
//! Per block of `tb` tiles (one worker, no other memory than its part of
//! `scratch`):
//! 1. input transform of every tile of the block into `V[pos][tile][cin]`
//!    (zero padding at the image borders is applied here);
//! 2. for each chunk of output channels (`cb` = 64 by default), the
//!    α² GEMMs `M[pos] = V[pos] · U[w(pos)]` (`[tb × cin]·[cin × cb]`,
//!    `w` = [`WinogradTile::weight_index`]) with a
//!    register-blocked microkernel against the weights transformed at pack
//!    time, then the output transform of every tile of the block, which
//!    applies the fused epilogue `relu?(acc + bias + residual)` and writes
//!    NHWC directly, cropping the tiles at the right and bottom edges.
//!
//! `V` and `M` of a block stay in L2 between the three steps: no
//! whole-tensor pass goes through memory. Blocking ([`Plan`]): when a
//! worker's transformed weights are small (≤ 2 MiB: 56×56×64 F(4×4)) and the
//! tiles are not also split by output channels, blocks whose `V` + `M` fit
//! ~640 KiB, in a multiple of the thread count; otherwise (F(2×2)
//! 14×14×256: 4.2 MB, F(3×3): 6.6 MB, F(4×4) 28×28×128: 2.4 MB, 7×7×512:
//! 17 MB for F(2×2)), blocks of up to 48 tiles so that each task's share of
//! `U` streams from memory once per 48 tiles (deep layers are
//! weight-bandwidth bound at batch 1) — and, when those weights are at most
//! 4 MiB (they stay in L3 from one block to the next), no more tiles than
//! keep `V` + `M` within ~1 MiB (v1.5's 56×56×128 F(4×4) at stride 2: 4
//! blocks of 13 tiles, not 2 of 25). With fewer than two blocks' worth of
//! tiles per thread, the tasks also split the output channels.
//!
//! # Per-ISA surface
//! Each ISA file (`scalar.rs`, `avx2.rs`, `avx512.rs`, `neon.rs`)
//! provides a `transforms::Simd` vector type, which instantiates the shared
//! tile transforms of [`transforms`] inside its `#[target_feature]` entry
//! points (`winograd_f4x4_input_transform_<isa>`, `…_output_transform_…`,
//! and the same pair for every other tile). The products over transform positions run on the
//! GEMM's own microkernel for the ISA (`crate::gemm::gemm_rows`: same K
//! blocking, balanced row strips and next-panel prefetch as the 1×1
//! convolutions; the U panels have the GEMM's packed-B layout), or on
//! AVX-512 for more than 8 rows its tall 16×16 kernel, which reads each
//! weight once per block of up to 16 tiles — where 512-bit FMAs run at the
//! 256-bit rate (Zen 4); with two full-width FMA pipes (Intel Xeons, Zen 5)
//! the 1×1 layers' 12×32 register-form kernel, its rows at V's one stride
//! ([`crate::gemm::peak::avx512_full_width`]; it replaced the 8×32 kernel
//! there in stop 55: the Winograd layers 0.91–0.97× their time).
//! `kernels` maps an [`Isa`] to them.
//!
//! # Accuracy (max |Δ| / max |y| against an f64 convolution, batch 1,
//! He-uniform weights, post-ReLU inputs; `tests/winograd_props.rs`)
//!
//! | layer          | F(4×4) AVX2 | F(3×3) AVX2    | F(2×2) AVX2 | `reference::conv2d` |
//! |----------------|-------------|----------------|-------------|---------------------|
//! | 56×56 64→64    | 2.0e-6      | 2.2e-6         | 3.2e-7      | 8.0e-7              |
//! | 28×28 128→128  | 2.4e-6      | 2.6e-6         | 4.0e-7      | 9.3e-7              |
//! | 14×14 256→256  | 3.6e-6      | 3.3e-6         | 6.1e-7      | 1.8e-6              |
//! | 7×7 512→512    | 5.0e-6      | 4.6e-6         | 9.0e-7      | 2.4e-6              |
//!
//! At stride 2 (AVX-512 and AVX2): F(2×2) 3.2e-7 on 56×56 128→128 and
//! 4.6e-7 on 28×28 256→256 (its transforms are exact additions), F(4×4)
//! 2.4e-6 and 2.7e-6, against 1.0e-6 and 1.5e-6 for `reference::conv2d`.
//!
//! # Packed weights (ISA-neutral)
//! ```text
//! [ header: 16 floats (m = 2.0, 3.0 or 4.0, cin, cout, stride = 1.0 or 2.0, 0…) |
//!   U: [weight matrix][cout/16 panels][cin][16]  (zero padded channels) ]
//! weight matrices: α² at stride 1, (m + 2)² (16 or 36) at stride 2
//! ```
//!
//! # Threads
//! The work is split into `ts × cs ≤ threads` workers (tile ranges × output
//! channel ranges), a function of the shape and `threads` only; each worker
//! owns one slice of `scratch`. Every output value is computed by the same
//! sequence of floating-point operations whatever the split, so results are
//! bit-identical for a given ISA (for any `threads`, in fact).

use crate::isa::Isa;
use crate::shape::{ConvShape, Epilogue};

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx2;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
pub mod transforms;

use transforms::{InTile, OutTile};

/// Width of a weight panel (output channels), the GEMM's column block.
pub const PANEL: usize = 16;
/// Floats of the packed header (what [`check_header`] reads).
pub const HEADER_LEN: usize = 16;
/// Tile blocks are sized in steps of this many tiles (two 6-row strips;
/// the GEMM balances its strips, so any block size works).
const TB_UNIT: usize = 12;
/// Output channels per chunk (between two output transforms).
const CB_PANELS: usize = 4;
/// Scratch bytes per worker we aim to keep in L2 (V + M of one block) when
/// the weights are small. Big blocks make tall per-position GEMMs (fewer,
/// longer microkernel calls), which matters more than staying in L2: on a
/// Zen 4 (1 MiB L2; interleaved A/B, cold weights) v1's 28×28×128 3×3/2
/// (49 F(2×2) tiles) took 0.26 ms at 2 threads in 2 blocks of 25 tiles
/// against 0.35 ms in 5 of 10 (320 KiB, split 3:2 between the workers) and
/// 0.48 against 0.53 ms at one thread; 56×56×64 F(4×4) 2–7 % less at one
/// thread with 33 tiles per block than with 12, about the same at two.
const L2_BUDGET: usize = 640 * 1024;
/// Weights (per worker) above this many bytes are "big" (they do not stay
/// in L3 next to everything else, and at batch 1 they come from DRAM):
/// blocks of `BIG_TB` tiles. ResNet50's 14×14×256 F(2×2) (4 MiB) and
/// 28×28×128 F(4×4) (2.25 MiB) weights are big: at batch 1 that is 2 blocks
/// of 25 tiles instead of 5 of 10, each streaming all of U (14×14: 1.78
/// against 2.00 ms per layer even with U warm in L3, one thread; at 2
/// threads the 5 blocks also split 3:2 between the workers: 28×28 went from
/// 1.0 to 0.72 ms).
const U_SMALL: usize = 2 << 20;
/// Tiles per block when the weights are big.
const BIG_TB: usize = 48;
/// Big weights up to this many bytes (per task) stay in L3 from one block
/// to the next, so re-reading them costs less than a block whose `V` and
/// `M` spill from L2: such blocks are also kept within [`BIG_L2_BUDGET`].
const U_L3: usize = 4 << 20;
/// Bytes of `V` + `M` per block at most when the weights are big but stay
/// in L3 ([`U_L3`]; ~ a Zen 4's 1 MiB L2). v1.5's 56×56×128 F(4×4) at
/// stride 2 (81 positions: 62 KB of V + M per tile, 2.25 MiB of weights) then
/// runs 4 blocks of 13 tiles instead of 2 of 25 — same-process A/B on Zen 4,
/// per-layer minimum (median) of 40 inferences: batch 1, one thread 1.58 →
/// 1.51 ms (1.96 → 1.85), two threads 0.90 → 0.79 (1.18 → 0.91); batch 8
/// 14.8 → 13.5 ms at one thread, 7.8 → 7.2 at two. At batch 8 it also
/// splits 28×28×128 F(4×4) (−3 to −6 %) and 28×28×256 F(2×2) at stride 2
/// (−3 % one thread, ±2 % two) more finely.
const BIG_L2_BUDGET: usize = 1 << 20;
/// Bytes of `V` per worker at most when the weights are big.
const BIG_V_BUDGET: usize = 4 << 20;

/// Winograd tile size (and stride).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinogradTile {
    /// F(2×2, 3×3): 4×4 input tiles, 16 transform positions.
    F2x2,
    /// F(4×4, 3×3): 6×6 input tiles, 36 transform positions.
    F4x4,
    /// F(3×3, 3×3): 5×5 input tiles, 25 transform positions (2.78
    /// multiplications per output instead of 9; F(2×2) needs 4, F(4×4) 2.25),
    /// points {0, 1, −1, 2, ∞}. For maps whose side is a multiple of 3 or
    /// close to one (ResNet50's 14×14: 25 tiles covering 15×15).
    F3x3,
    /// F(2×2, 3×3) at stride 2: 5×5 input tiles, 25 transform positions
    /// sharing 16 distinct transformed weights (see [`transforms`]: the even
    /// input columns go through F(2, 2), the odd ones meet the centre tap
    /// directly). 6.25 instead of 9 multiplications per output.
    F2x2S2,
    /// F(4×4, 3×3) at stride 2: 9×9 input tiles, 81 transform positions
    /// sharing 36 distinct transformed weights (F(4, 2) on the even inputs).
    /// 5.06 instead of 9 multiplications per output.
    F4x4S2,
}

impl WinogradTile {
    /// Every tile.
    pub const ALL: [WinogradTile; 5] =
        [WinogradTile::F2x2, WinogradTile::F3x3, WinogradTile::F4x4, WinogradTile::F2x2S2, WinogradTile::F4x4S2];
    /// Output tile side `m`.
    pub fn m(self) -> usize {
        match self {
            WinogradTile::F2x2 | WinogradTile::F2x2S2 => 2,
            WinogradTile::F3x3 => 3,
            WinogradTile::F4x4 | WinogradTile::F4x4S2 => 4,
        }
    }
    /// Convolution stride the tile computes.
    pub fn stride(self) -> usize {
        match self {
            WinogradTile::F2x2 | WinogradTile::F3x3 | WinogradTile::F4x4 => 1,
            WinogradTile::F2x2S2 | WinogradTile::F4x4S2 => 2,
        }
    }
    /// Input tile side `α`: `m + 2` at stride 1, `2m + 1` at stride 2.
    pub fn alpha(self) -> usize {
        match self.stride() {
            1 => self.m() + 2,
            _ => 2 * self.m() + 1,
        }
    }
    /// Transform positions `α²` (GEMMs per tile block).
    pub fn positions(self) -> usize {
        self.alpha() * self.alpha()
    }
    /// Distinct transformed weights per 1-D position: `α` at stride 1; at
    /// stride 2 the `m` odd positions share the centre tap's, `m + 2`.
    fn weight_side(self) -> usize {
        self.m() + 2
    }
    /// Distinct transformed weight matrices (`cin × cout` each) in the packed layout.
    pub fn weight_positions(self) -> usize {
        self.weight_side() * self.weight_side()
    }
    /// The weight matrix of 1-D position `i < α`.
    fn weight_of_1d(self, i: usize) -> usize {
        i.min(self.weight_side() - 1)
    }
    /// The weight matrix of transform position `pos < α²`.
    pub fn weight_index(self, pos: usize) -> usize {
        let a = self.alpha();
        self.weight_of_1d(pos / a) * self.weight_side() + self.weight_of_1d(pos % a)
    }
    /// The tile recorded in a packed header (`m`, stride).
    fn from_header(m: f32, stride: f32) -> Option<Self> {
        WinogradTile::ALL.into_iter().find(|t| t.m() as f32 == m && t.stride() as f32 == stride)
    }
}

/// `cin · cout` from which [`tile_for`] picks F(2×2): ResNet50's 14×14×256
/// and 7×7×512 layers (stages 4 and 5).
pub const F2X2_MIN_CIN_COUT: usize = 256 * 256;

/// The tile for a `cin → cout` layer when the input size is unknown (what
/// [`pack`] uses): F(4×4) below [`F2X2_MIN_CIN_COUT`], F(2×2) from there on.
/// When the batch and input size are known,
/// [`crate::conv::ConvParams::best_algo_for`] picks the tile (or implicit
/// GEMM) by the number of tiles instead.
///
/// Both are accurate enough (F(4×4) ≤ 5e-6 of max|y| on ResNet50's layers,
/// 2× the f32 direct convolution's error; F(2×2) ≤ 1e-6), so the choice is
/// speed and size. On the deep layers the transformed weights dominate the
/// memory traffic at batch 1 (F(4×4): 9.4 MB for 256→256, 38 MB for 512→512;
/// F(2×2): 2.25× less), and the few tiles reuse them little; F(2×2) also
/// keeps the packed weights of stages 4–5 at 75 MB instead of 170 MB. On the
/// shallow layers F(4×4) wins at every batch. The packed layout records its
/// tile, so [`pack_for`] can override this choice per layer.
pub fn tile_for(cin: usize, cout: usize) -> WinogradTile {
    if cin.saturating_mul(cout) >= F2X2_MIN_CIN_COUT {
        WinogradTile::F2x2
    } else {
        WinogradTile::F4x4
    }
}

/// Floats of packed weights for `cin → cout` with the tile of [`tile_for`].
pub fn packed_len(cin: usize, cout: usize) -> usize {
    packed_len_for(tile_for(cin, cout), cin, cout)
}

/// Floats of packed weights for `cin → cout` with `tile` (a multiple of 16).
pub fn packed_len_for(tile: WinogradTile, cin: usize, cout: usize) -> usize {
    HEADER_LEN + tile.weight_positions() * cout.div_ceil(PANEL) * cin * PANEL
}

/// Transforms HWIO 3×3 weights into `out` (`packed_len(cin, cout)` floats)
/// with the tile of [`tile_for`].
///
/// # Panics
/// If `weights_hwio.len() != 9·cin·cout` or `out.len() != packed_len(cin, cout)`.
pub fn pack(cin: usize, cout: usize, weights_hwio: &[f32], out: &mut [f32]) {
    pack_for(tile_for(cin, cout), cin, cout, weights_hwio, out)
}

/// Transforms HWIO 3×3 weights into `out` (`packed_len_for(tile, cin, cout)`
/// floats): `U = G g Gᵀ` computed in f64, rounded once to f32.
///
/// Each value is `Σ_b Gᵀ[b]·(Σ_a G[a]·g)`, every sum taken left to right in
/// f64 (the order [`transforms`] documents), so the result does not depend on
/// how the work is laid out: here 16 output channels (one panel) at a time,
/// in arrays the compiler vectorises, written in whole 64-byte panel rows.
/// Preparing ResNet50's weights spends most of its time here.
///
/// # Panics
/// If a length does not match, or `cin`/`cout` is zero or above 2²⁴.
pub fn pack_for(tile: WinogradTile, cin: usize, cout: usize, weights_hwio: &[f32], out: &mut [f32]) {
    assert!(
        cin > 0 && cout > 0 && cin <= 1 << 24 && cout <= 1 << 24,
        "winograd::pack: channels {cin} → {cout} out of range"
    );
    assert_eq!(weights_hwio.len(), 9 * cin * cout, "winograd::pack: weights length");
    assert_eq!(out.len(), packed_len_for(tile, cin, cout), "winograd::pack: output length");
    let (header, u) = out.split_at_mut(HEADER_LEN);
    header.fill(0.0);
    header[0] = tile.m() as f32;
    header[1] = cin as f32;
    header[2] = cout as f32;
    header[3] = tile.stride() as f32;
    let g = g_rows(tile);
    let side = tile.weight_side();
    debug_assert_eq!(g.len(), side);
    let np = cout.div_ceil(PANEL);
    for p in 0..np {
        let (c0, width) = (p * PANEL, PANEL.min(cout - p * PANEL));
        for ci in 0..cin {
            // The nine taps of input channel ci for the panel's output
            // channels (zero past cout: those lanes are written as zeros).
            let mut w = [[[0.0f64; PANEL]; 3]; 3];
            for (ky, row) in w.iter_mut().enumerate() {
                for (kx, tap) in row.iter_mut().enumerate() {
                    let src = &weights_hwio[((ky * 3 + kx) * cin + ci) * cout + c0..][..width];
                    for (d, &v) in tap.iter_mut().zip(src) {
                        *d = v as f64;
                    }
                }
            }
            for (a, ga) in g.iter().enumerate() {
                // t = G[a] · g (3 columns), then U[a][b] = t · G[b]ᵀ.
                let mut t = [[0.0f64; PANEL]; 3];
                for (kx, tk) in t.iter_mut().enumerate() {
                    for (l, v) in tk.iter_mut().enumerate() {
                        *v = dot3(ga, [w[0][kx][l], w[1][kx][l], w[2][kx][l]]);
                    }
                }
                for (b, gb) in g.iter().enumerate() {
                    let mut v = [0.0f32; PANEL];
                    for (l, x) in v.iter_mut().enumerate() {
                        *x = dot3(gb, [t[0][l], t[1][l], t[2][l]]) as f32;
                    }
                    v[width..].fill(0.0);
                    let wpos = a * side + b;
                    u[((wpos * np + p) * cin + ci) * PANEL..][..PANEL].copy_from_slice(&v);
                }
            }
        }
    }
}

/// One row of G per distinct 1-D weight of `tile`.
fn g_rows(tile: WinogradTile) -> &'static [[f64; 3]] {
    match tile {
        WinogradTile::F2x2 => &transforms::F2_G,
        WinogradTile::F3x3 => &transforms::F3_G,
        WinogradTile::F4x4 => &transforms::F4_G,
        WinogradTile::F2x2S2 => &transforms::F2S2_G,
        WinogradTile::F4x4S2 => &transforms::F4S2_G,
    }
}

/// `g·x` summed left to right: `(g₀x₀ + g₁x₁) + g₂x₂`.
#[inline(always)]
fn dot3(g: &[f64; 3], x: [f64; 3]) -> f64 {
    g[0] * x[0] + g[1] * x[1] + g[2] * x[2]
}

/// Checks that a packed header (the first [`HEADER_LEN`] floats of packed
/// weights, e.g. from a weights file) describes `tile` for `cin → cout`:
/// [`conv3x3`] trusts it (and asserts on a mismatch).
pub fn check_header(tile: WinogradTile, cin: usize, cout: usize, header: &[f32]) -> Result<(), String> {
    let want = [tile.m() as f32, cin as f32, cout as f32, tile.stride() as f32];
    match header.get(..4) {
        Some(h) if h == want => Ok(()),
        Some(h) => Err(format!("Winograd header (m, cin, cout, stride) is {h:?}, expected {want:?}")),
        None => Err(format!("Winograd header has {} floats, needs {HEADER_LEN}", header.len())),
    }
}

/// Blocking and work split of one convolution: a function of the shape and
/// `threads` only (never of the ISA), so that [`scratch_len`] is too.
///
/// The work is `blocks × cs` tasks: tile block `b` (tiles
/// `[tiles·b/blocks, tiles·(b+1)/blocks)`, at most `tb`) × output-channel
/// group `g` (panels `[panels·g/cs, panels·(g+1)/cs)`), numbered `b·cs + g`.
/// `slots` workers, each with its own `worker_scratch()` floats, run one
/// contiguous range of them each — consecutive blocks, the image's rows in
/// order — and then take the others' last ones (see [`crate::par`]);
/// each output value is written by exactly one task, with the same
/// operations whichever worker runs it. A worker transforms a block's input
/// into its own `V` when it starts the block's first task it runs, and keeps
/// it for the block's next tasks (a channel split: `cs` tasks per block; see
/// `run_planned`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Tile size.
    pub tile: WinogradTile,
    /// Tile rows per image.
    pub tiles_h: usize,
    /// Tile columns per image.
    pub tiles_w: usize,
    /// Tiles in the batch.
    pub tiles: usize,
    /// Weight panels (`ceil(cout / 16)`).
    pub panels: usize,
    /// Leading dimension of `V` (`cin` rounded up to 16).
    pub ldv: usize,
    /// Tile blocks.
    pub blocks: usize,
    /// Tiles per block at most (`ceil(tiles / blocks)`: the capacity of a
    /// worker's `V` and `M`).
    pub tb: usize,
    /// Panels per output-channel chunk (between two output transforms).
    pub cbp: usize,
    /// Output-channel groups.
    pub cs: usize,
    /// Workers (scratch slots), at most `threads`.
    pub slots: usize,
}

impl Plan {
    /// The plan for `shape` under a pool of `threads`.
    ///
    /// # Panics
    /// If the shape is not a valid 3×3 stride-1 convolution.
    pub fn new(shape: &ConvShape, threads: usize) -> Self {
        Self::with_tile(tile_for(shape.in_c, shape.out_c), shape, threads)
    }

    /// The plan for `shape` with an explicit `tile`.
    ///
    /// # Panics
    /// If the shape is not a valid 3×3 stride-1 convolution.
    pub fn with_tile(tile: WinogradTile, shape: &ConvShape, threads: usize) -> Self {
        check_shape(tile, shape);
        let m = tile.m();
        let p = tile.positions();
        let tiles_h = shape.out_h().div_ceil(m);
        let tiles_w = shape.out_w().div_ceil(m);
        let tiles = shape.batch * tiles_h * tiles_w;
        let panels = shape.out_c.div_ceil(PANEL);
        let ldv = shape.in_c.div_ceil(PANEL) * PANEL;
        let threads = threads.max(1);
        // Split over tiles while there are a couple of full blocks per
        // thread; otherwise (deep layers: few tiles, big weights) also over
        // output channels (2 groups per thread), so that each task streams
        // only its share of U.
        let cs = if threads == 1 || tiles >= threads * 2 * TB_UNIT { 1 } else { (2 * threads).min(panels) };
        let group_panels = panels.div_ceil(cs);
        let cbp = CB_PANELS.min(group_panels);
        let u_bytes = tile.weight_positions() * shape.in_c * group_panels * PANEL * 4;
        // Bytes of V and M per tile of a block.
        let per_tile = p * 4 * (ldv + cbp * PANEL);
        let tb = if u_bytes <= U_SMALL && cs == 1 {
            // Small weights (stay in L2/L3 across blocks): V and M of a block
            // in L2, in a number of blocks that the workers share evenly (the
            // nearest multiple of `threads`).
            let group = (L2_BUDGET / per_tile).max(TB_UNIT) * threads;
            tiles.div_ceil(((tiles + group / 2) / group).max(1) * threads)
        } else {
            // Big weights (deep layers, few tiles), or a channel split (each
            // task streams only its share of U, once per block: at batch 1,
            // 2 threads, 14×14×256 F(3×3) — 25 tiles, 4 groups of 1.6 MB —
            // took 0.73 ms in 2 blocks and 0.48 ms in one): V of up to BIG_TB tiles
            // (in L3; each V_pos in L2 during its GEMMs), so that U streams
            // from memory once per BIG_TB tiles; without a channel split, in
            // a multiple of `threads` blocks (at batch 8 and 2 threads,
            // 14×14×256 F(4×4) had 3 blocks of 43 tiles, one worker doing two).
            // Weights that stay in L3 between blocks (U_L3) are re-read per
            // block rather than V and M spilling from L2 (BIG_L2_BUDGET).
            let cap = (BIG_V_BUDGET / (p * 4 * ldv)) / TB_UNIT * TB_UNIT;
            let mut per_block = BIG_TB.min(cap).max(TB_UNIT);
            if cs == 1 && u_bytes <= U_L3 {
                per_block = per_block.min((BIG_L2_BUDGET / per_tile).max(TB_UNIT));
            }
            let blocks = tiles.div_ceil(per_block);
            tiles.div_ceil(if cs == 1 { blocks.next_multiple_of(threads) } else { blocks })
        };
        Plan { tile, tiles_h, tiles_w, tiles, panels, ldv, blocks: 0, tb: 0, cbp, cs, slots: threads }
            .with_blocking(tb, cbp)
    }

    /// This plan with blocks of at most about `tb` tiles (balanced) and
    /// output chunks of `cbp` panels (tuning).
    pub fn with_blocking(mut self, tb: usize, cbp: usize) -> Self {
        self.blocks = self.tiles.div_ceil(tb.max(1));
        self.tb = self.tiles.div_ceil(self.blocks);
        self.cbp = cbp.clamp(1, self.panels.div_ceil(self.cs));
        self.slots = self.slots.clamp(1, self.tasks());
        self
    }

    /// This plan with `cs` output-channel groups (tuning; at most one per
    /// panel), its tile blocks kept; its workers stay as many (or fewer, if
    /// there are fewer tasks).
    pub fn with_channel_groups(mut self, cs: usize) -> Self {
        self.cs = cs.clamp(1, self.panels);
        self.with_blocking(self.tb, self.cbp)
    }

    /// Tasks (`blocks · cs`).
    pub fn tasks(&self) -> usize {
        self.blocks * self.cs
    }
    /// The tiles of block `b`: `[tiles·b/blocks, tiles·(b+1)/blocks)`.
    fn block_tiles(&self, b: usize) -> std::ops::Range<usize> {
        self.tiles * b / self.blocks..self.tiles * (b + 1) / self.blocks
    }
    fn v_len(&self) -> usize {
        self.tile.positions() * self.v_stride()
    }
    fn m_len(&self) -> usize {
        self.tile.positions() * self.m_stride()
    }
    /// Floats from one transform position's rows of V to the next's (room
    /// for `tb` rows, [`odd_lines`]).
    fn v_stride(&self) -> usize {
        odd_lines(self.tb * self.ldv)
    }
    /// Floats from one transform position's rows of M to the next's (room
    /// for `tb` rows, [`odd_lines`]).
    fn m_stride(&self) -> usize {
        odd_lines(self.tb * self.cbp * PANEL)
    }
    /// Scratch floats of one worker: one line that names the block its `V`
    /// holds, then `V` and `M`.
    pub fn worker_scratch(&self) -> usize {
        PANEL + self.v_len() + self.m_len()
    }
    /// Workers (`slots ≤ threads`).
    pub fn workers(&self) -> usize {
        self.slots
    }
}

/// `floats` (a whole number of 64-byte lines) rounded up to an odd number
/// of lines: the distance between two transform positions in V and M.
///
/// The input transform stores one line per position for each channel
/// vector, and the output transform loads one per position: α² lines at
/// this stride. A stride that is a multiple of 4 KiB (stage 5's 16 tiles ×
/// 512 channels = 32 KiB in V and 16 × 64 = 4 KiB in M at batch 1; most
/// of stages 4–5 at batch 8) put all of them in one set of an 8-way L1;
/// an odd number of lines spreads any 64 consecutive positions over all 64
/// sets. Same process, alternated inference by inference (Zen 3, AVX2, v1):
/// batch 8, two threads (30 rounds) stage 4's Winograd layers 0.88–0.93×
/// the time, stage 5's 0.94–0.98×, the inference 0.99×; batch 1 (80–100
/// rounds) stages 4–5 0.98–0.99× at one thread, 0.99–1.00× at two.
fn odd_lines(floats: usize) -> usize {
    debug_assert_eq!(floats % PANEL, 0, "whole lines of 16 floats");
    if (floats / PANEL).is_multiple_of(2) {
        floats + PANEL
    } else {
        floats
    }
}

fn check_shape(tile: WinogradTile, shape: &ConvShape) {
    let s = tile.stride();
    assert!(
        shape.is_valid() && shape.kh == 3 && shape.kw == 3 && shape.stride_h == s && shape.stride_w == s,
        "winograd: {tile:?} needs a valid 3×3 stride-{s} convolution, got {shape:?}"
    );
}

/// Scratch floats [`conv3x3`] needs for `shape` under `threads`.
///
/// # Panics
/// If the shape is not a valid 3×3 stride-1 convolution.
pub fn scratch_len(shape: &ConvShape, threads: usize) -> usize {
    scratch_len_for(tile_for(shape.in_c, shape.out_c), shape, threads)
}

/// Scratch floats [`conv3x3`] needs for weights packed with `tile`.
///
/// # Panics
/// If the shape is not a valid 3×3 stride-1 convolution.
pub fn scratch_len_for(tile: WinogradTile, shape: &ConvShape, threads: usize) -> usize {
    let plan = Plan::with_tile(tile, shape, threads);
    plan.workers() * plan.worker_scratch()
}

/// Input transform of one tile: writes `α²` rows at `dst + pos·pstride`.
type InputFn = unsafe fn(&InTile, *mut f32, usize);
/// Output transform of one tile with epilogue.
type OutputFn = unsafe fn(*const f32, usize, &OutTile);

/// One ISA's Winograd kernels.
#[derive(Clone, Copy)]
struct Kernels {
    input: InputFn,
    output: OutputFn,
    /// Whose GEMM microkernel runs the per-position products.
    isa: Isa,
}

/// The kernels of `isa` for `tile`. Only called after `isa.is_supported()`.
fn kernels(isa: Isa, tile: WinogradTile) -> Kernels {
    use WinogradTile::*;
    match (isa, tile) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx2, F4x4) => Kernels {
            input: avx2::winograd_f4x4_input_transform_avx2,
            output: avx2::winograd_f4x4_output_transform_avx2,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx2, F2x2) => Kernels {
            input: avx2::winograd_f2x2_input_transform_avx2,
            output: avx2::winograd_f2x2_output_transform_avx2,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx512, F4x4) => Kernels {
            input: avx512::winograd_f4x4_input_transform_avx512,
            output: avx512::winograd_f4x4_output_transform_avx512,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx512, F2x2) => Kernels {
            input: avx512::winograd_f2x2_input_transform_avx512,
            output: avx512::winograd_f2x2_output_transform_avx512,
            isa,
        },
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, F4x4) => Kernels {
            input: neon::winograd_f4x4_input_transform_neon,
            output: neon::winograd_f4x4_output_transform_neon,
            isa,
        },
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, F2x2) => Kernels {
            input: neon::winograd_f2x2_input_transform_neon,
            output: neon::winograd_f2x2_output_transform_neon,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx2, F3x3) => Kernels {
            input: avx2::winograd_f3x3_input_transform_avx2,
            output: avx2::winograd_f3x3_output_transform_avx2,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx512, F3x3) => Kernels {
            input: avx512::winograd_f3x3_input_transform_avx512,
            output: avx512::winograd_f3x3_output_transform_avx512,
            isa,
        },
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, F3x3) => Kernels {
            input: neon::winograd_f3x3_input_transform_neon,
            output: neon::winograd_f3x3_output_transform_neon,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx2, F2x2S2) => Kernels {
            input: avx2::winograd_f2x2s2_input_transform_avx2,
            output: avx2::winograd_f2x2s2_output_transform_avx2,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx512, F2x2S2) => Kernels {
            input: avx512::winograd_f2x2s2_input_transform_avx512,
            output: avx512::winograd_f2x2s2_output_transform_avx512,
            isa,
        },
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, F2x2S2) => Kernels {
            input: neon::winograd_f2x2s2_input_transform_neon,
            output: neon::winograd_f2x2s2_output_transform_neon,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx2, F4x4S2) => Kernels {
            input: avx2::winograd_f4x4s2_input_transform_avx2,
            output: avx2::winograd_f4x4s2_output_transform_avx2,
            isa,
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        (Isa::Avx512, F4x4S2) => Kernels {
            input: avx512::winograd_f4x4s2_input_transform_avx512,
            output: avx512::winograd_f4x4s2_output_transform_avx512,
            isa,
        },
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, F4x4S2) => Kernels {
            input: neon::winograd_f4x4s2_input_transform_neon,
            output: neon::winograd_f4x4s2_output_transform_neon,
            isa,
        },
        // Scalar (and any ISA without kernels on this architecture).
        (_, F4x4) => Kernels {
            input: scalar::winograd_f4x4_input_transform_scalar,
            output: scalar::winograd_f4x4_output_transform_scalar,
            isa,
        },
        (_, F2x2) => Kernels {
            input: scalar::winograd_f2x2_input_transform_scalar,
            output: scalar::winograd_f2x2_output_transform_scalar,
            isa,
        },
        (_, F3x3) => Kernels {
            input: scalar::winograd_f3x3_input_transform_scalar,
            output: scalar::winograd_f3x3_output_transform_scalar,
            isa,
        },
        (_, F2x2S2) => Kernels {
            input: scalar::winograd_f2x2s2_input_transform_scalar,
            output: scalar::winograd_f2x2s2_output_transform_scalar,
            isa,
        },
        (_, F4x4S2) => Kernels {
            input: scalar::winograd_f4x4s2_input_transform_scalar,
            output: scalar::winograd_f4x4s2_output_transform_scalar,
            isa,
        },
    }
}

/// Raw pointers shared by the workers.
#[derive(Clone, Copy)]
struct Shared {
    input: *const f32,
    u: *const f32,
    output: *mut f32,
    bias: *const f32,
    residual: *const f32,
}
// SAFETY: the workers only read `input`, `u`, `bias`, `residual`, and write
// disjoint (tile range × channel range) regions of `output`, while
// `conv3x3` holds the borrows these pointers come from.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// 3×3, stride 1 convolution (any zero padding) with a fused epilogue:
/// `output = relu?(conv(input) + bias + residual)`.
///
/// `packed` comes from [`pack`]/[`pack_for`] (the tile is read from its
/// header); `scratch` has at least [`scratch_len`]`(shape, threads)` floats;
/// `threads` is the number of workers (the rayon pool or thread team this
/// runs under). No heap
/// allocation. Results are identical for a given `isa` whatever `threads`.
///
/// # Panics
/// If the shape is not 3×3 stride 1, a length does not match, the packed
/// header does not describe `shape.in_c → shape.out_c`, or `isa` is not
/// supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    let tile = check_args(isa, shape, input, packed, ep, output);
    let plan = Plan::with_tile(tile, shape, threads);
    run_planned(isa, &plan, shape, input, packed, ep, output, scratch);
}

/// [`conv3x3`] with an explicit [`Plan`] (for tuning the blocking): the plan
/// must come from [`Plan::new`]/[`Plan::with_tile`] for this shape (possibly
/// [`Plan::with_blocking`]); the work runs on `plan.workers()` workers of the
/// current rayon pool, or of the thread team ([`crate::par::with_team`]) when
/// called from its owner thread.
///
/// # Panics
/// As [`conv3x3`], or if the plan does not fit the shape and the packed tile.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_planned(
    isa: Isa,
    plan: &Plan,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
) {
    check_args(isa, shape, input, packed, ep, output);
    let base = Plan::with_tile(plan.tile, shape, 1);
    assert!(
        Some(plan.tile) == WinogradTile::from_header(packed[0], packed[3])
            && (plan.tiles_h, plan.tiles_w, plan.tiles, plan.panels, plan.ldv)
                == (base.tiles_h, base.tiles_w, base.tiles, base.panels, base.ldv)
            && (1..=plan.tiles).contains(&plan.blocks)
            && plan.tb >= plan.tiles.div_ceil(plan.blocks)
            && plan.cbp >= 1
            && (1..=plan.panels).contains(&plan.cs)
            && plan.slots >= 1,
        "winograd: plan {plan:?} does not fit {shape:?}"
    );
    run_planned(isa, plan, shape, input, packed, ep, output, scratch);
}

/// Checks `conv3x3`'s arguments (everything but the scratch length); returns
/// the tile of the packed weights.
fn check_args(
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &[f32],
) -> WinogradTile {
    assert!(isa.is_supported(), "winograd: ISA {isa} not supported by this CPU");
    assert_eq!(input.len(), shape.input_len(), "winograd: input length");
    assert_eq!(output.len(), shape.output_len(), "winograd: output length");
    assert!(packed.len() >= HEADER_LEN, "winograd: packed weights too short ({})", packed.len());
    let tile = WinogradTile::from_header(packed[0], packed[3]).expect("winograd: packed header has no tile size");
    check_shape(tile, shape);
    if let Err(e) = check_header(tile, shape.in_c, shape.out_c, packed) {
        panic!("winograd: packed weights do not fit the shape: {e}");
    }
    assert_eq!(packed.len(), packed_len_for(tile, shape.in_c, shape.out_c), "winograd: packed weights length");
    if let Some(b) = ep.bias {
        assert_eq!(b.len(), shape.out_c, "winograd: bias length");
    }
    assert!(ep.residual_subsample.is_none(), "winograd: a subsampled residual needs a strided output; use a GEMM");
    assert!(!ep.residual_in_output, "winograd: takes its residual separately, not in the output; use a GEMM");
    if let Some(r) = ep.residual {
        assert_eq!(r.len(), output.len(), "winograd: residual length");
    }
    tile
}

/// Runs a validated plan.
#[allow(clippy::too_many_arguments)]
fn run_planned(
    isa: Isa,
    plan: &Plan,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
) {
    let tile = plan.tile;
    let per = plan.worker_scratch();
    let need = plan.workers() * per;
    assert!(scratch.len() >= need, "winograd: scratch has {} floats, needs {need}", scratch.len());
    let k = kernels(isa, tile);
    let sh = Shared {
        input: input.as_ptr(),
        u: packed[HEADER_LEN..].as_ptr(),
        output: output.as_mut_ptr(),
        bias: ep.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        residual: ep.residual.map_or(std::ptr::null(), |r| r.as_ptr()),
    };
    let relu = ep.relu;
    // No worker's V holds a block yet.
    for slot in scratch[..need].chunks_exact_mut(per) {
        slot[0] = f32::from_bits(NO_BLOCK);
    }
    crate::par::run_tasks(plan.tasks(), plan.workers(), &mut scratch[..need], per, |t, s| {
        // SAFETY: lengths validated above; run_tasks hands out each task
        // index once, task `t` writes only its own (tile block × channel
        // group) of the output, and `s` is this worker's own scratch.
        unsafe { task(plan, shape, k, sh, relu, t, s) }
    });
}

/// What the first float of a worker's scratch holds (as bits) while its `V`
/// holds no block's transformed input; the block's index otherwise (a block
/// whose index does not fit below this is never held, only transformed).
const NO_BLOCK: u32 = u32::MAX;

/// Task `t` of `plan`: one tile block × one output-channel group.
///
/// The worker's `V` is kept from its previous task when that was of the same
/// block (a channel split gives each block `cs` consecutive tasks), so each
/// worker transforms a block's input once, for itself. Sharing one `V` per
/// block between the workers instead (each tile transformed once, by
/// either worker, in a job before the products) makes every worker read
/// the other's half of `V` from the other core's cache, and write its own
/// half over lines the other core read in the layer before: on the 2-vCPU
/// Xeon of stop 56 (core-to-core 74–78 ns one way), 14×14×256 F(3×3) at two
/// threads (4 channel groups, 640 KB of `V`, ~39 µs to transform at one
/// thread) spent ~31 µs in the shared transform and ~46 µs more in each
/// worker's first task than in its second, against ~39 µs to transform its
/// own; same process, alternated, cold weights: 0.455–0.470 → 0.426–0.435
/// ms alone, 0.906–0.925×; in v1.5 at two threads 0.924–0.926× (same
/// process, two runs of 40 inference pairs) and, binaries alternated, the
/// five layers 2.30–2.39 → 2.07–2.14 ms an inference (AVX2 path: ~1 %).
/// The shared `V` had replaced a transform per task (two per worker) on a
/// Zen 4 VM whose two vCPUs share an L3: 0.44–0.47 → 0.41 ms. Where reading
/// the other core's lines costs nothing, this costs half a transform per
/// worker more than sharing did (~15 µs a layer there); not measured there.
///
/// # Safety
/// The pointers in `sh` are valid for `shape` (validated by `conv3x3`);
/// `s` has `plan.worker_scratch()` floats, its first the block its `V` holds
/// ([`NO_BLOCK`] for none); no other running task has the same `t`.
unsafe fn task(plan: &Plan, shape: &ConvShape, k: Kernels, sh: Shared, relu: bool, t: usize, s: &mut [f32]) {
    let blk = t / plan.cs;
    let (held, s) = s.split_at_mut(PANEL);
    let (v, mbuf) = s.split_at_mut(plan.v_len());
    let (v, mbuf) = (v.as_mut_ptr(), mbuf.as_mut_ptr());
    let tag = u32::try_from(blk).unwrap_or(NO_BLOCK);
    if tag == NO_BLOCK || held[0].to_bits() != tag {
        // 1. Input transform of the block.
        let tiles = plan.block_tiles(blk);
        for tt in tiles.clone() {
            // SAFETY: row tt − start < tb of this worker's V.
            unsafe { input_transform(plan, shape, k, sh, tt, v.add((tt - tiles.start) * plan.ldv)) };
        }
        held[0] = f32::from_bits(tag);
    }
    // SAFETY: forwarded; V holds the block's transformed tiles.
    unsafe { products_and_output(plan, shape, k, sh, relu, t, v, mbuf) }
}

/// Input transform of tile `t` into row 0 of `v` (its positions
/// `plan.v_stride()` floats apart).
///
/// # Safety
/// As [`task`]; `v` is writable for `positions` rows of `plan.ldv` floats at
/// that stride.
unsafe fn input_transform(plan: &Plan, shape: &ConvShape, k: Kernels, sh: Shared, t: usize, v: *mut f32) {
    let tile = plan.tile;
    let m = tile.m();
    let tpi = plan.tiles_h * plan.tiles_w;
    let img_len = shape.in_h * shape.in_w * shape.in_c;
    let (n, r) = (t / tpi, t % tpi);
    let (ty, tx) = (r / plan.tiles_w, r % plan.tiles_w);
    let it = InTile {
        // SAFETY: n < batch.
        img: unsafe { sh.input.add(n * img_len) },
        h: shape.in_h,
        w: shape.in_w,
        c: shape.in_c,
        y0: (ty * m * tile.stride()) as isize - shape.pad_top as isize,
        x0: (tx * m * tile.stride()) as isize - shape.pad_left as isize,
    };
    // SAFETY: positions at stride v_stride() ≥ tb·ldv, ldv ≥ round_up(cin, LANES) for
    // every ISA (LANES ≤ 16).
    unsafe { (k.input)(&it, v, plan.v_stride()) };
}

/// Task `t`'s products and output transforms, from its block's transformed
/// tiles in `v` (row `tt − t0` for tile `tt`), with `mbuf` (`plan.m_len()`
/// floats) for the products.
///
/// # Safety
/// As [`task`].
#[allow(clippy::too_many_arguments)]
unsafe fn products_and_output(
    plan: &Plan,
    shape: &ConvShape,
    k: Kernels,
    sh: Shared,
    relu: bool,
    t: usize,
    v: *const f32,
    mbuf: *mut f32,
) {
    let tile = plan.tile;
    let (m, npos) = (tile.m(), tile.positions());
    let (cin, cout) = (shape.in_c, shape.out_c);
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let (b, cg) = (t / plan.cs, t % plan.cs);
    let std::ops::Range { start: t0, end: t1 } = plan.block_tiles(b);
    let (p_begin, p_end) = (plan.panels * cg / plan.cs, plan.panels * (cg + 1) / plan.cs);
    let tpi = plan.tiles_h * plan.tiles_w;
    let cb = plan.cbp * PANEL;
    let vstride = plan.v_stride();
    let mstride = plan.m_stride();

    // 2. GEMMs and output transform, chunk by chunk of output channels.
    let mut p0 = p_begin;
    // Panel p of the weight matrix of transform position pos.
    let u_at = |pos: usize, p: usize| sh.u.wrapping_add((tile.weight_index(pos) * plan.panels + p) * cin * PANEL);
    while p0 < p_end {
        let p1 = (p0 + plan.cbp).min(p_end);
        for pos in 0..npos {
            // The next product's weights: the same panels at the next
            // position, or the next chunk's at position 0.
            let after = if pos + 1 < npos {
                u_at(pos + 1, p0)
            } else if p1 < p_end {
                u_at(0, p1)
            } else {
                std::ptr::null()
            };
            // SAFETY: the ISA was checked by the caller; V rows < t1 - t0 ≤
            // tb of cin floats; U panels p0..p1 of position pos's weight
            // matrix (cin rows each, consecutive); M rows at ldc = cb ≥
            // 16·(p1 − p0).
            unsafe {
                crate::gemm::gemm_rows(
                    k.isa,
                    &crate::gemm::RowsProduct {
                        m: t1 - t0,
                        k: cin,
                        a: v.add(pos * vstride),
                        lda: plan.ldv,
                        b: u_at(pos, p0),
                        n: (p1 - p0) * PANEL,
                        c: mbuf.add(pos * mstride),
                        ldc: cb,
                        b_after: after,
                    },
                )
            };
        }
        let c0 = p0 * PANEL;
        let nch = (p1 * PANEL).min(cout) - c0;
        for t in t0..t1 {
            let (n, r) = (t / tpi, t % tpi);
            let (ty, tx) = (r / plan.tiles_w, r % plan.tiles_w);
            let (oy, ox) = (ty * m, tx * m);
            let off = ((n * oh + oy) * ow + ox) * cout + c0;
            let ot = OutTile {
                // SAFETY (the three pointers): (n, oy, ox, c0) is inside the output.
                out: unsafe { sh.output.add(off) },
                res: if sh.residual.is_null() { std::ptr::null() } else { unsafe { sh.residual.add(off) } },
                bias: if sh.bias.is_null() { std::ptr::null() } else { unsafe { sh.bias.add(c0) } },
                row_stride: ow * cout,
                px_stride: cout,
                rows: (oh - oy).min(m),
                cols: (ow - ox).min(m),
                nch,
                relu,
            };
            // SAFETY: M row t - t0 of every position, cb ≥ round_up(nch,
            // LANES) floats each; the tile's pixels and channels c0..c0+nch
            // belong to this worker alone.
            unsafe { (k.output)(mbuf.add((t - t0) * cb), mstride, &ot) };
        }
        p0 = p1;
    }
}

#[cfg(test)]
mod tests;

//! Winograd transform matrices and the ISA-generic tile transforms.
//!
//! The arithmetic of each transform is written once here, over a tiny
//! `Simd` abstraction (a vector of `LANES` channels); every ISA file
//! instantiates it inside its own `#[target_feature]` entry point
//! (`winograd_f4x4_input_transform_avx2`, …), where the `#[inline(always)]`
//! generic code is compiled with that ISA's instructions. Vectors always run
//! over channels (NHWC), so a transform is α² (16 to 81) independent
//! element-wise operations per channel vector: no shuffles.
//!
//! # F(4×4, 3×3)
//! Interpolation points {0, 1, −1, 2, −1/2, ∞}: in an fp32 simulation with
//! sequential accumulation over `cin` they give ≈3× less error than Lavin's
//! {0, ±1, ±2, ∞} (max error / max|y| ≈ 3.8e-6 vs 1.1e-5 at `cin` = 512),
//! at the cost of 17 instead of 12 operations per 1-D input transform.
//!
//! ```text
//! Bᵀ = ⎡1  3/2   −2 −3/2    1  0⎤   G = ⎡    1     0     0⎤   Aᵀ = ⎡1  1  1  1    1  0⎤
//!      ⎢0   −1 −5/2 −1/2    1  0⎥       ⎢ −1/3  −1/3  −1/3⎥        ⎢0  1 −1  2 −1/2  0⎥
//!      ⎢0    1  1/2 −5/2    1  0⎥       ⎢  1/3  −1/3   1/3⎥        ⎢0  1  1  4  1/4  0⎥
//!      ⎢0 −1/2   −1  1/2    1  0⎥       ⎢ 1/15  2/15  4/15⎥        ⎣0  1 −1  8 −1/8  1⎦
//!      ⎢0    2   −1   −2    1  0⎥       ⎢−16/15 8/15 −4/15⎥
//!      ⎣0    1  3/2   −2 −3/2  1⎦       ⎣    0     0     1⎦
//! ```
//!
//! # F(2×2, 3×3)
//! Points {0, 1, −1, ∞} (Lavin & Gray):
//!
//! ```text
//! Bᵀ = ⎡1  0 −1  0⎤   G = ⎡  1    0    0⎤   Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0  1  1  0⎥       ⎢1/2  1/2  1/2⎥        ⎣0  1 −1 −1⎦
//!      ⎢0 −1  1  0⎥       ⎢1/2 −1/2  1/2⎥
//!      ⎣0  1  0 −1⎦       ⎣  0    0    1⎦
//! ```
//!
//! # F(3×3, 3×3)
//! Points {0, 1, −1, 2, ∞}, the same as F(4, 2) below, hence the same Bᵀ.
//! Simulated in fp32 as the kernels compute it (`scripts/winograd_points.py
//! 3 0 1 -1 2`: `cin` = 256, post-ReLU inputs, He-uniform weights, mean over
//! 2000 tiles of max|Δ|/max|y|) it gives 1.27e-6 against 1.70e-6 for F(4×4)
//! and 0.45e-6 for F(2×2); {0, ±1, −2}, {0, ±1, ±1/2} come out within 5 % of
//! it, {0, ±1, −1/2} 5 % worse. On ResNet50's layers (below, and
//! `tests/winograd_props.rs`) its error is close to F(4×4)'s: 3.3e-6 of
//! max|y| on 14×14×256 against 3.6e-6 (F(2×2): 0.6e-6).
//!
//! ```text
//! Bᵀ = ⎡2 −1 −2  1  0⎤   G = ⎡ 1/2    0    0⎤   Aᵀ = ⎡1  1  1  1  0⎤
//!      ⎢0 −2 −1  1  0⎥       ⎢−1/2 −1/2 −1/2⎥        ⎢0  1 −1  2  0⎥
//!      ⎢0  2 −3  1  0⎥       ⎢−1/6  1/6 −1/6⎥        ⎣0  1  1  4  1⎦
//!      ⎢0 −1  0  1  0⎥       ⎢ 1/6  1/3  2/3⎥
//!      ⎣0  2 −1 −2  1⎦       ⎣   0    0    1⎦
//! ```
//!
//! 25 multiplications for 9 outputs (2.78 per output, against 4 for F(2×2)
//! and 2.25 for F(4×4)), with 25 transformed weight matrices (F(2×2): 16,
//! F(4×4): 36): on a 14×14 map, 25 tiles covering 15×15 where F(2×2) needs
//! 49 and F(4×4) 16 covering 16×16.
//!
//! # F(2×2, 3×3) at stride 2
//! Along each axis a stride-2 output `y[i] = d[2i]·w0 + d[2i+1]·w1 +
//! d[2i+2]·w2` is a 2-tap convolution of the even inputs with (w0, w2),
//! F(2, 2) with points {0, 1, ∞}, plus the odd inputs times w1. Over a
//! 5-wide window (two outputs), with the odd inputs last:
//!
//! ```text
//! Bᵀ = ⎡1  0 −1  0  0⎤   G = ⎡1  0  0⎤   Aᵀ = ⎡1  1  0  1  0⎤
//!      ⎢0  0  1  0  0⎥       ⎢1  0  1⎥        ⎣0  1  1  0  1⎦
//!      ⎢0  0 −1  0  1⎥       ⎢0  0  1⎥
//!      ⎢0  1  0  0  0⎥       ⎢0  1  0⎥
//!      ⎣0  0  0  1  0⎦       ⎣0  1  0⎦
//! ```
//!
//! G's last two rows are equal, so of the 25 positions of a 2-D tile only 16
//! have distinct transformed weights (`WinogradTile::weight_index`); the
//! packed layout stores those 16 (`F2S2_G`, 4×3). 25 multiplications for 4
//! outputs instead of 36, and the transforms are exact additions.
//!
//! # F(4×4, 3×3) at stride 2
//! The same split over a 9-wide window (four outputs): the five even inputs
//! go through F(4, 2) with points {0, 1, −1, 2, ∞}, the four odd ones meet
//! w1. The F(4, 2) part (odd inputs last, as above):
//!
//! ```text
//! Bᵀ = ⎡2 −1 −2  1  0⎤   G = ⎡ 1/2    0⎤   Aᵀ = ⎡1  1  1  1  0⎤
//!      ⎢0 −2 −1  1  0⎥       ⎢−1/2 −1/2⎥        ⎢0  1 −1  2  0⎥
//!      ⎢0  2 −3  1  0⎥       ⎢−1/6  1/6⎥        ⎢0  1  1  4  0⎥
//!      ⎢0 −1  0  1  0⎥       ⎢ 1/6  1/3⎥        ⎣0  1 −1  8  1⎦
//!      ⎣0  2 −1 −2  1⎦       ⎣   0    1⎦
//! ```
//!
//! (G acts on (w0, w2); the odd positions' row is (0, 1, 0) on (w0, w1,
//! w2).) 81 positions for 16 outputs (5.06 multiplications per output
//! instead of 9), 36 distinct transformed weight matrices.
//!
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`; the weight transform `G g Gᵀ` is done
//! once at pack time in f64.

/// Bᵀ of F(4×4, 3×3) (6×6), row-major. Documentation and tests; the SIMD
/// code uses the factored form in `bt6`.
pub const F4_BT: [[f64; 6]; 6] = [
    [1.0, 1.5, -2.0, -1.5, 1.0, 0.0],
    [0.0, -1.0, -2.5, -0.5, 1.0, 0.0],
    [0.0, 1.0, 0.5, -2.5, 1.0, 0.0],
    [0.0, -0.5, -1.0, 0.5, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 1.0, 1.5, -2.0, -1.5, 1.0],
];

/// G of F(4×4, 3×3) (6×3).
pub const F4_G: [[f64; 3]; 6] = [
    [1.0, 0.0, 0.0],
    [-1.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0],
    [1.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0],
    [1.0 / 15.0, 2.0 / 15.0, 4.0 / 15.0],
    [-16.0 / 15.0, 8.0 / 15.0, -4.0 / 15.0],
    [0.0, 0.0, 1.0],
];

/// Aᵀ of F(4×4, 3×3) (4×6).
pub const F4_AT: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -0.5, 0.0],
    [0.0, 1.0, 1.0, 4.0, 0.25, 0.0],
    [0.0, 1.0, -1.0, 8.0, -0.125, 1.0],
];

/// Bᵀ of F(2×2, 3×3) (4×4).
pub const F2_BT: [[f64; 4]; 4] =
    [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]];

/// G of F(2×2, 3×3) (4×3).
pub const F2_G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// Aᵀ of F(2×2, 3×3) (2×4).
pub const F2_AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// Bᵀ of F(3×3, 3×3) (5×5): the same points as F(4, 2) at stride 2, so the
/// same matrix as the even-input block of [`F4S2_BT`].
pub const F3_BT: [[f64; 5]; 5] = [
    [2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 1.0, 0.0],
    [0.0, 2.0, -3.0, 1.0, 0.0],
    [0.0, -1.0, 0.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0],
];

/// G of F(3×3, 3×3) (5×3).
pub const F3_G: [[f64; 3]; 5] = [
    [0.5, 0.0, 0.0],
    [-0.5, -0.5, -0.5],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 6.0, 1.0 / 3.0, 2.0 / 3.0],
    [0.0, 0.0, 1.0],
];

/// Aᵀ of F(3×3, 3×3) (3×5).
pub const F3_AT: [[f64; 5]; 3] = [[1.0, 1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 2.0, 0.0], [0.0, 1.0, 1.0, 4.0, 1.0]];

/// Bᵀ of F(2×2, 3×3) at stride 2 (5×5; odd inputs last).
pub const F2S2_BT: [[f64; 5]; 5] = [
    [1.0, 0.0, -1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, -1.0, 0.0, 1.0],
    [0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 0.0],
];

/// G of F(2×2, 3×3) at stride 2, distinct rows only (4×3): the fifth
/// position's row equals the fourth's.
pub const F2S2_G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]];

/// Aᵀ of F(2×2, 3×3) at stride 2 (2×5).
pub const F2S2_AT: [[f64; 5]; 2] = [[1.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, 1.0]];

/// Bᵀ of F(4×4, 3×3) at stride 2 (9×9; the five even inputs through F(4, 2),
/// the four odd ones last).
pub const F4S2_BT: [[f64; 9]; 9] = [
    [2.0, 0.0, -1.0, 0.0, -2.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, -2.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 2.0, 0.0, -3.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 2.0, 0.0, -1.0, 0.0, -2.0, 0.0, 1.0],
    [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
];

/// G of F(4×4, 3×3) at stride 2, distinct rows only (6×3): the odd
/// positions all share the last row.
pub const F4S2_G: [[f64; 3]; 6] = [
    [0.5, 0.0, 0.0],
    [-0.5, 0.0, -0.5],
    [-1.0 / 6.0, 0.0, 1.0 / 6.0],
    [1.0 / 6.0, 0.0, 1.0 / 3.0],
    [0.0, 0.0, 1.0],
    [0.0, 1.0, 0.0],
];

/// Aᵀ of F(4×4, 3×3) at stride 2 (4×9).
pub const F4S2_AT: [[f64; 9]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, 1.0, 0.0, 0.0, 0.0, 1.0],
];

/// A vector of `LANES` f32 channels. Every method is `unsafe` because the
/// SIMD implementations need their target features (the caller is a
/// `#[target_feature]` function reached only after `Isa::is_supported`) and
/// the memory methods dereference raw pointers.
pub(crate) trait Simd: Copy {
    /// Channels per vector.
    const LANES: usize;
    /// All zeros.
    unsafe fn zero() -> Self;
    /// `v` in every lane.
    unsafe fn splat(v: f32) -> Self;
    /// Loads `LANES` floats from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self;
    /// Loads `n < LANES` floats from `p`, zero in the other lanes; reads
    /// nothing past `p + n`.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;
    /// Stores `LANES` floats to `p` (unaligned).
    unsafe fn store(self, p: *mut f32);
    /// Stores the first `n < LANES` lanes to `p`; writes nothing past `p + n`.
    unsafe fn store_partial(self, p: *mut f32, n: usize);
    /// `self + o`.
    unsafe fn add(self, o: Self) -> Self;
    /// `self - o`.
    unsafe fn sub(self, o: Self) -> Self;
    /// `a * b + c` (fused where the ISA has FMA).
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `c - a * b` (fused where the ISA has FMA).
    unsafe fn neg_mul_add(a: Self, b: Self, c: Self) -> Self;
    /// Lane-wise `max(self, 0)`.
    unsafe fn relu(self) -> Self;
}

/// One input tile to transform: the `alpha`×`alpha` window whose top-left
/// corner is at (`y0`, `x0`) of image `img` (may lie partly or wholly in
/// the zero padding).
pub(crate) struct InTile {
    /// First float of the image (NHWC, `h`×`w`×`c`).
    pub img: *const f32,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window's top row (negative inside the top padding).
    pub y0: isize,
    /// Window's left column.
    pub x0: isize,
}

/// Where one output tile goes, and its epilogue.
pub(crate) struct OutTile {
    /// Output value of the tile's top-left pixel at the chunk's first channel.
    pub out: *mut f32,
    /// Residual at the same index as `out`, or null.
    pub res: *const f32,
    /// Bias at the chunk's first channel, or null.
    pub bias: *const f32,
    /// Floats between vertically adjacent output pixels.
    pub row_stride: usize,
    /// Floats between horizontally adjacent output pixels (`cout`).
    pub px_stride: usize,
    /// Output rows of the tile inside the image (≤ m).
    pub rows: usize,
    /// Output columns of the tile inside the image (≤ m).
    pub cols: usize,
    /// Channels in the chunk (≤ the chunk width).
    pub nch: usize,
    /// Apply ReLU last.
    pub relu: bool,
}

/// 1-D Bᵀ of F(4×4) on six vectors (17 operations).
#[inline(always)]
pub(crate) unsafe fn bt6<S: Simd>(d: [S; 6]) -> [S; 6] {
    // SAFETY: the caller enabled S's features.
    unsafe {
        let (half, two, c15, c25) = (S::splat(0.5), S::splat(2.0), S::splat(1.5), S::splat(2.5));
        let a = d[3].sub(d[1]);
        let t = d[4].sub(d[2]);
        // r0 = d0 + d4 − 2·d2 − 3/2·(d3 − d1)
        let r0 = S::neg_mul_add(c15, a, S::neg_mul_add(two, d[2], d[0].add(d[4])));
        // r1 = d4 − d1 − 5/2·d2 − 1/2·d3
        let r1 = S::neg_mul_add(half, d[3], S::neg_mul_add(c25, d[2], d[4].sub(d[1])));
        // r2 = d4 + d1 + 1/2·d2 − 5/2·d3
        let r2 = S::neg_mul_add(c25, d[3], S::mul_add(half, d[2], d[4].add(d[1])));
        // r3 = (d4 − d2) + 1/2·(d3 − d1)
        let r3 = S::mul_add(half, a, t);
        // r4 = (d4 − d2) − 2·(d3 − d1)
        let r4 = S::neg_mul_add(two, a, t);
        // r5 = d1 + d5 − 2·d3 + 3/2·(d2 − d4)
        let r5 = S::mul_add(c15, d[2].sub(d[4]), S::neg_mul_add(two, d[3], d[1].add(d[5])));
        [r0, r1, r2, r3, r4, r5]
    }
}

/// 1-D Aᵀ of F(4×4) on six vectors.
#[inline(always)]
pub(crate) unsafe fn at6<S: Simd>(m: [S; 6]) -> [S; 4] {
    // SAFETY: the caller enabled S's features.
    unsafe {
        let s12 = m[1].add(m[2]);
        let d12 = m[1].sub(m[2]);
        let o0 = m[0].add(s12).add(m[3]).add(m[4]);
        let o1 = S::neg_mul_add(S::splat(0.5), m[4], S::mul_add(S::splat(2.0), m[3], d12));
        let o2 = S::mul_add(S::splat(0.25), m[4], S::mul_add(S::splat(4.0), m[3], s12));
        let o3 = S::neg_mul_add(S::splat(0.125), m[4], S::mul_add(S::splat(8.0), m[3], d12)).add(m[5]);
        [o0, o1, o2, o3]
    }
}

/// 1-D Bᵀ of F(2×2) on four vectors.
#[inline(always)]
pub(crate) unsafe fn bt4<S: Simd>(d: [S; 4]) -> [S; 4] {
    // SAFETY: the caller enabled S's features.
    unsafe { [d[0].sub(d[2]), d[1].add(d[2]), d[2].sub(d[1]), d[1].sub(d[3])] }
}

/// 1-D Aᵀ of F(2×2) on four vectors.
#[inline(always)]
pub(crate) unsafe fn at4<S: Simd>(m: [S; 4]) -> [S; 2] {
    // SAFETY: the caller enabled S's features.
    unsafe { [m[0].add(m[1]).add(m[2]), m[1].sub(m[2]).sub(m[3])] }
}

/// 1-D Bᵀ of F(3×3) on five vectors, which is also F(4, 2)'s (the even
/// inputs of F(4×4) at stride 2): points {0, 1, −1, 2, ∞}.
#[inline(always)]
pub(crate) unsafe fn bt5<S: Simd>(e: [S; 5]) -> [S; 5] {
    // SAFETY: the caller enabled S's features.
    unsafe {
        let two = S::splat(2.0);
        let t = e[3].sub(e[1]);
        // r0 = 2·(e0 − e2) + (e3 − e1)
        let r0 = S::mul_add(two, e[0].sub(e[2]), t);
        // r1 = e3 − e2 − 2·e1
        let r1 = S::neg_mul_add(two, e[1], e[3].sub(e[2]));
        // r2 = e3 − 3·e2 + 2·e1 = (e3 − e2) + 2·(e1 − e2)
        let r2 = S::mul_add(two, e[1].sub(e[2]), e[3].sub(e[2]));
        // r4 = e4 − e2 + 2·(e1 − e3)
        let r4 = S::neg_mul_add(two, t, e[4].sub(e[2]));
        [r0, r1, r2, t, r4]
    }
}

/// 1-D Aᵀ of F(3×3) on five vectors.
#[inline(always)]
pub(crate) unsafe fn at5<S: Simd>(m: [S; 5]) -> [S; 3] {
    // SAFETY: the caller enabled S's features.
    unsafe {
        let s12 = m[1].add(m[2]);
        let o0 = m[0].add(s12).add(m[3]);
        let o1 = S::mul_add(S::splat(2.0), m[3], m[1].sub(m[2]));
        let o2 = S::mul_add(S::splat(4.0), m[3], s12).add(m[4]);
        [o0, o1, o2]
    }
}

/// 1-D Bᵀ of F(2×2) at stride 2 on five vectors (odd inputs last).
#[inline(always)]
pub(crate) unsafe fn bt5s2<S: Simd>(d: [S; 5]) -> [S; 5] {
    // SAFETY: the caller enabled S's features.
    unsafe { [d[0].sub(d[2]), d[2], d[4].sub(d[2]), d[1], d[3]] }
}

/// 1-D Aᵀ of F(2×2) at stride 2 on five vectors.
#[inline(always)]
pub(crate) unsafe fn at5s2<S: Simd>(m: [S; 5]) -> [S; 2] {
    // SAFETY: the caller enabled S's features.
    unsafe { [m[0].add(m[1]).add(m[3]), m[1].add(m[2]).add(m[4])] }
}

/// 1-D Bᵀ of F(4×4) at stride 2 on nine vectors (odd inputs last).
#[inline(always)]
pub(crate) unsafe fn bt9s2<S: Simd>(d: [S; 9]) -> [S; 9] {
    // SAFETY: the caller enabled S's features.
    let [r0, r1, r2, r3, r4] = unsafe { bt5([d[0], d[2], d[4], d[6], d[8]]) };
    [r0, r1, r2, r3, r4, d[1], d[3], d[5], d[7]]
}

/// 1-D Aᵀ of F(4×4) at stride 2 on nine vectors.
#[inline(always)]
pub(crate) unsafe fn at9s2<S: Simd>(m: [S; 9]) -> [S; 4] {
    // SAFETY: the caller enabled S's features.
    unsafe {
        let s12 = m[1].add(m[2]);
        let d12 = m[1].sub(m[2]);
        let o0 = m[0].add(s12).add(m[3]).add(m[5]);
        let o1 = S::mul_add(S::splat(2.0), m[3], d12).add(m[6]);
        let o2 = S::mul_add(S::splat(4.0), m[3], s12).add(m[7]);
        let o3 = S::mul_add(S::splat(8.0), m[3], d12).add(m[4]).add(m[8]);
        [o0, o1, o2, o3]
    }
}

/// The 1-D transforms of one tile size: `A` = α, `M` = m.
pub(crate) trait Tile1d<const A: usize, const M: usize> {
    /// 1-D Bᵀ.
    unsafe fn bt<S: Simd>(d: [S; A]) -> [S; A];
    /// 1-D Aᵀ.
    unsafe fn at<S: Simd>(m: [S; A]) -> [S; M];
}

/// F(4×4, 3×3).
pub(crate) struct F4;
impl Tile1d<6, 4> for F4 {
    #[inline(always)]
    unsafe fn bt<S: Simd>(d: [S; 6]) -> [S; 6] {
        // SAFETY: the caller enabled S's features.
        unsafe { bt6(d) }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(m: [S; 6]) -> [S; 4] {
        // SAFETY: the caller enabled S's features.
        unsafe { at6(m) }
    }
}

/// F(2×2, 3×3).
pub(crate) struct F2;
impl Tile1d<4, 2> for F2 {
    #[inline(always)]
    unsafe fn bt<S: Simd>(d: [S; 4]) -> [S; 4] {
        // SAFETY: the caller enabled S's features.
        unsafe { bt4(d) }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(m: [S; 4]) -> [S; 2] {
        // SAFETY: the caller enabled S's features.
        unsafe { at4(m) }
    }
}

/// F(3×3, 3×3).
pub(crate) struct F3;
impl Tile1d<5, 3> for F3 {
    #[inline(always)]
    unsafe fn bt<S: Simd>(d: [S; 5]) -> [S; 5] {
        // SAFETY: the caller enabled S's features.
        unsafe { bt5(d) }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(m: [S; 5]) -> [S; 3] {
        // SAFETY: the caller enabled S's features.
        unsafe { at5(m) }
    }
}

/// F(2×2, 3×3) at stride 2.
pub(crate) struct F2S2;
impl Tile1d<5, 2> for F2S2 {
    #[inline(always)]
    unsafe fn bt<S: Simd>(d: [S; 5]) -> [S; 5] {
        // SAFETY: the caller enabled S's features.
        unsafe { bt5s2(d) }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(m: [S; 5]) -> [S; 2] {
        // SAFETY: the caller enabled S's features.
        unsafe { at5s2(m) }
    }
}

/// F(4×4, 3×3) at stride 2.
pub(crate) struct F4S2;
impl Tile1d<9, 4> for F4S2 {
    #[inline(always)]
    unsafe fn bt<S: Simd>(d: [S; 9]) -> [S; 9] {
        // SAFETY: the caller enabled S's features.
        unsafe { bt9s2(d) }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(m: [S; 9]) -> [S; 4] {
        // SAFETY: the caller enabled S's features.
        unsafe { at9s2(m) }
    }
}

/// Which rows / columns of an `A`-wide window starting at `o` lie inside `0..n`.
#[inline(always)]
fn inside<const A: usize>(o: isize, n: usize) -> [bool; A] {
    let mut v = [false; A];
    for (i, x) in v.iter_mut().enumerate() {
        let p = o + i as isize;
        *x = p >= 0 && (p as usize) < n;
    }
    v
}

/// Input transform of one tile, generic over the tile `T` (`A` = α). Writes `Bᵀ d B` for channels `0..round_up(c,
/// LANES)` to `dst + pos·pstride + ch`, `pos = row·A + col`.
///
/// # Safety
/// `t` must describe a readable NHWC image; `dst + pos·pstride + ch` must be
/// writable for every `pos < A·A` and `ch < round_up(t.c, LANES)`; `S`'s
/// target features must be enabled.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // q indexes a column of tmp and of dst
pub(crate) unsafe fn input_tile<S: Simd, T: Tile1d<A, M>, const A: usize, const M: usize>(
    t: &InTile,
    dst: *mut f32,
    pstride: usize,
) {
    // SAFETY: the caller's contract (above): `S`'s target features, and the pointers valid where the comments below say.
    unsafe {
        let rows = inside::<A>(t.y0, t.h);
        let cols = inside::<A>(t.x0, t.w);
        let mut c = 0;
        while c < t.c {
            let n = (t.c - c).min(S::LANES);
            // Pass 1: along each row (x), tmp[i][q] = Σ_j Bᵀ[q][j] d[i][j].
            let mut tmp = [[S::zero(); A]; A];
            for i in 0..A {
                if !rows[i] {
                    continue; // a padding row transforms to zero
                }
                let y = (t.y0 + i as isize) as usize;
                let mut d = [S::zero(); A];
                for j in 0..A {
                    if cols[j] {
                        let x = (t.x0 + j as isize) as usize;
                        // SAFETY: (y, x) is inside the image and c + n ≤ t.c.
                        let p = t.img.add((y * t.w + x) * t.c + c);
                        d[j] = if n == S::LANES { S::load(p) } else { S::load_partial(p, n) };
                    }
                }
                tmp[i] = T::bt(d);
            }
            // Pass 2: along each column (y), V[r][q] = Σ_i Bᵀ[r][i] tmp[i][q].
            for q in 0..A {
                let v = T::bt(std::array::from_fn(|i| tmp[i][q]));
                for (r, vr) in v.iter().enumerate() {
                    // SAFETY: the caller guarantees dst rows cover round_up(c, LANES).
                    vr.store(dst.add((r * A + q) * pstride + c));
                }
            }
            c += S::LANES;
        }
    }
}

/// Output transform of one tile with the fused epilogue, generic over the
/// tile `T` (`A` = α, `M` = m).
/// Reads `src + pos·pstride + ch` for `pos < A·A`, `ch < round_up(o.nch,
/// LANES)`, writes the `o.rows`×`o.cols` valid pixels, channels `0..o.nch`.
///
/// # Safety
/// Pointers in `o` must be valid for the pixels and channels described;
/// `src` readable as above; `S`'s target features enabled.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // q indexes a column of tmp and of out
pub(crate) unsafe fn output_tile<S: Simd, T: Tile1d<A, M>, const A: usize, const M: usize>(
    src: *const f32,
    pstride: usize,
    o: &OutTile,
) {
    // SAFETY: the caller's contract (above): `S`'s target features, and the pointers valid where the comments below say.
    unsafe {
        let mut c = 0;
        while c < o.nch {
            let n = (o.nch - c).min(S::LANES);
            // Pass 1: along each row, tmp[i][q] = Σ_j Aᵀ[q][j] m[i][j].
            let mut tmp = [[S::zero(); M]; A];
            for (i, ti) in tmp.iter_mut().enumerate() {
                let mut m = [S::zero(); A];
                for (j, mj) in m.iter_mut().enumerate() {
                    // SAFETY: src rows are padded to whole vectors (caller contract).
                    *mj = S::load(src.add((i * A + j) * pstride + c));
                }
                *ti = T::at(m);
            }
            let bias = if o.bias.is_null() {
                S::zero()
            } else if n == S::LANES {
                S::load(o.bias.add(c))
            } else {
                S::load_partial(o.bias.add(c), n)
            };
            // Pass 2: along each column, y[r][q] = Σ_i Aᵀ[r][i] tmp[i][q].
            for q in 0..o.cols {
                let y = T::at(std::array::from_fn(|i| tmp[i][q]));
                for (r, &yr) in y.iter().enumerate().take(o.rows) {
                    let off = r * o.row_stride + q * o.px_stride + c;
                    let mut v = yr;
                    if !o.bias.is_null() {
                        v = v.add(bias);
                    }
                    if !o.res.is_null() {
                        // SAFETY: the residual has the output's shape (checked by the caller).
                        let rv =
                            if n == S::LANES { S::load(o.res.add(off)) } else { S::load_partial(o.res.add(off), n) };
                        v = v.add(rv);
                    }
                    if o.relu {
                        v = v.relu();
                    }
                    // SAFETY: (r, q) is a valid pixel of this tile and c + n ≤ cout.
                    if n == S::LANES {
                        v.store(o.out.add(off));
                    } else {
                        v.store_partial(o.out.add(off), n);
                    }
                }
            }
            c += S::LANES;
        }
    }
}

/// F(4×4) input transform (see [`input_tile`]).
///
/// # Safety
/// As [`input_tile`] with `A` = 6.
#[inline(always)]
pub(crate) unsafe fn input_f4<S: Simd>(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { input_tile::<S, F4, 6, 4>(t, dst, pstride) }
}

/// F(4×4) output transform with epilogue (see [`output_tile`]).
///
/// # Safety
/// As [`output_tile`] with `A` = 6.
#[inline(always)]
pub(crate) unsafe fn output_f4<S: Simd>(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { output_tile::<S, F4, 6, 4>(src, pstride, o) }
}

/// F(2×2) input transform (see [`input_tile`]).
///
/// # Safety
/// As [`input_tile`] with `A` = 4.
#[inline(always)]
pub(crate) unsafe fn input_f2<S: Simd>(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { input_tile::<S, F2, 4, 2>(t, dst, pstride) }
}

/// F(2×2) output transform with epilogue (see [`output_tile`]).
///
/// # Safety
/// As [`output_tile`] with `A` = 4.
#[inline(always)]
pub(crate) unsafe fn output_f2<S: Simd>(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { output_tile::<S, F2, 4, 2>(src, pstride, o) }
}

/// F(3×3) input transform (see [`input_tile`]).
///
/// # Safety
/// As [`input_tile`] with `A` = 5.
#[inline(always)]
pub(crate) unsafe fn input_f3<S: Simd>(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { input_tile::<S, F3, 5, 3>(t, dst, pstride) }
}

/// F(3×3) output transform with epilogue (see [`output_tile`]).
///
/// # Safety
/// As [`output_tile`] with `A` = 5.
#[inline(always)]
pub(crate) unsafe fn output_f3<S: Simd>(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { output_tile::<S, F3, 5, 3>(src, pstride, o) }
}

/// F(2×2) stride-2 input transform (see [`input_tile`]).
///
/// # Safety
/// As [`input_tile`] with `A` = 5.
#[inline(always)]
pub(crate) unsafe fn input_f2s2<S: Simd>(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { input_tile::<S, F2S2, 5, 2>(t, dst, pstride) }
}

/// F(2×2) stride-2 output transform with epilogue (see [`output_tile`]).
///
/// # Safety
/// As [`output_tile`] with `A` = 5.
#[inline(always)]
pub(crate) unsafe fn output_f2s2<S: Simd>(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { output_tile::<S, F2S2, 5, 2>(src, pstride, o) }
}

/// F(4×4) stride-2 input transform (see [`input_tile`]).
///
/// # Safety
/// As [`input_tile`] with `A` = 9.
#[inline(always)]
pub(crate) unsafe fn input_f4s2<S: Simd>(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { input_tile::<S, F4S2, 9, 4>(t, dst, pstride) }
}

/// F(4×4) stride-2 output transform with epilogue (see [`output_tile`]).
///
/// # Safety
/// As [`output_tile`] with `A` = 9.
#[inline(always)]
pub(crate) unsafe fn output_f4s2<S: Simd>(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { output_tile::<S, F4S2, 9, 4>(src, pstride, o) }
}

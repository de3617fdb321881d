//! AVX-512F Winograd kernels (512-bit): tile transforms over 16 channels per
//! vector (masked tails); the products run on `gemm::avx512`'s 8×32 microkernel.
//!
//! Every `pub(crate)` function here requires AVX-512F; `mod.rs` reaches them
//! only after `Isa::Avx512.is_supported()`.

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::transforms::{self, InTile, OutTile, Simd};

/// Sixteen channels in a `__m512`.
#[derive(Clone, Copy)]
pub(crate) struct F32x16(__m512);

/// Lanes `0..n` set (`n < 16`).
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

// SAFETY (whole impl): every method is only called from the
// `#[target_feature(enable = "avx512f")]` functions below, so the
// intrinsics' features are enabled; memory contracts are the trait's.
impl Simd for F32x16 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats at p.
        F32x16(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed (no fault suppression
        // needed); n lanes are readable.
        F32x16(unsafe { _mm512_maskz_loadu_ps(mask(n), p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats at p.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: masked-off lanes are not written; n lanes are writable.
        unsafe { _mm512_mask_storeu_ps(p, mask(n), self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn neg_mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_fnmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // SAFETY: see impl comment.
        F32x16(unsafe { _mm512_max_ps(self.0, _mm512_setzero_ps()) })
    }
}

/// F(4×4, 3×3) input transform of one tile, 16 channels per vector.
///
/// # Safety
/// AVX-512F available; see `transforms::input_tile` (A = 6, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f4x4_input_transform_avx512(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4::<F32x16>(t, dst, pstride) }
}

/// F(4×4, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX-512F available; see `transforms::output_tile` (A = 6, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f4x4_output_transform_avx512(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4::<F32x16>(src, pstride, o) }
}

/// F(2×2, 3×3) input transform of one tile, 16 channels per vector.
///
/// # Safety
/// AVX-512F available; see `transforms::input_tile` (A = 4, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f2x2_input_transform_avx512(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2::<F32x16>(t, dst, pstride) }
}

/// F(2×2, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX-512F available; see `transforms::output_tile` (A = 4, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f2x2_output_transform_avx512(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2::<F32x16>(src, pstride, o) }
}

/// F(3×3, 3×3) input transform of one tile, 16 channels per vector.
///
/// # Safety
/// AVX-512F available; see `transforms::input_tile` (A = 5, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f3x3_input_transform_avx512(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f3::<F32x16>(t, dst, pstride) }
}

/// F(3×3, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX-512F available; see `transforms::output_tile` (A = 5, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f3x3_output_transform_avx512(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f3::<F32x16>(src, pstride, o) }
}

/// F(2×2, 3×3) stride-2 input transform of one tile, 16 channels per vector.
///
/// # Safety
/// AVX-512F available; see `transforms::input_tile` (A = 5, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f2x2s2_input_transform_avx512(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2s2::<F32x16>(t, dst, pstride) }
}

/// F(2×2, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX-512F available; see `transforms::output_tile` (A = 5, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f2x2s2_output_transform_avx512(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2s2::<F32x16>(src, pstride, o) }
}

/// F(4×4, 3×3) stride-2 input transform of one tile, 16 channels per vector.
///
/// # Safety
/// AVX-512F available; see `transforms::input_tile` (A = 9, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f4x4s2_input_transform_avx512(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4s2::<F32x16>(t, dst, pstride) }
}

/// F(4×4, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX-512F available; see `transforms::output_tile` (A = 9, LANES = 16).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_f4x4s2_output_transform_avx512(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4s2::<F32x16>(src, pstride, o) }
}

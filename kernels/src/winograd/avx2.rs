//! AVX2 + FMA Winograd kernels (256-bit): tile transforms over 8 channels
//! per vector (the products run on `gemm::avx2`'s 6×16 microkernel).
//!
//! Every `pub(crate)` function here requires AVX2 and FMA; `mod.rs` reaches
//! them only after `Isa::Avx2.is_supported()`.

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::transforms::{self, InTile, OutTile, Simd};

/// Eight channels in a `__m256`.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// `[0, 1, …, 7]`, to build lane masks.
const IOTA: [i32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// Lanes `0..n` set.
#[inline(always)]
unsafe fn mask(n: usize) -> __m256i {
    // SAFETY: AVX2 is enabled in every caller; IOTA is 8 readable i32.
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_loadu_si256(IOTA.as_ptr() as *const __m256i)) }
}

// SAFETY (whole impl): every method is only called from the
// `#[target_feature(enable = "avx2,fma")]` functions below, so the
// intrinsics' features are enabled; memory contracts are the trait's.
impl Simd for F32x8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats at p.
        F32x8(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed; n lanes are readable.
        F32x8(unsafe { _mm256_maskload_ps(p, mask(n)) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at p.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: masked-off lanes are not written; n lanes are writable.
        unsafe { _mm256_maskstore_ps(p, mask(n), self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn neg_mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_fnmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // SAFETY: see impl comment.
        F32x8(unsafe { _mm256_max_ps(self.0, _mm256_setzero_ps()) })
    }
}

/// F(4×4, 3×3) input transform of one tile, 8 channels per vector.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::input_tile` (A = 6, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f4x4_input_transform_avx2(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4::<F32x8>(t, dst, pstride) }
}

/// F(4×4, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::output_tile` (A = 6, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f4x4_output_transform_avx2(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4::<F32x8>(src, pstride, o) }
}

/// F(2×2, 3×3) input transform of one tile, 8 channels per vector.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::input_tile` (A = 4, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f2x2_input_transform_avx2(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2::<F32x8>(t, dst, pstride) }
}

/// F(2×2, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::output_tile` (A = 4, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f2x2_output_transform_avx2(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2::<F32x8>(src, pstride, o) }
}

/// F(3×3, 3×3) input transform of one tile, 8 channels per vector.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::input_tile` (A = 5, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f3x3_input_transform_avx2(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f3::<F32x8>(t, dst, pstride) }
}

/// F(3×3, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::output_tile` (A = 5, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f3x3_output_transform_avx2(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f3::<F32x8>(src, pstride, o) }
}

/// F(2×2, 3×3) stride-2 input transform of one tile, 8 channels per vector.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::input_tile` (A = 5, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f2x2s2_input_transform_avx2(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2s2::<F32x8>(t, dst, pstride) }
}

/// F(2×2, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::output_tile` (A = 5, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f2x2s2_output_transform_avx2(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2s2::<F32x8>(src, pstride, o) }
}

/// F(4×4, 3×3) stride-2 input transform of one tile, 8 channels per vector.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::input_tile` (A = 9, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f4x4s2_input_transform_avx2(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4s2::<F32x8>(t, dst, pstride) }
}

/// F(4×4, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// AVX2 and FMA available; see `transforms::output_tile` (A = 9, LANES = 8).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn winograd_f4x4s2_output_transform_avx2(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4s2::<F32x8>(src, pstride, o) }
}

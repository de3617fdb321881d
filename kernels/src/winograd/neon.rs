//! aarch64 NEON Winograd kernels (128-bit): tile transforms over 4 channels
//! per vector. The twin of `avx2.rs`: the same transforms (`transforms.rs`,
//! instantiated here with `float32x4_t`), the same fused epilogue; the
//! products over transform positions run on the GEMM's NEON microkernel.
//!
//! Every `pub(crate)` function here requires NEON; `mod.rs` reaches them only
//! after `Isa::Neon.is_supported()`.

use std::arch::aarch64::*;

use super::transforms::{self, InTile, OutTile, Simd};

/// Four channels in a `float32x4_t`.
#[derive(Clone, Copy)]
pub(crate) struct F32x4(float32x4_t);

// SAFETY (whole impl): every method is only called from the
// `#[target_feature(enable = "neon")]` functions below (NEON is also part of
// the aarch64 baseline), so the intrinsics' features are enabled; memory
// contracts are the trait's.
impl Simd for F32x4 {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see impl comment.
        F32x4(unsafe { vdupq_n_f32(0.0) })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see impl comment.
        F32x4(unsafe { vdupq_n_f32(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 4 readable floats at p (no alignment needed).
        F32x4(unsafe { vld1q_f32(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut buf = [0.0f32; 4];
        // SAFETY: the caller guarantees n (< 4) readable floats at p; buf holds 4.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n.min(4));
            F32x4(vld1q_f32(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 4 writable floats at p.
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut buf = [0.0f32; 4];
        // SAFETY: buf holds 4 floats; the caller guarantees n (< 4) writable floats at p.
        unsafe {
            vst1q_f32(buf.as_mut_ptr(), self.0);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n.min(4));
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x4(unsafe { vaddq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: see impl comment.
        F32x4(unsafe { vsubq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment. vfmaq_f32(c, a, b) = c + a·b, fused.
        F32x4(unsafe { vfmaq_f32(c.0, a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn neg_mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see impl comment. vfmsq_f32(c, a, b) = c − a·b, fused.
        F32x4(unsafe { vfmsq_f32(c.0, a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // SAFETY: see impl comment.
        F32x4(unsafe { vmaxq_f32(self.0, vdupq_n_f32(0.0)) })
    }
}

/// F(4×4, 3×3) input transform of one tile, 4 channels per vector.
///
/// # Safety
/// NEON available; see `transforms::input_tile` (A = 6, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f4x4_input_transform_neon(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4::<F32x4>(t, dst, pstride) }
}

/// F(4×4, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// NEON available; see `transforms::output_tile` (A = 6, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f4x4_output_transform_neon(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4::<F32x4>(src, pstride, o) }
}

/// F(2×2, 3×3) input transform of one tile, 4 channels per vector.
///
/// # Safety
/// NEON available; see `transforms::input_tile` (A = 4, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f2x2_input_transform_neon(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2::<F32x4>(t, dst, pstride) }
}

/// F(2×2, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// NEON available; see `transforms::output_tile` (A = 4, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f2x2_output_transform_neon(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2::<F32x4>(src, pstride, o) }
}

/// F(3×3, 3×3) input transform of one tile, 4 channels per vector.
///
/// # Safety
/// NEON available; see `transforms::input_tile` (A = 5, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f3x3_input_transform_neon(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f3::<F32x4>(t, dst, pstride) }
}

/// F(3×3, 3×3) output transform of one tile with the fused epilogue.
///
/// # Safety
/// NEON available; see `transforms::output_tile` (A = 5, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f3x3_output_transform_neon(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f3::<F32x4>(src, pstride, o) }
}

/// F(2×2, 3×3) stride-2 input transform of one tile, 4 channels per vector.
///
/// # Safety
/// NEON available; see `transforms::input_tile` (A = 5, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f2x2s2_input_transform_neon(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f2s2::<F32x4>(t, dst, pstride) }
}

/// F(2×2, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// NEON available; see `transforms::output_tile` (A = 5, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f2x2s2_output_transform_neon(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f2s2::<F32x4>(src, pstride, o) }
}

/// F(4×4, 3×3) stride-2 input transform of one tile, 4 channels per vector.
///
/// # Safety
/// NEON available; see `transforms::input_tile` (A = 9, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f4x4s2_input_transform_neon(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::input_f4s2::<F32x4>(t, dst, pstride) }
}

/// F(4×4, 3×3) stride-2 output transform of one tile with the fused epilogue.
///
/// # Safety
/// NEON available; see `transforms::output_tile` (A = 9, LANES = 4).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_f4x4s2_output_transform_neon(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract; features enabled on this fn.
    unsafe { transforms::output_f4s2::<F32x4>(src, pstride, o) }
}

//! Portable Winograd kernels: the scalar twin of `avx2.rs` / `avx512.rs`,
//! and the fallback on CPUs without a SIMD path (aarch64 until `neon.rs`).
//!
//! Written over 8-float arrays so that the compiler can auto-vectorise them
//! with whatever baseline SIMD the target has; arithmetic is plain `a*b + c`
//! (no fused multiply-add: `f32::mul_add` is a libm call on targets without
//! FMA).

use super::transforms::{self, InTile, OutTile, Simd};

/// Eight channels as a plain array.
#[derive(Clone, Copy)]
pub(crate) struct F32x8([f32; 8]);

impl F32x8 {
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = [0.0; 8];
        for (i, v) in r.iter_mut().enumerate() {
            *v = f(self.0[i], o.0[i]);
        }
        F32x8(r)
    }
}

impl Simd for F32x8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        F32x8([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        F32x8([v; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats at p.
        F32x8(unsafe { std::ptr::read_unaligned(p as *const [f32; 8]) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut r = [0.0; 8];
        for (i, v) in r.iter_mut().enumerate().take(n) {
            // SAFETY: the caller guarantees n readable floats at p.
            *v = unsafe { *p.add(i) };
        }
        F32x8(r)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at p.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        for (i, &v) in self.0.iter().enumerate().take(n) {
            // SAFETY: the caller guarantees n writable floats at p.
            unsafe { *p.add(i) = v };
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        self.map2(o, |a, b| a + b)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        self.map2(o, |a, b| a - b)
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: plain f32 arithmetic on lanes (the trait's contract holds trivially).
        unsafe { a.map2(b, |x, y| x * y).add(c) }
    }
    #[inline(always)]
    unsafe fn neg_mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: plain f32 arithmetic on lanes (the trait's contract holds trivially).
        unsafe { c.sub(a.map2(b, |x, y| x * y)) }
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        self.map2(self, |a, _| a.max(0.0))
    }
}

/// F(4×4, 3×3) input transform of one tile, portable.
///
/// # Safety
/// See `transforms::input_tile` (A = 6, LANES = 8).
pub(crate) unsafe fn winograd_f4x4_input_transform_scalar(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::input_f4::<F32x8>(t, dst, pstride) }
}

/// F(4×4, 3×3) output transform of one tile with the fused epilogue, portable.
///
/// # Safety
/// See `transforms::output_tile` (A = 6, LANES = 8).
pub(crate) unsafe fn winograd_f4x4_output_transform_scalar(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::output_f4::<F32x8>(src, pstride, o) }
}

/// F(2×2, 3×3) input transform of one tile, portable.
///
/// # Safety
/// See `transforms::input_tile` (A = 4, LANES = 8).
pub(crate) unsafe fn winograd_f2x2_input_transform_scalar(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::input_f2::<F32x8>(t, dst, pstride) }
}

/// F(2×2, 3×3) output transform of one tile with the fused epilogue, portable.
///
/// # Safety
/// See `transforms::output_tile` (A = 4, LANES = 8).
pub(crate) unsafe fn winograd_f2x2_output_transform_scalar(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::output_f2::<F32x8>(src, pstride, o) }
}

/// F(3×3, 3×3) input transform of one tile, portable.
///
/// # Safety
/// See `transforms::input_tile` (A = 5, LANES = 8).
pub(crate) unsafe fn winograd_f3x3_input_transform_scalar(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::input_f3::<F32x8>(t, dst, pstride) }
}

/// F(3×3, 3×3) output transform of one tile with the fused epilogue, portable.
///
/// # Safety
/// See `transforms::output_tile` (A = 5, LANES = 8).
pub(crate) unsafe fn winograd_f3x3_output_transform_scalar(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::output_f3::<F32x8>(src, pstride, o) }
}

/// F(2×2, 3×3) stride-2 input transform of one tile, portable.
///
/// # Safety
/// See `transforms::input_tile` (A = 5, LANES = 8).
pub(crate) unsafe fn winograd_f2x2s2_input_transform_scalar(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::input_f2s2::<F32x8>(t, dst, pstride) }
}

/// F(2×2, 3×3) stride-2 output transform of one tile with the fused epilogue, portable.
///
/// # Safety
/// See `transforms::output_tile` (A = 5, LANES = 8).
pub(crate) unsafe fn winograd_f2x2s2_output_transform_scalar(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::output_f2s2::<F32x8>(src, pstride, o) }
}

/// F(4×4, 3×3) stride-2 input transform of one tile, portable.
///
/// # Safety
/// See `transforms::input_tile` (A = 9, LANES = 8).
pub(crate) unsafe fn winograd_f4x4s2_input_transform_scalar(t: &InTile, dst: *mut f32, pstride: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::input_f4s2::<F32x8>(t, dst, pstride) }
}

/// F(4×4, 3×3) stride-2 output transform of one tile with the fused epilogue, portable.
///
/// # Safety
/// See `transforms::output_tile` (A = 9, LANES = 8).
pub(crate) unsafe fn winograd_f4x4s2_output_transform_scalar(src: *const f32, pstride: usize, o: &OutTile) {
    // SAFETY: forwarded caller contract.
    unsafe { transforms::output_f4s2::<F32x8>(src, pstride, o) }
}

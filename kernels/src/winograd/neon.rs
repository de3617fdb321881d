//! aarch64 NEON Winograd kernels (128-bit): tile transforms over 4 channels
//! per vector and a 6×16 GEMM microkernel. The twin of `avx2.rs`: the same
//! transforms (`transforms.rs`, instantiated here with `float32x4_t`), the same
//! packed weights (16-column panels of U), the same fused epilogue.
//!
//! Every `pub(crate)` function here requires NEON; `mod.rs` reaches them only
//! after `Isa::Neon.is_supported()`.

use std::arch::aarch64::*;

use super::transforms::{self, InTile, OutTile, Simd};
use super::PANEL;

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

/// Rows per GEMM microkernel call (divides the block unit, 12).
pub(crate) const MR: usize = 6;

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

/// `R`×16 microkernel: `C[R × 16] = A[R × k] · B[k × 16]`, 4·R accumulators
/// (24 of the 32 vector registers at R = 6, plus 4 for the B row and one for
/// the broadcast A value).
///
/// # Safety
/// NEON; `a` readable for R rows of k (stride lda), `b` for k·16 floats, `c`
/// writable for R rows of 16 (stride ldc).
#[inline(always)]
unsafe fn kernel<const R: usize>(k: usize, a: *const f32, lda: usize, b: *const f32, c: *mut f32, ldc: usize) {
    // SAFETY: the caller's contract covers every pointer offset below; NEON is
    // enabled on the (only) caller, `winograd_gemm_neon`.
    unsafe {
        let z = vdupq_n_f32(0.0);
        let mut acc = [[z; 4]; R];
        let mut ap = [a; R];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = a.add(r * lda);
        }
        let mut bp = b;
        for _ in 0..k {
            let b0 = vld1q_f32(bp);
            let b1 = vld1q_f32(bp.add(4));
            let b2 = vld1q_f32(bp.add(8));
            let b3 = vld1q_f32(bp.add(12));
            for r in 0..R {
                let av = vld1q_dup_f32(ap[r]);
                acc[r][0] = vfmaq_f32(acc[r][0], av, b0);
                acc[r][1] = vfmaq_f32(acc[r][1], av, b1);
                acc[r][2] = vfmaq_f32(acc[r][2], av, b2);
                acc[r][3] = vfmaq_f32(acc[r][3], av, b3);
                ap[r] = ap[r].add(1);
            }
            bp = bp.add(PANEL);
        }
        for (r, accr) in acc.iter().enumerate() {
            let cp = c.add(r * ldc);
            vst1q_f32(cp, accr[0]);
            vst1q_f32(cp.add(4), accr[1]);
            vst1q_f32(cp.add(8), accr[2]);
            vst1q_f32(cp.add(12), accr[3]);
        }
    }
}

/// `C[rows × 16·npanels] = A[rows × k] · B` for one transform position
/// (layouts as `scalar::winograd_gemm_scalar`), 6×16 register blocks.
///
/// # Safety
/// NEON available; bounds as `scalar::winograd_gemm_scalar`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn winograd_gemm_neon(
    rows: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    npanels: usize,
    c: *mut f32,
    ldc: usize,
) {
    for panel in 0..npanels {
        // SAFETY: every offset stays within the caller's bounds: panel <
        // npanels, r0 + rows-in-block ≤ rows.
        unsafe {
            let bp = b.add(panel * k * PANEL);
            let cpan = c.add(panel * PANEL);
            let mut r0 = 0;
            while r0 < rows {
                let ar = a.add(r0 * lda);
                let cr = cpan.add(r0 * ldc);
                match rows - r0 {
                    1 => kernel::<1>(k, ar, lda, bp, cr, ldc),
                    2 => kernel::<2>(k, ar, lda, bp, cr, ldc),
                    3 => kernel::<3>(k, ar, lda, bp, cr, ldc),
                    4 => kernel::<4>(k, ar, lda, bp, cr, ldc),
                    5 => kernel::<5>(k, ar, lda, bp, cr, ldc),
                    _ => kernel::<MR>(k, ar, lda, bp, cr, ldc),
                }
                r0 += MR;
            }
        }
    }
}

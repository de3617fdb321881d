//! AVX-512F Winograd kernels (512-bit): tile transforms over 16 channels per
//! vector (masked tails) and a 12×32 GEMM microkernel (12×16 for an odd
//! last panel).
//!
//! Every `pub(crate)` function here requires AVX-512F; `mod.rs` reaches them
//! only after `Isa::Avx512.is_supported()`.

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::transforms::{self, InTile, OutTile, Simd};
use super::PANEL;

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

/// Rows per GEMM microkernel call.
pub(crate) const MR: usize = 12;

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

/// `R`×(16·`P`) microkernel over `P` ∈ {1, 2} consecutive panels:
/// `C[R × 16P] = A[R × k] · B`, R·P accumulators (24 for 12×32).
///
/// # Safety
/// AVX-512F; `a` readable for R rows of k (stride lda), `b` for P panels of
/// k·16 floats, `c` writable for R rows of 16·P (stride ldc).
#[inline(always)]
unsafe fn kernel<const R: usize, const P: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: the caller's contract covers every pointer offset below; the
    // features are enabled on the (only) caller, `winograd_gemm_avx512`.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        let mut ap = [a; R];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = a.add(r * lda);
        }
        let panel_stride = k * PANEL;
        let mut bp = b;
        for _ in 0..k {
            let mut bv = [_mm512_setzero_ps(); P];
            for (j, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(bp.add(j * panel_stride));
            }
            for r in 0..R {
                let av = _mm512_set1_ps(*ap[r]);
                for j in 0..P {
                    acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
                }
                ap[r] = ap[r].add(1);
            }
            bp = bp.add(PANEL);
        }
        for (r, accr) in acc.iter().enumerate() {
            let cp = c.add(r * ldc);
            for (j, v) in accr.iter().enumerate() {
                _mm512_storeu_ps(cp.add(j * PANEL), *v);
            }
        }
    }
}

/// Runs the R-row kernel over panel pairs, then the odd last panel.
///
/// # Safety
/// As [`kernel`], for `npanels` panels.
#[inline(always)]
unsafe fn row_block<const R: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    npanels: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: panel + 2 ≤ npanels (pairs) or panel + 1 = npanels (tail).
    unsafe {
        let mut panel = 0;
        while panel + 2 <= npanels {
            kernel::<R, 2>(k, a, lda, b.add(panel * k * PANEL), c.add(panel * PANEL), ldc);
            panel += 2;
        }
        if panel < npanels {
            kernel::<R, 1>(k, a, lda, b.add(panel * k * PANEL), c.add(panel * PANEL), ldc);
        }
    }
}

/// `C[rows × 16·npanels] = A[rows × k] · B` for one transform position
/// (layouts as `scalar::winograd_gemm_scalar`), 12×32 register blocks.
///
/// # Safety
/// AVX-512F available; bounds as `scalar::winograd_gemm_scalar`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn winograd_gemm_avx512(
    rows: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    npanels: usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut r0 = 0;
    while r0 < rows {
        // SAFETY: r0 + rows-in-block ≤ rows; panels within npanels.
        unsafe {
            let ar = a.add(r0 * lda);
            let cr = c.add(r0 * ldc);
            match rows - r0 {
                1 => row_block::<1>(k, ar, lda, b, npanels, cr, ldc),
                2 => row_block::<2>(k, ar, lda, b, npanels, cr, ldc),
                3 => row_block::<3>(k, ar, lda, b, npanels, cr, ldc),
                4 => row_block::<4>(k, ar, lda, b, npanels, cr, ldc),
                5 => row_block::<5>(k, ar, lda, b, npanels, cr, ldc),
                6 => row_block::<6>(k, ar, lda, b, npanels, cr, ldc),
                7 => row_block::<7>(k, ar, lda, b, npanels, cr, ldc),
                8 => row_block::<8>(k, ar, lda, b, npanels, cr, ldc),
                9 => row_block::<9>(k, ar, lda, b, npanels, cr, ldc),
                10 => row_block::<10>(k, ar, lda, b, npanels, cr, ldc),
                11 => row_block::<11>(k, ar, lda, b, npanels, cr, ldc),
                _ => row_block::<MR>(k, ar, lda, b, npanels, cr, ldc),
            }
        }
        r0 += MR;
    }
}

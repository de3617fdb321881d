//! AVX-512F vector loops for the pools: the AVX2 file's loops
//! ([`super::avx2`]) over 16 lanes, with masked loads and stores for the
//! last channels instead of a scalar tail. Each lane does the operations of
//! the scalar path in its order (max from −∞ pixel by pixel), so the
//! results are the AVX2 path's and the reference's bits on finite inputs.
//!
//! Why: the stem's fused max-pool (`gemm::conv_implicit_maxpool`) pools
//! each pair of convolution rows from its ring while they are in L1/L2, and
//! a 3×3 window of 64 channels is 72 ymm loads or 36 zmm ones. Measured
//! (2-vCPU Xeon with full-width AVX-512, 2026-12-06; v1.5, same process,
//! this file and the AVX2 loops switched inference by inference, 40 pairs,
//! both orders): the stem 0.91–0.94× its time at one thread (1.45–1.53
//! against 1.59–1.63 ms), 0.91–0.93× at two.
//!
//! The classifier stays on the AVX2 loop on AVX-512 CPUs: ImageNet's weight
//! rows are 4000 bytes apart, so every other row starts in the middle of a
//! cache line and each 64-byte load of it spans two lines; a zmm version
//! measured 1.014–1.023× the AVX2 loop's time (same A/B, 0.51 ms at one
//! thread), where 32-byte loads never split.

use std::arch::x86_64::*;

use crate::shape::PoolShape;

/// Lanes of the last `n < 16` floats of a vector.
fn tail_mask(n: usize) -> __mmask16 {
    debug_assert!(n < 16);
    ((1u32 << n) - 1) as __mmask16
}

/// One output row of the max-pool `s`, as [`super::avx2::max_pool_row`]
/// (same contract: `rows` are the window's input rows, each `in_w · c`
/// floats, top to bottom), 64 channels at a time in four zmm registers.
pub(super) fn max_pool_row(s: &PoolShape, input: &[f32], rows: &[usize], out: &mut [f32]) {
    super::check_row_kernel(s, input, rows, out);
    // SAFETY: dispatch only reaches here when AVX-512F is supported; every
    // row holds in_w pixels of c floats (checked above), and each window's
    // columns lie in 0..in_w (see the loop).
    unsafe { max_pool_row_avx512(s, input, rows, out) }
}

#[target_feature(enable = "avx512f")]
unsafe fn max_pool_row_avx512(s: &PoolShape, input: &[f32], rows: &[usize], out: &mut [f32]) {
    let (c, p, o) = (s.c, input.as_ptr(), out.as_mut_ptr());
    let neg_inf = _mm512_set1_ps(f32::NEG_INFINITY);
    for ox in 0..s.out_w() {
        let (xlo, xhi) = super::window(s, ox, s.in_w);
        let o = o.wrapping_add(ox * c);
        let mut i = 0;
        // SAFETY (all three loops): lanes i.. of a pixel are read and
        // written only below c (whole vectors while i + 16·V <= c, masked
        // lanes after); pixel (row b, column x) holds c floats at b + x·c
        // with x < in_w, inside input (checked by the caller); out holds
        // out_w · c floats.
        unsafe {
            while i + 64 <= c {
                let mut acc = [neg_inf; 4];
                for &b in rows {
                    for x in xlo..xhi {
                        let px = p.add(b + x * c + i);
                        for (v, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_max_ps(*a, _mm512_loadu_ps(px.add(16 * v)));
                        }
                    }
                }
                for (v, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(o.add(i + 16 * v), *a);
                }
                i += 64;
            }
            while i < c {
                let mask = if i + 16 <= c { !0 } else { tail_mask(c - i) };
                let mut acc = neg_inf;
                for &b in rows {
                    for x in xlo..xhi {
                        acc = _mm512_max_ps(acc, _mm512_mask_loadu_ps(neg_inf, mask, p.add(b + x * c + i)));
                    }
                }
                _mm512_mask_storeu_ps(o.add(i), mask, acc);
                i += 16;
            }
        }
    }
}

/// `acc[i] = max(acc[i], x[i])`. Caller guarantees AVX-512F.
pub(super) fn max_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX-512F is supported; lengths are equal.
    unsafe { zip_avx512::<true>(acc, x) }
}

/// `acc[i] += x[i]`. Caller guarantees AVX-512F.
pub(super) fn add_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: as in `max_into`.
    unsafe { zip_avx512::<false>(acc, x) }
}

/// `acc[i] = max(acc[i], x[i])` (`MAX`) or `acc[i] + x[i]` over
/// equal-length slices, 16 lanes at a time.
#[target_feature(enable = "avx512f")]
unsafe fn zip_avx512<const MAX: bool>(acc: &mut [f32], x: &[f32]) {
    let (a, b, n) = (acc.as_mut_ptr(), x.as_ptr(), acc.len());
    let mut i = 0;
    while i < n {
        let mask = if i + 16 <= n { !0 } else { tail_mask(n - i) };
        // SAFETY: the masked lanes are below n, the length of both slices.
        unsafe {
            let (p, q) = (_mm512_maskz_loadu_ps(mask, a.add(i)), _mm512_maskz_loadu_ps(mask, b.add(i)));
            let v = if MAX { _mm512_max_ps(p, q) } else { _mm512_add_ps(p, q) };
            _mm512_mask_storeu_ps(a.add(i), mask, v);
        }
        i += 16;
    }
}

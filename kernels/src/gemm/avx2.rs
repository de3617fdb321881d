//! AVX2+FMA microkernel: 6×16.
//!
//! Twelve ymm accumulators (6 rows × 2 vectors of 8), two B vectors and one
//! broadcast = 15 of the 16 ymm registers. Per `k`: 2 loads of B, 6 broadcasts
//! of A, 12 FMAs; with two FMA pipes of latency 4 (Haswell..Zen 4) at least 8
//! independent accumulators are needed, and 12 (or 10 for a 5-row strip) keep
//! both pipes busy while loads stay well under the 2–3 per cycle the core
//! sustains. A is read through 6 row pointers (each row contiguous over K), so
//! a 1×1 convolution's input is used in place, strided or not.
//!
//! Why intrinsics, where the AVX-512 12×32 kernel has its k loop in
//! assembly: here the tile fits the register file, and LLVM keeps the 12
//! sums in registers (`scripts/ci-codegen.sh` checks every instance). The
//! same k loop in `asm!` (one block per 4 k steps, the broadcasts alternating
//! between two registers, the prefetches in Rust between blocks) was timed
//! on a 2-vCPU Zen 3 (stop 42): alternated inference by inference with this
//! kernel in one process, 60 pairs per run, whole inference 0.988–1.009×
//! (means of 4 runs in calm minutes; a null A/B 0.984–1.000); one 1×1
//! convolution alone (six shapes, alternated call by call) 0.94–1.04×, the
//! `microkernel_probe` −3 to +6 points of the FMA peak. Not kept.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::loops::{Microkernel, Tile};
use super::pack::im2col_block;
use crate::shape::ConvShape;

/// AVX2+FMA 6×16 microkernel.
pub(crate) struct Avx2;

impl Microkernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;
    const KC: usize = 256;
    // K = 512 (the 1×1 layers with 512 input channels) as one block rather
    // than two of 256: C is written once instead of stored and read back,
    // which at N = 2048 (stage 5's `_3`, 400 KB of C behind 1 MB of B
    // streamed per block) was a round trip through L3. Zen 3, same process,
    // alternated inference by inference (60 pairs each), two blocks against
    // one: stage 5's `_3` 1.08–1.17× the time, stage 3's `_1` and
    // `conv4_block1_0` 1.02–1.03×, the whole inference 1.006 (v1.5) and
    // 1.012 (v1) at one thread, 1.007 (v1.5) at two; batch 8 (2 threads,
    // 24 rounds) stage 5's `_3` 1.09–1.14×. Winograd's products (gemm_rows,
    // `KC_ROWS`) keep two blocks: stage 5's F(2×2) measured 0.98–1.00×.
    const KC_WHOLE: usize = 512;
    const MC: usize = 144;
    const NC: usize = 1024;

    // Reads the stem's rows in runs from a padded input (`ASource::Padded`).
    const SEGMENTS: bool = true;

    // One call per tile, as for AVX-512 (see there).
    #[inline(always)]
    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded contract of `Microkernel::tile` (the CPU has
        // AVX2+FMA; mr checked here).
        unsafe {
            if t.segs > 1 {
                by_mr6!(kernel, t, true)
            } else {
                by_mr6!(kernel, t, false)
            }
        }
    }

    unsafe fn im2col(s: &ConvShape, input: &[f32], m0: usize, rows: usize, k0: usize, kc: usize, dst: &mut [f32]) {
        // SAFETY: forwarded contract (the CPU has AVX2+FMA).
        unsafe { im2col_avx2(s, input, m0, rows, k0, kc, dst) }
    }
}

/// The im2col gather compiled with AVX2 (32-byte block moves).
#[target_feature(enable = "avx2,fma")]
fn im2col_avx2(s: &ConvShape, input: &[f32], m0: usize, rows: usize, k0: usize, kc: usize, dst: &mut [f32]) {
    im2col_block(s, input, m0, rows, k0, kc, dst)
}

/// Lane masks for the first `nr` of 16 columns (all-ones lanes are active).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn masks(nr: usize) -> (__m256i, __m256i) {
    let n = _mm256_set1_epi32(nr as i32);
    let lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    (_mm256_cmpgt_epi32(n, lo), _mm256_cmpgt_epi32(n, hi))
}

/// Loads 16 floats at `p` when `full`, else the first `nr` (zero elsewhere,
/// nothing read past; the masks are built only then).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load16(p: *const f32, full: bool, nr: usize) -> (__m256, __m256) {
    // SAFETY: the caller guarantees `p` is valid for 16 floats when `full`, for
    // the first `nr` otherwise (masked-off lanes are not accessed).
    unsafe {
        if full {
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        } else {
            let m = masks(nr);
            (_mm256_maskload_ps(p, m.0), _mm256_maskload_ps(p.add(8), m.1))
        }
    }
}

/// `SEG`: A row `r` is `t.segs` runs of `kc / segs` floats, run `s` at
/// `a[r] + s·seg_stride` (B's rows continue across runs); otherwise one run.
///
/// Every choice outside the k loop (start from C or zero, a residual or
/// none, bias, ReLU, a full or partial tile) is made once per tile, not per
/// row, and the masks are built only for a partial tile: at K = 64 a tile
/// has only ~384 cycles of FMAs, and the k loop itself runs at the FMA peak,
/// so what surrounds it decides. Measured on a 2-vCPU Zen 3 (stop 47)
/// against the version that tested bias, residual and ReLU row by row and
/// built the masks every tile: `microkernel_probe` in L1, alternated call by
/// call, 89–91 → 93–95 % of the FMA peak at kc = 64, +1.5–2.5 points at 128,
/// +0.5–1.5 at 256; alternated inference by inference (v1 one thread, v1.5
/// two threads, 100 rounds each), stage 2's K = 64 layers 4–6 % faster, the
/// stem and stages 2–3's Winograd products 2–5 %, the inference 1.0–1.1 %.
///
/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR` and AVX2+FMA available.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const MR: usize, const SEG: bool>(t: &Tile) {
    let full = t.nr == 16;
    let has_res = t.has_residual(MR);
    let mut c0 = [_mm256_setzero_ps(); MR];
    let mut c1 = [_mm256_setzero_ps(); MR];
    if t.accumulate {
        for r in 0..MR {
            // SAFETY: C row r holds nr valid floats at c + r·ldc.
            (c0[r], c1[r]) = unsafe { load16(t.c.add(r * t.ldc), full, t.nr) };
        }
    } else {
        // Start the C tile's cache-line fills now, so the stores after the
        // k loop do not stall on read-for-ownership misses (a tile that
        // starts from C has just loaded them).
        for r in 0..MR {
            let c = t.c.wrapping_add(r * t.ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(c);
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(60));
        }
    }
    if has_res {
        for r in 0..MR {
            let p = t.res[r] as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(60));
        }
    }
    // Spread L2 prefetch: pf_lines lines over the kc/4 groups, line
    // (g·pf_lines)/groups in group g, 16.16 fixed point (repeats are harmless).
    let spread = !t.pf.is_null() && t.pf_lines > 0 && t.kc >= 4;
    let pf = t.pf as *const i8;
    let step_fx = if spread { t.pf_step } else { 0 };
    let mut line_fx = 0usize;
    // Runs of each A row (SEG: one per kernel row of a padded input).
    let (segs, run) = if SEG { (t.segs, t.kc / t.segs) } else { (1, t.kc) };
    for s in 0..segs {
        let k0 = s * run;
        let a: [*const f32; MR] = std::array::from_fn(|r| t.a[r].wrapping_add(s * t.seg_stride));
        let b = t.b.wrapping_add(16 * k0);
        // One k step: 2 B loads, MR broadcasts, 2·MR FMAs.
        macro_rules! step {
            ($k:expr) => {{
                let k = $k;
                // SAFETY: k < run: the B micro-panel holds kc rows of 16 floats
                // (k0 + k of them before this one); A row r holds run floats at a[r].
                unsafe {
                    let b0 = _mm256_loadu_ps(b.add(16 * k));
                    let b1 = _mm256_loadu_ps(b.add(16 * k + 8));
                    for r in 0..MR {
                        let av = _mm256_broadcast_ss(&*a[r].add(k));
                        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
                    }
                }
            }};
        }
        // Unrolled ×4 (measurably fewer loop-overhead stalls on Zen 3), then the rest.
        let run4 = run & !3;
        let mut k = 0;
        if !t.pf_l1.is_null() {
            // Also pull the next micro-panel into L1, one line per k step.
            // Hints only: never fault.
            let l1 = (t.pf_l1 as *const i8).wrapping_add(64 * k0);
            while k < run4 {
                _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64 * (line_fx >> 16)));
                line_fx += step_fx;
                _mm_prefetch::<_MM_HINT_T0>(l1.wrapping_add(64 * k));
                _mm_prefetch::<_MM_HINT_T0>(l1.wrapping_add(64 * k + 64));
                step!(k);
                step!(k + 1);
                _mm_prefetch::<_MM_HINT_T0>(l1.wrapping_add(64 * k + 128));
                _mm_prefetch::<_MM_HINT_T0>(l1.wrapping_add(64 * k + 192));
                step!(k + 2);
                step!(k + 3);
                k += 4;
            }
        } else if spread {
            while k < run4 {
                // A hint only: never faults.
                _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64 * (line_fx >> 16)));
                line_fx += step_fx;
                step!(k);
                step!(k + 1);
                step!(k + 2);
                step!(k + 3);
                k += 4;
            }
        } else {
            while k < run4 {
                step!(k);
                step!(k + 1);
                step!(k + 2);
                step!(k + 3);
                k += 4;
            }
        }
        for k in run4..run {
            step!(k);
        }
    }
    if t.last {
        if !t.bias.is_null() {
            // SAFETY: the bias has nr valid floats at t.bias.
            let (b0, b1) = unsafe { load16(t.bias, full, t.nr) };
            for r in 0..MR {
                c0[r] = _mm256_add_ps(c0[r], b0);
                c1[r] = _mm256_add_ps(c1[r], b1);
            }
        }
        if has_res {
            for r in 0..MR {
                // SAFETY: residual row r holds nr valid floats at res[r].
                let (r0, r1) = unsafe { load16(t.res[r], full, t.nr) };
                c0[r] = _mm256_add_ps(c0[r], r0);
                c1[r] = _mm256_add_ps(c1[r], r1);
            }
        }
        if t.relu {
            let zero = _mm256_setzero_ps();
            for r in 0..MR {
                c0[r] = _mm256_max_ps(c0[r], zero);
                c1[r] = _mm256_max_ps(c1[r], zero);
            }
        }
    }
    if full {
        for r in 0..MR {
            // SAFETY: this task owns C row r, 16 columns at c + r·ldc.
            unsafe {
                let p = t.c.add(r * t.ldc);
                _mm256_storeu_ps(p, c0[r]);
                _mm256_storeu_ps(p.add(8), c1[r]);
            }
        }
    } else {
        let m = masks(t.nr);
        for r in 0..MR {
            // SAFETY: this task owns C row r, nr columns at c + r·ldc
            // (masked-off lanes are not written).
            unsafe {
                let p = t.c.add(r * t.ldc);
                _mm256_maskstore_ps(p, m.0, c0[r]);
                _mm256_maskstore_ps(p.add(8), m.1, c1[r]);
            }
        }
    }
}

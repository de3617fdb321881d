//! AVX-512F microkernel: 8×32 (and 8×16 for a last odd 16-column panel).
//!
//! Why 8×32: 16 zmm accumulators (8 rows × 2 vectors of 16) ≥ the 8 that two
//! FMA pipes of latency 4 need, plus 2 B vectors and a broadcast: 19 of 32
//! zmm. Per `k`: 2 B loads + 8 broadcasts for 16 FMAs, within two loads per
//! cycle. The 32 columns are two adjacent ISA-neutral 16-column B panels, so
//! the packed weights are shared with AVX2/NEON. A is read through row
//! pointers (like AVX2), so the 8 row pointers + 2 panel pointers + the loop
//! counter fit the 15 usable general registers without spills — which a 12- or
//! 14-row tile (the classic packed-A choice) would not. Partial columns use
//! AVX-512 masked loads and stores (fault-suppressing), no stack detour.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::loops::{Microkernel, Tile};

/// AVX-512F 8×32 microkernel.
pub(crate) struct Avx512;

impl Microkernel for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;
    // B micro-panel 192 × 32 floats = 24 KiB: inside a 32 KiB (Skylake-SP,
    // Zen 4) or 48 KiB (Ice Lake and later) L1d, with room for the A strips.
    const KC: usize = 192;
    const MC: usize = 192;
    const NC: usize = 1024;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded contract of `Microkernel::tile` (the CPU has
        // AVX-512F; mr checked here; the second panel is read only when nr > 16).
        unsafe {
            if t.nr > 16 {
                match t.mr {
                    8 => kernel::<8, 2>(t),
                    7 => kernel::<7, 2>(t),
                    6 => kernel::<6, 2>(t),
                    5 => kernel::<5, 2>(t),
                    4 => kernel::<4, 2>(t),
                    3 => kernel::<3, 2>(t),
                    2 => kernel::<2, 2>(t),
                    1 => kernel::<1, 2>(t),
                    _ => unreachable!("avx512 microkernel: mr {} out of 1..=8", t.mr),
                }
            } else {
                match t.mr {
                    8 => kernel::<8, 1>(t),
                    7 => kernel::<7, 1>(t),
                    6 => kernel::<6, 1>(t),
                    5 => kernel::<5, 1>(t),
                    4 => kernel::<4, 1>(t),
                    3 => kernel::<3, 1>(t),
                    2 => kernel::<2, 1>(t),
                    1 => kernel::<1, 1>(t),
                    _ => unreachable!("avx512 microkernel: mr {} out of 1..=8", t.mr),
                }
            }
        }
    }
}

/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR`, `NV == 2` exactly when
/// `t.nr > 16`, and AVX-512F available.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const MR: usize, const NV: usize>(t: &Tile) {
    // Column masks of the two 16-lane halves.
    let mask: [__mmask16; NV] = std::array::from_fn(|v| {
        let n = t.nr.saturating_sub(16 * v).min(16);
        ((1u32 << n) - 1) as __mmask16
    });
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if t.accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                // SAFETY: C row r has nr valid floats at c + r·ldc; masked-off lanes are not read.
                *x = unsafe { _mm512_maskz_loadu_ps(mask[v], t.c.add(r * t.ldc + 16 * v)) };
            }
        }
    }
    let a: [*const f32; MR] = std::array::from_fn(|r| t.a[r]);
    let bp: [*const f32; NV] = std::array::from_fn(|v| t.b.wrapping_add(v * t.b_next));
    // One k step: NV B loads, MR broadcasts, NV·MR FMAs.
    macro_rules! step {
        ($k:expr) => {{
            let k = $k;
            // SAFETY: k < kc: each B panel read holds kc rows of 16 floats (the
            // second only exists, and is only read, when nr > 16); A row r holds kc floats.
            unsafe {
                let mut b = [_mm512_setzero_ps(); NV];
                for v in 0..NV {
                    b[v] = _mm512_loadu_ps(bp[v].add(16 * k));
                }
                for r in 0..MR {
                    let av = _mm512_set1_ps(*a[r].add(k));
                    for v in 0..NV {
                        acc[r][v] = _mm512_fmadd_ps(av, b[v], acc[r][v]);
                    }
                }
            }
        }};
    }
    if t.pf.is_null() {
        for k in 0..t.kc {
            step!(k);
        }
    } else {
        let pf: [*const i8; NV] = std::array::from_fn(|v| t.pf.wrapping_add(v * t.b_next) as *const i8);
        for k in 0..t.kc {
            for p in pf {
                // A hint only: never faults.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * k));
            }
            step!(k);
        }
    }
    if t.last {
        let zero = _mm512_setzero_ps();
        let mut bias = [zero; NV];
        if !t.bias.is_null() {
            for v in 0..NV {
                // SAFETY: the bias has nr valid floats at t.bias (masked lanes only).
                bias[v] = unsafe { _mm512_maskz_loadu_ps(mask[v], t.bias.add(16 * v)) };
            }
        }
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                let mut y = *x;
                if !t.bias.is_null() {
                    y = _mm512_add_ps(y, bias[v]);
                }
                if !t.res.is_null() {
                    // SAFETY: residual row r has nr valid floats at res + r·ldc (masked lanes only).
                    y = _mm512_add_ps(y, unsafe { _mm512_maskz_loadu_ps(mask[v], t.res.add(r * t.ldc + 16 * v)) });
                }
                if t.relu {
                    y = _mm512_max_ps(y, zero);
                }
                *x = y;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            // SAFETY: this task owns C row r, nr columns at c + r·ldc (masked lanes only).
            unsafe { _mm512_mask_storeu_ps(t.c.add(r * t.ldc + 16 * v), mask[v], *x) };
        }
    }
}

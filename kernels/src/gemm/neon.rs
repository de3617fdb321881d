//! aarch64 NEON microkernel: 6×16, the twin of `avx2.rs` on 128-bit vectors.
//!
//! Twenty-four `float32x4_t` accumulators (6 rows × 4 vectors of 4), four B
//! vectors and one broadcast A value = 29 of the 32 vector registers. Per `k`:
//! 4 loads of B (one packed 16-column panel row), 6 broadcast loads of A
//! (`ld1r`), 24 FMAs (`vfmaq_f32`); with two to four FMA pipes of latency 4
//! (Cortex-A7x, Neoverse, Apple) at least 8–16 independent accumulators are
//! needed, and 24 cover all of them. A is read through 6 row pointers (each
//! row contiguous over K), so a 1×1 convolution's input is used in place,
//! strided or not. B is the ISA-neutral packed layout of [`super::pack`].
//!
//! As in `avx2.rs`, the C tile and residual rows are prefetched before the k
//! loop, and when the loop nest passes `Tile::pf` (the next B micro-panel) one
//! line of it is prefetched into L1 per `k` step (`PRFM`, via `asm!`: the
//! prefetch intrinsics are unstable on aarch64).
//!
//! Partial tiles (`nr < 16` columns) compute all 16 columns — B's padding
//! columns are zero — and go through a small stack buffer for the loads of C,
//! bias and residual and for the store, so nothing past `nr` is touched.

use std::arch::aarch64::*;

use super::loops::{Microkernel, Tile};

/// NEON 6×16 microkernel.
pub(crate) struct Neon;

const NR: usize = 16;

impl Microkernel for Neon {
    const MR: usize = 6;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 144;
    const NC: usize = 1024;

    // Reads the stem's rows in runs from a padded input (`ASource::Padded`),
    // as the x86 kernels do, instead of an im2col gather of 147 floats per
    // pixel (`pack::reads_padded` has the x86 measurements; not timed on an
    // aarch64 core: qemu is no clock).
    const SEGMENTS: bool = true;

    // One call per tile, as for AVX-512 (see there).
    #[inline(always)]
    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded contract of `Microkernel::tile` (the CPU has NEON;
        // mr checked here).
        unsafe {
            if t.segs > 1 {
                by_mr6!(kernel, t, true)
            } else {
                by_mr6!(kernel, t, false)
            }
        }
    }
}

/// Loads 16 floats at `p`, or the first `nr` (zero elsewhere, nothing read
/// past `p + nr`) when `nr < 16`.
///
/// # Safety
/// NEON available; `p` valid for `min(nr, 16)` floats.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load16(p: *const f32, nr: usize) -> [float32x4_t; 4] {
    // SAFETY: full: 16 readable floats at p; partial: nr < 16 readable floats
    // copied into a 16-float stack buffer, then loaded from it.
    unsafe {
        if nr >= NR {
            [vld1q_f32(p), vld1q_f32(p.add(4)), vld1q_f32(p.add(8)), vld1q_f32(p.add(12))]
        } else {
            let mut buf = [0.0f32; NR];
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), nr);
            let q = buf.as_ptr();
            [vld1q_f32(q), vld1q_f32(q.add(4)), vld1q_f32(q.add(8)), vld1q_f32(q.add(12))]
        }
    }
}

/// Stores 16 floats to `p`, or only the first `nr` when `nr < 16`.
///
/// # Safety
/// NEON available; `p` valid for writing `min(nr, 16)` floats.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn store16(p: *mut f32, v: [float32x4_t; 4], nr: usize) {
    // SAFETY: full: 16 writable floats at p; partial: the vectors go to a
    // 16-float stack buffer and only nr < 16 floats are copied out to p.
    unsafe {
        if nr >= NR {
            vst1q_f32(p, v[0]);
            vst1q_f32(p.add(4), v[1]);
            vst1q_f32(p.add(8), v[2]);
            vst1q_f32(p.add(12), v[3]);
        } else {
            let mut buf = [0.0f32; NR];
            let q = buf.as_mut_ptr();
            vst1q_f32(q, v[0]);
            vst1q_f32(q.add(4), v[1]);
            vst1q_f32(q.add(8), v[2]);
            vst1q_f32(q.add(12), v[3]);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, nr);
        }
    }
}

/// Hints the core to bring the line at `p` into L1 (`PRFM PLDL1KEEP`).
#[inline(always)]
fn prefetch_l1(p: *const f32) {
    // SAFETY: PRFM is only a hint: it never faults, whatever the address, and
    // changes no register, flag or memory.
    unsafe { std::arch::asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly)) };
}

/// Hints the core to bring the line at `p` into L1 for writing (`PRFM PSTL1KEEP`).
#[inline(always)]
fn prefetch_l1_store(p: *mut f32) {
    // SAFETY: PRFM is only a hint: it never faults, whatever the address, and
    // changes no register, flag or memory.
    unsafe { std::arch::asm!("prfm pstl1keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly)) };
}

/// `SEG`: A row `r` is `t.segs` runs of `kc / segs` floats, run `s` at
/// `a[r] + s·seg_stride` (B's rows continue across runs); otherwise one run.
///
/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR` and NEON available.
#[target_feature(enable = "neon")]
unsafe fn kernel<const MR: usize, const SEG: bool>(t: &Tile) {
    let nr = t.nr;
    let zero = vdupq_n_f32(0.0);
    // Four arrays of MR vectors (columns 0–3, 4–7, 8–11, 12–15 of each row),
    // not one `[[_; 4]; MR]`: LLVM kept that one in memory, storing all 24
    // accumulators after every k step (found by `scripts/codegen_spills.py`).
    let (mut c0, mut c1, mut c2, mut c3) = ([zero; MR], [zero; MR], [zero; MR], [zero; MR]);
    if t.accumulate {
        for r in 0..MR {
            // SAFETY: C row r holds nr valid floats at c + r·ldc.
            [c0[r], c1[r], c2[r], c3[r]] = unsafe { load16(t.c.add(r * t.ldc), nr) };
        }
    }
    // Every choice outside the k loop is made once per tile, not per row
    // (see `avx2.rs`: 2–3 points of the FMA peak at kc = 64 on Zen 3; not
    // timed on an aarch64 core).
    let has_res = t.has_residual(MR);
    // Start the C tile's (and residual's) cache-line fills now, so the stores
    // after the k loop do not stall on misses (as in `avx2.rs`). A 16-float
    // row spans at most two 64-byte lines: its first and last float.
    for r in 0..MR {
        let c = t.c.wrapping_add(r * t.ldc);
        prefetch_l1_store(c);
        prefetch_l1_store(c.wrapping_add(NR - 1));
    }
    if has_res {
        for p in &t.res[..MR] {
            prefetch_l1(*p);
            prefetch_l1(p.wrapping_add(NR - 1));
        }
    }
    // Runs of each A row (SEG: one per kernel row of a padded input).
    let (segs, run) = if SEG { (t.segs, t.kc / t.segs) } else { (1, t.kc) };
    for s in 0..segs {
        let k0 = s * run;
        let a: [*const f32; MR] = std::array::from_fn(|r| t.a[r].wrapping_add(s * t.seg_stride));
        let b = t.b.wrapping_add(NR * k0);
        macro_rules! step {
            ($k:expr) => {{
                let k = $k;
                // SAFETY: k < run: the B micro-panel holds kc rows of 16 floats
                // (k0 + k of them before this one); A row r holds run floats at a[r].
                unsafe {
                    let bk = b.add(NR * k);
                    let b0 = vld1q_f32(bk);
                    let b1 = vld1q_f32(bk.add(4));
                    let b2 = vld1q_f32(bk.add(8));
                    let b3 = vld1q_f32(bk.add(12));
                    for r in 0..MR {
                        let av = vld1q_dup_f32(a[r].add(k));
                        c0[r] = vfmaq_f32(c0[r], av, b0);
                        c1[r] = vfmaq_f32(c1[r], av, b1);
                        c2[r] = vfmaq_f32(c2[r], av, b2);
                        c3[r] = vfmaq_f32(c3[r], av, b3);
                    }
                }
            }};
        }
        if t.pf.is_null() {
            for k in 0..run {
                step!(k);
            }
        } else {
            // The next B micro-panel, one 64-byte line (one row of 16 floats) per k.
            let pf = t.pf.wrapping_add(NR * k0);
            for k in 0..run {
                prefetch_l1(pf.wrapping_add(NR * k));
                step!(k);
            }
        }
    }
    if t.last {
        if !t.bias.is_null() {
            // SAFETY: the bias has nr valid floats at t.bias.
            let bv = unsafe { load16(t.bias, nr) };
            for r in 0..MR {
                c0[r] = vaddq_f32(c0[r], bv[0]);
                c1[r] = vaddq_f32(c1[r], bv[1]);
                c2[r] = vaddq_f32(c2[r], bv[2]);
                c3[r] = vaddq_f32(c3[r], bv[3]);
            }
        }
        if has_res {
            for r in 0..MR {
                // SAFETY: residual row r holds nr valid floats at res[r].
                let rv = unsafe { load16(t.res[r], nr) };
                c0[r] = vaddq_f32(c0[r], rv[0]);
                c1[r] = vaddq_f32(c1[r], rv[1]);
                c2[r] = vaddq_f32(c2[r], rv[2]);
                c3[r] = vaddq_f32(c3[r], rv[3]);
            }
        }
        if t.relu {
            for r in 0..MR {
                c0[r] = vmaxq_f32(c0[r], zero);
                c1[r] = vmaxq_f32(c1[r], zero);
                c2[r] = vmaxq_f32(c2[r], zero);
                c3[r] = vmaxq_f32(c3[r], zero);
            }
        }
    }
    for r in 0..MR {
        // SAFETY: this task owns C row r, nr columns at c + r·ldc.
        unsafe { store16(t.c.add(r * t.ldc), [c0[r], c1[r], c2[r], c3[r]], nr) };
    }
}

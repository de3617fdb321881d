//! AVX-512F microkernels: 8×32 (and 8×16 for a last odd 16-column panel)
//! for the loop nest's and the register-form kernel's odd last panels and,
//! where 512-bit FMAs run at half rate, Winograd's products of up to 8
//! rows; and a tall 16×16 one for those cores' longer products
//! ([`Avx512Tall`]). Full-width cores run Winograd's products on
//! `avx512_wide`'s 12×32 kernel (since stop 55). The 1×1, implicit-GEMM and
//! stem loop nest runs that 12×32 kernel too (it shares this one's
//! prefetches, accumulator start and epilogue); this kernel ran it until
//! stop 51, and its own measurements below date from then.
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

use super::loops::{GroupPrefetch, Microkernel, TallMicrokernel, TallTile, Tile, NEXT_A_LINES_PER_GROUP};

/// AVX-512F 8×32 microkernel.
pub(crate) struct Avx512;

impl Microkernel for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;
    // K blocks of up to 512 (768 stay whole): the B micro-panel (64 KiB)
    // then streams from L2 instead of staying in L1, which costs less than
    // what more K blocks cost (each reloads and stores every C tile, and a
    // tile's fixed overhead weighs more on a shorter k loop). Interleaved
    // on one Zen 4 core (on-CPU time, the 1×1 layers of ResNet50), 512
    // against 192: the channel-reducing layers 784×512×128 +4 %,
    // 784×512×256 +3 %, 196×1024×512 +3 %, 196×1024×256 +2 %, 49×2048×512
    // +1 %, the strided 196×512×1024 +5 % and 49×1024×2048 +2 %; shapes with
    // K ≤ 288 have one block either way. 768 and 1024 gained nothing more.
    const KC: usize = 512;
    // Winograd's products with up to 8 rows (those with more take
    // `Avx512Tall`): 512 was 1–3 % slower than 192 on 7×7×512 and 28×28×256/2
    // when this kernel ran them all.
    const KC_ROWS: usize = 192;
    const MC: usize = 192;
    const NC: usize = 1024;

    const SEGMENTS: bool = true;

    // Inlined into the loop nest, so that each tile is one call (to the
    // instance the match picks) instead of two: perf, one thread, 56×56
    // 64→256: the loop nest and this dispatch 3.4 → 1.8 % of the layer.
    #[inline(always)]
    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded contract of `Microkernel::tile` (the CPU has
        // AVX-512F; mr checked by the match; the second panel is read only
        // when nr > 16).
        unsafe { by_mr!(t, kernel) }
    }
}

/// Calls `$f::<MR, NV, SEG>($t)` with the instance for `$t`'s rows
/// (`1..=8`), panels (`NV = 2` when `nr > 16`) and runs (`SEG` when
/// `segs > 1`).
macro_rules! by_mr {
    ($t:expr, $f:ident) => {
        match ($t.nr > 16, $t.segs > 1) {
            (true, false) => by_mr!(@rows $t, $f, 2, false),
            (false, false) => by_mr!(@rows $t, $f, 1, false),
            (true, true) => by_mr!(@rows $t, $f, 2, true),
            (false, true) => by_mr!(@rows $t, $f, 1, true),
        }
    };
    (@rows $t:expr, $f:ident, $nv:literal, $seg:literal) => {
        match $t.mr {
            8 => $f::<8, $nv, $seg>($t),
            7 => $f::<7, $nv, $seg>($t),
            6 => $f::<6, $nv, $seg>($t),
            5 => $f::<5, $nv, $seg>($t),
            4 => $f::<4, $nv, $seg>($t),
            3 => $f::<3, $nv, $seg>($t),
            2 => $f::<2, $nv, $seg>($t),
            1 => $f::<1, $nv, $seg>($t),
            mr => unreachable!("avx512 microkernel: mr {mr} out of 1..=8"),
        }
    };
}
use by_mr;

/// The 16-lane operations the kernel body needs: AVX-512F intrinsics in
/// [`Zmm`], and a scalar model of the same instructions in tests, so that the
/// very same body (loop structure, masks, pointer arithmetic) is checked on
/// CPUs without AVX-512.
pub(crate) trait Lanes16: Copy {
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self;
    /// 16 floats at `p`.
    unsafe fn load(p: *const f32) -> Self;
    /// Lanes set in `m` from `p`, others zero; masked-off lanes are not read (`vmovups{z}`).
    unsafe fn load_masked(m: u16, p: *const f32) -> Self;
    /// Lanes set in `m` to `p`; others not written.
    unsafe fn store_masked(p: *mut f32, m: u16, v: Self);
    /// `a·b + c`, fused.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `vmaxps(a, 0)`: `a` if `a > 0`, else `0` (NaN → 0).
    unsafe fn relu(a: Self) -> Self;
    /// Prefetch hint into L1 for the line at `p` (any address).
    unsafe fn prefetch(p: *const i8);
    /// Prefetch hint into L2 for the line at `p` (any address).
    unsafe fn prefetch_l2(p: *const i8);
}

/// A zmm register.
#[derive(Clone, Copy)]
pub(crate) struct Zmm(__m512);

// Each method: AVX-512F is enabled in the only caller (`kernel`), and the
// pointer contracts are the trait's, upheld by the kernel body.
impl Lanes16 for Zmm {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_masked(m: u16, p: *const f32) -> Self {
        // SAFETY: see the impl comment (masked lanes are fault-suppressed).
        Zmm(unsafe { _mm512_maskz_loadu_ps(m, p) })
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, m: u16, v: Self) {
        // SAFETY: see the impl comment (masked lanes are fault-suppressed).
        unsafe { _mm512_mask_storeu_ps(p, m, v.0) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_add_ps(a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn relu(a: Self) -> Self {
        // SAFETY: see the impl comment.
        Zmm(unsafe { _mm512_max_ps(a.0, _mm512_setzero_ps()) })
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const i8) {
        // SAFETY: a hint; never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
    }
    #[inline(always)]
    unsafe fn prefetch_l2(p: *const i8) {
        // SAFETY: a hint; never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p) }
    }
}

/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR`, `NV == 2` exactly when
/// `t.nr > 16`, `SEG` exactly when `t.segs > 1`, and AVX-512F available.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const MR: usize, const NV: usize, const SEG: bool>(t: &Tile) {
    // SAFETY: forwarded; AVX-512F is enabled here, so Zmm's intrinsics inline.
    unsafe { body::<Zmm, MR, NV, SEG>(t) }
}

/// The microkernel, for any [`Lanes16`].
///
/// # Safety
/// As [`kernel`] (for [`Zmm`]: inside an AVX-512F function).
#[inline(always)]
pub(crate) unsafe fn body<V: Lanes16, const MR: usize, const NV: usize, const SEG: bool>(t: &Tile) {
    // Column masks of the two 16-lane halves.
    let mask: [u16; NV] = std::array::from_fn(|v| {
        let n = t.nr.saturating_sub(16 * v).min(16);
        ((1u32 << n) - 1) as u16
    });
    // SAFETY (whole body): pointers as documented on `Tile` — C row r has nr
    // valid floats at c + r·ldc (and the residual likewise), the bias nr
    // floats; masked-off lanes are neither read nor written; each B panel
    // read holds kc rows of 16 floats (the second only exists, and is only
    // read, when nr > 16, i.e. NV == 2); A row r holds kc floats (SEG:
    // segs runs of kc / segs floats, seg_stride apart); `t.next` is null or a Tile valid for
    // reads during this call (what GroupPrefetch::new asks).
    unsafe {
        // The sums start from the bias when this tile is the whole K
        // reduction (one K block: nothing to start from in C), which saves
        // the epilogue an add per vector: in-place-residual K = 64 layers
        // 1–2 % faster.
        let fold_bias = t.last && !t.accumulate && !t.bias.is_null();
        let mut acc = [[V::zero(); NV]; MR];
        if fold_bias {
            for row in acc.iter_mut() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = V::load_masked(mask[v], t.bias.add(16 * v));
                }
            }
        }
        if t.accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = V::load_masked(mask[v], t.c.add(r * t.ldc + 16 * v));
                }
            }
        }
        // Spread L2 prefetch of the next micro-panel (pf_lines lines per
        // panel over the kc/4 groups, 16.16 fixed point). Hints only: never
        // fault.
        //
        // One loop for every case (an absent target is replaced by this
        // tile's own B panel, whose lines are loaded anyway): with a separate
        // loop per case, as in the AVX2 kernel, LLVM's register allocator
        // spilled all 16 accumulators to the stack after every FMA (the
        // kernel ran at 38 % of peak on Zen 4 instead of ~90 %).
        //
        // No L1 prefetch of B (`t.pf_l1`, which the AVX2 kernel takes): the
        // last strip used to pull the next micro-panel into L1 a line per k
        // step, every other strip its own lines. On a Sapphire Rapids core
        // (2 vCPUs, 2026-12-02) those two PREFETCHT0s per 16 FMAs held the
        // kernel in L1 at 75 % of peak (88 % without) and cost the network
        // 2.6–4.3 % (same process, alternating inference by inference: v1
        // one thread 0.974, two 0.957, v1.5 one 0.961; null 0.994); on Zen 5
        // (stop 29) dropping them measured within ±0.4 %. On the same
        // Sapphire Rapids core, dropping the L2 spread instead made v1 9 %
        // slower, dropping the next tile's C prefetch 2 %.
        let mut prefetch = GroupPrefetch::<MR, NV>::new(t);
        // Runs of each A row (SEG: one per kernel row of a padded input;
        // B's rows continue across them).
        let (segs, run) = if SEG { (t.segs, t.kc / t.segs) } else { (1, t.kc) };
        for s in 0..segs {
            let a: [*const f32; MR] = std::array::from_fn(|r| t.a[r].wrapping_add(s * t.seg_stride));
            let bp: [*const f32; NV] = std::array::from_fn(|v| t.b.wrapping_add(v * t.b_next + 16 * s * run));
            // One k step: NV B loads, MR broadcasts, NV·MR FMAs.
            macro_rules! step {
                ($k:expr) => {{
                    let k = $k;
                    let mut b = [V::zero(); NV];
                    for v in 0..NV {
                        b[v] = V::load(bp[v].add(16 * k));
                    }
                    for r in 0..MR {
                        let av = V::splat(*a[r].add(k));
                        for v in 0..NV {
                            acc[r][v] = V::fmadd(av, b[v], acc[r][v]);
                        }
                    }
                }};
            }
            // Unrolled ×4, then the rest.
            let kc4 = run & !3;
            let mut k = 0;
            while k < kc4 {
                // The next B panel's share into L2, the next tile's C into
                // L1, and where the loop nest asks (`next_a`) its A rows into
                // L2 (`t` is this tile: the tile contract).
                prefetch.group(NEXT_A_LINES_PER_GROUP, |p| V::prefetch(p), |p| V::prefetch_l2(p));
                for u in 0..4 {
                    step!(k + u);
                }
                k += 4;
            }
            for k in kc4..run {
                step!(k);
            }
        }
        // The epilogue decides each choice once per tile, not per row or
        // vector (as the AVX2 kernel, where testing the bias, each row's
        // residual and ReLU per row cost 2–3 points of the FMA peak at
        // kc = 64 on Zen 3); same adds in the same order per element.
        if t.last {
            if !t.bias.is_null() && !fold_bias {
                let bias: [V; NV] = std::array::from_fn(|v| V::load_masked(mask[v], t.bias.add(16 * v)));
                for row in acc.iter_mut() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = V::add(*x, bias[v]);
                    }
                }
            }
            if t.has_residual(MR) {
                for (row, res) in acc.iter_mut().zip(&t.res) {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = V::add(*x, V::load_masked(mask[v], res.add(16 * v)));
                    }
                }
            }
            if t.relu {
                for row in acc.iter_mut() {
                    for x in row.iter_mut() {
                        *x = V::relu(*x);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                V::store_masked(t.c.add(r * t.ldc + 16 * v), mask[v], *x);
            }
        }
    }
}

/// Calls `$f::<R>($t)` with the const `R` equal to `$mr` (`1..=16`).
macro_rules! by_rows {
    ($mr:expr, $f:ident, $t:expr) => {
        match $mr {
            1 => $f::<1>($t),
            2 => $f::<2>($t),
            3 => $f::<3>($t),
            4 => $f::<4>($t),
            5 => $f::<5>($t),
            6 => $f::<6>($t),
            7 => $f::<7>($t),
            8 => $f::<8>($t),
            9 => $f::<9>($t),
            10 => $f::<10>($t),
            11 => $f::<11>($t),
            12 => $f::<12>($t),
            13 => $f::<13>($t),
            14 => $f::<14>($t),
            15 => $f::<15>($t),
            16 => $f::<16>($t),
            mr => unreachable!("tall microkernel: mr {mr} out of 1..=16"),
        }
    };
}

/// AVX-512F tall microkernel: up to 16 rows × one 16-column panel, for
/// Winograd's products with more than 8 rows (a block's tiles: 16 for
/// 7×7 at batch 1, 25 or 33 elsewhere).
///
/// Why: those products stream their weights from memory (stage 5 at batch
/// 1 reads 17 MB per layer) for a handful of rows. The 8×32 kernel covers
/// 16 rows in two strips, the second re-reading each 32-column B panel
/// from L1 — where the panel, the A strips and the next panel's prefetch no
/// longer fit together (48+ KiB in a 32 KiB L1). Here a block of up to 16
/// rows takes each B line into a register once: per `k` one B load, MR
/// broadcasts (folded into the FMAs) and MR FMAs on MR accumulators, so a
/// 16-row product reads B exactly once. A has a fixed row stride, so one
/// pointer serves all rows. Interleaved on one Zen 4 core (v1, batch 1,
/// per-layer minima): stage 5's F(2×2) layers 1.51 → 1.26 ms, stages 2–4's
/// F(4×4)/F(3×3) layers 2–5 % faster, the network 2 % faster at 1 and 2
/// threads; up to 28 rows (registers allow) gained nothing over 16.
///
/// Only where 512-bit FMAs run at the 256-bit rate, though
/// ([`super::peak::avx512_full_width`]; `gemm_rows` picks). Per `k` this kernel
/// issues one B load, MR broadcasts and two prefetches for MR FMAs: on
/// Zen 4 (one 512-bit FMA per cycle) the FMAs bind, but on a core with two
/// full-width FMA pipes (Zen 5) the loads do — 19 for 16 FMAs against 10
/// for the 8×32 kernel's 16 — and the 8×32 kernel's extra L1 reads of B
/// cost less. Same-process A/B on a 2-core Zen 5 VM (alternating inference
/// by inference, 80 pairs; per-layer medians of 40): the Winograd layers
/// 8–23 % faster with the 8×32 kernel (stage 4's F(3×3) 18–24 % at two
/// threads; stage 2's F(4×4), `k` = 64, the same), the network 2.0–3.3 %
/// (v1 and v1.5, one and two threads, batch 1), batch 8 1.4–3.8 %. Results
/// are bit-identical either way (both kernels are one FMA chain over k per
/// element), and unrolling this loop ×4 did not help.
pub(crate) struct Avx512Tall;

impl TallMicrokernel for Avx512Tall {
    const MR: usize = 16;
    // 16 rows × 256 of A (16 KiB) and the 256 × 16 B panel (16 KiB) in L1;
    // 128 measured the same.
    const KC: usize = 256;

    // Inlined into the product loop, as `Avx512::tile`.
    #[inline(always)]
    unsafe fn tile(t: &TallTile) {
        // SAFETY: forwarded contract of `TallMicrokernel::tile` (the CPU has
        // AVX-512F; mr checked by the match).
        unsafe { by_rows!(t.mr, tall_kernel, t) }
    }
}

/// # Safety
/// As [`TallMicrokernel::tile`], with `t.mr == MR` and AVX-512F available.
#[target_feature(enable = "avx512f")]
unsafe fn tall_kernel<const MR: usize>(t: &TallTile) {
    // SAFETY: forwarded; AVX-512F is enabled here, so Zmm's intrinsics inline.
    unsafe { tall_body::<Zmm, MR>(t) }
}

/// The tall microkernel, for any [`Lanes16`].
///
/// # Safety
/// As [`tall_kernel`] (for [`Zmm`]: inside an AVX-512F function).
#[inline(always)]
pub(crate) unsafe fn tall_body<V: Lanes16, const MR: usize>(t: &TallTile) {
    let mask = ((1u32 << t.nr.min(16)) - 1) as u16;
    // SAFETY (whole body): pointers as documented on `TallTile` — A row r
    // has kc floats at a + r·lda, the B panel kc rows of 16 floats, C row r
    // nr valid floats at c + r·ldc; masked-off lanes are neither read nor
    // written; prefetches are hints at any address.
    unsafe {
        let mut acc = [V::zero(); MR];
        if t.accumulate {
            for (r, x) in acc.iter_mut().enumerate() {
                *x = V::load_masked(mask, t.c.add(r * t.ldc));
            }
        }
        let (pf, own) = (t.pf as *const i8, t.b as *const i8);
        for kk in 0..t.kc {
            // The next panel into L2, one line per k step; this panel's
            // line 8 steps ahead into L1 (the first strip's loads come from
            // L2 or memory).
            V::prefetch_l2(pf.wrapping_add(64 * kk));
            V::prefetch(own.wrapping_add(64 * (kk + 8)));
            let b = V::load(t.b.add(16 * kk));
            for (r, x) in acc.iter_mut().enumerate() {
                *x = V::fmadd(V::splat(*t.a.add(r * t.lda + kk)), b, *x);
            }
        }
        for (r, x) in acc.iter().enumerate() {
            V::store_masked(t.c.add(r * t.ldc), mask, *x);
        }
    }
}

#[cfg(test)]
pub(crate) mod emulated {
    //! A scalar model of the AVX-512 instructions the kernel uses, and the
    //! AVX-512 microkernel built on it: same body, same blocking, so the
    //! loop nest and the kernel's masks and pointer arithmetic are tested
    //! on any x86-64 CPU.

    use super::{body, tall_body, Avx512, Avx512Tall, Lanes16};
    use crate::gemm::loops::{Microkernel, TallMicrokernel, TallTile, Tile};

    #[derive(Clone, Copy)]
    pub(crate) struct Emu([f32; 16]);

    impl Lanes16 for Emu {
        unsafe fn zero() -> Self {
            Emu([0.0; 16])
        }
        unsafe fn splat(x: f32) -> Self {
            Emu([x; 16])
        }
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 16 readable floats at p.
            Emu(std::array::from_fn(|i| unsafe { *p.add(i) }))
        }
        unsafe fn load_masked(m: u16, p: *const f32) -> Self {
            // SAFETY: the caller guarantees the masked lanes are readable; others are not read.
            Emu(std::array::from_fn(|i| if m >> i & 1 == 1 { unsafe { *p.add(i) } } else { 0.0 }))
        }
        unsafe fn store_masked(p: *mut f32, m: u16, v: Self) {
            for (i, x) in v.0.iter().enumerate() {
                if m >> i & 1 == 1 {
                    // SAFETY: the caller guarantees the masked lanes are writable.
                    unsafe { *p.add(i) = *x };
                }
            }
        }
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            Emu(std::array::from_fn(|i| a.0[i].mul_add(b.0[i], c.0[i])))
        }
        unsafe fn add(a: Self, b: Self) -> Self {
            Emu(std::array::from_fn(|i| a.0[i] + b.0[i]))
        }
        unsafe fn relu(a: Self) -> Self {
            // vmaxps(a, b): a if a > b, else b.
            Emu(a.0.map(|x| if x > 0.0 { x } else { 0.0 }))
        }
        unsafe fn prefetch(_p: *const i8) {}
        unsafe fn prefetch_l2(_p: *const i8) {}
    }

    /// The AVX-512 tall microkernel on emulated lanes.
    pub(crate) struct Avx512TallEmu;

    impl TallMicrokernel for Avx512TallEmu {
        const MR: usize = Avx512Tall::MR;
        const KC: usize = Avx512Tall::KC;

        unsafe fn tile(t: &TallTile) {
            // SAFETY: forwarded contract; no CPU feature needed.
            unsafe { by_rows!(t.mr, tall_emu, t) }
        }
    }

    /// # Safety
    /// As [`TallMicrokernel::tile`] with `t.mr == MR`.
    unsafe fn tall_emu<const MR: usize>(t: &TallTile) {
        // SAFETY: forwarded.
        unsafe { tall_body::<Emu, MR>(t) }
    }

    /// The AVX-512 microkernel on emulated lanes.
    pub(crate) struct Avx512Emu;

    impl Microkernel for Avx512Emu {
        const MR: usize = Avx512::MR;
        const NR: usize = Avx512::NR;
        const KC: usize = Avx512::KC;
        const KC_ROWS: usize = Avx512::KC_ROWS;
        const MC: usize = Avx512::MC;
        const NC: usize = Avx512::NC;

        const SEGMENTS: bool = true;

        unsafe fn tile(t: &Tile) {
            // SAFETY: forwarded contract; no CPU feature needed.
            unsafe { super::by_mr!(t, emu_kernel) }
        }
    }

    /// # Safety
    /// As `super::kernel`, without the CPU feature.
    unsafe fn emu_kernel<const MR: usize, const NV: usize, const SEG: bool>(t: &Tile) {
        // SAFETY: forwarded.
        unsafe { body::<Emu, MR, NV, SEG>(t) }
    }
}

//! FMA-throughput probe: a tight loop of independent multiply-adds, to measure
//! a core's peak f32 GFLOP/s for an ISA (the yardstick of the GEMM benchmark);
//! and the microkernel probe: one ISA's register tile run over and over on
//! operands that stay in L1, the most any loop nest around it can reach.

use std::hint::black_box;
use std::time::Instant;

use super::loops::{Microkernel, Tile};
use super::PANEL;
use crate::isa::Isa;

/// Runs `iters` iterations of independent FMAs on one thread and returns the
/// achieved GFLOP/s (an FMA counts 2 flops), timed by the wall clock.
/// `Scalar` (and ISAs without a probe yet, such as NEON) measure plain `f32`
/// multiply-adds.
///
/// # Panics
/// If `isa` is not supported by this CPU.
pub fn fma_peak_gflops(isa: Isa, iters: u64) -> f64 {
    let start = Instant::now();
    let flops = fma_probe(isa, iters);
    flops as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// The probe itself, untimed (for callers with their own clock, e.g. thread
/// CPU time on a shared machine): runs `iters` iterations and returns the
/// flops executed.
///
/// # Panics
/// If `isa` is not supported by this CPU.
pub fn fma_probe(isa: Isa, iters: u64) -> u64 {
    assert!(isa.is_supported(), "fma_probe: ISA {isa} not supported by this CPU");
    let iters = iters.max(1);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2+FMA support checked above.
        Isa::Avx2 => unsafe { x86::avx2(iters) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F support checked above.
        Isa::Avx512 => unsafe { x86::avx512(iters) },
        _ => scalar(iters),
    }
}

/// Whether this CPU's 512-bit FMAs deliver about twice the flops of its
/// 256-bit ones (two full-width FMA pipes: Zen 5, Intel cores with two
/// 512-bit FMA units) rather than the same (Zen 4, which runs a 512-bit FMA
/// as two halves on its 256-bit pipes; Intel cores with one 512-bit unit).
/// `false` without AVX-512F.
///
/// Measured once per process, on first use (~2 ms): the best of 24
/// interleaved short runs (30–60 µs) of the AVX-512 and the AVX2
/// [`fma_probe`], full width when the first reaches 1.5× the second (the
/// two cases are 2× and 1×; a preempted or slowed run only lowers one
/// reading, which the best discards). With five runs of 0.15–0.3 ms each,
/// a 2-vCPU Zen 4 VM in one of its slow phases once took its half-rate
/// 512-bit FMAs for full-width ones (every AVX2 run slowed by a third), and
/// that model ran v1.5's `conv3_block1_2` with F(2×2)/2 and Winograd's
/// products on the 8×32 kernel, both slower there. It picks the kernel of Winograd's products
/// (`gemm_rows`), which never changes a result: both candidates are one FMA
/// chain over k per element. A model built for AVX-512 also asks it whether
/// its stride-2 3×3 layers may take the F(4×4)/2 Winograd tile
/// ([`crate::ConvParams::best_algo_for_cpu`]), which rounds differently.
///
/// ```
/// use resnet50_kernels::{gemm::peak::avx512_full_width, Isa};
/// let full = avx512_full_width();
/// assert!(!full || Isa::Avx512.is_supported());
/// assert_eq!(full, avx512_full_width()); // measured once
/// ```
pub fn avx512_full_width() -> bool {
    static FULL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FULL.get_or_init(|| {
        if !Isa::Avx512.is_supported() || !Isa::Avx2.is_supported() {
            return false;
        }
        let (mut w512, mut w256) = (0.0f64, 0.0f64);
        for _ in 0..24 {
            // 240 k FMAs each: 30–60 µs.
            w256 = w256.max(fma_peak_gflops(Isa::Avx2, 20_000));
            w512 = w512.max(fma_peak_gflops(Isa::Avx512, 10_000));
        }
        w512 > 1.5 * w256
    })
}

/// The register tile of [`k_loop_probe`]: rows × columns of C, so per k
/// step `columns / 16` B vectors and `rows` broadcasts of A feed 24 FMAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopShape {
    /// 12 × 32, the AVX-512 kernel's (`avx512_wide`): 14 loads per 24 FMAs.
    Rows12Cols32,
    /// 6 × 64: 10 loads per 24 FMAs.
    Rows6Cols64,
}

/// A register tile's k loop alone, the way the AVX-512 register form runs
/// it (B vectors loaded, each A value broadcast into a register once per k
/// step, 24 zmm accumulators), on operands that stay in L1 — no prefetches,
/// no epilogue, no loop nest — for `iters` groups of 4 k steps; returns the
/// flops executed, or `None` where it has no such loop (every ISA but
/// AVX-512). Untimed, like [`fma_probe`].
///
/// Against [`fma_probe`] (FMAs and nothing else) this is the shape's own
/// ceiling on this core, before anything around the loop. On a 2-vCPU
/// Xeon with two full-width FMA pipes (2026-12-06) both loops ran at
/// 92–93 % of the probe (medians of 15, the GEMM bench's table), the
/// 12×32 kernel itself at 86 % with kc = 256: a bare 24-FMA loop there kept
/// its full rate with up to 9 broadcast loads per 24 FMAs beside it and
/// lost 4–9 % from 10 loads on — the loads, not the FMA pipes, cap a
/// tile that needs 10 (6×64) or 14 (12×32).
///
/// # Panics
/// If `isa` is not supported by this CPU.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub fn k_loop_probe(isa: Isa, shape: LoopShape, iters: u64) -> Option<u64> {
    assert!(isa.is_supported(), "k_loop_probe: ISA {isa} not supported by this CPU");
    let iters = iters.max(1);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // 12 rows of 64 floats (256 bytes apart) and 4 k steps of B
            // (up to 4 vectors each): 4 KB, in L1 after the first group.
            let a = vec![1e-3f32; 12 * 64];
            let b = vec![1e-3f32; 4 * 4 * 16];
            // SAFETY: AVX-512F support checked above; the loops read a[..12 · 64]
            // (rows r at 256·r bytes, k < 4) and b[..256], inside both.
            let flops = unsafe {
                match shape {
                    LoopShape::Rows12Cols32 => x86::k_loop_12x32(iters, a.as_ptr(), b.as_ptr()),
                    LoopShape::Rows6Cols64 => x86::k_loop_6x64(iters, a.as_ptr(), b.as_ptr()),
                }
            };
            Some(flops)
        }
        _ => None,
    }
}

/// Runs `isa`'s GEMM microkernel `tiles` times on one full `MR × NR` tile
/// with a `kc`-long k loop and the bias + ReLU epilogue (with `residual`,
/// bias + residual + ReLU, the residual read from the C tile itself as in a
/// bottleneck's last 1×1 convolution), its A rows, B
/// micro-panel and C tile in L1 (as in [`super::conv1x1`], minus the loop
/// nest and the memory traffic), and returns the flops executed
/// (`2·MR·NR·kc` per tile); untimed, like [`fma_probe`].
///
/// Against [`fma_probe`] this is the microkernel's own ceiling at that `kc`:
/// the fixed cost of a tile (starting the accumulators, the epilogue, the
/// stores) over its `MR·NR·kc` multiply-adds. ResNet50's stage-2 1×1 layers
/// have `kc` = 64, where that cost is largest.
///
/// # Panics
/// If `isa` is not supported by this CPU, or `kc` is 0.
pub fn microkernel_probe(isa: Isa, kc: usize, residual: bool, tiles: u64) -> u64 {
    repeat_tile_on(isa, kc, residual, tiles).0
}

/// [`microkernel_probe`], also returning the C tile (`MR × NR`, rows of
/// `NR`) and `NR`.
fn repeat_tile_on(isa: Isa, kc: usize, residual: bool, tiles: u64) -> (u64, Vec<f32>, usize) {
    assert!(isa.is_supported(), "microkernel_probe: ISA {isa} not supported by this CPU");
    assert!(kc > 0, "microkernel_probe: kc must be positive");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2+FMA support checked above.
        Isa::Avx2 => unsafe { repeat_tile::<super::avx2::Avx2>(kc, residual, tiles) },
        // The kernel the loop nest runs (`gemm::dispatch`): 12×32, with A's
        // values embedded in the FMAs where 512-bit FMAs run at the 256-bit
        // rate, broadcast into registers where they run at full width.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F support checked above.
        Isa::Avx512 if !avx512_full_width() => unsafe {
            repeat_tile::<super::avx512_wide::Avx512Wide<false>>(kc, residual, tiles)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F support checked above.
        Isa::Avx512 => unsafe { repeat_tile::<super::avx512_wide::Avx512Wide<true>>(kc, residual, tiles) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON support checked above.
        Isa::Neon => unsafe { repeat_tile::<super::neon::Neon>(kc, residual, tiles) },
        // SAFETY: the scalar kernel needs no CPU feature.
        _ => unsafe { repeat_tile::<super::scalar::Scalar>(kc, residual, tiles) },
    }
}

/// The probe's operands: A row `r` at `k`, B (packed panels, `kc` rows of 16
/// each) at row `k`, column `j`. Small exact values (multiples of 1/8).
fn probe_a(r: usize, k: usize) -> f32 {
    ((r + 3 * k) % 7) as f32 * 0.125
}
fn probe_b(k: usize, j: usize) -> f32 {
    ((2 * k + j) % 5) as f32 * 0.125 - 0.25
}

/// [`repeat_tile_on`] for microkernel `U`.
///
/// # Safety
/// The CPU must support `U`'s ISA.
unsafe fn repeat_tile<U: Microkernel>(kc: usize, residual: bool, tiles: u64) -> (u64, Vec<f32>, usize) {
    let panels = U::NR.div_ceil(PANEL);
    let a: Vec<f32> = (0..U::MR * kc).map(|i| probe_a(i / kc, i % kc)).collect();
    // Panel p holds columns 16p..16p + 16: kc rows of 16.
    let b: Vec<f32> =
        (0..panels * kc * PANEL).map(|i| probe_b(i / PANEL % kc, i / (kc * PANEL) * PANEL + i % PANEL)).collect();
    let bias = vec![0.5f32; U::NR];
    let mut c = vec![0.0f32; U::MR * U::NR];
    let mut t = Tile::EMPTY;
    for r in 0..U::MR {
        t.a[r] = a.as_ptr().wrapping_add(r * kc);
    }
    t.kc = kc;
    t.b = b.as_ptr();
    t.b_next = kc * PANEL;
    t.c = c.as_mut_ptr();
    t.ldc = U::NR;
    t.mr = U::MR;
    t.nr = U::NR;
    t.last = true;
    t.bias = bias.as_ptr();
    t.relu = true;
    if residual {
        for r in 0..U::MR {
            t.res[r] = c.as_ptr().wrapping_add(r * U::NR);
        }
    }
    // Every call overwrites C (no accumulation across calls); with the
    // residual in C, each call adds the previous call's result to its sum.
    for _ in 0..tiles {
        // SAFETY: the caller guarantees U's ISA; A row r holds kc floats at
        // a + r·kc, the panels hold kc rows of 16 floats each (b_next apart),
        // C holds MR rows of NR floats (ldc = NR), the bias NR floats, the
        // residual rows (if any) are C's; no prefetch hints (null).
        unsafe { U::tile(black_box(&t)) };
    }
    let flops = tiles * 2 * (U::MR * U::NR * kc) as u64;
    (flops, black_box(c), U::NR)
}

fn scalar(iters: u64) -> u64 {
    let x = black_box(0.999_99f32);
    let y = black_box(1e-6f32);
    let mut acc = [0.0f32; 16];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = *a * x + y;
        }
    }
    black_box(acc);
    iters * 16 * 2
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// 12 independent ymm chains: 3× the FMA latency × throughput product of
    /// two pipes of latency 4, so the pipes, not the chains, limit.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(iters: u64) -> u64 {
        let x = _mm256_set1_ps(black_box(0.999_99));
        let y = _mm256_set1_ps(black_box(1e-6));
        let mut acc = [_mm256_setzero_ps(); 12];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        black_box(acc);
        iters * 12 * 8 * 2
    }

    /// One group of 4 k steps of a register tile per iteration: per step
    /// the step's B vectors (`[register offset]…`, zmm24 on) and, per row,
    /// one broadcast of its A value (zmm28, at the row's offset for that
    /// step) for the row's FMAs (`[accumulator B-register index]…`).
    macro_rules! k_loop {
        ($n:expr, $a:expr, $b:expr, $acc:ident;
         [$($r0:literal $o0:literal)+] [$($r1:literal $o1:literal)+] [$($r2:literal $o2:literal)+] [$($r3:literal $o3:literal)+];
         $([$a0:literal $a1:literal $a2:literal $a3:literal [$($z:tt $bz:literal $i:tt)+]])+) => {
            std::arch::asm!(
                "2:",
                $(concat!("vmovups ", $r0, ", [{b} + ", $o0, "]"),)+
                $(concat!("vbroadcastss zmm28, dword ptr [{a} + ", $a0, "]"), $(concat!("vfmadd231ps ", $z, ", ", $bz, ", zmm28"),)+)+
                $(concat!("vmovups ", $r1, ", [{b} + ", $o1, "]"),)+
                $(concat!("vbroadcastss zmm28, dword ptr [{a} + ", $a1, "]"), $(concat!("vfmadd231ps ", $z, ", ", $bz, ", zmm28"),)+)+
                $(concat!("vmovups ", $r2, ", [{b} + ", $o2, "]"),)+
                $(concat!("vbroadcastss zmm28, dword ptr [{a} + ", $a2, "]"), $(concat!("vfmadd231ps ", $z, ", ", $bz, ", zmm28"),)+)+
                $(concat!("vmovups ", $r3, ", [{b} + ", $o3, "]"),)+
                $(concat!("vbroadcastss zmm28, dword ptr [{a} + ", $a3, "]"), $(concat!("vfmadd231ps ", $z, ", ", $bz, ", zmm28"),)+)+
                "dec {n}",
                "jnz 2b",
                n = inout(reg) $n => _,
                a = in(reg) $a,
                b = in(reg) $b,
                $($(inout($z) $acc[$i],)+)+
                out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _,
                options(nostack, readonly),
            )
        };
    }

    /// `iters` (at least 1) groups of the 12×32 k loop ([`super::k_loop_probe`]):
    /// per k step two B vectors and 12 broadcasts, each for two FMAs.
    ///
    /// # Safety
    /// AVX-512F; `a` readable for 12 rows of 4 floats 256 bytes apart, `b`
    /// for 128 floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn k_loop_12x32(iters: u64, a: *const f32, b: *const f32) -> u64 {
        let mut acc = [_mm512_setzero_ps(); 24];
        // SAFETY: the caller's contract; the asm reads only a and b there
        // and writes registers only.
        unsafe {
            k_loop!(iters, a, b, acc; ["zmm24" 0 "zmm25" 64] ["zmm24" 128 "zmm25" 192] ["zmm24" 256 "zmm25" 320] ["zmm24" 384 "zmm25" 448]; [0 4 8 12 ["zmm0" "zmm24" 0 "zmm1" "zmm25" 1]] [256 260 264 268 ["zmm2" "zmm24" 2 "zmm3" "zmm25" 3]] [512 516 520 524 ["zmm4" "zmm24" 4 "zmm5" "zmm25" 5]] [768 772 776 780 ["zmm6" "zmm24" 6 "zmm7" "zmm25" 7]] [1024 1028 1032 1036 ["zmm8" "zmm24" 8 "zmm9" "zmm25" 9]] [1280 1284 1288 1292 ["zmm10" "zmm24" 10 "zmm11" "zmm25" 11]] [1536 1540 1544 1548 ["zmm12" "zmm24" 12 "zmm13" "zmm25" 13]] [1792 1796 1800 1804 ["zmm14" "zmm24" 14 "zmm15" "zmm25" 15]] [2048 2052 2056 2060 ["zmm16" "zmm24" 16 "zmm17" "zmm25" 17]] [2304 2308 2312 2316 ["zmm18" "zmm24" 18 "zmm19" "zmm25" 19]] [2560 2564 2568 2572 ["zmm20" "zmm24" 20 "zmm21" "zmm25" 21]] [2816 2820 2824 2828 ["zmm22" "zmm24" 22 "zmm23" "zmm25" 23]])
        };
        black_box(acc);
        iters * 4 * 24 * 16 * 2
    }

    /// `iters` (at least 1) groups of the 6×64 k loop ([`super::k_loop_probe`]):
    /// per k step four B vectors and 6 broadcasts, each for four FMAs.
    ///
    /// # Safety
    /// AVX-512F; `a` readable for 6 rows of 4 floats 256 bytes apart, `b`
    /// for 256 floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn k_loop_6x64(iters: u64, a: *const f32, b: *const f32) -> u64 {
        let mut acc = [_mm512_setzero_ps(); 24];
        // SAFETY: as `k_loop_12x32`.
        unsafe {
            k_loop!(iters, a, b, acc; ["zmm24" 0 "zmm25" 64 "zmm26" 128 "zmm27" 192] ["zmm24" 256 "zmm25" 320 "zmm26" 384 "zmm27" 448] ["zmm24" 512 "zmm25" 576 "zmm26" 640 "zmm27" 704] ["zmm24" 768 "zmm25" 832 "zmm26" 896 "zmm27" 960]; [0 4 8 12 ["zmm0" "zmm24" 0 "zmm1" "zmm25" 1 "zmm2" "zmm26" 2 "zmm3" "zmm27" 3]] [256 260 264 268 ["zmm4" "zmm24" 4 "zmm5" "zmm25" 5 "zmm6" "zmm26" 6 "zmm7" "zmm27" 7]] [512 516 520 524 ["zmm8" "zmm24" 8 "zmm9" "zmm25" 9 "zmm10" "zmm26" 10 "zmm11" "zmm27" 11]] [768 772 776 780 ["zmm12" "zmm24" 12 "zmm13" "zmm25" 13 "zmm14" "zmm26" 14 "zmm15" "zmm27" 15]] [1024 1028 1032 1036 ["zmm16" "zmm24" 16 "zmm17" "zmm25" 17 "zmm18" "zmm26" 18 "zmm19" "zmm27" 19]] [1280 1284 1288 1292 ["zmm20" "zmm24" 20 "zmm21" "zmm25" 21 "zmm22" "zmm26" 22 "zmm23" "zmm27" 23]])
        };
        black_box(acc);
        iters * 4 * 24 * 16 * 2
    }

    /// 24 independent zmm chains.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(iters: u64) -> u64 {
        let x = _mm512_set1_ps(black_box(0.999_99));
        let y = _mm512_set1_ps(black_box(1e-6));
        let mut acc = [_mm512_setzero_ps(); 24];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        black_box(acc);
        iters * 24 * 16 * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_runs_on_every_supported_isa() {
        for isa in Isa::under_test() {
            let g = fma_peak_gflops(isa, 10_000);
            assert!(g.is_finite() && g > 0.0, "{isa}: {g}");
        }
    }

    #[test]
    fn k_loop_probe_runs_on_avx512_only() {
        for isa in Isa::under_test() {
            for shape in [LoopShape::Rows12Cols32, LoopShape::Rows6Cols64] {
                let got = k_loop_probe(isa, shape, 3);
                // 3 groups of 4 k steps × 24 zmm FMAs × 16 lanes × 2 flops.
                let want = (isa == Isa::Avx512).then_some(3 * 4 * 24 * 16 * 2);
                assert_eq!(got, want, "{isa} {shape:?}");
            }
        }
    }

    #[test]
    fn microkernel_probe_runs_the_tile_on_every_supported_isa() {
        for isa in Isa::under_test() {
            for kc in [1, 3, 64] {
                for residual in [false, true] {
                    let tiles = 3;
                    let (flops, c, nr) = repeat_tile_on(isa, kc, residual, tiles);
                    let mr = c.len() / nr;
                    assert_eq!(flops, tiles * 2 * (mr * nr * kc) as u64, "{isa} kc {kc}");
                    assert_eq!(microkernel_probe(isa, kc, residual, tiles), flops);
                    // relu(bias + A·B [+ C]) per call, exact in f32 (multiples
                    // of 1/64, small sums).
                    for r in 0..mr {
                        for j in 0..nr {
                            let sum = 0.5 + (0..kc).map(|k| probe_a(r, k) * probe_b(k, j)).sum::<f32>();
                            let mut want = 0.0f32;
                            for _ in 0..tiles {
                                want = (sum + if residual { want } else { 0.0 }).max(0.0);
                            }
                            assert_eq!(c[r * nr + j], want, "{isa} kc {kc} residual {residual} C[{r}][{j}]");
                        }
                    }
                }
            }
        }
    }
}

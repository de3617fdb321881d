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

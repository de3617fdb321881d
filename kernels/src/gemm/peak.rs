//! FMA-throughput probe: a tight loop of independent multiply-adds, to measure
//! a core's peak f32 GFLOP/s for an ISA (the yardstick of the GEMM benchmark).

use std::hint::black_box;
use std::time::Instant;

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
}

//! Convolution as packed GEMM: `C[pixels × cout] = A[pixels × K] · B[K × cout]`,
//! with the epilogue `y = relu?(acc + bias[c] + residual[i])` fused into the
//! microkernel's store.
//!
//! - [`conv1x1`]: 1×1 convolution, any stride, no padding; `K = cin` and a row
//!   of A is an input pixel's channel vector, read in place (stride 2 included:
//!   no gather pass).
//! - [`conv_implicit`]: any other convolution (the 7×7/2 stem, 3×3/2, any
//!   kernel, stride and padding) as implicit GEMM: `K = kh·kw·cin` in HWIO
//!   order. When `cin` splits into whole K blocks (128 channels or more:
//!   ResNet50's 3×3 layers), each K block lies inside one kernel tap and A's
//!   rows are read in place, a row of zeros standing for the padding. With
//!   fewer channels (the stem's 3) and the whole K in one block, the AVX-512,
//!   AVX2 and NEON kernels read each row in place as `kh` runs of `kw·cin`
//!   floats from a copy of the input with its padding written out
//!   (`ASource::Padded`, the copy at the front of scratch); the scalar one
//!   gathers im2col rows on the fly, one `MC × KC` block at a time, into the
//!   caller's scratch, with zeros for the padding.
//!
//! Both take B packed once by [`pack_b`] (ISA-neutral 16-column panels, see
//! [`pack`]) and run the BLIS-style loop nest of `loops.rs` over one
//! register-blocked microkernel per ISA:
//!
//! | ISA | file | tile (MR×NR) | KC | MC |
//! |-----|------|--------------|----|----|
//! | scalar | `scalar.rs` | 4×16 | 256 | 128 |
//! | AVX2+FMA | `avx2.rs` | 6×16 | 256 (K ≤ 512 in one block) | 144 |
//! | AVX-512F | `avx512.rs` | 8×32 (8×16 for an odd last panel): Winograd's products, odd last panels | 512 (192 in Winograd's products) | 192 |
//! | AVX-512F, wide | `avx512_wide.rs` | 12×32, k loop in assembly: the loop nest's kernel (1×1, implicit GEMM, stem); A's values embedded in the FMAs where 512-bit FMAs run at the 256-bit rate (Zen 4), broadcast into registers where they run at full width ([`peak::avx512_full_width`]); odd last panels on the 8×32 one | 512 | 192 |
//! | AVX-512F, tall | `avx512.rs` | 16×16, Winograd's products of 9+ rows where 512-bit FMAs run at the 256-bit rate ([`peak::avx512_full_width`]) | 256 | – |
//! | NEON | `neon.rs` | 6×16 | 256 | 144 |
//!
//! Rows of A are strips of balanced height `1..=MR` (49 rows → 4×6 + 5×5), so
//! small M wastes no lanes. The microkernels unroll K by 4, prefetch C lines
//! (AVX2/NEON: their own C tile and residual rows before the k loop;
//! AVX-512: the loop nest's next tile's C and residual rows, all asked for
//! by the middle of the k loop, see `loops::GroupPrefetch`), and prefetch
//! the next B micro-panel: a share per strip into L2 (small-M layers stream
//! B from L3/DRAM) and (AVX2) the whole panel into L1 in the last strip. In a
//! 1×1 layer's first column tile of each `ic` block, where A's rows come
//! from L3, the AVX-512 kernel also pulls the next strip's rows into L2
//! (`loops::GroupPrefetch`). The loop nest itself prefetches nothing: it
//! used to pull the next A block into L2 a share per tile, which the
//! same-process A/B on Zen 4 measured 2–6 % slower on every 56×56 and 28×28
//! 1×1 layer (AVX-512 and AVX2) once the kernels prefetched their own B and C. A residual may be the output's own contents
//! ([`Epilogue::residual_in_output`]): a bottleneck's last 1×1 adds its
//! shortcut in place.
//!
//! Work is a grid of tasks over rows × column tiles, chosen from the shape and
//! `threads` only (about one task per thread: `loops::split`), run by
//! `threads` workers that each own one slice of scratch
//! (see [`crate::par`]). The K reduction is never split and its blocking
//! depends on K only, so the result is bit-identical for a given ISA whatever
//! the thread count and the scheduling. Nothing is allocated.

/// Calls `$kernel::<MR, $seg>($t)` with the instance for the tile's rows
/// (`$t.mr`, `1..=6`): the dispatch of the 6-row kernels (`avx2.rs`,
/// `neon.rs`), which are generic over their row count and whether they read
/// A rows in runs.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_macros))]
macro_rules! by_mr6 {
    ($kernel:ident, $t:expr, $seg:literal) => {
        match $t.mr {
            6 => $kernel::<6, $seg>($t),
            5 => $kernel::<5, $seg>($t),
            4 => $kernel::<4, $seg>($t),
            3 => $kernel::<3, $seg>($t),
            2 => $kernel::<2, $seg>($t),
            1 => $kernel::<1, $seg>($t),
            mr => unreachable!("{}::{}: mr {mr} out of 1..=6", module_path!(), stringify!($kernel)),
        }
    };
}

pub(crate) mod loops;
pub mod pack;
pub mod peak;
mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_wide;
#[cfg(target_arch = "aarch64")]
mod neon;

pub use pack::{pack_b, packed_b_len, PANEL};

use crate::buffer::round_up_floats;
use crate::isa::Isa;
use crate::shape::{ConvShape, Epilogue, PoolShape};
pub(crate) use loops::RowsProduct;
use loops::{ASource, Blocking, Problem};

/// The blocking of every microkernel compiled in (scratch must suit any ISA).
fn blockings() -> impl Iterator<Item = Blocking> {
    let all = [
        Some(Blocking::of::<scalar::Scalar>()),
        #[cfg(target_arch = "x86_64")]
        Some(Blocking::of::<avx2::Avx2>()),
        #[cfg(target_arch = "x86_64")]
        Some(Blocking::of::<avx512::Avx512>()),
        #[cfg(target_arch = "x86_64")]
        Some(Blocking::of::<avx512_wide::Avx512Wide<false>>()),
        #[cfg(target_arch = "aarch64")]
        Some(Blocking::of::<neon::Neon>()),
    ];
    all.into_iter().flatten()
}

fn gemm_dims(shape: &ConvShape) -> (usize, usize, usize) {
    (shape.batch * shape.out_h() * shape.out_w(), shape.kh * shape.kw * shape.in_c, shape.out_c)
}

fn scratch_for(shape: &ConvShape, threads: usize, im2col: bool) -> usize {
    if !shape.is_valid() {
        return 0;
    }
    let (m, k, n) = gemm_dims(shape);
    blockings()
        .map(|bl| loops::scratch_len(bl, m, k, n, threads, loops::copies_a(shape, im2col, bl.kc)))
        .max()
        .unwrap_or(0)
}

/// Scratch floats [`conv1x1`] needs: none when A is read in place, an A
/// block per task when in-place rows would conflict in the caches (rows a
/// multiple of 4 KiB apart: `cin · stride_w` a multiple of 1024 floats).
pub fn conv1x1_scratch_len(shape: &ConvShape, threads: usize) -> usize {
    scratch_for(shape, threads, false)
}

/// Scratch floats [`conv_implicit`] needs for `threads` tasks (one im2col
/// block per task; none when its taps are read in place; the padded input
/// when an ISA reads its rows in runs from it), for any ISA.
pub fn implicit_scratch_len(shape: &ConvShape, threads: usize) -> usize {
    let padded =
        if shape.is_valid() && pack::reads_padded(shape) { round_up_floats(pack::padded_len(shape)) } else { 0 };
    scratch_for(shape, threads, true).max(padded)
}

/// Validates the arguments shared by both convolutions.
#[allow(clippy::too_many_arguments)]
fn check(
    what: &str,
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    [output_len, want_output]: [usize; 2],
    scratch: &[f32],
    need_scratch: usize,
) {
    assert!(shape.is_valid(), "{what}: invalid convolution shape {shape:?}");
    assert!(isa.is_supported(), "{what}: ISA {isa} not supported by this CPU");
    let (_, k, n) = gemm_dims(shape);
    assert_eq!(input.len(), shape.input_len(), "{what}: input length");
    assert_eq!(output_len, want_output, "{what}: output length");
    assert!(
        packed.len() >= packed_b_len(k, n),
        "{what}: packed weights hold {} floats, need packed_b_len({k}, {n}) = {}",
        packed.len(),
        packed_b_len(k, n)
    );
    ep.check(shape, what);
    assert!(scratch.len() >= need_scratch, "{what}: scratch holds {} floats, need {need_scratch}", scratch.len());
}

/// `$body` with the type `$u` bound to the GEMM microkernel of `$isa` (the
/// scalar one for any ISA without a kernel on this architecture): the one
/// ISA dispatch of the convolutions' loop nests.
macro_rules! with_microkernel {
    ($isa:expr, $u:ident => $body:expr) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                type $u = avx2::Avx2;
                $body
            }
            // The 12×32 kernel: with A's values embedded in its FMAs where
            // 512-bit FMAs run at the 256-bit rate, broadcast into registers
            // where they run at full width (each measured there; see
            // `avx512_wide`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if !peak::avx512_full_width() => {
                type $u = avx512_wide::Avx512Wide<false>;
                $body
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                type $u = avx512_wide::Avx512Wide<true>;
                $body
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                type $u = neon::Neon;
                $body
            }
            _ => {
                type $u = scalar::Scalar;
                $body
            }
        }
    };
}

/// Runs `p` on the microkernel of `isa` (already checked to be supported).
fn dispatch(isa: Isa, p: &Problem, output: &mut [f32], scratch: &mut [f32], threads: usize) {
    // SAFETY: `check` validated every length against the shape and the
    // scratch against `scratch_len` (the maximum over all kernels), and
    // `isa.is_supported()` for the SIMD kernels.
    with_microkernel!(isa, U => unsafe { loops::run::<U>(p, output, scratch, threads) })
}

/// `p` (`C[m × n] = A[m × k] · B[k × n]`) on the calling thread with the
/// GEMM microkernel of `isa` (Winograd's per-position products; see
/// [`loops::RowsProduct`] for the layouts).
///
/// # Safety
/// `isa` is supported by this CPU; `p.a` is readable for `m` rows of `k`
/// floats at stride `lda`, `p.b` for `ceil(n / 16)` packed panels of `k ×
/// 16`, `p.c` writable for `m` rows of `n` floats at stride `ldc`.
pub(crate) unsafe fn gemm_rows(isa: Isa, p: &RowsProduct) {
    // SAFETY (all arms): forwarded caller contract.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { loops::gemm_rows::<avx2::Avx2>(p) },
        // More rows than one 8×32 strip, on a CPU whose 512-bit FMAs run
        // at the 256-bit rate: the tall kernel reads B once (see
        // `avx512::Avx512Tall` for when it pays).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if p.m > <avx512::Avx512 as loops::Microkernel>::MR && !peak::avx512_full_width() => unsafe {
            loops::gemm_rows_tall::<avx512::Avx512Tall>(p)
        },
        // Two full-width FMA pipes: the 12×32 register form, whose strips
        // of V rows (one stride apart) take its strided loop. Same process,
        // alternated inference by inference against the 8×32 kernel (2-vCPU
        // Xeon, 2026-12-06, 40 pairs, bit-identical): v1.5's Winograd layers
        // 0.91–0.96× their time at one thread, 0.91–0.97× at two, 0.89–0.93×
        // at batch 8; v1's 0.95–0.96× and 0.96–0.97×.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if peak::avx512_full_width() => unsafe { loops::gemm_rows::<avx512_wide::Avx512Wide<true>>(p) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { loops::gemm_rows::<avx512::Avx512>(p) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { loops::gemm_rows::<neon::Neon>(p) },
        _ => unsafe { loops::gemm_rows::<scalar::Scalar>(p) },
    }
}

/// 1×1 convolution (any stride, no padding) with a fused epilogue.
///
/// `input` NHWC (`shape.input_len()`), `packed` from [`pack_b`]`(cin, cout, ..)`
/// (at least `packed_b_len(cin, cout)` floats), `output` NHWC; `scratch` at
/// least [`conv1x1_scratch_len`] floats. Runs on `threads` workers of the
/// current rayon pool, or of the thread team ([`crate::par::with_team`]) when
/// called from its owner thread.
///
/// # Panics
/// If the shape is not a valid unpadded 1×1 convolution, a length does not
/// match, or `isa` is not supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub fn conv1x1(
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    assert!(
        shape.kh == 1
            && shape.kw == 1
            && shape.pad_top == 0
            && shape.pad_left == 0
            && shape.pad_bottom == 0
            && shape.pad_right == 0,
        "conv1x1: needs a 1×1 kernel without padding, got {shape:?}"
    );
    let need = conv1x1_scratch_len(shape, threads);
    check("conv1x1", isa, shape, input, packed, ep, [output.len(), shape.output_len()], scratch, need);
    let (m, k, n) = gemm_dims(shape);
    let a =
        if loops::packs_pixels(shape) { ASource::PackedPixels(shape, input) } else { ASource::Pixels(shape, input) };
    let p = Problem { m, k, n, a, b: packed, ep };
    dispatch(isa, &p, output, scratch, threads);
}

/// Any convolution (kernel size, stride, padding) as implicit GEMM with a
/// fused epilogue: `K = kh·kw·cin`, weights packed by [`pack_b`] from the HWIO
/// tensor seen as the row-major `[kh·kw·cin × cout]` matrix.
///
/// `scratch` at least [`implicit_scratch_len`] floats; otherwise as [`conv1x1`].
///
/// # Panics
/// If the shape is invalid, a length does not match, or `isa` is not
/// supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub fn conv_implicit(
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    let need = implicit_scratch_len(shape, threads);
    check("conv_implicit", isa, shape, input, packed, ep, [output.len(), shape.output_len()], scratch, need);
    with_implicit_problem(isa, shape, input, packed, ep, scratch, threads, |p, rest| {
        dispatch(isa, p, output, rest, threads)
    });
}

/// Calls `run` with the implicit GEMM problem of `shape` and the scratch
/// left for its tasks: on a kernel that reads A in runs, after writing the
/// input with its padding out at the front of `scratch` (one padded row per
/// task; see [`implicit_scratch_len`]).
#[allow(clippy::too_many_arguments)]
fn with_implicit_problem(
    isa: Isa,
    shape: &ConvShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    scratch: &mut [f32],
    threads: usize,
    run: impl FnOnce(&Problem, &mut [f32]),
) {
    let (m, k, n) = gemm_dims(shape);
    if takes_runs(isa, k) && pack::reads_padded(shape) {
        let len = pack::padded_len(shape);
        let (padded, rest) = scratch.split_at_mut(round_up_floats(len));
        let padded = &mut padded[..len];
        crate::par::for_each_chunk(padded, pack::padded_row_len(shape), threads, |i, row| {
            pack::pad_row(shape, input, i, row)
        });
        run(&Problem { m, k, n, a: ASource::Padded(shape, padded), b: packed, ep }, rest);
    } else {
        run(&Problem { m, k, n, a: ASource::Im2col(shape, input), b: packed, ep }, scratch);
    }
}

/// Whether [`conv_implicit_maxpool`] runs `shape` followed by `pool`: a
/// 3×3/2 max-pool with padding 1 over the convolution's whole output, as
/// ResNet50's stem has (7×7/2 convolution, ReLU, 3×3/2 max-pool).
pub fn fuses_maxpool(shape: &ConvShape, pool: &PoolShape) -> bool {
    shape.is_valid()
        && (pool.k, pool.stride, pool.pad) == (3, 2, 1)
        && (pool.batch, pool.in_h, pool.in_w, pool.c) == (shape.batch, shape.out_h(), shape.out_w(), shape.out_c)
}

/// Scratch floats [`conv_implicit_maxpool`] needs (0 unless
/// [`fuses_maxpool`]): the padded input where the kernel reads one, and per
/// worker a ring of four output rows and one GEMM task's scratch.
pub fn implicit_maxpool_scratch_len(shape: &ConvShape, pool: &PoolShape, threads: usize) -> usize {
    if !fuses_maxpool(shape, pool) {
        return 0;
    }
    let padded = if pack::reads_padded(shape) { round_up_floats(pack::padded_len(shape)) } else { 0 };
    let (_, k, n) = gemm_dims(shape);
    let worker = blockings()
        .map(|bl| loops::maxpool_worker_len(bl, shape.out_w(), k, n, loops::copies_a(shape, true, bl.kc)))
        .max()
        .unwrap_or(0);
    padded + threads.max(1) * worker
}

/// [`conv_implicit`] followed by the max-pool `pool` over its output, in one
/// pass: `output` is the pool's (`pool.output_len()` floats) and the
/// convolution's output is never written to memory — each worker keeps the
/// few rows its pool rows need in its scratch (see `loops::run_maxpool`).
/// Saves writing and reading back the convolution's output (ResNet50's stem:
/// 3.2 MB per image). The results are those of `conv_implicit` then
/// [`crate::pool::max_pool2d`], bit for bit.
///
/// `scratch` at least [`implicit_maxpool_scratch_len`] floats.
///
/// # Panics
/// If not [`fuses_maxpool`]`(shape, pool)`, the epilogue adds a residual, or
/// as [`conv_implicit`].
#[allow(clippy::too_many_arguments)]
pub fn conv_implicit_maxpool(
    isa: Isa,
    shape: &ConvShape,
    pool: &PoolShape,
    input: &[f32],
    packed: &[f32],
    ep: &Epilogue,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    assert!(fuses_maxpool(shape, pool), "conv_implicit_maxpool: {pool:?} is not a 3×3/2 pool over {shape:?}");
    assert!(
        ep.residual.is_none() && !ep.residual_in_output,
        "conv_implicit_maxpool: a residual needs the convolution's output"
    );
    let need = implicit_maxpool_scratch_len(shape, pool, threads);
    check("conv_implicit_maxpool", isa, shape, input, packed, ep, [output.len(), pool.output_len()], scratch, need);
    with_implicit_problem(isa, shape, input, packed, ep, scratch, threads, |p, rest| {
        // SAFETY: `check` validated every length against the shape,
        // `fuses_maxpool` the pool against the convolution's output, the
        // scratch against `implicit_maxpool_scratch_len` (the maximum over
        // all kernels), and `isa.is_supported()`.
        with_microkernel!(isa, U => unsafe { loops::run_maxpool::<U>(p, pool, isa, output, rest, threads) })
    });
}

/// Whether `isa`'s microkernel (the one the loop nest runs,
/// `with_microkernel!`) reads A rows in runs
/// ([`loops::Microkernel::SEGMENTS`]), as [`ASource::Padded`] needs, for a
/// reduction of `k`: a padded input is one K block, so only where `k` is one
/// block of that kernel anyway ([`loops::Blocking::k_blocks`]; the stem's
/// 147 on AVX2, AVX-512 and NEON; the scalar kernel gathers).
fn takes_runs(isa: Isa, k: usize) -> bool {
    with_microkernel!(isa, U => <U as loops::Microkernel>::SEGMENTS && Blocking::of::<U>().k_blocks(k).0 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// A random convolution for the loop-nest tests: 1×1 mostly, 3×3, or
    /// 7×7 with few channels (the stem's way); every fourth `case` big (up to
    /// 20 wide, 1100 channels for 1×1, 700 otherwise); batch 1–2, stride
    /// 1–2, any padding, the input at least as large as the kernel needs.
    fn random_conv(case: usize, pick: &mut impl FnMut(usize) -> usize) -> ConvShape {
        let k = [1, 1, 1, 3, 7][pick(5)];
        let big = case.is_multiple_of(4);
        let hw = if big { 1 + pick(20) } else { 1 + pick(8) };
        let cin = if k == 7 {
            1 + pick(8)
        } else if big {
            1 + pick(if k == 1 { 1100 } else { 700 })
        } else {
            1 + pick(70)
        };
        let cout = 1 + pick(if big { 100 } else { 70 });
        let stride = 1 + pick(2);
        let pad = if k == 1 && pick(2) == 0 { 0 } else { pick(k) };
        let mut s = ConvShape::square(1 + pick(2), hw, hw, cin, cout, k, stride, pad);
        s.in_h = s.in_h.max(k.saturating_sub(2 * pad)).max(1);
        s.in_w = s.in_h;
        s
    }

    /// Rayon pools of 1, 2 and 3 threads (`pools[threads - 1]`).
    fn pools_of_1_to_3_threads() -> Vec<rayon::ThreadPool> {
        (1..=3).map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap()).collect()
    }

    /// Random input, HWIO weights (also packed), bias and residual for a
    /// loop-nest test case, from one LCG stream seeded by `seed`.
    struct CaseData {
        input: Vec<f32>,
        w: Vec<f32>,
        packed: Vec<f32>,
        bias: Vec<f32>,
        res: Vec<f32>,
    }

    impl CaseData {
        fn new(s: &ConvShape, mut seed: u64) -> Self {
            let input: Vec<f32> = (0..s.input_len()).map(|_| lcg(&mut seed)).collect();
            let w: Vec<f32> = (0..s.weights_len()).map(|_| lcg(&mut seed)).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| lcg(&mut seed)).collect();
            let res: Vec<f32> = (0..s.output_len()).map(|_| lcg(&mut seed)).collect();
            let (_, kk, n) = gemm_dims(s);
            let mut packed = vec![0.0; packed_b_len(kk, n)];
            pack_b(kk, n, &w, &mut packed);
            CaseData { input, w, packed, bias, res }
        }

        /// Case `case`'s epilogue: the bias on even cases, the residual on
        /// every third, ReLU on three of five.
        fn epilogue(&self, case: usize) -> Epilogue<'_> {
            Epilogue {
                bias: case.is_multiple_of(2).then_some(&self.bias[..]),
                residual: case.is_multiple_of(3).then_some(&self.res[..]),
                relu: case % 5 < 3,
                ..Default::default()
            }
        }

        /// The scalar reference's output for `ep`.
        fn reference(&self, s: &ConvShape, ep: &Epilogue) -> Vec<f32> {
            let mut want = vec![0.0; s.output_len()];
            reference::conv2d(s, &self.input, &self.w, ep, &mut want);
            want
        }
    }

    /// The AVX-512 kernel body on emulated 16-lane vectors (the same code the
    /// zmm path runs), through the real loop nest: NR = 32 tiles, odd panel
    /// counts, partial columns, M not a multiple of 8, several K blocks (of
    /// up to 512: 1×1 layers with up to 1100 channels) and MC blocks of 192,
    /// every epilogue, 1–3 tasks, 1×1 and implicit; implicit ones with few
    /// channels also read in runs from a padded input (`ASource::Padded`).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_body_emulated_matches_reference() {
        use avx512::emulated::Avx512Emu;
        let mut seed = 99u64;
        let mut pick = |n: usize| (lcg(&mut seed).abs() * n as f32) as usize % n;
        let pools = pools_of_1_to_3_threads();
        let mut padded_cases = 0;
        for case in 0..120 {
            let s = random_conv(case, &mut pick);
            let (k, pad) = (s.kh, s.pad_top);
            let d = CaseData::new(&s, case as u64 * 7919 + 1);
            let (input, packed) = (&d.input[..], &d.packed[..]);
            let ep = d.epilogue(case);
            let want = d.reference(&s, &ep);
            let (m, kk, n) = gemm_dims(&s);
            let one = k == 1 && pad == 0;
            let a = if one { ASource::Pixels(&s, input) } else { ASource::Im2col(&s, input) };
            let p = Problem { m, k: kk, n, a, b: packed, ep: &ep };
            let mut first: Option<Vec<f32>> = None;
            for threads in 1..=3 {
                let mut got = vec![f32::NAN; s.output_len()];
                let mut scratch = vec![f32::NAN; scratch_for(&s, threads, !one)];
                // SAFETY: lengths as validated by `check` (built to match above);
                // the emulated kernel needs no CPU feature.
                pools[threads - 1].install(|| unsafe { loops::run::<Avx512Emu>(&p, &mut got, &mut scratch, threads) });
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 2e-5 * (kk as f32).sqrt() * (1.0 + w.abs()),
                        "{s:?} t{threads} [{i}]: {g} vs {w}"
                    );
                }
                // Read in runs from the padded input: the same sums bit for
                // bit (the same FMA chain over k, zeros included).
                if !one && pack::reads_padded(&s) {
                    let padded = pack::padded_input(&s, input);
                    let pp = Problem { a: ASource::Padded(&s, &padded), ..p };
                    let mut runs = vec![f32::NAN; s.output_len()];
                    // SAFETY: as above; Padded needs no scratch.
                    pools[threads - 1].install(|| unsafe { loops::run::<Avx512Emu>(&pp, &mut runs, &mut [], threads) });
                    assert!(runs.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "{s:?} t{threads}: runs");
                    padded_cases += 1;
                }
                match &first {
                    None => first = Some(got),
                    Some(f) => assert!(f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "{s:?}: threads"),
                }
            }
        }
        assert!(padded_cases > 30, "only {padded_cases} cases read a padded input");
    }

    /// The AVX2 kernel reading implicit GEMMs with few channels in runs
    /// from a padded input (`ASource::Padded`, the stem's way) against its
    /// own im2col gather, through the real loop nest: bit for bit (the same
    /// FMA chain over k, the padding's zeros included), and against the
    /// reference; every epilogue, 1–3 threads, batch 1–2, K up to 512 (one
    /// K block, where `takes_runs` picks runs) and above (one block of up to
    /// 3·KC: correct too, though the gather is picked there).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_reads_padded_runs_bit_for_bit_as_its_gather() {
        if !Isa::under_test().contains(&Isa::Avx2) {
            return;
        }
        let mut seed = 4242u64;
        let mut pick = |n: usize| (lcg(&mut seed).abs() * n as f32) as usize % n;
        let pools = pools_of_1_to_3_threads();
        let mut cases = 0;
        for case in 0..60 {
            let k = [3, 5, 7][pick(3)];
            let cin = 1 + pick(if case % 4 == 0 { 15 } else { 8 });
            let hw = k + pick(14);
            let mut s = ConvShape::square(1 + pick(2), hw, hw, cin, 1 + pick(70), k, 1 + pick(2), pick(k));
            s.pad_right = pick(k);
            if !pack::reads_padded(&s) {
                continue;
            }
            cases += 1;
            let d = CaseData::new(&s, case as u64 * 6151 + 11);
            let (input, packed) = (&d.input[..], &d.packed[..]);
            let ep = d.epilogue(case);
            let want = d.reference(&s, &ep);
            let (m, kk, n) = gemm_dims(&s);
            let padded = pack::padded_input(&s, input);
            for threads in 1..=3 {
                let mut outs = Vec::new();
                for a in [ASource::Im2col(&s, input), ASource::Padded(&s, &padded)] {
                    let p = Problem { m, k: kk, n, a, b: packed, ep: &ep };
                    let mut got = vec![f32::NAN; s.output_len()];
                    let mut scratch = vec![f32::NAN; scratch_for(&s, threads, true)];
                    // SAFETY: lengths as `check` validates them (built to
                    // match above); AVX2+FMA checked above; Padded reads no
                    // scratch.
                    pools[threads - 1]
                        .install(|| unsafe { loops::run::<avx2::Avx2>(&p, &mut got, &mut scratch, threads) });
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 2e-5 * (kk as f32).sqrt() * (1.0 + w.abs()),
                            "{s:?} t{threads} [{i}]: {g} vs {w}"
                        );
                    }
                    outs.push(got);
                }
                assert!(
                    outs[0].iter().zip(&outs[1]).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{s:?} t{threads}: runs and gather differ"
                );
            }
        }
        assert!(cases > 30, "only {cases} cases read a padded input");
    }

    /// The 12×32 AVX-512 kernel (assembly k loop, both forms: A's values
    /// embedded in the FMAs and broadcast into registers) against the 8×32
    /// one through the real loop nest, where the CPU has AVX-512 (whichever
    /// `dispatch` picks here): bit for bit — both are one FMA chain
    /// over k per output element, with the same start (bias, C) and
    /// epilogue — on 1×1 (in place, packed rows, strided), implicit and
    /// padded-run (the stem's way) problems, every epilogue including a
    /// residual in the output, 1–3 threads; and against the reference.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_wide_kernel_matches_the_8x32_kernel_bit_for_bit() {
        if !Isa::under_test().contains(&Isa::Avx512) {
            return;
        }
        let mut seed = 2024u64;
        let mut pick = |n: usize| (lcg(&mut seed).abs() * n as f32) as usize % n;
        let pools = pools_of_1_to_3_threads();
        let (mut runs_cases, mut packed_cases) = (0, 0);
        for case in 0..150 {
            let mut s = random_conv(case, &mut pick);
            let (k, pad) = (s.kh, s.pad_top);
            if case % 10 == 1 && k != 7 {
                // Rows 4 KiB apart: copied into scratch on small-way L1s.
                s.in_c = 1024;
            }
            let mut rng = case as u64 * 104729 + 3;
            let input: Vec<f32> = (0..s.input_len()).map(|_| lcg(&mut rng)).collect();
            let w: Vec<f32> = (0..s.weights_len()).map(|_| lcg(&mut rng)).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| lcg(&mut rng)).collect();
            let res: Vec<f32> = (0..s.output_len()).map(|_| lcg(&mut rng)).collect();
            let in_output = case % 7 == 3;
            let ep = Epilogue {
                bias: (case % 2 == 0).then_some(&bias[..]),
                residual: (case % 3 == 0 && !in_output).then_some(&res[..]),
                residual_in_output: in_output,
                relu: case % 5 < 3,
                ..Default::default()
            };
            let mut want = vec![0.0; s.output_len()];
            let ref_ep =
                Epilogue { residual: in_output.then_some(&res[..]).or(ep.residual), residual_in_output: false, ..ep };
            reference::conv2d(&s, &input, &w, &ref_ep, &mut want);
            let (m, kk, n) = gemm_dims(&s);
            let mut packed = vec![0.0; packed_b_len(kk, n)];
            pack_b(kk, n, &w, &mut packed);
            let one = k == 1 && pad == 0;
            let padded = if !one && pack::reads_padded(&s) { pack::padded_input(&s, &input) } else { Vec::new() };
            let sources: Vec<ASource> = if one {
                packed_cases += 1;
                vec![ASource::Pixels(&s, &input), ASource::PackedPixels(&s, &input)]
            } else if pack::reads_padded(&s) {
                runs_cases += 1;
                vec![ASource::Im2col(&s, &input), ASource::Padded(&s, &padded)]
            } else {
                vec![ASource::Im2col(&s, &input)]
            };
            for a in sources {
                let p = Problem { m, k: kk, n, a, b: &packed, ep: &ep };
                for threads in 1..=3 {
                    let mut outs = Vec::new();
                    for kernel in 0..3 {
                        let mut got = if in_output { res.clone() } else { vec![f32::NAN; s.output_len()] };
                        // Room for copied A blocks whatever the source.
                        let len = blockings().map(|bl| loops::scratch_len(bl, m, kk, n, threads, true)).max();
                        let mut scratch = vec![f32::NAN; len.unwrap_or(0).max(scratch_for(&s, threads, !one))];
                        // SAFETY: lengths as `check` validates them (built to
                        // match above, scratch with room for copies); AVX-512F
                        // checked above.
                        pools[threads - 1].install(|| unsafe {
                            match kernel {
                                0 => loops::run::<avx512::Avx512>(&p, &mut got, &mut scratch, threads),
                                1 => loops::run::<avx512_wide::Avx512Wide<false>>(&p, &mut got, &mut scratch, threads),
                                _ => loops::run::<avx512_wide::Avx512Wide<true>>(&p, &mut got, &mut scratch, threads),
                            }
                        });
                        outs.push(got);
                    }
                    let narrow = &outs[0];
                    for (form, wide) in ["embedded", "register"].iter().zip(&outs[1..]) {
                        for (i, (g, w)) in wide.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 2e-5 * (kk as f32).sqrt() * (1.0 + w.abs()),
                                "{s:?} t{threads} {form} [{i}]: {g} vs {w}"
                            );
                        }
                        assert!(
                            wide.iter().zip(narrow).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{s:?} t{threads}: 12×32 ({form} broadcasts) and 8×32 differ"
                        );
                    }
                }
            }
        }
        assert!(runs_cases > 15 && packed_cases > 40, "{runs_cases} padded-run and {packed_cases} 1×1 cases");
    }

    /// The tall AVX-512 kernel body on emulated lanes, through its loop
    /// (`gemm_rows_tall`): every row count 1..=40 (strips of 1..=16 rows),
    /// partial last panels, one to three K blocks, padded strides, a
    /// `b_after` to prefetch. Against the 8×32 kernel's `gemm_rows` on the
    /// same emulated lanes, bit for bit (both are one FMA chain over k per
    /// element), and against an f64 sum.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_tall_body_emulated_matches_gemm_rows() {
        use avx512::emulated::{Avx512Emu, Avx512TallEmu};
        // SAFETY: `products_match` passes products whose A, B and C
        // extents meet the kernels' contract; the emulated kernels need no
        // CPU feature.
        products_match(
            |p| unsafe { loops::gemm_rows::<Avx512Emu>(p) },
            |p| unsafe { loops::gemm_rows_tall::<Avx512TallEmu>(p) },
        );
    }

    /// The same on the CPU's own AVX-512 (where it has it): which of the two
    /// kernels runs Winograd's products (`peak::avx512_full_width`) must
    /// never change a bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_tall_kernel_matches_gemm_rows_bit_for_bit() {
        if !Isa::Avx512.is_supported() {
            return;
        }
        // SAFETY: `products_match` passes products whose A, B and C
        // extents meet the kernels' contract; AVX-512F checked above.
        products_match(
            |p| unsafe { loops::gemm_rows::<avx512::Avx512>(p) },
            |p| unsafe { loops::gemm_rows_tall::<avx512::Avx512Tall>(p) },
        );
    }

    /// The 12×32 register-form kernel on Winograd's products (full-width
    /// cores, `gemm_rows`) against the 8×32 kernel, bit for bit: rows at one
    /// stride (its strided loop), one to three strips (one, two or four B
    /// lines per group), odd last panels (the 8×32 kernel's own 8×16
    /// instances).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_wide_rows_match_8x32_rows_bit_for_bit() {
        if !Isa::Avx512.is_supported() {
            return;
        }
        // SAFETY: `products_match` passes products whose A, B and C
        // extents meet the kernels' contract; AVX-512F checked above.
        products_match(
            |p| unsafe { loops::gemm_rows::<avx512::Avx512>(p) },
            |p| unsafe { loops::gemm_rows::<avx512_wide::Avx512Wide<true>>(p) },
        );
    }

    /// Runs `rows` (the 8×32 kernel's `gemm_rows`, the reference) and
    /// `other` (the tall kernel's loop, or the 12×32 kernel's `gemm_rows`) on
    /// random products (see the tests above) and compares them bit for bit,
    /// and with an f64 sum. Every product it
    /// passes has A readable for `m` rows of `lda ≥ k` floats, B for its
    /// `ceil(n / 16)` panels of `k × 16`, C writable for `m` rows of
    /// `ldc ≥ n`: what `gemm_rows` and `gemm_rows_tall` ask.
    #[cfg(target_arch = "x86_64")]
    fn products_match(rows: impl Fn(&RowsProduct), other: impl Fn(&RowsProduct)) {
        let mut seed = 5u64;
        let mut pick = |n: usize| (lcg(&mut seed).abs() * n as f32) as usize % n;
        for m in 1..=40 {
            let k = [1, 5, 64, 256, 300, 385, 700][pick(7)];
            let n = 1 + pick(70);
            let (lda, ldc) = (k + pick(20), n + pick(20));
            let panels = n.div_ceil(pack::PANEL);
            let mut rng = m as u64 * 31 + 7;
            let a: Vec<f32> = (0..m * lda).map(|_| lcg(&mut rng)).collect();
            let b: Vec<f32> = (0..panels * k * pack::PANEL).map(|_| lcg(&mut rng)).collect();
            let after = vec![0.0f32; k * pack::PANEL];
            let mut want = vec![f32::NAN; m * ldc];
            let mut got = vec![f32::NAN; m * ldc];
            let (a_ptr, b_ptr, after) = (a.as_ptr(), b.as_ptr(), after.as_ptr());
            let at = |c: *mut f32| RowsProduct { m, k, a: a_ptr, lda, b: b_ptr, n, c, ldc, b_after: after };
            rows(&at(want.as_mut_ptr()));
            other(&at(got.as_mut_ptr()));
            for r in 0..m {
                for j in 0..ldc {
                    let (g, w) = (got[r * ldc + j], want[r * ldc + j]);
                    if j >= n {
                        assert!(g.is_nan(), "m {m} k {k} n {n}: wrote C ({r},{j}) past n");
                        continue;
                    }
                    assert_eq!(g.to_bits(), w.to_bits(), "m {m} k {k} n {n} ({r},{j}): {g} vs {w}");
                    let (p, l) = (j / pack::PANEL, j % pack::PANEL);
                    let exact: f64 =
                        (0..k).map(|x| a[r * lda + x] as f64 * b[(p * k + x) * pack::PANEL + l] as f64).sum();
                    assert!(
                        (g as f64 - exact).abs() <= 1e-5 * (k as f64).sqrt(),
                        "m {m} k {k} ({r},{j}): {g} vs {exact}"
                    );
                }
            }
        }
    }

    /// Every supported ISA against the reference on a few fixed shapes
    /// (the property tests in `tests/gemm_props.rs` cover random ones).
    #[test]
    fn fixed_shapes_match_reference() {
        let shapes = [
            ConvShape::square(1, 7, 7, 64, 48, 1, 1, 0),
            ConvShape::square(2, 9, 9, 20, 37, 1, 2, 0),
            ConvShape::square(1, 3, 3, 600, 40, 1, 1, 0),
            ConvShape::square(1, 15, 15, 3, 24, 7, 2, 3),
            ConvShape::square(2, 8, 7, 12, 33, 3, 2, 1),
        ];
        let mut seed = 1u64;
        for s in shapes {
            let input: Vec<f32> = (0..s.input_len()).map(|_| lcg(&mut seed)).collect();
            let w: Vec<f32> = (0..s.weights_len()).map(|_| lcg(&mut seed)).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| lcg(&mut seed)).collect();
            let res: Vec<f32> = (0..s.output_len()).map(|_| lcg(&mut seed)).collect();
            let ep = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true, ..Default::default() };
            let mut want = vec![0.0; s.output_len()];
            reference::conv2d(&s, &input, &w, &ep, &mut want);
            let k = s.kh * s.kw * s.in_c;
            let mut packed = vec![0.0; packed_b_len(k, s.out_c)];
            pack_b(k, s.out_c, &w, &mut packed);
            for isa in Isa::under_test() {
                for threads in [1, 2, 3] {
                    let mut got = vec![f32::NAN; s.output_len()];
                    let one = s.kh == 1 && s.kw == 1 && s.pad_top == 0;
                    if one {
                        let mut scratch = vec![0.0; conv1x1_scratch_len(&s, threads)];
                        conv1x1(isa, &s, &input, &packed, &ep, &mut got, &mut scratch, threads);
                    } else {
                        let mut scratch = vec![0.0; implicit_scratch_len(&s, threads)];
                        conv_implicit(isa, &s, &input, &packed, &ep, &mut got, &mut scratch, threads);
                    }
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{isa} t{threads} {s:?} [{i}]: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// The stem with its max-pool fused against the two steps unfused, bit
    /// for bit: every ISA, 1–3 threads (one range of pool rows each, so
    /// ranges start mid-image and recompute a shared row), batches of 1–3
    /// (a range crossing images), odd and even maps down to 1×1, ReLU or
    /// not (the pool then meets negative values), kernels that read a
    /// padded input and ones that gather im2col blocks.
    #[test]
    fn fused_maxpool_matches_conv_then_pool() {
        let mut seed = 7u64;
        let mut pick = |n: usize| (lcg(&mut seed).abs() * n as f32) as usize % n;
        let mut cases = 0;
        for case in 0..40 {
            let (k, stride, pad) = [(7, 2, 3), (3, 1, 1), (3, 2, 1), (1, 1, 0)][case % 4];
            let (h, w) = (1 + pick(40), 1 + pick(40));
            let s = ConvShape::square(1 + pick(3), h, w, 1 + pick(8), 1 + pick(70), k, stride, pad);
            if !s.is_valid() {
                continue;
            }
            let pool =
                PoolShape { batch: s.batch, in_h: s.out_h(), in_w: s.out_w(), c: s.out_c, k: 3, stride: 2, pad: 1 };
            assert!(fuses_maxpool(&s, &pool));
            let mut seed2 = case as u64 + 100;
            let input: Vec<f32> = (0..s.input_len()).map(|_| lcg(&mut seed2)).collect();
            let w: Vec<f32> = (0..s.weights_len()).map(|_| lcg(&mut seed2)).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| lcg(&mut seed2)).collect();
            let ep = Epilogue::bias_relu(&bias, case % 3 != 0);
            let kk = s.kh * s.kw * s.in_c;
            let mut packed = vec![0.0; packed_b_len(kk, s.out_c)];
            pack_b(kk, s.out_c, &w, &mut packed);
            for isa in Isa::under_test() {
                for threads in [1, 2, 3] {
                    let mut conv = vec![0.0; s.output_len()];
                    let mut scratch = vec![0.0; implicit_scratch_len(&s, threads)];
                    conv_implicit(isa, &s, &input, &packed, &ep, &mut conv, &mut scratch, threads);
                    let mut want = vec![0.0; pool.output_len()];
                    crate::pool::max_pool2d(isa, &pool, &conv, &mut want, threads);
                    let mut got = vec![f32::NAN; pool.output_len()];
                    let mut scratch = vec![f32::NAN; implicit_maxpool_scratch_len(&s, &pool, threads)];
                    conv_implicit_maxpool(isa, &s, &pool, &input, &packed, &ep, &mut got, &mut scratch, threads);
                    let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{isa} t{threads} {s:?}: fused max-pool differs from conv then pool");
                    cases += 1;
                }
            }
        }
        assert!(cases >= 90, "only {cases} cases ran");
    }

    #[test]
    fn fused_maxpool_takes_only_a_3x3_stride_2_pool_over_the_whole_output() {
        let s = ConvShape::square(1, 32, 32, 3, 8, 7, 2, 3);
        let pool = PoolShape { batch: 1, in_h: 16, in_w: 16, c: 8, k: 3, stride: 2, pad: 1 };
        assert!(fuses_maxpool(&s, &pool));
        assert!(!fuses_maxpool(&s, &PoolShape { k: 2, pad: 0, ..pool }));
        assert!(!fuses_maxpool(&s, &PoolShape { stride: 1, ..pool }));
        assert!(!fuses_maxpool(&s, &PoolShape { in_h: 15, ..pool }));
        assert!(!fuses_maxpool(&s, &PoolShape { c: 9, ..pool }));
        assert!(!fuses_maxpool(&s, &PoolShape { batch: 2, ..pool }));
        assert_eq!(implicit_maxpool_scratch_len(&s, &PoolShape { k: 2, ..pool }, 2), 0);
        let bias = [0.0; 8];
        let res = vec![0.0; s.output_len()];
        let ep = Epilogue { bias: Some(&bias), residual: Some(&res), ..Default::default() };
        let r = std::panic::catch_unwind(|| {
            let (input, packed) = (vec![0.0; s.input_len()], vec![0.0; packed_b_len(147, 8)]);
            let mut out = vec![0.0; pool.output_len()];
            let mut scratch = vec![0.0; implicit_maxpool_scratch_len(&s, &pool, 1)];
            conv_implicit_maxpool(Isa::Scalar, &s, &pool, &input, &packed, &ep, &mut out, &mut scratch, 1);
        });
        assert!(r.is_err(), "a residual must be refused");
    }
}

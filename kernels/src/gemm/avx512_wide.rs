//! AVX-512F 12×32 microkernel with its k loop in assembly: the kernel of the
//! 1×1, implicit-GEMM and stem loop nest wherever AVX-512 runs, in one of two
//! forms by the kind of core (below), and of Winograd's products on cores
//! with full-width FMAs (`gemm::gemm_rows`).
//!
//! Why assembly: 12 rows × 2 vectors are 24 zmm accumulators, and LLVM, left
//! the k loop in intrinsics, hoists the B loads of four k steps (8 zmm) above
//! the FMAs — 33 live vectors, so it spills accumulators after every FMA
//! (stop 40's 6×64 tile met the same). Here one `asm!` block is a group of 4
//! k steps: in the first form (written for Zen 4, stop 41) the 8 B vectors
//! of the group in zmm24–31, and every FMA takes
//! its A value as an embedded broadcast (`{1to16}`) straight from the row
//! (no broadcast register, no extra instruction), row by row. 24 + 8 = 32
//! zmm, nothing spilled; A's 12 row pointers are read from a small array
//! one row at a time, so only 5 general registers are tied up.
//!
//! Why 12 rows: the fixed cost of a tile (accumulator set-up, epilogue,
//! stores, the loop nest's bookkeeping) is spread over 1.5× the FMAs of the
//! 8×32 kernel, and B is read once per 12 rows instead of 8. A prototype of
//! this k loop (one core of a 2-vCPU Zen 4, operands in L1, bias + ReLU,
//! interleaved with the 8×32 kernel's `microkernel_probe` and the FMA probe,
//! wall-clock medians of 15) ran at 94.4 % of the FMA peak at kc 64 against
//! 84.8 %, 95.9 / 86.6 % at 128, 98.5 / 89.5 % at 256, 99.8 / 87.6 % at 512.
//! In the layers the gain is smaller — their A, C and residual lines come
//! from L2 and L3 — and the K = 64 ones gain nothing (3136×64×64 89.6 % of
//! the peak in the GEMM bench, as with 8×32). Whole network, same process,
//! alternating the two kernels inference by inference (60–100 pairs per
//! run, 14 runs over v1 and v1.5, one and two threads, 2026-12-04): whole
//! inference 0.963–1.006× the time, mean 0.985; two threads 0.963–1.000
//! (the 1×1 layers of stages 3–5 2–4 % faster there), one thread
//! 0.969–1.006. A null A/B (the same kernel on both sides) spread
//! 0.996–1.004. Zen 5 (full width) has not run the register form.
//!
//! Two forms of the k loop, one per kind of core
//! ([`super::peak::avx512_full_width`] picks in `gemm::dispatch`):
//! - `Avx512Wide<false>`, for 512-bit FMAs at the 256-bit rate (Zen 4):
//!   every FMA takes its A value as an embedded broadcast, as above (the
//!   8 B vectors of a group of 4 k steps in zmm24–31);
//! - `Avx512Wide<true>`, for two full-width FMA pipes (Intel Xeons, Zen 5):
//!   each A value is broadcast once into a register (`vbroadcastss`) for its
//!   row's two FMAs, with the B vectors of 2 k steps in zmm24–27 and the
//!   broadcasts in zmm28–31. Per FMA that is 0.58 loads instead of 1.08 —
//!   with FMAs twice as fast, the embedded form's loads bind. Measured on a
//!   2-vCPU Granite/Sapphire Rapids-class Xeon (2026-12-05; one model, the
//!   kernel switched inference by inference, 60 pairs, medians): against
//!   the 8×32 kernel the whole inference 0.977× (v1) and 0.972× (v1.5) at
//!   one thread, 0.978× and 0.977× at two, batch 8 0.974× and 0.991×; the
//!   embedded form there 1.059× (v1, one thread) and 1.063× (v1.5, two).
//!   In L1 (`microkernel_probe`, kc = 256) 80 % of the FMA peak against
//!   76–79 % for 8×32; a bare 12×32 loop of the same instructions in
//!   intrinsics, no prefetches or epilogue, reaches 94–98 % there (8×32:
//!   89–93 %), so most of what is left is the work around the k loop —
//!   which is why this form's k loop is one `asm!` loop per run with its
//!   prefetches inside ([`RegLoop`]: 0.973–0.979× the inference time of
//!   one asm block per group with the prefetches between in Rust).
//!   Where a strip's rows lie at one stride (every strip of a stride-1
//!   1×1 layer, packed A, a strided layer's strips within an output
//!   row), that loop addresses them from three bases and the stride
//!   (`wide_asm!(loop_strided)`) instead of loading each row's pointer
//!   before its broadcasts: per group of 4 k steps that is 24 fewer loads
//!   beside the 56 of A and B and the ~13 of the prefetches and their
//!   constants. A bare loop (C, in L1, no prefetches) ran as fast either
//!   way (~87 % of the FMA peak); with the loop's 9 prefetches per group
//!   the pointer form fell to 89–92 % of the FMA probe's rate and the
//!   strided one stayed at 97–98 %: the load ports are what the prefetches
//!   and pointer loads share. Measured (2-vCPU Xeon, 2026-12-05, same
//!   process, the two switched inference by inference, 40 pairs, medians,
//!   bit-identical outputs): `microkernel_probe` in L1 +3.5 to +6.5 points
//!   of the peak (kc 64 79 → 85 %, 192 89 → 93 %, 512 83 → 88 %); the
//!   1×1 layers 0.94–0.96× their time, the stem 0.94–0.98×, the whole
//!   inference 0.966× (v1) and 0.973× (v1.5) at one thread, 0.968× and
//!   0.973× at two, batch 8 0.955× and 0.974×.
//!   What is left below the FMA peak is mostly the tile's shape on such a
//!   core: [`super::peak::k_loop_probe`] (the GEMM table's "k loop alone"
//!   line) ran this loop bare at 92–93 % of the peak by medians
//!   (2026-12-06; the "94–98 %" above was a best-of figure), the kernel
//!   around it at ~86 % at kc 256 — that core loses 4–9 % of its FMA rate
//!   once a loop issues 10 or more loads per 24 FMAs, and a 12×32 tile
//!   needs 14 (a 6×64 one 10, and it measured no better, in L1 or in the
//!   network; see the performance log, stop 54).
//!
//! Everything around the k loop is the 8×32 kernel's ([`super::avx512`]):
//! the same prefetches per group (the next micro-panel into L2, the
//! next tile's C and residual lines into L1, its A rows where the loop nest
//! asks; between the groups in the embedded form, inside the asm loop in
//! the register form), the same accumulator start (bias folded in, or C) and epilogue —
//! and the same operations per output element (one FMA chain over k in
//! order), so results are bit-identical to it. Tiles of 16 or fewer columns
//! (an odd last panel) go to the 8×32 kernel, 8 rows at a time.

use std::arch::asm;
use std::arch::x86_64::*;

use super::avx512::Avx512;
use super::loops::{distinct_residual, GroupPrefetch, Microkernel, Tile};

/// Lines of the next strip's A rows asked for per group of 4 k steps
/// (where the loop nest sets `Tile::next_a`): `12·⌈kc/16⌉` lines over
/// `kc/4` groups, all of them by the end of the tile (the 8×32 kernel takes
/// 2 for its 8 rows). Same process, alternated inference by inference, one
/// and two threads, v1 and v1.5: 2 instead of 3 made the layers that use it
/// (stage 2's first 1×1 layers, `conv3_block1_1`) 0.99–1.05× of their time
/// at one thread, the network 0.992–1.006×: kept at what covers the rows.
const A_LINES_PER_GROUP: usize = 3;
// The register form's asm loop writes its A lines out: three (192 bytes).
const _: () = assert!(A_LINES_PER_GROUP == 3);

/// AVX-512F 12×32 microkernel (k loop in assembly); `BCAST_REG`: A's values
/// broadcast into registers (full-width FMA pipes) rather than embedded in
/// the FMAs (see the module comment).
pub(crate) struct Avx512Wide<const BCAST_REG: bool>;

// The assembly names zmm0–23 for the sums of 12 rows and zmm24–31 for B
// (and the broadcasts).
const _: () = assert!(<Avx512Wide<false> as Microkernel>::MR * 2 + 8 == 32);

impl<const BCAST_REG: bool> Microkernel for Avx512Wide<BCAST_REG> {
    const MR: usize = 12;
    const NR: usize = 32;
    // The 8×32 kernel's K and column blocking (see there); MC a multiple of 12.
    const KC: usize = <Avx512 as Microkernel>::KC;
    const KC_ROWS: usize = <Avx512 as Microkernel>::KC_ROWS;
    const MC: usize = 192;
    const NC: usize = <Avx512 as Microkernel>::NC;

    const SEGMENTS: bool = true;

    #[inline(always)]
    unsafe fn tile(t: &Tile) {
        if t.nr > 16 {
            // SAFETY: forwarded contract of `Microkernel::tile` (AVX-512F;
            // 1 <= mr <= 12 checked by the match; nr in 17..=32).
            unsafe { by_rows!(t.mr, wide_kernel, BCAST_REG, t) }
        } else {
            // One 16-column panel: the 8×32 kernel's 8×16 instances.
            for r0 in (0..t.mr).step_by(8) {
                let mut part = *t;
                part.mr = (t.mr - r0).min(8);
                part.a.copy_within(r0..r0 + part.mr, 0);
                part.res.copy_within(r0..r0 + part.mr, 0);
                part.c = t.c.wrapping_add(r0 * t.ldc);
                // SAFETY: rows r0.. of the caller's tile, with its pointers.
                unsafe { <Avx512 as Microkernel>::tile(&part) }
            }
        }
    }
}

/// Calls `$f::<R, $g>($t)` with the const `R` equal to `$mr` (`1..=12`).
macro_rules! by_rows {
    ($mr:expr, $f:ident, $g:expr, $t:expr) => {
        match $mr {
            1 => $f::<1, $g>($t),
            2 => $f::<2, $g>($t),
            3 => $f::<3, $g>($t),
            4 => $f::<4, $g>($t),
            5 => $f::<5, $g>($t),
            6 => $f::<6, $g>($t),
            7 => $f::<7, $g>($t),
            8 => $f::<8, $g>($t),
            9 => $f::<9, $g>($t),
            10 => $f::<10, $g>($t),
            11 => $f::<11, $g>($t),
            12 => $f::<12, $g>($t),
            mr => unreachable!("wide microkernel: mr {mr} out of 1..=12"),
        }
    };
}
use by_rows;

/// One `asm!` block of `4` k steps (A values embedded in the FMAs), `1` k
/// step, or a `loop` of groups of 4 (A values broadcast into registers,
/// with the prefetches) over the listed rows: each row
/// `[byte offset of its pointer in the row array, its two accumulator
/// registers, their indices in acc]`. Reads B at `b` (panel 0) and `b + bn`
/// bytes (panel 1), A at `row pointer + k` bytes; advances `b` and `k` past
/// the steps.
macro_rules! wide_asm {
    (4; $acc:ident, $a:expr, $b:expr, $bn:expr, $k:expr; $([$off:tt $z0:tt $z1:tt $i0:tt $i1:tt])+) => {
        wide_asm!(@asm $acc, $b, $bn; $([$z0 $z1 $i0 $i1])+; [
            "vmovups zmm24, [{b}]",
            "vmovups zmm25, [{b} + {bn}]",
            "vmovups zmm26, [{b} + 64]",
            "vmovups zmm27, [{b} + {bn} + 64]",
            "vmovups zmm28, [{b} + 128]",
            "vmovups zmm29, [{b} + {bn} + 128]",
            "vmovups zmm30, [{b} + 192]",
            "vmovups zmm31, [{b} + {bn} + 192]",
            $(
                concat!("mov {t}, [{a} + ", $off, "]"),
                concat!("vfmadd231ps ", $z0, ", zmm24, dword ptr [{t} + {k}]{{1to16}}"),
                concat!("vfmadd231ps ", $z1, ", zmm25, dword ptr [{t} + {k}]{{1to16}}"),
                concat!("vfmadd231ps ", $z0, ", zmm26, dword ptr [{t} + {k} + 4]{{1to16}}"),
                concat!("vfmadd231ps ", $z1, ", zmm27, dword ptr [{t} + {k} + 4]{{1to16}}"),
                concat!("vfmadd231ps ", $z0, ", zmm28, dword ptr [{t} + {k} + 8]{{1to16}}"),
                concat!("vfmadd231ps ", $z1, ", zmm29, dword ptr [{t} + {k} + 8]{{1to16}}"),
                concat!("vfmadd231ps ", $z0, ", zmm30, dword ptr [{t} + {k} + 12]{{1to16}}"),
                concat!("vfmadd231ps ", $z1, ", zmm31, dword ptr [{t} + {k} + 12]{{1to16}}"),
            )+
            "add {b}, 256",
            "add {k}, 16",
        ]
            a = in(reg) $a,
            k = inout(reg) $k,
        )
    };
    // Groups of 4 k steps in one loop, A's values broadcast into
    // registers (the register form), each group preceded by its
    // prefetches (see `RegLoop`), for rows at any addresses: each row's
    // pointer loaded from `{a}` before its broadcasts, `{k}` bytes in.
    (loop; $acc:ident, $a:expr, $b:expr, $bn:expr, $k:expr, $n:expr, $h:expr, $lfx:expr, $cp:expr, $crows:expr, $ap:expr, $ag:expr; $([$off:tt $z0:tt $z1:tt $i0:tt $i1:tt])+) => {
        wide_asm!(@reg_loop $acc, $b, $bn, $h, $lfx, $cp, $ap; []; ["test {crows}, {crows}" "dec {crows}"] ["test {ag}, {ag}" "dec {ag}"];
            $([($off) "{t} + {k}" $z0 $z1 $i0 $i1])+; ["add {k}, 16", "dec {n}", "jnz 2b"]
            a = in(reg) $a,
            k = inout(reg) $k,
            n = inout(reg) $n => _,
            crows = inout(reg) $crows,
            ag = inout(reg) $ag,
        )
    };
    // The same loop for rows at one stride (`{l}` bytes apart: rows 0–3
    // from `{q0}`, 4–7 from `{q4}`, 8–11 from `{q8}`, by base + index
    // addressing), so no row pointer is loaded.
    (loop_strided [$($pf:literal),*]; $acc:ident, $b:expr, $bn:expr, $q0:expr, $q4:expr, $q8:expr, $l:expr, $h:expr, $lfx:expr, $cp:expr, $ap:expr; $([$row:literal $z0:tt $z1:tt $i0:tt $i1:tt])+) => {
        wide_asm!(@reg_loop $acc, $b, $bn, $h, $lfx, $cp, $ap; [$($pf),*]; ["cmp {cp}, [{h} + {o_c_end}]"] ["cmp {ap}, [{h} + {o_a_end}]"];
            $([() $row $z0 $z1 $i0 $i1])+; [
            // (Short strips leave bases and strides unused.)
            "/* rows at {q0} {q4} {q8}, {l} {l3} apart */",
            "add {q0}, 16",
            "add {q4}, 16",
            "add {q8}, 16",
            "cmp {b}, [{h} + {o_b_end}]",
            "jne 2b",
        ]
            q0 = inout(reg) $q0 => _,
            q4 = inout(reg) $q4 => _,
            q8 = inout(reg) $q8 => _,
            l = in(reg) $l,
            l3 = in(reg) 3 * $l,
            o_b_end = const std::mem::offset_of!(RegLoopConsts, b_end),
            o_c_end = const std::mem::offset_of!(RegLoopConsts, c_end),
            o_a_end = const std::mem::offset_of!(RegLoopConsts, a_end),
        )
    };
    // The register form's loop itself: per group, the group's share of
    // the next B micro-panel into L2 (a line of each panel, and the
    // further lines that `$pf` lists); while rows are left, one row of the
    // next tile's C (and of its residual, `res_off` bytes on) into L1;
    // while lines are left, three lines of the next strip's A into L2;
    // then 2 k steps of B (zmm24–27), each A value broadcast once
    // (zmm28–29) for its row's two FMAs, and the next 2 (zmm30–31). A row
    // is read at `[$row]` (+ 4, 8, 12), after loading its pointer where it
    // has an `$off`; `$tail` moves the rows on and ends the loop. How the
    // C and A hints stop (`$c_test`, `$a_test`; zero flag: none left) and
    // count (`$c_step`, `$a_step`) is the form's: counters in registers in
    // the pointer form (end pointers there, measured, made stage 5's
    // implicit GEMM 4 % slower); end pointers in the constants in the
    // strided form, whose bases and strides take two more of the 13
    // registers.
    (@reg_loop $acc:ident, $b:expr, $bn:expr, $h:expr, $lfx:expr, $cp:expr, $ap:expr; [$($pf:literal),*]; [$c_test:literal $($c_step:literal)?] [$a_test:literal $($a_step:literal)?]; $([($($off:tt)?) $row:literal $z0:tt $z1:tt $i0:tt $i1:tt])+; [$($tail:expr),+ $(,)?] $($extra:tt)*) => {
        wide_asm!(@asm $acc, $b, $bn; $([$z0 $z1 $i0 $i1])+; [
            "2:",
            "mov {t}, {lfx}",
            "shr {t}, 16",
            "shl {t}, 6",
            "add {t}, [{h} + {o_pf}]",
            "prefetcht1 [{t}]",
            "prefetcht1 [{t} + {bn}]",
            $($pf,)*
            "add {lfx}, [{h} + {o_pf_step}]",
            $c_test,
            "jz 3f",
            "prefetcht0 [{cp}]",
            "prefetcht0 [{cp} + 64]",
            "mov {t}, [{h} + {o_res_off}]",
            "add {t}, {cp}",
            "prefetcht0 [{t}]",
            "prefetcht0 [{t} + 64]",
            "add {cp}, [{h} + {o_ldc}]",
            $($c_step,)?
            "3:",
            $a_test,
            "jz 4f",
            "prefetcht1 [{ap}]",
            "prefetcht1 [{ap} + 64]",
            "prefetcht1 [{ap} + 128]",
            "add {ap}, 192",
            $($a_step,)?
            "4:",
            "vmovups zmm24, [{b}]",
            "vmovups zmm25, [{b} + {bn}]",
            "vmovups zmm26, [{b} + 64]",
            "vmovups zmm27, [{b} + {bn} + 64]",
            $(
                $(concat!("mov {t}, [{a} + ", $off, "]"),)?
                concat!("vbroadcastss zmm28, dword ptr [", $row, "]"),
                concat!("vbroadcastss zmm29, dword ptr [", $row, " + 4]"),
                concat!("vfmadd231ps ", $z0, ", zmm24, zmm28"),
                concat!("vfmadd231ps ", $z1, ", zmm25, zmm28"),
                concat!("vfmadd231ps ", $z0, ", zmm26, zmm29"),
                concat!("vfmadd231ps ", $z1, ", zmm27, zmm29"),
            )+
            "vmovups zmm24, [{b} + 128]",
            "vmovups zmm25, [{b} + {bn} + 128]",
            "vmovups zmm26, [{b} + 192]",
            "vmovups zmm27, [{b} + {bn} + 192]",
            $(
                $(concat!("mov {t}, [{a} + ", $off, "]"),)?
                concat!("vbroadcastss zmm30, dword ptr [", $row, " + 8]"),
                concat!("vbroadcastss zmm31, dword ptr [", $row, " + 12]"),
                concat!("vfmadd231ps ", $z0, ", zmm24, zmm30"),
                concat!("vfmadd231ps ", $z1, ", zmm25, zmm30"),
                concat!("vfmadd231ps ", $z0, ", zmm26, zmm31"),
                concat!("vfmadd231ps ", $z1, ", zmm27, zmm31"),
            )+
            "add {b}, 256",
            $($tail,)+
        ]
            h = in(reg) $h,
            lfx = inout(reg) $lfx,
            cp = inout(reg) $cp,
            ap = inout(reg) $ap,
            o_pf = const std::mem::offset_of!(RegLoopConsts, pf),
            o_pf_step = const std::mem::offset_of!(RegLoopConsts, pf_step),
            o_ldc = const std::mem::offset_of!(RegLoopConsts, ldc),
            o_res_off = const std::mem::offset_of!(RegLoopConsts, res_off),
            $($extra)*
        )
    };
    (1; $acc:ident, $a:expr, $b:expr, $bn:expr, $k:expr; $([$off:tt $z0:tt $z1:tt $i0:tt $i1:tt])+) => {
        wide_asm!(@asm $acc, $b, $bn; $([$z0 $z1 $i0 $i1])+; [
            "vmovups zmm24, [{b}]",
            "vmovups zmm25, [{b} + {bn}]",
            $(
                concat!("mov {t}, [{a} + ", $off, "]"),
                concat!("vfmadd231ps ", $z0, ", zmm24, dword ptr [{t} + {k}]{{1to16}}"),
                concat!("vfmadd231ps ", $z1, ", zmm25, dword ptr [{t} + {k}]{{1to16}}"),
            )+
            "add {b}, 64",
            "add {k}, 4",
        ]
            a = in(reg) $a,
            k = inout(reg) $k,
        )
    };
    // The asm itself, the operands every form has: the rows' sums in and
    // out in their registers, zmm24–31 clobbered (the one-step form uses
    // only zmm24–25; naming all eight costs nothing, they are not live
    // across blocks); a form's own operands follow its lines.
    (@asm $acc:ident, $b:expr, $bn:expr; $([$z0:tt $z1:tt $i0:tt $i1:tt])+; [$($line:expr),+ $(,)?] $($extra:tt)*) => {
        asm!(
            $($line,)+
            b = inout(reg) $b,
            bn = in(reg) $bn,
            t = out(reg) _,
            $($extra)*
            $(inout($z0) $acc[$i0], inout($z1) $acc[$i1],)+
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(nostack, readonly),
        )
    };
}

/// `wide_asm!($steps; ...)` for the first `$mr` rows (`1..=12`): the
/// operand list of each row count, written once for both step counts.
macro_rules! wide_asm_rows {
    ($mr:expr, $steps:tt; $acc:ident, $rows:expr, $b:expr, $bn:expr, $k:expr $(, $x:expr)*) => {
        match $mr {
            1 => wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1]),
            2 => wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3]),
            3 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5])
            }
            4 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7])
            }
            5 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9])
            }
            6 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11])
            }
            7 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13])
            }
            8 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13] [56 "zmm14" "zmm15" 14 15])
            }
            9 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13] [56 "zmm14" "zmm15" 14 15] [64 "zmm16" "zmm17" 16 17])
            }
            10 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13] [56 "zmm14" "zmm15" 14 15] [64 "zmm16" "zmm17" 16 17] [72 "zmm18" "zmm19" 18 19])
            }
            11 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13] [56 "zmm14" "zmm15" 14 15] [64 "zmm16" "zmm17" 16 17] [72 "zmm18" "zmm19" 18 19] [80 "zmm20" "zmm21" 20 21])
            }
            12 => {
                wide_asm!($steps; $acc, $rows, $b, $bn, $k $(, $x)*; [0 "zmm0" "zmm1" 0 1] [8 "zmm2" "zmm3" 2 3] [16 "zmm4" "zmm5" 4 5] [24 "zmm6" "zmm7" 6 7] [32 "zmm8" "zmm9" 8 9] [40 "zmm10" "zmm11" 10 11] [48 "zmm12" "zmm13" 12 13] [56 "zmm14" "zmm15" 14 15] [64 "zmm16" "zmm17" 16 17] [72 "zmm18" "zmm19" 18 19] [80 "zmm20" "zmm21" 20 21] [88 "zmm22" "zmm23" 22 23])
            }
            mr => unreachable!("wide microkernel: mr {mr} out of 1..=12"),
        }
    };
}

/// `wide_asm!(loop_strided; ...)` for the first `$mr` rows (`1..=12`), row `r`
/// addressed from base `r / 4` (`{q0}`, `{q4}`, `{q8}`) plus `r % 4`
/// strides.
macro_rules! strided_rows {
    ($mr:expr, [$($pf:literal),*]; $acc:ident $(, $x:expr)*) => {
        match $mr {
            1 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1]),
            2 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3]),
            3 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5]),
            4 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7]),
            5 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9]),
            6 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11]),
            7 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13]),
            8 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13] ["{q4} + {l3}" "zmm14" "zmm15" 14 15]),
            9 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13] ["{q4} + {l3}" "zmm14" "zmm15" 14 15] ["{q8}" "zmm16" "zmm17" 16 17]),
            10 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13] ["{q4} + {l3}" "zmm14" "zmm15" 14 15] ["{q8}" "zmm16" "zmm17" 16 17] ["{q8} + {l}" "zmm18" "zmm19" 18 19]),
            11 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13] ["{q4} + {l3}" "zmm14" "zmm15" 14 15] ["{q8}" "zmm16" "zmm17" 16 17] ["{q8} + {l}" "zmm18" "zmm19" 18 19] ["{q8} + {l}*2" "zmm20" "zmm21" 20 21]),
            12 => wide_asm!(loop_strided [$($pf),*]; $acc $(, $x)*; ["{q0}" "zmm0" "zmm1" 0 1] ["{q0} + {l}" "zmm2" "zmm3" 2 3] ["{q0} + {l}*2" "zmm4" "zmm5" 4 5] ["{q0} + {l3}" "zmm6" "zmm7" 6 7] ["{q4}" "zmm8" "zmm9" 8 9] ["{q4} + {l}" "zmm10" "zmm11" 10 11] ["{q4} + {l}*2" "zmm12" "zmm13" 12 13] ["{q4} + {l3}" "zmm14" "zmm15" 14 15] ["{q8}" "zmm16" "zmm17" 16 17] ["{q8} + {l}" "zmm18" "zmm19" 18 19] ["{q8} + {l}*2" "zmm20" "zmm21" 20 21] ["{q8} + {l3}" "zmm22" "zmm23" 22 23]),
            mr => unreachable!("wide microkernel: mr {mr} out of 1..=12"),
        }
    };
}

/// Four k steps (`FOUR`, A's values embedded in the FMAs) or one of the
/// first `MR` rows: `acc[2r + v] += A[r][k..k + s] · B[k..k + s][16v..16v + 16]`,
/// A row `r` at `rows[r] + k` bytes; one step is the rest of a run that is
/// not a multiple of 4.
///
/// # Safety
/// AVX-512F; `rows[..MR]` each readable for the steps' floats at byte
/// offset `*k`; `*b` and `*b + bn` bytes readable for as many rows of 16
/// floats.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn k_steps<const MR: usize, const FOUR: bool>(
    acc: &mut [__m512; 24],
    rows: *const *const f32,
    b: &mut *const f32,
    bn: usize,
    k: &mut usize,
) {
    // SAFETY: the caller's contract; the asm reads only the memory named
    // there and writes registers only (`readonly`).
    unsafe {
        if FOUR {
            wide_asm_rows!(MR, 4; acc, rows, *b, bn, *k)
        } else {
            wide_asm_rows!(MR, 1; acc, rows, *b, bn, *k)
        }
    }
}

/// What the register form's k loop reads from memory (`wide_asm!(loop)`,
/// at these fields' offsets): the first line of its share of the next B
/// micro-panel (and `bn` bytes on, panel 1's) and that share's lines per
/// group in 16.16 fixed point; the next tile's C row stride and its
/// residual's offset from C, in bytes (0: no residual apart from C); for
/// `wide_asm!(loop_strided)` also where the call's B stream, the C rows to
/// hint and the A lines to hint end.
#[repr(C)]
struct RegLoopConsts {
    pf: *const i8,
    pf_step: usize,
    ldc: usize,
    res_off: isize,
    b_end: *const f32,
    c_end: *const i8,
    a_end: *const i8,
}

/// The register form's prefetches over a tile, set up once
/// ([`RegLoop::new`]) and issued inside its asm k loop ([`RegLoop::groups`]),
/// the same three streams as the embedded form's [`GroupPrefetch`] walked by
/// the asm itself: no Rust, no call, no branch to predict out of the loop
/// between groups of 4 k steps.
///
/// - B: the strip's share of the next micro-panel into L2, as there. A
///   share of more than one line per group (Winograd's products: a block
///   of ≤ 36 rows is ≤ 3 strips, 4/3 lines or more per group) is asked for
///   two or four lines of each panel at a time by the strided loop, which
///   all those products take (the pointer form asks for one per group and
///   leaves the rest to the hardware). Against one line per group
///   (2-vCPU Xeon, weights cold, `winograd_timing`, one thread): 28×28×128
///   F(4×4) in 25-row blocks (3 strips) 0.55 instead of 0.69 ms.
/// - C: one row of the next tile's C (two lines) and of its residual per
///   group, all rows asked for by the middle of the k loop (a tile of under
///   96 steps asks for the rows it would not reach before its loop). The
///   residual's rows are taken to be as far from C's as row 0's: true of
///   every residual but a subsampled one (v1's shortcut into a
///   downsampling block's `_3`), whose rows past an output row are
///   then asked for at the wrong place — hints, harmless.
/// - A: where [`Tile::next_a`] asks and the next strip's rows are one
///   contiguous run (1×1, stride 1: consecutive pixels, one K block),
///   three lines of it per group into L2; a strided 1×1 layer's rows
///   are not, and get none (measured: its layers were no slower without).
///
/// Why: between the groups the embedded form runs Rust (the
/// [`GroupPrefetch`] cursors, the loop counter); in L1 (`microkernel_probe`
/// against the FMA probe, kc 128–512, interleaved, best of 15) this loop
/// ran at 84–90 % of the FMA peak against 80–86 % for the register form's
/// one-asm-block-per-group loop. Same process, the two switched inference
/// by inference (2-vCPU Xeon with full-width AVX-512, 2026-12-05, 50–60
/// pairs, per-layer medians, bit-identical outputs): whole inference 0.979×
/// (v1) and 0.976× (v1.5) at one thread, 0.973× and 0.975× at two, batch 8
/// 0.988× and 0.990×; every 1×1 layer of v1.5 at 0.95–1.00×, stage 5's
/// implicit GEMM 0.94–0.97×. The same loop without the C and A hints was
/// faster on stages 4–5 but lost up to 22 % on stage 2's layers (C from
/// L3); with the hints issued from Rust every 2, 4 or 8 groups it lost
/// what the loop gained (1.00–1.02×).
struct RegLoop {
    consts: RegLoopConsts,
    /// The B stream's position (16.16 lines), the next C row to hint and
    /// the rows left, the next A line and the groups left with A lines
    /// (the strided form stops at the ends in `consts` instead).
    line_fx: usize,
    c: *const i8,
    c_rows: usize,
    a: *const i8,
    a_groups: usize,
}

/// Where a strip's rows are for [`RegLoop::groups`].
#[derive(Clone, Copy)]
enum Rows {
    /// Any addresses: the rows' pointers.
    Pointers(*const *const f32),
    /// Rows 0, 4 and 8, and the stride (bytes) from each row to the next.
    Strided([*const f32; 3], isize),
}

impl RegLoop {
    /// Tile `t`'s prefetch state for an `MR`-row kernel; asks at once for
    /// the C rows the loop would not reach by its middle.
    ///
    /// # Safety
    /// AVX-512F (SSE prefetches); `t.next` is null or a [`Tile`] valid for
    /// reads.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn new<const MR: usize>(t: &Tile) -> Self {
        let (pf, pf_step) = t.b_share();
        let mut l = RegLoop {
            consts: RegLoopConsts {
                pf,
                pf_step,
                ldc: 0,
                res_off: 0,
                b_end: std::ptr::null(),
                c_end: std::ptr::null(),
                a_end: std::ptr::null(),
            },
            line_fx: 0,
            c: std::ptr::null(),
            c_rows: 0,
            a: std::ptr::null(),
            a_groups: 0,
        };
        if t.next.is_null() {
            return l;
        }
        // SAFETY: the caller's contract.
        let n = unsafe { &*t.next };
        // All MR rows, also past a shorter next strip's own (hints).
        l.c = n.c as *const i8;
        l.c_rows = MR;
        l.consts.ldc = 4 * n.ldc;
        let res = distinct_residual(n.res[0], l.c);
        if !res.is_null() {
            l.consts.res_off = (res as isize).wrapping_sub(l.c as isize);
        }
        if t.next_a && n.mr > 0 {
            let (first, last) = (n.a[0] as usize, n.a[n.mr - 1] as usize);
            if last.wrapping_sub(first) == 4 * (n.mr - 1) * n.kc {
                l.a = first as *const i8;
                l.a_groups = (4 * n.mr * n.kc).div_ceil(64 * A_LINES_PER_GROUP);
            }
        }
        for _ in 0..MR.saturating_sub(t.kc / 8) {
            let res = l.c.wrapping_offset(l.consts.res_off);
            for p in [l.c, l.c.wrapping_add(64), res, res.wrapping_add(64)] {
                _mm_prefetch::<_MM_HINT_T0>(p);
            }
            l.c = l.c.wrapping_add(l.consts.ldc);
            l.c_rows -= 1;
        }
        l.consts.c_end = l.c.wrapping_add(l.c_rows * l.consts.ldc);
        l.consts.a_end = l.a.wrapping_add(l.a_groups * 64 * A_LINES_PER_GROUP);
        l
    }

    /// Lines of each B panel per group that the share's step needs: one,
    /// or two or four where the share holds more lines than the loop has
    /// groups (Winograd's products of one to three strips).
    #[inline]
    fn b_lines(&self) -> usize {
        match self.consts.pf_step {
            s if s <= 1 << 16 => 1,
            s if s <= 2 << 16 => 2,
            _ => 4,
        }
    }

    /// `groups` groups of 4 k steps of the first `MR` rows (as
    /// [`k_steps`]), each with its prefetches; rows at one stride without
    /// loading their pointers (`wide_asm!(loop_strided)`, see the module
    /// comment), else through them (`wide_asm!(loop)`). Both do the same
    /// operations in the same order on the same addresses.
    ///
    /// `B_LINES` (1, 2 or 4): lines of each B panel the strided loop asks
    /// for per group ([`RegLoop::b_lines`]); the pointer form asks for one.
    /// One form per instance, so that each stays small enough for LLVM to
    /// inline into `wide_kernel` (`scripts/ci-codegen.sh` checks): called
    /// through, the 24 sums went to memory and back around every run (with
    /// all three loops in one function v1.5 took 1.04× the time, the stem
    /// 1.18×).
    ///
    /// # Safety
    /// As [`k_steps`] for `4·groups` steps, the rows where `rows` puts
    /// them.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn groups<const MR: usize, const B_LINES: usize>(
        &mut self,
        acc: &mut [__m512; 24],
        rows: Rows,
        b: &mut *const f32,
        bn: usize,
        k: &mut usize,
        groups: usize,
    ) {
        if groups == 0 {
            return;
        }
        let h = &self.consts as *const RegLoopConsts;
        // SAFETY: the caller's contract; besides A and B the asm reads only
        // `self.consts`, and its prefetches are hints (any address). The C
        // and A cursors run on across calls (the runs of a tile).
        unsafe {
            match rows {
                Rows::Pointers(rows) => wide_asm_rows!(
                    MR, loop; acc, rows, *b, bn, *k, groups, h, self.line_fx, self.c, self.c_rows, self.a, self.a_groups
                ),
                Rows::Strided(bases, stride) => {
                    self.consts.b_end = b.wrapping_add(64 * groups);
                    let [q0, q4, q8] = bases.map(|r| (r as *const u8).wrapping_add(*k));
                    match B_LINES {
                        1 => strided_rows!(MR, []; acc, *b, bn, q0, q4, q8, stride, h, self.line_fx, self.c, self.a),
                        2 => {
                            strided_rows!(MR, ["prefetcht1 [{t} + 64]", "prefetcht1 [{t} + {bn} + 64]"]; acc, *b, bn, q0, q4, q8, stride, h, self.line_fx, self.c, self.a)
                        }
                        _ => {
                            strided_rows!(MR, ["prefetcht1 [{t} + 64]", "prefetcht1 [{t} + {bn} + 64]", "prefetcht1 [{t} + 128]", "prefetcht1 [{t} + {bn} + 128]", "prefetcht1 [{t} + 192]", "prefetcht1 [{t} + {bn} + 192]"]; acc, *b, bn, q0, q4, q8, stride, h, self.line_fx, self.c, self.a)
                        }
                    }
                    *k += 16 * groups;
                }
            }
        }
    }
}

/// # Safety
/// As [`Microkernel::tile`], with `t.mr == MR`, `16 < t.nr <= 32`, and
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
unsafe fn wide_kernel<const MR: usize, const BCAST_REG: bool>(t: &Tile) {
    // Column masks of the two 16-lane halves (the first is whole).
    let mask = [0xFFFFu16, ((1u32 << (t.nr - 16).min(16)) - 1) as u16];
    // SAFETY (whole body): pointers as documented on `Tile` — C row r has nr
    // valid floats at c + r·ldc (and the residual likewise), the bias nr
    // floats; masked-off lanes are neither read nor written; both B panels
    // hold kc rows of 16 floats; A row r holds kc floats (segs runs of
    // kc / segs floats, seg_stride apart); `t.next` is null or a Tile valid for
    // reads during this call (what GroupPrefetch::new asks).
    unsafe {
        // As the 8×32 kernel: sums start from the bias when this tile is
        // the whole K reduction, from C when it continues one.
        let fold_bias = t.last && !t.accumulate && !t.bias.is_null();
        let mut acc = [_mm512_setzero_ps(); 24];
        if fold_bias {
            for r in 0..MR {
                for v in 0..2 {
                    acc[2 * r + v] = _mm512_maskz_loadu_ps(mask[v], t.bias.add(16 * v));
                }
            }
        }
        if t.accumulate {
            for r in 0..MR {
                for v in 0..2 {
                    acc[2 * r + v] = _mm512_maskz_loadu_ps(mask[v], t.c.add(r * t.ldc + 16 * v));
                }
            }
        }
        let (segs, run) = if t.segs > 1 { (t.segs, t.kc / t.segs) } else { (1, t.kc) };
        let bn = 4 * t.b_next;
        let mut b = t.b;
        // The prefetches of the one form or the other (see `RegLoop`);
        // only the one in use is set up.
        let mut reg_loop = if BCAST_REG { Some(RegLoop::new::<MR>(t)) } else { None };
        let mut prefetch = if BCAST_REG { None } else { Some(GroupPrefetch::<MR, 2>::new(t)) };
        // Every run reads the rows in `t.a`, from `s·seg_stride` floats on.
        let rows = t.a.as_ptr();
        // Rows at one stride (most strips): the register form's loop
        // addresses them from bases instead of loading their pointers.
        let stride = (t.a[1] as isize).wrapping_sub(t.a[0] as isize);
        let strided =
            BCAST_REG && (2..MR).all(|r| (t.a[r] as isize).wrapping_sub(t.a[0] as isize) == r as isize * stride);
        // Rows 4 and 8 are at their stride from row 0 (checked above) or,
        // past a short strip's end, bases the asm does not use.
        let reg_rows = if strided { Rows::Strided([t.a[0], t.a[4], t.a[8]], stride) } else { Rows::Pointers(rows) };
        for s in 0..segs {
            let mut k = 4 * s * t.seg_stride;
            if let Some(l) = reg_loop.as_mut() {
                match l.b_lines() {
                    1 => l.groups::<MR, 1>(&mut acc, reg_rows, &mut b, bn, &mut k, run / 4),
                    2 => l.groups::<MR, 2>(&mut acc, reg_rows, &mut b, bn, &mut k, run / 4),
                    _ => l.groups::<MR, 4>(&mut acc, reg_rows, &mut b, bn, &mut k, run / 4),
                }
            } else if let Some(p) = prefetch.as_mut() {
                for _ in 0..run / 4 {
                    p.group(A_LINES_PER_GROUP, |p| _mm_prefetch::<_MM_HINT_T0>(p), |p| _mm_prefetch::<_MM_HINT_T1>(p));
                    k_steps::<MR, true>(&mut acc, rows, &mut b, bn, &mut k);
                }
            }
            for _ in 0..run % 4 {
                k_steps::<MR, false>(&mut acc, rows, &mut b, bn, &mut k);
            }
        }
        if t.last {
            // Separate passes, each a fixed-count loop LLVM unrolls (one
            // fused loop with its branches stayed rolled, which put the
            // accumulators in memory, as stop 40's 6×64 tile found).
            if !t.bias.is_null() && !fold_bias {
                let bias = [_mm512_maskz_loadu_ps(mask[0], t.bias), _mm512_maskz_loadu_ps(mask[1], t.bias.add(16))];
                for i in 0..2 * MR {
                    acc[i] = _mm512_add_ps(acc[i], bias[i % 2]);
                }
            }
            // One test per tile, not per row (see `avx2.rs`).
            if t.has_residual(MR) {
                for r in 0..MR {
                    let res = t.res[r];
                    acc[2 * r] = _mm512_add_ps(acc[2 * r], _mm512_maskz_loadu_ps(mask[0], res));
                    acc[2 * r + 1] = _mm512_add_ps(acc[2 * r + 1], _mm512_maskz_loadu_ps(mask[1], res.add(16)));
                }
            }
            if t.relu {
                let zero = _mm512_setzero_ps();
                for a in acc.iter_mut().take(2 * MR) {
                    *a = _mm512_max_ps(*a, zero);
                }
            }
        }
        for r in 0..MR {
            _mm512_storeu_ps(t.c.add(r * t.ldc), acc[2 * r]);
            _mm512_mask_storeu_ps(t.c.add(r * t.ldc + 16), mask[1], acc[2 * r + 1]);
        }
    }
}

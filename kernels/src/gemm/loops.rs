//! The blocked loop nest (BLIS naming), task split and threading.
//!
//! ```text
//! task (rows × cols of C, chosen from the shape and `threads` only)
//! └ chunk: rows with ≤ 512 KiB of C         (one unless several K blocks)
//!   └ jc: NC columns of C                   B slice kc×NC in L2/L3
//!     └ pc: kc reduction values (K blocks)  C chunk accumulates in L2 across pc
//!       └ ic: MC rows                       A block MC×kc: L2 (im2col: packed here)
//!         └ jr: NR columns (one B micro-panel, kc×NR, stays in L1)
//!           └ ir: ≤MR rows (A strip, streamed from L2) → microkernel
//! ```
//!
//! Rows of an `ic` block are split into strips of balanced height (`49` rows
//! with `MR = 6` → four strips of 6 and five of 5, never a strip of 1), so small
//! M wastes no FMA lanes; each microkernel is instantiated for every height
//! `1..=MR`. The K reduction is never split across tasks and its order depends
//! on the shape only, so results are bit-identical for a given ISA whatever the
//! thread count or the scheduling.

use super::pack::{direct_kc, im2col_block, is_padding_row, padded_row_len, padded_rows, pixel_rows, tap_rows, PANEL};
use crate::buffer::round_up_floats;
use crate::isa::Isa;
use crate::shape::{ConvShape, Epilogue, PoolShape};
use std::ops::Range;

/// Most rows any microkernel handles (the array size of [`Tile::a`]): the
/// AVX-512 12×32 kernel's.
pub(crate) const MAX_MR: usize = 12;
/// Most rows of any `ic` block (size of the on-stack row-offset table).
pub(crate) const MAX_MC: usize = 384;
/// Most strips of any `ic` block (`mc_max(MC) / MR` is 42 for the AVX2,
/// AVX-512 and NEON kernels, 56 for the scalar one): the size of the
/// per-task Tile table, kept small because every task initialises it.
const MAX_STRIPS: usize = 64;

/// Rows per `ic` block for `len` rows: one block up to 1.75·`mc` (so a
/// 196-row layer streams its B once), else balanced blocks of at most `mc`,
/// a multiple of `mr` each but the last. Never more than [`mc_max`].
pub(crate) fn mc_block(len: usize, mc: usize, mr: usize) -> usize {
    if len <= mc + mc * 3 / 4 {
        len.max(1)
    } else {
        len.div_ceil(len.div_ceil(mc)).next_multiple_of(mr).min(mc)
    }
}

/// Upper bound of [`mc_block`] for any `len`.
pub(crate) const fn mc_max(mc: usize) -> usize {
    mc + mc * 3 / 4
}

/// One microkernel call: `C[mr × nr] (+)= A[mr × kc] · B[kc × nr]`, then the
/// epilogue if `last`.
///
/// Row `r < mr` of A is `kc` contiguous floats at `a[r]`; B is the packed
/// 16-column panel at `b` (row `kk` at `b + 16·kk`), the next panel (columns
/// 16..32, AVX-512 only, only when `nr > 16`) at `b + b_next`. C row `r` is at
/// `c + r·ldc`, `nr` valid columns; B columns past `nr` are zero padding and
/// are computed but never stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    /// Row pointers of A (the first `mr`; the loop nest leaves the others
    /// stale, and nothing reads them).
    pub a: [*const f32; MAX_MR],
    /// Reduction length.
    pub kc: usize,
    /// Packed B micro-panel at row `k0`.
    pub b: *const f32,
    /// Floats from one 16-column panel to the next (read by the 32-column
    /// AVX-512 kernel only, so unread where x86-64 is not compiled in).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub b_next: usize,
    /// Top-left of the C tile.
    pub c: *mut f32,
    /// Row stride of C and of the residual.
    pub ldc: usize,
    /// Valid rows, `1..=MR`.
    pub mr: usize,
    /// Valid columns, `1..=NR`.
    pub nr: usize,
    /// Start from the values in C (a K block after the first) instead of zero.
    pub accumulate: bool,
    /// Apply bias / residual / ReLU in the store (the last K block).
    pub last: bool,
    /// Bias at column 0 of the tile, or null (only read when `last`).
    pub bias: *const f32,
    /// Residual of each row at the tile's first column, or null for none:
    /// the first `mr` entries all or none (the kernels test only the first,
    /// [`Tile::has_residual`]; only read when `last`). Rows are not evenly
    /// spaced when the residual is subsampled ([`crate::shape::Subsample`]).
    pub res: [*const f32; MAX_MR],
    /// ReLU in the store (only when `last`).
    pub relu: bool,
    /// Start of B data to prefetch into L2 while computing: `pf_lines`
    /// consecutive 64-byte lines, spread evenly over the k loop (and as many
    /// at `pf + b_next` for 32-column kernels). Null (or `pf_lines == 0`) for
    /// none. Only a hint: any address is harmless, but the loop nest passes
    /// the part of the next B micro-panel this strip is responsible for.
    pub pf: *const f32,
    /// Lines to prefetch from `pf`.
    pub pf_lines: usize,
    /// `pf_lines` spread over the `kc / 4` groups of the k loop: lines per
    /// group in 16.16 fixed point ([`strip_prefetch`]), computed by the loop nest
    /// once per strip so that the microkernel does not divide per tile.
    pub pf_step: usize,
    /// Null, or the next B micro-panel to pull into L1 during this tile, one
    /// line per `k` step (`kc` lines; and at `pf_l1 + b_next` for 32-column
    /// kernels): given to the last strip before that panel is used. Only
    /// the AVX2 kernel takes it (the AVX-512 one measured faster without an
    /// L1 prefetch, see there; NEON pulls its share of [`Tile::pf`] into L1).
    pub pf_l1: *const f32,
    /// Runs of A per row (1: each row is `kc` contiguous floats). With
    /// several (kernels with [`Microkernel::SEGMENTS`] only) row `r`'s
    /// reduction is `segs` runs of `kc / segs` floats, run `s` at
    /// `a[r] + s·seg_stride` (an implicit GEMM read in place from a padded
    /// input, one run per kernel row); B's rows stay consecutive. (Only the
    /// AVX-512 and AVX2 kernels read rows in runs, so unread where they are
    /// not compiled.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub segs: usize,
    /// Floats from one run of a row to the next (when `segs > 1`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub seg_stride: usize,
    /// The tile the loop nest computes after this one, or null: its C
    /// tile and residual rows are what the AVX-512 kernel pulls into L1
    /// during its k loop ([`GroupPrefetch`]; hints only). Valid for reads
    /// while this tile is computed.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub next: *const Tile,
    /// Also pull [`Tile::next`]'s A rows into L2 during this tile
    /// ([`GroupPrefetch`]): set by the loop nest where those rows are
    /// read for the first time and come from L3 or memory.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub next_a: bool,
}

impl Tile {
    /// All pointers null, all sizes zero: a placeholder to fill in.
    pub(crate) const EMPTY: Tile = Tile {
        a: [std::ptr::null(); MAX_MR],
        kc: 0,
        b: std::ptr::null(),
        b_next: 0,
        c: std::ptr::null_mut(),
        ldc: 0,
        mr: 0,
        nr: 0,
        accumulate: false,
        last: false,
        bias: std::ptr::null(),
        res: [std::ptr::null(); MAX_MR],
        relu: false,
        pf: std::ptr::null(),
        pf_lines: 0,
        pf_step: 0,
        pf_l1: std::ptr::null(),
        segs: 1,
        seg_stride: 0,
        next: std::ptr::null(),
        next_a: false,
    };

    /// Where this tile's share of the next B micro-panel starts and its
    /// spread (lines per group of 4 k steps, 16.16 fixed point), as the
    /// AVX-512 kernels ask for it: [`Tile::pf`] and [`Tile::pf_step`], or,
    /// with no share, its own panel's first line and no step.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn b_share(&self) -> (*const i8, usize) {
        if !self.pf.is_null() && self.pf_lines > 0 {
            (self.pf as *const i8, self.pf_step)
        } else {
            (self.b as *const i8, 0)
        }
    }

    /// Whether this tile's first `mr` rows have a residual: the loop nest
    /// gives them one all or none, so the kernels test the first row once
    /// per tile instead of each row (checked here in debug builds).
    #[inline(always)]
    pub(crate) fn has_residual(&self, mr: usize) -> bool {
        let has = !self.res[0].is_null();
        debug_assert!(self.res[..mr].iter().all(|p| p.is_null() != has), "a tile's rows have a residual all or none");
        has
    }
}

/// A register-blocked microkernel and its cache blocking.
pub(crate) trait Microkernel {
    /// Rows per register tile (strips are `1..=MR` rows).
    const MR: usize;
    /// Columns per register tile: a multiple of [`PANEL`].
    const NR: usize;
    /// Target reduction block of the loop nest ([`run`]: 1×1 and implicit
    /// GEMM convolutions).
    const KC: usize;
    /// Longest reduction the loop nest ([`run`]) keeps as one K block
    /// rather than splitting into blocks of at most `KC`.
    const KC_WHOLE: usize = Self::KC + Self::KC / 2;
    /// Reduction block of [`gemm_rows`] (a few rows against weights
    /// streamed from memory: Winograd's products).
    const KC_ROWS: usize = Self::KC;
    /// Rows per A block (`MC × KC` in L2); a multiple of `MR`, `mc_max(MC) <= MAX_MC`.
    const MC: usize;
    /// Columns per B slice; a multiple of `NR`.
    const NC: usize;
    /// Whether [`Microkernel::tile`] reads rows in runs (`Tile::segs > 1`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const SEGMENTS: bool = false;

    /// Computes one tile.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; every pointer in `t` is valid for the
    /// reads and writes described on [`Tile`]; `1 <= t.mr <= MR`, `1 <= t.nr <= NR`.
    unsafe fn tile(t: &Tile);

    /// Gathers an im2col block ([`im2col_block`]); kernels override it to
    /// compile the copies with their ISA enabled.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA.
    #[allow(clippy::too_many_arguments)]
    unsafe fn im2col(s: &ConvShape, input: &[f32], m0: usize, rows: usize, k0: usize, kc: usize, dst: &mut [f32]) {
        im2col_block(s, input, m0, rows, k0, kc, dst)
    }
}

/// Lines of the next tile ([`GroupPrefetch`]) a `kc`-step tile with
/// `lines` C lines (`MR·LINES`) takes per group of 4 k steps: enough that
/// all of them are asked for by the middle of its k loop — one per group
/// from K = 128 up, two for ResNet50's stage-2 K = 64 tiles (8×32: 16 lines
/// over 16 groups would leave the last ones for the tile's last steps).
///
/// Why by the middle: a K = 64 tile whose sums start from C (the residual
/// in place, `conv2_block1_3`/`block2_3`: 3 MB of C in L3) waits for its
/// C lines before its first FMA, and one line per group asked for the
/// last rows only ~60 cycles before that. Same process, alternated
/// inference by inference, 200 rounds, per-layer medians, 2-core Zen 4
/// (AVX-512): two per group made those two layers 0.82–0.96× of their
/// time at one thread (v1 and v1.5; 0.92–0.99× at two), the K = 64 layers
/// without a residual in C and the K = 256 ones unchanged (0.97–1.02);
/// four per group gained no more (0.995–1.02 against two), and two per
/// group for K = 128 (stage 3) nothing (0.99–1.02).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const fn next_tile_lines_per_group(lines: usize, kc: usize) -> usize {
    let half_groups = kc / 8;
    if half_groups >= lines {
        // No division in the common case (a tile's prologue).
        return 1;
    }
    lines.div_ceil(if half_groups > 0 { half_groups } else { 1 })
}

/// Lines of the next tile's A rows ([`Tile::next_a`]) a kernel asks for per
/// group of 4 k steps: two, which covers an 8-row strip's `8·kc/16` lines
/// over the `kc/4` groups.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const NEXT_A_LINES_PER_GROUP: usize = 2;

/// A residual row to ask for besides C's row `c`: none (null) when there
/// is no residual or it is C itself (in place: the C line covers it).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
pub(crate) fn distinct_residual(res: *const f32, c: *const i8) -> *const i8 {
    if std::ptr::eq(res as *const i8, c) {
        std::ptr::null()
    } else {
        res as *const i8
    }
}

/// The prefetches an AVX-512 microkernel (8×32 and 12×32) issues before
/// each group of 4 k steps of an `MR`-row, `NV`-panel tile, set up once per
/// tile ([`GroupPrefetch::new`]) and issued by [`GroupPrefetch::group`]:
/// - its share of the next B micro-panel into L2 ([`Tile::pf`], spread over
///   the groups in 16.16 fixed point; its own panel's lines when it has none);
/// - the loop nest's next tile's ([`Tile::next`]) C and residual lines into
///   L1, [`next_tile_lines_per_group`] per group, row by row;
/// - where [`Tile::next_a`] asks, the next strip's A rows into L2.
///
/// Why the next tile's C, and spread out: the C tile and residual that the
/// epilogue reads and writes come from L2 or L3 (a K = 64 layer's 3 MB
/// output does not stay in L2), and prefetching a tile's own 16–32 lines
/// in one burst before its k loop (as the kernels did) both queued them
/// behind each other and arrived only just in time: same-process A/B on
/// Zen 4 (AVX-512, v1, one thread), stage 2's K = 64 1×1 layers 4–5 %
/// faster, the rest unchanged. The next tile's A rows on every tile (two
/// lines per step) helped alone (3136×256×64 +2 %) but not in the network:
/// stages 4–5's 1×1 layers 2 % slower at one thread, 7 % at two.
///
/// Why the next strip's A rows where `next_a` asks: a 1×1 layer that reads
/// A in place meets each strip's rows first in the first column tile of
/// their `ic` block, and there they come from L3 (a 56×56 layer's input is
/// 0.8–3.2 MB, written by the layer before; the L2 is 1–2 MB); the other
/// column tiles find them in L2. The loop nest sets `next_a` on those
/// first-column tiles only (one K block, rows read in place). Same process,
/// alternated inference by inference, 150 rounds, per-layer medians, 2-core
/// Zen 4 (AVX-512), one thread: stage 2's 1×1 layers 0.84–1.00× of their
/// time (`conv2_block2_1`/`block3_1`, 56×56 256→64, 0.84–0.94×), v1.5's
/// full-resolution `conv3_block1_1` 0.91–0.93×, stages 4–5 unchanged, the
/// 1×1 layers together 0.98× and v1 0.985×; at two threads unchanged.
///
/// Why cursors: the lines are walked in order (row by row, a line at a
/// time), each stream a pointer and a count stepped on per line, with no
/// division or multiply per group. The first form computed every line from
/// its index (`i / lines_per_row`, three 64-bit divisions per group for the
/// A rows, the next tile's fields reloaded per line); on a 2-vCPU Xeon with
/// full-width AVX-512 (2026-12-05; same process, the two forms switched
/// inference by inference in the 12×32 kernel, 60 pairs, per-layer
/// medians, bit-identical outputs) the cursors made the 1×1 layers
/// 0.972–0.985× of their time and the whole inference 0.981× (v1) and
/// 0.981× (v1.5) at one thread, 0.987× / 0.986× at two, v1.5 batch 8
/// 0.978×. Without the C and A prefetches at all, the 1×1 layers took
/// 0.997× (what they gained had cost as much), and without any prefetch
/// 1.10×. PREFETCHW instead of PREFETCHT0 for the next tile's C lines
/// (they are written) measured 1.015–1.019× on the same machine.
///
/// Only the AVX-512 kernels use it: the AVX2 one was slower with the next
/// tile's C lines — on a 2-vCPU Zen 3 (stop 42; same process, alternated
/// inference by inference, 60 pairs, v1.5, one thread) the network
/// 1.03–1.06× of its time, stages 4–5's 1×1 layers 1.10–1.12×, only stage
/// 2's residual layers faster (0.96–0.97×) — and unchanged with the A rows
/// (mean 0.991×, median 1.028×); NEON has not been timed.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct GroupPrefetch<const MR: usize, const NV: usize> {
    /// B: panel 0's first line to ask for, bytes to panel 1, and the
    /// spread (`line_fx >> 16` lines on from `pf`, `step_fx` more per group).
    pf: *const i8,
    pf_next: usize,
    step_fx: usize,
    line_fx: usize,
    /// The next tile's C lines per group, and the cursor: its row's C and
    /// residual (null: none, or the residual is C itself), the line in the
    /// row, the rows left (0: done, or no next tile), the row's entry in
    /// the next tile's residual array, and C's row stride in bytes.
    c_lines: usize,
    c: *const i8,
    res: *const i8,
    v: usize,
    c_rows_left: usize,
    res_row: *const *const f32,
    ldc: usize,
    /// The next strip's A rows: the line, lines left in its row, lines per
    /// row, its row's entry in the next tile's A array, rows left.
    a: *const i8,
    a_left: usize,
    a_per_row: usize,
    a_row: *const *const f32,
    a_rows_left: usize,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl<const MR: usize, const NV: usize> GroupPrefetch<MR, NV> {
    /// The prefetch state of tile `t`.
    ///
    /// # Safety
    /// `t.next` is null or a [`Tile`] valid for reads while the state is used.
    #[inline(always)]
    pub(crate) unsafe fn new(t: &Tile) -> Self {
        let (pf, step_fx) = t.b_share();
        let mut p = GroupPrefetch {
            pf,
            pf_next: 4 * t.b_next,
            step_fx,
            line_fx: 0,
            c_lines: next_tile_lines_per_group(MR * NV, t.kc),
            c: std::ptr::null(),
            res: std::ptr::null(),
            v: 0,
            c_rows_left: 0,
            res_row: std::ptr::null(),
            ldc: 0,
            a: std::ptr::null(),
            a_left: 0,
            a_per_row: 0,
            a_row: std::ptr::null(),
            a_rows_left: 0,
        };
        if !t.next.is_null() {
            // SAFETY: the caller's contract.
            let n = unsafe { &*t.next };
            // Rows past the next tile's own (a shorter strip) are asked
            // for too, and its `res` entries past `mr` may be left over
            // from earlier blocks: hints only, to addresses inside the same
            // buffers.
            p.c = n.c as *const i8;
            p.ldc = 4 * n.ldc;
            p.c_rows_left = MR;
            p.res_row = n.res.as_ptr();
            p.res = distinct_residual(n.res[0], p.c);
            if t.next_a {
                p.a_per_row = n.kc.div_ceil(16).max(1);
                p.a_left = p.a_per_row;
                p.a_row = n.a.as_ptr();
                p.a = n.a[0] as *const i8;
                p.a_rows_left = n.mr;
            }
        }
        p
    }

    /// The next group's prefetches, with `a_lines` next-strip A lines per
    /// group; `l1` and `l2` issue one hint each.
    ///
    /// B: the lines the share's step passes in this group, at least one —
    /// a share of more than one line per group (a product of few strips:
    /// Winograd's blocks of up to 24 rows on 8-row tiles) asks for all of
    /// them. Until stop 55 it asked for one per group and skipped the rest
    /// (3 of 4 lines of a one-strip tile's share); a 14×14×256 F(4×4)
    /// layer with 16-row blocks (two strips) took 0.92 instead of 1.33 ms
    /// with its weights cold (`winograd_timing`, one thread, 2-vCPU Xeon).
    ///
    /// # Safety
    /// The tile given to [`GroupPrefetch::new`] is still under its contract.
    #[inline(always)]
    pub(crate) unsafe fn group(&mut self, a_lines: usize, l1: impl Fn(*const i8), l2: impl Fn(*const i8)) {
        // Lines `first..end` of each panel: at least one, and every line of
        // a share of more than one line per group.
        let first = self.line_fx >> 16;
        self.line_fx += self.step_fx;
        let end = (self.line_fx >> 16).max(first + 1);
        for line in first..end {
            for v in 0..NV {
                l2(self.pf.wrapping_add(v * self.pf_next + 64 * line));
            }
        }
        for _ in 0..self.c_lines {
            if self.c_rows_left == 0 {
                break;
            }
            l1(self.c.wrapping_add(64 * self.v));
            if !self.res.is_null() {
                l1(self.res.wrapping_add(64 * self.v));
            }
            self.v += 1;
            if self.v == NV {
                self.v = 0;
                self.c_rows_left -= 1;
                self.c = self.c.wrapping_add(self.ldc);
                if self.c_rows_left > 0 {
                    self.res_row = self.res_row.wrapping_add(1);
                    // SAFETY: rows left: an entry below MR <= MAX_MR of
                    // the next tile's `res` (the caller's contract).
                    self.res = distinct_residual(unsafe { *self.res_row }, self.c);
                }
            }
        }
        for _ in 0..a_lines {
            if self.a_rows_left == 0 {
                break;
            }
            l2(self.a);
            self.a = self.a.wrapping_add(64);
            self.a_left -= 1;
            if self.a_left == 0 {
                self.a_left = self.a_per_row;
                self.a_rows_left -= 1;
                if self.a_rows_left > 0 {
                    self.a_row = self.a_row.wrapping_add(1);
                    // SAFETY: rows left: an entry below the next tile's
                    // `mr` of its `a` (the caller's contract).
                    self.a = unsafe { *self.a_row } as *const i8;
                }
            }
        }
    }
}

/// Strip `s` of `strips`' share of `lines` prefetches during its `kc`-step
/// tile: `(first line, lines, step)`, the step being lines per group of 4 k
/// steps in 16.16 fixed point (0 when the loop has no whole group), so that
/// the microkernel spreads them evenly without dividing.
pub(crate) fn strip_prefetch(lines: usize, s: usize, strips: usize, kc: usize) -> (usize, usize, usize) {
    if lines == 0 {
        // Nothing to prefetch (no next panel): no divisions either.
        return (0, 0, 0);
    }
    let (l0, l1) = (lines * s / strips, lines * (s + 1) / strips);
    (l0, l1 - l0, prefetch_step(l1 - l0, kc))
}

/// `n` prefetches spread over the groups of 4 steps of a `kc`-step k loop:
/// lines per group in 16.16 fixed point, 0 when there is no whole group.
fn prefetch_step(n: usize, kc: usize) -> usize {
    match kc / 4 {
        0 => 0,
        groups => (n << 16) / groups,
    }
}

/// [`strip_prefetch`] of every strip `0..out.len()` of `strips` at once, as
/// the loop nest needs them per ic block: each strip's first line stepped
/// on from the last (a line-drawing error term) and its step one of two
/// values, so that no strip costs a division. Three 64-bit divisions per
/// strip took 1 % of a K = 64 layer's time (`perf`, 3136×64×64).
pub(crate) fn strip_prefetches(lines: usize, strips: usize, kc: usize, out: &mut [(usize, usize, usize)]) {
    let mut shares = StripShares::new(lines, strips, kc);
    for o in out.iter_mut() {
        *o = shares.next_strip();
    }
}

/// The strips' shares of a tile's prefetches, strip after strip without a
/// division per strip ([`strip_prefetches`]; the divisions are done once, in
/// [`StripShares::new`]). `Copy`: a copy taken before the first
/// [`StripShares::next_strip`] starts again from strip 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StripShares {
    /// Lines per strip (`lines / strips`) and the remainder spread over them.
    q: usize,
    rem: usize,
    strips: usize,
    /// [`prefetch_step`] of `q` and of `q + 1` lines.
    step_q: usize,
    step_q1: usize,
    /// The next strip's first line, and the error term (in `1 / strips`).
    l0: usize,
    err: usize,
}

impl StripShares {
    /// No prefetches for any strip.
    pub(crate) const NONE: StripShares = StripShares { q: 0, rem: 0, strips: 1, step_q: 0, step_q1: 0, l0: 0, err: 0 };

    /// `lines` prefetches shared by `strips` strips of `kc`-step tiles, as
    /// [`strip_prefetch`] shares them.
    pub(crate) fn new(lines: usize, strips: usize, kc: usize) -> Self {
        if lines == 0 {
            return Self::NONE;
        }
        let strips = strips.max(1);
        let (q, rem) = (lines / strips, lines % strips);
        StripShares { q, rem, strips, step_q: prefetch_step(q, kc), step_q1: prefetch_step(q + 1, kc), l0: 0, err: 0 }
    }

    /// The next strip's `(first line, lines, step)`.
    #[inline(always)]
    pub(crate) fn next_strip(&mut self) -> (usize, usize, usize) {
        // Strip s ends at floor(lines·(s + 1) / strips): q more lines, one
        // more whenever rem·(s + 1) passes another multiple of strips.
        self.err += self.rem;
        let (n, step) = if self.err >= self.strips {
            self.err -= self.strips;
            (self.q + 1, self.step_q1)
        } else {
            (self.q, self.step_q)
        };
        let l0 = self.l0;
        self.l0 += n;
        (l0, n, step)
    }
}

/// Blocking parameters of one kernel, as plain values (for scratch sizing).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blocking {
    pub nr: usize,
    pub kc: usize,
    pub kc_whole: usize,
    pub mc: usize,
}

impl Blocking {
    pub(crate) fn of<U: Microkernel>() -> Self {
        Blocking { nr: U::NR, kc: U::KC, kc_whole: U::KC_WHOLE, mc: U::MC }
    }

    /// The loop nest's K blocking of a reduction of `k` ([`k_blocks_upto`]).
    pub(crate) fn k_blocks(&self, k: usize) -> (usize, usize) {
        k_blocks_upto(k, self.kc, self.kc_whole)
    }
}

/// K blocking: `(blocks, kc)`. One block up to 1.5·`kc_max` (the stem's 147,
/// 256, 384 stay whole); otherwise equal blocks of at most `kc_max`.
pub(crate) fn k_blocks(k: usize, kc_max: usize) -> (usize, usize) {
    k_blocks_upto(k, kc_max, kc_max + kc_max / 2)
}

/// K blocking: `(blocks, kc)`. One block up to `whole_max`, otherwise equal
/// blocks of at most `kc_max`.
pub(crate) fn k_blocks_upto(k: usize, kc_max: usize, whole_max: usize) -> (usize, usize) {
    if k <= whole_max.max(kc_max) {
        (1, k)
    } else {
        let nk = k.div_ceil(kc_max);
        (nk, k.div_ceil(nk))
    }
}

/// Tasks per worker thread when `threads > 1`: one. Each task starts cold
/// (its first A block and B panels come from L3) and reads the A rows or B
/// columns it shares with its grid neighbours again, which at batch 1 costs
/// more than the load balancing that several tasks per thread buy. Measured
/// on a 2-core Zen 3 by alternating 1 and 4 per inference in one process
/// (96 inferences each, six runs, both orders): batch-1 latency at 2 threads
/// 1.5–3.9 % lower with 1 (v1 and v1.5), batch 8 1.2–1.6 % higher; tasks of one
/// thread ending at different times cost no measurable throughput there
/// (cutting each layer's last tasks into quarters gained nothing).
const TASKS_PER_THREAD: usize = 1;

/// [`split`] gives each worker whole rows (output pixels) when every task
/// still gets at least this many rows ...
const ROW_SPLIT_MIN_ROWS: usize = 64;
/// ... and B (the weights, which every task then reads whole) is at most
/// this many bytes.
///
/// Why: most layers next to a 1×1 convolution split by pixels (the
/// Winograd layers by tiles, the large-M GEMMs by rows), so a row-split
/// layer reads the activations, and in place the residual, that the same
/// worker wrote, from its own L2; a column split reads all of A, half of it
/// from the other core. The makespan model below does not see this and
/// picked columns for ResNet50's 14×14 stage-4 1×1 layers (196 rows, 1 MiB
/// of weights). Measured on the 2-core Zen 3 VM by alternating the two rules
/// per inference in one process (80 inferences, 4 runs, v1 and v1.5, batch
/// 1, 2 threads): `conv4_block2..6_3` 20 % and `conv4_block2..6_1` 6 %
/// faster on the mean, the sum of the per-layer minima 1.6–2.8 % lower and
/// of their means 1.9–4.0 % lower. The one loser is `conv4_block1_3` (5–10 %
/// slower), whose input and residual come from column-split layers. Where B
/// is bigger, each worker streaming all of it costs about what locality
/// saves or more: with rows, stage 5 at batch 8 (392 rows, 4–8 MiB) took
/// 3 % longer on the sum of its minima, and `conv4_block1_0` and v1.5's
/// stride-2 3×3 at batch 1 (196 rows, 2–2.4 MiB) 3 % longer on the mean,
/// 1.5–3 % shorter on the minimum: no gain to take.
const ROW_SPLIT_MAX_B_BYTES: usize = 3 << 19;

/// The task grid for `C[m × n] = A[m × k] · B[k × n]`: `tm × tn` tasks (row
/// ranges × column-tile ranges), from the shape and `threads` only. One task
/// for one thread; one row range per worker when each gets at least
/// [`ROW_SPLIT_MIN_ROWS`] rows and B is at most [`ROW_SPLIT_MAX_B_BYTES`];
/// otherwise about `TASKS_PER_THREAD · threads` tasks, the grid minimising the
/// estimated makespan `ceil(tasks / threads) · (rows·cols + 4·(rows + cols))`
/// (compute plus the task's A and B reads); ties go to fewer tasks, then to
/// splitting rows.
pub(crate) fn split(m: usize, k: usize, n: usize, nr: usize, threads: usize) -> (usize, usize) {
    let threads = threads.max(1);
    if threads == 1 {
        return (1, 1);
    }
    let target = TASKS_PER_THREAD * threads;
    if m / target >= ROW_SPLIT_MIN_ROWS && k.saturating_mul(n).saturating_mul(4) <= ROW_SPLIT_MAX_B_BYTES {
        return (target, 1);
    }
    let tiles = n.div_ceil(nr);
    let mut best = (1, 1, usize::MAX, usize::MAX);
    for tm in (1..=target.min(m)).rev() {
        let tn = target.div_ceil(tm).min(tiles);
        let rows = m.div_ceil(tm);
        let cols = tiles.div_ceil(tn) * nr;
        let tasks = tm * tn;
        let cost = tasks.div_ceil(threads) * (rows * cols + 4 * (rows + cols));
        if (cost, tasks) < (best.2, best.3) {
            best = (tm, tn, cost, tasks);
        }
    }
    (best.0, best.1)
}

/// Whether a 1×1 convolution's A rows alias in the caches: consecutive
/// rows (output pixels) a multiple of 4 KiB apart (`4·cin·stride_w` bytes:
/// ResNet50's `cin` = 1024 and 2048, and 512 at stride 2) map to one set of
/// a 64-set L1 (and to few sets of the L2), so the `MR` rows of a strip
/// compete for that set's ways while the strip streams them.
fn rows_alias(shape: &ConvShape) -> bool {
    let row_bytes = 4 * shape.in_c * shape.stride_w;
    shape.kh == 1 && shape.kw == 1 && row_bytes.is_multiple_of(4096)
}

/// L1 data caches with fewer ways than this get aliasing A rows copied
/// apart ([`packs_pixels_on`]): a strip's rows take up to 8 ways of one set
/// (the 8×32 AVX-512 kernel's, measured below), and the B micro-panel and C
/// tile need a few more. The 12-row kernel's strips take 12, yet on a
/// 12-way L1 reading them in place still won (below): the bound stays.
const PACK_BELOW_L1_WAYS: usize = 8 + 4;

/// Whether a 1×1 convolution copies its A blocks into scratch instead of
/// reading the input in place, on a CPU whose L1 data cache has `l1d_ways`
/// ways (`None`: unknown): when its rows alias ([`rows_alias`]) and the
/// L1 has fewer than [`PACK_BELOW_L1_WAYS`] ways. A contiguous copy costs
/// one pass over A per column slice.
///
/// Measured: on an 8-way L1 (Zen 3, AVX2's 6-row strips) 196×1024×256 ran
/// at 73 % of peak in place against 87 % for K = 512 rows that do not alias,
/// and the copy brought it back (abf7905). On a 12-way L1 (a Sapphire
/// Rapids-class Xeon, AVX-512's 8-row strips; same process, alternated
/// inference by inference, 60 rounds) reading in place was the faster:
/// `conv4_block2..6_1` (14×14, 1024→256) 2–7 % and stage 5's `_1` layers
/// (2048→512) 1–9 % at one and two threads, v1 and v1.5. Again with the
/// 12-row AVX-512 kernel (12 aliasing rows per strip) on a 12-way Xeon
/// (2026-12-05; same process, the copy switched inference by inference, 50
/// pairs, per-layer medians): the copy made `conv4_block2..6_1` 1.04–1.07×
/// and stage 5's `_1` layers 1.03–1.08× of their time, v1 and v1.5, one and
/// two threads.
fn packs_pixels_on(shape: &ConvShape, l1d_ways: Option<usize>) -> bool {
    rows_alias(shape) && l1d_ways.is_none_or(|ways| ways < PACK_BELOW_L1_WAYS)
}

/// [`packs_pixels_on`] this CPU ([`crate::isa::l1d_ways`]).
pub(crate) fn packs_pixels(shape: &ConvShape) -> bool {
    packs_pixels_on(shape, crate::isa::l1d_ways())
}

/// Whether each task copies A blocks into its scratch: an implicit GEMM
/// (`im2col`) that gathers im2col blocks because its taps cannot be read in
/// place on blocking `kc_max` ([`direct_kc`]), or a 1×1 convolution whose
/// rows alias in the caches ([`packs_pixels`]).
pub(crate) fn copies_a(shape: &ConvShape, im2col: bool, kc_max: usize) -> bool {
    if im2col {
        direct_kc(shape, kc_max).is_none()
    } else {
        packs_pixels(shape)
    }
}

/// Scratch floats one task needs when it copies A blocks ([`copies_a`]):
/// an `MC × kc` block, rounded to whole cache lines so every task's slice
/// starts 64-byte aligned.
pub(crate) fn task_scratch_len(bl: Blocking, m: usize, k: usize, n: usize, threads: usize, copies_a: bool) -> usize {
    if !copies_a {
        return 0;
    }
    let (tm, tn) = split(m, k, n, bl.nr, threads);
    let (_, kc) = bl.k_blocks(k);
    // A row split's ranges follow the threads' speeds (`par::run_split`):
    // a task may get up to all the rows.
    let rows = if tn == 1 { m } else { m.div_ceil(tm) };
    round_up_floats(mc_max(bl.mc).min(rows) * kc)
}

/// Total scratch floats: one task's worth per worker thread.
pub(crate) fn scratch_len(bl: Blocking, m: usize, k: usize, n: usize, threads: usize, copies_a: bool) -> usize {
    task_scratch_len(bl, m, k, n, threads, copies_a) * threads.max(1)
}

/// Where the rows of A come from.
#[derive(Clone, Copy)]
pub(crate) enum ASource<'a> {
    /// 1×1 convolution (no padding, any stride): row `m` is the input pixel's channel vector.
    Pixels(&'a ConvShape, &'a [f32]),
    /// The same rows, each `ic` block copied next to each other into the
    /// task's scratch first (rows that alias in the L1: [`packs_pixels`]).
    PackedPixels(&'a ConvShape, &'a [f32]),
    /// Any convolution: read in place tap by tap when `cin` splits into
    /// whole K blocks ([`direct_kc`]), else im2col rows gathered into
    /// scratch per `ic` block.
    Im2col(&'a ConvShape, &'a [f32]),
    /// An implicit GEMM of `shape` on a copy of its input with the padding
    /// written out ([`padded_len`](super::pack::padded_len)): row `m`'s reduction is `kh` runs of
    /// `kw·cin` floats (one per kernel row), read in place by a kernel with
    /// [`Microkernel::SEGMENTS`], the whole K in one block.
    Padded(&'a ConvShape, &'a [f32]),
}

impl<'a> ASource<'a> {
    /// The convolution whose input the rows come from.
    fn shape(&self) -> &'a ConvShape {
        match *self {
            ASource::Pixels(shape, _)
            | ASource::PackedPixels(shape, _)
            | ASource::Im2col(shape, _)
            | ASource::Padded(shape, _) => shape,
        }
    }

    /// The K block of an implicit GEMM read in place on blocking `kc_max`.
    fn direct_kc(&self, kc_max: usize) -> Option<usize> {
        match self {
            ASource::Im2col(shape, _) => direct_kc(shape, kc_max),
            ASource::Pixels(..) | ASource::PackedPixels(..) | ASource::Padded(..) => None,
        }
    }

    /// Whether each task copies A blocks into its scratch ([`copies_a`]).
    fn copies_a(&self, kc_max: usize) -> bool {
        match self {
            ASource::Im2col(shape, _) => copies_a(shape, true, kc_max),
            ASource::PackedPixels(..) => true,
            ASource::Pixels(..) | ASource::Padded(..) => false,
        }
    }
}

/// A GEMM `C[m × n] = epilogue(A[m × k] · B[k × n])` with packed B.
pub(crate) struct Problem<'a> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: ASource<'a>,
    pub b: &'a [f32],
    pub ep: &'a Epilogue<'a>,
}

impl Problem<'_> {
    /// The K blocking on `bl`: `(direct, blocks, kc)`, whole taps of
    /// `direct` floats when A is read in place, else [`Blocking::k_blocks`].
    fn k_blocking(&self, bl: Blocking) -> (Option<usize>, usize, usize) {
        let direct = self.a.direct_kc(bl.kc);
        let (nk, kcb) = match self.a {
            ASource::Padded(..) => (1, self.k),
            _ => direct.map_or_else(|| bl.k_blocks(self.k), |kc| (self.k / kc, kc)),
        };
        (direct, nk, kcb)
    }
}

/// Output rows of the convolution one worker of [`run_maxpool`] keeps: a
/// 3×3/2 window reads three, and the next pool row two new ones while the
/// third stays.
const POOL_RING_ROWS: usize = 4;

/// Scratch floats of one worker of [`run_maxpool`] on blocking `bl`: its
/// ring of [`POOL_RING_ROWS`] output rows (`ow` pixels × `n` channels each)
/// and one GEMM task's scratch for up to that many rows.
pub(crate) fn maxpool_worker_len(bl: Blocking, ow: usize, k: usize, n: usize, copies_a: bool) -> usize {
    round_up_floats(POOL_RING_ROWS * ow * n) + task_scratch_len(bl, POOL_RING_ROWS * ow, k, n, 1, copies_a)
}

/// Runs `p` (an implicit GEMM convolution: the stem) and the 3×3/2 max-pool
/// `pool` over its output (`pool` reads the whole output, padding 1) into
/// `out`, the pool's output, without writing the convolution's output to
/// memory: each worker takes a range of pool rows ([`crate::par::run_split`])
/// and computes the convolution rows they need into a ring of
/// [`POOL_RING_ROWS`] rows in its own scratch, then pools them while they
/// are in L2. A worker's first pool row recomputes the one convolution row it
/// shares with the range before (one row in `oh / workers`). Every
/// convolution row is the same GEMM as in [`run`] and the pool takes the same
/// pixels in the same order as `pool::max_pool2d`: the results are those of
/// the two unfused steps, bit for bit.
///
/// # Safety
/// As [`run`], with `out.len() == pool.output_len()` and `scratch` holding
/// `threads · maxpool_worker_len(..)` floats for `U`'s blocking; `pool` is a
/// 3×3/2 pool with padding 1 over the `[batch, out_h, out_w, n]` output.
pub(crate) unsafe fn run_maxpool<U: Microkernel>(
    p: &Problem,
    pool: &PoolShape,
    isa: Isa,
    out: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    let shape = p.a.shape();
    let (oh, ow, n) = (shape.out_h(), shape.out_w(), p.n);
    debug_assert!(pool.k == 3 && pool.stride == 2 && pool.pad == 1 && (pool.in_h, pool.in_w, pool.c) == (oh, ow, n));
    let ring_len = round_up_floats(POOL_RING_ROWS * ow * n);
    let per = maxpool_worker_len(Blocking::of::<U>(), ow, p.k, n, p.a.copies_a(U::KC));
    let (ph, row_len) = (pool.out_h(), pool.out_w() * n);
    let dst = crate::par::SendPtr(out.as_mut_ptr());
    crate::par::run_split(pool.batch * ph, threads, scratch, per, |rows, slot| {
        let (ring, task_scratch) = slot.split_at_mut(ring_len);
        // (image, first convolution row not yet in the ring) of the last pool row.
        let mut done: Option<(usize, usize)> = None;
        for r in rows {
            let (img, py) = (r / ph, r % ph);
            // The window's rows inside the image: 2·py − 1 ..= 2·py + 1.
            let (lo, hi) = ((2 * py).saturating_sub(1), (2 * py + 2).min(oh));
            let mut from = match done {
                Some((i, next)) if i == img => next.max(lo),
                _ => lo,
            };
            // Row y lives in ring slot y % POOL_RING_ROWS; one GEMM per run of
            // rows that does not wrap around the ring.
            while from < hi {
                let slot0 = from % POOL_RING_ROWS;
                let to = hi.min(from + POOL_RING_ROWS - slot0);
                let pixels = (img * oh + from) * ow..(img * oh + to) * ow;
                // C's row `pixels.start` at ring slot `slot0` (wrapping
                // arithmetic: only rows in `pixels` are written).
                let c = ring.as_mut_ptr().wrapping_add(slot0 * ow * n).wrapping_sub(pixels.start * n);
                // SAFETY: the caller's contract for `p` and `U`; C rows
                // `pixels` are ring slots slot0..slot0 + (to − from), inside
                // this worker's ring; the task scratch holds an A block of up
                // to POOL_RING_ROWS rows (`maxpool_worker_len`).
                unsafe { task::<U>(p, pixels, 0..n, c, task_scratch) };
                from = to;
            }
            done = Some((img, hi));
            // SAFETY: pool row r is `row_len` floats inside `out` (r < batch ·
            // ph), written by this worker alone (run_split's ranges partition
            // the rows) while `out` is borrowed mutably for the whole call.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.get().add(r * row_len), row_len) };
            crate::pool::max_pool_row_at(isa, pool, ring, |y| (y % POOL_RING_ROWS) * ow * n, py, o);
        }
    });
}

/// Runs `p` on microkernel `U`: the [`split`] task grid, on `threads` workers
/// ([`crate::par::run_tasks`]) that each own one scratch slot; a grid of one
/// row or one column of tasks as one range per worker sized to the workers'
/// speeds ([`crate::par::run_split`]). A task's arithmetic does not depend
/// on which worker runs it, so results are identical whatever the scheduling.
///
/// # Safety
/// `U`'s ISA is supported by this CPU. The caller has checked every length:
/// `out.len() == m·n`, `p.b` holds the packed `k × n` matrix, the epilogue's
/// bias has `n` floats and its residual `m·n`, the A source's input matches its
/// shape with `m` output pixels, and `scratch` has at least
/// `scratch_len(Blocking::of::<U>(), m, k, n, threads, im2col)` floats.
pub(crate) unsafe fn run<U: Microkernel>(p: &Problem, out: &mut [f32], scratch: &mut [f32], threads: usize) {
    let threads = threads.max(1);
    let (tm, tn) = split(p.m, p.k, p.n, U::NR, threads);
    let per = task_scratch_len(Blocking::of::<U>(), p.m, p.k, p.n, threads, p.a.copies_a(U::KC));
    let tiles = p.n.div_ceil(U::NR);
    let c = crate::par::SendPtr(out.as_mut_ptr());
    if tm * tn > 1 && (tm == 1 || tn == 1) {
        // A row split or a column split (column tiles: each worker streams
        // only its part of B), one range per worker, sized to the workers'
        // speeds. For column splits, same process, alternating with
        // `run_tasks`' equal halves inference by inference (Zen 4, batch 1,
        // two threads, 200 rounds): those layers (stages 4–5 with big B,
        // `conv5_block1_2`) 3–5 % faster, v1.5 and v1 0.4–1 % faster on the
        // sums of per-layer medians.
        let (units, workers) = if tn == 1 { (p.m, tm) } else { (tiles, tn) };
        crate::par::run_split(units, workers, scratch, per, |u, scr| {
            let (rows, cols) = if tn == 1 { (u, 0..p.n) } else { (0..p.m, u.start * U::NR..(u.end * U::NR).min(p.n)) };
            if rows.is_empty() || cols.is_empty() {
                return;
            }
            // SAFETY: the caller guarantees U's ISA and every length; the
            // ranges partition the rows (or the column tiles) of C, each
            // run once.
            unsafe { task::<U>(p, rows, cols, c.get(), scr) };
        });
        return;
    }
    crate::par::run_tasks(tm * tn, threads, scratch, per, |t, scr| {
        let (ti, tj) = (t / tn, t % tn);
        let rows = p.m * ti / tm..p.m * (ti + 1) / tm;
        let cols = (tiles * tj / tn) * U::NR..((tiles * (tj + 1) / tn) * U::NR).min(p.n);
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        // SAFETY: the caller guarantees U's ISA and every length; tasks write
        // only their own rows × cols of C, (ti, tj) ↦ (rows, cols) is a
        // partition of C, and run_tasks hands out each task index once.
        unsafe { task::<U>(p, rows, cols, c.get(), scr) };
    });
}

/// Bytes of C that a task with several K blocks sweeps per K block at most:
/// its rows are cut into chunks of about this much C (at least `MC` rows),
/// each taken through the whole K reduction before the next, so that the
/// partial sums stay in L2 between K blocks instead of round-tripping
/// through L3 once per block. Costs one more pass over B per chunk (from
/// L3, streamed and prefetched). Per element the K order is unchanged, so
/// results are bit-identical. Measured on a Zen 4, one thread, AVX-512
/// (`BATCH=8 one_conv`): v1.5's 3×3/2 on 56×56×128 (nine K blocks, 3.2 MB of
/// C) at batch 8 94.8 → 106.0 GFLOP/s, the 1×1/2 28×28×512→1024 at batch 8
/// 101–104 → 105–106; every other ResNet50 shape within ±1 % at batch 1
/// and 8. In the network at batch 8, 2 threads: those two layers 4–6 %
/// faster, the whole inference within the noise.
const C_CHUNK_BYTES: usize = 512 << 10;

/// Largest K at which a residual already in C ([`Epilogue::residual_in_output`])
/// is where a single-K-block tile starts its sums, rather than an add in the
/// epilogue. Either way C's tile is read once; at K = 64 a tile's k loop is
/// short enough that taking the residual's loads and adds out of the
/// epilogue shows: ResNet50's 56×56 `conv2_block1_3`/`block2_3` 2 % faster in
/// the network (same-process A/B on Zen 4, AVX-512; AVX2 standalone +0.4–2 %),
/// while at K = 128–512 starting from C was 1–3 % slower.
const IN_PLACE_START_MAX_K: usize = 64;

/// One task: rows × cols of C, through the whole K reduction, in chunks of
/// rows of at most [`C_CHUNK_BYTES`] of C when there are several K blocks.
///
/// # Safety
/// As [`run`]; `c` points at C (`m × n`), the task owns `rows × cols` of it.
unsafe fn task<U: Microkernel>(p: &Problem, rows: Range<usize>, cols: Range<usize>, c: *mut f32, scratch: &mut [f32]) {
    let kb = p.k_blocking(Blocking::of::<U>());
    let (_, nk, _) = kb;
    let chunk_rows = (C_CHUNK_BYTES / (4 * cols.len().clamp(1, U::NC))).max(U::MC);
    let chunks = if nk > 1 { rows.len().div_ceil(chunk_rows).max(1) } else { 1 };
    let len = rows.len();
    for i in 0..chunks {
        let sub = rows.start + len * i / chunks..rows.start + len * (i + 1) / chunks;
        // SAFETY: forwarded; the chunks partition the task's rows.
        unsafe { task_rows::<U>(p, kb, sub, cols.clone(), c, scratch) };
    }
}

/// [`task`] on one chunk of its rows, with the K blocking `kb` of
/// [`Problem::k_blocking`].
///
/// # Safety
/// As [`task`].
unsafe fn task_rows<U: Microkernel>(
    p: &Problem,
    kb: (Option<usize>, usize, usize),
    rows: Range<usize>,
    cols: Range<usize>,
    c: *mut f32,
    scratch: &mut [f32],
) {
    debug_assert!(mc_max(U::MC) <= MAX_MC && U::MC % U::MR == 0 && U::NC % U::NR == 0 && U::MR <= MAX_MR);
    debug_assert!(mc_max(U::MC).div_ceil(U::MR) <= MAX_STRIPS);
    // Per ic block, computed once and reused by every column tile (no
    // divisions in the tile loop): A row pointers, residual row offsets, and
    // one Tile per strip with its share of the next panel's prefetch
    // (first line, lines, 16.16 step).
    let mut offs = [0usize; MAX_MC];
    let mut a_rows = [std::ptr::null::<f32>(); MAX_MC];
    let mut res_offs = [0usize; MAX_MC];
    let mut strip_pf = [(0usize, 0usize, 0usize); MAX_STRIPS];
    let mut padding_only = [false; MAX_STRIPS];
    // K blocks: whole taps when A is read in place, else `k_blocks`.
    let (direct, nk, kcb) = kb;
    let bias = p.ep.bias.map_or(std::ptr::null(), |b| b.as_ptr());
    // A residual already in C (Epilogue::residual_in_output): the sums
    // start from it, like a K block after the first, when there are several
    // K blocks (later blocks overwrite C with partial sums) or K is at most
    // IN_PLACE_START_MAX_K; otherwise the epilogue reads it from the C tile
    // just before storing over it, exactly as a separate residual.
    let in_place = p.ep.residual_in_output;
    let start_from_c = in_place && (nk > 1 || p.k <= IN_PLACE_START_MAX_K);
    let res = if in_place && !start_from_c {
        c as *const f32
    } else {
        p.ep.residual.map_or(std::ptr::null(), |r| r.as_ptr())
    };
    // ic blocks: see `mc_block`.
    let mc = mc_block(rows.len(), U::MC, U::MR);
    let shape = p.a.shape();
    // Padded input: runs of one kernel row each, a padded row apart.
    let (segs, seg_stride) = match p.a {
        ASource::Padded(s, _) => (s.kh, padded_row_len(s)),
        _ => (1, 0),
    };
    debug_assert!(segs == 1 || U::SEGMENTS, "a padded input needs a kernel that reads rows in runs");
    let (oh, ow) = (shape.out_h(), shape.out_w());
    // The fields no block changes, set once; each ic block then writes only
    // what differs per strip (a whole Tile per strip and block, built on the
    // stack and copied, cost another 1 % at K = 64).
    let mut tiles = [Tile { b_next: p.k * PANEL, ldc: p.n, segs, seg_stride, ..Tile::EMPTY }; MAX_STRIPS];

    let mut jc = cols.start;
    while jc < cols.end {
        let jc_end = (jc + U::NC).min(cols.end);
        for kb in 0..nk {
            let k0 = kb * kcb;
            let kc = kcb.min(p.k - k0);
            let last = kb + 1 == nk;
            let mut ic = rows.start;
            while ic < rows.end {
                let mcur = mc.min(rows.end - ic);
                // "Pack" A: row pointers for this MC × kc block, each to kc
                // readable floats (row offsets are pixel starts and
                // k0 + kc <= cin for 1×1; see tap_rows for in-place taps).
                let a_block = &mut a_rows[..mcur];
                match p.a {
                    ASource::PackedPixels(shape, input) => {
                        // Copy the block's rows next to each other (see packs_pixels).
                        pixel_rows(shape, ic, &mut offs[..mcur]);
                        for (r, o) in offs[..mcur].iter().enumerate() {
                            scratch[r * kc..(r + 1) * kc].copy_from_slice(&input[*o + k0..*o + k0 + kc]);
                        }
                        for (r, a) in a_block.iter_mut().enumerate() {
                            *a = scratch.as_ptr().wrapping_add(r * kc);
                        }
                    }
                    ASource::Pixels(shape, input) => {
                        pixel_rows(shape, ic, &mut offs[..mcur]);
                        for (a, o) in a_block.iter_mut().zip(&offs[..mcur]) {
                            *a = input.as_ptr().wrapping_add(o + k0);
                        }
                    }
                    ASource::Padded(shape, padded) => padded_rows(shape, padded, ic, a_block),
                    ASource::Im2col(shape, input) if direct.is_some() => tap_rows(shape, input, k0, ic, a_block),
                    ASource::Im2col(shape, input) => {
                        // SAFETY: the caller guarantees U's ISA.
                        unsafe { U::im2col(shape, input, ic, mcur, k0, kc, scratch) };
                        for (r, a) in a_block.iter_mut().enumerate() {
                            *a = scratch.as_ptr().wrapping_add(r * kc);
                        }
                    }
                }
                // Residual rows (the last K block only): the output's own
                // pixels (in a separate buffer or in C), or a subsampled
                // image's (Epilogue::residual_offset).
                let res_here = if last { res } else { std::ptr::null() };
                if !res_here.is_null() {
                    for (r, o) in res_offs[..mcur].iter_mut().enumerate() {
                        let px = ic + r;
                        *o = if p.ep.residual_subsample.is_none() {
                            px * p.n
                        } else {
                            let (img, yx) = (px / (oh * ow), px % (oh * ow));
                            p.ep.residual_offset(shape, img, yx / ow, yx % ow)
                        };
                    }
                }
                // ir: balanced strips of at most MR rows, one Tile each,
                // filled once per ic block at column jc; the jr loop below
                // only sets the B panel and prefetch hints and moves C, the
                // residual and the bias along by NR. With K = 64 a tile is
                // only ~400 cycles of FMAs, so building all of a Tile per
                // call cost a quarter of the time of such a layer.
                let strips = mcur.div_ceil(U::MR);
                let (base, extra) = (mcur / strips, mcur % strips);
                strip_prefetches(kc, strips, kc, &mut strip_pf[..strips]);
                let tile_bias = if last && !bias.is_null() { bias.wrapping_add(jc) } else { std::ptr::null() };
                let mut i = 0;
                for (s, t) in tiles[..strips].iter_mut().enumerate() {
                    let mr = base + usize::from(s < extra);
                    // All MAX_MR pointers where the table has them (a fixed
                    // 64-byte copy; `mr` of them would be a memmove call):
                    // the kernels read only the first `mr`.
                    match a_rows.get(i..i + MAX_MR) {
                        Some(eight) => t.a.copy_from_slice(eight),
                        None => t.a[..mr].copy_from_slice(&a_rows[i..i + mr]),
                    }
                    // Residual rows only where the task has a residual (the
                    // others stay null from the start); null before the
                    // last K block.
                    if !res.is_null() {
                        for r in 0..mr {
                            t.res[r] = if res_here.is_null() {
                                std::ptr::null()
                            } else {
                                res_here.wrapping_add(res_offs[i + r] + jc)
                            };
                        }
                    }
                    // A strip whose rows all fall in the padding at this
                    // tap would add zeros to C: skipped when C already
                    // holds its partial sums and no epilogue is due (the
                    // 7×7 3×3 layers skip one of 9 strips in 10 of their
                    // 18 K blocks, 6 % of their multiplies).
                    padding_only[s] = direct.is_some()
                        && (kb > 0 || start_from_c)
                        && !last
                        && t.a[..mr].iter().all(|&row| is_padding_row(row));
                    t.kc = kc;
                    t.c = c.wrapping_add((ic + i) * p.n + jc);
                    t.mr = mr;
                    t.accumulate = kb > 0 || start_from_c;
                    t.last = last;
                    t.bias = tile_bias;
                    t.relu = last && p.ep.relu;
                    i += mr;
                }
                // B micro-panel of column tile jr (k0 rows in), or null past jc_end.
                let panel = |jr: usize| -> *const f32 {
                    if jr < jc_end {
                        // SAFETY: panel jr/16 exists (jr < n) and has k rows, k0 < k.
                        unsafe { p.b.as_ptr().add((jr / PANEL) * p.k * PANEL + k0 * PANEL) }
                    } else {
                        std::ptr::null()
                    }
                };
                // The B micro-panel the loop nest needs after column tile jr:
                // the next tile of this K block, or the first of the next K
                // block. Its kc' lines (kc' rows of 64 bytes) are prefetched
                // into L2 a share per strip while tile jr is computed (for
                // small M, B streams from L3/DRAM), and into L1 by the last
                // strip (for large M, B is already in L2; AVX2 only).
                let next_panel = |jr: usize| -> (*const f32, usize) {
                    if jr + U::NR < jc_end {
                        (panel(jr + U::NR), kc)
                    } else if kb + 1 < nk {
                        let k1 = k0 + kcb;
                        // SAFETY: panel jc/16 exists and has k rows, k1 < k.
                        (unsafe { p.b.as_ptr().add((jc / PANEL) * p.k * PANEL + k1 * PANEL) }, kcb.min(p.k - k1))
                    } else {
                        (std::ptr::null(), 0)
                    }
                };
                // A read in place whole (one K block) by a 1×1 layer:
                // its strips come from L3 in the first column tile.
                let a_from_afar = nk == 1 && matches!(p.a, ASource::Pixels(..));
                let mut jr = jc;
                while jr < jc_end {
                    let (next, lines) = next_panel(jr);
                    let b = panel(jr);
                    let nr = U::NR.min(p.n - jr);
                    let strip_tiles = tiles.as_mut_ptr();
                    for s in 0..strips {
                        // The tile after this one: the next strip, or the
                        // first strip at the next column tile (whose C and
                        // residual pointers have already moved on by NR).
                        let after = if s + 1 < strips {
                            strip_tiles.wrapping_add(s + 1)
                        } else if jr + U::NR < jc_end {
                            strip_tiles
                        } else {
                            std::ptr::null_mut()
                        };
                        // SAFETY: s < strips <= MAX_STRIPS; no other
                        // reference to tile s is alive (the kernel below
                        // reads its successor through `next` only).
                        let t = unsafe { &mut *strip_tiles.add(s) };
                        if padding_only[s] {
                            // C += 0 (no bias or residual before the last K block).
                            t.c = t.c.wrapping_add(U::NR);
                            continue;
                        }
                        let (l0, pf_lines, step) =
                            if lines == kc { strip_pf[s] } else { strip_prefetch(lines, s, strips, kc) };
                        t.b = b;
                        t.nr = nr;
                        t.pf = next.wrapping_add(PANEL * l0);
                        t.pf_lines = pf_lines;
                        t.pf_step = step;
                        t.pf_l1 = if s + 1 == strips { next } else { std::ptr::null() };
                        t.next = after;
                        // The next strip's A rows, met for the first time
                        // in this block's first column tile (see
                        // `GroupPrefetch`).
                        t.next_a = a_from_afar && jr == jc && s + 1 < strips;
                        // SAFETY: the caller guarantees U's ISA; the tile's A
                        // rows are rows of this ic block's A (kc floats from
                        // k0; for a padded input, kh runs of kw·cin floats a
                        // padded row apart, inside the padded copy whose
                        // length the caller checked), b is panel jr at row
                        // k0 (kc rows), C row m's
                        // columns jr..jr + nr are inside C and owned by this
                        // task, and the residual (checked against the shape
                        // by Epilogue::check, or C itself) and the bias
                        // likewise hold them.
                        unsafe { U::tile(t) };
                        t.c = t.c.wrapping_add(U::NR);
                        if !t.bias.is_null() {
                            t.bias = t.bias.wrapping_add(U::NR);
                        }
                        if !res_here.is_null() {
                            for r in &mut t.res[..t.mr] {
                                *r = r.wrapping_add(U::NR);
                            }
                        }
                    }
                    jr += U::NR;
                }
                ic += mcur;
            }
        }
        jc = jc_end;
    }
}

/// One product `C[m × n] = A[m × k] · B[k × n]` with no epilogue, for
/// Winograd's per-position products (`m` = a block's tiles, up to a few
/// dozen): A rows at stride `lda`, B in 16-column panels of `k` rows each
/// (consecutive), C rows at stride `ldc`. `b_after` (or null) is the B of
/// the caller's next product, with the same `k`: its first panels are
/// prefetched during the last column block, so that a sequence of products
/// streams its weights without a cold start each (Winograd's deep layers at
/// batch 1 read 17 MB of them from memory per call).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowsProduct {
    pub m: usize,
    pub k: usize,
    pub a: *const f32,
    pub lda: usize,
    pub b: *const f32,
    pub n: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub b_after: *const f32,
}

/// Computes `p` with the same microkernel, K blocking, balanced strips and
/// next-panel prefetch as [`run`], on the calling thread: column tiles →
/// K blocks → strips, so that B is read front to back as in
/// [`gemm_rows_tall`] (the AVX2 kernel on stage 5's F(2×2) products, cold
/// weights: medians 0.985–0.99× of K blocks outside column tiles; the
/// 8×32 AVX-512 one unchanged on Zen 4).
///
/// Per tile it only moves pointers: the strips' prefetch shares
/// ([`StripShares`]) are divided out once per call and one [`Tile`] is
/// reused. Building a Tile and three divisions per tile had taken 12 % of a
/// 56×56×64 F(4×4) layer (`perf`, one thread, Zen 3; 4 % now); alternated
/// inference by inference with the old loop (60 pairs, twice, v1.5, one
/// thread) every Winograd layer was faster: stage 2 1.07–1.08×, stage 3
/// 1.03–1.05×, stage 4 1.02–1.04×, stage 5 1.01–1.02×; the inference 1.006–1.010×.
///
/// # Safety
/// `U`'s ISA is supported; `p.a` is readable for `m` rows of `k` floats,
/// `p.b` for `ceil(n / 16)` panels of `k × 16` floats, `p.c` writable for
/// `m` rows of `n` floats.
pub(crate) unsafe fn gemm_rows<U: Microkernel>(p: &RowsProduct) {
    let RowsProduct { m, k, a, lda, b, n, c, ldc, b_after } = *p;
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let (nk, kcb) = k_blocks(k, U::KC_ROWS);
    let strips = m.div_ceil(U::MR);
    let (base, extra) = (m / strips, m % strips);
    // Panel of column jr at row k0 (jr < n, k0 < k): wrapping arithmetic, so
    // computing an address is never UB; only the microkernel dereferences.
    let panel = |jr: usize, k0: usize| b.wrapping_add((jr / PANEL) * k * PANEL + k0 * PANEL);
    // Each strip's share of the next panel's prefetch, for the K blocks of
    // kcb steps and the last (maybe shorter) one: divided out once per call,
    // not per tile (Winograd's products call this per transform position,
    // with K = 64 tiles of ~400 cycles of FMAs).
    let last_kc = k - (nk - 1) * kcb;
    let shares_full = StripShares::new(kcb, strips, kcb);
    let shares_last = if last_kc == kcb { shares_full } else { StripShares::new(last_kc, strips, last_kc) };
    // One Tile, its fixed fields set once; each call writes what differs.
    let mut t = Tile { b_next: k * PANEL, ldc, ..Tile::EMPTY };
    // Column tiles outside K blocks: B read front to back (see
    // `gemm_rows_tall`).
    let mut jr = 0;
    while jr < n {
        t.nr = U::NR.min(n - jr);
        for kb in 0..nk {
            let k0 = kb * kcb;
            let last = kb + 1 == nk;
            let next = if !last {
                panel(jr, k0 + kcb)
            } else if jr + U::NR < n {
                panel(jr + U::NR, 0)
            } else {
                b_after
            };
            let mut shares = match (next.is_null(), last) {
                (true, _) => StripShares::NONE,
                (false, true) => shares_last,
                (false, false) => shares_full,
            };
            t.kc = if last { last_kc } else { kcb };
            t.b = panel(jr, k0);
            t.accumulate = kb > 0;
            t.last = last;
            let mut i = 0;
            for s in 0..strips {
                let mr = base + usize::from(s < extra);
                for r in 0..mr {
                    t.a[r] = a.wrapping_add((i + r) * lda + k0);
                }
                let (l0, pf_lines, pf_step) = shares.next_strip();
                t.c = c.wrapping_add(i * ldc + jr);
                t.mr = mr;
                t.pf = next.wrapping_add(PANEL * l0);
                t.pf_lines = pf_lines;
                t.pf_step = pf_step;
                t.pf_l1 = if s + 1 == strips { next } else { std::ptr::null() };
                // SAFETY: the caller guarantees U's ISA and the extents of A,
                // B and C; strips cover rows 0..m, tiles columns jr..jr+nr < n.
                unsafe { U::tile(&t) };
                i += mr;
            }
        }
        jr += U::NR;
    }
}

/// One call of a [`TallMicrokernel`]: `C[mr × nr] (+)= A[mr × kc] · B[kc × nr]`
/// for one 16-column B panel.
///
/// A row `r < mr` is `kc` contiguous floats at `a + r·lda` (a fixed stride,
/// so the kernel needs one pointer for any number of rows); B is the packed
/// panel at `b` (row `kk` at `b + 16·kk`); C row `r` is at `c + r·ldc`, `nr`
/// valid columns. No epilogue: Winograd's products only.
// Only AVX-512 has a tall kernel (NEON's 32 registers could; not written).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct TallTile {
    /// Row 0 of A at column `k0`.
    pub a: *const f32,
    /// Row stride of A.
    pub lda: usize,
    /// Reduction length.
    pub kc: usize,
    /// Packed B panel at row `k0`.
    pub b: *const f32,
    /// Top-left of the C tile.
    pub c: *mut f32,
    /// Row stride of C.
    pub ldc: usize,
    /// Valid rows, `1..=MR`.
    pub mr: usize,
    /// Valid columns, `1..=16`.
    pub nr: usize,
    /// Start from the values in C (a K block after the first) instead of zero.
    pub accumulate: bool,
    /// `kc` lines of B to prefetch into L2, one per k step (the next panel
    /// this loop reads, for the first strip of a panel); any address is
    /// harmless: a strip with nothing to fetch passes its own panel.
    pub pf: *const f32,
}

/// A microkernel for products with few rows against a B streamed from
/// memory: one 16-column panel × up to `MR` rows, so that each B line is
/// loaded into a register once per strip and a block of up to `MR` rows
/// reads every weight from memory once.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) trait TallMicrokernel {
    /// Most rows per tile (strips are `1..=MR` rows).
    const MR: usize;
    /// Reduction block: `MR × KC` of A and `KC × 16` of B stay in L1.
    const KC: usize;

    /// Computes one tile.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; every pointer in `t` is valid for the
    /// reads and writes described on [`TallTile`]; `1 <= t.mr <= MR`,
    /// `1 <= t.nr <= 16`.
    unsafe fn tile(t: &TallTile);
}

/// [`gemm_rows`] on a [`TallMicrokernel`]: same contract, same result bit
/// for bit (each C element is one FMA chain over k in order, stored and
/// reloaded exactly between K blocks).
///
/// Loop nest: 16-column panels → K blocks of ≤ `U::KC` → balanced strips of
/// ≤ `U::MR` rows. The first strip of a panel's K block fetches it from
/// memory (and prefetches the next block into L2: the rest of this panel,
/// else the next panel, else the first of `b_after`), the others read it
/// from L1.
///
/// Why panels outside K blocks: a panel's `k` rows are consecutive in the
/// packed B, so this order reads the weights front to back, one sequential
/// stream; K blocks outside panels read `KC` rows of each panel in turn and
/// jump a panel's length at each step. Where B comes from memory and K has
/// several blocks (stage 5's 7×7×512 F(2×2) products at batch 1: 16 MiB of
/// weights per layer, K = 512, 16 rows), the stream was measured on a
/// 2-core Zen 4 (`winograd_ab 7 512 2`, cold weights, interleaved, 40
/// rounds, twice): medians 0.963–0.967× at one thread, 0.93× at two,
/// minima unchanged; in the network (same process, alternated inference
/// by inference, per-layer medians) v1's three F(2×2) layers 0.95–0.98×
/// at one thread (60 rounds), v1.5's two 0.97–0.99× at two (100 rounds).
/// The C tile that each K block after the first reloads is the same
/// `MR × 16` floats, still in L1.
///
/// # Safety
/// As [`gemm_rows`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) unsafe fn gemm_rows_tall<U: TallMicrokernel>(p: &RowsProduct) {
    let RowsProduct { m, k, a, lda, b, n, c, ldc, b_after } = *p;
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let (nk, kcb) = k_blocks(k, U::KC);
    let panels = n.div_ceil(PANEL);
    let strips = m.div_ceil(U::MR);
    let (base, extra) = (m / strips, m % strips);
    // Panel p at row k0: wrapping arithmetic, so computing an address is
    // never UB; only the microkernel dereferences.
    let panel = |p: usize, k0: usize| b.wrapping_add(p * k * PANEL + k0 * PANEL);
    for p in 0..panels {
        for kb in 0..nk {
            let k0 = kb * kcb;
            let kc = kcb.min(k - k0);
            let here = panel(p, k0);
            let next = if kb + 1 < nk {
                panel(p, k0 + kcb)
            } else if p + 1 < panels {
                panel(p + 1, 0)
            } else if b_after.is_null() {
                here
            } else {
                b_after
            };
            let mut i = 0;
            for s in 0..strips {
                let mr = base + usize::from(s < extra);
                let tile = TallTile {
                    a: a.wrapping_add(i * lda + k0),
                    lda,
                    kc,
                    b: here,
                    c: c.wrapping_add(i * ldc + p * PANEL),
                    ldc,
                    mr,
                    nr: PANEL.min(n - p * PANEL),
                    accumulate: kb > 0,
                    pf: if s == 0 { next } else { here },
                };
                // SAFETY: the caller guarantees U's ISA and the extents of A,
                // B and C; strips cover rows 0..m, panel p columns < n.
                unsafe { U::tile(&tile) };
                i += mr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values in [-1, 1) from the xorshift32 state `seed` (advanced).
    fn xorshift_values(seed: &mut u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                (*seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn strip_prefetches_match_strip_prefetch_strip_by_strip() {
        let mut out = [(0, 0, 0); MAX_STRIPS];
        for strips in 1..=MAX_STRIPS {
            for lines in (0..200).chain([256, 384, 512, 1000]) {
                for kc in [1, 3, 4, 7, 64, 147, 256, 512] {
                    strip_prefetches(lines, strips, kc, &mut out[..strips]);
                    // gemm_rows keeps a StripShares per K block length and
                    // starts each column tile from a copy of it.
                    let start = StripShares::new(lines, strips, kc);
                    let mut again = start;
                    for (s, &got) in out[..strips].iter().enumerate() {
                        let want = strip_prefetch(lines, s, strips, kc);
                        assert_eq!(got, want, "{lines} lines, strip {s} of {strips}, kc {kc}");
                        assert_eq!(again.next_strip(), want, "{lines} lines, strip {s} of {strips}, kc {kc}: copy");
                    }
                }
            }
        }
    }

    /// Runs each of `shapes` (whose task grid at two threads must be
    /// `grid`) on a two-thread team with the owner's share forced to its
    /// bounds and between, and checks every result bit-identical to one
    /// thread's.
    fn same_bits_whatever_the_share(shapes: &[ConvShape], grid: (usize, usize), mut seed: u32) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut rand = |n: usize| xorshift_values(&mut seed, n);
        for isa in crate::Isa::under_test() {
            for s in shapes {
                let (m, k, n) = (s.batch * s.out_h() * s.out_w(), s.kh * s.kw * s.in_c, s.out_c);
                assert_eq!(split(m, k, n, 16, 2), grid, "{s:?}: task grid");
                let (input, w, bias, res) = (rand(s.input_len()), rand(s.weights_len()), rand(n), rand(s.output_len()));
                let mut packed = vec![0.0; crate::gemm::packed_b_len(k, n)];
                crate::gemm::pack_b(k, n, &w, &mut packed);
                let ep = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true, ..Epilogue::default() };
                let run = |threads: usize| {
                    let mut out = vec![f32::NAN; s.output_len()];
                    if s.kh == 1 {
                        let mut scratch = vec![f32::NAN; crate::gemm::conv1x1_scratch_len(s, threads)];
                        crate::gemm::conv1x1(isa, s, &input, &packed, &ep, &mut out, &mut scratch, threads);
                    } else {
                        let mut scratch = vec![f32::NAN; crate::gemm::implicit_scratch_len(s, threads)];
                        crate::gemm::conv_implicit(isa, s, &input, &packed, &ep, &mut out, &mut scratch, threads);
                    }
                    out
                };
                let want = run(1);
                for share in [0.2, 0.35, 0.45, 0.5, 0.8] {
                    let got = pool.install(|| {
                        crate::par::with_team(2, || {
                            crate::par::set_owner_share(share);
                            run(2)
                        })
                    });
                    assert!(
                        got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa} {s:?} share {share}"
                    );
                }
            }
        }
    }

    #[test]
    fn row_splits_give_the_same_bits_whatever_the_threads_share() {
        // Row-split GEMMs (one range of rows per worker). 14×14×1024 → 256
        // has aliasing rows (copied into scratch sized for the larger range
        // on an L1 with few ways), 28×28×128 → 512 adds a residual, the 3×3
        // is an implicit GEMM.
        let shapes = [
            ConvShape::square(1, 14, 14, 1024, 256, 1, 1, 0),
            ConvShape::square(1, 28, 28, 128, 512, 1, 1, 0),
            ConvShape::square(1, 28, 28, 32, 40, 3, 1, 1),
        ];
        same_bits_whatever_the_share(&shapes, (2, 1), 0x2545_f491);
    }

    #[test]
    fn column_splits_give_the_same_bits_whatever_the_threads_share() {
        // Column-split GEMMs (one range of column tiles per worker).
        // 7×7×2048 → 512 has aliasing rows, 7×7×512 → 2048 is stage 5's
        // `_3` with a residual, the 3×3/2 an implicit GEMM.
        let shapes = [
            ConvShape::square(1, 7, 7, 2048, 512, 1, 1, 0),
            ConvShape::square(1, 7, 7, 512, 2048, 1, 1, 0),
            ConvShape::square(1, 14, 14, 512, 512, 3, 2, 1),
        ];
        same_bits_whatever_the_share(&shapes, (1, 2), 0x1b87_3593);
    }

    #[test]
    fn group_prefetch_asks_for_every_line_of_the_next_tile_once_in_order() {
        use std::cell::RefCell;
        // Addresses only (nothing is dereferenced but the next Tile).
        let base = 1usize << 20;
        for (mr_next, kc, in_place, next_a) in [(12, 64, false, true), (5, 512, true, false), (7, 256, false, true)] {
            let mut n = Tile::EMPTY;
            n.c = (base + 0x10000) as *mut f32;
            n.ldc = 96;
            n.kc = kc;
            n.mr = mr_next;
            for r in 0..MAX_MR {
                n.a[r] = (base + 0x40000 + r * 0x1000) as *const f32;
                n.res[r] = if in_place {
                    n.c.wrapping_add(r * n.ldc) as *const f32
                } else {
                    (base + 0x80000 + r * 4 * n.ldc) as *const f32
                };
            }
            let mut t = Tile::EMPTY;
            t.kc = kc;
            t.b = base as *const f32;
            t.b_next = kc * PANEL;
            t.pf = (base + 0x100000) as *const f32;
            t.pf_lines = kc;
            t.pf_step = prefetch_step(kc, kc);
            t.next = &n;
            t.next_a = next_a;
            let (l1, l2) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
            // SAFETY: t.next is `n`, alive for the whole loop.
            let mut p = unsafe { GroupPrefetch::<12, 2>::new(&t) };
            for _ in 0..kc / 4 {
                // SAFETY: as above; the hints are only recorded.
                unsafe { p.group(3, |a| l1.borrow_mut().push(a as usize), |a| l2.borrow_mut().push(a as usize)) };
            }
            // L1: the next tile's 12 rows × 2 lines of C, each followed by
            // its residual line unless the residual is C itself.
            let mut want = Vec::new();
            for r in 0..12 {
                for v in 0..2 {
                    want.push(n.c as usize + r * 4 * n.ldc + 64 * v);
                    if !in_place {
                        want.push(n.res[r] as usize + 64 * v);
                    }
                }
            }
            assert_eq!(*l1.borrow(), want, "mr {mr_next} kc {kc}");
            // L2: every line of both B panels once (a share of kc lines
            // over kc / 4 groups: four lines of each per group), then
            // (next_a) the next strip's rows line by line, all asked for.
            let l2 = l2.borrow();
            let b_lines: Vec<usize> = l2.iter().copied().filter(|&a| a >= base + 0x100000).collect();
            // Group g: lines 4g..4g + 4, each of panel 0 then panel 1.
            let want_b: Vec<usize> =
                (0..kc).flat_map(|l| [0, 4 * t.b_next].map(|p| base + 0x100000 + p + 64 * l)).collect();
            assert_eq!(b_lines, want_b, "mr {mr_next} kc {kc}");
            let a_lines: Vec<usize> = l2.iter().copied().filter(|&a| a < base + 0x100000).collect();
            let want_a: Vec<usize> = if next_a {
                (0..mr_next).flat_map(|r| (0..kc / 16).map(move |l| base + 0x40000 + r * 0x1000 + 64 * l)).collect()
            } else {
                Vec::new()
            };
            assert_eq!(a_lines, want_a, "mr {mr_next} kc {kc}");
        }
    }

    #[test]
    fn next_tile_lines_go_out_by_the_middle_of_the_k_loop() {
        // 8×32 tiles: 16 lines; one per group from K = 128, two at K = 64.
        assert_eq!(next_tile_lines_per_group(16, 512), 1);
        assert_eq!(next_tile_lines_per_group(16, 128), 1);
        assert_eq!(next_tile_lines_per_group(16, 64), 2);
        for lines in 1..=2 * MAX_MR {
            for kc in 1..=600 {
                let per = next_tile_lines_per_group(lines, kc);
                assert!(per >= 1);
                // Groups of 4 k steps in the first half of the loop ask for all lines.
                if kc >= 8 {
                    assert!(per * (kc / 8) >= lines, "lines {lines} kc {kc}: {per} per group");
                }
            }
        }
    }

    #[test]
    fn k_blocking() {
        assert_eq!(k_blocks(147, 256), (1, 147));
        assert_eq!(k_blocks(384, 256), (1, 384));
        assert_eq!(k_blocks(512, 256), (2, 256));
        assert_eq!(k_blocks(2048, 256), (8, 256));
        assert_eq!(k_blocks(4608, 256), (18, 256));
        assert_eq!(k_blocks(1000, 256), (4, 250));
        // AVX2's loop nest: K = 512 whole, longer K in blocks of at most 256.
        assert_eq!(k_blocks_upto(512, 256, 512), (1, 512));
        assert_eq!(k_blocks_upto(513, 256, 512), (3, 171));
        assert_eq!(k_blocks_upto(2048, 256, 512), (8, 256));
        assert_eq!(Blocking::of::<super::super::avx2::Avx2>().k_blocks(512), (1, 512));
        assert_eq!(k_blocks_upto(100, 256, 64), (1, 100));
    }

    #[test]
    fn packs_rows_that_alias_on_an_l1_with_few_ways() {
        let one = |cin, stride| ConvShape::square(1, 14, 14, cin, 64, 1, stride, 0);
        // ResNet50's cin = 1024 and 2048 (rows 4 and 8 KiB apart) and 512 at
        // stride 2 (4 KiB); not 512 at stride 1 (2 KiB) or 256 at stride 2.
        for (cin, stride) in [(1024, 1), (2048, 1), (512, 2), (1024, 2)] {
            let s = one(cin, stride);
            assert!(rows_alias(&s), "{cin}/{stride}");
            // Copied on an 8-way L1 (Zen 3/4) and where the ways are
            // unknown, read in place on a 12-way one.
            assert!(packs_pixels_on(&s, Some(8)) && packs_pixels_on(&s, None), "{cin}/{stride}");
            assert!(!packs_pixels_on(&s, Some(12)) && !packs_pixels_on(&s, Some(16)), "{cin}/{stride}");
        }
        for (cin, stride) in [(512, 1), (256, 2), (64, 1), (1000, 1), (768, 1)] {
            assert!(!rows_alias(&one(cin, stride)) && !packs_pixels_on(&one(cin, stride), Some(8)), "{cin}/{stride}");
        }
        // Only 1×1 convolutions read pixel rows.
        assert!(!rows_alias(&ConvShape::square(1, 7, 7, 1024, 64, 3, 1, 1)));
        assert_eq!(copies_a(&one(512, 2), false, 256), packs_pixels(&one(512, 2)));
        assert!(!copies_a(&one(512, 1), false, 256));
    }

    #[test]
    fn packed_and_in_place_rows_give_the_same_bits() {
        // Whether a 1×1 convolution copies its A blocks depends on the
        // CPU's L1 (`packs_pixels`); both must give the same bits, on every
        // ISA under test, at one and two threads: aliasing rows (one ic
        // block; two images at stride 2, several blocks), and rows that
        // never alias (copied here all the same).
        let shapes = [
            ConvShape::square(1, 14, 14, 1024, 256, 1, 1, 0),
            ConvShape::square(2, 28, 28, 512, 72, 1, 2, 0),
            ConvShape::square(1, 9, 9, 40, 24, 1, 1, 0),
        ];
        let mut seed = 0x9e37_79b9_u32;
        let mut rand = |n: usize| xorshift_values(&mut seed, n);
        for isa in crate::Isa::under_test() {
            for s in &shapes {
                let (m, k, n) = (s.batch * s.out_h() * s.out_w(), s.in_c, s.out_c);
                let (input, w, bias) = (rand(s.input_len()), rand(s.weights_len()), rand(n));
                let mut packed = vec![0.0; crate::gemm::packed_b_len(k, n)];
                crate::gemm::pack_b(k, n, &w, &mut packed);
                let ep = Epilogue::bias_relu(&bias, true);
                for threads in [1, 2] {
                    let run = |a: ASource| {
                        let p = Problem { m, k, n, a, b: &packed, ep: &ep };
                        let len = crate::gemm::blockings().map(|bl| scratch_len(bl, m, k, n, threads, true)).max();
                        let mut scratch = vec![f32::NAN; len.unwrap_or(0)];
                        let mut out = vec![f32::NAN; m * n];
                        crate::gemm::dispatch(isa, &p, &mut out, &mut scratch, threads);
                        out
                    };
                    let (in_place, copied) = (run(ASource::Pixels(s, &input)), run(ASource::PackedPixels(s, &input)));
                    assert!(
                        in_place.iter().zip(&copied).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa} {s:?} threads {threads}"
                    );
                    assert!(in_place.iter().all(|x| x.is_finite()), "{isa} {s:?}: every output written");
                }
            }
        }
    }

    #[test]
    fn ic_blocks() {
        assert_eq!(mc_block(196, 144, 6), 196);
        assert_eq!(mc_block(49, 144, 6), 49);
        assert_eq!(mc_block(252, 144, 6), 252);
        assert_eq!(mc_block(3136, 144, 6), 144);
        assert_eq!(mc_block(784, 144, 6), 132);
        for len in 1..2000 {
            assert!(mc_block(len, 144, 6) <= mc_max(144).min(len));
            assert!(mc_block(len, 192, 8) <= mc_max(192).min(len));
        }
        assert!(mc_max(192) <= MAX_MC && mc_max(144) <= MAX_MC && mc_max(128) <= MAX_MC);
        // Every kernel's largest ic block fits the Tile table.
        fn strips<U: Microkernel>() -> usize {
            mc_max(U::MC).div_ceil(U::MR)
        }
        assert!(strips::<super::super::scalar::Scalar>() <= MAX_STRIPS);
        #[cfg(target_arch = "x86_64")]
        assert!(strips::<super::super::avx2::Avx2>() <= MAX_STRIPS);
        #[cfg(target_arch = "x86_64")]
        assert!(strips::<super::super::avx512::Avx512>() <= MAX_STRIPS);
        #[cfg(target_arch = "aarch64")]
        assert!(strips::<super::super::neon::Neon>() <= MAX_STRIPS);
    }

    #[test]
    fn splits() {
        assert_eq!(split(3136, 64, 64, 16, 1), (1, 1));
        let cases =
            [(3136, 64, 2), (49, 512, 2), (49, 2048, 4), (784, 128, 4), (5, 5, 3), (196, 256, 2), (12544, 64, 16)];
        for (m, n, t) in cases {
            let (tm, tn) = split(m, 256, n, 16, t);
            assert!(tm >= 1 && tn >= 1 && tm <= m && tn <= n.div_ceil(16), "{m}x{n} t{t}: {tm}x{tn}");
            assert!(tm * tn <= TASKS_PER_THREAD * t * 2, "{m}x{n} t{t}: {tm}x{tn}");
        }
        // Large M splits rows; M = 49 with many columns splits columns.
        assert_eq!(split(3136, 64, 64, 16, 2).1, 1);
        assert_eq!(split(49, 512, 2048, 16, 2).0, 1);
        // 196 rows: rows while B is small (stage 4's 1 MiB), columns when
        // every worker would stream 2 MiB or more of it; the makespan model
        // alone picks columns for both.
        assert_eq!(split(196, 256, 1024, 16, 2), (2, 1));
        assert_eq!(split(196, 1024, 256, 16, 2), (2, 1));
        assert_eq!(split(196, 512, 1024, 16, 2), (1, 2));
        assert_eq!(split(196, 256, 1024, 16, 4), (1, 4));
        assert_eq!(split(392, 512, 2048, 16, 2), (1, 2));
    }
}

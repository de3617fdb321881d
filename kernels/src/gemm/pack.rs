//! Packing: B once at prepare time (ISA-neutral 16-column panels), A at run time.
//!
//! # Packed B
//! ```text
//! panel p (p = 0 .. ceil(n/16)), at offset p·k·16:
//!     [k][16]   row kk holds B[kk][16p .. 16p+16], zero past column n
//! ```
//! Every panel starts at a multiple of 16 floats (64 bytes), so one packed
//! buffer (heap or memory-mapped file) serves every ISA: AVX2 and scalar use
//! one panel per tile, AVX-512 reads two adjacent panels (32 columns), NEON can
//! read one panel as four `float32x4_t`. K-blocking needs no repacking: the
//! rows `k0 .. k0+kc` of a panel start at `p·k·16 + k0·16`.
//!
//! # A
//! The microkernels read A through `MR` row pointers, each row contiguous over
//! the `kc` reduction values of its pixel. For a 1×1 convolution a row *is* the
//! input pixel's channel vector, wherever it sits (stride 1 or 2): the "packing"
//! is just computing the row offsets (`pixel_rows`), no copy and no gather pass.
//! For the implicit-GEMM convolution, when `cin` splits into whole K blocks
//! (`direct_kc`: ResNet50's 3×3 layers with 128 channels or more), each K
//! block lies inside one kernel tap `(ky, kx)`, so a row is again a piece of
//! one input pixel's channel vector, read in place (`tap_rows`), or a row of
//! zeros where the tap falls in the padding. Otherwise (the stem's 3
//! channels, small or odd `cin`) the im2col rows are gathered on the fly, one
//! `MC × kc` block at a time, into the task's scratch (`im2col_block`), with
//! zeros for the padding.

use crate::buffer::round_up_floats;
use crate::shape::ConvShape;

/// Columns per packed B panel (ISA-neutral).
pub const PANEL: usize = 16;

/// Floats of packed B for a `k × n` matrix (a whole number of 64-byte lines).
pub fn packed_b_len(k: usize, n: usize) -> usize {
    round_up_floats(n.div_ceil(PANEL) * PANEL * k)
}

/// Packs row-major `b` (`k × n`) into `out` (`packed_b_len(k, n)` floats):
/// 16-column panels, K-major inside a panel, zero-padded past column `n`.
///
/// # Panics
/// If `b.len() != k * n` or `out.len() != packed_b_len(k, n)`.
pub fn pack_b(k: usize, n: usize, b: &[f32], out: &mut [f32]) {
    assert_eq!(b.len(), k * n, "pack_b: b must hold k*n = {}*{} floats", k, n);
    assert_eq!(out.len(), packed_b_len(k, n), "pack_b: out must hold packed_b_len(k, n) floats");
    // Every float is written once: the panels' columns, their zero padding
    // past column n, and the rounding tail (if any) after the last panel.
    let panels = n.div_ceil(PANEL);
    let (body, tail) = out.split_at_mut(panels * k * PANEL);
    tail.fill(0.0);
    for (p, panel) in body.chunks_exact_mut(k * PANEL).enumerate() {
        let c0 = p * PANEL;
        let w = PANEL.min(n - c0);
        for (kk, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
            dst[..w].copy_from_slice(&b[kk * n + c0..kk * n + c0 + w]);
            dst[w..].fill(0.0);
        }
    }
}

/// `(image, oy, ox)` of output pixels `m0, m0 + 1, …` of `s` (row-major over
/// the batch), stepped without a division per pixel.
fn out_pixels(s: &ConvShape, m0: usize) -> impl Iterator<Item = (usize, usize, usize)> + use<> {
    let (oh, ow) = (s.out_h(), s.out_w());
    let mut at = (m0 / (oh * ow), (m0 / ow) % oh, m0 % ow);
    std::iter::repeat(()).map(move |()| {
        let here = at;
        let (img, oy, ox) = &mut at;
        *ox += 1;
        if *ox == ow {
            *ox = 0;
            *oy += 1;
            if *oy == oh {
                *oy = 0;
                *img += 1;
            }
        }
        here
    })
}

/// Offsets into the input of the channel vectors of output pixels `m0 .. m0 +
/// rows.len()` of a 1×1 convolution (any stride, no padding): row `m` is pixel
/// `(img, oy·sh, ox·sw)`. Incremental: one division per block, not per row.
pub(crate) fn pixel_rows(s: &ConvShape, m0: usize, rows: &mut [usize]) {
    if s.stride_h == 1 && s.stride_w == 1 {
        // Output pixel m is input pixel m.
        for (i, r) in rows.iter_mut().enumerate() {
            *r = (m0 + i) * s.in_c;
        }
        return;
    }
    for (r, (img, oy, ox)) in rows.iter_mut().zip(out_pixels(s, m0)) {
        *r = ((img * s.in_h + oy * s.stride_h) * s.in_w + ox * s.stride_w) * s.in_c;
    }
}

/// Smallest K block read in place by an implicit GEMM: below it (the stem's
/// 3 channels, 64-channel 3×3 layers) the extra passes over C of the many
/// short K blocks cost more than the im2col copy they save.
pub(crate) const MIN_DIRECT_KC: usize = 128;

/// Longest K block read in place ([`direct_kc`] also stays within 1.5 × the
/// microkernel's `KC`, as `k_blocks` does): the length of [`ZEROS`].
pub(crate) const MAX_DIRECT_KC: usize = 384;

/// The row that stands for a kernel tap in the padding.
static ZEROS: [f32; MAX_DIRECT_KC] = [0.0; MAX_DIRECT_KC];

/// The K block with which an implicit GEMM reads its A rows in place: `cin`
/// split into the fewest equal parts of at most `1.5·kc_max` floats (and
/// [`MAX_DIRECT_KC`]), trying up to twice that minimum number of parts;
/// `None` (im2col) when none divides `cin` or the part is shorter than
/// [`MIN_DIRECT_KC`]. Each K block then lies inside one kernel tap.
pub(crate) fn direct_kc(s: &ConvShape, kc_max: usize) -> Option<usize> {
    let (cin, max) = (s.in_c, (kc_max + kc_max / 2).min(MAX_DIRECT_KC));
    let parts = cin.div_ceil(max).max(1);
    (parts..=2 * parts).find(|p| cin % p == 0).map(|p| cin / p).filter(|kc| (MIN_DIRECT_KC..=max).contains(kc))
}

/// Whether an A-row pointer from [`tap_rows`] stands for padding.
pub(crate) fn is_padding_row(row: *const f32) -> bool {
    std::ptr::eq(row, ZEROS.as_ptr())
}

/// A-row pointers of an implicit GEMM read in place ([`direct_kc`]): for
/// output pixels `m0 .. m0 + rows.len()` and the K block starting at `k0 =
/// (ky·kw + kx)·cin + c0` (with `c0 + kc <= cin`), the input pixel under tap
/// `(ky, kx)` from channel `c0`, or [`ZEROS`] where the tap falls in the
/// padding. Pointers only (wrapping arithmetic); the caller guarantees that
/// `input` holds the shape's input, so each in-bounds row has `cin − c0`
/// floats.
pub(crate) fn tap_rows(s: &ConvShape, input: &[f32], k0: usize, m0: usize, rows: &mut [*const f32]) {
    let cin = s.in_c;
    let (tap, c0) = (k0 / cin, k0 % cin);
    let (ky, kx) = (tap / s.kw, tap % s.kw);
    for (r, (img, oy, ox)) in rows.iter_mut().zip(out_pixels(s, m0)) {
        let iy = (oy * s.stride_h + ky).wrapping_sub(s.pad_top);
        let ix = (ox * s.stride_w + kx).wrapping_sub(s.pad_left);
        *r = if iy < s.in_h && ix < s.in_w {
            input.as_ptr().wrapping_add(((img * s.in_h + iy) * s.in_w + ix) * cin + c0)
        } else {
            ZEROS.as_ptr()
        };
    }
}

/// Longest reduction (`kh·kw·cin`) that an implicit GEMM reads in runs from a
/// padded input ([`reads_padded`]): the whole K must be one block of the
/// AVX-512 kernel (`KC` = 512, blocks up to 1.5·`KC`); the AVX2 kernel
/// (whole up to `KC_WHOLE` = 512) reads in runs up to 512 and gathers above.
pub(crate) const PADDED_MAX_K: usize = 768;

/// Whether an implicit GEMM of `shape` reads its A rows in place from a copy
/// of its input with the padding written out, in `kh` runs of `kw·cin` floats
/// (one per kernel row), on kernels that take rows in runs
/// ([`super::loops::Microkernel::SEGMENTS`]) — instead of an im2col gather
/// per row block: when its taps are too short to be read in place one by
/// one (`cin` below [`MIN_DIRECT_KC`], so [`direct_kc`] is `None` whatever
/// the kernel; the stem's 3 channels) and the whole K fits one block.
///
/// Why: the stem's gather wrote 12544 rows of 147 floats per image and the
/// microkernel read them back; in place, 8 neighbouring pixels' runs of one
/// kernel row overlap within 4 cache lines of the padded input. Measured on
/// the Zen 4 (v1, batch 1, one thread, interleaved per inference): the stem
/// 2.51 → 2.18 ms; with the AVX2 kernel on a Zen 3 (v1, one thread, `bench
/// --profile` of the two builds alternated, 4 runs of 20): 3.07–3.68 →
/// 2.85–2.99 ms (stem + fused pool medians).
pub(crate) fn reads_padded(s: &ConvShape) -> bool {
    s.kh > 1 && s.in_c < MIN_DIRECT_KC && s.kh * s.kw * s.in_c <= PADDED_MAX_K
}

/// Floats of `shape`'s input with its padding written out: `batch ×
/// (in_h + pad_top + pad_bottom) × (in_w + pad_left + pad_right) × cin`.
pub(crate) fn padded_len(s: &ConvShape) -> usize {
    s.batch * padded_h(s) * padded_row_len(s)
}

fn padded_h(s: &ConvShape) -> usize {
    s.in_h + s.pad_top + s.pad_bottom
}

/// Floats of one row of the padded input.
pub(crate) fn padded_row_len(s: &ConvShape) -> usize {
    (s.in_w + s.pad_left + s.pad_right) * s.in_c
}

/// Row `i` (over all images) of the padded input of `s` ([`padded_len`]):
/// zeros in the padding, `input`'s row elsewhere.
pub(crate) fn pad_row(s: &ConvShape, input: &[f32], i: usize, dst: &mut [f32]) {
    let (img, y) = (i / padded_h(s), i % padded_h(s));
    let row = s.in_w * s.in_c;
    if y < s.pad_top || y >= s.pad_top + s.in_h {
        dst.fill(0.0);
        return;
    }
    let src = (img * s.in_h + y - s.pad_top) * row;
    let left = s.pad_left * s.in_c;
    dst[..left].fill(0.0);
    dst[left..left + row].copy_from_slice(&input[src..src + row]);
    dst[left + row..].fill(0.0);
}

/// The whole padded input of `s` ([`pad_row`] row by row; `conv_implicit`
/// shares the rows among its workers instead).
#[cfg(test)]
pub(crate) fn padded_input(s: &ConvShape, input: &[f32]) -> Vec<f32> {
    let mut padded = vec![f32::NAN; padded_len(s)];
    for (i, row) in padded.chunks_exact_mut(padded_row_len(s)).enumerate() {
        pad_row(s, input, i, row);
    }
    padded
}

/// Row pointers of output pixels `m0 ..` into the padded input of `s`
/// ([`pad_row`]): the first float of each pixel's window (kernel row 0,
/// tap 0, channel 0); kernel row `ky` is [`padded_row_len`]`·ky` further.
pub(crate) fn padded_rows(s: &ConvShape, padded: &[f32], m0: usize, rows: &mut [*const f32]) {
    let (ph, row) = (padded_h(s), padded_row_len(s));
    for (r, (img, oy, ox)) in rows.iter_mut().zip(out_pixels(s, m0)) {
        *r = padded.as_ptr().wrapping_add((img * ph + oy * s.stride_h) * row + ox * s.stride_w * s.in_c);
    }
}

/// Gathers the im2col rows of output pixels `m0 .. m0 + rows`, reduction
/// indices `k0 .. k0 + kc` (`k = (ky·kw + kx)·cin + ci`, the HWIO row order),
/// into `dst` (row-major, `rows × kc`), zero where the window hits padding.
///
/// Within one kernel row `ky`, consecutive `kx` of a pixel are consecutive
/// input pixels, so each kernel row of a pixel is at most three runs: zeros
/// (left padding), one contiguous copy of the in-bounds `kx`, zeros (right
/// padding). No division per run: the valid span is `[kx_lo·cin, kx_hi·cin)`
/// in the row's reduction index.
#[inline(always)]
pub(crate) fn im2col_block(
    s: &ConvShape,
    input: &[f32],
    m0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    debug_assert!(dst.len() >= rows * kc);
    let cin = s.in_c;
    let row_k = s.kw * cin; // reduction values per kernel row
    let (ky0, rem0) = (k0 / row_k, k0 % row_k);
    let whole_k = k0 == 0 && kc == s.kh * row_k;
    for (d, (img, oy, ox)) in dst[..rows * kc].chunks_exact_mut(kc).zip(out_pixels(s, m0)) {
        let y0 = (oy * s.stride_h) as isize - s.pad_top as isize;
        let x0 = (ox * s.stride_w) as isize - s.pad_left as isize;
        // Valid kx range for this pixel: 0 <= x0 + kx < in_w, as reduction offsets.
        let lo = (-x0).clamp(0, s.kw as isize) as usize * cin;
        let hi = (s.in_w as isize - x0).clamp(0, s.kw as isize) as usize * cin;
        // Input offset of (img, y = 0, x = x0, ci = 0), may be "negative".
        let base = (img * s.in_h * s.in_w) as isize * cin as isize + x0 * cin as isize;
        if whole_k && lo == 0 && hi == row_k && y0 >= 0 && y0 as usize + s.kh <= s.in_h {
            // Window inside the image: one contiguous run per kernel row.
            let row_stride = s.in_w * cin;
            let mut src = (base + y0 * row_stride as isize) as usize;
            for dk in d.chunks_exact_mut(row_k) {
                copy_run(dk, &input[src..src + row_k]);
                src += row_stride;
            }
        } else {
            im2col_row(s, input, d, base, y0, lo, hi, ky0, rem0);
        }
    }
}

/// One im2col row, general case (padding, or a K block that starts or ends
/// inside a kernel row): per kernel row, zeros / one copy / zeros.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn im2col_row(
    s: &ConvShape,
    input: &[f32],
    d: &mut [f32],
    base: isize,
    y0: isize,
    lo: usize,
    hi: usize,
    ky0: usize,
    rem0: usize,
) {
    let cin = s.in_c;
    let row_k = s.kw * cin;
    let kc = d.len();
    let (mut ky, mut rem) = (ky0, rem0);
    let mut out = 0;
    while out < kc {
        let y = y0 + ky as isize;
        let row_end = (out + row_k - rem).min(kc);
        if y < 0 || y >= s.in_h as isize {
            d[out..row_end].iter_mut().for_each(|v| *v = 0.0);
        } else {
            // [rem, lo): zeros; [lo, hi): copy; [hi, row_k): zeros — clipped to this row's part.
            let z0 = (out + lo.saturating_sub(rem)).min(row_end);
            let c1 = (out + hi.saturating_sub(rem)).min(row_end).max(z0);
            d[out..z0].iter_mut().for_each(|v| *v = 0.0);
            if c1 > z0 {
                // In isize: the row start is left of the image when padding on the left.
                let src = (base + y * (s.in_w * cin) as isize + (rem + z0 - out) as isize) as usize;
                copy_run(&mut d[z0..c1], &input[src..src + (c1 - z0)]);
            }
            d[c1..row_end].iter_mut().for_each(|v| *v = 0.0);
        }
        out = row_end;
        ky += 1;
        rem = 0;
    }
}

/// Copies a run of the im2col gather: a few fixed, overlapping 8-float block
/// moves (inline, no loop for LLVM to turn back into a `memcpy` call) for the
/// short runs of small-`cin` convolutions — the stem's are 21 floats — and
/// `memcpy` for long ones.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn blk(dst: &mut [f32], src: &[f32], at: usize) {
        dst[at..at + 8].copy_from_slice(&src[at..at + 8]);
    }
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    match n {
        0..=7 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        8..=16 => {
            blk(dst, src, 0);
            blk(dst, src, n - 8);
        }
        17..=32 => {
            blk(dst, src, 0);
            blk(dst, src, 8);
            blk(dst, src, n - 16);
            blk(dst, src, n - 8);
        }
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_k_blocks_lie_inside_a_tap() {
        let s = |cin| ConvShape::square(1, 7, 7, cin, 8, 3, 1, 1);
        assert_eq!(direct_kc(&s(128), 256), Some(128));
        assert_eq!(direct_kc(&s(256), 256), Some(256));
        assert_eq!(direct_kc(&s(384), 256), Some(384));
        assert_eq!(direct_kc(&s(512), 256), Some(256));
        assert_eq!(direct_kc(&s(512), 192), Some(256));
        assert_eq!(direct_kc(&s(600), 256), Some(300));
        assert_eq!(direct_kc(&s(1000), 256), Some(250));
        assert_eq!(direct_kc(&s(3), 256), None, "the stem gathers");
        assert_eq!(direct_kc(&s(64), 256), None, "below MIN_DIRECT_KC");
        assert_eq!(direct_kc(&s(509), 256), None, "prime: no whole blocks");
        for cin in 1..2000 {
            if let Some(kc) = direct_kc(&s(cin), 256) {
                assert!(cin % kc == 0 && (MIN_DIRECT_KC..=MAX_DIRECT_KC).contains(&kc), "{cin}: {kc}");
            }
        }
    }

    #[test]
    fn tap_rows_point_at_pixels_or_zeros() {
        // 2 images of 3×4, stride 2, pad 1: output 2×2 per image.
        let s = ConvShape::square(2, 3, 4, 6, 1, 3, 2, 1);
        let input: Vec<f32> = (0..s.input_len()).map(|i| i as f32).collect();
        let mut rows = [std::ptr::null(); 8];
        // Tap (ky, kx) = (1, 2), channels 3..: k0 = (1·3 + 2)·6 + 3.
        tap_rows(&s, &input, 5 * 6 + 3, 0, &mut rows);
        for (m, &r) in rows.iter().enumerate() {
            let (img, oy, ox) = (m / 4, m / 2 % 2, m % 2);
            let (iy, ix) = (2 * oy + 1 - 1, 2 * ox + 2 - 1);
            if ix < 4 {
                assert_eq!(r, input[((img * 3 + iy) * 4 + ix) * 6 + 3..].as_ptr(), "row {m}");
            } else {
                assert!(is_padding_row(r), "row {m} is padding");
            }
        }
    }

    #[test]
    fn padded_rows_read_every_window_in_runs() {
        // 2 images of 5×6×3, 3×3 stride 2, pads top 1 / bottom 2 / left 2 /
        // right 0: every output pixel's kernel row ky is one run of kw·cin
        // floats at its row pointer + ky·padded_row_len, zeros outside the image.
        let mut s = ConvShape::square(2, 5, 6, 3, 1, 3, 2, 1);
        (s.pad_bottom, s.pad_left, s.pad_right) = (2, 2, 0);
        assert!(reads_padded(&s));
        let input: Vec<f32> = (0..s.input_len()).map(|i| i as f32 + 1.0).collect();
        let padded = padded_input(&s, &input);
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut rows = vec![std::ptr::null(); 2 * oh * ow];
        padded_rows(&s, &padded, 0, &mut rows);
        let base = padded.as_ptr() as usize;
        for (m, &r) in rows.iter().enumerate() {
            let (img, oy, ox) = (m / (oh * ow), m / ow % oh, m % ow);
            for ky in 0..3 {
                for kx in 0..3 {
                    for c in 0..3 {
                        let at = (r as usize - base) / 4 + ky * padded_row_len(&s) + kx * 3 + c;
                        let (iy, ix) = ((2 * oy + ky).wrapping_sub(1), (2 * ox + kx).wrapping_sub(2));
                        let want = if iy < 5 && ix < 6 { input[((img * 5 + iy) * 6 + ix) * 3 + c] } else { 0.0 };
                        assert_eq!(padded[at], want, "pixel {m} tap ({ky},{kx}) channel {c}");
                    }
                }
            }
        }
        // Shapes that keep the im2col gather: taps long enough to read in
        // place, a K over one block, 1×1.
        assert!(!reads_padded(&ConvShape::square(1, 8, 8, 128, 8, 3, 2, 1)));
        assert!(!reads_padded(&ConvShape::square(1, 8, 8, 100, 8, 3, 2, 1)));
        assert!(!reads_padded(&ConvShape::square(1, 8, 8, 3, 8, 1, 1, 1)));
        assert!(reads_padded(&ConvShape::square(1, 224, 224, 3, 64, 7, 2, 3)));
    }

    #[test]
    fn pack_b_layout() {
        let (k, n) = (3, 20);
        let b: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
        let mut out = vec![f32::NAN; packed_b_len(k, n)];
        pack_b(k, n, &b, &mut out);
        assert_eq!(out.len() % 16, 0);
        for p in 0..2 {
            for kk in 0..k {
                for j in 0..16 {
                    let col = p * 16 + j;
                    let want = if col < n { b[kk * n + col] } else { 0.0 };
                    assert_eq!(out[p * k * 16 + kk * 16 + j], want);
                }
            }
        }
    }

    #[test]
    fn im2col_matches_definition() {
        let s = ConvShape { pad_bottom: 0, pad_right: 2, ..ConvShape::square(2, 5, 4, 3, 1, 3, 2, 1) };
        let input: Vec<f32> = (0..s.input_len()).map(|i| 1.0 + i as f32).collect();
        let (oh, ow) = (s.out_h(), s.out_w());
        let m = s.batch * oh * ow;
        let kt = s.kh * s.kw * s.in_c;
        for (k0, kc) in [(0, kt), (2, 7), (5, kt - 5)] {
            let mut dst = vec![f32::NAN; m * kc];
            im2col_block(&s, &input, 0, m, k0, kc, &mut dst);
            // And a block starting mid-way.
            let mut dst2 = vec![f32::NAN; (m - 3) * kc];
            im2col_block(&s, &input, 3, m - 3, k0, kc, &mut dst2);
            for mm in 0..m {
                let (img, oy, ox) = (mm / (oh * ow), (mm / ow) % oh, mm % ow);
                for kk in k0..k0 + kc {
                    let (ky, kx, ci) = (kk / (s.kw * s.in_c), (kk / s.in_c) % s.kw, kk % s.in_c);
                    let y = (oy * s.stride_h + ky) as isize - s.pad_top as isize;
                    let x = (ox * s.stride_w + kx) as isize - s.pad_left as isize;
                    let want = if y < 0 || x < 0 || y >= s.in_h as isize || x >= s.in_w as isize {
                        0.0
                    } else {
                        input[((img * s.in_h + y as usize) * s.in_w + x as usize) * s.in_c + ci]
                    };
                    assert_eq!(dst[mm * kc + kk - k0], want, "m {mm} k {kk}");
                    if mm >= 3 {
                        assert_eq!(dst2[(mm - 3) * kc + kk - k0], want);
                    }
                }
            }
        }
    }

    #[test]
    fn pixel_rows_strided() {
        let s = ConvShape::square(2, 5, 5, 4, 8, 1, 2, 0);
        let (oh, ow) = (s.out_h(), s.out_w());
        let m = s.batch * oh * ow;
        let mut rows = vec![0; m - 2];
        pixel_rows(&s, 2, &mut rows);
        for (i, &r) in rows.iter().enumerate() {
            let mm = i + 2;
            let (img, oy, ox) = (mm / (oh * ow), (mm / ow) % oh, mm % ow);
            assert_eq!(r, ((img * 5 + 2 * oy) * 5 + 2 * ox) * 4);
        }
    }
}

//! AVX2 vector loops for pooling and the classifier.

use std::arch::x86_64::*;

use crate::shape::PoolShape;

/// `acc[i] = max(acc[i], x[i])`. Caller guarantees AVX2 (dispatch checks `Isa::is_supported`).
pub(super) fn max_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; lengths are equal.
    unsafe { max_into_avx2(acc, x) }
}

#[target_feature(enable = "avx2")]
unsafe fn max_into_avx2(acc: &mut [f32], x: &[f32]) {
    let n = acc.len() / 8 * 8;
    let (a, b) = (acc.as_mut_ptr(), x.as_ptr());
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads/stores.
        unsafe {
            let v = _mm256_max_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
            _mm256_storeu_ps(a.add(i), v);
        }
    }
    for i in n..acc.len() {
        acc[i] = acc[i].max(x[i]);
    }
}

/// One output row of the max-pool `s`: `out[ox·c + ch]` = the max, from −∞,
/// over the window of output column `ox` — input rows at `rows` (each the
/// `in_w · c` floats of one image row, top to bottom), columns left to right
/// — the same pixels in the same order as the portable path (so the same
/// bits where no input is NaN), 32 channels at a time kept in registers
/// across the window. The rows' bounds are checked once per output row, not
/// per pixel.
pub(super) fn max_pool_row(s: &PoolShape, input: &[f32], rows: &[usize], out: &mut [f32]) {
    super::check_row_kernel(s, input, rows, out);
    // SAFETY: dispatch only reaches here when AVX2 is supported; every row
    // holds in_w pixels of c floats (checked above), and each window's
    // columns lie in 0..in_w (see the loop).
    unsafe { max_pool_row_avx2(s, input, rows, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn max_pool_row_avx2(s: &PoolShape, input: &[f32], rows: &[usize], out: &mut [f32]) {
    let (c, p, o) = (s.c, input.as_ptr(), out.as_mut_ptr());
    for ox in 0..s.out_w() {
        let (xlo, xhi) = super::window(s, ox, s.in_w);
        let o = o.wrapping_add(ox * c);
        let mut i = 0;
        // SAFETY (both loops): i + 8·V <= c; pixel (row b, column x) holds c
        // floats at b + x·c with x < in_w, inside input (checked by the caller);
        // out holds out_w · c floats.
        unsafe {
            while i + 32 <= c {
                let mut acc = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
                for &b in rows {
                    for x in xlo..xhi {
                        let px = p.add(b + x * c + i);
                        for (v, a) in acc.iter_mut().enumerate() {
                            *a = _mm256_max_ps(*a, _mm256_loadu_ps(px.add(8 * v)));
                        }
                    }
                }
                for (v, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(o.add(i + 8 * v), *a);
                }
                i += 32;
            }
            while i + 8 <= c {
                let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
                for &b in rows {
                    for x in xlo..xhi {
                        acc = _mm256_max_ps(acc, _mm256_loadu_ps(p.add(b + x * c + i)));
                    }
                }
                _mm256_storeu_ps(o.add(i), acc);
                i += 8;
            }
        }
        for j in i..c {
            let m = rows.iter().flat_map(|&b| (xlo..xhi).map(move |x| input[b + x * c + j]));
            // SAFETY: j < c, so ox·c + j < out.len().
            unsafe { *o.add(j) = m.fold(f32::NEG_INFINITY, f32::max) };
        }
    }
}

/// `acc[i] += x[i]`.
pub(super) fn add_into(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; lengths are equal.
    unsafe { add_into_avx2(acc, x) }
}

#[target_feature(enable = "avx2")]
unsafe fn add_into_avx2(acc: &mut [f32], x: &[f32]) {
    let n = acc.len() / 8 * 8;
    let (a, b) = (acc.as_mut_ptr(), x.as_ptr());
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads/stores.
        unsafe {
            let v = _mm256_add_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
            _mm256_storeu_ps(a.add(i), v);
        }
    }
    for i in n..acc.len() {
        acc[i] += x[i];
    }
}

/// `o[i] += a[0]·w[i]; o[i] += a[1]·w[m + i]; …` for the `a.len() <= 4`
/// weight rows at stride `m`: multiply then add (not fused), in row order, to
/// match the reference bit for bit, with `o` kept in registers across the rows.
pub(super) fn dense_rows(o: &mut [f32], a: &[f32], w: &[f32], m: usize) {
    assert!(!a.is_empty() && a.len() <= 4 && w.len() >= (a.len() - 1) * m + o.len());
    // SAFETY: dispatch only reaches here when AVX2 is supported; the weight
    // rows r < a.len() hold o.len() floats at r·m (checked above).
    unsafe { dense_rows_avx2(o, a, w, m) }
}

/// Weight rows ahead that [`dense_rows_avx2`] prefetches into L1 (three
/// groups of four) ...
const DENSE_PREFETCH_ROWS: usize = 12;
/// ... and into L2 (128 KB ahead for ImageNet's 1000 classes: inside any
/// L2 of 256 KB or more). The classifier streams 8 MB of weights once per
/// inference; the L1 prefetch alone left too few lines in flight to cover
/// the memory latency. Measured on a Zen 4 (v1, `resnet50 bench --profile`,
/// three runs each): 0.49–0.52 → 0.39–0.42 ms at one thread, 0.32–0.34 →
/// 0.27–0.28 ms at two; 64 rows ahead did the same, 128 worse.
const DENSE_PREFETCH_ROWS_L2: usize = 32;

#[target_feature(enable = "avx2")]
unsafe fn dense_rows_avx2(o: &mut [f32], a: &[f32], w: &[f32], m: usize) {
    let n = o.len() / 8 * 8;
    let rows = a.len();
    let (op, wp) = (o.as_mut_ptr(), w.as_ptr());
    let av: [__m256; 4] = std::array::from_fn(|r| _mm256_set1_ps(a[r.min(rows - 1)]));
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= o.len(); weight row r < rows holds o.len()
        // floats at r·m (checked by the caller); unaligned loads/stores;
        // prefetches never fault.
        unsafe {
            let mut v = _mm256_loadu_ps(op.add(i));
            if i % 16 == 0 {
                // This line of the weight rows DENSE_PREFETCH_ROWS ahead (a
                // hint: never faults, even past the slice). With two threads
                // each task streams 1 KB pieces of rows 4 KB apart, which
                // the hardware prefetchers follow poorly (2048 × 1000 at 2
                // threads: 0.9–1.2 → 0.7–0.9 ms in the network).
                for r in 0..4 {
                    _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add((r + DENSE_PREFETCH_ROWS) * m + i) as *const i8);
                    _mm_prefetch::<_MM_HINT_T1>(wp.wrapping_add((r + DENSE_PREFETCH_ROWS_L2) * m + i) as *const i8);
                }
            }
            for (r, &ar) in av.iter().enumerate().take(rows) {
                v = _mm256_add_ps(v, _mm256_mul_ps(ar, _mm256_loadu_ps(wp.add(r * m + i))));
            }
            _mm256_storeu_ps(op.add(i), v);
        }
    }
    for i in n..o.len() {
        for (r, &ar) in a.iter().enumerate() {
            o[i] += ar * w[r * m + i];
        }
    }
}

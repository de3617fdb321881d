//! Pooling and the classifier: 3×3/2 max-pool, global average / max pool,
//! and the dense layer, with a scalar twin for each SIMD kernel.
//!
//! These layers move memory rather than compute, so the kernels are simple
//! vector loops over channels; parallelism is over output rows (max-pool),
//! images (global pools) or output columns (dense), deterministic for a given
//! thread count.

use crate::isa::Isa;
use crate::shape::PoolShape;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Max-pool (padding never wins), NHWC.
///
/// # Panics
/// If a slice length does not match `shape`, or `isa` is unsupported.
pub fn max_pool2d(isa: Isa, shape: &PoolShape, input: &[f32], output: &mut [f32], threads: usize) {
    assert_eq!(input.len(), shape.input_len(), "max_pool2d input length");
    assert_eq!(output.len(), shape.output_len(), "max_pool2d output length");
    assert!(shape.k > shape.pad, "max_pool2d: a window must overlap the input");
    assert!(isa.is_supported(), "max_pool2d: ISA {isa} not supported by this CPU");
    let row = shape.out_w() * shape.c;
    if row == 0 {
        return;
    }
    // One contiguous band of output rows per worker, the same rows the GEMM's
    // row split (`gemm::loops::split`) gives each worker of the convolution
    // after it, which then finds them in its own core's cache. Against one
    // task per row (rows interleaved between the workers), v1's and v1.5's
    // conv2_block1_0 took 0.03–0.41 ms less on the mean in 4 in-process A/Bs
    // (2 threads, batch 1, 80 inferences each). `max(1)`: an empty batch
    // still needs a chunk length.
    let rows = output.len() / row;
    let band = rows.div_ceil(threads.max(1)).max(1);
    crate::par::for_each_chunk(output, band * row, threads, |j, out| {
        for (i, o) in out.chunks_exact_mut(row).enumerate() {
            let r = j * band + i;
            let (n, oy) = (r / shape.out_h(), r % shape.out_h());
            max_pool_row(isa, shape, input, n, oy, o);
        }
    });
}

/// Most window rows the x86 row kernels take (ResNet50's windows have 3;
/// taller ones take the portable loop).
#[cfg(target_arch = "x86_64")]
const MAX_WINDOW_ROWS: usize = 64;

/// One output row `(n, oy)` of the max-pool.
fn max_pool_row(isa: Isa, s: &PoolShape, input: &[f32], n: usize, oy: usize, out: &mut [f32]) {
    max_pool_row_at(isa, s, input, |y| (n * s.in_h + y) * s.in_w * s.c, oy, out);
}

/// Output row `oy` of the max-pool `s` of one image whose input row `y`
/// starts at `input[row(y)]` (the image's `in_w · c` floats of it): for a
/// caller that keeps only the few input rows a window needs (the stem's
/// fused pool, `gemm::conv_implicit_maxpool`). Each output is the max, from
/// −∞, with the window's pixels in order (rows top to bottom, columns left
/// to right) on every path, so the fused and unfused pools give the same
/// bits.
pub(crate) fn max_pool_row_at(
    isa: Isa,
    s: &PoolShape,
    input: &[f32],
    row: impl Fn(usize) -> usize,
    oy: usize,
    out: &mut [f32],
) {
    let (y_lo, y_hi) = window(s, oy, s.in_h);
    let ys = y_lo..y_hi;
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) && ys.len() <= MAX_WINDOW_ROWS {
        let mut bases = [0usize; MAX_WINDOW_ROWS];
        for (b, y) in bases.iter_mut().zip(ys.clone()) {
            *b = row(y);
        }
        if isa == Isa::Avx512 {
            avx512::max_pool_row(s, input, &bases[..ys.len()], out);
        } else {
            avx2::max_pool_row(s, input, &bases[..ys.len()], out);
        }
        return;
    }
    let c = s.c;
    for ox in 0..s.out_w() {
        let o = &mut out[ox * c..(ox + 1) * c];
        let (x_lo, x_hi) = window(s, ox, s.in_w);
        o.fill(f32::NEG_INFINITY);
        for y in ys.clone() {
            let base = row(y);
            for x in x_lo..x_hi {
                max_into(isa, o, &input[base + x * c..base + (x + 1) * c]);
            }
        }
    }
}

/// Checks what the x86 row kernels rely on: a pool whose windows overlap
/// the image, `out` one output row, and each of `rows` (the window's input
/// rows) the start of `in_w · c` floats inside `input`.
#[cfg(target_arch = "x86_64")]
fn check_row_kernel(s: &PoolShape, input: &[f32], rows: &[usize], out: &[f32]) {
    let row_len = s.in_w * s.c;
    assert!(s.k > s.pad && s.stride > 0 && out.len() == s.out_w() * s.c);
    assert!(rows.iter().all(|&b| b.checked_add(row_len).is_some_and(|e| e <= input.len())));
}

/// The input positions `[lo, hi)`, along an axis of `len` inputs, of the
/// window of output position `o` on that axis (rows: `len = in_h`, columns:
/// `in_w`), padding left out: never empty where `k > pad` and `o` is an
/// output position (then `o·stride − pad < len` and `o·stride − pad + k > 0`).
#[inline(always)]
fn window(s: &PoolShape, o: usize, len: usize) -> (usize, usize) {
    let x0 = (o * s.stride) as isize - s.pad as isize;
    (x0.max(0) as usize, (x0 + s.k as isize).min(len as isize) as usize)
}

/// `acc[i] = max(acc[i], x[i])`.
fn max_into(isa: Isa, acc: &mut [f32], x: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::max_into(acc, x),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::max_into(acc, x),
        _ => acc.iter_mut().zip(x).for_each(|(a, &v)| *a = a.max(v)),
    }
}

/// `acc[i] += x[i]`.
fn add_into(isa: Isa, acc: &mut [f32], x: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::add_into(acc, x),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::add_into(acc, x),
        _ => acc.iter_mut().zip(x).for_each(|(a, &v)| *a += v),
    }
}

/// Global average (`max = false`) or max pool: NHWC `[n, h, w, c]` → `[n, c]`.
/// Sums in pixel order, so results do not depend on `threads`.
///
/// # Panics
/// If a length does not match, `h*w == 0`, or `isa` is unsupported.
#[allow(clippy::too_many_arguments)]
pub fn global_pool(isa: Isa, max: bool, n: usize, h: usize, w: usize, c: usize, input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), n * h * w * c, "global_pool input length");
    assert_eq!(output.len(), n * c, "global_pool output length");
    assert!(h * w > 0, "global_pool over an empty image");
    assert!(isa.is_supported(), "global_pool: ISA {isa} not supported by this CPU");
    for (b, out) in output.chunks_mut(c.max(1)).enumerate() {
        let img = &input[b * h * w * c..(b + 1) * h * w * c];
        out.copy_from_slice(&img[..c]);
        for px in img.chunks_exact(c).skip(1) {
            if max {
                max_into(isa, out, px);
            } else {
                add_into(isa, out, px);
            }
        }
        if !max {
            let inv = 1.0 / (h * w) as f32;
            out.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Rows of the classifier's weights consumed per pass over the outputs: the
/// running sums stay in registers across them, so each output is loaded and
/// stored once per `DENSE_ROWS` weight rows instead of once per row.
const DENSE_ROWS: usize = 4;

/// Dense layer `output[n, m] = bias[m] + Σ_k input[n, k]·weights[k, m]`
/// (`weights` row-major `[k, m]`, Keras' layout). Each output column sums
/// over `k` in order with a separate multiply and add, like the reference, so
/// results are the reference's bits on every ISA and for every `threads`.
///
/// At batch 1 this is a matrix-vector product bound by reading the weights
/// (8 MB for ImageNet's 2048 × 1000), so the loops stream the weights row by
/// row, in `threads` contiguous column ranges, and reuse each group of
/// `DENSE_ROWS` rows for every image of the batch while it is in L1.
///
/// # Panics
/// If a length does not match or `isa` is unsupported.
#[allow(clippy::too_many_arguments)]
pub fn dense(
    isa: Isa,
    n: usize,
    k: usize,
    m: usize,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    threads: usize,
) {
    assert_eq!(input.len(), n * k, "dense input length");
    assert_eq!(weights.len(), k * m, "dense weights length");
    assert_eq!(bias.len(), m, "dense bias length");
    assert_eq!(output.len(), n * m, "dense output length");
    assert!(isa.is_supported(), "dense: ISA {isa} not supported by this CPU");
    if m == 0 || n == 0 {
        return;
    }
    if threads <= 1 {
        dense_part(isa, n, k, m, 0, input, weights, bias, output);
    } else if n == 1 {
        // One image: split the columns, one range of whole 8-float vectors
        // per thread, so that each thread reads one contiguous piece of
        // every weight row (ImageNet's 1000 classes at two threads: 2 KB of
        // each 4 KB row; a late thread's range is taken over whole, see
        // `par`). With two ranges per thread (1 KB pieces, each thread
        // alternating between its two) the classifier took 0.41–0.42 ms
        // in the network at two threads; with one, 0.32–0.34 (2-vCPU Xeon,
        // same process, alternated inference by inference, 40 pairs, v1
        // and v1.5; prefetching 16 or 64 rows ahead into L2 instead of 32
        // made no difference).
        let cols = m.div_ceil(threads).next_multiple_of(8);
        crate::par::for_each_chunk(output, cols, threads, |j, o| {
            dense_part(isa, 1, k, m, j * cols, input, weights, bias, o);
        });
    } else {
        // A batch: split the images; each part streams all the weights.
        let rows = n.div_ceil(threads);
        crate::par::for_each_chunk(output, rows * m, threads, |j, o| {
            let nb = o.len() / m;
            dense_part(isa, nb, k, m, 0, &input[j * rows * k..][..nb * k], weights, bias, o);
        });
    }
}

/// Columns `c0..c0 + width` of `dense` for the `nb >= 1` images in `x`
/// (`nb × k`), into `out` (`nb × width`, rows of `width`). Walks the weights in groups
/// of [`DENSE_ROWS`] rows, each group applied to every image while it is in L1.
#[allow(clippy::too_many_arguments)]
fn dense_part(
    isa: Isa,
    nb: usize,
    k: usize,
    m: usize,
    c0: usize,
    x: &[f32],
    weights: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    let width = out.len() / nb;
    for o in out.chunks_mut(width) {
        o.copy_from_slice(&bias[c0..c0 + width]);
    }
    let mut kk = 0;
    while kk < k {
        let rows = DENSE_ROWS.min(k - kk);
        for (b, o) in out.chunks_mut(width).enumerate() {
            let a = &x[b * k + kk..b * k + kk + rows];
            let w = &weights[kk * m + c0..(kk + rows - 1) * m + c0 + width];
            dense_rows(isa, o, a, w, m);
        }
        kk += rows;
    }
}

/// `o[i] = (((o[i] + a[0]·w[i]) + a[1]·w[m + i]) + …)` over `a.len() <= DENSE_ROWS`
/// weight rows at stride `m` (separate multiplies and adds, in order).
fn dense_rows(isa: Isa, o: &mut [f32], a: &[f32], w: &[f32], m: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // AVX-512 too: see `avx512`'s module comment.
        Isa::Avx2 | Isa::Avx512 => avx2::dense_rows(o, a, w, m),
        _ => {
            for (r, &ar) in a.iter().enumerate() {
                let len = o.len();
                o.iter_mut().zip(&w[r * m..r * m + len]).for_each(|(y, &wv)| *y += ar * wv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use proptest::prelude::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 250.0 - 2.0).collect()
    }

    #[test]
    fn max_pool_of_an_empty_batch_writes_nothing() {
        // Zero output rows: the per-worker band must still be a valid chunk.
        let s = PoolShape { batch: 0, in_h: 5, in_w: 5, c: 3, k: 3, stride: 2, pad: 1 };
        for threads in 1..4 {
            max_pool2d(Isa::Scalar, &s, &[], &mut [], threads);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn pools_and_dense_match_reference(n in 1usize..5, h in 1usize..12, w in 1usize..12, c in 1usize..80,
                                          m in 1usize..150, threads in 1usize..4,
                                          // 3×3/2 pad 1 (ResNet50's) most often; 9×9 takes the
                                          // path for windows of more than MAX_WINDOW pixels.
                                          (k, stride, pad) in prop_oneof![3 => Just((3usize, 2usize, 1usize)),
                                              1 => (1usize..4, 1usize..3, 0usize..2), 1 => Just((9, 1, 4))]) {
            prop_assume!(k > pad);
            let x = data(n * h * w * c, 7);
            for isa in Isa::under_test() {
                let s = PoolShape { batch: n, in_h: h, in_w: w, c, k, stride, pad };
                if s.out_h() == 0 || s.out_w() == 0 {
                    continue;
                }
                let (mut a, mut b) = (vec![0.0; s.output_len()], vec![0.0; s.output_len()]);
                max_pool2d(isa, &s, &x, &mut a, threads);
                reference::max_pool2d(&s, &x, &mut b);
                prop_assert_eq!(&a, &b);
                for max in [false, true] {
                    let (mut a, mut b) = (vec![0.0; n * c], vec![0.0; n * c]);
                    global_pool(isa, max, n, h, w, c, &x, &mut a);
                    if max { reference::global_max_pool(n, h, w, c, &x, &mut b) } else { reference::global_avg_pool(n, h, w, c, &x, &mut b) }
                    for (p, q) in a.iter().zip(&b) {
                        prop_assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{} vs {}", p, q);
                    }
                }
                let k = h * w * c;
                let (wt, bias) = (data(k * m, 3), data(m, 5));
                let xin = data(n * k, 11);
                let (mut a, mut b) = (vec![0.0; n * m], vec![0.0; n * m]);
                dense(isa, n, k, m, &xin, &wt, &bias, &mut a, threads);
                reference::dense(n, k, m, &xin, &wt, &bias, &mut b);
                prop_assert_eq!(&a, &b);
            }
        }
    }
}

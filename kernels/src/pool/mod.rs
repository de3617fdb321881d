//! Pooling and the classifier: 3×3/2 max-pool, global average / max pool,
//! and the dense layer, with a scalar twin for each SIMD kernel.
//!
//! These layers move memory rather than compute, so the kernels are simple
//! vector loops over channels; parallelism is over output rows (max-pool),
//! images (global pools) or output columns (dense), deterministic for a given
//! thread count.

use rayon::prelude::*;

use crate::isa::Isa;
use crate::shape::PoolShape;

#[cfg(target_arch = "x86_64")]
mod avx2;

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
    let run_row = |(r, out): (usize, &mut [f32])| {
        let (n, oy) = (r / shape.out_h(), r % shape.out_h());
        max_pool_row(isa, shape, input, n, oy, out);
    };
    if threads > 1 {
        output.par_chunks_mut(row).enumerate().for_each(run_row);
    } else {
        output.chunks_mut(row).enumerate().for_each(run_row);
    }
}

/// One output row `(n, oy)` of the max-pool.
fn max_pool_row(isa: Isa, s: &PoolShape, input: &[f32], n: usize, oy: usize, out: &mut [f32]) {
    let c = s.c;
    let y0 = (oy * s.stride) as isize - s.pad as isize;
    for ox in 0..s.out_w() {
        let o = &mut out[ox * c..(ox + 1) * c];
        o.iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
        let x0 = (ox * s.stride) as isize - s.pad as isize;
        for y in y0.max(0)..(y0 + s.k as isize).min(s.in_h as isize) {
            for x in x0.max(0)..(x0 + s.k as isize).min(s.in_w as isize) {
                let base = ((n * s.in_h + y as usize) * s.in_w + x as usize) * c;
                max_into(isa, o, &input[base..base + c]);
            }
        }
    }
}

/// `acc[i] = max(acc[i], x[i])`.
fn max_into(isa: Isa, acc: &mut [f32], x: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::max_into(acc, x),
        _ => acc.iter_mut().zip(x).for_each(|(a, &v)| *a = a.max(v)),
    }
}

/// `acc[i] += x[i]`.
fn add_into(isa: Isa, acc: &mut [f32], x: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::add_into(acc, x),
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

/// Columns of the classifier computed per task.
const DENSE_COLS: usize = 64;

/// Dense layer `output[n, m] = bias[m] + Σ_k input[n, k]·weights[k, m]`
/// (`weights` row-major `[k, m]`, Keras' layout). Each output column sums
/// over `k` in order, so results do not depend on `threads`.
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
    if m == 0 {
        return;
    }
    for (row, out) in output.chunks_mut(m).enumerate() {
        let x = &input[row * k..(row + 1) * k];
        let cols = |(j, o): (usize, &mut [f32])| {
            let c0 = j * DENSE_COLS;
            o.copy_from_slice(&bias[c0..c0 + o.len()]);
            for (kk, &v) in x.iter().enumerate() {
                let wrow = &weights[kk * m + c0..kk * m + c0 + o.len()];
                axpy(isa, o, v, wrow);
            }
        };
        if threads > 1 {
            out.par_chunks_mut(DENSE_COLS).enumerate().for_each(cols);
        } else {
            out.chunks_mut(DENSE_COLS).enumerate().for_each(cols);
        }
    }
}

/// `acc[i] += a·x[i]` (a separate multiply and add, as the reference does,
/// so every ISA gives the reference's bits).
fn axpy(isa: Isa, acc: &mut [f32], a: f32, x: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::axpy(acc, a, x),
        _ => acc.iter_mut().zip(x).for_each(|(o, &w)| *o += a * w),
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn pools_and_dense_match_reference(n in 1usize..3, h in 1usize..12, w in 1usize..12, c in 1usize..40,
                                          m in 1usize..150, threads in 1usize..3) {
            let x = data(n * h * w * c, 7);
            for isa in Isa::supported() {
                let s = PoolShape { batch: n, in_h: h, in_w: w, c, k: 3, stride: 2, pad: 1 };
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

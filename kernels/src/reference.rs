//! Scalar reference kernels: the oracle every fast kernel is tested against.
//!
//! Written for clarity, not speed: plain loops over NHWC tensors, f32
//! accumulation in the natural `ky, kx, ci` order. They also serve as the
//! portable fallback on CPUs without a SIMD path.

use crate::shape::{ConvShape, Epilogue, PoolShape};

/// Direct 2-D convolution: `output = epilogue(conv(input, weights))`.
///
/// `input` is NHWC (`shape.input_len()`), `weights` HWIO
/// (`shape.weights_len()`), `output` NHWC (`shape.output_len()`).
/// Padding is zero padding.
///
/// # Panics
/// If a slice length does not match `shape`, or the shape is invalid.
pub fn conv2d(shape: &ConvShape, input: &[f32], weights: &[f32], ep: &Epilogue, output: &mut [f32]) {
    assert!(shape.is_valid(), "invalid convolution shape {shape:?}");
    assert_eq!(input.len(), shape.input_len(), "conv2d input length");
    assert_eq!(weights.len(), shape.weights_len(), "conv2d weights length");
    assert_eq!(output.len(), shape.output_len(), "conv2d output length");
    ep.check(shape, "conv2d");

    let (oh, ow) = (shape.out_h(), shape.out_w());
    let (ih, iw, ci, co) = (shape.in_h, shape.in_w, shape.in_c, shape.out_c);
    // Output channels in chunks accumulated on the stack: the reference
    // allocates nothing, and the output row may hold the residual
    // (`Epilogue::residual_in_output`), which must survive the accumulation.
    const CHUNK: usize = 64;
    let mut acc = [0.0f32; CHUNK];
    for n in 0..shape.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let obase = ((n * oh + oy) * ow + ox) * co;
                let rbase = ep.residual_offset(shape, n, oy, ox);
                for c0 in (0..co).step_by(CHUNK) {
                    let cw = CHUNK.min(co - c0);
                    let acc = &mut acc[..cw];
                    acc.iter_mut().for_each(|a| *a = 0.0);
                    for ky in 0..shape.kh {
                        // Row in the unpadded input; skip rows that fall in the padding.
                        let y = (oy * shape.stride_h + ky) as isize - shape.pad_top as isize;
                        if y < 0 || y >= ih as isize {
                            continue;
                        }
                        for kx in 0..shape.kw {
                            let x = (ox * shape.stride_w + kx) as isize - shape.pad_left as isize;
                            if x < 0 || x >= iw as isize {
                                continue;
                            }
                            let px = ((n * ih + y as usize) * iw + x as usize) * ci;
                            let wbase = (ky * shape.kw + kx) * ci * co + c0;
                            for c in 0..ci {
                                let v = input[px + c];
                                let wrow = &weights[wbase + c * co..wbase + c * co + cw];
                                for (a, &w) in acc.iter_mut().zip(wrow) {
                                    *a += v * w;
                                }
                            }
                        }
                    }
                    let out = &mut output[obase + c0..obase + c0 + cw];
                    for (o, (y, &a)) in out.iter_mut().zip(acc.iter()).enumerate() {
                        let c = c0 + o;
                        let residual = if ep.residual_in_output { Some(*y) } else { ep.residual.map(|r| r[rbase + c]) };
                        *y = ep.finish(a, residual, c);
                    }
                }
            }
        }
    }
}

/// Max-pool with a square window. Padded positions never contribute (as
/// PyTorch's `-inf` padding; Keras pads the ReLU output with zeros, which is
/// the same for non-negative inputs).
///
/// # Panics
/// If a slice length does not match `shape`, or no window fits.
pub fn max_pool2d(shape: &PoolShape, input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), shape.input_len(), "max_pool2d input length");
    assert_eq!(output.len(), shape.output_len(), "max_pool2d output length");
    assert!(shape.k > shape.pad, "max_pool2d: a window must overlap the input");
    let (oh, ow, c) = (shape.out_h(), shape.out_w(), shape.c);
    for n in 0..shape.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let obase = ((n * oh + oy) * ow + ox) * c;
                output[obase..obase + c].iter_mut().for_each(|o| *o = f32::NEG_INFINITY);
                for ky in 0..shape.k {
                    let y = (oy * shape.stride + ky) as isize - shape.pad as isize;
                    if y < 0 || y >= shape.in_h as isize {
                        continue;
                    }
                    for kx in 0..shape.k {
                        let x = (ox * shape.stride + kx) as isize - shape.pad as isize;
                        if x < 0 || x >= shape.in_w as isize {
                            continue;
                        }
                        let ibase = ((n * shape.in_h + y as usize) * shape.in_w + x as usize) * c;
                        for ch in 0..c {
                            output[obase + ch] = output[obase + ch].max(input[ibase + ch]);
                        }
                    }
                }
            }
        }
    }
}

/// Global average pool: NHWC `[n, h, w, c]` → `[n, c]`.
///
/// # Panics
/// If `input.len() != n*h*w*c` or `output.len() != n*c`, or `h*w == 0`.
pub fn global_avg_pool(n: usize, h: usize, w: usize, c: usize, input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), n * h * w * c, "global_avg_pool input length");
    assert_eq!(output.len(), n * c, "global_avg_pool output length");
    assert!(h * w > 0, "global_avg_pool over an empty image");
    let inv = 1.0 / (h * w) as f32;
    for b in 0..n {
        let out = &mut output[b * c..(b + 1) * c];
        out.iter_mut().for_each(|o| *o = 0.0);
        for p in 0..h * w {
            let px = &input[(b * h * w + p) * c..(b * h * w + p + 1) * c];
            for (o, &v) in out.iter_mut().zip(px) {
                *o += v;
            }
        }
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// Global max pool: NHWC `[n, h, w, c]` → `[n, c]`.
///
/// # Panics
/// As [`global_avg_pool`].
pub fn global_max_pool(n: usize, h: usize, w: usize, c: usize, input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), n * h * w * c, "global_max_pool input length");
    assert_eq!(output.len(), n * c, "global_max_pool output length");
    assert!(h * w > 0, "global_max_pool over an empty image");
    for b in 0..n {
        let out = &mut output[b * c..(b + 1) * c];
        out.iter_mut().for_each(|o| *o = f32::NEG_INFINITY);
        for p in 0..h * w {
            let px = &input[(b * h * w + p) * c..(b * h * w + p + 1) * c];
            for (o, &v) in out.iter_mut().zip(px) {
                *o = o.max(v);
            }
        }
    }
}

/// Dense layer: `output[n, m] = bias[m] + Σ_k input[n, k] · weights[k, m]`
/// (`weights` is `[k, m]`, Keras' `Dense` kernel layout).
///
/// # Panics
/// If a slice length does not match.
pub fn dense(n: usize, k: usize, m: usize, input: &[f32], weights: &[f32], bias: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), n * k, "dense input length");
    assert_eq!(weights.len(), k * m, "dense weights length");
    assert_eq!(bias.len(), m, "dense bias length");
    assert_eq!(output.len(), n * m, "dense output length");
    for b in 0..n {
        let out = &mut output[b * m..(b + 1) * m];
        out.copy_from_slice(bias);
        for kk in 0..k {
            let v = input[b * k + kk];
            for (o, &w) in out.iter_mut().zip(&weights[kk * m..(kk + 1) * m]) {
                *o += v * w;
            }
        }
    }
}

/// Row-wise softmax in place over `rows` rows of `cols` values, computed
/// stably (the row maximum is subtracted first).
///
/// # Panics
/// If `data.len() != rows * cols`.
pub fn softmax_rows(rows: usize, cols: usize, data: &mut [f32]) {
    assert_eq!(data.len(), rows * cols, "softmax length");
    for row in data.chunks_exact_mut(cols.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_1x1_is_a_matrix_product_with_epilogue() {
        // 1 image, 1x2 pixels, 2 -> 3 channels.
        let s = ConvShape::square(1, 1, 2, 2, 3, 1, 1, 0);
        let x = [1.0, 2.0, -1.0, 0.5];
        let w = [1.0, 0.0, -1.0, 0.0, 1.0, 2.0]; // [ci=2][co=3]
        let b = [0.5, 0.0, 0.0];
        let r = [0.0, 0.0, 10.0, 0.0, 0.0, 0.0];
        let mut y = [0.0; 6];
        let ep = Epilogue { bias: Some(&b), residual: Some(&r), relu: true, ..Default::default() };
        conv2d(&s, &x, &w, &ep, &mut y);
        // pixel0: [1, 2, 3] + b + r -> [1.5, 2, 13]; pixel1: [-1, .5, 2] -> relu -> [0, .5, 2]
        assert_eq!(y, [1.5, 2.0, 13.0, 0.0, 0.5, 2.0]);
    }

    #[test]
    fn residual_in_output_equals_a_separate_residual_bitwise() {
        // 3×3 conv, 70 output channels (two stack chunks), bias, ReLU.
        let s = ConvShape::square(2, 5, 3, 70, 70, 3, 1, 1);
        let v = |n: usize, k: usize| (0..n).map(|i| ((i * k) % 97) as f32 / 48.0 - 1.0).collect::<Vec<f32>>();
        let (x, w, b, r) = (v(s.input_len(), 7), v(s.weights_len(), 13), v(70, 5), v(s.output_len(), 11));
        let mut want = vec![0.0; s.output_len()];
        let ep = Epilogue { bias: Some(&b), residual: Some(&r), relu: true, ..Default::default() };
        conv2d(&s, &x, &w, &ep, &mut want);
        let mut got = r.clone();
        let ep = Epilogue { bias: Some(&b), residual_in_output: true, relu: true, ..Default::default() };
        conv2d(&s, &x, &w, &ep, &mut got);
        assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()));
        assert!(want.iter().any(|&y| y > 0.0) && want.contains(&0.0));
    }

    #[test]
    fn conv_3x3_padding_counts_only_real_pixels() {
        // All-ones 3x3 input, all-ones 3x3 kernel, pad 1: corner sees 4, edge 6, centre 9.
        let s = ConvShape::square(1, 3, 3, 1, 1, 3, 1, 1);
        let mut y = [0.0; 9];
        conv2d(&s, &[1.0; 9], &[1.0; 9], &Epilogue::default(), &mut y);
        assert_eq!(y, [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
    }

    #[test]
    fn conv_stride_two_samples_every_other_pixel() {
        let s = ConvShape::square(1, 4, 4, 1, 1, 1, 2, 0);
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut y = [0.0; 4];
        conv2d(&s, &x, &[1.0], &Epilogue::default(), &mut y);
        assert_eq!(y, [0.0, 2.0, 8.0, 10.0]);
    }

    #[test]
    fn max_pool_ignores_padding() {
        let s = PoolShape { batch: 1, in_h: 2, in_w: 2, c: 1, k: 3, stride: 2, pad: 1 };
        let mut y = [0.0; 1];
        max_pool2d(&s, &[-4.0, -3.0, -2.0, -1.0], &mut y);
        assert_eq!(y, [-1.0]);
    }

    #[test]
    fn pools_dense_softmax() {
        let x = [1.0, -1.0, 3.0, 5.0]; // n=1, h=1, w=2, c=2
        let mut avg = [0.0; 2];
        global_avg_pool(1, 1, 2, 2, &x, &mut avg);
        assert_eq!(avg, [2.0, 2.0]);
        let mut mx = [0.0; 2];
        global_max_pool(1, 1, 2, 2, &x, &mut mx);
        assert_eq!(mx, [3.0, 5.0]);
        let mut d = [0.0; 2];
        dense(1, 2, 2, &[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], &[0.5, -0.5], &mut d);
        assert_eq!(d, [7.5, 9.5]);
        let mut s = [0.0, 0.0, 1000.0, 1000.0];
        softmax_rows(2, 2, &mut s);
        assert_eq!(s, [0.5, 0.5, 0.5, 0.5]);
    }
}

//! Winograd 3×3 convolution against the scalar reference, on every ISA this
//! CPU supports, AVX-512 included (`Isa::under_test`: `RESNET50_TEST_ISAS`
//! narrows the list, as the AVX-512 VM of `scripts/ci-avx512.sh` does).
//!
//! Tolerance: `|y − y_ref| ≤ C · 1e-5 · T + 2⁻²⁰·|y_ref| + 1e-30` with
//! `C = 1`, where `T` is the largest `Σ|x·w|` (the convolution of `|x|` with
//! `|w|`) over the outputs of the same Winograd tile and channel, and the
//! middle term covers the epilogue's additions (bias, residual) and the
//! reference's own rounding. The tile's maximum, not the output's own
//! `Σ|x·w|`: the transforms mix all the tile's inputs, so an output that is
//! small next to its tile neighbours carries their rounding error (with one
//! input and one output channel, nothing averages it: an F(4×4) output was
//! seen 8.6e-5 · its own `Σ|x·w|` off, within 1e-5 of its tile's).

use std::sync::OnceLock;

use proptest::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use resnet50_kernels::shape::{ConvShape, Epilogue};
use resnet50_kernels::winograd::{self, WinogradTile};
use resnet50_kernels::{reference, Isa};

const C: f64 = 1.0;

fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: OnceLock<Vec<ThreadPool>> = OnceLock::new();
    &POOLS.get_or_init(|| (1..=4).map(|t| ThreadPoolBuilder::new().num_threads(t).build().unwrap()).collect())
        [threads - 1]
}

/// Deterministic pseudo-random floats in `[lo, hi)`.
fn rand_vec(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

struct Case {
    shape: ConvShape,
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
    res: Option<Vec<f32>>,
    relu: bool,
}

impl Case {
    fn ep(&self) -> Epilogue<'_> {
        Epilogue { bias: self.bias.as_deref(), residual: self.res.as_deref(), relu: self.relu, ..Default::default() }
    }

    fn run(&self, isa: Isa, tile: WinogradTile, threads: usize) -> Vec<f32> {
        let s = &self.shape;
        let mut packed = vec![0.0; winograd::packed_len_for(tile, s.in_c, s.out_c)];
        winograd::pack_for(tile, s.in_c, s.out_c, &self.w, &mut packed);
        let mut scratch = vec![f32::NAN; winograd::scratch_len_for(tile, s, threads)];
        let mut y = vec![f32::NAN; s.output_len()];
        pool(threads)
            .install(|| winograd::conv3x3(isa, s, &self.x, &packed, &self.ep(), &mut y, &mut scratch, threads));
        y
    }

    fn reference(&self) -> Vec<f32> {
        let mut y = vec![0.0; self.shape.output_len()];
        reference::conv2d(&self.shape, &self.x, &self.w, &self.ep(), &mut y);
        y
    }

    /// Σ|x·w| at every output.
    fn magnitude(&self) -> Vec<f32> {
        let ax: Vec<f32> = self.x.iter().map(|v| v.abs()).collect();
        let aw: Vec<f32> = self.w.iter().map(|v| v.abs()).collect();
        let mut y = vec![0.0; self.shape.output_len()];
        reference::conv2d(&self.shape, &ax, &aw, &Epilogue::default(), &mut y);
        y
    }
}

/// For every output, the largest of `mag` over the outputs of its `m × m`
/// Winograd tile in the same image and channel.
fn tile_max(shape: &ConvShape, mag: &[f32], m: usize) -> Vec<f32> {
    let (oh, ow, c) = (shape.out_h(), shape.out_w(), shape.out_c);
    let at = |n: usize, y: usize, x: usize, ch: usize| ((n * oh + y) * ow + x) * c + ch;
    let mut out = vec![0.0f32; mag.len()];
    for n in 0..shape.batch {
        for (ty, tx) in (0..oh.div_ceil(m)).flat_map(|ty| (0..ow.div_ceil(m)).map(move |tx| (ty, tx))) {
            let ys = ty * m..((ty + 1) * m).min(oh);
            let xs = tx * m..((tx + 1) * m).min(ow);
            for ch in 0..c {
                let pixels = || ys.clone().flat_map(|y| xs.clone().map(move |x| (y, x)));
                let t = pixels().map(|(y, x)| mag[at(n, y, x, ch)]).fold(0.0f32, f32::max);
                pixels().for_each(|(y, x)| out[at(n, y, x, ch)] = t);
            }
        }
    }
    out
}

fn check(case: &Case, got: &[f32], want: &[f32], mag: &[f32], what: &str) -> Result<(), TestCaseError> {
    for (i, ((&g, &r), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = C * 1e-5 * m as f64 + (r.abs() as f64) / (1u64 << 20) as f64 + 1e-30;
        prop_assert!(
            ((g - r) as f64).abs() <= tol,
            "{what}: output {i}: got {g}, reference {r}, |Δ| {} > tol {tol} (shape {:?})",
            (g - r).abs(),
            case.shape
        );
    }
    Ok(())
}

/// `case` on every ISA under test and every tile of its stride against the
/// reference.
fn check_every_tile(case: &Case, stride: usize, threads: usize) -> Result<(), TestCaseError> {
    let want = case.reference();
    let mag = case.magnitude();
    for isa in Isa::under_test() {
        for tile in tiles(stride) {
            let got = case.run(isa, tile, threads);
            let tmag = tile_max(&case.shape, &mag, tile.m());
            check(case, &got, &want, &tmag, &format!("{isa} {tile:?} threads {threads}"))?;
        }
    }
    Ok(())
}

/// The tiles that compute a convolution of this stride.
fn tiles(stride: usize) -> Vec<WinogradTile> {
    match stride {
        1 => vec![WinogradTile::F4x4, WinogradTile::F3x3, WinogradTile::F2x2],
        _ => vec![WinogradTile::F2x2S2, WinogradTile::F4x4S2],
    }
}

fn channels() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..=40, 1 => prop::sample::select(vec![48usize, 64, 67, 100])]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn winograd_matches_reference(
        batch in 1usize..=3,
        h in 1usize..=20,
        w in 1usize..=20,
        cin in channels(),
        cout in channels(),
        pads in prop_oneof![4 => Just([1usize; 4]), 1 => prop::array::uniform4(0usize..=2)],
        stride in 1usize..=2,
        bias in any::<bool>(),
        res in any::<bool>(),
        relu in any::<bool>(),
        threads in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let shape = ConvShape {
            batch, in_h: h, in_w: w, in_c: cin, out_c: cout, kh: 3, kw: 3,
            stride_h: stride, stride_w: stride,
            pad_top: pads[0], pad_left: pads[1], pad_bottom: pads[2], pad_right: pads[3],
        };
        prop_assume!(shape.is_valid() && shape.out_h() > 0 && shape.out_w() > 0);
        let lim = (6.0 / (9.0 * cin as f32)).sqrt();
        let case = Case {
            x: rand_vec(shape.input_len(), seed, -1.0, 1.0),
            w: rand_vec(shape.weights_len(), seed ^ 1, -lim, lim),
            bias: bias.then(|| rand_vec(cout, seed ^ 2, -0.5, 0.5)),
            res: res.then(|| rand_vec(shape.output_len(), seed ^ 3, -1.0, 1.0)),
            relu,
            shape,
        };
        check_every_tile(&case, stride, threads)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// More than 384 input channels: the per-position products run in
    /// several K blocks (256 rows for AVX-512's tall kernel, 192 for its
    /// 8×32 one), even and uneven, on images small enough for a quick
    /// reference and big enough for blocks of more than 8 tiles (the tall
    /// kernel's).
    #[test]
    fn deep_inputs_span_several_k_blocks(
        cin in prop::sample::select(vec![385usize, 512, 600, 777]),
        cout in 1usize..=40,
        h in 1usize..=14,
        w in 1usize..=14,
        stride in 1usize..=2,
        threads in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let shape = ConvShape::square(1, h, w, cin, cout, 3, stride, 1);
        prop_assume!(shape.is_valid() && shape.out_h() > 0 && shape.out_w() > 0);
        let lim = (6.0 / (9.0 * cin as f32)).sqrt();
        let case = Case {
            x: rand_vec(shape.input_len(), seed, -1.0, 1.0),
            w: rand_vec(shape.weights_len(), seed ^ 1, -lim, lim),
            bias: Some(rand_vec(cout, seed ^ 2, -0.5, 0.5)),
            res: Some(rand_vec(shape.output_len(), seed ^ 3, -1.0, 1.0)),
            relu: true,
            shape,
        };
        check_every_tile(&case, stride, threads)?;
    }
}

#[test]
fn conv_front_door_runs_every_tile() {
    use resnet50_kernels::{ConvAlgo, ConvKernel, ConvParams};
    let params = ConvParams { kh: 3, kw: 3, cin: 13, cout: 21, stride: 1, pad: [1; 4] };
    assert_eq!(params.best_algo(), ConvAlgo::Winograd(winograd::tile_for(13, 21)));
    for stride in [1, 2] {
        for tile in tiles(stride) {
            let params = ConvParams { stride, ..params };
            front_door_case(ConvKernel::new(params, ConvAlgo::Winograd(tile)).unwrap(), tile);
            assert!(ConvKernel::new(ConvParams { stride: 3 - stride, ..params }, ConvAlgo::Winograd(tile)).is_none());
        }
    }
}

fn front_door_case(k: resnet50_kernels::ConvKernel, tile: WinogradTile) {
    let params = k.params;
    let shape = params.shape(2, 9, 11);
    let case = Case {
        x: rand_vec(shape.input_len(), 7, 0.0, 1.0),
        w: rand_vec(shape.weights_len(), 8, -0.3, 0.3),
        bias: Some(rand_vec(21, 9, -0.5, 0.5)),
        res: Some(rand_vec(shape.output_len(), 10, -1.0, 1.0)),
        relu: true,
        shape,
    };
    let mut packed = vec![0.0; k.packed_len()];
    k.pack(&case.w, case.bias.as_ref().unwrap(), &mut packed);
    let want = case.reference();
    let mag = tile_max(&shape, &case.magnitude(), tile.m());
    for isa in Isa::under_test() {
        for threads in 1..=3 {
            let mut scratch = vec![0.0; k.scratch_len(2, 9, 11, threads)];
            let mut y = vec![0.0; shape.output_len()];
            pool(threads).install(|| {
                k.run(isa, &packed, &shape, &case.x, case.res.as_deref(), None, true, &mut y, &mut scratch, threads)
            });
            check(&case, &y, &want, &mag, &format!("{isa} {tile:?} front door")).unwrap();
        }
    }
}

#[test]
fn same_threads_give_identical_bits_and_threads_do_not_change_them() {
    for stride in [1, 2] {
        identical_bits_case(stride);
    }
}

fn identical_bits_case(stride: usize) {
    let shape = ConvShape::square(2, 23, 17, 37, 53, 3, stride, 1);
    let case = Case {
        x: rand_vec(shape.input_len(), 11, 0.0, 1.0),
        w: rand_vec(shape.weights_len(), 12, -0.2, 0.2),
        bias: Some(rand_vec(53, 13, -0.5, 0.5)),
        res: Some(rand_vec(shape.output_len(), 14, -1.0, 1.0)),
        relu: true,
        shape,
    };
    for isa in Isa::under_test() {
        for tile in tiles(stride) {
            let base = case.run(isa, tile, 1);
            for threads in 1..=4 {
                for _ in 0..2 {
                    let y = case.run(isa, tile, threads);
                    assert!(
                        y.iter().zip(&base).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa} {tile:?}: threads {threads} changed the bits"
                    );
                }
            }
        }
    }
}

/// f64 direct convolution (pad 1, the shape's stride), no epilogue: the exact answer.
fn conv_f64(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f64> {
    let (oh, ow, ci, co) = (s.out_h(), s.out_w(), s.in_c, s.out_c);
    let mut y = vec![0.0f64; s.output_len()];
    for n in 0..s.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let acc = &mut y[((n * oh + oy) * ow + ox) * co..][..co];
                for ky in 0..3 {
                    let iy = (s.stride_h * oy + ky) as isize - 1;
                    if iy < 0 || iy >= s.in_h as isize {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (s.stride_w * ox + kx) as isize - 1;
                        if ix < 0 || ix >= s.in_w as isize {
                            continue;
                        }
                        let px = &x[((n * s.in_h + iy as usize) * s.in_w + ix as usize) * ci..][..ci];
                        for (c, &v) in px.iter().enumerate() {
                            let wr = &w[((ky * 3 + kx) * ci + c) * co..][..co];
                            for (a, &wv) in acc.iter_mut().zip(wr) {
                                *a += v as f64 * wv as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// ResNet50's 3×3 shapes (stride 1, and v1.5's stride 2) with He-uniform
/// weights and post-ReLU inputs: max |Δ| / max |y| per layer, against the
/// exact (f64) convolution and against `reference::conv2d` (f32). Printed
/// with `--nocapture`; asserted well below the network budget (1e-3 over 16
/// layers).
#[test]
fn resnet50_layer_accuracy() {
    let layers = [(56usize, 64usize, 1usize), (28, 128, 1), (14, 256, 1), (7, 512, 1), (56, 128, 2), (28, 256, 2)];
    for (hw, c, stride) in layers {
        let shape = ConvShape::square(1, hw, hw, c, c, 3, stride, 1);
        let lim = (6.0 / (9.0 * c as f32)).sqrt();
        let x: Vec<f32> = rand_vec(shape.input_len(), c as u64, -1.0, 1.5).into_iter().map(|v| v.max(0.0)).collect();
        let case = Case {
            w: rand_vec(shape.weights_len(), hw as u64, -lim, lim),
            x,
            bias: None,
            res: None,
            relu: false,
            shape,
        };
        let exact = conv_f64(&shape, &case.x, &case.w);
        let refr = case.reference();
        let ymax = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = |y: &[f32]| y.iter().zip(&exact).fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs())) / ymax;
        let ref_err = err(&refr);
        for isa in Isa::under_test() {
            for tile in tiles(stride) {
                let y = case.run(isa, tile, 2);
                let e = err(&y);
                let vs_ref = y.iter().zip(&refr).fold(0.0f64, |m, (&a, &b)| m.max((a - b).abs() as f64)) / ymax;
                println!(
                    "{hw}x{hw} {c}->{c} {isa:>6} {tile:?}: max|Δ|/max|y| vs exact {e:.2e}, vs reference::conv2d {vs_ref:.2e} (reference vs exact {ref_err:.2e})"
                );
                assert!(e < 2e-5, "{hw}x{hw} {c}: {isa} {tile:?} error {e:.2e}");
            }
        }
    }
}

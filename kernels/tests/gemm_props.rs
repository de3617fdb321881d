//! Property tests of the GEMM convolutions (`gemm::conv1x1`,
//! `gemm::conv_implicit`, and `ConvAlgo::Gemm1x1` / `ConvAlgo::ImplicitGemm`
//! through `ConvKernel`) against `reference::conv2d`, on every ISA this CPU
//! supports, AVX-512 included (`Isa::under_test`: `RESNET50_TEST_ISAS=avx512`
//! checks only that one, as the AVX-512 VM of `scripts/ci-avx512.sh` does).
//!
//! Tolerance: |got − want| ≤ 1e-5 · Σ|a·b| (the magnitude of the dot product,
//! computed by the reference on |input| and |weights|) + 1e-6 · |want| + 1e-7.

use std::sync::OnceLock;

use proptest::prelude::*;
use resnet50_kernels::gemm;
use resnet50_kernels::{
    reference, ConvAlgo, ConvKernel, ConvParams, ConvShape, Epilogue, Isa, Subsample, WinogradTile,
};

/// One rayon pool per thread count 1..=3, built once.
fn pool(threads: usize) -> &'static rayon::ThreadPool {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    &POOLS.get_or_init(|| {
        (1..=3).map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().expect("rayon pool")).collect()
    })[threads - 1]
}

/// xorshift64*: deterministic data from a proptest-chosen seed.
struct Rng(u64);
impl Rng {
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
struct Case {
    shape: ConvShape,
    bias: bool,
    residual: bool,
    relu: bool,
    threads: usize,
    /// Run a 1×1 unpadded shape through `conv_implicit` instead of `conv1x1`.
    force_implicit: bool,
    /// The residual is a larger image read at every stride-th pixel.
    subsample: Option<Subsample>,
    /// The residual is passed in the output buffer (`Epilogue::residual_in_output`).
    in_output: bool,
    seed: u64,
}

fn is_1x1(s: &ConvShape) -> bool {
    s.kh == 1 && s.kw == 1 && s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0
}

/// Shapes: kernel 1, 3 or 7 (and a non-square kh×kw), strides 1–2, per-side
/// padding 0..k, batch 1..=3, H/W down to 1, channel counts that are not
/// multiples of the register blocks. `big` raises the sizes so that several
/// `ic` blocks and K blocks are exercised.
fn case(big: bool) -> impl Strategy<Value = Case> {
    let k = prop_oneof![3 => Just((1usize, 1usize)), 2 => Just((3, 3)), 1 => Just((7, 7)), 1 => Just((1, 3)), 1 => Just((3, 1))];
    let hw = if big { 1..=24usize } else { 1..=9usize };
    let (cin_max, cout_max) = if big { (600usize, 150usize) } else { (70, 70) };
    (
        k,
        1..=3usize,
        hw.clone(),
        hw,
        1..=cin_max,
        1..=cout_max,
        1..=2usize,
        1..=2usize,
        any::<[u8; 4]>(),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        1..=3usize,
        any::<u64>(),
    )
        .prop_map(
            move |(
                (kh, kw),
                batch,
                in_h,
                in_w,
                cin,
                cout,
                sh,
                sw,
                pads,
                (bias, residual, relu, padded, force_implicit),
                threads,
                seed,
            )| {
                // Keep the reduction K = kh·kw·cin moderate for big kernels,
                // but give a third of the big ones 120..280 channels, so
                // that implicit GEMMs also read their taps in place.
                let cin = match (kh * kw >= 9, big && seed % 3 == 0) {
                    (false, _) => cin,
                    (true, true) => 120 + cin % 160,
                    (true, false) => 1 + cin % if big { 64 } else { 24 },
                };
                let pad = |b: u8, k: usize| if padded { b as usize % k } else { 0 };
                let mut s = ConvShape {
                    batch,
                    in_h,
                    in_w,
                    in_c: cin,
                    out_c: cout,
                    kh,
                    kw,
                    stride_h: sh,
                    stride_w: sw,
                    pad_top: pad(pads[0], kh),
                    pad_left: pad(pads[1], kw),
                    pad_bottom: pad(pads[2], kh),
                    pad_right: pad(pads[3], kw),
                };
                // Make the kernel fit the padded input.
                s.in_h = s.in_h.max(kh.saturating_sub(s.pad_top + s.pad_bottom)).max(1);
                s.in_w = s.in_w.max(kw.saturating_sub(s.pad_left + s.pad_right)).max(1);
                // Big: cap the batch so the reference stays quick.
                if big && s.batch * s.in_h * s.in_w > 600 {
                    s.batch = 1;
                }
                // A quarter of the residual cases read a larger image at every
                // 2nd or 3rd pixel (ResNet v1's subsampled block outputs).
                let subsample = (residual && seed % 4 == 0).then(|| {
                    let stride = 2 + (seed >> 2) as usize % 2;
                    let extra = |bit: u64| (seed >> bit) as usize % stride;
                    Subsample {
                        h: stride * (s.out_h() - 1) + 1 + extra(3),
                        w: stride * (s.out_w() - 1) + 1 + extra(5),
                        stride,
                    }
                });
                // A third of the other residual cases pass it in the output buffer.
                let in_output = residual && subsample.is_none() && (seed >> 9) % 3 == 0;
                Case { shape: s, bias, residual, relu, threads, force_implicit, subsample, in_output, seed: seed | 1 }
            },
        )
}

struct Data {
    input: Vec<f32>,
    weights: Vec<f32>,
    bias: Vec<f32>,
    residual: Vec<f32>,
    want: Vec<f32>,
    mag: Vec<f32>,
}

fn data(c: &Case) -> Data {
    let s = &c.shape;
    assert!(s.is_valid(), "{s:?}");
    let mut rng = Rng(c.seed);
    let input = rng.vec(s.input_len());
    let weights = rng.vec(s.weights_len());
    let bias = rng.vec(s.out_c);
    let residual = rng.vec(c.subsample.map_or(s.output_len(), |r| s.batch * r.h * r.w * s.out_c));
    let ep = epilogue(c, &bias, &residual);
    let mut want = vec![0.0; s.output_len()];
    reference::conv2d(s, &input, &weights, &ep, &mut want);
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut mag = vec![0.0; s.output_len()];
    reference::conv2d(s, &abs(&input), &abs(&weights), &Epilogue::default(), &mut mag);
    Data { input, weights, bias, residual, want, mag }
}

/// The case's epilogue as the reference sees it (a separate residual).
fn epilogue<'a>(c: &Case, bias: &'a [f32], residual: &'a [f32]) -> Epilogue<'a> {
    Epilogue {
        bias: c.bias.then_some(bias),
        residual: c.residual.then_some(residual),
        residual_subsample: c.subsample,
        residual_in_output: false,
        relu: c.relu,
    }
}

/// The output buffer to run into: the residual itself for `in_output` cases
/// (with the epilogue saying so), else NaN everywhere.
fn output_for<'a>(c: &Case, ep: Epilogue<'a>, d: &Data) -> (Epilogue<'a>, Vec<f32>) {
    if c.in_output {
        (Epilogue { residual: None, residual_in_output: true, ..ep }, d.residual.clone())
    } else {
        (ep, vec![f32::NAN; c.shape.output_len()])
    }
}

/// Runs the GEMM path the case selects with packed weights.
fn run_gemm(isa: Isa, c: &Case, d: &Data, packed: &[f32]) -> Vec<f32> {
    let s = &c.shape;
    let (ep, mut out) = output_for(c, epilogue(c, &d.bias, &d.residual), d);
    pool(c.threads).install(|| {
        if is_1x1(s) && !c.force_implicit {
            let mut scratch = vec![f32::NAN; gemm::conv1x1_scratch_len(s, c.threads)];
            gemm::conv1x1(isa, s, &d.input, packed, &ep, &mut out, &mut scratch, c.threads);
        } else {
            let mut scratch = vec![f32::NAN; gemm::implicit_scratch_len(s, c.threads)];
            gemm::conv_implicit(isa, s, &d.input, packed, &ep, &mut out, &mut scratch, c.threads);
        }
    });
    out
}

fn pack(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let k = s.kh * s.kw * s.in_c;
    let mut packed = vec![f32::NAN; gemm::packed_b_len(k, s.out_c)];
    gemm::pack_b(k, s.out_c, w, &mut packed);
    packed
}

fn check(isa: Isa, c: &Case, d: &Data, got: &[f32]) -> Result<(), TestCaseError> {
    for (i, ((&g, &w), &m)) in got.iter().zip(&d.want).zip(&d.mag).enumerate() {
        let tol = 1e-5 * m + 1e-6 * w.abs() + 1e-7;
        prop_assert!((g - w).abs() <= tol, "{isa} {c:?}: out[{i}] = {g}, want {w} (tol {tol})");
    }
    Ok(())
}

fn check_all_isas(c: &Case) -> Result<(), TestCaseError> {
    let d = data(c);
    let packed = pack(&c.shape, &d.weights);
    for isa in Isa::under_test() {
        let got = run_gemm(isa, c, &d, &packed);
        check(isa, c, &d, &got)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Small random shapes, every epilogue, threads 1..=3, every supported ISA.
    #[test]
    fn gemm_convs_match_reference(c in case(false)) {
        check_all_isas(&c)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Bigger shapes: several MC row blocks, K blocks (K up to 600 for 1×1),
    /// several column tiles.
    #[test]
    fn gemm_convs_match_reference_big(c in case(true)) {
        check_all_isas(&c)?;
    }

    /// Bit-identical results for a given ISA: across two runs with the same
    /// thread count, and across thread counts (the K reduction is never split
    /// and its order does not depend on the task split).
    #[test]
    fn gemm_convs_are_deterministic(c in case(false)) {
        let d = data(&c);
        let packed = pack(&c.shape, &d.weights);
        for isa in Isa::under_test() {
            let a = run_gemm(isa, &c, &d, &packed);
            let b = run_gemm(isa, &c, &d, &packed);
            prop_assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{isa} {c:?}: two runs differ");
            for threads in 1..=3 {
                let other = run_gemm(isa, &Case { threads, ..c.clone() }, &d, &packed);
                prop_assert!(
                    a.iter().zip(&other).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa} {c:?}: threads {} vs {threads} differ", c.threads
                );
            }
        }
    }

    /// The same through the `ConvKernel` front door (bias packed in front of
    /// the weights), with the algorithm `best_algo` picks when it is a GEMM one.
    #[test]
    fn conv_kernel_gemm_algos_match_reference(c in case(false)) {
        let s = c.shape;
        prop_assume!(s.stride_h == s.stride_w);
        let params = ConvParams {
            kh: s.kh,
            kw: s.kw,
            cin: s.in_c,
            cout: s.out_c,
            stride: s.stride_h,
            pad: [s.pad_top, s.pad_left, s.pad_bottom, s.pad_right],
        };
        let algo = params.best_algo();
        prop_assert_ne!(algo, ConvAlgo::Direct);
        let algo = if matches!(algo, ConvAlgo::Winograd(_)) { ConvAlgo::ImplicitGemm } else { algo };
        let kernel = ConvKernel::new(params, algo).unwrap();
        let c = Case { bias: true, ..c };
        let d = data(&c);
        let mut packed = vec![0.0; kernel.packed_len()];
        kernel.pack(&d.weights, &d.bias, &mut packed);
        for isa in Isa::under_test() {
            let (_, mut out) = output_for(&c, Epilogue::default(), &d);
            let mut scratch = vec![f32::NAN; kernel.scratch_len(s.batch, s.in_h, s.in_w, c.threads)];
            let residual = c.residual.then_some(&d.residual[..]);
            pool(c.threads).install(|| {
                if c.in_output {
                    kernel.run_residual_in_output(isa, &packed, &s, &d.input, c.relu, &mut out, &mut scratch, c.threads)
                } else {
                    kernel.run(isa, &packed, &s, &d.input, residual, c.subsample, c.relu, &mut out, &mut scratch, c.threads)
                }
            });
            check(isa, &c, &d, &out)?;
        }
    }
}

/// ResNet50's own non-1×1, non-Winograd convolutions pick `ImplicitGemm`,
/// its 1×1 ones `Gemm1x1`, and the layout ids round-trip.
#[test]
fn algo_selection_and_layout_ids() {
    let p = |k: usize, stride: usize, pad: usize| ConvParams { kh: k, kw: k, cin: 8, cout: 8, stride, pad: [pad; 4] };
    assert_eq!(p(7, 2, 3).best_algo(), ConvAlgo::ImplicitGemm);
    assert_eq!(p(3, 2, 1).best_algo(), ConvAlgo::ImplicitGemm);
    assert_eq!(p(1, 2, 0).best_algo(), ConvAlgo::Gemm1x1);
    assert_eq!(p(1, 1, 0).best_algo(), ConvAlgo::Gemm1x1);
    assert_eq!(p(3, 1, 1).best_algo(), ConvAlgo::Winograd(WinogradTile::F4x4));
    assert_eq!(ConvAlgo::ImplicitGemm.layout_id(), 4);
    assert_eq!(ConvAlgo::Winograd(WinogradTile::F4x4).layout_id(), 3);
    assert_eq!(ConvAlgo::Winograd(WinogradTile::F2x2).layout_id(), 5);
    assert_eq!(ConvAlgo::Winograd(WinogradTile::F2x2S2).layout_id(), 6);
    assert_eq!(ConvAlgo::Winograd(WinogradTile::F4x4S2).layout_id(), 7);
    assert_eq!(ConvAlgo::Winograd(WinogradTile::F3x3).layout_id(), 8);
    // Every id round-trips, and ids are unique.
    let algos: Vec<ConvAlgo> = (0..64).filter_map(ConvAlgo::from_layout_id).collect();
    assert_eq!(algos.len(), 8);
    assert!(algos.iter().all(|a| ConvAlgo::from_layout_id(a.layout_id()) == Some(*a)));
    assert_eq!(ConvAlgo::from_layout_id(4), Some(ConvAlgo::ImplicitGemm));
    assert!(p(5, 3, 2).supports(ConvAlgo::ImplicitGemm));
}

/// The ResNet50 stem (7×7/2, pad 3, 3 → 64) at a reduced size, and the
/// v1.5 3×3/2 convolution, on every ISA with 1 and 2 threads.
#[test]
fn resnet_stem_and_strided_3x3() {
    for (shape, seed) in
        [(ConvShape::square(1, 37, 35, 3, 64, 7, 2, 3), 3), (ConvShape::square(2, 15, 15, 32, 48, 3, 2, 1), 5)]
    {
        for threads in [1, 2] {
            let c = Case {
                shape,
                bias: true,
                residual: false,
                relu: true,
                threads,
                force_implicit: true,
                subsample: None,
                in_output: false,
                seed,
            };
            check_all_isas(&c).unwrap();
        }
    }
}

/// Checks listed cases `(shape, residual, subsample, threads)` on every ISA,
/// with bias, ReLU but in case 1, and the residual in the output in case 3.
fn check_listed(cases: &[(ConvShape, bool, Option<Subsample>, usize)], force_implicit: bool, seed: u64) {
    for (i, &(shape, residual, subsample, threads)) in cases.iter().enumerate() {
        let c = Case {
            shape,
            bias: true,
            residual,
            relu: i != 1,
            threads,
            force_implicit,
            subsample,
            in_output: residual && subsample.is_none() && i == 3,
            seed: 2 * i as u64 + seed,
        };
        check_all_isas(&c).unwrap();
    }
}

/// Implicit GEMMs that read their taps in place (`cin` in whole K blocks):
/// v1.5's 3×3/2 with 128 channels, stage 5's 3×3 with 512 (two K blocks per
/// tap), with residuals (separate, subsampled, in the output) and threads.
#[test]
fn in_place_taps_match_reference() {
    let cases = [
        (ConvShape::square(1, 15, 14, 128, 40, 3, 2, 1), false, None, 1),
        (ConvShape::square(2, 7, 7, 512, 48, 3, 1, 1), true, None, 2),
        (ConvShape::square(1, 7, 7, 512, 33, 3, 1, 1), true, Some(Subsample { h: 14, w: 13, stride: 2 }), 3),
        (ConvShape::square(1, 9, 8, 256, 20, 3, 2, 1), true, None, 2),
    ];
    check_listed(&cases, true, 1);
}

/// 1×1 convolutions whose A rows are copied next to each other because they
/// lie a multiple of 4 KiB apart in the input (`cin · stride_w` a multiple of
/// 1024 floats: 512 channels at stride 2, 1024 at stride 1), with several
/// `ic` blocks, K blocks, residuals (separate, subsampled, in the output) and threads.
#[test]
fn packed_pixel_rows_match_reference() {
    let cases = [
        (ConvShape::square(1, 9, 10, 512, 40, 1, 2, 0), false, None, 1),
        (ConvShape::square(2, 8, 7, 512, 33, 1, 2, 0), true, None, 2),
        (ConvShape::square(1, 17, 17, 1024, 24, 1, 1, 0), true, Some(Subsample { h: 33, w: 34, stride: 2 }), 3),
        (ConvShape::square(1, 5, 6, 1024, 20, 1, 1, 0), true, None, 2),
    ];
    check_listed(&cases, false, 5);
}

/// Tasks whose C is cut into row chunks (more than 512 KiB of C per task
/// and several K blocks: each chunk runs the whole K reduction before the
/// next): 1×1 with K = 800 (two blocks of AVX-512's 512, four of the other
/// kernels' 256) and 400 columns (chunks of 327 rows, or `MC` if more) over
/// 400 and 800 rows, the in-place residual included (its first K block
/// starts from C), and a 3×3/2 reading its taps in place (nine K blocks) on
/// 400 output pixels. Sizes are kept small for the emulated AVX-512 run.
#[test]
fn row_chunks_through_the_k_reduction_match_reference() {
    let one = |batch| ConvShape::square(batch, 20, 20, 800, 400, 1, 1, 0);
    let cases = [
        (one(1), false, None, 1),
        (one(2), true, None, 2),
        (one(1), true, Some(Subsample { h: 40, w: 40, stride: 2 }), 1),
        (one(1), true, None, 1),
    ];
    check_listed(&cases, false, 9);
    let c = Case {
        shape: ConvShape::square(1, 40, 40, 128, 400, 3, 2, 1),
        bias: true,
        residual: true,
        relu: true,
        threads: 1,
        force_implicit: true,
        subsample: None,
        in_output: true,
        seed: 17,
    };
    check_all_isas(&c).unwrap();
}

/// Wrong lengths are refused before any pointer work.
#[test]
#[should_panic(expected = "scratch holds")]
fn short_scratch_panics() {
    let s = ConvShape::square(1, 9, 9, 5, 7, 3, 2, 1);
    let k = 9 * 5;
    let packed = vec![0.0; gemm::packed_b_len(k, 7)];
    let mut out = vec![0.0; s.output_len()];
    gemm::conv_implicit(
        Isa::Scalar,
        &s,
        &vec![0.0; s.input_len()],
        &packed,
        &Epilogue::default(),
        &mut out,
        &mut [],
        1,
    );
}

#[test]
#[should_panic(expected = "packed weights hold")]
fn short_packed_b_panics() {
    let s = ConvShape::square(1, 4, 4, 5, 7, 1, 1, 0);
    let mut out = vec![0.0; s.output_len()];
    gemm::conv1x1(Isa::Scalar, &s, &vec![0.0; s.input_len()], &[0.0; 16], &Epilogue::default(), &mut out, &mut [], 1);
}

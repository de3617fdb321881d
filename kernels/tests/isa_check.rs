//! Kernel check for every ISA this CPU runs. CI runs it where our machines
//! cannot: NEON under qemu-user (`scripts/ci-aarch64.sh`, docs/aarch64.md) and
//! AVX-512 in a Bochs virtual machine (`scripts/ci-avx512.sh`).
//!
//! A `harness = false` test: `main` runs every comparison on the main thread,
//! with `threads = 1`, and never touches rayon's global pool, because creating
//! a thread hangs under qemu-user. It compares every convolution algorithm of
//! the public [`ConvKernel`] API against [`reference::conv2d`] over a fixed set
//! of shapes (odd sizes, channel counts that are not multiples of 4 or 16,
//! H/W down to 1, batch 2, every epilogue: bias, residual, ReLU), the pooling
//! and classifier kernels of [`pool`] against their references, then runs the
//! whole ResNet50 (v1) network at 64×64 with random weights — 53 convolutions
//! through [`ConvParams::best_algo`], max-pool, global average pool, a small
//! dense layer — on each ISA against the same network on the scalar reference
//! kernels. Output and scratch slices sit between poisoned guards, so a SIMD
//! store past either end is caught. The last line is `N passed, M failed`;
//! the exit code is non-zero on any failure.
//!
//! By default every supported SIMD ISA is checked (`Scalar` when there is
//! none); `RESNET50_TEST_ISAS=avx512` (comma-separated ISA names) checks only
//! those, as it narrows the other kernel tests.

use std::process::ExitCode;

use resnet50_kernels::shape::PoolShape;
use resnet50_kernels::{
    gemm, pool, reference, AlignedBuf, ConvAlgo, ConvKernel, ConvParams, ConvShape, Epilogue, Isa, Subsample,
};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn fill(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.sym() * scale).collect()
    }
}

/// Every algorithm the crate knows, found through its stable layout ids so
/// that a newly added algorithm is checked without editing this file.
fn all_algos() -> Vec<ConvAlgo> {
    (0..64).filter_map(ConvAlgo::from_layout_id).collect()
}

/// Floats of poison written before and after every output and scratch slice:
/// an unsafe store past either end shows up as a changed guard.
const GUARD: usize = 64;
const POISON: f32 = -7.77e33;

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("ok     {name}  {detail}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAILED {name}  {why}");
            }
        }
    }
}

/// `max |y - r| <= tol * max(max |r|, 1)` and no NaN / poison.
fn compare(got: &[f32], want: &[f32], tol: f32) -> Result<String, String> {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let mut worst = 0f32;
    let mut at = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if !d.is_finite() {
            return Err(format!("index {i}: got {g}, want {w}"));
        }
        if d > worst {
            worst = d;
            at = i;
        }
    }
    if worst <= tol * scale {
        Ok(format!("max err {:.2e} (scale {scale:.3})", worst))
    } else {
        Err(format!("max err {worst:.3e} > {:.1e} at index {at}: got {}, want {}", tol * scale, got[at], want[at]))
    }
}

fn guards_intact(buf: &[f32], len: usize, what: &str) -> Result<(), String> {
    let bad = buf[..GUARD].iter().chain(&buf[GUARD + len..]).any(|v| v.to_bits() != POISON.to_bits());
    if bad {
        Err(format!("{what}: write outside the slice"))
    } else {
        Ok(())
    }
}

/// Tolerance of an algorithm against the scalar reference, relative to the
/// output's magnitude. Winograd F(4×4,3×3) loses a few bits in its transforms.
fn tolerance(algo: ConvAlgo) -> f32 {
    match algo {
        ConvAlgo::Winograd(_) => 1e-4,
        _ => 2e-5,
    }
}

#[derive(Clone, Copy)]
struct EpCase {
    bias: bool,
    residual: bool,
    relu: bool,
}

impl EpCase {
    const ALL: [EpCase; 5] = [
        EpCase { bias: true, residual: false, relu: false },
        EpCase { bias: true, residual: false, relu: true },
        EpCase { bias: true, residual: true, relu: true },
        EpCase { bias: false, residual: true, relu: false },
        EpCase { bias: false, residual: false, relu: false },
    ];
    fn name(self) -> String {
        let mut s = String::new();
        s.push_str(if self.bias { "bias" } else { "nobias" });
        if self.residual {
            s.push_str("+res");
        }
        if self.relu {
            s.push_str("+relu");
        }
        s
    }
}

/// One convolution on `isa`/`algo` against the reference.
fn check_conv(
    isa: Isa,
    algo: ConvAlgo,
    params: ConvParams,
    (batch, h, w): (usize, usize, usize),
    ep: EpCase,
    seed: u64,
) -> Result<String, String> {
    let kernel = ConvKernel::new(params, algo).ok_or("algorithm does not support params")?;
    let shape = params.shape(batch, h, w);
    let mut rng = Rng::new(seed);
    let fan_in = (params.kh * params.kw * params.cin) as f32;
    let weights = rng.fill(shape.weights_len(), (3.0 / fan_in).sqrt());
    let bias = if ep.bias { rng.fill(params.cout, 0.5) } else { vec![0.0; params.cout] };
    let input = rng.fill(shape.input_len(), 1.0);
    // GEMM algorithms also read a subsampled residual (every 2nd pixel of a
    // larger image) on odd seeds; Winograd only takes a same-shape residual.
    let sub = (ep.residual && seed % 2 == 1 && !matches!(algo, ConvAlgo::Winograd(_))).then(|| Subsample {
        h: 2 * shape.out_h() - 1 + (seed as usize / 2) % 2,
        w: 2 * shape.out_w(),
        stride: 2,
    });
    let res_len = sub.map_or(shape.output_len(), |r| batch * r.h * r.w * params.cout);
    let residual = ep.residual.then(|| rng.fill(res_len, 1.0));

    let mut want = vec![0f32; shape.output_len()];
    reference::conv2d(
        &shape,
        &input,
        &weights,
        &Epilogue {
            bias: Some(&bias),
            residual: residual.as_deref(),
            residual_subsample: sub,
            relu: ep.relu,
            ..Default::default()
        },
        &mut want,
    );

    let mut packed = AlignedBuf::zeroed(kernel.packed_len()).map_err(|e| e.to_string())?;
    kernel.pack(&weights, &bias, packed.as_mut_slice());

    let out_len = shape.output_len();
    let mut out = vec![POISON; out_len + 2 * GUARD];
    let scratch_len = kernel.scratch_len(batch, h, w, 1);
    let mut scratch = vec![POISON; scratch_len + 2 * GUARD];
    // Half of the other residual cases pass the residual in the output buffer.
    let in_output = residual.is_some() && sub.is_none() && algo.adds_residual_in_output() && seed % 4 == 2;
    if in_output {
        out[GUARD..GUARD + out_len].copy_from_slice(residual.as_deref().unwrap_or_default());
        kernel.run_residual_in_output(
            isa,
            packed.as_slice(),
            &shape,
            &input,
            ep.relu,
            &mut out[GUARD..GUARD + out_len],
            &mut scratch[GUARD..GUARD + scratch_len],
            1,
        );
    } else {
        kernel.run(
            isa,
            packed.as_slice(),
            &shape,
            &input,
            residual.as_deref(),
            sub,
            ep.relu,
            &mut out[GUARD..GUARD + out_len],
            &mut scratch[GUARD..GUARD + scratch_len],
            1,
        );
    }
    guards_intact(&out, out_len, "output")?;
    guards_intact(&scratch, scratch_len, "scratch")?;
    let got = &out[GUARD..GUARD + out_len];
    compare(got, &want, tolerance(algo))
}

/// `(kh, stride, pad [t, l, b, r], cin, cout, batch, h, w)`.
type Case = (usize, usize, [usize; 4], usize, usize, usize, usize, usize);

fn conv_cases() -> Vec<Case> {
    const P0: [usize; 4] = [0; 4];
    const P1: [usize; 4] = [1; 4];
    const P3: [usize; 4] = [3; 4];
    // TF "same" for stride 2 on even inputs pads only bottom/right.
    const PS: [usize; 4] = [0, 0, 1, 1];
    vec![
        // 1×1, stride 1: GEMM edges in M (pixels), N (cout) and K (cin).
        (1, 1, P0, 3, 5, 1, 7, 5),
        (1, 1, P0, 1, 1, 1, 1, 1),
        (1, 1, P0, 17, 33, 1, 1, 1),
        (1, 1, P0, 19, 20, 2, 5, 3),
        (1, 1, P0, 64, 256, 2, 4, 4),
        (1, 1, P0, 256, 64, 1, 3, 9),
        (1, 1, P0, 100, 36, 1, 13, 11),
        (1, 1, P0, 520, 24, 1, 2, 3),
        // More rows than one MC block, more columns than one NC slice.
        (1, 1, P0, 24, 40, 1, 17, 19),
        (1, 1, P0, 16, 1040, 1, 2, 3),
        // 1×1, stride 2 (v1 downsampling).
        (1, 2, P0, 13, 18, 1, 7, 7),
        (1, 2, P0, 64, 128, 2, 8, 6),
        (1, 2, P0, 8, 16, 1, 1, 1),
        (1, 2, P0, 5, 3, 1, 2, 3),
        (1, 2, P0, 256, 512, 1, 5, 4),
        // 3×3, stride 1, pad 1: Winograd tiles with every remainder.
        (3, 1, P1, 3, 5, 1, 1, 1),
        (3, 1, P1, 4, 4, 1, 1, 2),
        (3, 1, P1, 9, 17, 2, 5, 7),
        (3, 1, P1, 16, 20, 1, 9, 4),
        (3, 1, P1, 33, 7, 1, 2, 11),
        (3, 1, P1, 64, 64, 1, 6, 6),
        (3, 1, P1, 32, 48, 1, 8, 8),
        (3, 1, P1, 21, 35, 2, 3, 10),
        // cin·cout ≥ 256·256: the F(2×2) tile (stages 4–5 of ResNet50).
        (3, 1, P1, 256, 257, 1, 5, 6),
        // 3×3, stride 2 (v1.5 downsampling) and the 3×3 no-pad corner.
        (3, 2, P1, 8, 16, 1, 7, 7),
        (3, 2, P1, 17, 9, 2, 6, 5),
        (3, 2, P1, 4, 4, 1, 1, 1),
        (3, 2, P1, 40, 36, 1, 11, 9),
        (3, 2, PS, 32, 40, 1, 8, 6),
        (3, 1, P0, 5, 6, 1, 3, 4),
        // 7×7 / 2 stem, pad 3 (ZeroPadding(3) + valid).
        (7, 2, P3, 3, 16, 1, 15, 13),
        (7, 2, P3, 3, 64, 2, 9, 9),
        (7, 2, P3, 3, 8, 1, 1, 1),
        (7, 2, P3, 5, 20, 1, 12, 10),
    ]
}

fn run_conv_checks(isa: Isa, tally: &mut Tally) {
    let algos = all_algos();
    let mut n = 0usize;
    for (ci, &(k, stride, pad, cin, cout, batch, h, w)) in conv_cases().iter().enumerate() {
        let params = ConvParams { kh: k, kw: k, cin, cout, stride, pad };
        for &algo in &algos {
            if !params.supports(algo) {
                continue;
            }
            // Rotate through the epilogues; the first case of each family runs all.
            let eps: Vec<EpCase> =
                if ci % 4 == 0 { EpCase::ALL.to_vec() } else { vec![EpCase::ALL[n % EpCase::ALL.len()]] };
            for ep in eps {
                n += 1;
                let name = format!(
                    "{isa:6} {:12} {k}x{k}/{stride} pad{pad:?} {cin}->{cout} n{batch} {h}x{w} {}",
                    algo.name(),
                    ep.name()
                );
                let r = check_conv(isa, algo, params, (batch, h, w), ep, 1000 + n as u64);
                tally.record(&name, r);
            }
        }
    }
}

/// Max-pool, global pools and the dense layer on `isa` (threads = 1) against
/// the reference: max is exact, sums within rounding.
fn run_pool_checks(isa: Isa, tally: &mut Tally) {
    let mut rng = Rng::new(77);
    // (batch, h, w, c, k, stride, pad)
    let pools = [
        (1, 7, 7, 5, 3, 2, 1),
        (2, 8, 6, 64, 3, 2, 1),
        (1, 1, 1, 3, 3, 2, 1),
        (1, 4, 5, 17, 3, 2, 0),
        (1, 9, 9, 33, 2, 2, 0),
    ];
    for (batch, in_h, in_w, c, k, stride, pad) in pools {
        let shape = PoolShape { batch, in_h, in_w, c, k, stride, pad };
        let x = rng.fill(shape.input_len(), 1.0);
        let mut want = vec![0f32; shape.output_len()];
        reference::max_pool2d(&shape, &x, &mut want);
        let mut got = vec![f32::NAN; shape.output_len()];
        pool::max_pool2d(isa, &shape, &x, &mut got, 1);
        tally.record(
            &format!("{isa:6} max_pool {k}x{k}/{stride} pad{pad} n{batch} {in_h}x{in_w}x{c}"),
            compare(&got, &want, 0.0),
        );
    }
    // The stem with its max-pool fused, against the two steps: bit for bit.
    for (batch, h, w, cin, cout) in [(2, 30, 22, 3, 16), (1, 9, 13, 3, 64)] {
        let s = ConvShape::square(batch, h, w, cin, cout, 7, 2, 3);
        let pool = PoolShape { batch, in_h: s.out_h(), in_w: s.out_w(), c: cout, k: 3, stride: 2, pad: 1 };
        let x = rng.fill(s.input_len(), 1.0);
        let wts = rng.fill(s.weights_len(), 0.2);
        let bias = rng.fill(cout, 0.5);
        let ep = Epilogue::bias_relu(&bias, true);
        let k = 49 * cin;
        let mut packed = vec![0f32; gemm::packed_b_len(k, cout)];
        gemm::pack_b(k, cout, &wts, &mut packed);
        let mut conv = vec![0f32; s.output_len()];
        let mut scratch = vec![0f32; gemm::implicit_scratch_len(&s, 1)];
        gemm::conv_implicit(isa, &s, &x, &packed, &ep, &mut conv, &mut scratch, 1);
        let mut want = vec![0f32; pool.output_len()];
        pool::max_pool2d(isa, &pool, &conv, &mut want, 1);
        let mut got = vec![f32::NAN; pool.output_len()];
        let mut scratch = vec![f32::NAN; gemm::implicit_maxpool_scratch_len(&s, &pool, 1)];
        gemm::conv_implicit_maxpool(isa, &s, &pool, &x, &packed, &ep, &mut got, &mut scratch, 1);
        tally.record(&format!("{isa:6} stem+max_pool fused n{batch} {h}x{w}x{cin}->{cout}"), compare(&got, &want, 0.0));
    }
    for (n, h, w, c) in [(2, 3, 5, 19), (1, 1, 1, 7), (1, 7, 7, 2048)] {
        let x = rng.fill(n * h * w * c, 1.0);
        for max in [false, true] {
            let mut want = vec![0f32; n * c];
            if max {
                reference::global_max_pool(n, h, w, c, &x, &mut want);
            } else {
                reference::global_avg_pool(n, h, w, c, &x, &mut want);
            }
            let mut got = vec![f32::NAN; n * c];
            pool::global_pool(isa, max, n, h, w, c, &x, &mut got);
            let name = if max { "global_max" } else { "global_avg" };
            tally.record(&format!("{isa:6} {name} n{n} {h}x{w}x{c}"), compare(&got, &want, 1e-6));
        }
    }
    for (n, k, m) in [(1, 2048, 10), (2, 37, 29), (1, 5, 130), (3, 64, 1000)] {
        let x = rng.fill(n * k, 1.0);
        let w = rng.fill(k * m, (3.0 / k as f32).sqrt());
        let b = rng.fill(m, 0.5);
        let mut want = vec![0f32; n * m];
        reference::dense(n, k, m, &x, &w, &b, &mut want);
        let mut got = vec![f32::NAN; n * m];
        pool::dense(isa, n, k, m, &x, &w, &b, &mut got, 1);
        tally.record(&format!("{isa:6} dense n{n} {k}->{m}"), compare(&got, &want, 2e-5));
    }
}

/// One convolution layer of the end-to-end stack.
struct Layer {
    params: ConvParams,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// The 53 convolutions of ResNet50 v1 (Keras): stem, then bottleneck blocks
/// `[3, 4, 6, 3]` with stride 2 on the first 1×1 of stages 3–5.
/// Each block: `[1×1 reduce, 3×3, 1×1 expand, (projection)]`, has-projection.
fn resnet50_layers(rng: &mut Rng) -> (Layer, Vec<(Vec<Layer>, bool)>) {
    let mut layer = |k: usize, stride: usize, pad: usize, cin: usize, cout: usize| {
        let params = ConvParams { kh: k, kw: k, cin, cout, stride, pad: [pad; 4] };
        let fan_in = (k * k * cin) as f32;
        Layer { params, weights: rng.fill(k * k * cin * cout, (6.0 / fan_in).sqrt()), bias: rng.fill(cout, 0.1) }
    };
    let stem = layer(7, 2, 3, 3, 64);
    let mut blocks = Vec::new();
    let mut cin = 64;
    for (stage, &(nblocks, width)) in [(3, 64), (4, 128), (6, 256), (3, 512)].iter().enumerate() {
        for b in 0..nblocks {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            let cout = 4 * width;
            let mut convs =
                vec![layer(1, stride, 0, cin, width), layer(3, 1, 1, width, width), layer(1, 1, 0, width, cout)];
            let proj = b == 0;
            if proj {
                convs.push(layer(1, stride, 0, cin, cout));
            }
            blocks.push((convs, proj));
            cin = cout;
        }
    }
    (stem, blocks)
}

/// Runs one conv layer with `isa` (best algorithm) or the scalar reference.
#[allow(clippy::too_many_arguments)]
fn run_layer(
    isa: Option<Isa>,
    l: &Layer,
    batch: usize,
    h: usize,
    w: usize,
    input: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
) -> (Vec<f32>, usize, usize) {
    let shape = l.params.shape(batch, h, w);
    let mut out = vec![0f32; shape.output_len()];
    match isa {
        None => reference::conv2d(
            &shape,
            input,
            &l.weights,
            &Epilogue { bias: Some(&l.bias), residual, relu, ..Default::default() },
            &mut out,
        ),
        Some(isa) => {
            let kernel = ConvKernel::new(l.params, l.params.best_algo()).expect("best algo");
            let mut packed = AlignedBuf::zeroed(kernel.packed_len()).expect("alloc");
            kernel.pack(&l.weights, &l.bias, packed.as_mut_slice());
            let mut scratch = vec![0f32; kernel.scratch_len(batch, h, w, 1)];
            kernel.run(isa, packed.as_slice(), &shape, input, residual, None, relu, &mut out, &mut scratch, 1);
        }
    }
    (out, shape.out_h(), shape.out_w())
}

/// The ResNet50 v1 network on a `batch × size × size × 3` input, on `isa`
/// (`None`: the scalar reference kernels): every convolution, the 3×3/2
/// max-pool, global average pool and a small classifier. Returns the
/// `N × h × w × 2048` features and the `N × CLASSES` logits.
fn resnet50_forward(isa: Option<Isa>, batch: usize, size: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let (stem, blocks) = resnet50_layers(&mut rng);
    let input = rng.fill(batch * size * size * 3, 1.0);
    let (x, h, w) = run_layer(isa, &stem, batch, size, size, &input, None, true);
    // Keras: ZeroPadding(1) + 3×3/2 valid max-pool on the ReLU output (≥ 0, so
    // zero padding and "padding never wins" agree).
    let pool = PoolShape { batch, in_h: h, in_w: w, c: 64, k: 3, stride: 2, pad: 1 };
    let mut x_pooled = vec![0f32; pool.output_len()];
    match isa {
        None => reference::max_pool2d(&pool, &x, &mut x_pooled),
        Some(isa) => pool::max_pool2d(isa, &pool, &x, &mut x_pooled, 1),
    }
    let (mut x, mut h, mut w) = (x_pooled, pool.out_h(), pool.out_w());
    for (convs, proj) in &blocks {
        let shortcut = if *proj { run_layer(isa, &convs[3], batch, h, w, &x, None, false).0 } else { x.clone() };
        let (a, h1, w1) = run_layer(isa, &convs[0], batch, h, w, &x, None, true);
        let (b, h2, w2) = run_layer(isa, &convs[1], batch, h1, w1, &a, None, true);
        let (c, h3, w3) = run_layer(isa, &convs[2], batch, h2, w2, &b, Some(&shortcut), true);
        x = c;
        h = h3;
        w = w3;
    }
    assert_eq!(x.len(), batch * h * w * 2048);
    // Top: global average pool and a 2048 → CLASSES dense layer (logits).
    let fc_w = rng.fill(2048 * CLASSES, (3.0f32 / 2048.0).sqrt());
    let fc_b = rng.fill(CLASSES, 0.1);
    let mut pooled = vec![0f32; batch * 2048];
    let mut logits = vec![0f32; batch * CLASSES];
    match isa {
        None => {
            reference::global_avg_pool(batch, h, w, 2048, &x, &mut pooled);
            reference::dense(batch, 2048, CLASSES, &pooled, &fc_w, &fc_b, &mut logits);
        }
        Some(isa) => {
            pool::global_pool(isa, false, batch, h, w, 2048, &x, &mut pooled);
            pool::dense(isa, batch, 2048, CLASSES, &pooled, &fc_w, &fc_b, &mut logits, 1);
        }
    }
    (x, logits)
}

/// Classes of the end-to-end run's classifier.
const CLASSES: usize = 10;

/// Cosine similarity of each image's feature vector, and the max-abs check.
fn compare_features(got: &[f32], want: &[f32], batch: usize) -> Result<String, String> {
    let row = want.len() / batch;
    let mut worst_cos = 1f64;
    for b in 0..batch {
        let (g, r) = (&got[b * row..(b + 1) * row], &want[b * row..(b + 1) * row]);
        let dot: f64 = g.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum();
        let ng: f64 = g.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
        let nr: f64 = r.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
        let cos = if ng == 0.0 && nr == 0.0 { 1.0 } else { dot / (ng * nr) };
        worst_cos = worst_cos.min(cos);
    }
    let detail = compare(got, want, 1e-3)?;
    if worst_cos >= 0.99999 {
        Ok(format!("{detail}, min cosine {worst_cos:.7}"))
    } else {
        Err(format!("cosine {worst_cos:.7} < 0.99999 ({detail})"))
    }
}

fn isas_to_check() -> Vec<Isa> {
    // The ISAs named in RESNET50_TEST_ISAS, as for the other kernel tests
    // (`Isa::under_test` panics on an unknown or unsupported name).
    if std::env::var("RESNET50_TEST_ISAS").is_ok_and(|v| !v.trim().is_empty()) {
        return Isa::under_test();
    }
    let simd: Vec<Isa> = Isa::supported().into_iter().filter(|&i| i != Isa::Scalar).collect();
    if simd.is_empty() {
        vec![Isa::Scalar]
    } else {
        simd
    }
}

fn main() -> ExitCode {
    let isas = isas_to_check();
    println!(
        "isa_check on {} ({}): ISAs {:?}, algorithms {:?}",
        std::env::consts::ARCH,
        if cfg!(target_arch = "aarch64") { "NEON path" } else { "host ISAs" },
        isas.iter().map(|i| i.name()).collect::<Vec<_>>(),
        all_algos().iter().map(|a| a.name()).collect::<Vec<_>>()
    );
    let mut tally = Tally { passed: 0, failed: 0 };
    for &isa in &isas {
        run_conv_checks(isa, &mut tally);
    }

    for &isa in &isas {
        run_pool_checks(isa, &mut tally);
    }

    // End to end: the whole network at 64×64 (→ 2×2×2048 → 10 logits), batch 1.
    let (batch, size, seed) = (1, 64, 50);
    let (want_x, want_y) = resnet50_forward(None, batch, size, seed);
    for &isa in &isas {
        let (got_x, got_y) = resnet50_forward(Some(isa), batch, size, seed);
        tally.record(
            &format!("{isa:6} resnet50-v1 {size}x{size} n{batch} features vs reference"),
            compare_features(&got_x, &want_x, batch),
        );
        tally.record(
            &format!("{isa:6} resnet50-v1 {size}x{size} n{batch} logits vs reference"),
            compare_features(&got_y, &want_y, batch),
        );
    }

    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! GEMM-convolution benchmark: every ResNet50 1×1 layer (224×224 input),
//! the 7×7/2 stem and the 3×3 layers that run as implicit GEMM, ours (each supported ISA) vs `matrixmultiply::sgemm` on the
//! same M×K×N, in GFLOP/s (criterion `Throughput::Elements(2·M·N·K)`).
//!
//! `cargo bench -p resnet50-kernels --bench gemm` runs criterion.
//! `GEMM_TABLE=1 cargo bench -p resnet50-kernels --bench gemm` instead prints
//! the measured FMA peak per ISA and a table of median GFLOP/s and % of peak
//! (and the microkernel alone, operands in L1, per k-block length, with and
//! without a residual, and from the short ones the fixed cost of a tile in k
//! steps)
//! (`GEMM_THREADS=1,2` picks thread counts, `GEMM_REPS` the samples,
//! `GEMM_FILTER` a substring of the layer name, `GEMM_BEST=1` the best sample
//! instead of the median, `GEMM_SAMPLE_MS` the length of a sample,
//! `GEMM_SHAPES=m,k,n;...` custom GEMMs instead of the ResNet50 layers,
//! `GEMM_COLD=1` weights that come from memory as in a whole inference: each
//! call uses the next of enough copies of the packed weights to overflow
//! the last-level cache).

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use resnet50_kernels::gemm::{
    self,
    peak::{fma_peak_gflops, fma_probe, k_loop_probe, microkernel_probe, LoopShape},
};
use resnet50_kernels::{AlignedBuf, ConvShape, Epilogue, Isa};

/// A benchmark case: name, input `h = w`, cin, cout, kernel, stride, pad.
struct Case {
    name: &'static str,
    shape: ConvShape,
}

fn cases() -> Vec<Case> {
    if let Ok(list) = std::env::var("GEMM_SHAPES") {
        // Custom GEMMs "m,k,n;m,k,n": 1×1 convolutions over an m×1 image.
        return list
            .split(';')
            .filter_map(|t| {
                let v: Vec<usize> = t.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                let name = Box::leak(t.trim().replace(',', "x").into_boxed_str());
                (v.len() == 3).then(|| Case { name, shape: ConvShape::square(1, 1, 1, v[1], v[2], 1, 1, 0) })
            })
            .map(|mut c| {
                let m: usize = c.name.split('x').next().unwrap().parse().unwrap();
                c.shape.in_h = m;
                c
            })
            .collect();
    }
    let one = |name, hw, cin, cout, stride| Case { name, shape: ConvShape::square(1, hw, hw, cin, cout, 1, stride, 0) };
    vec![
        one("3136x64x64", 56, 64, 64, 1),
        one("3136x64x256", 56, 64, 256, 1),
        one("3136x256x64", 56, 256, 64, 1),
        one("784x256x128/s2", 56, 256, 128, 2),
        one("784x128x512", 28, 128, 512, 1),
        one("784x512x128", 28, 512, 128, 1),
        one("784x256x512/s2", 56, 256, 512, 2),
        one("196x512x256", 14, 512, 256, 1),
        one("196x256x1024", 14, 256, 1024, 1),
        one("196x1024x256", 14, 1024, 256, 1),
        one("196x512x1024/s2", 28, 512, 1024, 2),
        one("49x1024x512", 7, 1024, 512, 1),
        one("49x512x2048", 7, 512, 2048, 1),
        one("49x2048x512", 7, 2048, 512, 1),
        one("49x1024x2048/s2", 14, 1024, 2048, 2),
        Case { name: "stem12544x147x64", shape: ConvShape::square(1, 224, 224, 3, 64, 7, 2, 3) },
        // The 3×3 layers that run as implicit GEMM: v1.5's stride-2 ones and
        // stage 5 (7×7, where Winograd's larger weights cost more than it saves).
        Case { name: "784x1152x128/3x3s2", shape: ConvShape::square(1, 56, 56, 128, 128, 3, 2, 1) },
        Case { name: "196x2304x256/3x3s2", shape: ConvShape::square(1, 28, 28, 256, 256, 3, 2, 1) },
        Case { name: "49x4608x512/3x3s2", shape: ConvShape::square(1, 14, 14, 512, 512, 3, 2, 1) },
        Case { name: "49x4608x512/3x3", shape: ConvShape::square(1, 7, 7, 512, 512, 3, 1, 1) },
    ]
}

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

/// Everything one case needs, allocated once.
struct Data {
    s: ConvShape,
    m: usize,
    k: usize,
    n: usize,
    one: bool,
    input: AlignedBuf,
    a_dense: Vec<f32>,
    w: Vec<f32>,
    /// Copies of the packed weights, used in turn (one unless `GEMM_COLD`).
    packed: Vec<AlignedBuf>,
    next: usize,
    bias: Vec<f32>,
    out: AlignedBuf,
    scratch: AlignedBuf,
}

impl Data {
    fn new(s: ConvShape, threads: usize) -> Self {
        let mut seed = 7;
        let m = s.batch * s.out_h() * s.out_w();
        let k = s.kh * s.kw * s.in_c;
        let n = s.out_c;
        let one = s.kh == 1 && s.kw == 1 && s.pad_top == 0;
        let input: Vec<f32> = (0..s.input_len()).map(|_| lcg(&mut seed)).collect();
        let input = AlignedBuf::from_slice(&input).unwrap();
        let a_dense: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
        let mut one_copy = AlignedBuf::zeroed(gemm::packed_b_len(k, n)).unwrap();
        gemm::pack_b(k, n, &w, one_copy.as_mut_slice());
        // Cold weights: 128 MiB of copies, well past this kind of machine's L3.
        let copies = if std::env::var_os("GEMM_COLD").is_some() {
            (128usize << 20).div_ceil(4 * one_copy.as_slice().len()).max(2)
        } else {
            1
        };
        let packed = (0..copies).map(|_| AlignedBuf::from_slice(one_copy.as_slice()).unwrap()).collect();
        let bias: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
        let scratch_len =
            if one { gemm::conv1x1_scratch_len(&s, threads) } else { gemm::implicit_scratch_len(&s, threads) };
        Data {
            s,
            m,
            k,
            n,
            one,
            input,
            a_dense,
            w,
            packed,
            next: 0,
            bias,
            out: AlignedBuf::zeroed(m * n).unwrap(),
            scratch: AlignedBuf::zeroed(scratch_len).unwrap(),
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.k * self.n) as u64
    }

    fn ours(&mut self, isa: Isa, threads: usize) {
        let ep = Epilogue::bias_relu(&self.bias, true);
        self.next = (self.next + 1) % self.packed.len();
        let packed = self.packed[self.next].as_slice();
        if self.one {
            gemm::conv1x1(
                isa,
                &self.s,
                self.input.as_slice(),
                packed,
                &ep,
                self.out.as_mut_slice(),
                self.scratch.as_mut_slice(),
                threads,
            );
        } else {
            gemm::conv_implicit(
                isa,
                &self.s,
                self.input.as_slice(),
                packed,
                &ep,
                self.out.as_mut_slice(),
                self.scratch.as_mut_slice(),
                threads,
            );
        }
        black_box(self.out.as_slice());
    }

    fn matrixmultiply(&mut self) {
        let (m, k, n) = (self.m, self.k, self.n);
        // SAFETY: a_dense is m×k, w is k×n, out is m×n, all row-major with the given strides.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                self.a_dense.as_ptr(),
                k as isize,
                1,
                self.w.as_ptr(),
                n as isize,
                1,
                0.0,
                self.out.as_mut_slice().as_mut_ptr(),
                n as isize,
                1,
            );
        }
        black_box(self.out.as_slice());
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
}

#[cfg(target_os = "linux")]
mod cpu_clock {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    // SAFETY: POSIX's `clock_gettime` signature on 64-bit Linux (glibc / musl,
    // already linked by std).
    unsafe extern "C" {
        fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
    }

    /// Nanoseconds this thread has spent on a CPU.
    pub fn thread_ns() -> Option<u64> {
        let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout).
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
}

/// Nanoseconds this thread has spent on a CPU, or the wall clock where that
/// clock is missing. On a shared machine this ignores the time slices other
/// processes take from us.
fn cpu_ns(wall0: Instant) -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(t) = cpu_clock::thread_ns() {
        return t;
    }
    wall0.elapsed().as_nanos() as u64
}

/// GFLOP/s and fraction of the FMA peak of one benchmarked function.
#[derive(Clone, Copy)]
struct Stat {
    gflops: f64,
    of_peak: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if std::env::var_os("GEMM_BEST").is_some() {
        v[v.len() - 1]
    } else {
        v[v.len() / 2]
    }
}

/// Times `variants` in turn, `reps` rounds; each sample (≈`GEMM_SAMPLE_MS` of
/// calls) is preceded by an FMA-probe sample of the same length, and the
/// fraction of peak is the median of the per-pair ratios, which cancels most
/// of the clock-frequency and SMT-sibling swings of a shared machine. Timed by
/// this thread's CPU time when `cpu_time` (one thread), else the wall clock.
fn measure(
    flops: u64,
    reps: usize,
    cpu_time: bool,
    peak_isa: Isa,
    threads: usize,
    variants: &mut [&mut (dyn FnMut() + Send)],
) -> Vec<Stat> {
    let wall0 = Instant::now();
    let now = || if cpu_time { cpu_ns(wall0) } else { wall0.elapsed().as_nanos() as u64 };
    let sample_ns = env_list("GEMM_SAMPLE_MS", &[10])[0] as u64 * 1_000_000;
    // Calibrate calls per sample for each variant, and probe iterations.
    let calls: Vec<u64> = variants
        .iter_mut()
        .map(|f| {
            f();
            let t0 = now();
            f();
            (sample_ns / (now() - t0).max(1000)).max(1)
        })
        .collect();
    let probe_iters = {
        let t0 = now();
        fma_probe(peak_isa, 100_000);
        (100_000 * sample_ns / (now() - t0).max(1000)).max(1000)
    };
    let mut g = vec![Vec::new(); variants.len()];
    let mut r = vec![Vec::new(); variants.len()];
    for _ in 0..reps {
        for (v, f) in variants.iter_mut().enumerate() {
            let t = cpu_ns(wall0);
            let pf = fma_probe(peak_isa, probe_iters);
            let peak = pf as f64 / (cpu_ns(wall0) - t).max(1) as f64;
            let t = now();
            for _ in 0..calls[v] {
                f();
            }
            let gf = (flops * calls[v]) as f64 / (now() - t).max(1) as f64;
            g[v].push(gf);
            r[v].push(gf / (peak * threads as f64));
        }
    }
    g.into_iter().zip(r).map(|(g, r)| Stat { gflops: median(g), of_peak: median(r) }).collect()
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn table() {
    let reps = env_list("GEMM_REPS", &[11])[0];
    let threads = env_list("GEMM_THREADS", &[1]);
    let filter = std::env::var("GEMM_FILTER").unwrap_or_default();
    let isas: Vec<Isa> = Isa::supported().into_iter().filter(|&i| i != Isa::Scalar).collect();
    let best = *isas.last().unwrap_or(&Isa::Scalar);
    for &isa in &isas {
        let iters = 1_000_000;
        let wall0 = Instant::now();
        let mut v: Vec<f64> = (0..15)
            .map(|_| {
                let t = cpu_ns(wall0);
                let f = fma_probe(isa, iters);
                f as f64 / (cpu_ns(wall0) - t).max(1) as f64
            })
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "FMA peak {isa}: median {:.1}, min {:.1}, max {:.1} GFLOP/s per core (15 samples, thread CPU time)",
            v[7], v[0], v[14]
        );
    }
    // The microkernel alone (operands in L1, bias + ReLU epilogue; "+r": also
    // the residual, read in place from C), per k block length: the ceiling
    // of every layer with that K block. Sampled like the layers (`measure`),
    // against this ISA's own FMA probe. From the short ones, the tile's fixed
    // cost: with `t0` k steps of it, a kc-step tile runs at kc / (kc + t0) of
    // the peak (the k loop itself runs at the peak), so
    // t0 = kc · (1 / fraction − 1) — what ResNet50's K = 64 layers pay.
    for &isa in &isas {
        print!("microkernel {isa} in L1, % of FMA peak by kc:");
        let mut fixed = Vec::new();
        for (kc, residual) in
            [(16, false), (32, false), (64, false), (64, true), (128, false), (256, false), (256, true), (512, false)]
        {
            let tiles = 200_000 / kc as u64;
            let flops = microkernel_probe(isa, kc, residual, tiles);
            let mut probe = || {
                black_box(microkernel_probe(isa, kc, residual, tiles));
            };
            let st = measure(flops, 15, true, isa, 1, &mut [&mut probe]);
            print!("  {kc}{}: {:.1}%", if residual { "+r" } else { "" }, 100.0 * st[0].of_peak);
            if kc <= 64 && !residual {
                fixed.push(kc as f64 * (1.0 / st[0].of_peak - 1.0));
            }
            std::io::stdout().flush().ok();
        }
        // The middle of the three fits (`median` takes the best sample under
        // GEMM_BEST, which for a cost would be the largest).
        fixed.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("  (fixed cost per tile ≈ {:.1} k steps, from kc 16–64)", fixed[fixed.len() / 2]);
    }
    // The register tiles' k loops alone (no prefetch, epilogue or loop nest;
    // AVX-512 only): what the tile shape itself allows on this core, which
    // the microkernel above and every layer below sit under.
    if isas.contains(&Isa::Avx512) {
        print!("k loop alone avx512 in L1, % of FMA peak:");
        for (name, shape) in [("12x32", LoopShape::Rows12Cols32), ("6x64", LoopShape::Rows6Cols64)] {
            let iters = 50_000;
            let flops = k_loop_probe(Isa::Avx512, shape, iters).unwrap_or(0);
            let mut probe = || {
                black_box(k_loop_probe(Isa::Avx512, shape, iters));
            };
            let st = measure(flops, 15, true, Isa::Avx512, 1, &mut [&mut probe]);
            print!("  {name}: {:.1}%", 100.0 * st[0].of_peak);
        }
        println!();
    }
    print!("{:<18} {:>3}", "layer", "thr");
    for isa in &isas {
        print!(" {:>9} {:>6}", isa.name(), "%peak");
    }
    println!(" {:>9} {:>6}", "mmul", "%peak");
    for c in cases().into_iter().filter(|c| c.name.contains(&filter)) {
        for &t in &threads {
            let mut d = Data::new(c.shape, t);
            let fl = d.flops();
            let pool = pool(t);
            print!("{:<18} {:>3}", c.name, t);
            std::io::stdout().flush().ok();
            let stats = pool.install(|| {
                let d = std::sync::Mutex::new(&mut d);
                let mut fs: Vec<Box<dyn FnMut() + Send>> = isas
                    .iter()
                    .map(|&isa| {
                        let d = &d;
                        Box::new(move || d.lock().unwrap().ours(isa, t)) as Box<dyn FnMut() + Send>
                    })
                    .collect();
                if t == 1 {
                    let d = &d;
                    fs.push(Box::new(move || d.lock().unwrap().matrixmultiply()) as Box<dyn FnMut() + Send>);
                }
                let mut refs: Vec<&mut (dyn FnMut() + Send)> =
                    fs.iter_mut().map(|f| &mut **f as &mut (dyn FnMut() + Send)).collect();
                // As in an inference: the other threads spin between calls
                // instead of being woken for each one (par::with_team).
                resnet50_kernels::par::with_team(t, || measure(fl, reps, t == 1, best, t, &mut refs))
            });
            for st in stats {
                print!(" {:>9.1} {:>5.1}%", st.gflops, 100.0 * st.of_peak);
            }
            println!();
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
        let g = fma_peak_gflops(isa, 50_000_000);
        println!("FMA peak {isa}: {g:.1} GFLOP/s per core");
    }
    let pool1 = pool(1);
    for case in cases() {
        let mut d = Data::new(case.shape, 1);
        let mut group = c.benchmark_group(format!("gemm/{}", case.name));
        group.throughput(Throughput::Elements(d.flops()));
        group.sample_size(20);
        for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
            group.bench_function(BenchmarkId::new("ours", isa.name()), |b| {
                pool1.install(|| b.iter(|| d.ours(isa, 1)));
            });
        }
        group.bench_function(BenchmarkId::new("matrixmultiply", "sgemm"), |b| b.iter(|| d.matrixmultiply()));
        group.finish();
    }
}

fn main() {
    if std::env::var_os("GEMM_TABLE").is_some() {
        table();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}

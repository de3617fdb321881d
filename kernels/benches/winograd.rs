//! Winograd 3×3 convolution on ResNet50's four stride-1 shapes and v1.5's
//! two stride-2 ones that it runs (56×56×128 and 28×28×256 inputs), against
//! the scalar reference and an im2col + `matrixmultiply::sgemm` baseline;
//! at stride 2 also against our implicit GEMM (`implicit-gemm-*`, what
//! those layers ran before F(2×2) at stride 2).
//!
//! Throughput is reported in *effective* GFLOP/s: the direct convolution's
//! `2·9·H·W·cin·cout` flops per image divided by the time (criterion's
//! `elem/s` column, with one element per flop).
//!
//! `WINOGRAD_BENCH_BATCH=1,8` (default) picks the batches,
//! `WINOGRAD_BENCH_THREADS=1,2` (default) the pool sizes,
//! `WINOGRAD_BENCH_REFERENCE=0` skips the (slow) scalar reference,
//! `WINOGRAD_BENCH_F2=0` the runs of the tiles that the network does not pick
//! for the layer (`ConvParams::best_algo_for`; every tile of the stride is
//! measured by default, `winograd-f4x4-*`, `winograd-f3x3-*`, … : at batch 1
//! F(4×4) for 56×56×64 and 28×28×128, F(3×3) for 14×14×256, F(2×2) for
//! 7×7×512).
//! im2col + sgemm is single-threaded (matrixmultiply without its threading
//! feature), so it runs at 1 thread only.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::ThreadPoolBuilder;
use resnet50_kernels::conv::{ConvAlgo, ConvParams};
use resnet50_kernels::shape::{ConvShape, Epilogue};
use resnet50_kernels::winograd::WinogradTile;
use resnet50_kernels::{gemm, reference, winograd, Isa};

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

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

/// im2col (pad 1) into `cols` (`[pixels × 9·cin]`, column order ky, kx, ci —
/// the HWIO weights' row order), then `sgemm` with the `[9·cin × cout]` weights.
fn im2col_sgemm(s: &ConvShape, x: &[f32], w: &[f32], cols: &mut [f32], y: &mut [f32]) {
    let (oh, ow, ci, co) = (s.out_h(), s.out_w(), s.in_c, s.out_c);
    let kdim = 9 * ci;
    for n in 0..s.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut cols[((n * oh + oy) * ow + ox) * kdim..][..kdim];
                for ky in 0..3 {
                    let iy = (s.stride_h * oy + ky) as isize - 1;
                    for kx in 0..3 {
                        let ix = (s.stride_w * ox + kx) as isize - 1;
                        let dst = &mut row[(ky * 3 + kx) * ci..][..ci];
                        if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                            dst.fill(0.0);
                        } else {
                            let p = ((n * s.in_h + iy as usize) * s.in_w + ix as usize) * ci;
                            dst.copy_from_slice(&x[p..p + ci]);
                        }
                    }
                }
            }
        }
    }
    let m = s.batch * oh * ow;
    // SAFETY: cols is m × kdim, w is kdim × co, y is m × co, all row-major
    // with the strides given.
    unsafe {
        matrixmultiply::sgemm(
            m,
            kdim,
            co,
            1.0,
            cols.as_ptr(),
            kdim as isize,
            1,
            w.as_ptr(),
            co as isize,
            1,
            0.0,
            y.as_mut_ptr(),
            co as isize,
            1,
        )
    };
}

fn bench(c: &mut Criterion) {
    let batches = env_list("WINOGRAD_BENCH_BATCH", &[1, 8]);
    let threads_list = env_list("WINOGRAD_BENCH_THREADS", &[1, 2]);
    let with_ref = std::env::var("WINOGRAD_BENCH_REFERENCE").map_or(true, |v| v != "0");
    let with_f2 = std::env::var("WINOGRAD_BENCH_F2").map_or(true, |v| v != "0");
    for &batch in &batches {
        for (hw, ch, stride) in
            [(56usize, 64usize, 1usize), (28, 128, 1), (14, 256, 1), (7, 512, 1), (56, 128, 2), (28, 256, 2)]
        {
            let s = ConvShape::square(batch, hw, hw, ch, ch, 3, stride, 1);
            let flops = 2 * s.macs();
            let lim = (6.0 / (9.0 * ch as f32)).sqrt();
            let x: Vec<f32> = rand_vec(s.input_len(), 1, -1.0, 1.5).into_iter().map(|v| v.max(0.0)).collect();
            let w = rand_vec(s.weights_len(), 2, -lim, lim);
            let bias = rand_vec(ch, 3, -0.1, 0.1);
            let ep = Epilogue::bias_relu(&bias, true);
            // The network's tile for the layer, and every tile of its stride.
            let params = ConvParams { kh: 3, kw: 3, cin: ch, cout: ch, stride, pad: [1; 4] };
            let default_tile = match params.best_algo_for(batch, hw, hw) {
                ConvAlgo::Winograd(t) => Some(t),
                _ => None,
            };
            let tiles: Vec<(WinogradTile, Vec<f32>)> = WinogradTile::ALL
                .into_iter()
                .filter(|t| t.stride() == stride)
                .map(|t| {
                    let mut packed = vec![0.0; winograd::packed_len_for(t, ch, ch)];
                    winograd::pack_for(t, ch, ch, &w, &mut packed);
                    (t, packed)
                })
                .collect();
            let mut packed_gemm = vec![0.0; gemm::packed_b_len(9 * ch, ch)];
            gemm::pack_b(9 * ch, ch, &w, &mut packed_gemm);
            let mut y = vec![0.0; s.output_len()];

            let name = if stride == 1 { format!("{hw}x{hw}x{ch}->{ch}") } else { format!("{hw}x{hw}x{ch}->{ch}/s2") };
            let mut g = c.benchmark_group(format!("winograd/{name}/b{batch}"));
            g.throughput(Throughput::Elements(flops));
            g.sample_size(10);
            g.warm_up_time(Duration::from_millis(500));
            g.measurement_time(Duration::from_secs(2));
            for &threads in &threads_list {
                let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                for isa in Isa::supported() {
                    for (tile, pk) in &tiles {
                        let tile = *tile;
                        // Scalar: the default tile only; the others only if asked.
                        if Some(tile) != default_tile && (isa == Isa::Scalar || !with_f2) {
                            continue;
                        }
                        let mut scratch = vec![0.0; winograd::scratch_len_for(tile, &s, threads)];
                        let name = format!("{}-{isa}", ConvAlgo::Winograd(tile).name().replace('_', "-"));
                        g.bench_function(BenchmarkId::new(name, threads), |b| {
                            // As in an inference: helpers spin between calls (par::with_team).
                            pool.install(|| {
                                resnet50_kernels::par::with_team(threads, || {
                                    b.iter(|| {
                                        winograd::conv3x3(
                                            isa,
                                            &s,
                                            black_box(&x),
                                            pk,
                                            &ep,
                                            &mut y,
                                            &mut scratch,
                                            threads,
                                        )
                                    })
                                })
                            })
                        });
                    }
                }
            }
            if stride == 2 {
                for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
                    for &threads in &threads_list {
                        let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                        let mut scratch = vec![0.0; gemm::implicit_scratch_len(&s, threads)];
                        g.bench_function(BenchmarkId::new(format!("implicit-gemm-{isa}"), threads), |b| {
                            pool.install(|| {
                                resnet50_kernels::par::with_team(threads, || {
                                    b.iter(|| {
                                        gemm::conv_implicit(
                                            isa,
                                            &s,
                                            black_box(&x),
                                            &packed_gemm,
                                            &ep,
                                            &mut y,
                                            &mut scratch,
                                            threads,
                                        )
                                    })
                                })
                            })
                        });
                    }
                }
            }
            let mut cols = vec![0.0; s.batch * s.out_h() * s.out_w() * 9 * ch];
            g.bench_function(BenchmarkId::new("im2col-sgemm", 1), |b| {
                b.iter(|| im2col_sgemm(&s, black_box(&x), &w, &mut cols, &mut y))
            });
            if with_ref && batch == 1 {
                g.bench_function(BenchmarkId::new("reference", 1), |b| {
                    b.iter(|| reference::conv2d(&s, black_box(&x), &w, &ep, &mut y))
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

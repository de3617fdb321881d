//! Runs one convolution `REPS` times on one thread (for cachegrind / perf) and
//! prints the mean time per call and its GFLOP/s:
//! `cargo run --release -p resnet50-kernels --example one_conv -- HW CIN COUT K STRIDE PAD REPS`
//! (`BATCH=n` for n images per call).
use resnet50_kernels::{gemm, AlignedBuf, ConvShape, Epilogue, Isa};

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("number")).collect();
    let [hw, cin, cout, k, stride, pad, reps] = a[..] else { panic!("HW CIN COUT K STRIDE PAD REPS") };
    let batch: usize = std::env::var("BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let s = ConvShape::square(batch, hw, hw, cin, cout, k, stride, pad);
    let m = batch * s.out_h() * s.out_w();
    let kk = k * k * cin;
    let input = AlignedBuf::from_slice(&vec![0.5; s.input_len()]).unwrap();
    let w = vec![0.25; kk * cout];
    let mut packed = AlignedBuf::zeroed(gemm::packed_b_len(kk, cout)).unwrap();
    gemm::pack_b(kk, cout, &w, packed.as_mut_slice());
    let bias = vec![0.0; cout];
    let ep = Epilogue::bias_relu(&bias, true);
    let mut out = AlignedBuf::zeroed(m * cout).unwrap();
    let isa = Isa::best();
    let one = k == 1;
    let len = if one { gemm::conv1x1_scratch_len(&s, 1) } else { gemm::implicit_scratch_len(&s, 1) };
    let mut scratch = AlignedBuf::zeroed(len).unwrap();
    let conv = if one { gemm::conv1x1 } else { gemm::conv_implicit };
    let t0 = std::time::Instant::now();
    for _ in 0..reps {
        conv(isa, &s, input.as_slice(), packed.as_slice(), &ep, out.as_mut_slice(), scratch.as_mut_slice(), 1);
    }
    let dt = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{:.3} ms  {:.1} GFLOP/s  (out[0] = {})",
        dt * 1e3,
        2.0 * (m * kk * cout) as f64 / dt / 1e9,
        out.as_slice()[0]
    );
}

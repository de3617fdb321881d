//! The GEMM convolutions allocate nothing: checked with a counting global
//! allocator, single-threaded and on a 2-thread rayon pool, on every ISA.
//! (`CountingAllocator` counts every thread, hence the warm-up and the least
//! of three calls.)

use resnet50_kernels::alloc_count::CountingAllocator;
use resnet50_kernels::gemm;
use resnet50_kernels::{ConvShape, Epilogue, Isa};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[test]
fn conv1x1_and_implicit_allocate_nothing() {
    let shapes = [
        ConvShape::square(1, 14, 14, 64, 48, 1, 2, 0),
        ConvShape::square(2, 9, 9, 40, 33, 1, 1, 0),
        ConvShape::square(1, 21, 21, 3, 64, 7, 2, 3),
        ConvShape::square(1, 9, 9, 64, 32, 3, 2, 1),
    ];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    // Start every worker now: the counter is global, and a worker's start-up
    // allocations must not land inside a measured call.
    pool.broadcast(|_| ());
    for s in shapes {
        let k = s.kh * s.kw * s.in_c;
        let input = vec![0.5f32; s.input_len()];
        let w = vec![0.25f32; k * s.out_c];
        let mut packed = vec![0.0; gemm::packed_b_len(k, s.out_c)];
        gemm::pack_b(k, s.out_c, &w, &mut packed);
        let bias = vec![0.1f32; s.out_c];
        let res = vec![1.0f32; s.output_len()];
        let ep = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true, ..Default::default() };
        let mut out = vec![0.0f32; s.output_len()];
        let one = s.kh == 1 && s.pad_top == 0;
        for isa in Isa::under_test() {
            for threads in [1usize, 2] {
                let len =
                    if one { gemm::conv1x1_scratch_len(&s, threads) } else { gemm::implicit_scratch_len(&s, threads) };
                let mut scratch = vec![0.0f32; len];
                let mut run = || {
                    if one {
                        gemm::conv1x1(isa, &s, &input, &packed, &ep, &mut out, &mut scratch, threads)
                    } else {
                        gemm::conv_implicit(isa, &s, &input, &packed, &ep, &mut out, &mut scratch, threads)
                    }
                };
                pool.install(|| {
                    run(); // warm-up: rayon's lazily created per-thread state
                           // An allocation in the kernel shows up in every call; take
                           // the least of three so a stray one elsewhere (the test
                           // harness, a waking worker) cannot fail the test.
                    let n = (0..3).map(|_| ALLOC.during(&mut run)).min().unwrap();
                    assert_eq!(n, 0, "{isa} threads {threads} {s:?}: {n} allocations per call");
                });
            }
        }
    }
}

//! Tuning aid (the criterion benches are the measurement of record): on-CPU
//! time per call of the Winograd convolution on ResNet50's shapes,
//! single-threaded, measured from `/proc/thread-self/schedstat` so that other
//! processes on a shared machine perturb it less than wall time; then the
//! scratch size and plan per shape.
//!
//! `cargo run --release -p resnet50-kernels --example winograd_timing`
//! `WINOGRAD_TUNE=tb,cbp;tb,cbp` overrides the blocking of the plan;
//! `WINOGRAD_TILES=4|3|2`, `WINOGRAD_HW=56,28`, `WINOGRAD_BATCH=1,8` narrow the set;
//! `WINOGRAD_COLD=1` cycles through copies of the packed weights (≥ 96 MiB in
//! all), so that they come from memory as in a whole inference;
//! `WINOGRAD_REPS_SCALE=4` times 4× as many calls per sample (where the
//! on-CPU clock advances in scheduler ticks, one sample's ~50 ms moves in
//! steps of ~8 %).

use resnet50_kernels::shape::{ConvShape, Epilogue};
use resnet50_kernels::winograd::{self, Plan, WinogradTile};
use resnet50_kernels::Isa;

fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    winograd_on_cpu_gflops();
    winograd_scratch_sizes();
}

fn winograd_on_cpu_gflops() {
    // "tb,cbp;tb,cbp;…" (0 keeps the plan's value).
    let tunes: Vec<Option<Vec<usize>>> = std::env::var("WINOGRAD_TUNE").map_or(vec![None], |v| {
        v.split(';').map(|t| Some(t.split(',').filter_map(|s| s.trim().parse().ok()).collect())).collect()
    });
    let tiles: Vec<WinogradTile> = match std::env::var("WINOGRAD_TILES").as_deref() {
        Ok("4") => vec![WinogradTile::F4x4],
        Ok("2") => vec![WinogradTile::F2x2],
        Ok("3") => vec![WinogradTile::F3x3],
        _ => vec![WinogradTile::F4x4, WinogradTile::F2x2],
    };
    let shapes: Vec<usize> = std::env::var("WINOGRAD_HW")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or(vec![56, 28, 14, 7]);
    let batches: Vec<usize> = std::env::var("WINOGRAD_BATCH")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or(vec![1, 8]);
    let cold = std::env::var_os("WINOGRAD_COLD").is_some();
    let reps_scale: f64 = std::env::var("WINOGRAD_REPS_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for &batch in &batches {
        for (hw, c) in [(56usize, 64usize), (28, 128), (14, 256), (7, 512)] {
            if !shapes.contains(&hw) {
                continue;
            }
            let s = ConvShape::square(batch, hw, hw, c, c, 3, 1, 1);
            let x = vec![0.5f32; s.input_len()];
            let w = vec![0.01f32; s.weights_len()];
            let bias = vec![0.1f32; c];
            let ep = Epilogue::bias_relu(&bias, true);
            let mut y = vec![0.0; s.output_len()];
            for (tile, tune) in tiles.iter().flat_map(|&t| tunes.iter().map(move |u| (t, u))) {
                let mut packed = vec![0.0; winograd::packed_len_for(tile, c, c)];
                winograd::pack_for(tile, c, c, &w, &mut packed);
                let copies = if cold { (96usize << 20).div_ceil(packed.len() * 4).max(2) } else { 1 };
                let packed: Vec<Vec<f32>> = vec![packed; copies];
                let mut plan = Plan::with_tile(tile, &s, 1);
                if let Some(t) = tune {
                    plan = plan
                        .with_blocking(if t[0] > 0 { t[0] } else { plan.tb }, if t[1] > 0 { t[1] } else { plan.cbp });
                }
                let mut scratch = vec![0.0; plan.workers() * plan.worker_scratch()];
                for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
                    let mut best = u64::MAX;
                    let mut samples = Vec::new();
                    let f = 2.0 * s.macs() as f64;
                    // ≥ ~50 ms per sample (× WINOGRAD_REPS_SCALE): schedstat may
                    // advance by scheduler ticks (~4 ms on some hosts).
                    let reps = (reps_scale * 2e10 / f).ceil() as u64;
                    pool.install(|| {
                        for _ in 0..7 {
                            let t0 = on_cpu_ns();
                            for r in 0..reps as usize {
                                let packed = &packed[r % copies];
                                winograd::conv3x3_planned(isa, &plan, &s, &x, packed, &ep, &mut y, &mut scratch);
                            }
                            let dt = (on_cpu_ns() - t0) / reps;
                            best = best.min(dt);
                            samples.push(dt);
                        }
                    });
                    samples.sort();
                    let med = samples[samples.len() / 2];
                    println!(
                        "b{batch} {hw}x{hw} {c} {tile:?} {isa}: tb {} cbp {}: median {:.1} GFLOP/s eff (best {:.1}), {:.2} ms",
                        plan.tb,
                        plan.cbp,
                        f / med as f64,
                        f / best as f64,
                        med as f64 / 1e6
                    );
                }
            }
        }
    }
}

/// Prints `scratch_len` (floats and MiB) and the plan for ResNet50's shapes.
fn winograd_scratch_sizes() {
    for batch in [1usize, 8] {
        for (hw, c) in [(56usize, 64usize), (28, 128), (14, 256), (7, 512)] {
            for threads in [1usize, 2, 16] {
                let s = ConvShape::square(batch, hw, hw, c, c, 3, 1, 1);
                let n = winograd::scratch_len(&s, threads);
                let p = Plan::new(&s, threads);
                println!(
                    "b{batch} {hw}x{hw} {c}->{c} threads {threads}: {n} floats ({:.2} MiB), {:?} blocks {} x tb {} x cs {} cbp {} slots {}",
                    n as f64 * 4.0 / 1048576.0,
                    p.tile,
                    p.blocks,
                    p.tb,
                    p.cs,
                    p.cbp,
                    p.slots
                );
            }
        }
    }
}

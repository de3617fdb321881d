//! Tuning aid: interleaved A/B timing of Winograd tiles and blockings against
//! implicit GEMM on one 3×3 layer, with the weights cold (each call uses the
//! next of enough copies to overflow the last-level cache, as in a whole
//! inference). Rounds run every variant back to back, so a noisy host slows
//! them alike; the medians over 40 rounds are compared. Every call runs in
//! one thread team (`par::with_team`), started before the first round, as a
//! whole inference's calls do (with plain rayon jobs every call woke its
//! second worker). Standalone numbers
//! still need the network's word: 56×56×64 F(4×4) at 2 threads on a Zen 3,
//! tb 18 instead of the plan's 33 ran 0.895–1.057× here (medians of six runs;
//! minima 0.92–1.06×), and in the network (same process, alternated, 80
//! pairs, v1 and v1.5) those layers took 0.99–1.07× — the plan stays.
//!
//! `cargo run --release -p resnet50-kernels --example winograd_ab -- HW C TILES [THREADS] [BATCH]`
//! TILES: comma-separated `2`, `3`, `4` (stride 1), `2s2`, `4s2` (stride 2;
//! all of one stride). `TBS=12,25` also runs these tile-block sizes (0 = the plan's),
//! `CS=1,2,4` these output-channel group counts (0 = the plan's).
//! E.g. v1.5's 56×56×128 3×3/2: `... -- 56 128 2s2,4s2 1`.

use std::time::Instant;

use resnet50_kernels::shape::{ConvShape, Epilogue};
use resnet50_kernels::winograd::{self, Plan, WinogradTile};
use resnet50_kernels::{gemm, AlignedBuf, Isa};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        eprintln!("usage: winograd_ab HW C TILES [THREADS] [BATCH]   (TILES: 2,3,4 or 2s2,4s2)");
        std::process::exit(2);
    }
    let hw: usize = a[0].parse().expect("HW");
    let c: usize = a[1].parse().expect("C");
    let tiles: Vec<WinogradTile> = a[2]
        .split(',')
        .map(|t| match t {
            "2" => WinogradTile::F2x2,
            "4" => WinogradTile::F4x4,
            "3" => WinogradTile::F3x3,
            "2s2" => WinogradTile::F2x2S2,
            "4s2" => WinogradTile::F4x4S2,
            _ => panic!("tile {t}: 2, 3, 4, 2s2 or 4s2"),
        })
        .collect();
    let stride = tiles[0].stride();
    assert!(tiles.iter().all(|t| t.stride() == stride), "tiles of one stride");
    let threads: usize = a.get(3).map_or(1, |v| v.parse().expect("THREADS"));
    let batch: usize = a.get(4).map_or(1, |v| v.parse().expect("BATCH"));
    let tbs: Vec<usize> =
        std::env::var("TBS").map_or(vec![0], |v| v.split(',').map(|x| x.parse().expect("TBS")).collect());
    let css: Vec<usize> =
        std::env::var("CS").map_or(vec![0], |v| v.split(',').map(|x| x.parse().expect("CS")).collect());

    let s = ConvShape::square(batch, hw, hw, c, c, 3, stride, 1);
    let isa = Isa::best();
    let x = AlignedBuf::from_slice(&vec![0.5f32; s.input_len()]).unwrap();
    let w: Vec<f32> = (0..s.weights_len()).map(|i| ((i % 17) as f32 - 8.0) * 0.001).collect();
    let bias = vec![0.1f32; c];
    let ep = Epilogue::bias_relu(&bias, true);
    let mut y = AlignedBuf::zeroed(s.output_len()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let cold_copies = |floats: usize| (128usize << 20).div_ceil(floats * 4).max(2);

    // Variants: a Winograd plan with its cold copies of the packed weights,
    // or implicit GEMM (None).
    type Winograd = Option<(Plan, Vec<AlignedBuf>)>;
    let mut variants: Vec<(String, Winograd)> = Vec::new();
    for &tile in &tiles {
        let len = winograd::packed_len_for(tile, c, c);
        let mut one = AlignedBuf::zeroed(len).unwrap();
        winograd::pack_for(tile, c, c, &w, one.as_mut_slice());
        let base = Plan::with_tile(tile, &s, threads);
        for &tb in &tbs {
            for &cs in &css {
                let plan = if tb == 0 { base } else { base.with_blocking(tb, base.cbp) };
                let plan = if cs == 0 { plan } else { plan.with_channel_groups(cs) };
                let copies = (0..cold_copies(len)).map(|_| AlignedBuf::from_slice(one.as_slice()).unwrap()).collect();
                let name = format!("{tile:?} tb {} ({} blocks) cs {}", plan.tb, plan.blocks, plan.cs);
                variants.push((name, Some((plan, copies))));
            }
        }
    }
    variants.push(("implicit GEMM".into(), None));
    let kk = 9 * c;
    let mut packed_gemm = AlignedBuf::zeroed(gemm::packed_b_len(kk, c)).unwrap();
    gemm::pack_b(kk, c, &w, packed_gemm.as_mut_slice());
    let gemm_copies: Vec<AlignedBuf> = (0..cold_copies(packed_gemm.as_slice().len()))
        .map(|_| AlignedBuf::from_slice(packed_gemm.as_slice()).unwrap())
        .collect();
    let scratch_len = variants
        .iter()
        .filter_map(|(_, v)| v.as_ref().map(|(p, _)| p.workers() * p.worker_scratch()))
        .chain([gemm::implicit_scratch_len(&s, threads)])
        .max()
        .unwrap();
    let mut scratch = AlignedBuf::zeroed(scratch_len).unwrap();

    let reps = 10;
    let mut times = vec![Vec::new(); variants.len()];
    let mut call = 0usize;
    // One thread team for every round, started before the clock, as in a
    // whole inference: its helpers spin between calls (no wake-up per call).
    pool.install(|| {
        resnet50_kernels::par::with_team(threads, || {
            for round in 0..41 {
                for (i, (_, v)) in variants.iter().enumerate() {
                    let t0 = Instant::now();
                    for _ in 0..reps {
                        match v {
                            Some((plan, copies)) => winograd::conv3x3_planned(
                                isa,
                                plan,
                                &s,
                                x.as_slice(),
                                copies[call % copies.len()].as_slice(),
                                &ep,
                                y.as_mut_slice(),
                                scratch.as_mut_slice(),
                            ),
                            None => gemm::conv_implicit(
                                isa,
                                &s,
                                x.as_slice(),
                                gemm_copies[call % gemm_copies.len()].as_slice(),
                                &ep,
                                y.as_mut_slice(),
                                scratch.as_mut_slice(),
                                threads,
                            ),
                        }
                        call += 1;
                    }
                    if round > 0 {
                        times[i].push(t0.elapsed().as_secs_f64() * 1e3 / reps as f64);
                    }
                }
            }
        })
    });
    println!("{hw}x{hw}x{c} stride {stride}, batch {batch}, {threads} thread(s), {isa}, cold weights, 40 rounds:");
    let mut first = None;
    for ((name, _), t) in variants.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let med = t[t.len() / 2];
        let base = *first.get_or_insert(med);
        println!("  {name:32} median {med:.3} ms (x{:.3})  min {:.3}", med / base, t[0]);
    }
}

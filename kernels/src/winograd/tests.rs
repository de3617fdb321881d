//! Unit tests of the transforms and the blocking (the end-to-end property
//! tests live in `kernels/tests/winograd_props.rs`).

use super::transforms::*;
use super::*;

/// Rows of a transform matrix as slices.
type Rows<'a> = Vec<&'a [f64]>;

fn isas() -> Vec<Isa> {
    Isa::under_test()
}

const TILES: [WinogradTile; 5] = WinogradTile::ALL;

/// Bᵀ, G (one row per transform position: at stride 2 the shared rows
/// repeated) and Aᵀ of `tile`.
fn matrices(tile: WinogradTile) -> (Rows<'static>, Rows<'static>, Rows<'static>) {
    fn rows<const N: usize>(m: &'static [[f64; N]]) -> Rows<'static> {
        m.iter().map(|r| &r[..]).collect()
    }
    let (bt, g, at) = match tile {
        WinogradTile::F4x4 => (rows(&F4_BT), rows(&F4_G), rows(&F4_AT)),
        WinogradTile::F2x2 => (rows(&F2_BT), rows(&F2_G), rows(&F2_AT)),
        WinogradTile::F3x3 => (rows(&F3_BT), rows(&F3_G), rows(&F3_AT)),
        WinogradTile::F2x2S2 => (rows(&F2S2_BT), rows(&F2S2_G), rows(&F2S2_AT)),
        WinogradTile::F4x4S2 => (rows(&F4S2_BT), rows(&F4S2_G), rows(&F4S2_AT)),
    };
    let g = (0..tile.alpha()).map(|i| g[tile.weight_of_1d(i)]).collect();
    (bt, g, at)
}

/// `d` (α×α) → Bᵀ d B in f64 from the matrices.
fn bt_d_b(bt: &[&[f64]], d: &[f64], alpha: usize) -> Vec<f64> {
    let mut out = vec![0.0; alpha * alpha];
    for r in 0..alpha {
        for q in 0..alpha {
            let mut s = 0.0;
            for i in 0..alpha {
                for j in 0..alpha {
                    s += bt[r][i] * d[i * alpha + j] * bt[q][j];
                }
            }
            out[r * alpha + q] = s;
        }
    }
    out
}

#[test]
fn matrices_compute_exact_correlation_on_small_integers() {
    // Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A equals the 3×3 correlation of d (at the
    // tile's stride), in f64.
    for tile in TILES {
        let (m, a, st) = (tile.m(), tile.alpha(), tile.stride());
        let (bt, g, at) = matrices(tile);
        let d: Vec<f64> = (0..a * a).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let w: Vec<f64> = (0..9).map(|i| ((i * 5 + 1) % 7) as f64 - 3.0).collect();
        let v = bt_d_b(&bt, &d, a);
        let mut u = vec![0.0; a * a];
        for r in 0..a {
            for q in 0..a {
                let mut s = 0.0;
                for ky in 0..3 {
                    for kx in 0..3 {
                        s += g[r][ky] * w[ky * 3 + kx] * g[q][kx];
                    }
                }
                u[r * a + q] = s;
            }
        }
        for oy in 0..m {
            for ox in 0..m {
                let mut y = 0.0;
                for i in 0..a {
                    for j in 0..a {
                        y += at[oy][i] * u[i * a + j] * v[i * a + j] * at[ox][j];
                    }
                }
                let mut direct = 0.0;
                for ky in 0..3 {
                    for kx in 0..3 {
                        direct += d[(st * oy + ky) * a + st * ox + kx] * w[ky * 3 + kx];
                    }
                }
                assert!((y - direct).abs() < 1e-9, "{tile:?} ({oy},{ox}): {y} vs {direct}");
            }
        }
    }
}

#[test]
fn simd_input_transform_matches_matrix_exactly() {
    // Small integers and dyadic Bᵀ entries: every ISA's factored transform is
    // exact, so it must equal Bᵀ d B bit for bit. 19 channels exercise the
    // partial vectors; the tile hangs over the top-left padding.
    let c = 19;
    let (h, w) = (5, 4);
    let img: Vec<f32> = (0..h * w * c).map(|i| ((i * 13 + 5) % 17) as f32 - 8.0).collect();
    for isa in isas() {
        for tile in TILES {
            let a = tile.alpha();
            let (bt, _, _) = matrices(tile);
            for (y0, x0) in [(-1isize, -1isize), (0, 0), (1, -1), (-2, 1)] {
                let ldv = 32;
                let mut dst = vec![f32::NAN; a * a * ldv];
                let t = InTile { img: img.as_ptr(), h, w, c, y0, x0 };
                let k = kernels(isa, tile);
                // SAFETY: dst has α² rows of 32 ≥ round_up(19, 16) floats.
                unsafe { (k.input)(&t, dst.as_mut_ptr(), ldv) };
                for ch in 0..c {
                    let d: Vec<f64> = (0..a * a)
                        .map(|p| {
                            let (y, x) = (y0 + (p / a) as isize, x0 + (p % a) as isize);
                            if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                                0.0
                            } else {
                                img[(y as usize * w + x as usize) * c + ch] as f64
                            }
                        })
                        .collect();
                    let v = bt_d_b(&bt, &d, a);
                    for p in 0..a * a {
                        assert_eq!(dst[p * ldv + ch] as f64, v[p], "{isa} {tile:?} tile ({y0},{x0}) ch {ch} pos {p}");
                    }
                }
            }
        }
    }
}

#[test]
fn simd_output_transform_and_epilogue_match_matrix_exactly() {
    // Small integers, dyadic Aᵀ: exact. Partial tile (3 rows × 2 columns),
    // 21 channels, bias + residual + ReLU.
    let nch = 21;
    let ld = 32;
    for isa in isas() {
        for tile in TILES {
            let (a, m) = (tile.alpha(), tile.m());
            let (_, _, at) = matrices(tile);
            let src: Vec<f32> = (0..a * a * ld).map(|i| ((i * 11 + 2) % 9) as f32 - 4.0).collect();
            let bias: Vec<f32> = (0..nch).map(|i| i as f32 - 10.0).collect();
            let (rows, cols) = (m.min(3), m.min(2));
            let (ow, cout) = (5, nch);
            let res: Vec<f32> = (0..m * ow * cout).map(|i| (i % 5) as f32).collect();
            let mut out = vec![f32::NAN; m * ow * cout];
            let o = OutTile {
                out: out.as_mut_ptr(),
                res: res.as_ptr(),
                bias: bias.as_ptr(),
                row_stride: ow * cout,
                px_stride: cout,
                rows,
                cols,
                nch,
                relu: true,
            };
            let k = kernels(isa, tile);
            // SAFETY: src has α² rows of 32 floats; the tile's rows × cols
            // pixels × nch channels are inside out/res.
            unsafe { (k.output)(src.as_ptr(), ld, &o) };
            for oy in 0..m {
                for ox in 0..ow {
                    for ch in 0..cout {
                        let i = (oy * ow + ox) * cout + ch;
                        if oy >= rows || ox >= cols {
                            assert!(out[i].is_nan(), "{isa} wrote outside the tile");
                            continue;
                        }
                        let mut y = 0.0;
                        for p in 0..a {
                            for q in 0..a {
                                y += at[oy][p] * src[(p * a + q) * ld + ch] as f64 * at[ox][q];
                            }
                        }
                        let want = (y + bias[ch] as f64 + res[i] as f64).max(0.0);
                        assert_eq!(out[i] as f64, want, "{isa} {tile:?} ({oy},{ox}) ch {ch}");
                    }
                }
            }
        }
    }
}

/// The per-position products (the GEMM microkernels via `gemm_rows`; on
/// AVX-512 more than 8 rows take the tall 16×16 kernel): row counts that are
/// not multiples of MR, K blocking, odd panel counts.
#[test]
fn gemm_kernels_match_scalar_sums() {
    // Integers: exact in every summation order.
    for isa in isas() {
        for (rows, kk) in (1usize..=17).map(|r| (r, 37)).chain([
            (25, 37),
            (9, 600),
            (16, 512),
            (33, 64),
            (49, 300),
            (7, 385),
            (17, 385),
            (12, 777),
        ]) {
            for npanels in [1usize, 2, 3] {
                let lda = kk + 11;
                let ldc = npanels * PANEL + 16;
                let a: Vec<f32> = (0..rows * lda).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
                let b: Vec<f32> = (0..npanels * kk * PANEL).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
                let mut c = vec![f32::NAN; rows * ldc];
                // SAFETY: buffers sized for rows × k (lda), npanels × k × 16, rows × ldc.
                unsafe {
                    crate::gemm::gemm_rows(
                        isa,
                        &crate::gemm::RowsProduct {
                            m: rows,
                            k: kk,
                            a: a.as_ptr(),
                            lda,
                            b: b.as_ptr(),
                            n: npanels * PANEL,
                            c: c.as_mut_ptr(),
                            ldc,
                            b_after: std::ptr::null(),
                        },
                    )
                };
                for r in 0..rows {
                    for j in 0..npanels * PANEL {
                        let (p, l) = (j / PANEL, j % PANEL);
                        let want: f32 = (0..kk).map(|x| a[r * lda + x] * b[(p * kk + x) * PANEL + l]).sum();
                        assert_eq!(c[r * ldc + j], want, "{isa} rows {rows} panels {npanels} ({r},{j})");
                    }
                    assert!(c[r * ldc + npanels * PANEL].is_nan(), "{isa} wrote past the panels");
                }
            }
        }
    }
}

/// `pack_for` (a panel of 16 output channels at a time) against `U = G g Gᵀ`
/// written out one (input, output) channel pair at a time, with the sums as
/// iterator sums: equal values for every tile, odd channel counts, partial
/// last panels (zero padded), and zero weights.
#[test]
fn pack_for_matches_the_transform_pair_by_pair() {
    fn by_pairs(tile: WinogradTile, cin: usize, cout: usize, w: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; packed_len_for(tile, cin, cout)];
        let u = &mut out[HEADER_LEN..];
        let (g, side, np) = (g_rows(tile), tile.weight_side(), cout.div_ceil(PANEL));
        for ci in 0..cin {
            for co in 0..cout {
                let wv = |ky: usize, kx: usize| w[((ky * 3 + kx) * cin + ci) * cout + co] as f64;
                for (a, ga) in g.iter().enumerate() {
                    let t: [f64; 3] = std::array::from_fn(|kx| (0..3).map(|ky| ga[ky] * wv(ky, kx)).sum());
                    for (b, gb) in g.iter().enumerate() {
                        let v: f64 = (0..3).map(|kx| t[kx] * gb[kx]).sum();
                        u[(((a * side + b) * np + co / PANEL) * cin + ci) * PANEL + co % PANEL] = v as f32;
                    }
                }
            }
        }
        out
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for tile in WinogradTile::ALL {
        for (cin, cout) in [(1, 1), (3, 37), (17, 16), (5, 33)] {
            let w: Vec<f32> = (0..9 * cin * cout)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if i % 11 == 0 {
                        0.0
                    } else {
                        (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                    }
                })
                .collect();
            let mut got = vec![f32::NAN; packed_len_for(tile, cin, cout)];
            pack_for(tile, cin, cout, &w, &mut got);
            let want = by_pairs(tile, cin, cout, &w);
            assert_eq!(got[..4], [tile.m() as f32, cin as f32, cout as f32, tile.stride() as f32]);
            for (i, (x, y)) in got.iter().zip(&want).enumerate().skip(HEADER_LEN) {
                assert!(x == y, "{tile:?} {cin}→{cout}: float {i} is {x}, the transform gives {y}");
            }
        }
    }
}

#[test]
fn plans_for_resnet50_shapes() {
    for (hw, c) in [(56, 64), (28, 128), (14, 256), (7, 512)] {
        for batch in [1, 8] {
            for threads in [1, 2, 4, 16] {
                let s = ConvShape::square(batch, hw, hw, c, c, 3, 1, 1);
                let p = Plan::new(&s, threads);
                assert!(p.workers() <= threads && p.workers() >= 1, "{p:?}");
                assert!(p.tb * p.blocks >= p.tiles && p.cbp >= 1 && p.tasks() >= p.workers(), "{p:?}");
                assert_eq!(scratch_len(&s, threads), p.workers() * p.worker_scratch());
            }
        }
    }
}

#[test]
fn positions_are_an_odd_number_of_cache_lines_apart() {
    // Every tile at ResNet50's shapes and a few odd ones, batches 1 and 8:
    // V and M hold tb rows per position, and consecutive positions are an
    // odd number of 64-byte lines apart, so that the α² lines a transform
    // touches per channel vector spread over the L1's sets (stage 5 at
    // batch 1 had 32 KiB and 4 KiB before, one set for all 16 positions).
    let shapes = [(56, 64), (28, 128), (14, 256), (7, 512), (23, 37), (9, 300)];
    for tile in TILES {
        for (hw, c) in shapes {
            for batch in [1, 8] {
                for threads in [1, 2, 3, 16] {
                    let s = ConvShape::square(batch, hw, hw, c, c, 3, tile.stride(), 1);
                    let p = Plan::with_tile(tile, &s, threads);
                    let (vs, ms) = (p.v_stride(), p.m_stride());
                    assert!(vs >= p.tb * p.ldv && ms >= p.tb * p.cbp * PANEL, "{p:?}");
                    assert!(vs.is_multiple_of(16) && !(vs / 16).is_multiple_of(2), "{p:?}: V stride {vs}");
                    assert!(ms.is_multiple_of(16) && !(ms / 16).is_multiple_of(2), "{p:?}: M stride {ms}");
                    assert_eq!((p.v_len(), p.m_len()), (tile.positions() * vs, tile.positions() * ms));
                }
            }
        }
    }
    // The case that motivated it.
    let p = Plan::with_tile(WinogradTile::F2x2, &ConvShape::square(1, 7, 7, 512, 512, 3, 1, 1), 1);
    assert_eq!((p.tb, p.v_stride(), p.m_stride()), (16, 16 * 512 + 16, 16 * 64 + 16));
}

#[test]
fn channel_split_plans_keep_every_tile_in_one_block() {
    // With few tiles the tasks split the output channels; each streams its
    // share of U once per tile block, so the tiles are not cut further while
    // one block's V fits (14×14×256 F(3×3) at 2 threads: 2 blocks of 13
    // tiles took 0.73 ms, one of 25 0.48 ms).
    let s = ConvShape::square(1, 14, 14, 256, 256, 3, 1, 1);
    for threads in [2, 4] {
        let p = Plan::with_tile(WinogradTile::F3x3, &s, threads);
        assert_eq!((p.tiles, p.blocks, p.cs), (25, 1, 2 * threads), "{p:?}");
    }
    // Enough tiles for two blocks per thread: no channel split, blocks in a
    // multiple of the threads.
    let p = Plan::with_tile(WinogradTile::F2x2, &s, 2);
    assert_eq!((p.tiles, p.blocks, p.cs), (49, 2, 1), "{p:?}");
}

#[test]
fn workers_keep_their_v_only_within_one_call() {
    // A worker keeps its V from one task to the next of the same block; the
    // scratch also still holds the last call's V and the block it was of.
    // Two calls on one scratch with different inputs must give the second
    // call the one-thread plan's output (no channel split, a transform per
    // task), bit for bit: a V kept across calls, or kept when a worker's
    // tasks move on to another block, would not. Cases: 25 tiles in one
    // block, 3 channel groups, two threads; 60 F(4×4) tiles in two blocks,
    // 4 channel groups, three threads. Each plan runs on its thread team
    // and again on one rayon thread without a team, where the workers run
    // one after the other, the first taking its own range and then every
    // other task from the back (block 1's, then block 0's): a block change
    // inside one worker that does not depend on the scheduling. The
    // one-thread output is itself checked against `reference::conv2d`
    // (a V of the wrong block is off by O(1), not by rounding).
    let cases = [
        (WinogradTile::F3x3, ConvShape::square(1, 14, 14, 40, 40, 3, 1, 1), 2, 1),
        (WinogradTile::F4x4, ConvShape::square(2, 23, 17, 37, 53, 3, 1, 1), 3, 2),
    ];
    for (tile, s, threads, blocks) in cases {
        let plan = Plan::with_tile(tile, &s, threads);
        assert!(plan.cs > 1 && plan.blocks == blocks, "{plan:?}");
        let one = Plan::with_tile(tile, &s, 1);
        assert_eq!(one.cs, 1, "{one:?}");
        let w: Vec<f32> = (0..s.weights_len()).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
        let mut packed = vec![0.0; packed_len_for(tile, s.in_c, s.out_c)];
        pack_for(tile, s.in_c, s.out_c, &w, &mut packed);
        let input = |seed: usize| -> Vec<f32> {
            (0..s.input_len()).map(|i| ((i * 31 + seed) % 19) as f32 * 0.1 - 0.9).collect()
        };
        let (a, b) = (input(1), input(5));
        let bias: Vec<f32> = (0..s.out_c).map(|c| c as f32 * 0.01).collect();
        let ep = Epilogue::bias_relu(&bias, false);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let serial = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for isa in isas() {
            let mut reused = vec![0.0; plan.workers() * plan.worker_scratch()];
            let mut alone = vec![0.0; one.workers() * one.worker_scratch()];
            let (mut y, mut want) = (vec![0.0; s.output_len()], vec![0.0; s.output_len()]);
            conv3x3_planned(isa, &one, &s, &b, &packed, &ep, &mut want, &mut alone);
            let mut exact = vec![0.0; s.output_len()];
            crate::reference::conv2d(&s, &b, &w, &ep, &mut exact);
            let scale = exact.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = want.iter().zip(&exact).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-4 * scale, "{tile:?} {isa}: one thread off the reference by {worst}");
            pool.install(|| {
                crate::par::with_team(threads, || {
                    conv3x3_planned(isa, &plan, &s, &a, &packed, &ep, &mut y, &mut reused);
                    conv3x3_planned(isa, &plan, &s, &b, &packed, &ep, &mut y, &mut reused);
                })
            });
            assert!(y.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()), "{tile:?} {isa} {threads} threads");
            serial.install(|| {
                conv3x3_planned(isa, &plan, &s, &a, &packed, &ep, &mut y, &mut reused);
                conv3x3_planned(isa, &plan, &s, &b, &packed, &ep, &mut y, &mut reused);
            });
            assert!(y.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()), "{tile:?} {isa} serial workers");
        }
    }
}

#[test]
fn blocks_with_weights_that_stay_in_l3_keep_v_and_m_in_l2() {
    // v1.5's first stage-3 3×3 (56×56×128 at stride 2, F(4×4): 49 tiles of
    // 62 KB of V + M, 2.25 MiB of weights): blocks within BIG_L2_BUDGET
    // (V and M in floats), still in a multiple of the threads.
    let s = ConvShape::square(1, 56, 56, 128, 128, 3, 2, 1);
    for threads in [1, 2] {
        let p = Plan::with_tile(WinogradTile::F4x4S2, &s, threads);
        assert_eq!((p.tiles, p.blocks, p.tb, p.cs), (49, 4, 13, 1), "{p:?}");
        assert!(p.v_len() + p.m_len() <= BIG_L2_BUDGET / 4, "{p:?}");
    }
    // Weights too big to stay in L3 (7×7×512 F(2×2), 16.8 MB) keep their
    // blocks whole: each block streams all of U from memory.
    let s = ConvShape::square(1, 7, 7, 512, 512, 3, 1, 1);
    let p = Plan::with_tile(WinogradTile::F2x2, &s, 1);
    assert_eq!((p.blocks, p.tb), (1, 16), "{p:?}");
    // At batch 8 the 28×28×128 F(4×4) layers (2.25 MiB) block by the same rule.
    let s = ConvShape::square(8, 28, 28, 128, 128, 3, 1, 1);
    for threads in [1, 2] {
        let p = Plan::with_tile(WinogradTile::F4x4, &s, threads);
        assert!(p.v_len() + p.m_len() <= BIG_L2_BUDGET / 4 && p.blocks.is_multiple_of(threads), "{p:?}");
    }
}

//! The executor: walks the plan over one arena, calling a kernel per step.
//! It allocates nothing.

use resnet50_kernels::{pool, reference, ConvShape, Isa, PoolShape};

use crate::config::Pooling;
use crate::plan::{Op, Plan};
use crate::prepare::PreparedWeights;

/// Splits `acts` into the output buffer (mutable) and read-only views of up to
/// two other buffers, which the plan guarantees do not overlap the output.
fn views<'a>(
    acts: &'a mut [f32],
    out: std::ops::Range<usize>,
    ins: [Option<std::ops::Range<usize>>; 2],
) -> (&'a mut [f32], [Option<&'a [f32]>; 2]) {
    let (before, rest) = acts.split_at_mut(out.start);
    let (output, after) = rest.split_at_mut(out.end - out.start);
    let (before, after): (&'a [f32], &'a [f32]) = (before, after);
    let view = |r: Option<std::ops::Range<usize>>| {
        r.map(|r| {
            if r.end <= out.start {
                &before[r]
            } else {
                assert!(r.start >= out.end, "plan bug: a step's input overlaps its output");
                &after[r.start - out.end..r.end - out.end]
            }
        })
    };
    let [a, b] = ins;
    (output, [view(a), view(b)])
}

/// Runs every step of `plan`. The input must already be in its buffer.
/// With `times` (one slot per step), adds each step's wall time in seconds
/// and, in `[1]`, how long of it this thread waited at the step's kernels'
/// ends for other threads still in a task.
///
/// Steps `0..plan.per_image` run image by image (see [`Plan::per_image`]):
/// each of them on one image's part of its batch-wide buffers, and on the
/// whole of its one-image ones.
pub(crate) fn run(
    plan: &Plan,
    weights: &PreparedWeights,
    isa: Isa,
    threads: usize,
    arena: &mut [f32],
    mut times: Option<&mut [[f64; 2]]>,
) {
    let (acts, scratch) = arena.split_at_mut(plan.activations_len);
    let images = if plan.per_image > 0 { plan.spec.batch } else { 0 };
    for image in 0..images {
        let mut t = 0;
        while t < plan.per_image {
            t += run_step(plan, t, Some(image), weights, isa, threads, acts, scratch, times.as_deref_mut());
        }
    }
    let mut t = plan.per_image;
    while t < plan.steps.len() {
        t += run_step(plan, t, None, weights, isa, threads, acts, scratch, times.as_deref_mut());
    }
}

/// Runs step `t`: on the whole batch, or on image `image` alone. Returns
/// how many steps it ran: 2 when step `t + 1` is a max-pool fused into
/// step `t` ([`Plan::fused_pool`]).
#[allow(clippy::too_many_arguments)]
fn run_step(
    plan: &Plan,
    t: usize,
    image: Option<usize>,
    weights: &PreparedWeights,
    isa: Isa,
    threads: usize,
    acts: &mut [f32],
    scratch: &mut [f32],
    times: Option<&mut [[f64; 2]]>,
) -> usize {
    let step = &plan.steps[t];
    let start = times.is_some().then(|| (std::time::Instant::now(), resnet50_kernels::par::team_waited_ns()));
    // A buffer's range for this run: one image's part of a batch-wide
    // buffer, or all of it (the whole batch, or a one-image buffer: in a
    // per-image step every buffer holds either the batch or one image).
    let range = |id: usize| {
        let (buf, r) = (&plan.buffers[id], plan.buffers[id].range());
        match image {
            Some(i) if buf.shape[0] > 1 => {
                let len = r.len() / buf.shape[0];
                r.start + i * len..r.start + (i + 1) * len
            }
            _ => r,
        }
    };
    // The images a kernel sees: one in a per-image run, else the step's own count.
    let images = |n: usize| if image.is_some() { 1 } else { n };
    let (out_r, in_r) = (range(step.output), range(step.input));
    let fused = plan.fused_pool(t);
    match (&step.op, fused) {
        (Op::Softmax { rows, cols }, _) => reference::softmax_rows(images(*rows), *cols, &mut acts[out_r]),
        (Op::Conv { layer, kernel, shape, relu, .. }, Some(pool)) => {
            // The stem and its max-pool in one pass, into the pool's output.
            let (shape, pool) =
                (&ConvShape { batch: images(shape.batch), ..*shape }, &PoolShape { batch: images(pool.batch), ..pool });
            let (_, packed) = weights.conv(*layer);
            let (out, [inp, _]) = views(acts, range(plan.steps[t + 1].output), [Some(in_r), None]);
            kernel.run_maxpool(isa, packed, shape, inp.expect("conv input"), *relu, pool, out, scratch, threads);
        }
        (Op::Conv { layer, kernel, shape, residual, residual_subsample, relu }, _) => {
            let shape = &ConvShape { batch: images(shape.batch), ..*shape };
            // The plan's kernel: the packed one, its stride maybe changed (early stride).
            let (_, packed) = weights.conv(*layer);
            // A residual in the output buffer is not a separate view.
            let in_output = step.residual_in_output();
            let res_r = residual.filter(|_| !in_output).map(range);
            let (out, [inp, res]) = views(acts, out_r, [Some(in_r), res_r]);
            let (inp, scratch) = (inp.expect("conv input"), &mut scratch[..]);
            if in_output {
                kernel.run_residual_in_output(isa, packed, shape, inp, *relu, out, scratch, threads);
            } else {
                kernel.run(isa, packed, shape, inp, res, *residual_subsample, *relu, out, scratch, threads);
            }
        }
        (Op::MaxPool(shape), _) => {
            let shape = &PoolShape { batch: images(shape.batch), ..*shape };
            let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
            pool::max_pool2d(isa, shape, inp.expect("pool input"), out, threads);
        }
        (Op::GlobalPool { kind, nhwc: [n, h, w, c] }, _) => {
            let n = images(*n);
            let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
            let inp = inp.expect("pool input");
            pool::global_pool(isa, *kind == Pooling::Max, n, *h, *w, *c, inp, out);
        }
        (Op::Dense { n, k, m }, _) => {
            let n = images(*n);
            let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
            let (kr, br, _) = weights.fc.clone().expect("plan with a classifier has fc weights");
            let data = weights.data();
            pool::dense(isa, n, *k, *m, inp.expect("dense input"), &data[kr], &data[br], out, threads);
        }
    }
    if let (Some(times), Some((start, waited))) = (times, start) {
        times[t][0] += start.elapsed().as_secs_f64();
        times[t][1] += (resnet50_kernels::par::team_waited_ns() - waited) as f64 * 1e-9;
    }
    1 + usize::from(fused.is_some())
}

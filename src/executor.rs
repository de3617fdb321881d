//! The executor: walks the plan over one arena, calling a kernel per step.
//! It allocates nothing.

use resnet50_kernels::{pool, reference, Isa};

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
/// With `times` (one slot per step), adds each step's wall time in seconds.
pub(crate) fn run(
    plan: &Plan,
    weights: &PreparedWeights,
    isa: Isa,
    threads: usize,
    arena: &mut [f32],
    mut times: Option<&mut [f64]>,
) {
    let (acts, scratch) = arena.split_at_mut(plan.activations_len);
    for (t, step) in plan.steps.iter().enumerate() {
        let start = times.is_some().then(std::time::Instant::now);
        let out_r = plan.buffers[step.output].range();
        let in_r = plan.buffers[step.input].range();
        match &step.op {
            Op::Softmax { rows, cols } => reference::softmax_rows(*rows, *cols, &mut acts[out_r]),
            Op::Conv { layer, kernel, shape, residual, residual_subsample, relu } => {
                // The plan's kernel: the packed one, its stride maybe changed (early stride).
                let (_, packed) = weights.conv(*layer);
                // A residual in the output buffer is not a separate view.
                let in_output = step.residual_in_output();
                let res_r = residual.filter(|_| !in_output).map(|r| plan.buffers[r].range());
                let (out, [inp, res]) = views(acts, out_r, [Some(in_r), res_r]);
                let (inp, scratch) = (inp.expect("conv input"), &mut scratch[..]);
                if in_output {
                    kernel.run_residual_in_output(isa, packed, shape, inp, *relu, out, scratch, threads);
                } else {
                    kernel.run(isa, packed, shape, inp, res, *residual_subsample, *relu, out, scratch, threads);
                }
            }
            Op::MaxPool(shape) => {
                let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
                pool::max_pool2d(isa, shape, inp.expect("pool input"), out, threads);
            }
            Op::GlobalPool { kind, nhwc: [n, h, w, c] } => {
                let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
                let inp = inp.expect("pool input");
                pool::global_pool(isa, *kind == Pooling::Max, *n, *h, *w, *c, inp, out);
            }
            Op::Dense { n, k, m } => {
                let (out, [inp, _]) = views(acts, out_r, [Some(in_r), None]);
                let (kr, br, _) = weights.fc.clone().expect("plan with a classifier has fc weights");
                let data = weights.data();
                pool::dense(isa, *n, *k, *m, inp.expect("dense input"), &data[kr], &data[br], out, threads);
            }
        }
        if let (Some(times), Some(start)) = (times.as_deref_mut(), start) {
            times[t] += start.elapsed().as_secs_f64();
        }
    }
}

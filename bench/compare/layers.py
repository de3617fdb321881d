#!/usr/bin/env python3
"""Layer by layer: our `resnet50 bench --profile` against OpenVINO's per-node counters.

Same graph and weights as compare.py (its `build_onnx`), OpenVINO f32 with
PERF_COUNT on; rounds alternate the two engines and each layer keeps its
minimum over the rounds (per-layer means within a round), which is the most
stable figure on a noisy machine. OpenVINO folds each BatchNorm into its conv
(nodes named `Multiply_N`); the runtime model's `originalLayersNames` of each
node lists the fused ONNX nodes (`conv2_block1_1_bn`, ...), which name our
layer. The residual add and ReLU are inside the conv that ends each block in
both engines.

    .venv-compare/bin/python bench/compare/layers.py --variant v1.5 --threads 2

Both engines time each layer with their own clock around their own kernels, so
the sums are a little below their end-to-end latencies; compare layers, and
use compare.py for the end-to-end ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as C  # noqa: E402


def ov_layers(model, threads: int, iters: int, x: np.ndarray, conv_names: list[str]):
    """Mean ms per layer over `iters` inferences, keyed by our layer names."""
    import onnx
    import openvino as ov

    path = os.path.join(tempfile.mkdtemp(), "resnet50.onnx")
    onnx.save(model, path)
    core = ov.Core()
    cfg = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
           "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
    compiled = core.compile_model(core.read_model(path), "CPU", cfg)
    req = compiled.create_infer_request()
    req.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))
    # Executed node -> our layer name, from the ONNX nodes fused into it.
    ours_of = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        fused = op.get_rt_info()["originalLayersNames"].astype(str).split(",")
        bn = [f[: -len("_bn")] for f in fused if f.endswith("_bn")]
        if bn:
            ours_of[op.get_friendly_name()] = bn[0]
    other = {"MaxPool": "pool1", "ReduceMean": "avg_pool", "FullyConnected": "predictions", "Softmax": "softmax"}

    def run():
        req.infer()
        out: dict[str, float] = {}
        for pi in req.profiling_info:
            if pi.status.name != "EXECUTED":
                continue
            key = ours_of.get(pi.node_name) or other.get(pi.node_type, "other (reorders, ...)")
            out[key] = out.get(key, 0.0) + pi.real_time.total_seconds() * 1e3
        missing = [n for n in conv_names if n not in out]
        if missing:
            raise SystemExit(f"no OpenVINO node found for {missing[:3]}...")
        return out

    run()  # warm-up
    acc: dict[str, float] = {}
    for _ in range(iters):
        for k, v in run().items():
            acc[k] = acc.get(k, 0.0) + v
    return {k: v / iters for k, v in acc.items()}


def our_layers(binary: str, variant: str, threads: int, iters: int):
    cmd = [binary, "bench", "--json", "--profile", "--variant", variant, "--threads", str(threads),
           "--iters", str(iters)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    j = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    layers = j["layers"]
    return ({l["name"]: l["ms"] for l in layers}, {l["name"]: l["kernel"] for l in layers},
            {l["name"]: l["macs"] for l in layers}, j["peak_gflops"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="v1.5", choices=["v1", "v1.5"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10, help="inferences per engine per round")
    ap.add_argument("--binary", default=str(C.REPO / "target/release/resnet50"))
    args = ap.parse_args(argv)
    if not Path(args.binary).exists():
        raise SystemExit(f"{args.binary} not found: cargo build --release first")

    model = C.build_onnx(args.variant, 1, 224, 224)
    conv_names = [n.name for n in model.graph.node if n.op_type == "Conv"]
    x = C.deterministic_input(1, 224, 224).transpose(0, 3, 1, 2)  # NHWC -> NCHW
    ours: dict[str, float] = {}
    ov: dict[str, float] = {}
    kinds: dict[str, str] = {}
    macs: dict[str, int] = {}
    peaks: list[float] = []
    for r in range(args.rounds):
        o, kinds, macs, peak = our_layers(args.binary, args.variant, args.threads, args.iters)
        peaks.append(peak)
        v = ov_layers(model, args.threads, args.iters, x, conv_names)
        for k, t in o.items():
            ours[k] = min(ours.get(k, t), t)
        for k, t in v.items():
            ov[k] = min(ov.get(k, t), t)
        print(f"round {r + 1}/{args.rounds}: ours {sum(o.values()):.1f} ms, OpenVINO {sum(v.values()):.1f} ms",
              file=sys.stderr)

    print(f"{args.variant} batch 1, {args.threads} thread(s): per-layer minimum over {args.rounds} rounds "
          f"of {args.iters}-inference means, ms")
    # The FMA peak of this thread count, as our bench's probe measured it in
    # each round (the best: the probe is short, a slow phase only lowers it).
    peak = max(peaks)
    print(f"FMA peak {peak:.1f} GFLOP/s ({args.threads} thread(s), best of the rounds' probes); "
          "'% peak' counts a layer's direct-convolution flops (2 x MACs), so Winograd layers may pass 100")
    print(f"{'layer':<18}{'ours kernel':<15}{'ours':>8}{'OpenVINO':>10}{'ours/OV':>9}"
          f"{'ours %peak':>12}{'OV %peak':>10}")
    by_kind: dict[str, list[float]] = {}
    pct: dict[str, list[tuple[float, float]]] = {}
    names = list(ours) + [k for k in ov if k not in ours]
    for k in names:
        a, b = ours.get(k), ov.get(k)
        kind = kinds.get(k, "-")
        ratio = f"{a / b:9.2f}" if a and b else f"{'':>9}"
        frac = ""
        if a and b and macs.get(k):
            pa, pb = (2e-6 * macs[k] / t / peak * 100 for t in (a, b))
            frac = f"{pa:11.1f}%{pb:9.1f}%"
            pct.setdefault(kind, []).append((pa, pb))
        print(f"{k:<18}{kind:<15}{a if a is not None else float('nan'):8.3f}"
              f"{b if b is not None else float('nan'):10.3f}{ratio}{frac}")
        s = by_kind.setdefault(kind if a is not None else "OpenVINO only", [0.0, 0.0])
        s[0] += a or 0.0
        s[1] += b or 0.0
    print()
    for kind, (a, b) in by_kind.items():
        print(f"{'sum ' + kind:<33}{a:8.2f}{b:10.2f}" + (f"{a / b:9.2f}" if a and b else ""))
    ta, tb = sum(ours.values()), sum(ov.values())
    print(f"{'sum':<33}{ta:8.2f}{tb:10.2f}{ta / tb:9.2f}")
    print()
    for kind, ps in pct.items():
        if kind.startswith("gemm1x1") or kind.startswith("implicit_gemm"):
            a90 = sum(pa >= 90 for pa, _ in ps)
            b90 = sum(pb >= 90 for _, pb in ps)
            print(f"{kind} layers, % of the FMA peak: ours {min(p[0] for p in ps):.1f}-{max(p[0] for p in ps):.1f} "
                  f"({a90}/{len(ps)} at >= 90 %), OpenVINO {min(p[1] for p in ps):.1f}-{max(p[1] for p in ps):.1f} "
                  f"({b90}/{len(ps)} at >= 90 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

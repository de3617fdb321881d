#!/usr/bin/env python3
"""Peer comparison: our `resnet50 bench` against ONNX Runtime and OpenVINO.

One run, one machine, interleaved rounds: for every configuration
(variant x batch x threads) the three engines take turns, round after round,
in a rotating order, each round in a fresh process for every engine
(`--peer-process`), so that machine noise hits all of them alike.

The peers run an ONNX graph of ResNet50 built here with `onnx.helper`
(NCHW, the layout both peers prefer), with the deterministic weights of
`resnet50::init::deterministic` (re-implemented below, bit for bit). Before any
timing, the graph is checked against the golden fixtures in tests/fixtures/
(outputs of TensorFlow-Keras for v1 and torchvision for v1.5 on the same
weights), so the peers run the same network as we do.

See README.md beside this file for the exact commands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------
# The deterministic generator (spec: src/init.rs, tools/golden/detgen.py)
# ---------------------------------------------------------------------------
MASK64 = (1 << 64) - 1
FEATURES = 2048
STAGES = ((2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 512))  # (stage, blocks, filters)


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (numpy's uint64 wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def det(name: str, shape, lo: float, hi: float) -> np.ndarray:
    """Tensor `name` (row-major over its canonical shape), values in [lo, hi):
    f32(lo + (hi - lo) * k / 2^24) in f64, k = splitmix64(fnv1a64(name) + i) >> 40."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64))
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
    k = splitmix64(x) >> np.uint64(40)
    vals = float(lo) + (float(hi) - float(lo)) * (k.astype(np.float64) / 16777216.0)
    return vals.astype(np.float32).reshape(shape)


def self_test() -> None:
    """The test vectors of src/init.rs."""
    assert fnv1a64("conv1/kernel") == 0xA72A21DBF73CD84E
    want = [0.9535269737243652, 0.46204352378845215, 0.7679299116134644, 0.6791708469390869]
    assert [float(v) for v in det("conv1/kernel", (4,), -1.0, 1.0)] == want
    want = [-0.8043633699417114, -0.705042839050293, 0.14816880226135254]
    assert [float(v) for v in det("input", (3,), -1.0, 1.0)] == want
    # steal as a share of the CPU time wanted, never of the idle time
    assert steal_pct((10, 100), (20, 190)) == 10.0
    assert steal_pct((10, 100), (10, 100)) is None and steal_pct(None, (1, 1)) is None
    assert steal_pct((10, 100), (5, 200)) is None  # counters went backwards: no figure
    # a round's placement: its farther probe; none without a figure
    assert far_probe([40.0, 210.0]) == 210.0 and far_probe([None, 35.0]) == 35.0
    assert far_probe([None, None]) is None and far_probe(None) is None


@dataclass
class ConvSpec:
    name: str
    k: int
    cin: int
    cout: int
    stride: int

    @property
    def pad(self) -> int:
        return self.k // 2


def conv_specs(variant: str) -> list[ConvSpec]:
    """The 53 convolutions in execution order (src/arch.rs)."""
    specs = [ConvSpec("conv1", 7, 3, 64, 2)]
    cin = 64
    for stage, blocks, f in STAGES:
        for b in range(1, blocks + 1):
            s = 2 if (b == 1 and stage > 2) else 1
            s1, s2 = (s, 1) if variant == "v1" else (1, s)
            p = f"conv{stage}_block{b}"
            if b == 1:
                specs.append(ConvSpec(f"{p}_0", 1, cin, 4 * f, s))
            specs.append(ConvSpec(f"{p}_1", 1, cin, f, s1))
            specs.append(ConvSpec(f"{p}_2", 3, f, f, s2))
            specs.append(ConvSpec(f"{p}_3", 1, f, 4 * f, 1))
            cin = 4 * f
    assert len(specs) == 53
    return specs


def deterministic_weights(variant: str, classes: int | None) -> dict[str, np.ndarray]:
    """Canonical tensors (HWIO kernels, [2048, classes] fc) as in init::deterministic."""
    w: dict[str, np.ndarray] = {}
    for s in conv_specs(variant):
        a = math.sqrt(6.0 / (s.k * s.k * s.cin))
        w[f"{s.name}/kernel"] = det(f"{s.name}/kernel", (s.k, s.k, s.cin, s.cout), -a, a)
        if variant == "v1":
            w[f"{s.name}/bias"] = det(f"{s.name}/bias", (s.cout,), -0.1, 0.1)
        for kind, (lo, hi) in (("gamma", (0.5, 1.0)), ("beta", (-0.1, 0.1)),
                               ("mean", (-0.1, 0.1)), ("var", (0.5, 1.5))):
            w[f"{s.name}/{kind}"] = det(f"{s.name}/{kind}", (s.cout,), lo, hi)
    if classes:
        a = math.sqrt(6.0 / (FEATURES + classes))
        w["fc/kernel"] = det("fc/kernel", (FEATURES, classes), -a, a)
        w["fc/bias"] = det("fc/bias", (classes,), -0.1, 0.1)
    return w


def deterministic_input(n: int, h: int, w: int) -> np.ndarray:
    """NHWC input of the golden tests and of `resnet50 bench`."""
    return det("input", (n, h, w, 3), -1.0, 1.0)


# ---------------------------------------------------------------------------
# The ONNX graph
# ---------------------------------------------------------------------------
BN_EPS = {"v1": 1.001e-5, "v1.5": 1e-5}


def build_onnx(variant: str, batch: int, height: int, width: int, *, include_top: bool = True,
               pooling: str = "none", classes: int = 1000, activation: str | None = None,
               fold_bn: bool = False, eps: float | None = None, weights=None):
    """ResNet50 as an ONNX ModelProto with input `input` [N,3,H,W] and output `output`.

    v1 (Keras): conv bias, stride 2 on the first 1x1 of a downsampling block,
    softmax by default. v1.5 (torchvision): no conv bias, stride 2 on the 3x3,
    logits by default. Both: 7x7/2 pad 3 stem, 3x3/2 pad 1 max-pool (after a
    ReLU, so -inf padding equals Keras' zero padding), residual add then ReLU.
    Without the top the output is NCHW (pooling none) or [N, 2048].
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if activation is None:
        activation = "softmax" if variant == "v1" else "none"
    eps = BN_EPS[variant] if eps is None else eps
    if weights is None:
        weights = deterministic_weights(variant, classes if include_top else None)
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def conv_bn(x, s: ConvSpec, relu: bool) -> str:
        kern = weights[f"{s.name}/kernel"].astype(np.float64)  # HWIO
        bias = weights.get(f"{s.name}/bias")
        g, b, m, v = (weights[f"{s.name}/{k}"].astype(np.float64)
                      for k in ("gamma", "beta", "mean", "var"))
        ins = [x]
        if fold_bn:
            scale = g / np.sqrt(v + eps)
            kern = kern * scale
            b0 = bias.astype(np.float64) if bias is not None else 0.0
            ins += [init(f"{s.name}/W", kern.transpose(3, 2, 0, 1)),
                    init(f"{s.name}/B", (b0 - m) * scale + b)]
        else:
            ins.append(init(f"{s.name}/W", kern.transpose(3, 2, 0, 1)))
            if bias is not None:
                ins.append(init(f"{s.name}/B", bias))
        y = f"{s.name}/conv"
        nodes.append(helper.make_node(
            "Conv", ins, [y], name=s.name, kernel_shape=[s.k, s.k],
            strides=[s.stride, s.stride], pads=[s.pad] * 4))
        if not fold_bn:
            bn = f"{s.name}/bn"
            nodes.append(helper.make_node(
                "BatchNormalization",
                [y, init(f"{s.name}/gamma", g), init(f"{s.name}/beta", b),
                 init(f"{s.name}/mean", m), init(f"{s.name}/var", v)],
                [bn], name=f"{s.name}_bn", epsilon=eps))
            y = bn
        if relu:
            nodes.append(helper.make_node("Relu", [y], [f"{s.name}/relu"], name=f"{s.name}_relu"))
            y = f"{s.name}/relu"
        return y

    specs = {s.name: s for s in conv_specs(variant)}
    x = conv_bn("input", specs["conv1"], True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1",
                                  kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x = "pool1"
    for stage, blocks, _ in STAGES:
        for b in range(1, blocks + 1):
            p = f"conv{stage}_block{b}"
            short = conv_bn(x, specs[f"{p}_0"], False) if b == 1 else x
            y = conv_bn(x, specs[f"{p}_1"], True)
            y = conv_bn(y, specs[f"{p}_2"], True)
            y = conv_bn(y, specs[f"{p}_3"], False)
            nodes.append(helper.make_node("Add", [y, short], [f"{p}/add"], name=f"{p}_add"))
            nodes.append(helper.make_node("Relu", [f"{p}/add"], [f"{p}/out"], name=f"{p}_out"))
            x = f"{p}/out"

    if include_top or pooling in ("avg", "max"):
        op = "GlobalMaxPool" if (not include_top and pooling == "max") else "GlobalAveragePool"
        nodes.append(helper.make_node(op, [x], ["gpool"], name="gpool"))
        nodes.append(helper.make_node("Flatten", ["gpool"], ["features"], name="flatten", axis=1))
        x = "features"
        out_shape = [batch, FEATURES]
    else:
        h, w = height, width
        for _ in range(5):
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        out_shape = [batch, FEATURES, h, w]
    if include_top:
        nodes.append(helper.make_node(
            "Gemm", [x, init("fc/kernel", weights["fc/kernel"]), init("fc/bias", weights["fc/bias"])],
            ["logits"], name="fc"))
        x = "logits"
        if activation == "softmax":
            nodes.append(helper.make_node("Softmax", [x], ["probs"], name="softmax", axis=1))
            x = "probs"
        out_shape = [batch, classes]
    nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))

    graph = helper.make_graph(
        nodes, f"resnet50_{variant}", [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="resnet50 bench/compare")
    model.ir_version = 8  # opset 17's IR; readable by older runtimes too
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------
def busy_for(ms: float) -> None:
    """Keep this thread computing for `ms` milliseconds (`--busy-ms`)."""
    end = time.perf_counter() + ms / 1e3
    x = 1
    while time.perf_counter() < end:
        x = (x * 6364136223846793005 + 1) & 0xFFFFFFFFFFFFFFFF


def pct(sorted_times: list[float], p: float) -> float:
    """Same percentile rule as `resnet50 bench`: sorted[round((n-1)*p)]."""
    return sorted_times[int(round((len(sorted_times) - 1) * p))]


@dataclass
class Round:
    iters: int
    median_ms: float
    p90_ms: float
    min_ms: float
    times_ms: list[float] | None = None
    # % of the CPU time wanted that the hypervisor stole during the round (its
    # process start and warm-up included); None where /proc/stat is absent
    steal_pct: float | None = None
    # core-to-core latency (ns, one way) that `resnet50 bench` measured before and
    # after its timed loop (ours only): 150+ ns when the host ran the VM's CPUs far
    # apart, which makes a two-thread round slower (see src/placement.rs)
    core_to_core_ns: list[float | None] | None = None


def far_probe(core_to_core_ns: list[float | None] | None) -> float | None:
    """The larger of a round's core-to-core probes (one far-apart probe marks the
    round), or None where it has none."""
    probes = [x for x in core_to_core_ns or [] if x is not None]
    return max(probes) if probes else None


def round_from_times(times: list[float]) -> Round:
    t = sorted(times)
    return Round(len(t), pct(t, 0.5), pct(t, 0.9), t[0], [round(x, 4) for x in times])


class OrtEngine:
    name = "onnxruntime"
    busy_ms = 0

    def __init__(self, model_path: str, threads: int, spinning: str):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        if spinning != "default":
            so.add_session_config_entry("session.intra_op.allow_spinning",
                                        "1" if spinning == "on" else "0")
        self.sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        self.settings = {
            "providers": self.sess.get_providers(),
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "execution_mode": "ORT_SEQUENTIAL",
            "intra_op_num_threads": threads,
            "inter_op_num_threads": 1,
            "intra_op_allow_spinning": spinning,
        }

    def set_input(self, x: np.ndarray) -> None:
        self.x = x

    def infer(self) -> np.ndarray:
        return self.sess.run(["output"], {"input": self.x})[0]

    def run_round(self, iters: int, warmup: int) -> Round:
        for _ in range(warmup):
            self.infer()
        times = []
        for _ in range(iters):
            busy_for(self.busy_ms)
            t = time.perf_counter()
            self.infer()
            times.append((time.perf_counter() - t) * 1e3)
        return round_from_times(times)


class OvEngine:
    name = "openvino"
    busy_ms = 0

    def __init__(self, model_path: str, threads: int, hint: str, precision: str):
        import openvino as ov

        core = ov.Core()
        cfg = {"INFERENCE_NUM_THREADS": threads}
        if precision != "default":
            cfg["INFERENCE_PRECISION_HINT"] = precision
        if hint != "none":
            cfg["PERFORMANCE_HINT"] = hint.upper()
        self.compiled = core.compile_model(core.read_model(model_path), "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        got = {}
        for key in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS",
                    "PERFORMANCE_HINT", "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING",
                    "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE"):
            try:
                got[key] = ov_str(self.compiled.get_property(key))
            except Exception:  # property absent in this version
                pass
        self.settings = {"device": "CPU", "requested": {k: str(v) for k, v in cfg.items()},
                         "compiled": got}

    def set_input(self, x: np.ndarray) -> None:
        import openvino as ov

        self.request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))

    def infer(self) -> np.ndarray:
        self.request.infer()
        return self.request.get_output_tensor().data.copy()

    def run_round(self, iters: int, warmup: int) -> Round:
        for _ in range(warmup):
            self.request.infer()
        times = []
        for _ in range(iters):
            busy_for(self.busy_ms)
            t = time.perf_counter()
            self.request.infer()
            times.append((time.perf_counter() - t) * 1e3)
        return round_from_times(times)


class OursEngine:
    """`resnet50 bench --json`, one process per round (it times inside, as the peers
    are timed around their run call; process start and weight init are not timed)."""

    name = "resnet50"

    def __init__(self, binary: Path, variant: str, threads: int, batch: int, extra: list[str]):
        self.cmd = [str(binary), "bench", "--json", "--variant", variant, "--threads",
                    str(threads), "--batch", str(batch), *extra]
        self.settings = {"command": " ".join(self.cmd[:1] + self.cmd[1:]) + " --iters N --warmup W",
                         "weights": "seeded Keras-random (speed does not depend on values)"}
        self.last: dict = {}

    def run_round(self, iters: int, warmup: int) -> Round:
        cmd = self.cmd + ["--iters", str(iters), "--warmup", str(warmup)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
        line = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("{")][-1]
        j = json.loads(line)
        self.last = j
        times = j.get("times_ms")  # used if a future `bench --json` reports every iteration
        if times:
            rd = round_from_times([float(t) for t in times])
        else:
            rd = Round(int(j["iters"]), float(j["median_ms"]), float(j["p90_ms"]),
                       float(j.get("min_ms", j["median_ms"])))
        rd.core_to_core_ns = j.get("core_to_core_ns")
        return rd


class PeerProcess:
    """A peer run like ours: a fresh `compare.py --worker` process per round, which
    loads (or compiles) the model untimed, then times `iters` runs after `warmup`.

    On a shared host a process can keep one speed for its whole life (ours settle at
    about 55, 68 or 85 ms for v1.5 at 2 threads, OpenVINO's at 77 to 117 ms, with
    the same FMA peak and the same huge pages). A peer kept in one process for all
    rounds is one draw of that state, and ours five; a process per round for every
    engine samples the states alike."""

    def __init__(self, kind: str, spec: dict):
        self.name = {"ort": OrtEngine.name, "ov": OvEngine.name}[kind]
        self.spec = {"engine": kind, **spec}
        self.settings: dict = {}

    def run_round(self, iters: int, warmup: int) -> Round:
        spec = {**self.spec, "iters": iters, "warmup": warmup}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{self.name} worker failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
        j = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
        self.settings = {**j["settings"], "process": "fresh per round"}
        return round_from_times(j["times_ms"])


def peer_engine(kind: str, spec: dict):
    """The in-process peer `kind` ("ort" or "ov") on `spec`'s model, threads and options."""
    if kind == "ort":
        e = OrtEngine(spec["model"], spec["threads"], spec["spinning"])
    else:
        e = OvEngine(spec["model"], spec["threads"], spec["hint"], spec["precision"])
    # other work on the calling thread before each timed run (--busy-ms)
    e.busy_ms = spec.get("busy_ms", 0)
    return e


def worker(spec_json: str) -> int:
    """`compare.py --worker SPEC`: one round of one peer in this process (see PeerProcess)."""
    spec = json.loads(spec_json)
    e = peer_engine(spec["engine"], spec)
    e.set_input(np.load(spec["input"]))
    rd = e.run_round(spec["iters"], spec["warmup"])
    print(json.dumps({"times_ms": rd.times_ms, "settings": e.settings}))
    return 0


# ---------------------------------------------------------------------------
# Verification against the golden fixtures
# ---------------------------------------------------------------------------
def close_enough(y: np.ndarray, ref: np.ndarray) -> tuple[bool, float, float]:
    y = y.reshape(ref.shape[0], -1).astype(np.float64)
    r = ref.reshape(ref.shape[0], -1).astype(np.float64)
    max_diff = float(np.abs(y - r).max())
    cos = min(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
              for a, b in zip(y, r))
    ok = max_diff <= 1e-3 * float(np.abs(r).max()) and cos >= 0.99999
    return ok, max_diff / float(np.abs(r).max()), cos


def verify(args, log) -> dict:
    import onnxruntime as ort

    self_test()
    log("generator: test vectors of src/init.rs OK")
    gj = Path(args.fixtures) / "golden.json"
    results = {"generator_test_vectors": "ok", "cases": []}
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, os.cpu_count() or 1)
    if gj.exists():
        golden = json.loads(gj.read_text())
        for c in golden["cases"]:
            if args.variants and c["variant"] not in args.variants:
                continue
            ref = np.load(Path(args.fixtures) / c["output_file"])
            n, h, w = c["batch"], c["height"], c["width"]
            act = c["classifier_activation"]
            model = build_onnx(c["variant"], n, h, w, include_top=c["include_top"],
                               pooling=c["pooling"], classes=c["classes"],
                               activation=None if act is None else act,
                               fold_bn=args.fold_bn, eps=c.get("bn_epsilon"))
            sess = ort.InferenceSession(model.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            x = deterministic_input(n, h, w)
            assert abs(float(x.astype(np.float64).sum()) - c["input_sum_f64"]) < 1e-6 * max(1, abs(c["input_sum_f64"]))
            y = sess.run(["output"], {"input": x.transpose(0, 3, 1, 2).copy()})[0]
            if c.get("output_layout") == "NHWC":
                y = y.transpose(0, 2, 3, 1)
            shape_ok = list(y.shape) == list(ref.shape)
            ok, rel, cos = close_enough(y, ref) if shape_ok else (False, float("inf"), 0.0)
            row = {"case": c["name"], "framework": c["framework"], "shape": list(y.shape),
                   "max_rel_diff": rel, "min_cosine": cos, "ok": bool(ok and shape_ok)}
            results["cases"].append(row)
            log(f"  golden {c['name']:<26} {str(tuple(y.shape)):<20} max|dy|/max|y_ref| = {rel:.2e}"
                f"  cos = {cos:.8f}  {'OK' if row['ok'] else 'MISMATCH'}")
            if not row["ok"]:
                raise SystemExit(f"ONNX graph does not match golden fixture {c['name']}")
    else:
        log(f"  no {gj}: checking shapes and softmax sums only")
        for v in args.variants:
            model = build_onnx(v, 2, 224, 224, fold_bn=args.fold_bn)
            sess = ort.InferenceSession(model.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            y = sess.run(["output"], {"input": deterministic_input(2, 224, 224).transpose(0, 3, 1, 2).copy()})[0]
            assert y.shape == (2, 1000), y.shape
            if v == "v1":
                assert np.allclose(y.sum(axis=1), 1.0, atol=1e-5)
            results["cases"].append({"case": f"{v}_shape_only", "shape": list(y.shape), "ok": True})
            log(f"  {v}: output {y.shape} OK")
    return results


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------
@dataclass
class Result:
    engine: str
    rounds: list[Round] = field(default_factory=list)

    def summary(self, batch: int) -> dict:
        med = statistics.median(r.median_ms for r in self.rounds)
        p90 = statistics.median(r.p90_ms for r in self.rounds)
        meds = [r.median_ms for r in self.rounds]
        return {
            "median_ms": round(med, 3),
            "p90_ms": round(p90, 3),
            "min_ms": round(min(r.min_ms for r in self.rounds), 3),
            "images_per_s": round(batch * 1e3 / med, 2),
            "round_spread": round((max(meds) - min(meds)) / med, 4),
            "iters_total": sum(r.iters for r in self.rounds),
            "rounds": [{"iters": r.iters, "median_ms": round(r.median_ms, 3),
                        "p90_ms": round(r.p90_ms, 3), "min_ms": round(r.min_ms, 3),
                        **({"steal_pct": round(r.steal_pct, 2)} if r.steal_pct is not None else {}),
                        **({"core_to_core_ns": r.core_to_core_ns} if r.core_to_core_ns else {}),
                        **({"times_ms": r.times_ms} if r.times_ms else {})} for r in self.rounds],
        }


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    try:
        txt = Path("/proc/cpuinfo").read_text()
        for line in txt.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((ln.split(":", 1)[1].split() for ln in txt.splitlines()
                      if ln.startswith(("flags", "Features"))), [])
        info["simd"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "asimd", "sve")))
    except OSError:
        pass
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, busy) clock ticks summed over all CPUs since boot, from the first
    line of /proc/stat, or None where there is none (not Linux). busy = user + nice
    + system + irq + softirq (guest time is already inside user and nice)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    try:
        v = [int(x) for x in fields[1:9]]
    except ValueError:
        return None
    return v[7], v[0] + v[1] + v[2] + v[5] + v[6]


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Steal between two `cpu_ticks()` readings, as a percentage of the CPU time
    the guest's CPUs wanted (busy + stolen); None without readings or ticks. On a
    shared VM this is the time the hypervisor ran something else while an engine
    was ready to run: one reason its rounds differ."""
    if before is None or after is None:
        return None
    steal, busy = after[0] - before[0], after[1] - before[1]
    if steal < 0 or busy < 0 or steal + busy == 0:
        return None
    return 100.0 * steal / (steal + busy)


def git_state() -> dict:
    def git(*a):
        p = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else None

    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "kernels"))}


def versions() -> dict:
    import onnx
    import onnxruntime
    import openvino

    return {"numpy": np.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "openvino": openvino.get_version()}


def ov_str(v) -> str:
    """OpenVINO property values as plain text (`f32`, `LATENCY`, ...)."""
    if hasattr(v, "get_type_name"):
        return v.get_type_name()
    if hasattr(v, "name") and not isinstance(v, str):
        return str(v.name)
    return str(v)


def ov_defaults() -> dict:
    """What OpenVINO's CPU plugin would pick with no hints (bf16 on CPUs with AMX/AVX512_BF16)."""
    import openvino as ov

    core = ov.Core()
    out = {}
    for key in ("FULL_DEVICE_NAME", "INFERENCE_PRECISION_HINT", "OPTIMIZATION_CAPABILITIES",
                "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS"):
        try:
            out[key] = ov_str(core.get_property("CPU", key))
        except Exception:
            pass
    return out


def config_label(row: dict) -> str:
    """A result row's configuration as the tables print it, padded to 13."""
    return f"{row['variant'] + ' b' + str(row['batch']) + ' t' + str(row['threads']):<13}"


def parse_configs(s: str) -> list[tuple[int, int]]:
    out = []
    for part in s.split(","):
        b, _, t = part.strip().lower().partition("x")
        if not b or not t:
            raise argparse.ArgumentTypeError(f"--configs {part!r}: expected BATCHxTHREADS, e.g. 1x2")
        out.append((int(b), int(t)))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"] and len(argv) == 2:
        return worker(argv[1])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="v1,v1.5", help="comma list of v1, v1.5 (default both)")
    ap.add_argument("--configs", default="1x1,1x2,8x2",
                    help="comma list of BATCHxTHREADS (default 1x1,1x2,8x2)")
    ap.add_argument("--engines", default="ort,ov,ours", help="comma list of ort, ov, ours")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per config (default 5)")
    ap.add_argument("--seconds-per-round", type=float, default=3.0,
                    help="target timed seconds per engine per round; iterations follow from a "
                         "calibration run (default 3.0)")
    ap.add_argument("--iters", type=int, default=None,
                    help="fixed timed iterations per engine per round (overrides --seconds-per-round)")
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--max-iters", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per engine per round (default 1)")
    ap.add_argument("--binary", default=str(REPO / "target/release/resnet50"))
    ap.add_argument("--ours-args", default="", help="extra flags for `resnet50 bench`, e.g. '--isa avx2'")
    ap.add_argument("--fixtures", default=str(REPO / "tests/fixtures"))
    ap.add_argument("--fold-bn", action="store_true",
                    help="fold BatchNorm into the convs in the ONNX graph (both peers fold it anyway)")
    ap.add_argument("--ort-spinning", choices=["default", "on", "off"], default="default",
                    help="ONNX Runtime session.intra_op.allow_spinning (default: ORT's own, which spins)")
    ap.add_argument("--ov-hint", choices=["latency", "throughput", "none"], default="latency",
                    help="OpenVINO PERFORMANCE_HINT (default latency: one stream, all threads on one request)")
    ap.add_argument("--ov-precision", default="f32",
                    help="OpenVINO INFERENCE_PRECISION_HINT (default f32; 'default' leaves the plugin's choice)")
    ap.add_argument("--peer-process", choices=["round", "run"], default="round",
                    help="round (default): each peer runs every round in a fresh process, as "
                         "resnet50 does; run: one process per configuration (faster, but one "
                         "draw of the host's per-process speed)")
    ap.add_argument("--skip-verify", action="store_true", help="skip the golden-fixture check")
    ap.add_argument("--verify-only", action="store_true", help="only check the ONNX graph and exit")
    ap.add_argument("--save-onnx", metavar="DIR", help="also keep the benchmarked .onnx files in DIR")
    ap.add_argument("--busy-ms", type=int, default=0, metavar="MS",
                    help="before each timed inference, keep the calling thread computing for MS "
                         "milliseconds, untimed, in every engine (an application that does other "
                         "work between predicts; `resnet50 bench --busy-ms`)")
    ap.add_argument("--json-out", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--background-load", type=int, default=0, metavar="N",
                    help="keep N busy-looping processes running beside every engine for the whole "
                         "run: an oversubscribed machine (e.g. 1 with --configs 1x2 on 2 cores; "
                         "ours pins its threads unless --ours-args=--adaptive-threads)")
    args = ap.parse_args(argv)
    if not 0 <= args.busy_ms <= 10000:
        ap.error(f"--busy-ms {args.busy_ms}: expected 0..10000")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        if v not in ("v1", "v1.5"):
            ap.error(f"--variants: unknown variant {v!r} (v1 or v1.5)")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ("ort", "ov", "ours"):
            ap.error(f"--engines: unknown engine {e!r} (ort, ov, ours)")
    try:
        configs = parse_configs(args.configs)
    except (argparse.ArgumentTypeError, ValueError) as e:
        ap.error(str(e))

    def log(msg=""):
        print(msg, flush=True)

    binary = Path(args.binary)
    if "ours" in engines and not args.verify_only:
        if not binary.is_file():
            ap.error(f"{binary} not found: build it first with `cargo build --release` in {REPO}")
        newest = max((p.stat().st_mtime for d in ("src", "kernels/src") for p in (REPO / d).rglob("*.rs")),
                     default=0)
        if newest > binary.stat().st_mtime:
            log(f"warning: sources are newer than {binary}; run `cargo build --release` for current numbers")

    report = {"machine": machine_info(), "versions": versions(), "repo": git_state(),
              "load_start": loadavg(),
              "ov_cpu_defaults": ov_defaults(), "args": {k: v for k, v in vars(args).items()}}
    m = report["machine"]
    log(f"machine: {m.get('cpu', '?')}, {m['cpus']} cpus, simd {' '.join(m.get('simd', []))}")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    log(f"OpenVINO CPU defaults (no hints): {report['ov_cpu_defaults'].get('INFERENCE_PRECISION_HINT')} precision")
    la = report["load_start"]
    if la and la[0] > 0.5:
        log(f"warning: load average {la} — the machine is busy; timings will be noisy")

    if not args.skip_verify:
        log("verifying the ONNX graph against the golden fixtures (ONNX Runtime):")
        report["verify"] = verify(args, log)
    if args.verify_only:
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=1))
        return 0

    results = []
    tmp = tempfile.TemporaryDirectory(prefix="resnet50-compare-")
    outdir = Path(args.save_onnx) if args.save_onnx else Path(tmp.name)
    outdir.mkdir(parents=True, exist_ok=True)
    extra = args.ours_args.split() + (["--busy-ms", str(args.busy_ms)] if args.busy_ms else [])
    t_start = time.perf_counter()
    if not 0 <= args.background_load <= 64:
        ap.error(f"--background-load {args.background_load}: expected 0..64 processes")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.background_load)]
    if busy:
        log(f"background load: {len(busy)} busy process(es) beside every engine")
    try:
        for variant in args.variants:
            weights = deterministic_weights(variant, 1000)
            for batch, threads in configs:
                cfg = f"{variant} b{batch} t{threads}"
                log(f"\n== {cfg}")
                path = outdir / f"resnet50_{variant}_b{batch}{'_folded' if args.fold_bn else ''}.onnx"
                if not path.exists():
                    import onnx

                    onnx.save(build_onnx(variant, batch, 224, 224, fold_bn=args.fold_bn,
                                         weights=weights), str(path))
                x_nchw = deterministic_input(batch, 224, 224).transpose(0, 3, 1, 2).copy()
                peers = [k for k in ("ort", "ov") if k in engines]
                spec = {"model": str(path), "threads": threads, "spinning": args.ort_spinning,
                        "hint": args.ov_hint, "precision": args.ov_precision, "busy_ms": args.busy_ms}
                # in this process: the peers that time here (--peer-process run), or both
                # for the cross-check below
                in_process = args.peer_process == "run" or len(peers) == 2
                eng = {k: peer_engine(k, spec) for k in peers} if in_process else {}
                for e in eng.values():
                    e.set_input(x_nchw)
                if "ort" in eng and "ov" in eng:  # same graph, same input: same answer?
                    a, b = eng["ort"].infer(), eng["ov"].infer()
                    ok, rel, cos = close_enough(b, a)
                    log(f"   OpenVINO vs ONNX Runtime on this graph: max rel diff {rel:.1e}, cos {cos:.7f}"
                        f" {'OK' if ok else 'MISMATCH (bf16?)'}")
                if args.peer_process == "round" and peers:
                    xpath = outdir / f"input_b{batch}.npy"
                    np.save(xpath, x_nchw)
                    eng = {k: PeerProcess(k, {**spec, "input": str(xpath)}) for k in peers}
                if "ours" in engines:
                    eng["ours"] = OursEngine(binary, variant, threads, batch, extra)
                # calibration (not with a fixed --iters): one short run per engine gives the
                # latency that sets its iterations per round
                est = {}
                for k, e in eng.items():
                    est[k] = 1.0 if args.iters else e.run_round(1, 1).median_ms
                order = list(eng)
                res = {k: Result(eng[k].name) for k in eng}
                for r in range(args.rounds):
                    rot = order[r % len(order):] + order[:r % len(order)]
                    line = []
                    for k in rot:
                        if args.iters:
                            n = args.iters
                        else:
                            # the busy time counts: a round stays --seconds-per-round long
                            n = int(round(args.seconds_per_round * 1e3 / max(est[k] + args.busy_ms, 1e-3)))
                            n = max(args.min_iters, min(args.max_iters, n))
                        t0 = cpu_ticks()
                        rd = eng[k].run_round(n, args.warmup)
                        rd.steal_pct = steal_pct(t0, cpu_ticks())
                        est[k] = rd.median_ms
                        res[k].rounds.append(rd)
                        st = "" if rd.steal_pct is None else f" st {rd.steal_pct:4.1f}%"
                        c2c = far_probe(rd.core_to_core_ns)
                        st += "" if c2c is None else f" c2c {c2c:3.0f}ns"
                        line.append(f"{k} {rd.median_ms:8.2f} ms x{n}{st}")
                    log(f"   round {r + 1}/{args.rounds}: " + "   ".join(line))
                row = {"variant": variant, "batch": batch, "threads": threads, "engines": {}}
                for k, e in eng.items():
                    row["engines"][k] = {"name": e.name, "settings": e.settings, **res[k].summary(batch)}
                if "ours" in eng:
                    row["engines"]["ours"]["isa"] = eng["ours"].last.get("isa")
                    ours = row["engines"]["ours"]["median_ms"]
                    row["ratio_ours_over"] = {k: round(ours / row["engines"][k]["median_ms"], 3)
                                              for k in eng if k != "ours"}
                    # the engines of one round run back to back, so they share the host's
                    # state of the moment: the spread of per-round ratios shows how far
                    # one run's ratio can be trusted
                    row["round_ratios_ours_over"] = {
                        k: [round(a.median_ms / b.median_ms, 3)
                            for a, b in zip(res["ours"].rounds, res[k].rounds)]
                        for k in eng if k != "ours"}
                results.append(row)
                del eng
    finally:
        for p in busy:
            p.kill()
            p.wait()
        tmp.cleanup()
    report["results"] = results
    report["load_end"] = loadavg()
    report["wall_s"] = round(time.perf_counter() - t_start, 1)

    # the table
    names = {"ort": "ORT", "ov": "OpenVINO", "ours": "resnet50"}
    cols = [k for k in ("ort", "ov", "ours") if k in engines]
    log("\nlatency ms: median / p90 (median over rounds of each round's median / p90); "
        "ratio = ours / peer median (< 1: we are faster)")
    ratio_cols = [k for k in cols if k != "ours" and "ours" in cols]
    head = f"{'config':<13}" + "".join(f"{names[k] + ' ms':>20}" for k in cols)
    head += "".join(f"{'ours/' + names[k]:>15}" for k in ratio_cols)
    head += "".join(f"{names[k] + ' img/s':>16}" for k in cols)
    log(head)
    log("-" * len(head))
    for row in results:
        s = config_label(row)
        for k in cols:
            e = row["engines"][k]
            s += f"{e['median_ms']:>11.1f} /{e['p90_ms']:>7.1f}"
        for k in ratio_cols:
            s += f"{row['ratio_ours_over'][k]:>15.3f}"
        for k in cols:
            s += f"{row['engines'][k]['images_per_s']:>16.2f}"
        log(s)
    if ratio_cols:
        log("\nper-round ratios ours/peer (each round runs the engines back to back): "
            "median [min - max] over rounds")
        for row in results:
            s = config_label(row)
            for k in ratio_cols:
                v = sorted(row["round_ratios_ours_over"][k])
                s += f"   ours/{names[k]} {statistics.median(v):.3f} [{v[0]:.3f} - {v[-1]:.3f}]"
            log(s)
    def steals(row, k):
        return [r["steal_pct"] for r in row["engines"][k]["rounds"] if "steal_pct" in r]

    if any(steals(row, k) for row in results for k in cols):
        log("\nsteal: % of the CPU time each engine's rounds wanted that the hypervisor gave to "
            "others (median [max] over rounds; `st` in the round lines)")
        for row in results:
            s = config_label(row)
            for k in cols:
                if v := steals(row, k):
                    s += f"   {names[k]} {statistics.median(v):4.1f} [{max(v):4.1f}]"
            log(s)
    def c2c(row):
        probes = (far_probe(r.get("core_to_core_ns")) for r in row["engines"].get("ours", {}).get("rounds", []))
        return [x for x in probes if x is not None]

    if any(c2c(row) for row in results):
        log("\ncore-to-core latency in ours' rounds, ns one way (`c2c` in the round lines; 150+: the "
            "host ran the VM's CPUs far apart, and two-thread rounds are slower, see src/placement.rs)")
        for row in results:
            if v := c2c(row):
                log(config_label(row) + "   " + " ".join(f"{x:.0f}" for x in v))
    log(f"\nwall time {report['wall_s']} s; load average start {report['load_start']} end {report['load_end']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))
        log(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Golden outputs for the Rust ResNet50 from the real frameworks.

v1   : Keras `keras.applications.ResNet50` (TensorFlow backend).
v1.5 : torchvision `torchvision.models.resnet50`.

Every weight and every input comes from the deterministic generator in
`detgen.py` (the Rust tests re-implement it bit-for-bit), so only the outputs are
written to tests/fixtures/ (one float32 C-order .npy per case) plus golden.json.

Usage (from the repository root, with the venv described in README.md):
    .venv-golden/bin/python tools/golden/make_golden.py --self-test
    .venv-golden/bin/python tools/golden/make_golden.py --stats      # activations per block
    .venv-golden/bin/python tools/golden/make_golden.py              # write fixtures
    .venv-golden/bin/python tools/golden/make_golden.py --check      # compare with fixtures
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import detgen  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

CASES = [
    # name, variant, batch, H, W, include_top, pooling, classes, classifier_activation
    dict(name="v1_top_224_b2", variant="v1", batch=2, height=224, width=224,
         include_top=True, pooling="none", classes=1000, classifier_activation="softmax"),
    dict(name="v1_notop_none_197x161", variant="v1", batch=1, height=197, width=161,
         include_top=False, pooling="none", classes=1000, classifier_activation="none"),
    dict(name="v1_notop_avg_256x320", variant="v1", batch=1, height=256, width=320,
         include_top=False, pooling="avg", classes=1000, classifier_activation="none"),
    dict(name="v1_notop_max_64x64", variant="v1", batch=1, height=64, width=64,
         include_top=False, pooling="max", classes=1000, classifier_activation="none"),
    dict(name="v1_top_cls10_logits_128", variant="v1", batch=1, height=128, width=128,
         include_top=True, pooling="none", classes=10, classifier_activation="none"),
    dict(name="v15_top_224", variant="v1.5", batch=1, height=224, width=224,
         include_top=True, pooling="none", classes=1000, classifier_activation="none"),
    dict(name="v15_top_240x200", variant="v1.5", batch=1, height=240, width=200,
         include_top=True, pooling="none", classes=1000, classifier_activation="none"),
]

DEBUG_TENSORS = ["conv1/kernel", "conv2_block1_0/kernel", "conv5_block3_3/var", "fc/kernel"]


# ---------------------------------------------------------------------------
# Keras (v1)
# ---------------------------------------------------------------------------
def keras_model(case):
    import keras

    kw = dict(
        include_top=case["include_top"],
        weights=None,
        input_shape=(case["height"], case["width"], 3),
        pooling=None if case["pooling"] == "none" else case["pooling"],
        classes=case["classes"],
    )
    if case["include_top"]:
        kw["classifier_activation"] = (
            None if case["classifier_activation"] == "none" else case["classifier_activation"]
        )
    model = keras.applications.ResNet50(**kw)

    filled = set()
    for name, kh, kwid, cin, cout, _stride in detgen.conv_specs("v1"):
        t = detgen.conv_tensors(name, kh, kwid, cin, cout, with_bias=True)
        conv = model.get_layer(f"{name}_conv")
        bn = model.get_layer(f"{name}_bn")
        assert tuple(conv.kernel.shape) == (kh, kwid, cin, cout), (name, conv.kernel.shape)
        assert conv.use_bias
        conv.set_weights([t["kernel"], t["bias"]])
        bn.set_weights([t["gamma"], t["beta"], t["mean"], t["var"]])
        assert abs(bn.epsilon - 1.001e-5) < 1e-12, bn.epsilon
        filled.update((conv.name, bn.name))
    if case["include_top"]:
        fc = detgen.fc_tensors(case["classes"])
        dense = model.get_layer("predictions")
        dense.set_weights([fc["kernel"], fc["bias"]])
        filled.add(dense.name)
    weighted = {l.name for l in model.layers if l.weights}
    assert weighted == filled, sorted(weighted ^ filled)
    return model


def run_keras(case, x):
    model = keras_model(case)
    y = model(x, training=False)
    return np.asarray(y, dtype=np.float32)


def keras_block_stats(case, x):
    import keras

    model = keras_model(case)
    names = ["conv1_relu", "pool1_pool"] + [l.name for l in model.layers if l.name.endswith("_out")]
    names += [model.layers[-1].name] if case["include_top"] or case["pooling"] != "none" else []
    if case["include_top"]:
        names.insert(-1, "avg_pool")
    sub = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outs = sub(x, training=False)
    return list(zip(names, [np.asarray(o) for o in outs]))


# ---------------------------------------------------------------------------
# torchvision (v1.5)
# ---------------------------------------------------------------------------
def torch_prefix(name):
    if name == "conv1":
        return "conv1", "bn1"
    s, b, i = name[4], int(name.split("_block")[1].split("_")[0]), name[-1]
    layer = f"layer{int(s) - 1}.{b - 1}"
    if i == "0":
        return f"{layer}.downsample.0", f"{layer}.downsample.1"
    return f"{layer}.conv{i}", f"{layer}.bn{i}"


def torch_model(case, dtype=None):
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None, num_classes=case["classes"])
    model.eval()
    sd = model.state_dict()
    new = {}
    for name, kh, kw, cin, cout, _stride in detgen.conv_specs("v1.5"):
        t = detgen.conv_tensors(name, kh, kw, cin, cout, with_bias=False)
        cp, bp = torch_prefix(name)
        w = np.ascontiguousarray(t["kernel"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
        assert tuple(sd[f"{cp}.weight"].shape) == w.shape, (name, sd[f"{cp}.weight"].shape)
        new[f"{cp}.weight"] = torch.from_numpy(w)
        new[f"{bp}.weight"] = torch.from_numpy(t["gamma"])
        new[f"{bp}.bias"] = torch.from_numpy(t["beta"])
        new[f"{bp}.running_mean"] = torch.from_numpy(t["mean"])
        new[f"{bp}.running_var"] = torch.from_numpy(t["var"])
        new[f"{bp}.num_batches_tracked"] = sd[f"{bp}.num_batches_tracked"]
    fc = detgen.fc_tensors(case["classes"])
    new["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc["kernel"].T))
    new["fc.bias"] = torch.from_numpy(fc["bias"])
    assert set(new) == set(sd), sorted(set(new) ^ set(sd))
    model.load_state_dict(new, strict=True)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == 1e-5, m.eps
    if dtype is not None:
        model = model.to(dtype)
    return model


def run_torch(case, x, dtype=None):
    import torch

    assert case["include_top"], "torch cases are top (logits) only"
    model = torch_model(case, dtype)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    if dtype is not None:
        xt = xt.to(dtype)
    with torch.no_grad():
        y = model(xt)
    return y.numpy()


def torch_block_stats(case, x):
    import torch

    model = torch_model(case)
    acts = []

    def hook(name):
        return lambda _m, _i, out: acts.append((name, out.detach().permute(0, 2, 3, 1).numpy()
                                                if out.dim() == 4 else out.detach().numpy()))

    model.relu.register_forward_hook(hook("relu(stem)"))
    model.maxpool.register_forward_hook(hook("maxpool"))
    for li in range(1, 5):
        for bi, blk in enumerate(getattr(model, f"layer{li}")):
            blk.register_forward_hook(hook(f"conv{li + 1}_block{bi + 1}_out"))
    model.avgpool.register_forward_hook(hook("avgpool"))
    model.fc.register_forward_hook(hook("fc"))
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        model(xt)
    return acts


# ---------------------------------------------------------------------------
def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def describe(a):
    a = np.asarray(a, dtype=np.float64)
    return (f"shape={list(a.shape)} max|x|={np.abs(a).max():.4g} mean={a.mean():.4g} "
            f"std={a.std():.4g} zeros={np.mean(a == 0):.3f}")


def output_stats(case, y):
    rows = y.reshape(y.shape[0], -1).astype(np.float64)
    per_row = []
    for r in rows:
        order = np.argsort(-r, kind="stable")
        entry = {"top1_index": int(order[0]), "top1_value": float(r[order[0]])}
        if case["include_top"]:
            entry["top5_indices"] = [int(i) for i in order[:5]]
            entry["top5_values"] = [float(r[i]) for i in order[:5]]
            # gap between the 5th and 6th score: tells whether top-5 is well separated
            if r.size > 5:
                entry["top5_margin"] = float(r[order[4]] - r[order[5]])
        if case["include_top"] and case["classifier_activation"] == "none":
            entry["softmax_max_prob"] = float(softmax(r).max())
        per_row.append(entry)
    return {
        "max_abs": float(np.abs(rows).max()),
        "mean": float(rows.mean()),
        "std": float(rows.std()),
        "sum": float(rows.sum()),
        "per_row": per_row,
    }


def generate(case):
    x = detgen.input_tensor(case["batch"], case["height"], case["width"])
    if case["variant"] == "v1":
        y = run_keras(case, x)
    else:
        y = run_torch(case, x)
    return x, np.ascontiguousarray(y, dtype=np.float32)


def expected_shape(case):
    n, h, w = case["batch"], case["height"], case["width"]
    if case["include_top"]:
        return [n, case["classes"]]
    if case["pooling"] != "none":
        return [n, detgen.FEATURES]
    for _ in range(5):  # conv1 (7x7/2 p3), pool (3x3/2 p1), then three stride-2 stages
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return [n, h, w, detgen.FEATURES]


def versions():
    import keras
    import tensorflow as tf
    import torch
    import torchvision

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def debug_tensors(variant, classes):
    out = {}
    for full in DEBUG_TENSORS:
        t = detgen.tensor_by_name(full, variant, classes)
        out[full] = {
            "shape": list(t.shape),
            "sum_f64": float(t.astype(np.float64).sum()),
            "first4": [float(v) for v in t.reshape(-1)[:4]],
        }
    return out


def cmd_stats(cases):
    for case in cases:
        x = detgen.input_tensor(case["batch"], case["height"], case["width"])
        print(f"== {case['name']}  input {describe(x)}")
        acts = keras_block_stats(case, x) if case["variant"] == "v1" else torch_block_stats(case, x)
        for name, a in acts:
            print(f"   {name:24s} {describe(a)}")
        y = acts[-1][1]
        if case["include_top"]:
            p = y if case["classifier_activation"] == "softmax" else softmax(y.astype(np.float64))
            print(f"   softmax max prob per row: {[round(float(v), 4) for v in p.max(axis=-1)]}")


def cmd_generate(cases, check_only=False):
    vers = versions()
    print("versions:", json.dumps(vers))
    FIXTURES.mkdir(parents=True, exist_ok=True)
    entries = []
    worst = 0.0
    for case in cases:
        t0 = time.time()
        x, y = generate(case)
        assert list(y.shape) == expected_shape(case), (case["name"], y.shape, expected_shape(case))
        assert np.isfinite(y).all(), case["name"]
        fname = f"{case['name']}.npy"
        path = FIXTURES / fname
        st = output_stats(case, y)
        if check_only:
            ref = np.load(path)
            d = float(np.abs(ref.astype(np.float64) - y).max())
            rel = d / st["max_abs"]
            worst = max(worst, rel)
            print(f"{case['name']:26s} max|y-fixture| = {d:.3e} ({rel:.2e} of max|y|)")
            continue
        np.save(path, y, allow_pickle=False)
        extra = {}
        if case["variant"] == "v1.5":
            import torch

            y64 = run_torch(case, x, dtype=torch.float64)
            extra["float64_max_abs_diff"] = float(np.abs(y64 - y.astype(np.float64)).max())
        fw = ("keras (tensorflow backend)" if case["variant"] == "v1" else "torchvision")
        fw_ver = (f"keras {vers['keras']} / tensorflow {vers['tensorflow']}" if case["variant"] == "v1"
                  else f"torchvision {vers['torchvision']} / torch {vers['torch']}")
        entry = dict(
            name=case["name"],
            framework=fw,
            framework_version=fw_ver,
            variant=case["variant"],
            batch=case["batch"],
            height=case["height"],
            width=case["width"],
            include_top=case["include_top"],
            pooling=case["pooling"],
            classes=case["classes"],
            classifier_activation=case["classifier_activation"],
            bn_epsilon=1.001e-5 if case["variant"] == "v1" else 1e-5,
            output_file=fname,
            output_shape=list(y.shape),
            output_layout="NHWC" if y.ndim == 4 else "NC",
            input_shape_nhwc=list(x.shape),
            input_sum_f64=float(x.astype(np.float64).sum()),
            input_first4=[float(v) for v in x.reshape(-1)[:4]],
            tensors=debug_tensors(case["variant"], case["classes"]),
            output=st,
            **extra,
        )
        entries.append(entry)
        sm = [r.get("softmax_max_prob") for r in st["per_row"]]
        if case["classifier_activation"] == "softmax":
            sm = [r["top1_value"] for r in st["per_row"]]
        print(f"{case['name']:26s} shape={list(y.shape)} max|y|={st['max_abs']:.5g} "
              f"top1={[r['top1_index'] for r in st['per_row']]} softmax_max={sm} "
              f"{extra} ({time.time() - t0:.1f}s, {path.stat().st_size} bytes)")
    if check_only:
        print(f"worst relative difference to fixtures: {worst:.2e}")
        return
    doc = {
        "about": "Golden outputs from Keras (v1) and torchvision (v1.5) with deterministic "
                 "weights/inputs; see tools/golden/README.md for the generator and ranges.",
        "generator": {
            "spec": "k = splitmix64((fnv1a64(name) + i) mod 2^64) >> 40; "
                    "value = f32(lo + (hi - lo) * (k / 16777216.0)) in f64",
            "ranges": {
                "conv kernel [kh,kw,cin,cout]": "+-sqrt(6/(kh*kw*cin))",
                "fc/kernel [2048,classes]": "+-sqrt(6/(2048+classes))",
                **{k: list(v) for k, v in detgen.RANGES.items()},
            },
            "test_vectors": detgen.TEST_VECTORS["det"],
        },
        "tolerance": "max|y - y_ref| <= 1e-3 * max|y_ref| and cosine >= 0.99999 per row",
        "versions": vers,
        "cases": entries,
    }
    (FIXTURES / "golden.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(entries)} cases to {FIXTURES}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self-test", action="store_true", help="check the generator test vectors and exit")
    ap.add_argument("--stats", action="store_true", help="print per-block activation statistics")
    ap.add_argument("--check", action="store_true", help="recompute and compare with the fixtures")
    ap.add_argument("--case", action="append", help="only this case (repeatable)")
    args = ap.parse_args()
    detgen.self_test(verbose=True)
    if args.self_test:
        return
    cases = [c for c in CASES if not args.case or c["name"] in args.case]
    t0 = time.time()
    if args.stats:
        cmd_stats(cases)
    else:
        cmd_generate(cases, check_only=args.check)
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Framework-free float64 reference of both ResNet50 variants (numpy only).

It spells out, in the shape the Rust executor takes (NHWC, BatchNorm folded into
the conv, explicit paddings), the semantics the golden fixtures come from, and
checks them against tests/fixtures/*.npy with the project tolerance:
    max|y - y_ref| <= 1e-3 * max|y_ref|  and  cosine >= 0.99999 per row.

    python3 tools/golden/numpy_ref.py            # all cases (~1-2 min on 2 cores)
    python3 tools/golden/numpy_ref.py --case v15_top_224
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import detgen  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
EPS = {"v1": 1.001e-5, "v1.5": 1e-5}


def conv2d(x, w, b, stride, pad):
    """x NHWC, w HWIO, symmetric zero padding `pad`, returns NHWC (float64)."""
    n, h, wd, c = x.shape
    kh, kw, cin, cout = w.shape
    assert cin == c
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            out += patch @ w[i, j]
    return out + b


def folded(name, kh, kw, cin, cout, variant):
    t = detgen.conv_tensors(name, kh, kw, cin, cout, with_bias=(variant == "v1"))
    g = t["gamma"].astype(np.float64)
    s = g / np.sqrt(t["var"].astype(np.float64) + EPS[variant])
    w = t["kernel"].astype(np.float64) * s  # scales output channel (last axis)
    b = t["bias"].astype(np.float64) if "bias" in t else 0.0
    return w, (b - t["mean"].astype(np.float64)) * s + t["beta"].astype(np.float64)


def maxpool3x3s2p1(x):
    # ReLU precedes the pool, so zero padding (Keras) == -inf padding (torch).
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = np.full((n, oh, ow, c), -np.inf)
    for i in range(3):
        for j in range(3):
            out = np.maximum(out, xp[:, i:i + 2 * (oh - 1) + 1:2, j:j + 2 * (ow - 1) + 1:2, :])
    return out


def forward(case):
    variant = case["variant"]
    x = detgen.input_tensor(case["batch"], case["height"], case["width"]).astype(np.float64)
    specs = {s[0]: s for s in detgen.conv_specs(variant)}

    def conv(name, inp, relu):
        _, kh, kw, cin, cout, stride = specs[name]
        w, b = folded(name, kh, kw, cin, cout, variant)
        y = conv2d(inp, w, b, stride, (kh - 1) // 2)  # 7x7 pad 3, 3x3 pad 1, 1x1 pad 0
        return np.maximum(y, 0) if relu else y

    x = maxpool3x3s2p1(conv("conv1", x, True))
    for s, blocks, _f in detgen.STAGES:
        for b in range(1, blocks + 1):
            p = f"conv{s}_block{b}"
            sc = conv(f"{p}_0", x, False) if b == 1 else x
            y = conv(f"{p}_1", x, True)
            y = conv(f"{p}_2", y, True)
            y = conv(f"{p}_3", y, False)
            x = np.maximum(sc + y, 0)
    if not case["include_top"]:
        if case["pooling"] == "avg":
            return x.mean(axis=(1, 2))
        if case["pooling"] == "max":
            return x.max(axis=(1, 2))
        return x
    fc = detgen.fc_tensors(case["classes"])
    z = x.mean(axis=(1, 2)) @ fc["kernel"].astype(np.float64) + fc["bias"].astype(np.float64)
    if case["classifier_activation"] == "softmax":
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        z /= z.sum(axis=-1, keepdims=True)
    return z


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="append")
    args = ap.parse_args()
    doc = json.loads((FIXTURES / "golden.json").read_text())
    ok = True
    for case in doc["cases"]:
        if args.case and case["name"] not in args.case:
            continue
        t0 = time.time()
        ref = np.load(FIXTURES / case["output_file"]).astype(np.float64)
        y = forward(case)
        assert list(y.shape) == case["output_shape"], (y.shape, case["output_shape"])
        d = np.abs(y - ref).max()
        rel = d / np.abs(ref).max()
        a = y.reshape(y.shape[0], -1)
        r = ref.reshape(ref.shape[0], -1)
        cos = (a * r).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(r, axis=1)
        good = rel <= 1e-3 and cos.min() >= 0.99999
        ok &= bool(good)
        print(f"{case['name']:26s} max|numpy64 - fixture| = {d:.3e} (rel {rel:.2e}) "
              f"min cos = {cos.min():.9f} {'OK' if good else 'FAIL'} ({time.time() - t0:.1f}s)")
    print("numpy reference agrees with fixtures" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Deterministic weight / input generator shared by the golden-output scripts.

This is the specification that the Rust side (`resnet50` tests) re-implements
bit-for-bit.  Keep it dependency-light (numpy only) and keep every number here in
sync with tools/golden/README.md ("Generator" section).

    M = 2**64
    fnv1a64(name): h = 0xcbf29ce484222325; for each UTF-8 byte b:
                   h ^= b; h = (h * 0x100000001b3) mod M
    splitmix64(x): z = (x + 0x9E3779B97F4A7C15) mod M
                   z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod M
                   z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod M
                   return z ^ (z >> 31)
    element i (0-based, row-major over the CANONICAL shape) of tensor `name`
    in [lo, hi):
        k = splitmix64((fnv1a64(name) + i) mod M) >> 40        # 24-bit int
        value = float32(lo + (hi - lo) * (k / 16777216.0))      # f64 math, then
                                                                # round-to-nearest f32
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

STAGES = ((2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 512))  # (stage, blocks, filters)
FEATURES = 2048

# ---------------------------------------------------------------------------
# The ranges table (lo, hi) per tensor kind.  See README.md.
# Conv kernels use +-sqrt(6 / (kh*kw*cin)); fc kernel +-sqrt(6 / (2048 + classes)).
# ---------------------------------------------------------------------------
RANGES = {
    "bias": (-0.1, 0.1),
    "gamma": (0.5, 1.0),
    "beta": (-0.1, 0.1),
    "mean": (-0.1, 0.1),
    "var": (0.5, 1.5),
    "fc/bias": (-0.1, 0.1),
    "input": (-1.0, 1.0),
}


def fnv1a64(name: str) -> int:
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on a uint64 array (numpy wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def det(name: str, shape, lo: float, hi: float) -> np.ndarray:
    """Deterministic float32 tensor `name` of `shape`, values in [lo, hi)."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    base = np.array([fnv1a64(name)], dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = base + np.arange(n, dtype=np.uint64)  # wraps mod 2^64
    k = splitmix64(x) >> np.uint64(40)
    frac = k.astype(np.float64) / 16777216.0
    lo = float(lo)
    hi = float(hi)
    vals = lo + (hi - lo) * frac  # float64
    return vals.astype(np.float32).reshape(shape)


def kernel_bound(kh: int, kw: int, cin: int) -> float:
    return math.sqrt(6.0 / (kh * kw * cin))


def fc_bound(classes: int) -> float:
    return math.sqrt(6.0 / (FEATURES + classes))


def conv_specs(variant: str):
    """The 53 canonical convolutions: (name, kh, kw, cin, cout, stride).

    variant "v1" (Keras): stride 2 on `_1` (1x1) and `_0` of block 1 in stages 3-5.
    variant "v1.5" (torchvision): stride 2 on `_2` (3x3) and `_0`.
    Order: conv1, then per block _1, _2, _3, and (block 1 only) _0.
    """
    if variant not in ("v1", "v1.5"):
        raise ValueError(variant)
    specs = [("conv1", 7, 7, 3, 64, 2)]
    cin = 64
    for s, blocks, f in STAGES:
        for b in range(1, blocks + 1):
            down = 2 if (b == 1 and s > 2) else 1
            s1, s2 = (down, 1) if variant == "v1" else (1, down)
            p = f"conv{s}_block{b}"
            specs.append((f"{p}_1", 1, 1, cin, f, s1))
            specs.append((f"{p}_2", 3, 3, f, f, s2))
            specs.append((f"{p}_3", 1, 1, f, 4 * f, 1))
            if b == 1:
                specs.append((f"{p}_0", 1, 1, cin, 4 * f, down))
            cin = 4 * f
    assert len(specs) == 53
    return specs


def conv_tensors(name: str, kh: int, kw: int, cin: int, cout: int, with_bias: bool):
    """dict of canonical tensors for conv `name` (kernel HWIO, [bias], BN params)."""
    a = kernel_bound(kh, kw, cin)
    t = {"kernel": det(f"{name}/kernel", (kh, kw, cin, cout), -a, a)}
    if with_bias:
        t["bias"] = det(f"{name}/bias", (cout,), *RANGES["bias"])
    for kind in ("gamma", "beta", "mean", "var"):
        t[kind] = det(f"{name}/{kind}", (cout,), *RANGES[kind])
    return t


def fc_tensors(classes: int):
    a = fc_bound(classes)
    return {
        "kernel": det("fc/kernel", (FEATURES, classes), -a, a),
        "bias": det("fc/bias", (classes,), *RANGES["fc/bias"]),
    }


def input_tensor(n: int, h: int, w: int) -> np.ndarray:
    return det("input", (n, h, w, 3), *RANGES["input"])


def tensor_by_name(full: str, variant: str, classes: int) -> np.ndarray:
    """Generate one canonical tensor by full name, e.g. 'conv2_block1_0/kernel'."""
    conv, kind = full.split("/")
    if conv == "fc":
        return fc_tensors(classes)[kind]
    for name, kh, kw, cin, cout, _ in conv_specs(variant):
        if name == conv:
            return conv_tensors(name, kh, kw, cin, cout, variant == "v1")[kind]
    raise KeyError(full)


# ---------------------------------------------------------------------------
# self test: the published test vectors
# ---------------------------------------------------------------------------
TEST_VECTORS = {
    "fnv1a64": ("conv1/kernel", 0xA72A21DBF73CD84E),
    "det": [
        ("conv1/kernel", -1.0, 1.0,
         [0.9535269737243652, 0.46204352378845215, 0.7679299116134644, 0.6791708469390869]),
        ("input", -1.0, 1.0, [-0.8043633699417114, -0.705042839050293, 0.14816880226135254]),
    ],
}


def self_test(verbose: bool = True) -> None:
    name, want = TEST_VECTORS["fnv1a64"]
    got = fnv1a64(name)
    assert got == want, f"fnv1a64({name!r}) = {got:#x}, want {want:#x}"
    for name, lo, hi, want in TEST_VECTORS["det"]:
        got = det(name, (len(want),), lo, hi)
        assert got.dtype == np.float32
        assert [float(v) for v in got] == want, f"det({name!r}) = {got.tolist()}, want {want}"
        # the scalar (pure Python) path must agree with the vectorised one
        h = fnv1a64(name)
        for i, wv in enumerate(want):
            z = (h + i) & MASK64
            z = (z + 0x9E3779B97F4A7C15) & MASK64
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            z ^= z >> 31
            v = float(np.float32(lo + (hi - lo) * ((z >> 40) / 16777216.0)))
            assert v == wv, (name, i, v, wv)
    # wrap-around of (fnv + i) mod 2^64 on a large tensor
    big = det("conv5_block3_3/kernel", (1, 1, 512, 2048), -1, 1)
    assert big.shape == (1, 1, 512, 2048) and np.isfinite(big).all()
    assert -1.0 <= big.min() and big.max() < 1.0
    specs = conv_specs("v1")
    assert sum(kh * kw * cin * cout for _, kh, kw, cin, cout, _ in specs) == 23_454_912
    if verbose:
        print("generator self-test: OK (fnv1a64 + det test vectors, scalar == vectorised)")


if __name__ == "__main__":
    self_test()

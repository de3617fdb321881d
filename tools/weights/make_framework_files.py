#!/usr/bin/env python3
"""Weight files written by the real frameworks, filled with the deterministic
weights of `resnet50::init::deterministic` (generator: tools/golden/detgen.py,
models: tools/golden/make_golden.py — imported, not copied).

Writes into OUT_DIR (default: a new temp dir, printed):
  keras3_top.weights.h5      Keras 3 `model.save_weights` (10 classes)
  keras3_notop.weights.h5    Keras 3 `model.save_weights`, include_top=False
  keras_full_top.h5          Keras 3 legacy `model.save("x.h5")` (layout under /model_weights)
  keras3_top.keras           Keras 3 `model.save("x.keras")` (a zip around model.weights.h5)
  keras_old_notop.h5         h5py: the 2016 Keras file's layout (old names, flat `conv1_W:0`,
                             fixed-length strings, `running_std`), written the way Keras 1 did
  torchvision_top.safetensors  torchvision `resnet50().state_dict()` (10 classes), safetensors
                             container written here (the `safetensors` wheel is not in the venv)
  torchvision_top.pth        the same state dict through `torch.save`
  torchvision_top_legacy.pth the same in torch's legacy (pre-1.6) format
  torchvision_top.onnx       the same model, eval mode, input [1,3,224,224] float32, through
                             `torch.onnx.export(dynamo=False, opset_version=17)` (TorchScript
                             exporter, constant folding on: BN folded into the Conv biases);
                             graph input "input", output "logits"
  torchvision_top_dynamo.onnx  the same through `torch.onnx.export(dynamo=True)` (torch.export
                             exporter, its default opset), weights inside the file
                             (`external_data=False`)
  torchvision_notop.onnx     the same with `fc = Identity()`, as torchvision_top.onnx: output
                             "features" [1,2048], after the global average pool and flatten
  (the three .onnx files only where `import onnx` works: the exporter needs onnx, and the
  dynamo one onnxscript and onnx_ir, pinned in tools/golden/requirements.txt since stop 50; a
  venv built before needs `.venv-golden/bin/pip install --no-deps onnx==1.23.2 onnxscript==0.7.2
  onnx-ir==1.1.0`. Without onnx a one-line note says they were skipped)

Then run the Rust check:
  RESNET50_FRAMEWORK_FILES=OUT_DIR cargo test --release --test weights_frameworks

Usage (from the repository root, venv of tools/golden/README.md):
  .venv-golden/bin/python tools/weights/make_framework_files.py [OUT_DIR]
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))

import make_golden  # noqa: E402  (sets the Keras backend, imports detgen)
import detgen  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

CLASSES = 10


def case(include_top: bool) -> dict:
    return dict(name="files", variant="v1", batch=1, height=224, width=224, include_top=include_top,
                pooling="none", classes=CLASSES, classifier_activation="softmax")


def keras_files(out: Path) -> None:
    for top in (True, False):
        m = make_golden.keras_model(case(top))
        m.save_weights(str(out / f"keras3_{'top' if top else 'notop'}.weights.h5"))
    m = make_golden.keras_model(case(True))
    m.save(str(out / "keras_full_top.h5"))
    m.save(str(out / "keras3_top.keras"))


def old_name(name: str) -> tuple[str, str]:
    """Canonical conv name -> (conv layer, bn layer) of the 2016 file."""
    if name == "conv1":
        return "conv1", "bn_conv1"
    stage, rest = name[4], name.split("_block")[1]
    block, idx = int(rest.split("_")[0]), rest.split("_")[1]
    letter = "abcdef"[block - 1]
    branch = {"0": "branch1", "1": "branch2a", "2": "branch2b", "3": "branch2c"}[idx]
    return f"res{stage}{letter}_{branch}", f"bn{stage}{letter}_{branch}"


def keras_old_file(out: Path) -> None:
    import h5py

    with h5py.File(out / "keras_old_notop.h5", "w") as f:
        layers = ["input_1", "zeropadding2d_1"]
        for name, kh, kw, cin, cout, _ in detgen.conv_specs("v1"):
            t = detgen.conv_tensors(name, kh, kw, cin, cout, with_bias=True)
            conv, bn = old_name(name)
            g = f.create_group(conv)
            g.create_dataset(f"{conv}_W:0", data=t["kernel"])
            g.create_dataset(f"{conv}_b:0", data=t["bias"])
            g.attrs["weight_names"] = np.array([f"{conv}_W:0".encode(), f"{conv}_b:0".encode()])
            g = f.create_group(bn)
            names = []
            for kind, suffix in (("gamma", "gamma"), ("beta", "beta"), ("mean", "running_mean"),
                                 ("var", "running_std")):
                g.create_dataset(f"{bn}_{suffix}:0", data=t[kind])
                names.append(f"{bn}_{suffix}:0".encode())
            g.attrs["weight_names"] = np.array(names)  # fixed-length bytes, like h5py 2.x
            layers += [conv, bn, f"activation_{len(layers)}"]
        for empty in ("input_1", "zeropadding2d_1") + tuple(l for l in layers if l.startswith("activation_")):
            g = f.create_group(empty)
            g.attrs["weight_names"] = np.array([], dtype=np.float64)
        f.attrs["layer_names"] = np.array([l.encode() for l in layers])


def write_safetensors(path: Path, tensors: dict) -> None:
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def torch_file(out: Path) -> None:
    m = make_golden.torch_model(case(True) | {"variant": "v1.5"})
    write_safetensors(out / "torchvision_top.safetensors", {k: v.numpy() for k, v in m.state_dict().items()})
    torch.save(m.state_dict(), out / "torchvision_top.pth")
    torch.save(m.state_dict(), out / "torchvision_top_legacy.pth", _use_new_zipfile_serialization=False)


def onnx_files(out: Path) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        print("onnx not importable: torchvision_*.onnx skipped")
        return
    x = torch.from_numpy(np.ascontiguousarray(detgen.input_tensor(1, 224, 224).transpose(0, 3, 1, 2)))  # NCHW
    m = make_golden.torch_model(case(True) | {"variant": "v1.5"}).eval()
    with torch.no_grad():
        torch.onnx.export(m, x, out / "torchvision_top.onnx", dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"])
        torch.onnx.export(m, (x,), out / "torchvision_top_dynamo.onnx", dynamo=True, external_data=False)
        m.fc = torch.nn.Identity()
        torch.onnx.export(m, x, out / "torchvision_notop.onnx", dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["features"])


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="resnet50-framework-files-"))
    out.mkdir(parents=True, exist_ok=True)
    keras_old_file(out)
    torch_file(out)
    onnx_files(out)
    keras_files(out)
    for p in sorted(out.iterdir()):
        print(f"{p.stat().st_size:>12}  {p}")
    print(f"RESNET50_FRAMEWORK_FILES={out}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()

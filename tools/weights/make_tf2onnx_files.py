#!/usr/bin/env python3
"""Keras' ResNet50 (v1) converted to ONNX by tf2onnx — the usual way a Keras model
reaches ONNX Runtime — filled with the deterministic weights.

Reads OUT_DIR/keras_full_top.h5, written by make_framework_files.py (Keras 3, the
deterministic weights, 10 classes), loads it by layer name into tf.keras' own
`ResNet50` (Keras 2), and writes into OUT_DIR:
  keras_tf2onnx.onnx        tf2onnx.convert.from_keras, opset 13, NHWC input "input" [1,224,224,3]
  keras_tf2onnx_notop.onnx  the same with include_top=False (output: NHWC feature maps)
Each is run in onnxruntime against the Keras model (max abs difference printed).

tf2onnx does not support Keras 3, so this needs its own venv (not .venv-golden):
  python3.11 -m venv /tmp/tf2onnxvenv
  /tmp/tf2onnxvenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx==1.16.2 \
      onnxruntime==1.26.0 numpy==1.26.4 protobuf==3.20.3 h5py
  /tmp/tf2onnxvenv/bin/python tools/weights/make_tf2onnx_files.py OUT_DIR
then `RESNET50_FRAMEWORK_FILES=OUT_DIR cargo test --release --test weights_frameworks`.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    h5 = out / "keras_full_top.h5"
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype(np.float32)
    for top, name in ((True, "keras_tf2onnx"), (False, "keras_tf2onnx_notop")):
        tf.keras.backend.clear_session()
        if top:
            model = tf.keras.applications.ResNet50(weights=None, classes=10)
        else:
            model = tf.keras.applications.ResNet50(weights=None, include_top=False)
        model.load_weights(str(h5), by_name=True)
        want = model(x, training=False).numpy()
        path = out / f"{name}.onnx"
        spec = (tf.TensorSpec((1, 224, 224, 3), tf.float32, name="input"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": x})[0]
        print(f"{path}: onnxruntime vs Keras max abs diff {np.abs(got - want).max():.2e} "
              f"(largest value {np.abs(want).max():.3g})")


if __name__ == "__main__":
    main()

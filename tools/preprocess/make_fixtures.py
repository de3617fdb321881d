#!/usr/bin/env python3
"""Preprocessing fixtures for tests/preprocess.rs, made by the real libraries.

Writes small deterministic images to tests/fixtures/images/ and, for each
preprocessing case, the tensor the reference produces to
tests/fixtures/preprocess/<case>.npy (HWC float32, the layout resnet50 feeds
the model), plus manifest.json describing every case.

References:
  * Keras: keras.utils.load_img(path, target_size=(h, w), interpolation=...)
    -> keras.utils.img_to_array -> keras.applications.resnet50.preprocess_input
    (caffe mode). Output HWC BGR.
  * torchvision: torchvision.transforms._presets.ImageClassification(
    crop_size, resize_size) -- what ResNet50_Weights.IMAGENET1K_V1/V2.transforms()
    return -- applied to a PIL image from Image.open(path).convert("RGB"); the
    classic Compose([Resize, CenterCrop, ToTensor, Normalize]) is checked to give
    the same tensor. CHW is transposed to HWC.
    The tensor path (torchvision.io.decode_image + the same transforms on a
    uint8 tensor) is also run and its distance to the PIL path recorded in the
    manifest ("tensor_path_max_abs_diff"): it is *not* what we match.

Run from the repository root with a Python that has keras, torch, torchvision,
pillow and numpy (e.g. .venv-golden):
    .venv-golden/bin/python tools/preprocess/make_fixtures.py
(load_img and preprocess_input on numpy arrays do not depend on the Keras
backend; the default TensorFlow backend is what was used.)
"""
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
IMG_DIR = ROOT / "tests" / "fixtures" / "images"
OUT_DIR = ROOT / "tests" / "fixtures" / "preprocess"


def make_images():
    """Deterministic test images: gradients + seeded noise, odd sizes."""
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240606)
    imgs = {}

    # 61x47 RGB: three different gradients + noise (aspect ratio not 1).
    h, w = 47, 61
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 127.5 + 127.5 * np.sin(x / 5.0 + y / 7.0)
    rgb = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    imgs["rgb_61x47.png"] = Image.fromarray(rgb, "RGB")

    # 50x70 gray (portrait), checkerboard-ish + noise.
    h, w = 70, 50
    y, x = np.mgrid[0:h, 0:w]
    gray = ((x // 5 + y // 7) % 2) * 160 + 40 + rng.integers(0, 40, (h, w))
    imgs["gray_50x70.png"] = Image.fromarray(gray.astype(np.uint8), "L")

    # 80x33 RGBA with varying alpha (PIL's convert("RGB") drops alpha).
    h, w = 33, 80
    rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    rgba[..., 3] = np.linspace(0, 255, w).astype(np.uint8)[None, :]
    imgs["rgba_80x33.png"] = Image.fromarray(rgba, "RGBA")

    # 96x72 RGB JPEG (4:2:0, quality 90): decoded by libjpeg-turbo in PIL and by
    # zune-jpeg in Rust, so pixels may differ slightly.
    h, w = 72, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    jp = np.stack([255 * x / (w - 1), 128 + 100 * np.cos(y / 6.0), 255 * (1 - y / (h - 1))], -1)
    jp = np.clip(np.rint(jp + rng.normal(0, 8, (h, w, 3))), 0, 255).astype(np.uint8)
    imgs["rgb_96x72.jpg"] = Image.fromarray(jp, "RGB")

    for name, im in imgs.items():
        p = IMG_DIR / name
        if name.endswith(".jpg"):
            im.save(p, quality=90, subsampling=2)
        else:
            im.save(p, optimize=True)
    return sorted(imgs)


def procedural_image(w, h):
    """RGB image from integer arithmetic, rebuilt identically in tests/preprocess.rs."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    chans = [((x * x) // 7 + y * 3 + ((x * 13) ^ (y * 29)) + c * 85 + (x * y) // 11) % 256 for c in range(3)]
    return Image.fromarray(np.stack(chans, -1).astype(np.uint8), "RGB")


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def keras_case(path, h, w, interp):
    from keras.applications.resnet50 import preprocess_input
    from keras.utils import img_to_array, load_img

    img = load_img(str(path), target_size=(h, w), interpolation=interp)
    x = img_to_array(img)  # float32 HWC RGB
    x = preprocess_input(x)  # caffe: BGR, minus means
    assert x.dtype == np.float32 and x.shape == (h, w, 3)
    return x


def torch_case(path, resize, crop):
    import torch
    from torchvision import transforms as T
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms._presets import ImageClassification

    preset = ImageClassification(crop_size=crop, resize_size=resize)
    pil = Image.open(path).convert("RGB")
    with torch.no_grad():
        y = preset(pil)
        classic = T.Compose(
            [T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), T.Normalize(preset.mean, preset.std)]
        )(pil)
        assert torch.equal(y, classic), "preset and classic Compose disagree"
        t = decode_image(str(path), mode=ImageReadMode.RGB)
        y_tensor = preset(t)
    x = y.permute(1, 2, 0).contiguous().numpy().astype(np.float32)
    xt = y_tensor.permute(1, 2, 0).contiguous().numpy().astype(np.float32)
    return x, float(np.abs(x - xt).max())


def main():
    import keras
    import PIL
    import torch
    import torchvision

    names = make_images()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cases = []

    def add(case, arr, **meta):
        f = OUT_DIR / f"{case}.npy"
        np.save(f, np.ascontiguousarray(arr, dtype="<f4"))
        assert f.stat().st_size < 1 << 20, f"{f} is over 1 MB"
        cases.append({"case": case, "file": f.name, "shape": list(arr.shape), **meta})

    # Keras: the default 224x224 nearest on one image; small up/down-scaling
    # targets (aspect changes) for every image and both interpolations.
    for img in names:
        stem = img.rsplit(".", 1)[0]
        p = IMG_DIR / img
        targets = [(37, 29), (97, 83), (20, 24)]
        if img == "rgb_61x47.png":
            targets.append((224, 224))
        for h, w in targets:
            for interp in ("nearest", "bilinear"):
                add(f"keras_{stem}_{h}x{w}_{interp}", keras_case(p, h, w, interp),
                    image=img, pipeline="keras", height=h, width=w, interp=interp)

    # torchvision: IMAGENET1K_V1 (256/224) and V2 (232/224) on one image each
    # (upscaling), then downscaling resizes with small crops for every image.
    for img in names:
        stem = img.rsplit(".", 1)[0]
        p = IMG_DIR / img
        sizes = [(40, 32), (29, 29), (64, 70)]
        if img == "rgb_61x47.png":
            sizes.append((256, 224))
        if img == "gray_50x70.png":
            sizes.append((232, 224))
        for resize, crop in sizes:
            x, dt = torch_case(p, resize, crop)
            add(f"torch_{stem}_r{resize}_c{crop}", x, image=img, pipeline="torch", resize=resize,
                crop=crop, tensor_path_max_abs_diff=dt)

    # PIL resize sweep: a 13x9 RGB noise image resized with NEAREST and BILINEAR
    # to every size 1..=16 x 1..=12, concatenated as uint8 (filter-major, then
    # width, then height, each image HWC). Exercises PIL's edge cases (exact
    # integer source coordinates, 1-pixel outputs, 3x downscales, upscales).
    src = Image.fromarray(np.random.default_rng(7).integers(0, 256, (9, 13, 3)).astype(np.uint8), "RGB")
    src.save(IMG_DIR / "noise_13x9.png")
    parts = []
    for resample in (Image.NEAREST, Image.BILINEAR):
        for w in range(1, 17):
            for h in range(1, 13):
                parts.append(np.asarray(src.resize((w, h), resample), dtype=np.uint8).reshape(-1))
    np.save(OUT_DIR / "pil_resize_sweep_13x9.npy", np.concatenate(parts))

    # Realistic photo sizes, checked by hash (a 224x224 tensor per case would be
    # too big to commit): a procedural image that Rust rebuilds bit for bit
    # (procedural_image below), resized as Keras does (PIL Image.resize) and as
    # torchvision does (F.resize + F.center_crop on the PIL image); the FNV-1a
    # 64-bit hash of the resulting 8-bit RGB bytes is stored.
    import torchvision.transforms.functional as TF

    realistic = []
    for W, H in [(640, 480), (480, 640), (500, 375), (1023, 767)]:
        src = procedural_image(W, H)
        for interp, resample in (("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR)):
            for w, h in [(224, 224), (299, 199)]:
                out = src.resize((w, h), resample)
                realistic.append({"width": W, "height": H, "op": f"keras-{interp}", "out": [h, w],
                                  "fnv1a64": fnv1a64(np.asarray(out).tobytes())})
        for resize, crop in [(256, 224), (232, 224)]:
            out = TF.center_crop(TF.resize(src, resize), crop)
            realistic.append({"width": W, "height": H, "op": "torch", "resize": resize, "crop": crop,
                              "fnv1a64": fnv1a64(np.asarray(out).tobytes())})

    manifest = {
        "generator": "tools/preprocess/make_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
        "layout": "HWC float32; keras: BGR caffe; torch: RGB normalized",
        "cases": cases,
        "pil_realistic": realistic,
        "pil_resize_sweep": {"file": "pil_resize_sweep_13x9.npy", "image": "noise_13x9.png", "dtype": "uint8",
                             "filters": ["nearest", "bilinear"], "widths": [1, 16], "heights": [1, 12],
                             "order": "filter, width, height; each image HWC"},
    }
    (OUT_DIR / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(cases)} cases, {len(names)} images")
    print(json.dumps(manifest["versions"]))
    for c in cases:
        if c["pipeline"] == "torch":
            print(f"  {c['case']}: tensor-path max|d| vs PIL path = {c['tensor_path_max_abs_diff']:.4g}")


if __name__ == "__main__":
    main()

//! Preprocessing against the real libraries: tensors made by Keras
//! (`load_img` + `preprocess_input`) and torchvision (IMAGENET1K transforms on
//! PIL images) with `tools/preprocess/make_fixtures.py`, from the images in
//! `tests/fixtures/images/`.
//!
//! Tolerances:
//! * Lossless images (PNG), every pipeline: max |Δ| ≤ 1e-4. Our resamplers
//!   reproduce PIL's NEAREST and BILINEAR (fixed-point weights, 8-bit passes)
//!   exactly and the float steps are the same f32 operations, so the measured
//!   difference is 0; 1e-4 only leaves room for a compiler contracting
//!   `(x/255 − m)/s` differently.
//! * JPEG: PIL decodes with libjpeg-turbo, the `image` crate with zune-jpeg;
//!   IDCT and chroma upsampling round differently, so decoded pixels may differ
//!   by a few levels. Bound: 8 levels of 0–255 (8.0 in Keras units, 8/255/0.224
//!   ≈ 0.14 in torchvision units), mean |Δ| ≤ 1 level. Measured values are
//!   printed by the test (`cargo test --test preprocess -- --nocapture`).

use std::path::{Path, PathBuf};

use resnet50::preprocess::{self, Interp, Preprocessing};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Case {
    name: String,
    image: String,
    pre: Preprocessing,
    shape: Vec<usize>,
    file: String,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("preprocess/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let u = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap() as usize;
    m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let pre = match c["pipeline"].as_str().unwrap() {
                "keras" => Preprocessing::Keras {
                    height: u(c, "height"),
                    width: u(c, "width"),
                    interp: c["interp"].as_str().unwrap().parse().unwrap(),
                },
                "torch" => Preprocessing::Torch { resize: u(c, "resize"), height: u(c, "crop"), width: u(c, "crop") },
                p => panic!("unknown pipeline {p}"),
            };
            Case {
                name: c["case"].as_str().unwrap().into(),
                image: c["image"].as_str().unwrap().into(),
                pre,
                shape: c["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
                file: c["file"].as_str().unwrap().into(),
            }
        })
        .collect()
}

/// One level of 0–255 in the pipeline's output units.
fn level(pre: &Preprocessing) -> f32 {
    match pre {
        Preprocessing::Keras { .. } => 1.0,
        Preprocessing::Torch { .. } => 1.0 / 255.0 / 0.224,
    }
}

#[test]
fn matches_keras_and_torchvision() {
    let cases = cases();
    assert!(cases.len() >= 30, "manifest lists {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = c.pre.load(&fixtures().join("images").join(&c.image)).unwrap();
        let (shape, want) = resnet50::npy::read_f32(&fixtures().join("preprocess").join(&c.file)).unwrap();
        assert_eq!(shape, c.shape, "{}", c.name);
        let (h, w) = c.pre.output_hw();
        assert_eq!(shape, vec![h, w, 3], "{}", c.name);
        assert_eq!(got.len(), want.len(), "{}", c.name);
        let diffs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
        let max = diffs.iter().copied().fold(0.0f32, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let lossy = c.image.ends_with(".jpg");
        let (max_ok, mean_ok) = if lossy { (8.0 * level(&c.pre), level(&c.pre)) } else { (1e-4, 1e-4) };
        println!("{:40} max|Δ| {max:.3e} ({:.2} levels)  mean|Δ| {mean:.3e}", c.name, max / level(&c.pre));
        if max > max_ok || mean > mean_ok {
            failures.push(format!("{}: max|Δ| {max} (bound {max_ok}), mean {mean} (bound {mean_ok})", c.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn resamplers_equal_pil_on_a_size_sweep() {
    let src = preprocess::open_rgb(&fixtures().join("images/noise_13x9.png")).unwrap();
    let bytes = std::fs::read(fixtures().join("preprocess/pil_resize_sweep_13x9.npy")).unwrap();
    let want: Vec<u8> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    let mut at = 0;
    let mut bad = Vec::new();
    for interp in [Interp::Nearest, Interp::Bilinear] {
        for w in 1..=16u32 {
            for h in 1..=12u32 {
                let got = preprocess::resize(&src, w, h, interp);
                let n = (w * h * 3) as usize;
                if got.as_raw()[..] != want[at..at + n] {
                    bad.push(format!("{interp:?} {w}x{h}"));
                }
                at += n;
            }
        }
    }
    assert_eq!(at, want.len());
    assert!(bad.is_empty(), "differ from PIL: {bad:?}");
}

#[test]
fn in_memory_api_equals_file_api() {
    let path = fixtures().join("images/rgb_61x47.png");
    let img = preprocess::open_rgb(&path).unwrap();
    assert_eq!(img.dimensions(), (61, 47));
    assert_eq!(
        preprocess::keras_from_image(&img, 40, 30, Interp::Bilinear),
        preprocess::load_keras(&path, 40, 30, Interp::Bilinear).unwrap()
    );
    assert_eq!(preprocess::torch_from_image(&img, 256, 224), preprocess::load_torch(&path, 256, 224).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(preprocess::decode_rgb(&bytes, "mem.png").unwrap(), img);
}

#[test]
fn corrupt_and_unsupported_files_are_errors_naming_the_file() {
    // Removed when the test ends (also when it fails).
    let tmp = tempfile::Builder::new().prefix("resnet50-pre-").tempdir().unwrap();
    let dir = tmp.path();
    // Truncated PNG.
    let png = std::fs::read(fixtures().join("images/rgb_61x47.png")).unwrap();
    let trunc = dir.join("truncated.png");
    std::fs::write(&trunc, &png[..png.len() / 2]).unwrap();
    // Not an image at all, with and without an image extension.
    let text = dir.join("notes.png");
    std::fs::write(&text, b"hello, this is not an image").unwrap();
    let plain = dir.join("notes");
    std::fs::write(&plain, b"hello, this is not an image").unwrap();
    // Missing file.
    let missing = dir.join("missing.jpg");
    for p in [&trunc, &text, &missing] {
        let e = preprocess::load_keras(p, 224, 224, Interp::Nearest).unwrap_err().to_string();
        assert!(e.contains(p.file_name().unwrap().to_str().unwrap()), "{e}");
    }
    let e = preprocess::open_rgb(&plain).unwrap_err().to_string();
    assert!(e.contains("not a recognised image format"), "{e}");
    let e = preprocess::open_rgb(&text).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains("notes.png"), "{e}");
    let e = preprocess::open_rgb(&trunc).unwrap_err().to_string();
    assert!(e.contains("corrupt") || e.contains("truncated") || e.contains("decode"), "{e}");
    // A directory.
    assert!(preprocess::open_rgb(dir).is_err());
}

#[test]
fn sixteen_bit_and_alpha_follow_pil_convert() {
    use resnet50::preprocess::image::{DynamicImage, ImageBuffer, Rgba};
    let img16: ImageBuffer<image16::Rgb16, Vec<u16>> =
        ImageBuffer::from_fn(2, 1, |x, _| image16::Rgb16::from([0x1234 * (x as u16 + 1), 0xff80, 0x00ff]));
    let rgb = preprocess::to_rgb_like_pil(DynamicImage::ImageRgb16(img16));
    assert_eq!(rgb.get_pixel(0, 0).0, [0x12, 0xff, 0x00]);
    assert_eq!(rgb.get_pixel(1, 0).0, [0x24, 0xff, 0x00]);
    let rgba = ImageBuffer::from_pixel(1, 1, Rgba([10u8, 20, 30, 0]));
    assert_eq!(preprocess::to_rgb_like_pil(DynamicImage::ImageRgba8(rgba)).get_pixel(0, 0).0, [10, 20, 30]);
}

mod image16 {
    pub type Rgb16 = resnet50::preprocess::image::Rgb<u16>;
}

/// `procedural_image` of `tools/preprocess/make_fixtures.py`.
fn procedural_image(w: u32, h: u32) -> resnet50::preprocess::image::RgbImage {
    resnet50::preprocess::image::RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let ch = |c: i64| (((x * x) / 7 + y * 3 + ((x * 13) ^ (y * 29)) + c * 85 + (x * y) / 11) % 256) as u8;
        resnet50::preprocess::image::Rgb([ch(0), ch(1), ch(2)])
    })
}

fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[test]
fn realistic_photo_sizes_resize_and_crop_like_pil_and_torchvision() {
    let text = std::fs::read_to_string(fixtures().join("preprocess/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = m["pil_realistic"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut bad = Vec::new();
    for c in cases {
        let u = |k: &str| c[k].as_u64().unwrap() as u32;
        let src = procedural_image(u("width"), u("height"));
        let op = c["op"].as_str().unwrap();
        let out = match op {
            "torch" => {
                let r = preprocess::resize_shorter_side(&src, u("resize") as usize, Interp::Bilinear);
                let two_steps = preprocess::center_crop(&r, u("crop"), u("crop"));
                // The pipeline's own path computes only the crop: the same bytes.
                let crop_only =
                    preprocess::resize_shorter_side_and_crop(&src, u("resize") as usize, u("crop"), u("crop"));
                if crop_only != two_steps {
                    bad.push(format!("crop-only path differs from resize + crop: {c}"));
                }
                two_steps
            }
            _ => {
                let hw = c["out"].as_array().unwrap();
                let (h, w) = (hw[0].as_u64().unwrap() as u32, hw[1].as_u64().unwrap() as u32);
                let interp = if op == "keras-nearest" { Interp::Nearest } else { Interp::Bilinear };
                preprocess::resize(&src, w, h, interp)
            }
        };
        if fnv1a64(out.as_raw()) != c["fnv1a64"].as_str().unwrap() {
            bad.push(c.to_string());
        }
    }
    assert!(bad.is_empty(), "differ from PIL/torchvision: {bad:#?}");
}

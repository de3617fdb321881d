//! `resnet50 classify` and `resnet50 preprocess` on images made here with the
//! `image` crate.

use std::path::Path;
use std::process::Command;

use resnet50::preprocess::image::{Rgb, RgbImage};
use resnet50::preprocess::{Interp, Preprocessing};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resnet50"))
}

/// A directory for one test's files, removed when the test ends (also when it
/// fails).
fn tmp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("resnet50-cli-images-{name}-")).tempdir().unwrap()
}

fn make_image(path: &Path, w: u32, h: u32, seed: u32) {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(31).wrapping_add(y.wrapping_mul(17)).wrapping_add(seed.wrapping_mul(101));
        Rgb([(v % 251) as u8, ((x * 255) / w.max(1)) as u8, ((y * 255) / h.max(1)) as u8])
    });
    img.save(path).unwrap();
}

#[test]
fn preprocess_writes_what_the_library_computes() {
    let tmp = tmp_dir("pre");
    let d = tmp.path();
    let img = d.join("a.jpg");
    make_image(&img, 90, 70, 1);
    let out = d.join("x.npy");
    let run = |extra: &[&str]| {
        let o = bin().arg("preprocess").arg(&img).arg("--output").arg(&out).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        resnet50::npy::read_f32(&out).unwrap()
    };
    let (shape, x) = run(&[]);
    assert_eq!(shape, vec![1, 224, 224, 3]);
    assert_eq!(x, Preprocessing::KERAS.load(&img).unwrap());
    let (shape, x) = run(&["--preprocess", "torch", "--size", "64x48"]);
    assert_eq!(shape, vec![1, 64, 48, 3]);
    assert_eq!(x, Preprocessing::Torch { resize: 256, height: 64, width: 48 }.load(&img).unwrap());
    let (_, x) = run(&["--preprocess", "torch-v2"]);
    assert_eq!(x, Preprocessing::TORCH_V2.load(&img).unwrap());
    let (shape, x) = run(&["--size", "40x30", "--interpolation", "bilinear"]);
    assert_eq!(shape, vec![1, 40, 30, 3]);
    assert_eq!(x, resnet50::preprocess::load_keras(&img, 40, 30, Interp::Bilinear).unwrap());
    // Bad flags: one clear line, non-zero exit.
    for bad in
        [&["--preprocess", "caffe2"][..], &["--size", "0x5"], &["--preprocess", "torch", "--interpolation", "nearest"]]
    {
        let o = bin().arg("preprocess").arg(&img).arg("--output").arg(&out).args(bad).output().unwrap();
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: "));
    }
}

#[test]
fn classify_a_directory_skips_corrupt_files_and_fails_at_the_end() {
    let tmp = tmp_dir("cls");
    let d = tmp.path();
    make_image(&d.join("b.png"), 50, 40, 2);
    make_image(&d.join("a.jpg"), 33, 61, 3);
    make_image(&d.join("c.bmp"), 20, 20, 4);
    std::fs::write(d.join("broken.jpg"), b"\xff\xd8\xff\xe0 definitely not a jpeg").unwrap();
    std::fs::write(d.join("notes.txt"), b"ignored: not an image extension").unwrap();
    let o = bin()
        .arg("classify")
        .arg(d)
        .args(["--size", "32x32", "--top", "3", "--json", "--batch", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(o.stdout).unwrap();
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(!o.status.success(), "a corrupt file must give a non-zero exit");
    assert!(stderr.contains("MEANINGLESS"), "{stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert!(stderr.contains("classified 3 image(s)") && stderr.contains("1 failed"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let ok: Vec<&serde_json::Value> = lines.iter().filter(|v| v.get("predictions").is_some()).collect();
    assert_eq!(ok.len(), 3);
    // Sorted by name: a.jpg, b.png, c.bmp.
    let names: Vec<&str> = ok.iter().map(|v| v["image"].as_str().unwrap()).collect();
    assert!(names[0].ends_with("a.jpg") && names[1].ends_with("b.png") && names[2].ends_with("c.bmp"), "{names:?}");
    for v in &ok {
        let p = v["predictions"].as_array().unwrap();
        assert_eq!(p.len(), 3);
        let scores: Vec<f64> = p.iter().map(|q| q["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        let i = p[0]["index"].as_u64().unwrap() as usize;
        let c = resnet50::imagenet::class(i).unwrap();
        assert_eq!(p[0]["wnid"], c.wnid.as_str());
        assert_eq!(p[0]["name"], c.name.as_str());
        assert_eq!(v["random_weights"], true);
    }
    // The scores are the library's: preprocess + predict with the same seeded model.
    let x = Preprocessing::Keras { height: 32, width: 32, interp: Interp::Nearest }.load(&d.join("a.jpg")).unwrap();
    let model = resnet50::ResNet50::new().input_shape(32, 32, 3).build().unwrap();
    let y = model.predict(&x).unwrap();
    let want = resnet50::imagenet::decode_predictions(&y, 1000, 3).unwrap();
    let got = ok[0]["predictions"].as_array().unwrap();
    for (g, w) in got.iter().zip(&want[0]) {
        assert_eq!(g["index"].as_u64().unwrap() as usize, w.index);
        assert!((g["score"].as_f64().unwrap() - f64::from(w.score)).abs() <= 1e-5 * f64::from(w.score.abs()).max(1e-3));
    }
}

#[test]
fn classify_text_output_and_flag_errors() {
    let tmp = tmp_dir("txt");
    let d = tmp.path();
    let img = d.join("one.png");
    make_image(&img, 40, 40, 5);
    let o = bin().arg("classify").arg(&img).args(["--size", "32x32", "--top", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("one.png") && out.contains("  1. ") && out.contains("  2. ") && !out.contains("  3. "),
        "{out}"
    );
    let o = bin().arg("classify").arg(&img).arg("--no-top").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-top"));
    let o = bin().arg("classify").arg(d.join("missing.png")).args(["--size", "32x32"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.png"));
}

#[test]
fn help_explains_every_flag_with_an_example() {
    for (cmd, flags) in [
        (
            "classify",
            &["--weights", "--top", "--json", "--preprocess", "--size", "--batch", "--resize", "--interpolation"][..],
        ),
        ("preprocess", &["--output", "--preprocess", "--size", "--resize", "--interpolation"][..]),
    ] {
        let o = bin().args([cmd, "--help"]).output().unwrap();
        assert!(o.status.success());
        let h = String::from_utf8(o.stdout).unwrap();
        assert!(h.contains("Example"), "{h}");
        for f in flags {
            assert!(h.contains(f), "{cmd} --help lacks {f}");
        }
    }
}

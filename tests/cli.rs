//! The `resnet50` binary as scripts use it.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resnet50"))
}

/// A directory for one test's files, removed when the test ends (also when it
/// fails).
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("resnet50-cli-").tempdir().unwrap()
}

#[test]
fn summary_prints_keras_totals() {
    let out = bin().args(["summary"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("Total params: 25,636,712"), "{s}");
    assert!(s.contains("Non-trainable params: 53,120"));
    let out = bin().args(["summary", "--no-top"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("Total params: 23,587,712"));
    let out = bin().args(["summary", "--variant", "v1.5"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("Total params: 25,557,032"));
}

#[test]
fn infer_round_trips_npy_and_matches_the_library() {
    let dir = tmp();
    let (x_path, y_path) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let x = resnet50::init::deterministic_input(2, 40, 36);
    resnet50::npy::write_f32(&x_path, &[2, 40, 36, 3], &x).unwrap();
    let out = bin()
        .args(["infer", "--input"])
        .arg(&x_path)
        .arg("--output")
        .arg(&y_path)
        .args(["--no-top", "--pooling", "avg", "--seed", "7"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (shape, y) = resnet50::npy::read_f32(&y_path).unwrap();
    assert_eq!(shape, vec![2, 2048]);
    let model = resnet50::ResNet50::new()
        .include_top(false)
        .pooling(resnet50::Pooling::Avg)
        .input_shape(40, 36, 3)
        .batch(2)
        .weights(resnet50::WeightsSource::Random { seed: 7 })
        .build()
        .unwrap();
    assert_eq!(model.predict(&x).unwrap(), y);
}

/// `--layout nchw`: the arrays a PyTorch or ONNX Runtime pipeline has, in
/// and (for feature maps) out; the same numbers as the NHWC run.
#[test]
fn infer_layout_nchw_transposes_input_and_feature_maps() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);
    let (n, h, w) = (2, 40, 36);
    let x = resnet50::init::deterministic_input(n, h, w);
    resnet50::npy::write_f32(&p("x.npy"), &[n, h, w, 3], &x).unwrap();
    let mut x_nchw = vec![0.0; x.len()];
    for b in 0..n {
        for i in 0..h * w {
            for c in 0..3 {
                x_nchw[(b * 3 + c) * h * w + i] = x[(b * h * w + i) * 3 + c];
            }
        }
    }
    resnet50::npy::write_f32(&p("x_nchw.npy"), &[n, 3, h, w], &x_nchw).unwrap();
    let run = |input: &str, output: &str, extra: &[&str]| {
        let out = bin()
            .args(["infer", "--input"])
            .arg(p(input))
            .arg("--output")
            .arg(p(output))
            .args(["--seed", "3"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        resnet50::npy::read_f32(&p(output)).unwrap()
    };
    // Feature maps: NHWC [2, 2, 2, 2048] one way, NCHW [2, 2048, 2, 2] the other.
    let (s1, y1) = run("x.npy", "f.npy", &["--no-top"]);
    let (s2, y2) = run("x_nchw.npy", "f_nchw.npy", &["--no-top", "--layout", "nchw"]);
    assert_eq!((s1.as_slice(), s2.as_slice()), (&[2, 2, 2, 2048][..], &[2, 2048, 2, 2][..]));
    for b in 0..2 {
        for i in 0..4 {
            for c in 0..2048 {
                assert_eq!(y2[(b * 2048 + c) * 4 + i], y1[(b * 4 + i) * 2048 + c]);
            }
        }
    }
    // Class scores are [N, classes] either way.
    let (s1, y1) = run("x.npy", "c.npy", &["--classes", "7"]);
    let (s2, y2) = run("x_nchw.npy", "c_nchw.npy", &["--classes", "7", "--layout", "nchw"]);
    assert_eq!((s1, y1), (s2, y2));
    // An NCHW array without the flag is named as such.
    let out = bin().args(["infer", "--input"]).arg(p("x_nchw.npy")).args(["--output", "/dev/null"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("looks like NCHW") && err.contains("--layout nchw"), "{err}");
}

#[test]
fn bad_input_gives_one_clear_line_and_nonzero_exit() {
    let dir = tmp();
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"not an npy file").unwrap();
    let out = bin().args(["infer", "--input"]).arg(&bad).args(["--output", "/dev/null"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.npy") && err.contains("not a valid .npy"), "{err}");

    let wrong = dir.path().join("wrong.npy");
    resnet50::npy::write_f32(&wrong, &[1, 40, 40, 4], &vec![0.0; 6400]).unwrap();
    let out = bin().args(["infer", "--input"]).arg(&wrong).args(["--output", "/dev/null"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("3 channels, got 4"));

    for args in [
        &["summary", "--variant", "v3"][..],
        &["summary", "--pooling", "mean"],
        &["summary", "--input-size", "12"],
        &["summary", "--threads", "0"],
        &["bench", "--iters", "0"],
        &["bench", "--baseline-threads", "0"],
        &["bench", "--baseline-threads", "1025"],
        &["bench", "--busy-ms", "10001"],
        &["bench", "--busy-ms", "-1"],
    ] {
        let out = bin().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!String::from_utf8(out.stderr).unwrap().trim().is_empty());
    }
}

#[test]
fn bench_json_has_the_documented_fields() {
    let out =
        bin().args(["bench", "--json", "--iters", "2", "--warmup", "0", "--input-size", "64x64"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["variant", "batch", "threads", "isa", "iters", "median_ms", "p90_ms", "images_per_s"] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    // The core-to-core probe before and after timing: a positive latency
    // each, or null where the probe's second thread did not answer.
    let c2c = v["core_to_core_ns"].as_array().unwrap_or_else(|| panic!("core_to_core_ns in {v}"));
    assert_eq!(c2c.len(), 2, "{v}");
    assert!(c2c.iter().all(|x| x.is_null() || x.as_f64().is_some_and(|ns| ns > 0.0 && ns < 1e6)), "{v}");
}

#[test]
fn bench_profile_json_gives_each_layer_its_median_minimum_and_mean() {
    let out = bin()
        .args(["bench", "--json", "--profile", "--iters", "3", "--warmup", "0", "--input-size", "64x64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().expect("a layers array");
    // conv1 … predictions (and the softmax): every step of the plan.
    assert!(layers.len() > 53, "{} layers", layers.len());
    assert_eq!(layers[0]["name"], "conv1");
    for l in layers {
        let f = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {l}"));
        let (mean, median, min) = (f("ms"), f("median_ms"), f("min_ms"));
        // Three runs: the minimum is one of them, the median another, and
        // neither exceeds the largest, which the mean is at most.
        assert!(min >= 0.0 && min <= median && min <= mean, "{l}");
        assert!(median <= 3.0 * mean, "{l}");
    }
}

#[test]
fn bench_baseline_threads_alternates_and_reports_the_speedup() {
    let out = bin()
        .args(["bench", "--json", "--iters", "3", "--warmup", "0", "--input-size", "64x64"])
        .args(["--threads", "2", "--baseline-threads", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["threads"], 2);
    let base = &v["baseline"];
    assert_eq!(base["threads"], 1);
    assert_eq!(base["times_ms"].as_array().map(|t| t.len()), Some(3));
    assert_eq!(v["times_ms"].as_array().map(|t| t.len()), Some(3));
    let (ours, theirs) = (v["median_ms"].as_f64().unwrap(), base["median_ms"].as_f64().unwrap());
    assert!(ours > 0.0 && theirs > 0.0);
    let speedup = v["speedup"].as_f64().unwrap();
    assert!((speedup - theirs / ours).abs() <= 1e-9 * speedup, "{speedup} vs {theirs} / {ours}");
    // Without the flag, neither field.
    let out =
        bin().args(["bench", "--json", "--iters", "1", "--warmup", "0", "--input-size", "64x64"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("baseline").is_none() && v.get("speedup").is_none(), "{v}");
}

#[test]
fn bench_profile_with_a_baseline_gives_each_layer_its_speedup() {
    let args = ["bench", "--profile", "--iters", "3", "--warmup", "0", "--input-size", "64x64", "--threads", "2"];
    let out = bin().args(args).args(["--baseline-threads", "1", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().expect("a layers array");
    assert!(layers.len() > 53, "{} layers", layers.len());
    for l in layers {
        let (ours, base) = (l["median_ms"].as_f64().unwrap(), l["baseline_median_ms"].as_f64().unwrap());
        assert!(base >= 0.0, "{l}");
        match l["speedup"].as_f64() {
            Some(x) => assert!((x - base / ours).abs() <= 1e-9 * x, "{l}"),
            None => assert_eq!(ours, 0.0, "{l}"),
        }
    }
    // conv1 runs on both models.
    assert!(layers[0]["baseline_median_ms"].as_f64().unwrap() > 0.0);
    // The table names the baseline's column; without a baseline, no such fields.
    let out = bin().args(args).args(["--baseline-threads", "1"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1t ms") && text.contains("speedup"), "{text}");
    let out = bin().args(args).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["layers"][0].get("baseline_median_ms").is_none() && v["layers"][0].get("speedup").is_none());
}

#[test]
fn bench_busy_ms_works_between_inferences_but_does_not_time_it() {
    let start = std::time::Instant::now();
    let out = bin()
        .args(["bench", "--json", "--iters", "3", "--warmup", "0", "--input-size", "64x64", "--busy-ms", "300"])
        .output()
        .unwrap();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["busy_ms"], 300);
    // Three busy stretches ran (the process took at least that long), none
    // inside a timed inference (a 64×64 one takes a few ms; 48–61 ms on a
    // 2-vCPU machine also compiling and running an emulator, which failed
    // this test when it was busy for 50 ms — hence 300).
    assert!(elapsed_ms >= 900.0, "{elapsed_ms} ms");
    let times: Vec<f64> = v["times_ms"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
    assert_eq!(times.len(), 3);
    assert!(times.iter().all(|&t| t > 0.0 && t < 300.0), "{times:?}");
}

/// `--weights imagenet` looks in the caches that `KERAS_HOME`, `RESNET50_HOME`,
/// `TORCH_HOME` and `HOME` name (set for the child process only), lists every
/// path it tried and the command that fills the cache when nothing is there,
/// and runs with the cached file once it is (for v1.5 also torchvision's own
/// `.pth` download in torch's hub cache).
#[test]
fn weights_imagenet_follows_the_cache_variables() {
    let dir = tmp();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (x_path, y_path) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let x = resnet50::init::deterministic_input(1, 32, 32);
    resnet50::npy::write_f32(&x_path, &[1, 32, 32, 3], &x).unwrap();
    let infer = |variant: &str| {
        let mut c = bin();
        c.env("HOME", &home)
            .env("KERAS_HOME", home.join("keras"))
            .env("RESNET50_HOME", home.join("r50"))
            .env("TORCH_HOME", home.join("torch"))
            .env_remove("XDG_CACHE_HOME")
            .args(["infer", "--weights", "imagenet", "--no-top", "--variant", variant, "--input"])
            .arg(&x_path)
            .arg("--output")
            .arg(&y_path);
        c.output().unwrap()
    };
    let out = infer("v1.5");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && e.contains("r50/resnet50-v1.5.safetensors")
            && e.contains("torch/hub/checkpoints/resnet50-0676ba61.pth")
            && e.contains("IMAGENET1K_V1"),
        "{e}"
    );
    let out = infer("v1");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && e.contains("keras/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
            && e.contains("home/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5")
            && e.contains("include_top=False"),
        "{e}"
    );
    // Only torchvision's IMAGENET1K_V2 file in the hub cache: not taken, but named.
    let hub = home.join("torch").join("hub").join("checkpoints");
    std::fs::create_dir_all(&hub).unwrap();
    std::fs::write(hub.join(resnet50::loaders::imagenet::TORCHVISION_V2_FILE), b"v2").unwrap();
    let out = infer("v1.5");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("resnet50-11ad3fa6.pth --preprocess torch-v2"), "{e}");
    // A file in the cache is found and runs the same network as that file
    // named directly: torchvision's download in torch's hub cache, then a
    // safetensors file of one's own, which comes first.
    let w = resnet50::init::deterministic(resnet50::Variant::V1_5, None);
    let tensors = resnet50::loaders::export::safetensors_tensors(&w, resnet50::loaders::names::Scheme::Torchvision);
    let pth = hub.join(resnet50::loaders::imagenet::TORCHVISION_FILE);
    std::fs::write(&pth, resnet50::loaders::export::pytorch_bytes(&tensors).unwrap()).unwrap();
    let out = infer("v1.5");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, from_pth) = resnet50::npy::read_f32(&y_path).unwrap();
    std::fs::write(&pth, b"not read: the safetensors file below comes first").unwrap();
    std::fs::create_dir_all(home.join("r50")).unwrap();
    let p = home.join("r50").join(resnet50::loaders::imagenet::TORCH_FILE);
    std::fs::write(&p, resnet50::loaders::export::safetensors_bytes(&tensors).unwrap()).unwrap();
    let out = infer("v1.5");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (shape, y) = resnet50::npy::read_f32(&y_path).unwrap();
    assert_eq!(shape, vec![1, 1, 1, 2048]);
    let model = resnet50::ResNet50::new()
        .variant(resnet50::Variant::V1_5)
        .include_top(false)
        .input_shape(32, 32, 3)
        .weights(resnet50::WeightsSource::File(p))
        .build()
        .unwrap();
    assert_eq!(model.predict(&x).unwrap(), y);
    assert_eq!(from_pth, y);
}

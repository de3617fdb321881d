//! The `resnet50` command line: summary, infer, classify, preprocess, convert, bench.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;
use resnet50::preprocess::{Interp, Preprocessing};
use resnet50::{ClassifierActivation, Config, Isa, Model, Pooling, ResNet50, Variant, WeightsSource};

#[derive(Parser)]
#[command(name = "resnet50", version, about = "ResNet50 inference on CPUs (Keras v1 and torchvision v1.5)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a Keras-style table of layers, output shapes and parameter counts.
    ///
    /// Example: resnet50 summary --no-top --pooling avg
    Summary {
        #[command(flatten)]
        model: ModelFlags,
    },
    /// Run the model on an NHWC f32 .npy tensor (already preprocessed) and write the output .npy.
    ///
    /// Example: resnet50 infer --input x.npy --output y.npy --variant v1.5
    Infer {
        /// Input tensor: little-endian f32, C order, shape [N, H, W, 3] (or [H, W, 3]); with
        /// --layout nchw, [N, 3, H, W] (or [3, H, W]).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the output tensor (.npy).
        #[arg(long)]
        output: PathBuf,
        /// Layout of the input tensor and of a feature-map output: nhwc (Keras) or nchw (PyTorch,
        /// ONNX Runtime: the arrays a torchvision or .onnx pipeline already has).
        #[arg(long, default_value = "nhwc", value_parser = ["nhwc", "nchw"])]
        layout: String,
        #[command(flatten)]
        model: ModelFlags,
    },
    /// Classify images: decode, preprocess as the variant's framework does, run the model, print the top classes.
    ///
    /// Every IMAGE is a file (any supported format, detected from the content) or a directory, whose image
    /// files (by extension: jpg, jpeg, png, gif, bmp, webp, ppm/pgm/pnm, tga, ico; not recursive) are
    /// classified in name order. Images are run in batches of --batch (default 8). Files that cannot be
    /// decoded are reported on stderr and skipped; a summary follows and the exit code is non-zero if
    /// any failed. Without --weights the model has seeded random weights and the labels are meaningless.
    ///
    /// Examples:
    ///   resnet50 classify --weights resnet50_weights_tf_dim_ordering_tf_kernels.h5 cat.jpg
    ///   resnet50 classify --weights resnet50-11ad3fa6.pth --variant v1.5 --preprocess torch-v2 photos/ --top 3 --json
    ///   resnet50 classify --weights imagenet --variant v1.5 cat.jpg   (torchvision's cached resnet50-0676ba61.pth)
    #[command(verbatim_doc_comment)]
    Classify {
        /// Image files or directories of images.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
        /// Classes printed per image (highest score first).
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Print one JSON object per image on stdout (JSON Lines): {"image", "predictions": [{"index",
        /// "wnid", "name", "score"}]} or {"image", "error"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pre: PreFlags,
        #[command(flatten)]
        model: ModelFlags,
    },
    /// Write the NHWC f32 tensor [1, H, W, 3] that `classify` would feed the model for IMAGE.
    ///
    /// The .npy can be given to `resnet50 infer --input`, or compared with Python:
    /// keras: preprocess_input(img_to_array(load_img(IMAGE, target_size=(H, W))))[None];
    /// torch: ResNet50_Weights.IMAGENET1K_V1.transforms()(Image.open(IMAGE).convert("RGB")).permute(1, 2, 0)[None].
    ///
    /// Examples:
    ///   resnet50 preprocess cat.jpg --output x.npy
    ///   resnet50 preprocess cat.jpg --output x.npy --preprocess torch --size 224x224
    #[command(verbatim_doc_comment)]
    Preprocess {
        /// The image file.
        image: PathBuf,
        /// Where to write the tensor (.npy, little-endian f32, shape [1, H, W, 3]).
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        pre: PreFlags,
    },
    /// Convert a weights file into the native memory-mapped format.
    ///
    /// Examples:
    ///   resnet50 convert resnet50_weights_tf_dim_ordering_tf_kernels.h5 resnet50.r50w
    ///   resnet50 convert resnet50.onnx resnet50-v1.5.r50w   (torch.onnx.export's file: the variant is in its strides)
    #[command(verbatim_doc_comment)]
    Convert {
        /// Source weights file (format detected from its content).
        src: PathBuf,
        /// Destination native file.
        dst: PathBuf,
        #[command(flatten)]
        model: ModelFlags,
    },
    /// Measure inference latency and throughput.
    ///
    /// Example: resnet50 bench --threads 2 --batch 1 --iters 20 --json
    Bench {
        /// Timed iterations (after warm-up).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100000))]
        iters: u32,
        /// Untimed warm-up iterations.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=1000))]
        warmup: u32,
        /// Print one JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// Also time every layer over --iters more runs and print a per-layer table of
        /// median, minimum and mean times (with --json: a "layers" array with `median_ms`,
        /// `min_ms` and the mean as `ms`).
        #[arg(long)]
        profile: bool,
        /// Also time the same model and weights on this many threads, alternating
        /// inference by inference with --threads (so both see the same machine
        /// load), and report its times and the speedup (its median / ours). With
        /// --profile both models' layers are timed, alternated likewise, and each
        /// layer gets the baseline's median and its own speedup (with --json:
        /// `baseline_median_ms` and `speedup` per layer).
        #[arg(long, value_name = "N")]
        baseline_threads: Option<usize>,
        /// Before each timed inference, keep the calling thread busy (computing) for
        /// this many milliseconds, untimed: latency as an application sees it that
        /// does other work between predicts (decoding the next image, say), rather
        /// than back to back.
        #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10000))]
        busy_ms: u32,
        /// Let the sessions fall back to one thread while other processes stall
        /// their threads (the library's default, `ResNet50::adaptive_threads`);
        /// without it, bench measures exactly --threads (and --baseline-threads).
        #[arg(long)]
        adaptive_threads: bool,
        #[command(flatten)]
        model: ModelFlags,
    },
}

/// Flags shared by every command that builds a model.
#[derive(Args, Clone)]
struct ModelFlags {
    /// Network: v1 (Keras) or v1.5 (torchvision).
    #[arg(long, default_value = "v1")]
    variant: String,
    /// Weights file (any supported format). Without it, seeded random weights (Keras initializers).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random weights used when --weights is absent.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Drop the classifier (Keras include_top=False).
    #[arg(long)]
    no_top: bool,
    /// Global pooling without the top: none, avg or max.
    #[arg(long, default_value = "none")]
    pooling: String,
    /// Classes of the classifier.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// softmax or none (logits). Default: softmax for v1, none for v1.5.
    #[arg(long)]
    classifier_activation: Option<String>,
    /// Input size HxW (default 224x224, or taken from the input tensor).
    #[arg(long)]
    input_size: Option<String>,
    /// Images per run (default 1, or taken from the input tensor; classify: 8).
    #[arg(long)]
    batch: Option<usize>,
    /// Threads inside each kernel.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Kernel ISA: scalar, avx2, avx512, neon (default: RESNET50_ISA or the best supported).
    #[arg(long)]
    isa: Option<String>,
    /// Use the scalar reference kernels (slow; the oracle).
    #[arg(long)]
    reference: bool,
}

/// How images become tensors (`classify`, `preprocess`).
#[derive(Args, Clone)]
struct PreFlags {
    /// keras (load_img + caffe preprocess_input: BGR, mean-subtracted), torch (torchvision IMAGENET1K_V1:
    /// resize shorter side 256 bilinear, center crop, /255, ImageNet mean/std) or torch-v2 (IMAGENET1K_V2:
    /// resize 232). Default: keras for --variant v1, torch for v1.5 (`preprocess`: keras).
    #[arg(long, value_name = "keras|torch|torch-v2")]
    preprocess: Option<String>,
    /// Tensor size HxW: keras' target_size, torch's center crop. Default 224x224 (or --input-size).
    #[arg(long, value_name = "HxW")]
    size: Option<String>,
    /// torch only: length of the shorter side after resizing (default 256, 232 for torch-v2).
    #[arg(long, value_name = "N")]
    resize: Option<usize>,
    /// keras only: load_img's interpolation, nearest (Keras' default) or bilinear (PIL's, antialiased).
    #[arg(long, value_name = "nearest|bilinear")]
    interpolation: Option<String>,
}

impl PreFlags {
    fn preprocessing(&self, default_kind: &str, model_size: Option<&str>) -> CliResult<Preprocessing> {
        let (height, width) = match (self.size.as_deref(), model_size) {
            (Some(s), Some(m)) if parse_hw(s)? != parse_hw(m)? => {
                return Err(format!("--size {s} does not match --input-size {m}"));
            }
            (Some(s), _) | (None, Some(s)) => parse_hw(s)?,
            (None, None) => (224, 224),
        };
        let kind = self.preprocess.as_deref().unwrap_or(default_kind).trim().to_ascii_lowercase();
        let interp: Interp = match &self.interpolation {
            Some(i) => i.parse().map_err(|e: resnet50::Error| format!("--interpolation: {e}"))?,
            None => Interp::Nearest,
        };
        let p = match kind.as_str() {
            "keras" | "caffe" => {
                if self.resize.is_some() {
                    return Err(
                        "--resize applies to --preprocess torch, not keras (which resizes straight to --size)".into()
                    );
                }
                Preprocessing::Keras { height, width, interp }
            }
            "torch" | "torchvision" | "torch-v1" | "torch-v2" => {
                if self.interpolation.is_some() {
                    return Err("--interpolation applies to --preprocess keras; torch always resizes bilinearly".into());
                }
                let resize = self.resize.unwrap_or(if kind == "torch-v2" { 232 } else { 256 });
                Preprocessing::Torch { resize, height, width }
            }
            other => return Err(format!("--preprocess {other:?}: expected keras, torch or torch-v2")),
        };
        p.validate().map_err(|e| e.to_string())?;
        Ok(p)
    }
}

fn describe(p: &Preprocessing) -> String {
    match *p {
        Preprocessing::Keras { height, width, interp } => format!(
            "keras: load_img(target_size=({height}, {width}), interpolation={}) + preprocess_input (caffe: BGR, minus ImageNet means)",
            match interp {
                Interp::Nearest => "nearest",
                Interp::Bilinear => "bilinear",
            }
        ),
        Preprocessing::Torch { resize, height, width } => format!(
            "torch: Resize({resize}, bilinear, antialias) + CenterCrop(({height}, {width})) + ToTensor + Normalize(ImageNet mean/std)"
        ),
    }
}

type CliResult<T> = Result<T, String>;

/// `[n, c, h, w]` → `[n, h, w, c]` (the library's layout): each image's
/// `[c, h·w]` matrix transposed.
fn nchw_to_nhwc(x: &[f32], [_, c, h, w]: [usize; 4]) -> Vec<f32> {
    x.chunks((c * h * w).max(1)).flat_map(|img| resnet50::loaders::transpose(img, c, h * w)).collect()
}

/// `[n, h, w, c]` → `[n, c, h, w]`.
fn nhwc_to_nchw(x: &[f32], [_, h, w, c]: [usize; 4]) -> Vec<f32> {
    x.chunks((c * h * w).max(1)).flat_map(|img| resnet50::loaders::transpose(img, h * w, c)).collect()
}

fn parse_hw(s: &str) -> CliResult<(usize, usize)> {
    let bad = || format!("--input-size {s:?}: expected HxW, e.g. 224x224");
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((h.trim().parse().map_err(|_| bad())?, w.trim().parse().map_err(|_| bad())?))
}

impl ModelFlags {
    fn config(&self, from_tensor: Option<[usize; 4]>) -> CliResult<Config> {
        let e = |x: resnet50::Error| x.to_string();
        let variant: Variant = self.variant.parse().map_err(e)?;
        let mut c = Config {
            variant,
            include_top: !self.no_top,
            classes: self.classes,
            threads: self.threads,
            ..Config::default()
        };
        c.pooling = self.pooling.parse::<Pooling>().map_err(e)?;
        if let Some(a) = &self.classifier_activation {
            c.classifier_activation = Some(a.parse::<ClassifierActivation>().map_err(e)?);
        }
        if let Some([n, h, w, ch]) = from_tensor {
            (c.batch, c.height, c.width, c.channels) = (n, h, w, ch);
        }
        if let Some(s) = &self.input_size {
            let (h, w) = parse_hw(s)?;
            if from_tensor.is_some() && (h, w) != (c.height, c.width) {
                return Err(format!("--input-size {h}x{w} does not match the input tensor's {}x{}", c.height, c.width));
            }
            (c.height, c.width) = (h, w);
        }
        if let Some(b) = self.batch {
            if from_tensor.is_some() && b != c.batch {
                return Err(format!("--batch {b} does not match the input tensor's batch {}", c.batch));
            }
            c.batch = b;
        }
        if let Some(i) = &self.isa {
            c.isa = Some(Isa::checked(i).map_err(|x| format!("--isa: {x}"))?);
        }
        c.reference = self.reference;
        c.weights = match &self.weights {
            Some(p) if p.as_os_str() == "imagenet" => WeightsSource::Imagenet,
            Some(p) => WeightsSource::File(p.clone()),
            None => WeightsSource::Random { seed: self.seed },
        };
        Ok(c)
    }

    fn build(&self, from_tensor: Option<[usize; 4]>) -> CliResult<Model> {
        self.build_with(self.config(from_tensor)?)
    }

    /// Builds `config` (from [`ModelFlags::config`], perhaps amended).
    fn build_with(&self, config: Config) -> CliResult<Model> {
        if matches!(config.weights, WeightsSource::Random { .. }) {
            eprintln!("note: no --weights given: using seeded random weights (outputs are meaningless)");
        }
        ResNet50::from_config(config).build().map_err(|e| e.to_string())
    }
}

fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Summary { model } => {
            let c = model.config(None)?;
            c.validate().map_err(|e| e.to_string())?;
            print!("{}", resnet50::summary::summary(&c).render(&c));
        }
        Command::Infer { input, output, layout, model } => {
            let (shape, data) = resnet50::npy::read_f32(&input).map_err(|e| e.to_string())?;
            let nchw = layout == "nchw";
            let (nhwc, data) = match (nchw, &shape[..]) {
                (false, &[n, h, w, c]) => ([n, h, w, c], data),
                (false, &[h, w, c]) => ([1, h, w, c], data),
                (true, &[n, c, h, w]) => ([n, h, w, c], nchw_to_nhwc(&data, [n, c, h, w])),
                (true, &[c, h, w]) => ([1, h, w, c], nchw_to_nhwc(&data, [1, c, h, w])),
                _ => {
                    let want = if nchw {
                        "an NCHW tensor [N, 3, H, W] or [3, H, W]"
                    } else {
                        "an NHWC tensor [N, H, W, 3] or [H, W, 3]"
                    };
                    return Err(format!("{}: expected {want}, got shape {shape:?}", input.display()));
                }
            };
            if !nchw && nhwc[3] != 3 && shape.len() == 4 && shape[1] == 3 {
                return Err(format!(
                    "{}: shape {shape:?} is not NHWC [N, H, W, 3]; it looks like NCHW [N, 3, H, W]: pass --layout nchw",
                    input.display()
                ));
            }
            let m = model.build(Some(nhwc))?;
            let mut session = m.session().map_err(|e| e.to_string())?;
            let y = session.predict(&data).map_err(|e| e.to_string())?;
            let (written, y) = match (nchw, m.output_shape()) {
                (true, &[n, h, w, c]) => (vec![n, c, h, w], std::borrow::Cow::Owned(nhwc_to_nchw(y, [n, h, w, c]))),
                (_, s) => (s.to_vec(), std::borrow::Cow::Borrowed(y)),
            };
            resnet50::npy::write_f32(&output, &written, &y).map_err(|e| e.to_string())?;
            eprintln!("wrote {} {written:?}", output.display());
        }
        Command::Classify { images, top, json, pre, model } => classify(&images, top, json, &pre, &model)?,
        Command::Preprocess { image, output, pre } => {
            let p = pre.preprocessing("keras", None)?;
            let x = p.load(&image).map_err(|e| e.to_string())?;
            let (h, w) = p.output_hw();
            resnet50::npy::write_f32(&output, &[1, h, w, 3], &x).map_err(|e| e.to_string())?;
            eprintln!("{}", describe(&p));
            eprintln!("wrote {} [1, {h}, {w}, 3]", output.display());
        }
        Command::Convert { src, dst, .. } => {
            resnet50::loaders::convert(&src, &dst, None).map_err(|e| e.to_string())?;
            eprintln!("wrote {}", dst.display());
        }
        Command::Bench { iters, warmup, json, profile, baseline_threads, busy_ms, adaptive_threads, model } => {
            bench(&model, iters, warmup, json, profile, baseline_threads, busy_ms, adaptive_threads)?
        }
    }
    Ok(())
}

/// The image files named by the arguments: files as given, directories expanded
/// to their image files (by extension, sorted by name). Unreadable directories
/// are failures.
fn collect_images(args: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let (mut files, mut failed) = (Vec::new(), Vec::new());
    for a in args {
        if a.is_dir() {
            match std::fs::read_dir(a) {
                Ok(rd) => {
                    let mut v: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && resnet50::preprocess::has_image_extension(p))
                        .collect();
                    if v.is_empty() {
                        failed.push((a.clone(), format!("{}: directory holds no image files", a.display())));
                    }
                    v.sort();
                    files.extend(v);
                }
                Err(e) => failed.push((a.clone(), format!("{}: {e}", a.display()))),
            }
        } else {
            files.push(a.clone());
        }
    }
    (files, failed)
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn classify(args: &[PathBuf], top: usize, json: bool, pre: &PreFlags, flags: &ModelFlags) -> CliResult<()> {
    if flags.no_top {
        return Err("classify needs the classifier: drop --no-top".into());
    }
    let mut config = flags.config(None)?;
    let default_kind = if config.variant == Variant::V1 { "keras" } else { "torch" };
    let p = pre.preprocessing(default_kind, flags.input_size.as_deref())?;
    let (h, w) = p.output_hw();
    let batch = flags.batch.unwrap_or(8);
    if batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    let (files, mut failed) = collect_images(args);
    let random = matches!(config.weights, WeightsSource::Random { .. });
    if random {
        eprintln!(
            "WARNING: no --weights given: the model has seeded random weights (seed {}); the class labels below are MEANINGLESS.",
            flags.seed
        );
    }
    eprintln!("preprocessing: {}", describe(&p));
    (config.batch, config.height, config.width) = (batch.min(files.len().max(1)), h, w);
    let model = ResNet50::from_config(config).build().map_err(|e| e.to_string())?;
    let classes = model.config().classes;
    let named = classes == resnet50::imagenet::NUM_CLASSES;
    let mut session = model.session().map_err(|e| e.to_string())?;

    let pb =
        indicatif::ProgressBar::with_draw_target(Some(files.len() as u64), indicatif::ProgressDrawTarget::stderr());
    if files.len() > 1 {
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report_failure = |path: &Path, msg: &str| {
        pb.suspend(|| {
            eprintln!("error: {msg}");
            if json {
                println!("{{\"image\":{},\"error\":{}}}", json_str(&path.display().to_string()), json_str(msg));
            }
        });
    };
    for (path, msg) in &failed {
        report_failure(path, msg);
    }
    let started = Instant::now();
    let mut done = 0usize;
    let mut partial: Option<Model> = None;
    for chunk in files.chunks(batch) {
        // Decode and preprocess in parallel; keep the successes.
        let loaded: Vec<(usize, Result<Vec<f32>, String>)> =
            chunk.par_iter().enumerate().map(|(i, f)| (i, p.load(f).map_err(|e| e.to_string()))).collect();
        let mut ok_paths = Vec::new();
        let mut input = Vec::with_capacity(chunk.len() * p.output_len());
        for (i, r) in loaded {
            match r {
                Ok(x) => {
                    input.extend_from_slice(&x);
                    ok_paths.push(&chunk[i]);
                }
                Err(msg) => {
                    report_failure(&chunk[i], &msg);
                    failed.push((chunk[i].clone(), msg));
                }
            }
        }
        pb.inc(chunk.len() as u64);
        if ok_paths.is_empty() {
            continue;
        }
        let scores: Vec<f32> = if ok_paths.len() == model.config().batch {
            session.predict(&input).map_err(|e| e.to_string())?.to_vec()
        } else {
            // A short batch: a model sharing the weights with the batch size it needs.
            if partial.as_ref().is_none_or(|m| m.config().batch != ok_paths.len()) {
                partial = Some(model.reshape(ok_paths.len(), h, w).map_err(|e| e.to_string())?);
            }
            partial.as_ref().expect("set above").predict(&input).map_err(|e| e.to_string())?
        };
        for (path, row) in ok_paths.iter().zip(scores.chunks_exact(classes)) {
            let name = path.display().to_string();
            let out = if named {
                let preds = resnet50::imagenet::decode_predictions(row, classes, top).map_err(|e| e.to_string())?;
                let preds = &preds[0];
                if json {
                    let items: Vec<String> = preds
                        .iter()
                        .map(|q| {
                            format!(
                                "{{\"index\":{},\"wnid\":{},\"name\":{},\"score\":{}}}",
                                q.index,
                                json_str(q.wnid),
                                json_str(q.name),
                                serde_json::Value::from(f64::from(q.score))
                            )
                        })
                        .collect();
                    format!(
                        "{{\"image\":{}{},\"predictions\":[{}]}}",
                        json_str(&name),
                        if random { ",\"random_weights\":true" } else { "" },
                        items.join(",")
                    )
                } else {
                    let mut s =
                        format!("{name}{}\n", if random { "  (random weights: labels meaningless)" } else { "" });
                    for (k, q) in preds.iter().enumerate() {
                        s += &format!("  {}. {:<28} {}  {:>10.6}  [{}]\n", k + 1, q.name, q.wnid, q.score, q.index);
                    }
                    s.trim_end().to_string()
                }
            } else {
                let preds = resnet50::imagenet::top_k(row, top);
                if json {
                    let items: Vec<String> = preds
                        .iter()
                        .map(|(i, sc)| {
                            format!("{{\"index\":{i},\"score\":{}}}", serde_json::Value::from(f64::from(*sc)))
                        })
                        .collect();
                    format!("{{\"image\":{},\"predictions\":[{}]}}", json_str(&name), items.join(","))
                } else {
                    let mut s = format!("{name}\n");
                    for (k, (i, sc)) in preds.iter().enumerate() {
                        s += &format!("  {}. class {i:<6} {sc:>10.6}\n", k + 1);
                    }
                    s.trim_end().to_string()
                }
            };
            pb.suspend(|| println!("{out}"));
            done += 1;
        }
    }
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "classified {done} image(s) in {secs:.2} s ({:.1} images/s), {} failed",
        done as f64 / secs.max(1e-9),
        failed.len()
    );
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(format!("{} input(s) could not be classified: {}", failed.len(), names.join(", ")));
    }
    Ok(())
}

/// [`resnet50::placement::core_to_core_ns`] with the model's helper threads
/// out of the way: they spin for a millisecond after an inference, then park.
fn probe_placement() -> Option<f64> {
    std::thread::sleep(std::time::Duration::from_millis(3));
    resnet50::placement::core_to_core_ns(2000, 5)
}

/// Keeps this thread computing for `ms` milliseconds (`bench --busy-ms`).
fn busy_for(ms: u32) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed().as_millis() < u128::from(ms) {
        for _ in 0..256 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn bench(
    flags: &ModelFlags,
    iters: u32,
    warmup: u32,
    json: bool,
    profile: bool,
    baseline_threads: Option<usize>,
    busy_ms: u32,
    adaptive_threads: bool,
) -> CliResult<()> {
    let m = flags.build_with(Config { adaptive_threads, ..flags.config(None)? })?;
    let mut session = m.session().map_err(|e| e.to_string())?;
    // The baseline: the same weights on another thread count, timed in turn
    // with ours so that drifting load on a shared machine hits both alike.
    let mut base_session = match baseline_threads {
        Some(n) => {
            let b = m.with_threads(n).map_err(|e| format!("--baseline-threads {n}: {e}"))?;
            Some((n, b.session().map_err(|e| e.to_string())?))
        }
        None => None,
    };
    let input: Vec<f32> =
        resnet50::init::deterministic_input(m.input_shape()[0], m.input_shape()[1], m.input_shape()[2]);
    for _ in 0..warmup {
        session.predict(&input).map_err(|e| e.to_string())?;
        if let Some((_, s)) = base_session.as_mut() {
            s.predict(&input).map_err(|e| e.to_string())?;
        }
    }
    let mut times = Vec::with_capacity(iters as usize);
    let mut base_times = Vec::with_capacity(iters as usize);
    // Timed inferences that ran on one thread (only with --adaptive-threads).
    let mut fell_back = [0u32; 2];
    let timed = |s: &mut resnet50::Session, into: &mut Vec<f64>, fell_back: &mut u32| -> CliResult<()> {
        busy_for(busy_ms);
        let t = Instant::now();
        s.predict(&input).map_err(|e| e.to_string())?;
        into.push(t.elapsed().as_secs_f64() * 1e3);
        *fell_back += (s.last_threads() < s.model().config().threads) as u32;
        Ok(())
    };
    let placement_before = probe_placement();
    let ticks_before = resnet50::steal::read_cpu_ticks();
    for i in 0..iters {
        // Alternate which of the two goes first: neither always runs on
        // caches the other just warmed.
        match base_session.as_mut() {
            Some((_, b)) if i % 2 == 1 => {
                timed(b, &mut base_times, &mut fell_back[1])?;
                timed(&mut session, &mut times, &mut fell_back[0])?;
            }
            Some((_, b)) => {
                timed(&mut session, &mut times, &mut fell_back[0])?;
                timed(b, &mut base_times, &mut fell_back[1])?;
            }
            None => timed(&mut session, &mut times, &mut fell_back[0])?,
        }
    }
    let steal = resnet50::steal::steal_percent(ticks_before, resnet50::steal::read_cpu_ticks());
    let placement = [placement_before, probe_placement()];
    let summary = |t: &mut Vec<f64>| {
        t.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
        (pct(0.5), pct(0.9), t[0])
    };
    let (median, p90, min) = summary(&mut times);
    let baseline = base_session.as_ref().map(|&(threads, _)| {
        let (bm, bp, bmin) = summary(&mut base_times);
        (threads, bm, bp, bmin)
    });
    let c = m.config();
    let batch = c.batch;
    let ips = batch as f64 / (median / 1e3);
    let gflops = 2.0 * m.plan().macs() as f64 / (median / 1e3) / 1e9;
    // This CPU's FMA peak for the ISA in use, measured (best of 3 short probes), times the threads.
    let core_peak =
        (0..3).map(|_| resnet50_kernels::gemm::peak::fma_peak_gflops(m.isa(), 4_000_000)).fold(0.0, f64::max);
    let peak = core_peak * c.threads as f64;
    // With a baseline, both models' layers, alternated inference by inference.
    let (layers, base_layers) = match (profile, base_session.as_mut()) {
        (false, _) => (Vec::new(), Vec::new()),
        (true, None) => (session.profile(&input, iters as usize).map_err(|e| e.to_string())?, Vec::new()),
        (true, Some((_, b))) => session.profile_alternating(b, &input, iters as usize).map_err(|e| e.to_string())?,
    };
    // A layer's speedup over the baseline (its median / ours), where both ran it.
    let scaling = |i: usize, l: &resnet50::StepTime| {
        base_layers.get(i).filter(|_| l.median_seconds > 0.0).map(|b| b.median_seconds / l.median_seconds)
    };
    // A layer's GFLOP/s at its median time.
    let layer_gflops = |l: &resnet50::StepTime| {
        if l.median_seconds > 0.0 {
            2.0 * l.macs as f64 / l.median_seconds / 1e9
        } else {
            0.0
        }
    };
    if json {
        let mut v = serde_json::json!({
            "variant": c.variant.name(), "batch": batch, "threads": c.threads, "isa": m.isa().name(),
            "iters": iters, "input": format!("{}x{}", c.height, c.width), "median_ms": median, "p90_ms": p90,
            "min_ms": min, "images_per_s": ips, "gflops": gflops, "peak_gflops": peak,
            "percent_of_peak": 100.0 * gflops / peak, "times_ms": times,
            "adaptive_threads": adaptive_threads, "one_thread_iters": fell_back[0],
            "steal_percent": steal, "busy_ms": busy_ms, "core_to_core_ns": placement,
        });
        if let Some((threads, bm, bp, bmin)) = baseline {
            v["baseline"] = serde_json::json!({
                "threads": threads, "median_ms": bm, "p90_ms": bp, "min_ms": bmin, "times_ms": base_times,
                "one_thread_iters": fell_back[1],
            });
            v["speedup"] = serde_json::json!(bm / median);
        }
        if profile {
            v["layers"] = layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut j = serde_json::json!({
                        "name": l.name, "kernel": l.kind, "ms": l.seconds * 1e3,
                        "median_ms": l.median_seconds * 1e3, "min_ms": l.min_seconds * 1e3,
                        "wait_ms": l.waited * 1e3, "macs": l.macs, "gflops": layer_gflops(l),
                    });
                    if let Some(b) = base_layers.get(i) {
                        j["baseline_median_ms"] = serde_json::json!(b.median_seconds * 1e3);
                        j["speedup"] = serde_json::json!(scaling(i, l));
                    }
                    j
                })
                .collect();
        }
        println!("{v}");
    } else {
        println!(
            "resnet50 {} {}x{} batch {batch}, {} thread(s), isa {}",
            c.variant,
            c.height,
            c.width,
            c.threads,
            m.isa()
        );
        println!("  median {median:.2} ms   p90 {p90:.2} ms   min {min:.2} ms   ({iters} iterations)");
        if busy_ms > 0 {
            println!("  each after {busy_ms} ms of other work on the calling thread (--busy-ms)");
        }
        if adaptive_threads {
            println!("  adaptive threads: {} of {iters} inferences fell back to one thread", fell_back[0]);
        }
        if let Some(st) = steal {
            println!("  steal {st:.1} % (of the CPU time this VM wanted while timing, the hypervisor ran others)");
        }
        if let [Some(a), Some(b)] = placement {
            println!(
                "  core-to-core {a:.0} / {b:.0} ns one way before / after timing (150+ ns: CPUs far apart, see `resnet50::placement`)"
            );
        }
        println!(
            "  {ips:.1} images/s   {gflops:.1} GFLOP/s (direct-convolution count) = {:.0}% of the measured FMA peak ({peak:.1} GFLOP/s)",
            100.0 * gflops / peak
        );
        if let Some((threads, bm, bp, bmin)) = baseline {
            println!(
                "  baseline, {threads} thread(s), alternated: median {bm:.2} ms   p90 {bp:.2} ms   min {bmin:.2} ms\n  speedup {:.3}x (median over median)",
                bm / median
            );
        }
        if profile {
            // Medians first: on a shared machine a few slow runs move a
            // layer's mean; the sum of the minima is what the plan can do.
            let sum = |f: fn(&resnet50::StepTime) -> f64| layers.iter().map(f).sum::<f64>() * 1e3;
            let total = sum(|l| l.median_seconds);
            // With threads: how long (mean) the calling thread waited at the
            // layer's end for the others (imbalance, or a preempted thread).
            let waits = c.threads > 1;
            let wait_head = if waits { format!("{:>9}", "wait ms") } else { String::new() };
            // With a baseline: its median and the speedup over it.
            let base_head = match baseline {
                Some((threads, ..)) if !base_layers.is_empty() => {
                    format!("{:>10}{:>9}", format!("{threads}t ms"), "speedup")
                }
                _ => String::new(),
            };
            // The kernel column as wide as its longest name.
            let kw = layers.iter().map(|l| l.kind.len()).max().unwrap_or(0).max(6) + 2;
            println!(
                "\n  {:<22}{:<kw$}{:>10}{:>9}{:>9}{:>8}{:>10}{wait_head}{base_head}",
                "layer", "kernel", "median ms", "min ms", "mean ms", "%", "GFLOP/s"
            );
            for (i, l) in layers.iter().enumerate() {
                let wait = if waits { format!("{:>9.3}", l.waited * 1e3) } else { String::new() };
                let base = match (base_layers.get(i), scaling(i, l)) {
                    (Some(b), Some(x)) => format!("{:>10.3}{:>8.2}x", b.median_seconds * 1e3, x),
                    (Some(b), None) => format!("{:>10.3}{:>9}", b.median_seconds * 1e3, "-"),
                    _ => String::new(),
                };
                println!(
                    "  {:<22}{:<kw$}{:>10.3}{:>9.3}{:>9.3}{:>7.1}%{:>10.1}{wait}{base}",
                    l.name,
                    l.kind,
                    l.median_seconds * 1e3,
                    l.min_seconds * 1e3,
                    l.seconds * 1e3,
                    100.0 * l.median_seconds * 1e3 / total,
                    layer_gflops(l)
                );
            }
            let wait = if waits { format!("{:>27.3}", sum(|l| l.waited)) } else { String::new() };
            let base = if base_layers.is_empty() {
                String::new()
            } else {
                let b = base_layers.iter().map(|l| l.median_seconds).sum::<f64>() * 1e3;
                format!("{b:>10.3}{:>8.2}x", b / total)
            };
            let w = 22 + kw;
            println!(
                "  {:<w$}{:>10.3}{:>9.3}{:>9.3}{wait}{base}",
                "total (sums over layers)",
                total,
                sum(|l| l.min_seconds),
                sum(|l| l.seconds)
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

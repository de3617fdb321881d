//! The `resnet50` command line: summary, infer, convert, bench.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
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
        /// Input tensor: little-endian f32, C order, shape [N, H, W, 3] (or [H, W, 3]).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the output tensor (.npy).
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        model: ModelFlags,
    },
    /// Convert a weights file into the native memory-mapped format.
    ///
    /// Example: resnet50 convert resnet50_weights_tf_dim_ordering_tf_kernels.h5 resnet50.r50
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
    /// Images per run (default 1, or taken from the input tensor).
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

type CliResult<T> = Result<T, String>;

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
        let config = self.config(from_tensor)?;
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
        Command::Infer { input, output, model } => {
            let (shape, data) = resnet50::npy::read_f32(&input).map_err(|e| e.to_string())?;
            let nhwc = match shape[..] {
                [n, h, w, c] => [n, h, w, c],
                [h, w, c] => [1, h, w, c],
                _ => {
                    return Err(format!(
                        "{}: expected an NHWC tensor [N, H, W, 3] or [H, W, 3], got shape {shape:?}",
                        input.display()
                    ))
                }
            };
            let m = model.build(Some(nhwc))?;
            let mut session = m.session().map_err(|e| e.to_string())?;
            let y = session.predict(&data).map_err(|e| e.to_string())?;
            resnet50::npy::write_f32(&output, m.output_shape(), y).map_err(|e| e.to_string())?;
            eprintln!("wrote {} {:?}", output.display(), m.output_shape());
        }
        Command::Convert { .. } => {
            return Err("convert: weight-file loading is not implemented yet".into());
        }
        Command::Bench { iters, warmup, json, model } => bench(&model, iters, warmup, json)?,
    }
    Ok(())
}

fn bench(flags: &ModelFlags, iters: u32, warmup: u32, json: bool) -> CliResult<()> {
    let m = flags.build(None)?;
    let mut session = m.session().map_err(|e| e.to_string())?;
    let input: Vec<f32> =
        resnet50::init::deterministic_input(m.input_shape()[0], m.input_shape()[1], m.input_shape()[2]);
    for _ in 0..warmup {
        session.predict(&input).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let t = Instant::now();
        session.predict(&input).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let (median, p90) = (pct(0.5), pct(0.9));
    let c = m.config();
    let batch = c.batch;
    let ips = batch as f64 / (median / 1e3);
    let gflops = 2.0 * m.plan().macs() as f64 / (median / 1e3) / 1e9;
    if json {
        println!(
            "{{\"variant\":\"{}\",\"batch\":{batch},\"threads\":{},\"isa\":\"{}\",\"iters\":{iters},\"input\":\"{}x{}\",\"median_ms\":{median:.3},\"p90_ms\":{p90:.3},\"min_ms\":{:.3},\"images_per_s\":{ips:.2},\"gflops\":{gflops:.1}}}",
            c.variant, c.threads, m.isa(), c.height, c.width, times[0]
        );
    } else {
        println!(
            "resnet50 {} {}x{} batch {batch}, {} thread(s), isa {}",
            c.variant,
            c.height,
            c.width,
            c.threads,
            m.isa()
        );
        println!("  median {median:.2} ms   p90 {p90:.2} ms   min {:.2} ms   ({iters} iterations)", times[0]);
        println!("  {ips:.1} images/s   {gflops:.1} GFLOP/s");
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

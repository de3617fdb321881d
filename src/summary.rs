//! `summary()`: a Keras-style table of layers, output shapes and parameter
//! counts, with Keras' totals (torchvision's for v1.5).

use std::fmt::Write as _;

use resnet50_kernels::shape::out_dim;

use crate::arch::{conv_specs, FEATURES};
use crate::config::{Config, Pooling, Variant};

/// One row of the summary.
///
/// ```
/// let s = resnet50::summary::summary(&resnet50::Config::default());
/// let first = &s.rows[0];
/// assert_eq!((first.name.as_str(), first.shape.as_slice()), ("input_layer", &[224, 224, 3][..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Layer name (Keras' for v1, torchvision's for v1.5).
    pub name: String,
    /// Layer type.
    pub kind: &'static str,
    /// Output shape without the batch dimension.
    pub shape: Vec<usize>,
    /// Trainable parameters.
    pub trainable: usize,
    /// Non-trainable parameters (BatchNorm moving statistics in Keras).
    pub non_trainable: usize,
}

/// The summary of a configuration.
///
/// ```
/// let s = resnet50::summary::summary(&resnet50::Config::default());
/// assert_eq!(s.total, s.trainable + s.non_trainable);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Layers in creation order.
    pub rows: Vec<Row>,
    /// Trainable + non-trainable.
    pub total: usize,
    /// Trainable parameters.
    pub trainable: usize,
    /// Non-trainable parameters.
    pub non_trainable: usize,
    /// Buffers that torchvision does not count as parameters (v1.5 BN statistics).
    pub buffers: usize,
}

/// Builds the summary of `config` (no weights needed).
///
/// ```
/// use resnet50::{summary::summary, Config};
/// let s = summary(&Config::default()); // Keras' ResNet50()
/// assert_eq!((s.total, s.trainable, s.non_trainable), (25_636_712, 25_583_592, 53_120));
/// ```
pub fn summary(config: &Config) -> Summary {
    let v1 = config.variant == Variant::V1;
    let mut rows = Vec::new();
    let mut row = |name: String, kind: &'static str, shape: Vec<usize>, trainable: usize, non_trainable: usize| {
        rows.push(Row { name, kind, shape, trainable, non_trainable })
    };
    let (mut h, mut w) = (config.height, config.width);
    let mut buffers = 0;
    if v1 {
        row("input_layer".into(), "InputLayer", vec![h, w, 3], 0, 0);
    }
    // (keras name, torch name) of a conv's bn, relu.
    let specs = conv_specs(config.variant);
    let conv_row = |rows_fn: &mut dyn FnMut(String, &'static str, Vec<usize>, usize, usize),
                    buffers: &mut usize,
                    s: &crate::arch::ConvSpec,
                    h: usize,
                    w: usize| {
        let oh = out_dim(h, 2 * s.pad, s.k, s.stride);
        let ow = out_dim(w, 2 * s.pad, s.k, s.stride);
        let shape = vec![oh, ow, s.cout];
        let (cname, bname) = keras_or_torch_names(config.variant, s);
        let bias = if v1 { s.cout } else { 0 };
        rows_fn(cname, if v1 { "Conv2D" } else { "Conv2d" }, shape.clone(), s.kernel_len() + bias, 0);
        if v1 {
            rows_fn(bname, "BatchNormalization", shape, 2 * s.cout, 2 * s.cout);
        } else {
            rows_fn(bname, "BatchNorm2d", shape, 2 * s.cout, 0);
            *buffers += 2 * s.cout;
        }
        (oh, ow)
    };
    let stem = &specs[0];
    if v1 {
        row("conv1_pad".into(), "ZeroPadding2D", vec![h + 6, w + 6, 3], 0, 0);
    }
    (h, w) = conv_row(&mut row, &mut buffers, stem, h, w);
    row(if v1 { "conv1_relu" } else { "relu" }.into(), if v1 { "Activation" } else { "ReLU" }, vec![h, w, 64], 0, 0);
    if v1 {
        row("pool1_pad".into(), "ZeroPadding2D", vec![h + 2, w + 2, 64], 0, 0);
    }
    (h, w) = (out_dim(h, 2, 3, 2), out_dim(w, 2, 3, 2));
    row(
        if v1 { "pool1_pool" } else { "maxpool" }.into(),
        if v1 { "MaxPooling2D" } else { "MaxPool2d" },
        vec![h, w, 64],
        0,
        0,
    );
    let mut i = 1;
    while i < specs.len() {
        let block = &specs[i..];
        let has_proj = block[0].index == 0;
        let (b1, b2, b3) = if has_proj { (1, 2, 3) } else { (0, 1, 2) };
        let (in_h, in_w) = (h, w);
        if has_proj {
            conv_row(&mut row, &mut buffers, &block[0], in_h, in_w);
        }
        let (h1, w1) = conv_row(&mut row, &mut buffers, &block[b1], in_h, in_w);
        let relu = |k: &str, s: &crate::arch::ConvSpec| -> (String, &'static str) {
            if v1 {
                (format!("{}_{k}", keras_prefix(s)), "Activation")
            } else {
                (format!("{}.relu", torch_prefix(s)), "ReLU")
            }
        };
        let (n, t) = relu(&format!("{}_relu", block[b1].index), &block[b1]);
        row(n, t, vec![h1, w1, block[b1].cout], 0, 0);
        let (h2, w2) = conv_row(&mut row, &mut buffers, &block[b2], h1, w1);
        let (n, t) = relu(&format!("{}_relu", block[b2].index), &block[b2]);
        row(n, t, vec![h2, w2, block[b2].cout], 0, 0);
        (h, w) = conv_row(&mut row, &mut buffers, &block[b3], h2, w2);
        let cout = block[b3].cout;
        if v1 {
            row(format!("{}_add", keras_prefix(&block[b3])), "Add", vec![h, w, cout], 0, 0);
            row(format!("{}_out", keras_prefix(&block[b3])), "Activation", vec![h, w, cout], 0, 0);
        }
        i += if has_proj { 4 } else { 3 };
    }
    let pooled = config.include_top || config.pooling != Pooling::None;
    if pooled {
        let max = !config.include_top && config.pooling == Pooling::Max;
        let (name, kind) = match (v1, max) {
            (true, false) => ("avg_pool", "GlobalAveragePooling2D"),
            (true, true) => ("max_pool", "GlobalMaxPooling2D"),
            (false, false) => ("avgpool", "AdaptiveAvgPool2d"),
            (false, true) => ("maxpool_global", "AdaptiveMaxPool2d"),
        };
        row(name.into(), kind, vec![FEATURES], 0, 0);
    }
    if config.include_top {
        let m = config.classes;
        row(
            if v1 { "predictions" } else { "fc" }.into(),
            if v1 { "Dense" } else { "Linear" },
            vec![m],
            FEATURES * m + m,
            0,
        );
    }
    let trainable = rows.iter().map(|r| r.trainable).sum();
    let non_trainable = rows.iter().map(|r| r.non_trainable).sum();
    Summary { rows, total: trainable + non_trainable, trainable, non_trainable, buffers }
}

fn keras_prefix(s: &crate::arch::ConvSpec) -> String {
    if s.stage == 1 {
        "conv1".into()
    } else {
        format!("conv{}_block{}", s.stage, s.block)
    }
}

fn torch_prefix(s: &crate::arch::ConvSpec) -> String {
    format!("layer{}.{}", s.stage - 1, s.block - 1)
}

fn keras_or_torch_names(v: Variant, s: &crate::arch::ConvSpec) -> (String, String) {
    match (v, s.stage) {
        (Variant::V1, 1) => ("conv1_conv".into(), "conv1_bn".into()),
        (Variant::V1, _) => (format!("{}_conv", s.name), format!("{}_bn", s.name)),
        (Variant::V1_5, 1) => ("conv1".into(), "bn1".into()),
        (Variant::V1_5, _) if s.index == 0 => {
            (format!("{}.downsample.0", torch_prefix(s)), format!("{}.downsample.1", torch_prefix(s)))
        }
        (Variant::V1_5, _) => {
            (format!("{}.conv{}", torch_prefix(s), s.index), format!("{}.bn{}", torch_prefix(s), s.index))
        }
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn bytes(n: usize) -> String {
    let b = n as f64 * 4.0;
    if b >= 1048576.0 {
        format!("{:.2} MB", b / 1048576.0)
    } else {
        format!("{:.2} KB", b / 1024.0)
    }
}

impl Summary {
    /// The table as Keras prints it.
    ///
    /// ```
    /// use resnet50::{summary::summary, Config};
    /// let config = Config::default();
    /// let table = summary(&config).render(&config);
    /// assert!(table.contains("25,636,712"), "{table}");
    /// ```
    pub fn render(&self, config: &Config) -> String {
        let mut s = String::new();
        let title = match config.variant {
            Variant::V1 => "resnet50 (Keras ResNet50, v1)",
            Variant::V1_5 => "resnet50 (torchvision resnet50, v1.5)",
        };
        let _ = writeln!(s, "Model: \"{title}\"");
        let line = "─".repeat(96);
        let _ = writeln!(s, "{line}");
        let _ = writeln!(s, "{:<52}{:<32}{:>12}", "Layer (type)", "Output Shape", "Param #");
        let _ = writeln!(s, "{}", "═".repeat(96));
        for r in &self.rows {
            let shape = r.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                s,
                "{:<52}{:<32}{:>12}",
                format!("{} ({})", r.name, r.kind),
                format!("(None, {shape})"),
                thousands(r.trainable + r.non_trainable)
            );
        }
        let _ = writeln!(s, "{}", "═".repeat(96));
        let _ = writeln!(s, "Total params: {} ({})", thousands(self.total), bytes(self.total));
        let _ = writeln!(s, "Trainable params: {} ({})", thousands(self.trainable), bytes(self.trainable));
        let _ = writeln!(s, "Non-trainable params: {} ({})", thousands(self.non_trainable), bytes(self.non_trainable));
        if self.buffers > 0 {
            let _ = writeln!(
                s,
                "Buffers (BatchNorm running mean/var, not parameters in torchvision): {}",
                thousands(self.buffers)
            );
        }
        let _ = writeln!(s, "{line}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(variant: Variant, top: bool) -> Config {
        Config { variant, include_top: top, ..Config::default() }
    }

    #[test]
    fn keras_totals() {
        let s = summary(&cfg(Variant::V1, true));
        assert_eq!((s.total, s.trainable, s.non_trainable), (25_636_712, 25_583_592, 53_120));
        let s = summary(&cfg(Variant::V1, false));
        assert_eq!((s.total, s.trainable, s.non_trainable), (23_587_712, 23_534_592, 53_120));
        let text = s.render(&cfg(Variant::V1, false));
        assert!(text.contains("Total params: 23,587,712"), "{text}");
        assert!(text.contains("conv5_block3_out (Activation)"));
    }

    #[test]
    fn torchvision_totals() {
        let s = summary(&cfg(Variant::V1_5, true));
        assert_eq!(s.total, 25_557_032);
        assert_eq!(s.non_trainable, 0);
        assert_eq!(s.buffers, 53_120);
    }

    #[test]
    fn shapes_follow_the_input() {
        let c = Config { include_top: false, height: 197, width: 161, ..Config::default() };
        let s = summary(&c);
        assert_eq!(s.rows.last().unwrap().shape, vec![7, 6, 2048]);
    }
}

//! Name maps: where each canonical tensor lives in every naming scheme we
//! read. One table per scheme; nothing here reads a file.
//!
//! A canonical tensor is a [`Slot`]: a part (kernel, bias, γ, β, μ, σ²) of one
//! of the 53 convolutions of [`conv_specs`] (by index), or the classifier's
//! kernel or bias. The tables follow `shared/docs/weight-formats.md` §2.

use std::collections::HashMap;

use crate::arch::{conv_specs, ConvSpec, BLOCKS, NUM_CONVS};
use crate::config::Variant;

/// One tensor of a convolution layer and its BatchNorm.
///
/// ```
/// use resnet50::loaders::names::Part;
/// assert_eq!(Part::ALL.iter().filter(|p| p.is_bn()).count(), 4);
/// assert_eq!(Part::Mean.name(), "mean");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Convolution kernel.
    Kernel,
    /// Convolution bias (Keras only).
    Bias,
    /// BatchNorm γ.
    Gamma,
    /// BatchNorm β.
    Beta,
    /// BatchNorm moving mean.
    Mean,
    /// BatchNorm moving variance.
    Var,
}

impl Part {
    /// All parts, conv first then BatchNorm.
    ///
    /// ```
    /// use resnet50::loaders::names::Part;
    /// assert_eq!(Part::ALL.map(Part::name), ["kernel", "bias", "gamma", "beta", "mean", "var"]);
    /// ```
    pub const ALL: [Part; 6] = [Part::Kernel, Part::Bias, Part::Gamma, Part::Beta, Part::Mean, Part::Var];

    /// Canonical short name (`kernel`, `bias`, `gamma`, `beta`, `mean`, `var`).
    ///
    /// ```
    /// assert_eq!(resnet50::loaders::names::Part::Var.name(), "var");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Part::Kernel => "kernel",
            Part::Bias => "bias",
            Part::Gamma => "gamma",
            Part::Beta => "beta",
            Part::Mean => "mean",
            Part::Var => "var",
        }
    }

    /// Whether the part belongs to the BatchNorm layer.
    ///
    /// ```
    /// use resnet50::loaders::names::Part;
    /// assert!(Part::Gamma.is_bn() && !Part::Bias.is_bn());
    /// ```
    pub fn is_bn(self) -> bool {
        !matches!(self, Part::Kernel | Part::Bias)
    }
}

/// A canonical tensor.
///
/// ```
/// use resnet50::loaders::names::{Part, Slot};
/// assert_eq!(Slot::Conv(0, Part::Kernel).canonical_name(), "conv1/kernel");
/// assert_eq!(Slot::FcKernel.canonical_name(), "fc/kernel");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Part of convolution `i` (index into [`conv_specs`]).
    Conv(usize, Part),
    /// Classifier kernel.
    FcKernel,
    /// Classifier bias.
    FcBias,
}

impl Slot {
    /// Canonical name, e.g. `conv2_block1_0/kernel` or `fc/bias`.
    ///
    /// ```
    /// use resnet50::loaders::names::{Part, Slot};
    /// assert_eq!(Slot::Conv(1, Part::Mean).canonical_name(), "conv2_block1_0/mean");
    /// assert_eq!(Slot::FcBias.canonical_name(), "fc/bias");
    /// ```
    pub fn canonical_name(self) -> String {
        match self {
            Slot::Conv(i, p) => format!("{}/{}", conv_specs(Variant::V1)[i].name, p.name()),
            Slot::FcKernel => "fc/kernel".into(),
            Slot::FcBias => "fc/bias".into(),
        }
    }
}

/// Naming schemes of the files we import.
///
/// ```
/// use resnet50::{loaders::names::Scheme, Variant};
/// assert_eq!((Scheme::Torchvision.variant(), Scheme::Keras.variant()), (Variant::V1_5, Variant::V1));
/// assert!(Scheme::Torchvision.torch_layout());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// torchvision and timm `resnet50` state dicts (`conv1.weight`, `layer1.0.bn1.running_var`, …).
    Torchvision,
    /// Hugging Face transformers `microsoft/resnet-50` (`resnet.embedder.embedder.convolution.weight`, …).
    HuggingFace,
    /// Keras names of today (`conv1_conv`, `conv2_block1_0_bn`, `predictions`/`probs`).
    Keras,
    /// Keras 1/2 names of the 2016 file (`conv1`, `bn_conv1`, `res2a_branch2a`, `fc1000`).
    KerasOld,
    /// Keras 3 `.weights.h5` auto keys (`conv2d_3`, `batch_normalization_3`, `dense`).
    Keras3Keys,
}

impl Scheme {
    /// Human name for messages.
    ///
    /// ```
    /// assert_eq!(resnet50::loaders::names::Scheme::Keras.describe(), "Keras names");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::Torchvision => "torchvision/timm names",
            Scheme::HuggingFace => "Hugging Face transformers names",
            Scheme::Keras => "Keras names",
            Scheme::KerasOld => "Keras 1/2 (2016) names",
            Scheme::Keras3Keys => "Keras 3 .weights.h5 keys",
        }
    }

    /// The ResNet50 variant this naming scheme's framework builds.
    ///
    /// ```
    /// use resnet50::{loaders::names::Scheme, Variant};
    /// assert_eq!(Scheme::HuggingFace.variant(), Variant::V1_5);
    /// assert_eq!(Scheme::KerasOld.variant(), Variant::V1);
    /// ```
    pub fn variant(self) -> Variant {
        match self {
            Scheme::Torchvision | Scheme::HuggingFace => Variant::V1_5,
            Scheme::Keras | Scheme::KerasOld | Scheme::Keras3Keys => Variant::V1,
        }
    }

    /// BatchNorm ε the framework uses with these names (see weight-formats.md §1).
    ///
    /// ```
    /// use resnet50::loaders::names::Scheme;
    /// assert_eq!(Scheme::Torchvision.bn_epsilon(), 1e-5);
    /// assert_eq!(Scheme::KerasOld.bn_epsilon(), 1e-3);
    /// ```
    pub fn bn_epsilon(self) -> f32 {
        match self {
            Scheme::Torchvision | Scheme::HuggingFace => 1e-5,
            Scheme::Keras | Scheme::Keras3Keys => 1.001e-5,
            // The 2016 file's model used Keras' default ε, 1e-3.
            Scheme::KerasOld => 1e-3,
        }
    }

    /// Whether kernels are stored OIHW / `[out, in]` (torch) rather than HWIO / `[in, out]` (Keras).
    ///
    /// ```
    /// use resnet50::loaders::names::Scheme;
    /// assert!(Scheme::HuggingFace.torch_layout() && !Scheme::Keras3Keys.torch_layout());
    /// ```
    pub fn torch_layout(self) -> bool {
        matches!(self, Scheme::Torchvision | Scheme::HuggingFace)
    }
}

/// Keras layer names `(conv, bn)` of a convolution, today's scheme
/// (`conv1_conv`/`conv1_bn`, `conv2_block1_0_conv`/`conv2_block1_0_bn`).
///
/// ```
/// use resnet50::{arch::conv_specs, loaders::names::keras_layers, Variant};
/// let (conv, bn) = keras_layers(&conv_specs(Variant::V1)[1]);
/// assert_eq!((conv.as_str(), bn.as_str()), ("conv2_block1_0_conv", "conv2_block1_0_bn"));
/// ```
pub fn keras_layers(spec: &ConvSpec) -> (String, String) {
    (format!("{}_conv", spec.name), format!("{}_bn", spec.name))
}

/// Keras 1/2 layer names `(conv, bn)` (`conv1`/`bn_conv1`, `res2a_branch1`/`bn2a_branch1`).
///
/// ```
/// use resnet50::{arch::conv_specs, loaders::names::keras_old_layers, Variant};
/// let specs = conv_specs(Variant::V1);
/// assert_eq!(keras_old_layers(&specs[0]), ("conv1".to_string(), "bn_conv1".to_string()));
/// assert_eq!(keras_old_layers(&specs[1]), ("res2a_branch1".to_string(), "bn2a_branch1".to_string()));
/// ```
pub fn keras_old_layers(spec: &ConvSpec) -> (String, String) {
    if spec.stage == 1 {
        return ("conv1".into(), "bn_conv1".into());
    }
    let letter = (b'a' + (spec.block - 1) as u8) as char;
    let branch = match spec.index {
        0 => "branch1",
        1 => "branch2a",
        2 => "branch2b",
        _ => "branch2c",
    };
    (format!("res{}{letter}_{branch}", spec.stage), format!("bn{}{letter}_{branch}", spec.stage))
}

/// torchvision/timm module prefixes `(conv, bn)` (`conv1`/`bn1`, `layer1.0.downsample.0`/`layer1.0.downsample.1`).
///
/// ```
/// use resnet50::{arch::conv_specs, loaders::names::torch_modules, Variant};
/// let specs = conv_specs(Variant::V1_5);
/// assert_eq!(torch_modules(&specs[0]), ("conv1".to_string(), "bn1".to_string()));
/// assert_eq!(torch_modules(&specs[2]), ("layer1.0.conv1".to_string(), "layer1.0.bn1".to_string()));
/// ```
pub fn torch_modules(spec: &ConvSpec) -> (String, String) {
    if spec.stage == 1 {
        return ("conv1".into(), "bn1".into());
    }
    let p = format!("layer{}.{}", spec.stage - 1, spec.block - 1);
    match spec.index {
        0 => (format!("{p}.downsample.0"), format!("{p}.downsample.1")),
        i => (format!("{p}.conv{i}"), format!("{p}.bn{i}")),
    }
}

/// Hugging Face module prefixes `(conv, bn)`, without the `resnet.` model prefix.
///
/// ```
/// use resnet50::{arch::conv_specs, loaders::names::hf_modules, Variant};
/// let specs = conv_specs(Variant::V1_5);
/// assert_eq!(hf_modules(&specs[0]).0, "embedder.embedder.convolution");
/// assert_eq!(hf_modules(&specs[1]).1, "encoder.stages.0.layers.0.shortcut.normalization");
/// ```
pub fn hf_modules(spec: &ConvSpec) -> (String, String) {
    let p = if spec.stage == 1 {
        "embedder.embedder".to_string()
    } else {
        let p = format!("encoder.stages.{}.layers.{}", spec.stage - 2, spec.block - 1);
        match spec.index {
            0 => format!("{p}.shortcut"),
            i => format!("{p}.layer.{}", i - 1),
        }
    };
    (format!("{p}.convolution"), format!("{p}.normalization"))
}

/// Keras' order of the convolutions in `model.layers` (and so in legacy
/// `.h5` files and Keras 3 counters): in a projection block the shortcut
/// comes after the 3×3 and before the expanding 1×1. Returns canonical
/// indices.
///
/// ```
/// use resnet50::{arch::NUM_CONVS, loaders::names::keras_model_order};
/// let order = keras_model_order();
/// assert_eq!(order.len(), NUM_CONVS);
/// // conv2_block1: canonical _0 _1 _2 _3 are indices 1..=4; Keras runs _1 _2 _0 _3.
/// assert_eq!(order[..5], [0, 2, 3, 1, 4]);
/// ```
pub fn keras_model_order() -> Vec<usize> {
    let specs = conv_specs(Variant::V1);
    let mut order = Vec::with_capacity(NUM_CONVS);
    let mut i = 0;
    while i < specs.len() {
        if specs[i].index == 0 && specs[i].stage > 1 {
            // canonical: _0 _1 _2 _3  → Keras: _1 _2 _0 _3
            order.extend([i + 1, i + 2, i, i + 3]);
            i += 4;
        } else {
            order.push(i);
            i += 1;
        }
    }
    order
}

/// Keras 3 `.weights.h5` keys `(conv2d_k, batch_normalization_k)` of each
/// canonical convolution (files written before Keras 3.6 have no `name`
/// attribute, so this counter map is the only way in).
///
/// ```
/// let keys = resnet50::loaders::names::keras3_keys();
/// assert_eq!(keys[0], ("conv2d".to_string(), "batch_normalization".to_string()));
/// assert_eq!(keys[1].0, "conv2d_3"); // conv2_block1_0, the shortcut, is Keras' 4th conv
/// ```
pub fn keras3_keys() -> Vec<(String, String)> {
    let mut keys = vec![(String::new(), String::new()); NUM_CONVS];
    for (k, i) in keras_model_order().into_iter().enumerate() {
        let suffix = if k == 0 { String::new() } else { format!("_{k}") };
        keys[i] = (format!("conv2d{suffix}"), format!("batch_normalization{suffix}"));
    }
    keys
}

/// The per-layer table of a layer-based scheme (Keras, Keras 1/2, Keras 3
/// keys): layer (group) name → (conv index, is BatchNorm).
///
/// ```
/// use resnet50::{arch::NUM_CONVS, loaders::names::{layer_table, Scheme}};
/// let t = layer_table(Scheme::Keras);
/// assert_eq!(t.len(), 2 * NUM_CONVS);
/// assert_eq!((t["conv1_conv"], t["conv1_bn"]), ((0, false), (0, true)));
/// assert_eq!(layer_table(Scheme::KerasOld)["bn2a_branch1"], (1, true));
/// ```
pub fn layer_table(scheme: Scheme) -> HashMap<String, (usize, bool)> {
    let specs = conv_specs(Variant::V1);
    let mut t = HashMap::new();
    let k3 = keras3_keys();
    for (i, s) in specs.iter().enumerate() {
        let (c, b) = match scheme {
            Scheme::KerasOld => keras_old_layers(s),
            Scheme::Keras3Keys => k3[i].clone(),
            _ => keras_layers(s),
        };
        t.insert(c, (i, false));
        t.insert(b, (i, true));
    }
    t
}

/// Names of the classifier layer in a layer-based scheme.
///
/// ```
/// use resnet50::loaders::names::{keras_top_layers, Scheme};
/// assert_eq!(keras_top_layers(Scheme::Keras).to_vec(), ["predictions", "probs"]);
/// assert_eq!(keras_top_layers(Scheme::KerasOld).to_vec(), ["fc1000"]);
/// ```
pub fn keras_top_layers(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::KerasOld => &["fc1000"],
        Scheme::Keras3Keys => &["dense"],
        _ => &["predictions", "probs"],
    }
}

/// Classifies a Keras weight name (from a `weight_names` attribute or a
/// safetensors key, after the layer prefix) by its ending: today's
/// `kernel`/`bias`/`gamma`/`beta`/`moving_mean`/`moving_variance` or the
/// 2016 file's `W`/`b`/`gamma`/`beta`/`running_mean`/`running_std` (which
/// holds the variance). `is_bn` picks between a conv's `bias` and a BN's `beta`.
///
/// ```
/// use resnet50::loaders::names::{keras_part, Part};
/// assert_eq!(keras_part("conv1_conv/kernel:0", false), Some(Part::Kernel));
/// assert_eq!(keras_part("bn_conv1_running_std:0", true), Some(Part::Var));
/// assert_eq!(keras_part("conv1_bn/beta", true), Some(Part::Beta));
/// assert_eq!(keras_part("gamma", false), None);
/// ```
pub fn keras_part(var: &str, is_bn: bool) -> Option<Part> {
    let var = var.strip_suffix(":0").unwrap_or(var);
    let ends = |s: &str| var == s || var.ends_with(&format!("/{s}")) || var.ends_with(&format!("_{s}"));
    if is_bn {
        if ends("gamma") {
            Some(Part::Gamma)
        } else if ends("beta") {
            Some(Part::Beta)
        } else if ends("moving_mean") || ends("running_mean") {
            Some(Part::Mean)
        } else if ends("moving_variance") || ends("running_std") || ends("running_var") {
            Some(Part::Var)
        } else {
            None
        }
    } else if ends("kernel") || ends("W") {
        Some(Part::Kernel)
    } else if ends("bias") || ends("b") {
        Some(Part::Bias)
    } else {
        None
    }
}

/// The full-key table of a key-based scheme (safetensors): key → slot, for
/// the backbone keys (after stripping the model prefix) and the classifier
/// keys (absolute). Conv biases are listed too; they are optional.
///
/// ```
/// use resnet50::loaders::names::{key_table, Part, Slot, Scheme};
/// let t = key_table(Scheme::Torchvision);
/// assert_eq!(t["fc.weight"], Slot::FcKernel);
/// assert_eq!(t["layer1.0.bn1.running_var"], Slot::Conv(2, Part::Var));
/// assert_eq!(key_table(Scheme::Keras)["conv1_conv/kernel"], Slot::Conv(0, Part::Kernel));
/// ```
pub fn key_table(scheme: Scheme) -> HashMap<String, Slot> {
    let specs = conv_specs(Variant::V1);
    let mut t = HashMap::new();
    for (i, s) in specs.iter().enumerate() {
        match scheme {
            Scheme::Torchvision | Scheme::HuggingFace => {
                let (c, b) = if scheme == Scheme::Torchvision { torch_modules(s) } else { hf_modules(s) };
                t.insert(format!("{c}.weight"), Slot::Conv(i, Part::Kernel));
                t.insert(format!("{c}.bias"), Slot::Conv(i, Part::Bias));
                t.insert(format!("{b}.weight"), Slot::Conv(i, Part::Gamma));
                t.insert(format!("{b}.bias"), Slot::Conv(i, Part::Beta));
                t.insert(format!("{b}.running_mean"), Slot::Conv(i, Part::Mean));
                t.insert(format!("{b}.running_var"), Slot::Conv(i, Part::Var));
            }
            Scheme::Keras | Scheme::KerasOld | Scheme::Keras3Keys => {
                let (c, b) = match scheme {
                    Scheme::KerasOld => keras_old_layers(s),
                    _ => keras_layers(s),
                };
                t.insert(format!("{c}/kernel"), Slot::Conv(i, Part::Kernel));
                t.insert(format!("{c}/bias"), Slot::Conv(i, Part::Bias));
                t.insert(format!("{b}/gamma"), Slot::Conv(i, Part::Gamma));
                t.insert(format!("{b}/beta"), Slot::Conv(i, Part::Beta));
                t.insert(format!("{b}/moving_mean"), Slot::Conv(i, Part::Mean));
                t.insert(format!("{b}/moving_variance"), Slot::Conv(i, Part::Var));
            }
        }
    }
    match scheme {
        Scheme::Torchvision => {
            t.insert("fc.weight".into(), Slot::FcKernel);
            t.insert("fc.bias".into(), Slot::FcBias);
        }
        Scheme::HuggingFace => {
            t.insert("classifier.1.weight".into(), Slot::FcKernel);
            t.insert("classifier.1.bias".into(), Slot::FcBias);
        }
        _ => {
            for top in keras_top_layers(scheme) {
                t.insert(format!("{top}/kernel"), Slot::FcKernel);
                t.insert(format!("{top}/bias"), Slot::FcBias);
            }
        }
    }
    t
}

/// Normalises a Keras-style safetensors key to `layer/var`: strips `:0`,
/// accepts `.` as separator and the h5 path form `layer/layer/var`; maps the
/// 2016 endings (`_W`, `_b`, `_running_mean`, `_running_std`, …) onto today's.
///
/// ```
/// use resnet50::loaders::names::normalize_keras_key;
/// assert_eq!(normalize_keras_key("conv1_conv/conv1_conv/kernel:0"), "conv1_conv/kernel");
/// assert_eq!(normalize_keras_key("bn_conv1_running_std:0"), "bn_conv1/moving_variance");
/// assert_eq!(normalize_keras_key("conv1.W"), "conv1/kernel");
/// ```
pub fn normalize_keras_key(key: &str) -> String {
    let key = key.strip_suffix(":0").unwrap_or(key);
    let parts: Vec<&str> = key.split(['/', '.']).collect();
    let (layer, var) = match parts.as_slice() {
        [layer, var] => (*layer, *var),
        [layer, same, var] if layer == same => (*layer, *var),
        [single] => {
            // 2016 flat form `bn_conv1_running_std`.
            for (end, new) in [
                ("_running_mean", "moving_mean"),
                ("_running_std", "moving_variance"),
                ("_gamma", "gamma"),
                ("_beta", "beta"),
                ("_W", "kernel"),
                ("_b", "bias"),
            ] {
                if let Some(layer) = single.strip_suffix(end) {
                    return format!("{layer}/{new}");
                }
            }
            return key.to_string();
        }
        _ => return key.to_string(),
    };
    let var = match var {
        "W" => "kernel",
        "b" => "bias",
        "running_mean" => "moving_mean",
        "running_std" | "running_var" => "moving_variance",
        v => v,
    };
    format!("{layer}/{var}")
}

/// A hint for a key that is not part of ResNet50 but follows the scheme's
/// pattern with a block beyond ResNet50's 3/4/6/3 (a ResNet101/152 file).
///
/// ```
/// use resnet50::loaders::names::deeper_resnet_hint;
/// assert!(deeper_resnet_hint("layer3.6.conv1.weight").unwrap().contains("ResNet101/152"));
/// assert!(deeper_resnet_hint("layer3.5.conv1.weight").is_none()); // ResNet50's last block of stage 4
/// ```
pub fn deeper_resnet_hint(key: &str) -> Option<String> {
    let deeper = |stage: usize, block: usize| stage < BLOCKS.len() && block >= BLOCKS[stage];
    // torchvision: layer{1..4}.{b}.  (b 0-based)
    let torch = key.split('.').collect::<Vec<_>>();
    let mut hit = false;
    for w in torch.windows(2) {
        if let (Some(l), Ok(b)) = (w[0].strip_prefix("layer"), w[1].parse::<usize>())
            && let Ok(l) = l.parse::<usize>()
        {
            hit |= (1..=4).contains(&l) && deeper(l - 1, b);
        }
    }
    // HF: stages.{s}.layers.{b}
    for w in torch.windows(4) {
        if w[0] == "stages"
            && w[2] == "layers"
            && let (Ok(s), Ok(b)) = (w[1].parse::<usize>(), w[3].parse::<usize>())
        {
            hit |= deeper(s, b);
        }
    }
    // Keras: conv{2..5}_block{b}_ (b 1-based)
    if let Some(rest) = key.strip_prefix("conv") {
        let mut it = rest.splitn(2, "_block");
        if let (Some(s), Some(r)) = (it.next(), it.next()) {
            let b: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let (Ok(s), Ok(b)) = (s.parse::<usize>(), b.parse::<usize>()) {
                hit |= (2..=5).contains(&s) && b >= 1 && deeper(s - 2, b - 1);
            }
        }
    }
    // Keras 1/2: res{s}{letter}_ / bn{s}{letter}_ (ResNet101 uses res4b1.. — also deeper)
    for p in ["res", "bn"] {
        if let Some(rest) = key.strip_prefix(p) {
            let mut ch = rest.chars();
            if let (Some(s), Some(l)) = (ch.next().and_then(|c| c.to_digit(10)), ch.next()) {
                let s = s as usize;
                if (2..=5).contains(&s) && l.is_ascii_lowercase() {
                    let b = (l as u8 - b'a') as usize;
                    let numbered = ch.next().is_some_and(|c| c.is_ascii_digit());
                    hit |= deeper(s - 2, b) || numbered;
                }
            }
        }
    }
    hit.then(|| {
        format!(
            "{key:?} is a block beyond ResNet50's 3/4/6/3 blocks per stage: this looks like a deeper ResNet (ResNet101/152), which this crate does not run"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_documented_names() {
        let s = conv_specs(Variant::V1);
        let idx = |n: &str| s.iter().position(|c| c.name == n).unwrap();
        let i = idx("conv2_block1_0");
        assert_eq!(keras_old_layers(&s[i]), ("res2a_branch1".into(), "bn2a_branch1".into()));
        assert_eq!(torch_modules(&s[i]), ("layer1.0.downsample.0".into(), "layer1.0.downsample.1".into()));
        assert_eq!(
            hf_modules(&s[i]).0,
            "encoder.stages.0.layers.0.shortcut.convolution",
            "HF shortcut of stage 2 block 1"
        );
        let j = idx("conv4_block6_2");
        assert_eq!(keras_old_layers(&s[j]).0, "res4f_branch2b");
        assert_eq!(torch_modules(&s[j]).1, "layer3.5.bn2");
        assert_eq!(hf_modules(&s[j]).0, "encoder.stages.2.layers.5.layer.1.convolution");
        // Keras 3 counters (weight-formats.md §2): s2.b1.c is conv2d_4, proj conv2d_3.
        let k3 = keras3_keys();
        assert_eq!(k3[0].0, "conv2d");
        assert_eq!(k3[idx("conv2_block1_3")].0, "conv2d_4");
        assert_eq!(k3[idx("conv2_block1_0")].1, "batch_normalization_3");
        assert_eq!(k3[idx("conv4_block1_0")].0, "conv2d_26");
        assert_eq!(k3[idx("conv5_block3_3")].0, "conv2d_52");
        assert_eq!(key_table(Scheme::Torchvision).len(), 53 * 6 + 2);
    }

    #[test]
    fn keras_endings() {
        assert_eq!(keras_part("bn_conv1_running_std:0", true), Some(Part::Var));
        assert_eq!(keras_part("conv1_conv/bias:0", false), Some(Part::Bias));
        assert_eq!(keras_part("conv1_b:0", false), Some(Part::Bias));
        assert_eq!(keras_part("bn2a_branch2a_beta:0", true), Some(Part::Beta));
        assert_eq!(keras_part("res2a_branch1_W:0", false), Some(Part::Kernel));
        assert_eq!(normalize_keras_key("conv1_conv/conv1_conv/kernel:0"), "conv1_conv/kernel");
        assert_eq!(normalize_keras_key("bn_conv1_running_std:0"), "bn_conv1/moving_variance");
        assert_eq!(normalize_keras_key("conv1.W"), "conv1/kernel");
    }

    #[test]
    fn deeper_resnets_are_recognised() {
        assert!(deeper_resnet_hint("layer3.6.conv1.weight").is_some());
        assert!(deeper_resnet_hint("layer3.5.conv1.weight").is_none());
        assert!(deeper_resnet_hint("conv4_block7_1_conv").is_some());
        assert!(deeper_resnet_hint("conv4_block6_1_conv").is_none());
        assert!(deeper_resnet_hint("res4b1_branch2a").is_some());
        assert!(deeper_resnet_hint("resnet.encoder.stages.2.layers.6.layer.0.convolution.weight").is_some());
    }
}

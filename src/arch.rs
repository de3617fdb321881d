//! ResNet50's architecture in one place: the 53 convolutions, in execution
//! order, with the names every importer maps onto.
//!
//! Naming: `conv1` is the 7×7 stem; `conv{stage}_block{b}_{i}` is the `i`-th
//! convolution of bottleneck block `b` of stage `stage` (2..=5), with `i = 0`
//! the projection shortcut (first block of each stage only), `1` the reducing
//! 1×1, `2` the 3×3 and `3` the expanding 1×1 — Keras' names without the
//! `_conv` suffix.

use crate::config::Variant;

/// Blocks per stage (stages 2..=5).
///
/// ```
/// assert_eq!(resnet50::arch::BLOCKS.iter().sum::<usize>(), 16); // 16 bottleneck blocks, 3 convs each
/// ```
pub const BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// Bottleneck width per stage; the block output has 4× as many channels.
///
/// ```
/// use resnet50::arch::{FEATURES, FILTERS};
/// assert_eq!(FILTERS[0], 64);
/// assert_eq!(4 * FILTERS[3], FEATURES); // the last stage's output width
/// ```
pub const FILTERS: [usize; 4] = [64, 128, 256, 512];
/// Channels of the final feature map.
///
/// ```
/// use resnet50::{arch::{conv_specs, FEATURES}, Variant};
/// assert_eq!(conv_specs(Variant::V1).last().unwrap().cout, FEATURES);
/// ```
pub const FEATURES: usize = 2048;
/// Number of convolutions.
///
/// ```
/// use resnet50::arch::{BLOCKS, NUM_CONVS};
/// // The stem, three convolutions per block and four projection shortcuts.
/// assert_eq!(1 + 3 * BLOCKS.iter().sum::<usize>() + 4, NUM_CONVS);
/// ```
pub const NUM_CONVS: usize = 53;

/// One convolution layer (with its BatchNorm) of the network.
///
/// ```
/// let s = &resnet50::arch::conv_specs(resnet50::Variant::V1)[1]; // conv2_block1_0, the projection shortcut
/// assert_eq!((s.name.as_str(), s.k, s.cin, s.cout), ("conv2_block1_0", 1, 64, 256));
/// assert_eq!(s.kernel_len(), 64 * 256);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// Canonical name (`conv1`, `conv2_block1_0`, …).
    pub name: String,
    /// Stage 1..=5 (1 is the stem).
    pub stage: usize,
    /// Block within the stage (1-based; 0 for the stem).
    pub block: usize,
    /// Position in the block: 0 shortcut, 1, 2, 3 (0 for the stem).
    pub index: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Stride.
    pub stride: usize,
    /// Symmetric zero padding.
    pub pad: usize,
}

impl ConvSpec {
    /// Weights of the kernel (without bias).
    ///
    /// ```
    /// let stem = &resnet50::arch::conv_specs(resnet50::Variant::V1)[0];
    /// assert_eq!(stem.kernel_len(), 7 * 7 * 3 * 64);
    /// ```
    pub fn kernel_len(&self) -> usize {
        self.k * self.k * self.cin * self.cout
    }
    /// HWIO shape of the kernel.
    ///
    /// ```
    /// let stem = &resnet50::arch::conv_specs(resnet50::Variant::V1)[0];
    /// assert_eq!(stem.kernel_shape(), [7, 7, 3, 64]);
    /// ```
    pub fn kernel_shape(&self) -> [usize; 4] {
        [self.k, self.k, self.cin, self.cout]
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    name: String,
    stage: usize,
    block: usize,
    index: usize,
    k: usize,
    cin: usize,
    cout: usize,
    stride: usize,
) -> ConvSpec {
    ConvSpec { name, stage, block, index, k, cin, cout, stride, pad: k / 2 }
}

/// The 53 convolutions of `variant` in canonical order: `conv1`, then for
/// each block `_0` (if any), `_1`, `_2`, `_3`.
///
/// ```
/// use resnet50::{arch::{conv_specs, NUM_CONVS}, Variant};
/// let specs = conv_specs(Variant::V1_5);
/// assert_eq!(specs.len(), NUM_CONVS);
/// assert_eq!((specs[0].name.as_str(), specs[0].k, specs[0].stride), ("conv1", 7, 2));
/// // v1.5 downsamples on the 3x3 of a stage's first block, v1 on its first 1x1.
/// let v15 = specs.iter().find(|s| s.name == "conv3_block1_2").unwrap();
/// let v1 = conv_specs(Variant::V1).into_iter().find(|s| s.name == "conv3_block1_2").unwrap();
/// assert_eq!((v15.stride, v1.stride), (2, 1));
/// ```
pub fn conv_specs(variant: Variant) -> Vec<ConvSpec> {
    let mut v = Vec::with_capacity(NUM_CONVS);
    v.push(conv("conv1".into(), 1, 0, 0, 7, 3, 64, 2));
    let mut cin = 64;
    for (si, (&blocks, &f)) in BLOCKS.iter().zip(&FILTERS).enumerate() {
        let stage = si + 2;
        for b in 1..=blocks {
            let name = |i: usize| format!("conv{stage}_block{b}_{i}");
            // Stage 2 follows the max-pool and keeps the resolution.
            let stride = if b == 1 && stage > 2 { 2 } else { 1 };
            let (s1, s2) = match variant {
                Variant::V1 => (stride, 1),
                Variant::V1_5 => (1, stride),
            };
            if b == 1 {
                v.push(conv(name(0), stage, b, 0, 1, cin, 4 * f, stride));
            }
            v.push(conv(name(1), stage, b, 1, 1, cin, f, s1));
            v.push(conv(name(2), stage, b, 2, 3, f, f, s2));
            v.push(conv(name(3), stage, b, 3, 1, f, 4 * f, 1));
            cin = 4 * f;
        }
    }
    debug_assert_eq!(v.len(), NUM_CONVS);
    v
}

/// Output size of a `k × k` convolution or pool with stride `stride` and
/// symmetric padding `pad` along one axis of length `len` (0 if it does not fit).
fn out_len(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    (len + 2 * pad).checked_sub(k).map_or(0, |d| d / stride + 1)
}

/// The stride of each of [`conv_specs`]' 53 convolutions as the plan runs
/// them: the architecture's, or with v1's early stride (see
/// [`crate::plan::Plan::new`]: the 3×3 of each of stages 2–4's last block
/// strides instead of the 1×1 convolutions that follow it).
///
/// ```
/// use resnet50::{arch::{conv_specs, conv_strides}, Variant};
/// let plain = conv_strides(Variant::V1, false);
/// assert_eq!(plain, conv_specs(Variant::V1).iter().map(|s| s.stride).collect::<Vec<_>>());
/// // Early stride moves three of v1's strides onto 3x3s; the stem keeps its stride 2.
/// let early = conv_strides(Variant::V1, true);
/// assert_eq!((early[0], early.iter().filter(|&&s| s == 2).count()), (2, 4));
/// ```
pub fn conv_strides(variant: Variant, early_stride: bool) -> Vec<usize> {
    let specs = conv_specs(variant);
    let early = early_stride && variant == Variant::V1;
    specs
        .iter()
        .map(|s| match (early, s.stage, s.block, s.index) {
            (true, 2..=4, b, 2) if b == BLOCKS[s.stage - 2] => 2,
            (true, 3..=5, 1, 0 | 1) => 1,
            _ => s.stride,
        })
        .collect()
}

/// The input `[height, width]` of each of [`conv_specs`]' 53 convolutions for a
/// `height × width` image (after the stem's stride 2 and the 3×3/2 max-pool,
/// each block's strides, [`conv_strides`]). Sizes are 0 from the layer where
/// the image gets too small; the plan refuses such inputs, this only informs
/// kernel choices.
///
/// ```
/// use resnet50::{arch::conv_input_sizes, Variant};
/// let sizes = conv_input_sizes(Variant::V1_5, 224, 224, false);
/// assert_eq!((sizes[0], sizes[1], sizes[52]), ([224, 224], [56, 56], [7, 7]));
/// assert_eq!(conv_input_sizes(Variant::V1_5, 32, 32, false)[52], [1, 1]);
/// ```
pub fn conv_input_sizes(variant: Variant, height: usize, width: usize, early_stride: bool) -> Vec<[usize; 2]> {
    let specs = conv_specs(variant);
    let strides = conv_strides(variant, early_stride);
    let out = |i: usize, [h, w]: [usize; 2]| {
        let s = &specs[i];
        [out_len(h, s.k, strides[i], s.pad), out_len(w, s.k, strides[i], s.pad)]
    };
    let mut sizes = Vec::with_capacity(specs.len());
    sizes.push([height, width]);
    let stem = out(0, [height, width]);
    let mut block_in = [out_len(stem[0], 3, 2, 1), out_len(stem[1], 3, 2, 1)];
    let mut prev = block_in;
    for (i, s) in specs.iter().enumerate().skip(1) {
        let input = if s.index <= 1 { block_in } else { prev };
        sizes.push(input);
        prev = out(i, input);
        if s.index == 3 {
            block_in = prev;
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_three_convs_both_variants_same_weights_shapes() {
        let a = conv_specs(Variant::V1);
        let b = conv_specs(Variant::V1_5);
        assert_eq!(a.len(), 53);
        assert_eq!(b.len(), 53);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.name, x.kernel_shape()), (&y.name, y.kernel_shape()));
        }
        assert_eq!(a.iter().filter(|c| c.index == 0 && c.stage > 1).count(), 4);
        // Strides: v1 on the first 1x1, v1.5 on the 3x3.
        let find = |v: &[ConvSpec], n: &str| v.iter().find(|c| c.name == n).unwrap().stride;
        assert_eq!(find(&a, "conv3_block1_1"), 2);
        assert_eq!(find(&a, "conv3_block1_2"), 1);
        assert_eq!(find(&b, "conv3_block1_1"), 1);
        assert_eq!(find(&b, "conv3_block1_2"), 2);
        assert_eq!(find(&a, "conv2_block1_1"), 1);
        assert_eq!(find(&a, "conv5_block1_0"), 2);
        let weights: usize = a.iter().map(|c| c.kernel_len()).sum();
        assert_eq!(weights + 2048 * 1000 + 1000, 25_503_912);
    }

    #[test]
    fn input_sizes_follow_the_strides() {
        for variant in [Variant::V1, Variant::V1_5] {
            let specs = conv_specs(variant);
            let sizes = conv_input_sizes(variant, 224, 200, false);
            assert_eq!(sizes.len(), 53);
            let at = |n: &str| sizes[specs.iter().position(|c| c.name == n).unwrap()];
            assert_eq!(at("conv1"), [224, 200]);
            assert_eq!(at("conv2_block1_0"), [56, 50]);
            assert_eq!(at("conv2_block3_2"), [56, 50]);
            assert_eq!(at("conv3_block1_1"), [56, 50]);
            assert_eq!(at("conv4_block1_0"), [28, 25]);
            assert_eq!(at("conv5_block3_3"), [7, 7]);
            // The stride sits on the 1×1 (v1) or the 3×3 (v1.5) of each first block.
            let s3 = if variant == Variant::V1 { [14, 13] } else { [28, 25] };
            assert_eq!(at("conv4_block1_2"), s3);
        }
        assert_eq!(conv_input_sizes(Variant::V1, 1, 1, false)[52], [1, 1]);
        assert_eq!(conv_input_sizes(Variant::V1, 0, 0, false)[52], [0, 0]);
        // Early stride (v1 only): the last 3×3 of stages 2–4 strides, the
        // next 1×1s don't; every stage keeps its resolution.
        let specs = conv_specs(Variant::V1);
        let at = |v: &[[usize; 2]], n: &str| v[specs.iter().position(|c| c.name == n).unwrap()];
        let (full, early) =
            (conv_input_sizes(Variant::V1, 224, 224, false), conv_input_sizes(Variant::V1, 224, 224, true));
        assert_eq!(at(&early, "conv2_block3_2"), [56, 56]);
        assert_eq!(at(&early, "conv2_block3_3"), [28, 28]);
        assert_eq!(at(&full, "conv2_block3_3"), [56, 56]);
        assert_eq!(at(&early, "conv3_block1_0"), [28, 28]);
        assert_eq!(at(&early, "conv3_block1_2"), [28, 28]);
        assert_eq!(at(&early, "conv5_block1_1"), [7, 7]);
        assert_eq!(at(&early, "conv5_block3_3"), at(&full, "conv5_block3_3"));
        let strides = conv_strides(Variant::V1, true);
        assert_eq!(strides.iter().filter(|&&s| s == 2).count(), 4, "the stem and three 3x3s");
        assert_eq!(
            conv_strides(Variant::V1_5, true),
            conv_specs(Variant::V1_5).iter().map(|s| s.stride).collect::<Vec<_>>()
        );
    }
}

//! ONNX models → canonical weights, found by walking the graph.
//!
//! An ONNX file (`torch.onnx.export`, tf2onnx's Keras models, the graphs
//! `bench/compare` gives ONNX Runtime and OpenVINO) is a protobuf
//! `ModelProto`. Its weights carry no names one can rely on: the TorchScript
//! exporter folds every BatchNorm into its convolution and names the results
//! `onnx::Conv_497`. So they are found the way the network computes, from the
//! graph's input: an NHWC input's `Transpose` to NCHW (tf2onnx), the stem
//! `Conv [BatchNormalization] Relu MaxPool` (a zero `Pad` before the `Conv`
//! or the `MaxPool` — Keras' `ZeroPadding2D` — counts as their padding),
//! then each bottleneck's
//! `Conv [BN] Relu Conv [BN] Relu Conv [BN]`, its shortcut (`Conv [BN]` in a
//! stage's first block, the block input otherwise), `Add`, `Relu`; then
//! `GlobalAveragePool` (or `ReduceMean` over H, W), any `Flatten`/`Reshape`/
//! `Squeeze`, and the classifier (`Gemm`, or `MatMul` + `Add`) with an
//! optional `Softmax` — or the graph ends earlier (no top; tf2onnx's
//! `Transpose` back to NHWC allowed). `Identity` nodes are stepped through. Every value on the way must have exactly the
//! consumers ResNet50 gives it, every weight must be stored in the file (an
//! initializer or a `Constant`), and every convolution's kernel shape, group,
//! dilations and padding must be ResNet50's; the strides tell v1 from v1.5.
//! Anything else is an error naming the node and what was expected — a graph
//! that computes something else is never loaded as ResNet50.
//!
//! A convolution followed by a `BatchNormalization` node gets that node's
//! γ, β, μ, σ² (one ε for the whole graph, from the nodes); one without
//! (BatchNorm folded into the kernel and bias by the exporter) gets an
//! identity BatchNorm, and with no BatchNorm node at all the file implies
//! ε = [`FOLDED_EPSILON`], the smallest positive f32, so that the fold in
//! [`crate::weights::fold_batch_norm`] (in f64: √(1 + ε) is exactly 1)
//! leaves the file's kernels and biases bit for bit.
//!
//! The protobuf is read lazily over the mapped file with prost's wire-format
//! primitives: a tensor's `raw_data` is a slice of the file, nothing is
//! decoded that the walk does not need, and the number of nodes, tensors,
//! attributes and dimensions is bounded, so a hostile file cannot make the
//! reader allocate more than a small multiple of what a ResNet50 needs. The
//! structure is walked (and every shape checked) before any value is decoded.
//! Element types: float, float16, bfloat16, double (in `raw_data`, or
//! `float_data` / `double_data`); tensors in external files are refused.

mod proto;

use std::fs::File;
use std::path::Path;

use super::names::{Part, Slot};
use super::{file_err, io_err, tensor_err, Assembler, Format, Loaded};
use crate::arch::{conv_specs, ConvSpec, BLOCKS, FEATURES, FILTERS, NUM_CONVS};
use crate::config::Variant;
use crate::error::{Error, Result};
use proto::{parse_model, Graph, Node, TensorData};

/// The BatchNorm ε a graph without BatchNormalization nodes implies (its
/// BatchNorms folded by the exporter): the smallest positive normal f32, so
/// the identity BatchNorm put in their place folds to exactly 1.
pub const FOLDED_EPSILON: f32 = f32::MIN_POSITIVE;

/// Most nodes a graph may have (ResNet50 has 120–500 depending on the
/// exporter); bounds what a hostile file can make the reader keep.
pub const MAX_NODES: usize = 50_000;
/// Most initializers a graph may have.
pub const MAX_INITIALIZERS: usize = 50_000;

// ---------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------

/// Where a weight of the canonical model is in the file.
struct Found<'a> {
    slot: Slot,
    tensor: &'a str,
    /// A `[2048, classes]` classifier kernel (`Gemm` with `transB = 0`, or
    /// `MatMul`), transposed to torch's `[classes, 2048]` when read.
    transpose: bool,
}

struct Walk<'w, 'a> {
    path: &'w Path,
    g: &'w Graph<'a>,
    /// Checks each weight's shape during the walk; fed the values after it.
    asm: Assembler<'w>,
    specs: Vec<ConvSpec>,
    found: Vec<Found<'a>>,
    strides: Vec<usize>,
    /// Per conv: the ε of its BatchNormalization node, if it has one.
    bn: Vec<Option<(f32, &'a str)>>,
    has_bias: Vec<bool>,
}

impl<'w, 'a> Walk<'w, 'a> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        file_err(self.path, format!("ONNX graph: {msg}"))
    }

    fn consumers(&self, value: &str) -> Vec<&'w Node<'a>> {
        self.g.consumers.get(value).map_or_else(Vec::new, |c| c.iter().map(|&i| &self.g.nodes[i]).collect())
    }

    /// `value`, or what a chain of `Identity` nodes (its only consumers) passes it to.
    fn through_identity(&self, mut value: &'a str) -> &'a str {
        for _ in 0..MAX_NODES {
            match self.consumers(value).as_slice() {
                [n] if n.is("Identity") && n.inputs.first() == Some(&value) => match n.outputs.first() {
                    Some(out) => value = out,
                    None => break,
                },
                _ => break,
            }
        }
        value
    }

    fn describe_consumers(&self, value: &str) -> String {
        let c = self.consumers(value);
        if c.is_empty() {
            return if self.g.outputs.contains(&value) { "is a graph output".into() } else { "is not used".into() };
        }
        let names: Vec<String> = c.iter().take(4).map(|n| n.describe()).collect();
        format!("feeds {}", names.join(", "))
    }

    /// The one consumer of `value`, which must be `op` taking it as input 0.
    fn sole(&self, value: &'a str, op: &str, context: &str) -> Result<&'w Node<'a>> {
        match self.consumers(value).as_slice() {
            [n] if n.is(op) && n.inputs.first() == Some(&value) => Ok(n),
            _ => Err(self.err(format!(
                "value {value:?} {}, where ResNet50 has one {op} ({context})",
                self.describe_consumers(value)
            ))),
        }
    }

    fn output(&self, n: &Node<'a>) -> Result<&'a str> {
        match n.outputs.first() {
            Some(&o) if !o.is_empty() => Ok(self.through_identity(o)),
            _ => Err(self.err(format!("{} has no output", n.describe()))),
        }
    }

    fn attr_err(&self, n: &Node<'_>, e: String) -> Error {
        self.err(format!("{}: {e}", n.describe()))
    }

    /// The dims of a stored tensor that is input `k` of `n`.
    fn stored(&self, n: &Node<'a>, k: usize, what: &str) -> Result<(&'a str, Vec<usize>)> {
        let name = n.inputs.get(k).copied().filter(|s| !s.is_empty());
        let Some(name) = name else {
            return Err(self.err(format!("{} has no {what} input", n.describe())));
        };
        let Some(msg) = self.g.stored.get(name) else {
            return Err(self.err(format!(
                "the {what} {name:?} of {} is computed by the graph, not stored in the file (an initializer or a Constant)",
                n.describe()
            )));
        };
        let t = TensorData::parse(msg, false).map_err(|e| tensor_err(self.path, name, e))?;
        Ok((name, t.dims))
    }

    /// The values of a stored int64 tensor that is input `k` of `n`.
    fn stored_ints(&self, n: &Node<'a>, k: usize, what: &str) -> Result<Vec<i64>> {
        let (name, _) = self.stored(n, k, what)?;
        TensorData::int64s(self.g.stored[name]).map_err(|e| tensor_err(self.path, name, e))
    }

    /// The H and W padding `[top, left, bottom, right]` of a zero `Pad` node
    /// (Keras' `ZeroPadding2D` as tf2onnx writes it); anything else is an error.
    fn zero_pad(&self, n: &Node<'a>) -> Result<[i64; 4]> {
        let e = |e: String| self.attr_err(n, e);
        let mode = n.text("mode").map_err(e)?;
        let pads = match n.ints("pads").map_err(e)? {
            Some(p) => p,
            None => self.stored_ints(n, 1, "pads")?,
        };
        let value = match n.inputs.get(2).filter(|v| !v.is_empty()) {
            Some(_) => {
                let (name, _) = self.stored(n, 2, "constant value")?;
                let t = TensorData::parse(self.g.stored[name], true).map_err(|e| tensor_err(self.path, name, e))?;
                t.values().map_err(|e| tensor_err(self.path, name, e))?.first().copied().unwrap_or(f32::NAN)
            }
            None => n.float("value", 0.0).map_err(e)?,
        };
        let axes = n.inputs.get(3).is_some_and(|a| !a.is_empty());
        match pads[..] {
            [0, 0, t, l, 0, 0, b, r] if matches!(mode, "" | "constant") && value == 0.0 && !axes => Ok([t, l, b, r]),
            _ => Err(self.err(format!(
                "{} pads {pads:?} (mode {mode:?}, value {value}), where ResNet50 has a zero padding of H and W",
                n.describe()
            ))),
        }
    }

    /// `x`, or the output of the zero `Pad` that is its only consumer, with
    /// that padding.
    fn through_pad(&self, x: &'a str) -> Result<(&'a str, [i64; 4])> {
        match self.consumers(x).as_slice() {
            [p] if p.is("Pad") && p.inputs.first() == Some(&x) => Ok((self.output(p)?, self.zero_pad(p)?)),
            _ => Ok((x, [0; 4])),
        }
    }

    fn take(&mut self, slot: Slot, name: &'a str, dims: &[usize]) -> Result<()> {
        self.asm.check_shape(slot, name, dims)?;
        self.found.push(Found { slot, tensor: name, transpose: false });
        Ok(())
    }

    /// The convolution `n` (input `x`) as canonical conv `i`, and its
    /// BatchNormalization if it has one; returns the value after them.
    /// `padded` is what a `Pad` node before it added (`[top, left, bottom, right]`).
    fn conv(&mut self, x: &'a str, n: &'w Node<'a>, i: usize, padded: [i64; 4]) -> Result<&'a str> {
        let s = self.specs[i].clone();
        if n.inputs.first() != Some(&x) {
            return Err(self.err(format!("{} takes {x:?} as a weight, not as its input", n.describe())));
        }
        let (w, dims) = self.stored(n, 1, "weight")?;
        self.take(Slot::Conv(i, Part::Kernel), w, &dims)?;
        if n.inputs.get(2).is_some_and(|b| !b.is_empty()) {
            let (b, dims) = self.stored(n, 2, "bias")?;
            self.take(Slot::Conv(i, Part::Bias), b, &dims)?;
            self.has_bias[i] = true;
        }
        let bad = |what: &str, found: String, want: String| {
            self.err(format!("{} (ResNet50's {}) has {what} {found}, expected {want}", n.describe(), s.name))
        };
        let group = n.int("group", 1).map_err(|e| self.attr_err(n, e))?;
        if group != 1 {
            return Err(bad("group", group.to_string(), "1".into()));
        }
        let ints = |name: &str| n.ints(name).map_err(|e| self.attr_err(n, e));
        if let Some(d) = ints("dilations")?
            && d.iter().any(|&d| d != 1)
        {
            return Err(bad("dilations", format!("{d:?}"), "1".into()));
        }
        let k = s.k as i64;
        if let Some(ks) = ints("kernel_shape")?
            && ks != [k, k]
        {
            return Err(bad("kernel_shape", format!("{ks:?}"), format!("{:?}", [k, k])));
        }
        let strides = ints("strides")?.unwrap_or_else(|| vec![1, 1]);
        let stride = match strides.as_slice() {
            [a, b] if a == b && (*a == 1 || *a == 2) => *a as usize,
            _ => return Err(bad("strides", format!("{strides:?}"), "[1, 1] or [2, 2]".into())),
        };
        let p = s.pad as i64;
        let auto_pad = n.text("auto_pad").map_err(|e| self.attr_err(n, e))?;
        let pads = ints("pads")?.unwrap_or_else(|| vec![0; 4]);
        let total = |own: &[i64]| own.iter().zip(padded).map(|(a, b)| a + b).collect::<Vec<i64>>();
        let pads_ok = match auto_pad {
            "" | "NOTSET" => total(&pads) == [p; 4],
            "VALID" => padded == [p; 4],
            // Same-padding is symmetric only at stride 1 with an odd kernel.
            "SAME_UPPER" | "SAME_LOWER" => stride == 1 && padded == [0; 4],
            _ => false,
        };
        if !pads_ok {
            let mut found =
                if matches!(auto_pad, "" | "NOTSET") { format!("{pads:?}") } else { format!("auto_pad {auto_pad}") };
            if padded != [0; 4] {
                found = format!("{found} after a Pad of {padded:?}");
            }
            return Err(bad("padding", found, format!("pads {:?}", [p; 4])));
        }
        self.strides[i] = stride;
        let y = self.output(n)?;
        match self.consumers(y).as_slice() {
            [bn] if bn.is("BatchNormalization") && bn.inputs.first() == Some(&y) => {
                if bn.int("training_mode", 0).map_err(|e| self.attr_err(bn, e))? != 0 {
                    return Err(self.err(format!("{} is in training mode", bn.describe())));
                }
                for (k, part) in [(1, Part::Gamma), (2, Part::Beta), (3, Part::Mean), (4, Part::Var)] {
                    let (t, dims) = self.stored(bn, k, part.name())?;
                    self.take(Slot::Conv(i, part), t, &dims)?;
                }
                let eps = bn.float("epsilon", 1e-5).map_err(|e| self.attr_err(bn, e))?;
                if !(eps.is_finite() && eps >= 0.0) {
                    return Err(self.err(format!("{} has epsilon {eps}", bn.describe())));
                }
                self.bn[i] = Some((eps, if bn.name.is_empty() { y } else { bn.name }));
                self.output(bn)
            }
            _ => Ok(y),
        }
    }

    fn relu(&self, x: &'a str, context: &str) -> Result<&'a str> {
        let n = self.sole(x, "Relu", context)?;
        self.output(n)
    }

    fn index(&self, name: &str) -> usize {
        self.specs.iter().position(|s| s.name == name).expect("a conv of ResNet50")
    }

    fn stem(&mut self, input: &'a str) -> Result<&'a str> {
        let mut x = self.through_identity(input);
        // An NHWC input transposed to NCHW first (tf2onnx's Keras graphs).
        if let [t] = self.consumers(x).as_slice()
            && t.is("Transpose")
            && t.inputs.first() == Some(&x)
            && t.ints("perm").map_err(|e| self.attr_err(t, e))?.as_deref() == Some(&[0, 3, 1, 2][..])
        {
            x = self.output(t)?;
        }
        let (x, padded) = self.through_pad(x)?;
        let c = self.sole(x, "Conv", "the stem convolution conv1; preprocessing inside the graph is not read")?;
        let y = self.conv(x, c, 0, padded)?;
        let y = self.relu(y, "after conv1")?;
        // Keras pads with zeros, torch with -inf: the same after a ReLU.
        let (y, padded) = self.through_pad(y)?;
        let pool = self.sole(y, "MaxPool", "the 3x3/2 max-pool after conv1")?;
        let ints = |name: &str| pool.ints(name).map_err(|e| self.attr_err(pool, e));
        let pads = ints("pads")?.unwrap_or_else(|| vec![0; 4]);
        let auto_pad = pool.text("auto_pad").map_err(|e| self.attr_err(pool, e))?;
        let ok = ints("kernel_shape")?.as_deref() == Some(&[3, 3][..])
            && ints("strides")?.as_deref() == Some(&[2, 2][..])
            && pads.len() == 4
            && pads.iter().zip(padded).all(|(a, b)| a + b == 1)
            && (matches!(auto_pad, "" | "NOTSET") || (auto_pad == "VALID" && pads == [0; 4]))
            && ints("dilations")?.is_none_or(|d| d.iter().all(|&d| d == 1))
            && pool.int("ceil_mode", 0).map_err(|e| self.attr_err(pool, e))? == 0;
        if !ok {
            return Err(self.err(format!(
                "{} is not ResNet50's max-pool (kernel_shape [3, 3], strides [2, 2], pads [1, 1, 1, 1] with any Pad before it, ceil_mode 0)",
                pool.describe()
            )));
        }
        self.output(pool)
    }

    /// One bottleneck block with input `x`; returns its output.
    fn block(&mut self, x: &'a str, stage: usize, b: usize, filters: usize) -> Result<&'a str> {
        let p = format!("conv{stage}_block{b}");
        let users = self.consumers(x);
        let convs: Vec<&'w Node<'a>> =
            users.iter().copied().filter(|n| n.is("Conv") && n.inputs.first() == Some(&x)).collect();
        let adds = users.iter().filter(|n| n.is("Add")).count();
        let (main, short) = if b == 1 {
            if users.len() != 2 || convs.len() != 2 {
                return Err(self.err(format!(
                    "value {x:?} {}, where ResNet50 has the two 1x1 convolutions of {p} (main path and shortcut)",
                    self.describe_consumers(x)
                )));
            }
            // The shortcut widens to 4·filters, the main path's first 1x1 to filters.
            let cout = |n: &Node<'a>| self.stored(n, 1, "weight").map(|(_, d)| d.first().copied());
            let (a, bb) = (cout(convs[0])?, cout(convs[1])?);
            let (main, short) = match (a, bb) {
                (Some(a), _) if a == 4 * filters => (convs[1], convs[0]),
                (_, Some(bb)) if bb == 4 * filters => (convs[0], convs[1]),
                _ => {
                    return Err(self.err(format!(
                        "neither convolution reading {x:?} has the {} output channels of {p}'s shortcut",
                        4 * filters
                    )));
                }
            };
            let i0 = self.index(&format!("{p}_0"));
            (main, self.conv(x, short, i0, [0; 4])?)
        } else {
            if users.len() != 2 || convs.len() != 1 || adds != 1 {
                return Err(self.err(format!(
                    "value {x:?} {}, where ResNet50 has {p}'s first 1x1 convolution and its residual Add",
                    self.describe_consumers(x)
                )));
            }
            (convs[0], x)
        };
        let y = self.conv(x, main, self.index(&format!("{p}_1")), [0; 4])?;
        let y = self.relu(y, &format!("after {p}_1"))?;
        let c2 = self.sole(y, "Conv", &format!("{p}_2"))?;
        let y = self.conv(y, c2, self.index(&format!("{p}_2")), [0; 4])?;
        let y = self.relu(y, &format!("after {p}_2"))?;
        let c3 = self.sole(y, "Conv", &format!("{p}_3"))?;
        let y = self.conv(y, c3, self.index(&format!("{p}_3")), [0; 4])?;
        let add = match self.consumers(y).as_slice() {
            [n] if n.is("Add") => *n,
            _ => {
                return Err(self.err(format!(
                    "value {y:?} {}, where ResNet50 has {p}'s residual Add",
                    self.describe_consumers(y)
                )));
            }
        };
        let sum_of = |a: &str, b: &str| add.inputs.len() == 2 && add.inputs.contains(&a) && add.inputs.contains(&b);
        if !sum_of(y, short) {
            return Err(self.err(format!(
                "{} adds {:?}, where ResNet50's {p} adds {y:?} and its shortcut {short:?}",
                add.describe(),
                add.inputs
            )));
        }
        let out = self.output(add)?;
        self.relu(out, &format!("after {p}'s residual Add"))
    }

    /// After the last block: pooling and the classifier, or the end of the graph.
    fn head(&mut self, x: &'a str) -> Result<()> {
        let users = self.consumers(x);
        if users.is_empty() {
            return self.ends(x, "the last block");
        }
        // tf2onnx's Keras graphs without the top return NHWC feature maps.
        if let [t] = users.as_slice()
            && t.is("Transpose")
            && t.inputs.first() == Some(&x)
            && t.ints("perm").map_err(|e| self.attr_err(t, e))?.as_deref() == Some(&[0, 2, 3, 1][..])
        {
            let out = self.output(t)?;
            return self.ends(out, "the last block's transpose to NHWC");
        }
        let pool = match users.as_slice() {
            [n] if n.is("GlobalAveragePool") || n.is("GlobalMaxPool") || n.is("ReduceMean") => *n,
            _ => {
                return Err(self.err(format!(
                    "value {x:?} {}, where ResNet50 has a global pool (or the graph's output)",
                    self.describe_consumers(x)
                )));
            }
        };
        if pool.is("ReduceMean") {
            self.check_reduce_mean(pool)?;
        }
        let mut p = self.output(pool)?;
        for _ in 0..8 {
            match self.consumers(p).as_slice() {
                [n] if (n.is("Flatten") || n.is("Reshape") || n.is("Squeeze")) && n.inputs.first() == Some(&p) => {
                    p = self.output(n)?
                }
                _ => break,
            }
        }
        let users = self.consumers(p);
        let fc = match users.as_slice() {
            [] => return self.ends(p, "the global pool"),
            [n] if !pool.is("GlobalMaxPool") && (n.is("Gemm") || n.is("MatMul")) && n.inputs.first() == Some(&p) => *n,
            _ => {
                return Err(self.err(format!(
                    "value {p:?} {}, where ResNet50 has its classifier (a Gemm after the average pool) or the graph's output",
                    self.describe_consumers(p)
                )));
            }
        };
        let (w, dims) = self.stored(fc, 1, "weight")?;
        // Gemm's C is its input 2; the bias Add's whichever input is not the product.
        let (transposed, bias_node, bias_input) = if fc.is("Gemm") {
            let ok = fc.int("transA", 0).map_err(|e| self.attr_err(fc, e))? == 0
                && fc.float("alpha", 1.0).map_err(|e| self.attr_err(fc, e))? == 1.0
                && fc.float("beta", 1.0).map_err(|e| self.attr_err(fc, e))? == 1.0;
            if !ok {
                return Err(self.err(format!("{} has transA, alpha or beta other than 0, 1, 1", fc.describe())));
            }
            (fc.int("transB", 0).map_err(|e| self.attr_err(fc, e))? == 0, fc, 2)
        } else {
            let out = self.output(fc)?;
            match self.consumers(out).as_slice() {
                [add] if add.is("Add") && add.inputs.len() == 2 && add.inputs.contains(&out) => {
                    (true, *add, if add.inputs[0] == out { 1 } else { 0 })
                }
                _ => {
                    return Err(self.err(format!(
                        "value {out:?} {}, where ResNet50's classifier adds its bias",
                        self.describe_consumers(out)
                    )));
                }
            }
        };
        let (b, bdims) = self.stored(bias_node, bias_input, "bias")?;
        // The assembler reads torch's [classes, 2048]; [2048, classes] is transposed on reading.
        let kdims = if transposed { dims.iter().rev().copied().collect() } else { dims.clone() };
        if transposed && dims.first() != Some(&FEATURES) {
            return Err(tensor_err(
                self.path,
                w,
                format!("has shape {dims:?} but ResNet50's fc kernel needs [2048, classes]"),
            ));
        }
        self.asm.check_shape(Slot::FcKernel, w, &kdims)?;
        self.found.push(Found { slot: Slot::FcKernel, tensor: w, transpose: transposed });
        self.take(Slot::FcBias, b, &bdims)?;
        let logits = self.output(bias_node)?;
        match self.consumers(logits).as_slice() {
            [] => self.ends(logits, "the classifier"),
            [s] if s.is("Softmax") && s.inputs.first() == Some(&logits) => {
                let out = self.output(s)?;
                self.ends(out, "the classifier's softmax")
            }
            _ => Err(self.err(format!(
                "value {logits:?} {}, where ResNet50's classifier ends the graph (or a Softmax does)",
                self.describe_consumers(logits)
            ))),
        }
    }

    fn check_reduce_mean(&self, n: &Node<'a>) -> Result<()> {
        let axes = match n.ints("axes").map_err(|e| self.attr_err(n, e))? {
            Some(a) => a,
            // Opset 18: the axes are input 1.
            None => self.stored_ints(n, 1, "axes")?,
        };
        let mut sorted = axes.clone();
        sorted.sort_unstable();
        if sorted != [2, 3] && sorted != [-2, -1] {
            return Err(self.err(format!("{} averages over axes {axes:?}, expected H and W ([2, 3])", n.describe())));
        }
        Ok(())
    }

    /// `value` must be what the graph returns.
    fn ends(&self, value: &'a str, what: &str) -> Result<()> {
        if self.g.outputs.contains(&value) {
            Ok(())
        } else {
            Err(self.err(format!("the output of {what} ({value:?}) is not used and is not a graph output")))
        }
    }
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Loads an ONNX model file, reading it through a read-only mapping.
///
/// ```
/// use resnet50::loaders::{export, onnx, Format};
/// use resnet50::{init, Variant};
/// let path = std::env::temp_dir().join(format!("resnet50-doc-{}-{}.onnx", line!(), std::process::id()));
/// let w = init::keras_random(Variant::V1_5, Some(10), 0);
/// std::fs::write(&path, export::onnx_model(&w, 1e-5, false).to_bytes()).unwrap();
/// let loaded = onnx::load_file(&path, &std::fs::File::open(&path).unwrap())?;
/// assert_eq!((loaded.format, &loaded.weights), (Format::Onnx, &w));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn load_file(path: &Path, file: &File) -> Result<Loaded> {
    let map = resnet50_kernels::mapped::map_file(file).map_err(|e| io_err(path, e))?;
    from_bytes(path, &map)
}

/// Maps the ONNX model `bytes` (named `path` in messages) onto canonical
/// weights by walking its graph (module docs). The variant comes from the
/// convolutions' strides, the classes from the classifier, the BatchNorm ε
/// from the `BatchNormalization` nodes ([`FOLDED_EPSILON`] when every
/// BatchNorm is folded).
///
/// ```
/// use resnet50::loaders::{export, onnx};
/// use resnet50::{init, Variant};
/// let w = init::keras_random(Variant::V1, None, 0);
/// // BatchNorm folded into the convolutions, as torch.onnx.export writes it.
/// let bytes = export::onnx_model(&w, 1.001e-5, true).to_bytes();
/// let loaded = onnx::from_bytes(std::path::Path::new("mem"), &bytes)?;
/// assert_eq!((loaded.weights.variant, loaded.classes(), loaded.bn_epsilon), (Variant::V1, None, Some(onnx::FOLDED_EPSILON)));
/// let err = onnx::from_bytes(std::path::Path::new("mem"), &bytes[..1000]).unwrap_err();
/// assert!(err.to_string().contains("truncated"), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let g = parse_model(bytes).map_err(|e| file_err(path, format!("not a readable ONNX model: {e}")))?;
    let specs = conv_specs(Variant::V1);
    let mut walk = Walk {
        path,
        g: &g,
        asm: Assembler::new(path, true),
        specs,
        found: Vec::new(),
        strides: vec![0; NUM_CONVS],
        bn: vec![None; NUM_CONVS],
        has_bias: vec![false; NUM_CONVS],
    };
    let input = g
        .inputs
        .iter()
        .copied()
        .find(|n| !g.stored.contains_key(n))
        .ok_or_else(|| walk.err("the graph has no input that is not an initializer"))?;
    let mut x = walk.stem(input)?;
    for (si, (&blocks, &filters)) in BLOCKS.iter().zip(&FILTERS).enumerate() {
        for b in 1..=blocks {
            x = walk.block(x, si + 2, b, filters)?;
        }
    }
    walk.head(x)?;
    let variant = variant_of(&walk)?;
    let eps = bn_epsilon(&walk)?;
    let Walk { found, has_bias, bn, mut asm, .. } = walk;
    for f in &found {
        let msg = g.stored[f.tensor];
        let t = TensorData::parse(msg, true).map_err(|e| tensor_err(path, f.tensor, e))?;
        let mut values = t.values().map_err(|e| tensor_err(path, f.tensor, e))?;
        let mut dims = t.dims;
        if f.transpose {
            values = super::transpose(&values, dims[0], dims[1]);
            dims.reverse();
        }
        asm.put(f.slot, f.tensor, &dims, values)?;
    }
    // Conv biases are all or none in canonical weights; BatchNorm is identity
    // where the exporter folded it (exactly so with FOLDED_EPSILON, to the
    // last bit of γ = √(1 + ε) otherwise).
    let specs = conv_specs(variant);
    let any_bias = has_bias.iter().any(|&b| b);
    for (i, s) in specs.iter().enumerate() {
        let c = [s.cout];
        if any_bias && !has_bias[i] {
            asm.put(Slot::Conv(i, Part::Bias), "(no bias: zeros)", &c, vec![0.0; s.cout])?;
        }
        if bn[i].is_none() {
            let gamma = ((1.0 + eps as f64).sqrt()) as f32;
            for (part, v) in [(Part::Gamma, gamma), (Part::Beta, 0.0), (Part::Mean, 0.0), (Part::Var, 1.0)] {
                asm.put(Slot::Conv(i, part), "(BatchNorm folded: identity)", &c, vec![v; s.cout])?;
            }
        }
    }
    let weights = asm.finish(variant, |slot| slot.canonical_name())?;
    Ok(Loaded { weights, bn_epsilon: Some(eps), format: Format::Onnx, path: path.to_path_buf() })
}

/// v1 strides its first block's first 1x1 convolutions, v1.5 the 3x3 ones.
fn variant_of(walk: &Walk<'_, '_>) -> Result<Variant> {
    let v1 = conv_specs(Variant::V1);
    let v15 = conv_specs(Variant::V1_5);
    let fits = |specs: &[ConvSpec]| specs.iter().zip(&walk.strides).all(|(s, &st)| s.stride == st);
    if fits(&v1) {
        return Ok(Variant::V1);
    }
    if fits(&v15) {
        return Ok(Variant::V1_5);
    }
    let pairs = || v1.iter().zip(&v15).zip(&walk.strides);
    // A stride neither variant has, else the first that is not v1's (a mix).
    let ((a, b), &st) = pairs()
        .find(|((a, b), st)| a.stride != **st && b.stride != **st)
        .or_else(|| pairs().find(|((a, _), st)| a.stride != **st))
        .expect("the strides fit neither variant, so one differs from v1's");
    Err(walk.err(format!(
        "the convolutions' strides are neither ResNet50 v1's nor v1.5's: {} has stride {st} (v1: {}, v1.5: {})",
        a.name, a.stride, b.stride
    )))
}

/// The ε of the graph's BatchNormalization nodes (all the same), or
/// [`FOLDED_EPSILON`] when every BatchNorm is folded.
fn bn_epsilon(walk: &Walk<'_, '_>) -> Result<f32> {
    let mut eps = walk.bn.iter().flatten();
    let Some(&(first, first_node)) = eps.next() else { return Ok(FOLDED_EPSILON) };
    if let Some(&(e, node)) = eps.find(|(e, _)| e.to_bits() != first.to_bits()) {
        return Err(walk.err(format!(
            "BatchNormalization nodes with different epsilon ({first} in {first_node:?}, {e} in {node:?}); one model has one ε"
        )));
    }
    Ok(first)
}

/// Whether `head` looks like the start of an ONNX `ModelProto`: field 1
/// (`ir_version`, a varint 1–31) then another ModelProto field key.
///
/// ```
/// assert!(resnet50::loaders::onnx::looks_like_onnx(b"\x08\x08\x12\x07pytorch"));
/// assert!(!resnet50::loaders::onnx::looks_like_onnx(b"\x08\x08\x08\x08"));
/// ```
pub fn looks_like_onnx(head: &[u8]) -> bool {
    // producer_name 2, producer_version 3, domain 4 (strings), model_version 5
    // (varint), doc_string 6, graph 7, opset_import 8 (bytes).
    matches!(head, [0x08, 1..=31, 0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42, ..])
}

//! ONNX models → canonical weights, found by walking the graph.
//!
//! An ONNX file (`torch.onnx.export`, the graphs `bench/compare` gives ONNX
//! Runtime and OpenVINO) is a protobuf `ModelProto`. Its weights carry no
//! names one can rely on: the TorchScript exporter folds every BatchNorm into
//! its convolution and names the results `onnx::Conv_497`. So they are found
//! the way the network computes, from the graph's input: the stem
//! `Conv [BatchNormalization] Relu MaxPool`, then each bottleneck's
//! `Conv [BN] Relu Conv [BN] Relu Conv [BN]`, its shortcut (`Conv [BN]` in a
//! stage's first block, the block input otherwise), `Add`, `Relu`; then
//! `GlobalAveragePool` (or `ReduceMean` over H, W), any `Flatten`/`Reshape`/
//! `Squeeze`, and the classifier (`Gemm`, or `MatMul` + `Add`) with an
//! optional `Softmax` — or the graph ends earlier (no top). `Identity` nodes
//! are stepped through. Every value on the way must have exactly the
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

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use prost::encoding::{decode_key, decode_varint, WireType};

use super::names::{Part, Slot};
use super::{decode_le, file_err, io_err, tensor_err, Assembler, Elem, Format, Loaded};
use crate::arch::{conv_specs, ConvSpec, BLOCKS, FEATURES, FILTERS, NUM_CONVS};
use crate::config::Variant;
use crate::error::{Error, Result};

/// The BatchNorm ε a graph without BatchNormalization nodes implies (its
/// BatchNorms folded by the exporter): the smallest positive normal f32, so
/// the identity BatchNorm put in their place folds to exactly 1.
pub const FOLDED_EPSILON: f32 = f32::MIN_POSITIVE;

/// Most nodes a graph may have (ResNet50 has 120–250 depending on the
/// exporter); bounds what a hostile file can make the reader keep.
pub const MAX_NODES: usize = 50_000;
/// Most initializers a graph may have.
pub const MAX_INITIALIZERS: usize = 50_000;
/// Most inputs, outputs or attributes one node may have (ResNet50's have at
/// most 5 inputs and 7 attributes). With [`MAX_NODES`] this bounds what the
/// reader keeps of a graph (nodes and the consumer map) to ~200 MB, however
/// the file is made.
const MAX_NODE_FIELDS: usize = 32;
/// Most values an integer-list attribute may have (`pads` has 4).
const MAX_INTS: usize = 64;
/// Most dimensions a tensor may have.
const MAX_DIMS: usize = 8;

// ---------------------------------------------------------------------------
// Protobuf wire format
// ---------------------------------------------------------------------------

/// One field's value, as the wire format carries it.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message in file order (a repeated field is
/// seen once per element; a packed one once, as bytes). Stops at the first
/// malformed field, which it reports.
struct Fields<'a> {
    buf: &'a [u8],
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> std::result::Result<(u32, Value<'a>), String> {
        let (tag, wire) = decode_key(&mut self.buf).map_err(|e| format!("malformed protobuf field key: {e}"))?;
        let value = match wire {
            WireType::Varint => Value::Varint(decode_varint(&mut self.buf).map_err(|e| format!("field {tag}: {e}"))?),
            WireType::SixtyFourBit => {
                Value::Fixed64(u64::from_le_bytes(self.take(tag, 8)?.try_into().expect("8 bytes")))
            }
            WireType::ThirtyTwoBit => {
                Value::Fixed32(u32::from_le_bytes(self.take(tag, 4)?.try_into().expect("4 bytes")))
            }
            WireType::LengthDelimited => {
                let n = decode_varint(&mut self.buf).map_err(|e| format!("field {tag}: {e}"))?;
                Value::Bytes(self.take(tag, usize::try_from(n).unwrap_or(usize::MAX))?)
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(format!("field {tag} is a protobuf group, which ONNX does not use"));
            }
        };
        Ok((tag, value))
    }

    fn take(&mut self, tag: u32, n: usize) -> std::result::Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!("field {tag} needs {n} bytes but {} are left (truncated?)", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = std::result::Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            self.buf = &[];
        }
        Some(r)
    }
}

fn bytes<'a>(v: Value<'a>, what: &str) -> std::result::Result<&'a [u8], String> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(format!("{what} is not a length-delimited field")),
    }
}

fn string<'a>(v: Value<'a>, what: &str) -> std::result::Result<&'a str, String> {
    std::str::from_utf8(bytes(v, what)?).map_err(|_| format!("{what} is not UTF-8"))
}

fn varint(v: Value<'_>, what: &str) -> std::result::Result<i64, String> {
    match v {
        Value::Varint(x) => Ok(x as i64),
        _ => Err(format!("{what} is not a varint field")),
    }
}

/// Appends a repeated int64 field's element(s): one varint, or a packed run.
fn push_ints(v: Value<'_>, out: &mut Vec<i64>, max: usize, what: &str) -> std::result::Result<(), String> {
    let mut one = |x: u64| {
        if out.len() == max {
            return Err(format!("{what} has more than {max} values"));
        }
        out.push(x as i64);
        Ok(())
    };
    match v {
        Value::Varint(x) => one(x),
        Value::Bytes(mut b) => {
            while !b.is_empty() {
                one(decode_varint(&mut b).map_err(|e| format!("{what}: {e}"))?)?;
            }
            Ok(())
        }
        _ => Err(format!("{what} is neither a varint nor a packed run of them")),
    }
}

// ---------------------------------------------------------------------------
// Model and graph
// ---------------------------------------------------------------------------

/// A node as the walk needs it; attributes are kept as their messages and
/// read on demand.
struct Node<'a> {
    op: &'a str,
    domain: &'a str,
    name: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    attrs: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Node<'a> {
    fn parse(msg: &'a [u8]) -> std::result::Result<Self, String> {
        let mut n = Node { op: "", domain: "", name: "", inputs: Vec::new(), outputs: Vec::new(), attrs: Vec::new() };
        for f in fields(msg) {
            let (tag, v) = f?;
            match tag {
                1 | 2 => {
                    let list = if tag == 1 { &mut n.inputs } else { &mut n.outputs };
                    if list.len() == MAX_NODE_FIELDS {
                        return Err(format!("a node has more than {MAX_NODE_FIELDS} inputs or outputs"));
                    }
                    list.push(string(v, "a node's input or output name")?);
                }
                3 => n.name = string(v, "a node name")?,
                4 => n.op = string(v, "a node's op_type")?,
                7 => n.domain = string(v, "a node's domain")?,
                5 => {
                    if n.attrs.len() == MAX_NODE_FIELDS {
                        return Err(format!("a node has more than {MAX_NODE_FIELDS} attributes"));
                    }
                    let msg = bytes(v, "an attribute")?;
                    n.attrs.push((string_field(msg, 1, "an attribute name")?, msg));
                }
                _ => {}
            }
        }
        Ok(n)
    }

    /// `op_type` in the default (ai.onnx) domain.
    fn is(&self, op: &str) -> bool {
        self.op == op && (self.domain.is_empty() || self.domain == "ai.onnx")
    }

    /// How messages name the node.
    fn describe(&self) -> String {
        let name = if self.name.is_empty() { self.outputs.first().copied().unwrap_or("") } else { self.name };
        let domain = if self.domain.is_empty() || self.domain == "ai.onnx" {
            String::new()
        } else {
            format!("{}.", self.domain)
        };
        format!("node {name:?} ({domain}{})", self.op)
    }

    fn attr(&self, name: &str) -> Option<&'a [u8]> {
        self.attrs.iter().find(|(n, _)| *n == name).map(|&(_, m)| m)
    }

    /// An INT attribute (field `i`), or `default` when absent.
    fn int(&self, name: &str, default: i64) -> std::result::Result<i64, String> {
        let Some(msg) = self.attr(name) else { return Ok(default) };
        let mut x = default;
        for f in fields(msg) {
            if let (3, v) = f? {
                x = varint(v, name)?;
            }
        }
        Ok(x)
    }

    /// An INTS attribute (field `ints`), or `None` when absent.
    fn ints(&self, name: &str) -> std::result::Result<Option<Vec<i64>>, String> {
        let Some(msg) = self.attr(name) else { return Ok(None) };
        let mut out = Vec::new();
        for f in fields(msg) {
            if let (8, v) = f? {
                push_ints(v, &mut out, MAX_INTS, name)?;
            }
        }
        Ok(Some(out))
    }

    /// A FLOAT attribute (field `f`), or `default` when absent.
    fn float(&self, name: &str, default: f32) -> std::result::Result<f32, String> {
        let Some(msg) = self.attr(name) else { return Ok(default) };
        let mut x = default;
        for f in fields(msg) {
            match f? {
                (2, Value::Fixed32(bits)) => x = f32::from_bits(bits),
                (2, _) => return Err(format!("attribute {name} is not a float")),
                _ => {}
            }
        }
        Ok(x)
    }

    /// A STRING attribute (field `s`), or `""` when absent.
    fn text(&self, name: &str) -> std::result::Result<&'a str, String> {
        let Some(msg) = self.attr(name) else { return Ok("") };
        let mut s = "";
        for f in fields(msg) {
            if let (4, v) = f? {
                s = string(v, name)?;
            }
        }
        Ok(s)
    }

    /// A TENSOR attribute's message (field `t`).
    fn tensor(&self, name: &str) -> std::result::Result<Option<&'a [u8]>, String> {
        let Some(msg) = self.attr(name) else { return Ok(None) };
        let mut t = None;
        for f in fields(msg) {
            if let (5, v) = f? {
                t = Some(bytes(v, name)?);
            }
        }
        Ok(t)
    }
}

/// A graph: its nodes, the tensors stored in the file by name (initializers
/// and `Constant` outputs, as their `TensorProto` messages), and who consumes
/// each value.
struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    stored: HashMap<&'a str, &'a [u8]>,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    consumers: HashMap<&'a str, Vec<usize>>,
}

/// Reads the `ModelProto` in `bytes` down to its graph.
fn parse_model(model: &[u8]) -> std::result::Result<Graph<'_>, String> {
    let mut graph = None;
    let mut ir_version = None;
    for f in fields(model) {
        match f? {
            (1, v) => ir_version = Some(varint(v, "ir_version")?),
            (7, v) => {
                if graph.is_some() {
                    return Err("the model has two graph fields".into());
                }
                graph = Some(bytes(v, "the model's graph")?);
            }
            _ => {}
        }
    }
    if ir_version.is_none() {
        return Err("no ir_version: not an ONNX model".into());
    }
    let graph = graph.ok_or("the model has no graph")?;
    parse_graph(graph)
}

/// The last occurrence of the string field `tag` of `msg` (`""` when absent).
fn string_field<'a>(msg: &'a [u8], tag: u32, what: &str) -> std::result::Result<&'a str, String> {
    let mut s = "";
    for f in fields(msg) {
        let (t, v) = f?;
        if t == tag {
            s = string(v, what)?;
        }
    }
    Ok(s)
}

fn parse_graph(msg: &[u8]) -> std::result::Result<Graph<'_>, String> {
    let mut g = Graph {
        nodes: Vec::new(),
        stored: HashMap::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        consumers: HashMap::new(),
    };
    let mut initializers = 0usize;
    for f in fields(msg) {
        match f? {
            (1, v) => {
                if g.nodes.len() == MAX_NODES {
                    return Err(format!("the graph has more than {MAX_NODES} nodes; ResNet50 has a few hundred"));
                }
                g.nodes.push(Node::parse(bytes(v, "a node")?)?);
            }
            (5, v) => {
                initializers += 1;
                if initializers > MAX_INITIALIZERS {
                    return Err(format!("the graph has more than {MAX_INITIALIZERS} initializers"));
                }
                let t = bytes(v, "an initializer")?;
                let name = string_field(t, 8, "a tensor name")?;
                if g.stored.insert(name, t).is_some() {
                    return Err(format!("two initializers are named {name:?}"));
                }
            }
            (11, v) if g.inputs.len() < MAX_INITIALIZERS => {
                g.inputs.push(string_field(bytes(v, "a graph input")?, 1, "an input name")?)
            }
            (12, v) if g.outputs.len() < MAX_INITIALIZERS => {
                g.outputs.push(string_field(bytes(v, "a graph output")?, 1, "an output name")?)
            }
            _ => {}
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        if n.is("Constant")
            && let (Some(&out), Some(t)) = (n.outputs.first(), n.tensor("value")?)
        {
            g.stored.entry(out).or_insert(t);
        }
        for (k, &input) in n.inputs.iter().enumerate() {
            // Nodes that read only a value's type or shape (the dynamo
            // exporter's unoptimised graphs have them) do not use its values.
            let type_only = n.is("Shape") || n.is("Size") || (n.is("CastLike") && k == 1);
            if !input.is_empty() && !type_only {
                let c = g.consumers.entry(input).or_default();
                if c.last() != Some(&i) {
                    c.push(i);
                }
            }
        }
    }
    Ok(g)
}

/// A stored tensor's dims, element type and data, read from its message.
struct TensorData<'a> {
    dims: Vec<usize>,
    data_type: i64,
    raw: Option<&'a [u8]>,
    floats: Vec<f32>,
    doubles: Vec<f64>,
    external: bool,
}

/// ONNX `TensorProto.DataType` values read here.
const FLOAT: i64 = 1;
const FLOAT16: i64 = 10;
const DOUBLE: i64 = 11;
const BFLOAT16: i64 = 16;

fn data_type_name(t: i64) -> String {
    let name = match t {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => return format!("data type {t}"),
    };
    name.into()
}

impl<'a> TensorData<'a> {
    /// Dims and where the data is; `values` decodes it.
    fn parse(msg: &'a [u8], with_data: bool) -> std::result::Result<Self, String> {
        let mut t = TensorData {
            dims: Vec::new(),
            data_type: 0,
            raw: None,
            floats: Vec::new(),
            doubles: Vec::new(),
            external: false,
        };
        let mut dims = Vec::new();
        for f in fields(msg) {
            match f? {
                (1, v) => push_ints(v, &mut dims, MAX_DIMS, "dims")?,
                (2, v) => t.data_type = varint(v, "data_type")?,
                (9, v) => t.raw = Some(bytes(v, "raw_data")?),
                (14, v) => t.external = varint(v, "data_location")? == 1,
                (4, v) if with_data => match v {
                    Value::Fixed32(bits) => t.floats.push(f32::from_bits(bits)),
                    Value::Bytes(b) if b.len() % 4 == 0 => {
                        t.floats.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    }
                    _ => return Err("float_data is malformed".into()),
                },
                (10, v) if with_data => match v {
                    Value::Fixed64(bits) => t.doubles.push(f64::from_bits(bits)),
                    Value::Bytes(b) if b.len() % 8 == 0 => {
                        t.doubles.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))))
                    }
                    _ => return Err("double_data is malformed".into()),
                },
                _ => {}
            }
        }
        t.dims = dims
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d <= 1 << 31))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("has dims {dims:?}"))?;
        Ok(t)
    }

    /// The values as f32 (checked against the dims).
    fn values(&self) -> std::result::Result<Vec<f32>, String> {
        if self.external {
            return Err("is stored in an external data file, which is not read: save the model with its weights inside \
                        (onnx.save_model(model, path, save_as_external_data=False)), or use the framework's own weights file"
                .into());
        }
        let n = self.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("has too many values")?;
        let values = match (self.data_type, self.raw) {
            (FLOAT | FLOAT16 | DOUBLE | BFLOAT16, Some(raw)) => {
                let (elem, size) = match self.data_type {
                    FLOAT => (Elem::F32, 4),
                    FLOAT16 => (Elem::F16, 2),
                    DOUBLE => (Elem::F64, 8),
                    _ => (Elem::BF16, 2),
                };
                if raw.len() != n.saturating_mul(size) {
                    return Err(format!(
                        "holds {} bytes of raw data, its dims {:?} need {} ({})",
                        raw.len(),
                        self.dims,
                        n.saturating_mul(size),
                        data_type_name(self.data_type)
                    ));
                }
                decode_le(raw, elem)
            }
            (FLOAT, None) => self.floats.clone(),
            (DOUBLE, None) => self.doubles.iter().map(|&d| d as f32).collect(),
            (FLOAT16 | BFLOAT16, None) => {
                return Err(format!(
                    "stores its {} values in int32_data, which is not read (save with raw data)",
                    data_type_name(self.data_type)
                ));
            }
            (t, _) => {
                return Err(format!(
                    "has element type {}; expected float (or float16, bfloat16, double)",
                    data_type_name(t)
                ));
            }
        };
        if values.len() != n {
            return Err(format!("holds {} values, its dims {:?} need {n}", values.len(), self.dims));
        }
        Ok(values)
    }
}

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
    asm: &'w Assembler<'w>,
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

    fn take(&mut self, slot: Slot, name: &'a str, dims: &[usize]) -> Result<()> {
        self.asm.check_shape(slot, name, dims)?;
        self.found.push(Found { slot, tensor: name, transpose: false });
        Ok(())
    }

    /// The convolution `n` (input `x`) as canonical conv `i`, and its
    /// BatchNormalization if it has one; returns the value after them.
    fn conv(&mut self, x: &'a str, n: &'w Node<'a>, i: usize) -> Result<&'a str> {
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
        let pads_ok = match auto_pad {
            "" | "NOTSET" => pads == [p; 4],
            "VALID" => p == 0,
            // Same-padding is symmetric only at stride 1 with an odd kernel.
            "SAME_UPPER" | "SAME_LOWER" => stride == 1,
            _ => false,
        };
        if !pads_ok {
            let found =
                if matches!(auto_pad, "" | "NOTSET") { format!("{pads:?}") } else { format!("auto_pad {auto_pad}") };
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
        let x = self.through_identity(input);
        let c = self.sole(x, "Conv", "the stem convolution conv1; preprocessing inside the graph is not read")?;
        let y = self.conv(x, c, 0)?;
        let y = self.relu(y, "after conv1")?;
        let pool = self.sole(y, "MaxPool", "the 3x3/2 max-pool after conv1")?;
        let ints = |name: &str| pool.ints(name).map_err(|e| self.attr_err(pool, e));
        let ok = ints("kernel_shape")?.as_deref() == Some(&[3, 3][..])
            && ints("strides")?.as_deref() == Some(&[2, 2][..])
            && ints("pads")?.as_deref() == Some(&[1, 1, 1, 1][..])
            && ints("dilations")?.is_none_or(|d| d.iter().all(|&d| d == 1))
            && matches!(pool.text("auto_pad").map_err(|e| self.attr_err(pool, e))?, "" | "NOTSET")
            && pool.int("ceil_mode", 0).map_err(|e| self.attr_err(pool, e))? == 0;
        if !ok {
            return Err(self.err(format!(
                "{} is not ResNet50's max-pool (kernel_shape [3, 3], strides [2, 2], pads [1, 1, 1, 1], ceil_mode 0)",
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
            (main, self.conv(x, short, i0)?)
        } else {
            if users.len() != 2 || convs.len() != 1 || adds != 1 {
                return Err(self.err(format!(
                    "value {x:?} {}, where ResNet50 has {p}'s first 1x1 convolution and its residual Add",
                    self.describe_consumers(x)
                )));
            }
            (convs[0], x)
        };
        let y = self.conv(x, main, self.index(&format!("{p}_1")))?;
        let y = self.relu(y, &format!("after {p}_1"))?;
        let c2 = self.sole(y, "Conv", &format!("{p}_2"))?;
        let y = self.conv(y, c2, self.index(&format!("{p}_2")))?;
        let y = self.relu(y, &format!("after {p}_2"))?;
        let c3 = self.sole(y, "Conv", &format!("{p}_3"))?;
        let y = self.conv(y, c3, self.index(&format!("{p}_3")))?;
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
            None => {
                // Opset 18: the axes are input 1.
                let (name, _) = self.stored(n, 1, "axes")?;
                let t = TensorData::parse(self.g.stored[name], false).map_err(|e| tensor_err(self.path, name, e))?;
                match (t.data_type, t.raw) {
                    (7, Some(raw)) if raw.len() % 8 == 0 && raw.len() <= 64 => {
                        raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
                    }
                    _ => {
                        let mut out = Vec::new();
                        for f in fields(self.g.stored[name]) {
                            if let (7, v) = f.map_err(|e| tensor_err(self.path, name, e))? {
                                push_ints(v, &mut out, MAX_INTS, "int64_data")
                                    .map_err(|e| tensor_err(self.path, name, e))?;
                            }
                        }
                        out
                    }
                }
            }
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
    let checker = Assembler::new(path, true);
    let specs = conv_specs(Variant::V1);
    let mut walk = Walk {
        path,
        g: &g,
        asm: &checker,
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
    let (found, has_bias, bn) = (walk.found, walk.has_bias, walk.bn);
    let mut asm = Assembler::new(path, true);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_every_wire_type_and_report_truncation() {
        // 1: varint 300, 2: "ab", 3: fixed32 1.5, 4: fixed64 7
        let mut b = vec![0x08, 0xac, 0x02, 0x12, 2, b'a', b'b', 0x1d];
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.push(0x21);
        b.extend_from_slice(&7u64.to_le_bytes());
        let got: Vec<(u32, String)> =
            fields(&b).map(|f| f.map(|(t, v)| (t, format!("{v:?}")))).collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (1, "Varint(300)".into()));
        assert_eq!(got[1], (2, "Bytes([97, 98])".into()));
        assert_eq!(got[2], (3, format!("Fixed32({})", 1.5f32.to_bits())));
        assert_eq!(got[3], (4, "Fixed64(7)".into()));
        for cut in 1..b.len() {
            let r: std::result::Result<Vec<_>, _> = fields(&b[..cut]).collect();
            // Cuts at a field boundary read fewer fields; others fail.
            if ![3, 7, 12].contains(&cut) {
                assert!(r.is_err(), "cut {cut}");
            }
        }
        let group = [0x0b];
        assert!(fields(&group).next().unwrap().unwrap_err().contains("group"));
        let huge = [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(fields(&huge).next().unwrap().unwrap_err().contains("truncated"));
    }

    #[test]
    fn packed_and_unpacked_ints_read_alike_and_are_bounded() {
        let mut out = Vec::new();
        push_ints(Value::Varint(3), &mut out, 8, "x").unwrap();
        push_ints(Value::Bytes(&[1, 2, 0x80, 0x01]), &mut out, 8, "x").unwrap();
        assert_eq!(out, [3, 1, 2, 128]);
        let long = [1u8; 100];
        assert!(push_ints(Value::Bytes(&long), &mut Vec::new(), MAX_INTS, "pads").unwrap_err().contains("more than"));
        // A negative int64 is a 10-byte varint.
        let mut neg = Vec::new();
        prost::encoding::encode_varint(-1i64 as u64, &mut neg);
        let mut out = Vec::new();
        push_ints(Value::Bytes(&neg), &mut out, 8, "axes").unwrap();
        assert_eq!(out, [-1]);
    }
}

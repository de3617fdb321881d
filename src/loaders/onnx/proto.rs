//! The protobuf side of an ONNX file: a lazy reader of the wire format
//! (fields over a byte slice, with prost's `decode_key` / `decode_varint`)
//! and, on top of it, just what the walk needs of `ModelProto`, `GraphProto`,
//! `NodeProto`, `AttributeProto` and `TensorProto` — borrowed from the mapped
//! file, bounded in count (see the limits in [`super`]).

use std::collections::HashMap;

use prost::encoding::{decode_key, decode_varint, WireType};

use super::{MAX_INITIALIZERS, MAX_NODES};
use crate::loaders::{decode_le, Elem};

/// Most inputs, outputs or attributes one node may have (ResNet50's have at
/// most 5 inputs and 7 attributes). With [`MAX_NODES`] this bounds what the
/// reader keeps of a graph (nodes and the consumer map) to ~200 MB, however
/// the file is made.
const MAX_NODE_FIELDS: usize = 32;
/// Most values an integer-list attribute may have (`pads` has 4).
pub(super) const MAX_INTS: usize = 64;
/// Most dimensions a tensor may have.
const MAX_DIMS: usize = 8;

// ---------------------------------------------------------------------------
// Protobuf wire format
// ---------------------------------------------------------------------------

/// One field's value, as the wire format carries it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message in file order (a repeated field is
/// seen once per element; a packed one once, as bytes). Stops at the first
/// malformed field, which it reports.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
}

pub(super) fn fields(buf: &[u8]) -> Fields<'_> {
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
pub(super) fn push_ints(v: Value<'_>, out: &mut Vec<i64>, max: usize, what: &str) -> std::result::Result<(), String> {
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
pub(super) struct Node<'a> {
    pub(super) op: &'a str,
    domain: &'a str,
    pub(super) name: &'a str,
    pub(super) inputs: Vec<&'a str>,
    pub(super) outputs: Vec<&'a str>,
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
    pub(super) fn is(&self, op: &str) -> bool {
        self.op == op && (self.domain.is_empty() || self.domain == "ai.onnx")
    }

    /// How messages name the node.
    pub(super) fn describe(&self) -> String {
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

    /// The last value of field `tag` of attribute `name`, each occurrence
    /// read by `read`; `None` when the attribute or the field is absent.
    fn attr_last<T>(
        &self,
        name: &str,
        tag: u32,
        read: impl Fn(Value<'a>) -> std::result::Result<T, String>,
    ) -> std::result::Result<Option<T>, String> {
        self.attr(name).map_or(Ok(None), |msg| last_field(msg, tag, read))
    }

    /// An INT attribute (field `i`), or `default` when absent.
    pub(super) fn int(&self, name: &str, default: i64) -> std::result::Result<i64, String> {
        Ok(self.attr_last(name, 3, |v| varint(v, name))?.unwrap_or(default))
    }

    /// An INTS attribute (field `ints`), or `None` when absent.
    pub(super) fn ints(&self, name: &str) -> std::result::Result<Option<Vec<i64>>, String> {
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
    pub(super) fn float(&self, name: &str, default: f32) -> std::result::Result<f32, String> {
        let read = |v| match v {
            Value::Fixed32(bits) => Ok(f32::from_bits(bits)),
            _ => Err(format!("attribute {name} is not a float")),
        };
        Ok(self.attr_last(name, 2, read)?.unwrap_or(default))
    }

    /// A STRING attribute (field `s`), or `""` when absent.
    pub(super) fn text(&self, name: &str) -> std::result::Result<&'a str, String> {
        Ok(self.attr_last(name, 4, |v| string(v, name))?.unwrap_or(""))
    }

    /// A TENSOR attribute's message (field `t`).
    fn tensor(&self, name: &str) -> std::result::Result<Option<&'a [u8]>, String> {
        self.attr_last(name, 5, |v| bytes(v, name))
    }
}

/// A graph: its nodes, the tensors stored in the file by name (initializers
/// and `Constant` outputs, as their `TensorProto` messages), and who consumes
/// each value.
pub(super) struct Graph<'a> {
    pub(super) nodes: Vec<Node<'a>>,
    pub(super) stored: HashMap<&'a str, &'a [u8]>,
    pub(super) inputs: Vec<&'a str>,
    pub(super) outputs: Vec<&'a str>,
    pub(super) consumers: HashMap<&'a str, Vec<usize>>,
}

/// Reads the `ModelProto` in `bytes` down to its graph.
pub(super) fn parse_model(model: &[u8]) -> std::result::Result<Graph<'_>, String> {
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

/// The last occurrence of field `tag` of `msg`, every occurrence read by
/// `read` (so a malformed one anywhere is an error, as is any malformed field).
fn last_field<'a, T>(
    msg: &'a [u8],
    tag: u32,
    read: impl Fn(Value<'a>) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, String> {
    let mut last = None;
    for f in fields(msg) {
        let (t, v) = f?;
        if t == tag {
            last = Some(read(v)?);
        }
    }
    Ok(last)
}

/// The last occurrence of the string field `tag` of `msg` (`""` when absent).
fn string_field<'a>(msg: &'a [u8], tag: u32, what: &str) -> std::result::Result<&'a str, String> {
    Ok(last_field(msg, tag, |v| string(v, what))?.unwrap_or(""))
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
pub(super) struct TensorData<'a> {
    pub(super) dims: Vec<usize>,
    pub(super) data_type: i64,
    pub(super) raw: Option<&'a [u8]>,
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
    pub(super) fn parse(msg: &'a [u8], with_data: bool) -> std::result::Result<Self, String> {
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

    /// An int64 tensor's values (`raw_data` or `int64_data`), at most
    /// [`MAX_INTS`] of them (pads, axes, shapes).
    pub(super) fn int64s(msg: &'a [u8]) -> std::result::Result<Vec<i64>, String> {
        let mut out = Vec::new();
        let mut data_type = 0;
        for f in fields(msg) {
            match f? {
                (2, v) => data_type = varint(v, "data_type")?,
                (7, v) => push_ints(v, &mut out, MAX_INTS, "int64_data")?,
                (9, v) => {
                    let raw = bytes(v, "raw_data")?;
                    if raw.len() % 8 != 0 || raw.len() > 8 * MAX_INTS {
                        return Err(format!("holds {} bytes of int64 raw data (at most {MAX_INTS} values)", raw.len()));
                    }
                    out.extend(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))));
                }
                _ => {}
            }
        }
        if data_type != 7 {
            return Err(format!("has element type {}; expected int64", data_type_name(data_type)));
        }
        Ok(out)
    }

    /// The values as f32 (checked against the dims).
    pub(super) fn values(&self) -> std::result::Result<Vec<f32>, String> {
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

//! Just enough of Python's pickle to read the `data.pkl` of a PyTorch
//! checkpoint: the opcodes `torch.save` writes for a state dict (protocol 2;
//! see `../shared/docs/weight-formats.md` §4.5) plus the few that other
//! writers of checkpoints add (protocol 4 framing, lists, floats, `None`).
//!
//! Nothing is ever executed. A `GLOBAL` is only a name; calling one
//! (`REDUCE`, `NEWOBJ`) builds a value only for the callables a state dict
//! needs — `collections.OrderedDict` (an empty dict) and torch's
//! `_rebuild_tensor_v2` / `_rebuild_parameter` (a [`TensorRef`]) — and an
//! opaque [`Value::Object`] carrying the callable's name for anything else,
//! so that a pickled `nn.Module` or a quantized tensor is reported by name.
//! Storages arrive as persistent ids (`BINPERSID` on
//! `("storage", torch.FloatStorage, key, location, numel)`).
//!
//! Hostile input: every length is checked against the bytes left before
//! anything is allocated; values nest at most [`MAX_DEPTH`] deep (so neither
//! building nor dropping them recurses far); memo fetches copy values, and
//! the memory of every value built or copied counts against a budget of
//! 64 MiB + 32 bytes per byte of input ([`budget`]; a real state dict's
//! pickle uses under a tenth of that), so a few bytes of `BINGET`/`DUP`
//! cannot grow memory exponentially. Keys set twice in a dict are kept twice
//! (a linear scan per key would make a large dict quadratic); a state dict
//! never has one, and the loader reports a duplicated tensor.

use std::collections::HashMap;
use std::fmt;

/// Deepest nesting of containers accepted (a state dict needs 4: dict →
/// tensor → size tuple).
pub const MAX_DEPTH: usize = 32;

/// A pickled value, as far as a checkpoint needs one.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (UTF-8).
    Str(String),
    /// A bytes object.
    Bytes(Vec<u8>),
    /// A tuple (`depth` = 1 + the deepest item's).
    Tuple(Vec<Value>, usize),
    /// A list.
    List(Vec<Value>, usize),
    /// A dict (or `OrderedDict`), in insertion order (a key set twice is
    /// there twice; see the module's notes).
    Dict(Vec<(Value, Value)>, usize),
    /// A class or function named by `GLOBAL`: `(module, name)`.
    Global(String, String),
    /// A torch storage (a persistent id).
    Storage(StorageRef),
    /// A tensor rebuilt by torch's `_rebuild_tensor_v2` (or a parameter).
    Tensor(TensorRef),
    /// Anything else a callable would have built: the callable's
    /// `module.name` (or what it was, when it was not a global).
    Object(String),
}

impl Value {
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }

    /// A short description for messages (never the whole value).
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(..) => "a tuple".into(),
            Value::List(..) => "a list".into(),
            Value::Dict(..) => "a dict".into(),
            Value::Global(m, n) => format!("the Python object {m}.{n}"),
            Value::Storage(_) => "a bare torch storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Object(what) => format!("an object built by {what}"),
        }
    }
}

/// A torch storage: its element class (`FloatStorage`, …), its member key
/// in the archive (`data/<key>`) and its length in elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// The storage class's name, e.g. `FloatStorage` (module `torch`).
    pub class: String,
    /// The archive member's key.
    pub key: String,
    /// Elements in the storage.
    pub numel: u64,
}

/// A tensor view of a storage: element offset, sizes and strides (in
/// elements), as `torch._utils._rebuild_tensor_v2` receives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage.
    pub storage: StorageRef,
    /// Offset of element 0, in elements.
    pub offset: u64,
    /// Sizes.
    pub shape: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

/// What went wrong, with the byte offset of the opcode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickleError {
    /// Offset of the opcode in the pickle.
    pub offset: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pickle byte {}: {}", self.offset, self.msg)
    }
}

impl std::error::Error for PickleError {}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run (for messages).
    op_at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Bytes of values that may still be built or copied (see the module's notes).
    budget: u64,
}

type Res<T> = std::result::Result<T, PickleError>;

/// Bytes of values a pickle of `len` bytes may build (copies included).
pub fn budget(len: usize) -> u64 {
    (64 << 20) + 32 * len as u64
}

/// What one value costs against the budget, besides its payload.
const VALUE_BYTES: u64 = std::mem::size_of::<Value>() as u64;

/// Runs the pickle `bytes` and returns the value `STOP` leaves.
///
/// ```
/// use resnet50::loaders::pickle::{load, Value};
/// // Protocol 2: PROTO 2, EMPTY_DICT, SHORT_BINUNICODE "a", BININT1 7, SETITEM, STOP.
/// let v = load(b"\x80\x02}\x8c\x01aK\x07s.").unwrap();
/// assert_eq!(v, Value::Dict(vec![(Value::Str("a".into()), Value::Int(7))], 1));
/// assert!(load(b"\x80\x02}\x8c\x05a").is_err()); // truncated
/// ```
pub fn load(bytes: &[u8]) -> Result<Value, PickleError> {
    load_prefix(bytes).map(|(v, _)| v)
}

/// Runs the pickle at the start of `bytes` and returns the value `STOP`
/// leaves and the bytes read up to it (a legacy torch file is several
/// pickles in a row, then raw storages).
///
/// ```
/// use resnet50::loaders::pickle::{load_prefix, Value};
/// assert_eq!(load_prefix(b"K\x05.K\x06.").unwrap(), (Value::Int(5), 3));
/// ```
pub fn load_prefix(bytes: &[u8]) -> Result<(Value, usize), PickleError> {
    let mut m = Machine {
        bytes,
        pos: 0,
        op_at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        budget: budget(bytes.len()),
    };
    let v = m.run()?;
    Ok((v, m.pos))
}

impl<'a> Machine<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Res<T> {
        Err(PickleError { offset: self.op_at, msg: msg.into() })
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if n > self.bytes.len() - self.pos {
            return self.err(format!("truncated: needs {n} more bytes, {} left", self.bytes.len() - self.pos));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn len_u64(&mut self) -> Res<usize> {
        let n = self.u64()?;
        usize::try_from(n).or_else(|_| self.err(format!("length {n} does not fit in memory")))
    }

    /// The text up to the next newline (GLOBAL's operands).
    fn line(&mut self) -> Res<String> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("truncated: a GLOBAL name without its newline");
        };
        self.pos += n + 1;
        self.utf8(&rest[..n])
    }

    fn utf8(&self, b: &[u8]) -> Res<String> {
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.err("a string is not valid UTF-8"),
        }
    }

    fn spend(&mut self, n: u64) -> Res<()> {
        match self.budget.checked_sub(n) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => self.err("the pickle builds far more values than its size allows (a hostile or corrupt file?)"),
        }
    }

    fn push(&mut self, v: Value) -> Res<()> {
        self.spend(VALUE_BYTES)?;
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Res<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow (an opcode without its operands)");
        }
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&mut self) -> Res<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow (an opcode without its operands)");
        }
        Ok(self.stack.last_mut().expect("checked"))
    }

    /// The items above the last MARK, removing the mark.
    fn pop_mark(&mut self) -> Res<Vec<Value>> {
        let Some(at) = self.marks.pop() else {
            return self.err("no MARK before an opcode that needs one");
        };
        Ok(self.stack.split_off(at))
    }

    /// A copy of `v` (memo fetches, DUP), paid for value by value.
    fn copy(&mut self, v: &Value) -> Res<Value> {
        self.spend(VALUE_BYTES)?;
        Ok(match v {
            Value::Tuple(items, d) => Value::Tuple(self.copy_all(items)?, *d),
            Value::List(items, d) => Value::List(self.copy_all(items)?, *d),
            Value::Dict(items, d) => {
                let mut out = Vec::with_capacity(items.len());
                for (k, x) in items {
                    out.push((self.copy(k)?, self.copy(x)?));
                }
                Value::Dict(out, *d)
            }
            Value::Str(s) => {
                self.spend(s.len() as u64)?;
                v.clone()
            }
            Value::Bytes(b) => {
                self.spend(b.len() as u64)?;
                v.clone()
            }
            Value::Tensor(t) => {
                self.spend(16 * t.shape.len() as u64 + t.storage.key.len() as u64 + t.storage.class.len() as u64)?;
                v.clone()
            }
            // Names are payload too: a long GLOBAL fetched from the memo again
            // and again must pay for every copy.
            Value::Global(m, n) => {
                self.spend((m.len() + n.len()) as u64)?;
                v.clone()
            }
            Value::Object(what) => {
                self.spend(what.len() as u64)?;
                v.clone()
            }
            Value::Storage(st) => {
                self.spend((st.key.len() + st.class.len()) as u64)?;
                v.clone()
            }
            Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => v.clone(),
        })
    }

    fn copy_all(&mut self, items: &[Value]) -> Res<Vec<Value>> {
        let mut out = Vec::with_capacity(items.len());
        for x in items {
            out.push(self.copy(x)?);
        }
        Ok(out)
    }

    /// The depth of a container holding `items`.
    fn nest<'v>(&self, items: impl IntoIterator<Item = &'v Value>) -> Res<usize> {
        let d = 1 + items.into_iter().map(Value::depth).max().unwrap_or(0);
        if d > MAX_DEPTH {
            return self.err(format!("values nested more than {MAX_DEPTH} deep"));
        }
        Ok(d)
    }

    fn tuple(&mut self, items: Vec<Value>) -> Res<()> {
        let d = self.nest(&items)?;
        self.push(Value::Tuple(items, d))
    }

    // `copy` needs `&mut self` for the budget, so the value copied is taken
    // out of the memo or off the stack for the copy and put back: one copy,
    // the charged one, and no uncharged clone before it.
    fn memo_get(&mut self, idx: u32) -> Res<()> {
        let Some(v) = self.memo.remove(&idx) else {
            return self.err(format!("memo entry {idx} read before it was written"));
        };
        let copied = self.copy(&v);
        self.memo.insert(idx, v);
        self.stack.push(copied?);
        Ok(())
    }

    /// A copy of the stack's top value (DUP, memo writes).
    fn copy_top(&mut self) -> Res<Value> {
        let v = self.pop()?;
        let copied = self.copy(&v);
        self.stack.push(v);
        copied
    }

    fn memo_put(&mut self, idx: u32) -> Res<()> {
        let v = self.copy_top()?;
        self.memo.insert(idx, v);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Res<()> {
        if !pairs.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of items");
        }
        let d = self.nest(&pairs)?;
        let op_at = self.op_at;
        match self.top()? {
            Value::Dict(items, depth) => {
                *depth = (*depth).max(d);
                let mut it = pairs.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    items.push((k, v));
                }
                Ok(())
            }
            // Items set on an object we do not interpret (its own dict
            // subclass, say): dropped with it.
            Value::Object(_) => Ok(()),
            other => Err(PickleError { offset: op_at, msg: format!("SETITEM on {}, not a dict", other.kind()) }),
        }
    }

    fn append(&mut self, new: Vec<Value>) -> Res<()> {
        let d = self.nest(&new)?;
        let op_at = self.op_at;
        match self.top()? {
            Value::List(items, depth) => {
                *depth = (*depth).max(d);
                items.extend(new);
                Ok(())
            }
            Value::Object(_) => Ok(()),
            other => Err(PickleError { offset: op_at, msg: format!("APPEND on {}, not a list", other.kind()) }),
        }
    }

    /// `callable(*args)` for the callables a state dict needs.
    fn call(&self, callable: Value, args: Value) -> Res<Value> {
        let Value::Global(module, name) = callable else {
            return Ok(Value::Object(format!("a call of {}", callable.kind())));
        };
        let Value::Tuple(args, _) = args else {
            return self.err(format!("{module}.{name} called with {} instead of an argument tuple", args.kind()));
        };
        let fq = format!("{module}.{name}");
        match fq.as_str() {
            "collections.OrderedDict" | "builtins.dict" | "__builtin__.dict" => match args.as_slice() {
                [] => Ok(Value::Dict(Vec::new(), 1)),
                // OrderedDict([(key, value), ...]).
                [Value::List(pairs, d)] if pairs.iter().all(|p| matches!(p, Value::Tuple(kv, _) if kv.len() == 2)) => {
                    let items = pairs
                        .iter()
                        .map(|p| match p {
                            Value::Tuple(kv, _) => (kv[0].clone(), kv[1].clone()),
                            _ => unreachable!("checked above"),
                        })
                        .collect();
                    Ok(Value::Dict(items, *d))
                }
                _ => Ok(Value::Object(fq)),
            },
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => self.rebuild_tensor(&fq, args),
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(t @ Value::Tensor(_)) => Ok(t),
                    Some(other) => Ok(Value::Object(format!("{fq} of {}", other.kind()))),
                    None => self.err(format!("{fq} called without arguments")),
                }
            }
            _ => Ok(Value::Object(fq)),
        }
    }

    fn rebuild_tensor(&self, fq: &str, args: Vec<Value>) -> Res<Value> {
        let mut it = args.into_iter();
        let (Some(storage), Some(offset), Some(size), Some(stride)) = (it.next(), it.next(), it.next(), it.next())
        else {
            return self.err(format!("{fq} called with fewer than 4 arguments"));
        };
        let Value::Storage(storage) = storage else {
            return Ok(Value::Object(format!("{fq} of {}", storage.kind())));
        };
        let ints = |v: Value, what: &str| -> Res<Vec<u64>> {
            let Value::Tuple(items, _) = v else {
                return self.err(format!("{fq}: the {what} is {}, not a tuple", v.kind()));
            };
            items
                .into_iter()
                .map(|x| match x {
                    Value::Int(i) if i >= 0 => Ok(i as u64),
                    other => self.err(format!("{fq}: the {what} holds {}, not a non-negative int", other.kind())),
                })
                .collect()
        };
        let offset = match offset {
            Value::Int(i) if i >= 0 => i as u64,
            other => return self.err(format!("{fq}: the storage offset is {}", other.kind())),
        };
        let shape = ints(size, "size")?;
        let stride = ints(stride, "stride")?;
        if shape.len() != stride.len() {
            return self.err(format!("{fq}: {} sizes but {} strides", shape.len(), stride.len()));
        }
        Ok(Value::Tensor(TensorRef { storage, offset, shape, stride }))
    }

    /// `BINPERSID`'s id: torch's `("storage", class, key, location, numel)`
    /// (the legacy format adds a sixth item, `None` unless the storage is a
    /// view of another, which is refused).
    fn persistent(&self, pid: Value) -> Res<Value> {
        let Value::Tuple(items, _) = pid else {
            return self.err(format!("a persistent id that is {}, not torch's storage tuple", pid.kind()));
        };
        if let [.., view] = items.as_slice()
            && items.len() == 6
            && *view != Value::None
        {
            return self.err("a storage that is a view of another (an old torch's storage views) is not read");
        }
        match items.as_slice() {
            [Value::Str(tag), Value::Global(module, class), Value::Str(key), _location, Value::Int(numel)]
            | [Value::Str(tag), Value::Global(module, class), Value::Str(key), _location, Value::Int(numel), _]
                if tag == "storage" && *numel >= 0 =>
            {
                if module != "torch" {
                    return self.err(format!("a storage of class {module}.{class}, not a torch storage"));
                }
                Ok(Value::Storage(StorageRef { class: class.clone(), key: key.clone(), numel: *numel as u64 }))
            }
            _ => self.err("a persistent id that is not torch's (\"storage\", class, key, location, numel)"),
        }
    }

    fn int_le(&self, b: &[u8]) -> Res<i64> {
        if b.is_empty() {
            return Ok(0);
        }
        if b.len() > 8 {
            // Only a value that still fits in i64 after sign extension.
            let (lo, hi) = b.split_at(8);
            let fill = if lo[7] & 0x80 != 0 { 0xff } else { 0 };
            if hi.iter().any(|&x| x != fill) {
                return self.err("an integer larger than 64 bits");
            }
            return self.int_le(lo);
        }
        let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut full = [fill; 8];
        full[..b.len()].copy_from_slice(b);
        Ok(i64::from_le_bytes(full))
    }

    fn run(&mut self) -> Res<Value> {
        loop {
            self.op_at = self.pos;
            if self.pos >= self.bytes.len() {
                return self.err("truncated: no STOP opcode");
            }
            let op = self.u8()?;
            match op {
                // PROTO
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return self.err(format!("pickle protocol {v} (this reader knows 2 to 5)"));
                    }
                }
                // FRAME (protocol 4): a length hint only.
                0x95 => {
                    self.u64()?;
                }
                // STOP
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                // MARK
                b'(' => {
                    self.spend(8)?;
                    self.marks.push(self.stack.len())
                }
                // POP, POP_MARK, DUP
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.copy_top()?;
                    self.stack.push(v);
                }
                // NONE, NEWTRUE, NEWFALSE
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                // BININT, BININT1, BININT2
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?
                }
                // LONG1, LONG4
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.int_le(b)?;
                    self.push(Value::Int(v))?
                }
                0x8b => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let v = self.int_le(b)?;
                    self.push(Value::Int(v))?
                }
                // BINFLOAT (big-endian)
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.push(Value::Float(v))?
                }
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8; BINSTRING,
                // SHORT_BINSTRING; BINBYTES, SHORT_BINBYTES, BINBYTES8: a
                // length of 1, 4 or 8 bytes, then that many bytes.
                b'X' | 0x8c | 0x8d | b'T' | b'U' | b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'X' | b'T' | b'B' => self.u32()? as usize,
                        0x8d | 0x8e => self.len_u64()?,
                        _ => self.u8()? as usize,
                    };
                    let b = self.take(n)?;
                    let v = match op {
                        b'B' | b'C' | 0x8e => Value::Bytes(b.to_vec()),
                        _ => Value::Str(self.utf8(b)?),
                    };
                    self.spend(n as u64)?;
                    self.push(v)?
                }
                // EMPTY_TUPLE, TUPLE, TUPLE1, TUPLE2, TUPLE3
                b')' => self.tuple(Vec::new())?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.tuple(items)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.tuple(items)?
                }
                // EMPTY_LIST, LIST, APPEND, APPENDS
                b']' => self.push(Value::List(Vec::new(), 1))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    let d = self.nest(&items)?;
                    self.push(Value::List(items, d))?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?
                }
                // EMPTY_DICT, DICT, SETITEM, SETITEMS
                b'}' => self.push(Value::Dict(Vec::new(), 1))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Dict(Vec::new(), 1))?;
                    self.set_items(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                // BINPUT, LONG_BINPUT, MEMOIZE; BINGET, LONG_BINGET
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).or_else(|_| self.err("memo too large"))?;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?
                }
                // GLOBAL, STACK_GLOBAL
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(module, name))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n))?,
                        _ => return self.err("STACK_GLOBAL on values that are not two strings"),
                    }
                }
                // REDUCE, NEWOBJ, NEWOBJ_EX, BUILD
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.push(v)?
                }
                0x81 | 0x92 => {
                    if op == 0x92 {
                        self.pop()?; // kwargs
                    }
                    self.pop()?; // args
                    let cls = self.pop()?;
                    let what = match cls {
                        Value::Global(m, n) => format!("{m}.{n}"),
                        other => format!("a call of {}", other.kind()),
                    };
                    self.push(Value::Object(what))?
                }
                b'b' => {
                    // The state (e.g. an OrderedDict's `_metadata`) is not
                    // needed: the object stays as it is.
                    self.pop()?;
                    self.top()?;
                }
                // BINPERSID
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v)?
                }
                other => {
                    return self.err(format!(
                        "opcode 0x{other:02x} is not one a PyTorch checkpoint uses (this reader knows torch.save's protocol-2 subset)"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    /// SHORT_BINUNICODE `x`.
    fn su(x: &str) -> Vec<u8> {
        let mut v = vec![0x8c, x.len() as u8];
        v.extend_from_slice(x.as_bytes());
        v
    }

    #[test]
    fn a_torch_style_state_dict() {
        // OrderedDict() with one tensor entry, as torch.save writes it.
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
        p.extend(su("w"));
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((");
        p.extend(su("storage"));
        p.extend_from_slice(b"ctorch\nFloatStorage\nq\x03");
        p.extend(su("0"));
        p.extend(su("cpu"));
        // numel 6, BINPERSID; offset 0, size (2, 3), stride (3, 1), False,
        // OrderedDict() hooks; args tuple, REDUCE; SETITEMS; BUILD with {}.
        p.extend_from_slice(b"K\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)RtRu}b.");
        let v = load(&p).unwrap();
        let Value::Dict(items, _) = v else { panic!("{v:?}") };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, s("w"));
        let Value::Tensor(t) = &items[0].1 else { panic!("{:?}", items[0].1) };
        assert_eq!((t.offset, t.shape.clone(), t.stride.clone()), (0, vec![2, 3], vec![3, 1]));
        assert_eq!(t.storage, StorageRef { class: "FloatStorage".into(), key: "0".into(), numel: 6 });
    }

    #[test]
    fn dict_items_keep_their_order() {
        let mut p = b"\x80\x02}(".to_vec();
        p.extend(su("b"));
        p.extend_from_slice(b"K\x01");
        p.extend(su("a"));
        p.extend_from_slice(b"K\x02u.");
        assert_eq!(load(&p).unwrap(), Value::Dict(vec![(s("b"), Value::Int(1)), (s("a"), Value::Int(2))], 1));
    }

    #[test]
    fn integers_and_floats() {
        assert_eq!(load(b"J\xff\xff\xff\xff.").unwrap(), Value::Int(-1));
        assert_eq!(load(b"M\xff\xff.").unwrap(), Value::Int(65535));
        assert_eq!(load(b"\x8a\x03\x00\x80\x00.").unwrap(), Value::Int(32768));
        assert_eq!(load(b"\x8a\x02\x00\x80.").unwrap(), Value::Int(-32768));
        assert_eq!(load(b"\x8a\x01\xff.").unwrap(), Value::Int(-1));
        assert_eq!(load(b"\x8a\x00.").unwrap(), Value::Int(0));
        assert_eq!(load(b"\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x00.").unwrap(), Value::Int(1));
        assert!(load(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.").is_err());
        assert_eq!(load(b"G?\xf8\x00\x00\x00\x00\x00\x00.").unwrap(), Value::Float(1.5));
    }

    #[test]
    fn nothing_is_called_that_is_not_understood() {
        // os.system("x") becomes an opaque object naming the callable.
        let mut p = b"\x80\x02cos\nsystem\n".to_vec();
        p.extend(su("x"));
        p.extend_from_slice(b"\x85R.");
        assert_eq!(load(&p).unwrap(), Value::Object("os.system".into()));
        // A pickled module (NEWOBJ + BUILD) is an object named by its class.
        let p = b"\x80\x02ctorchvision.models.resnet\nResNet\n)\x81}b.";
        assert_eq!(load(p).unwrap(), Value::Object("torchvision.models.resnet.ResNet".into()));
    }

    #[test]
    fn hostile_inputs_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80\x02",                             // no STOP
            b"\x80\x09N.",                           // unknown protocol
            b".",                                    // STOP on an empty stack
            b"(.",                                   // STOP right after MARK
            b"t.",                                   // TUPLE without MARK
            b"h\x05.",                               // memo read before write
            b"X\xff\xff\xff\xff.",                   // length past the end
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff", // 64-bit length
            b"cos\nsystem",                          // GLOBAL without newline
            b"K\x01K\x02s.",                         // SETITEM on an int
            b"N\x85Q.",                              // a persistent id that is not torch's
            b"S'abc'\n.",                            // protocol-0 STRING
            b"X\x01\x00\x00\x00\xff.",               // invalid UTF-8
        ];
        for c in cases {
            assert!(load(c).is_err(), "{c:?} was accepted");
        }
    }

    #[test]
    fn nesting_and_copies_are_bounded() {
        // 10 000 nested tuples: refused at MAX_DEPTH, no deep recursion.
        let mut p = vec![b')'];
        p.extend(std::iter::repeat_n(0x85u8, 10_000));
        p.push(b'.');
        let e = load(&p).unwrap_err();
        assert!(e.msg.contains("nested"), "{e}");
        // Doubling a list 60 times through the memo (a ~300-byte pickle that
        // would need 2^60 values): refused by the budget or the nesting limit.
        let mut p = b"]K\x00a".to_vec();
        for _ in 0..60 {
            p.extend_from_slice(b"q\x00(h\x00h\x00l"); // memo it, [x, x]
        }
        p.push(b'.');
        let e = load(&p).unwrap_err();
        assert!(e.msg.contains("far more values") || e.msg.contains("nested"), "{e}");
        // `head` (a value memoised as 0), fetched `n` times onto the stack
        // (and popped).
        let fetched = |head: &[u8], n: usize| {
            let mut p = head.to_vec();
            p.extend_from_slice(b"q\x00");
            for _ in 0..n {
                p.extend_from_slice(b"h\x000");
            }
            p.push(b'.');
            p
        };
        // A 4 KiB string fetched from the memo 100 000 times (a 300 KB
        // pickle asking for 400 MB of copies): refused by the budget.
        let mut string = b"X\x00\x10\x00\x00".to_vec();
        string.extend(std::iter::repeat_n(b'x', 4096));
        let p = fetched(&string, 100_000);
        let t = std::time::Instant::now();
        let e = load(&p).unwrap_err();
        assert!(e.msg.contains("far more values"), "{e}");
        assert!(t.elapsed().as_secs() < 5);
        // The same through a GLOBAL's name (names are charged like strings).
        let mut global = b"c".to_vec();
        global.extend(std::iter::repeat_n(b'm', 4096));
        global.extend_from_slice(b"\nx\n");
        let g = fetched(&global, 100_000);
        assert!(load(&g).unwrap_err().msg.contains("far more values"));
        // The same with 1 000 fetches is within the budget.
        assert_eq!(load(&fetched(&string, 1000)).unwrap(), Value::Str("x".repeat(4096)));
    }
}

//! Values decoded field by field from bytes and a schema: what tools print.

use std::fmt::{self, Write as _};

use crate::schema::{FieldType, Primitive, Schema};

/// Most nodes (scalars, array elements, arrays and objects) one decoded value may hold: a
/// schema decoded from a segment may describe a very large array (even one of zero-sized
/// elements), and a tool should say so rather than build a tree many times the size of the
/// slot.
pub const MAX_VALUE_NODES: u64 = 1 << 20;

/// A value decoded from an object's bytes: integers, floats, arrays and nested objects.
///
/// Built by [`Value::decode`] from a [`Schema`] (from `T::SCHEMA`, or decoded from a segment)
/// and the object's bytes. `Display` prints it the way Rust's `Debug` prints a struct, with
/// fields in order; [`Value::to_json`] gives the JSON form (non-finite floats become `null`).
///
/// ```
/// use rtipc::inspect::Value;
/// use rtipc::Object;
///
/// #[derive(Object)]
/// #[repr(C)]
/// struct Arm { torque: [f32; 2], mode: u32 }
///
/// let arm = Arm { torque: [1.5, -2.0], mode: 3 };
/// let bytes = rtipc::inspect::bytes_of(&arm);
/// let v = Value::decode(Arm::SCHEMA, bytes)?;
/// assert_eq!(v.to_string(), "{ torque: [1.5, -2], mode: 3 }");
/// assert_eq!(v.to_json(), r#"{"torque":[1.5,-2],"mode":3}"#);
/// assert_eq!(v.get("torque[1]")?.to_string(), "-2");
/// # Ok::<(), rtipc::inspect::ValueError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An unsigned integer (`u8` to `u64`).
    Unsigned(u64),
    /// A signed integer (`i8` to `i64`).
    Signed(i64),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
    /// An array, element by element.
    Array(Vec<Value>),
    /// A nested object: its fields in order, by name.
    Object(Vec<(String, Value)>),
}

/// Why bytes do not decode into a [`Value`], or a path does not name a part of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    /// Fewer bytes than the schema's size.
    Short {
        /// Bytes the schema needs.
        needed: u64,
        /// Bytes given.
        given: u64,
    },
    /// The value would hold more than [`MAX_VALUE_NODES`] nodes.
    TooLarge {
        /// Nodes the value would hold (saturating).
        nodes: u64,
    },
    /// A field lies outside its object (possible only in a hand-built schema).
    Outside {
        /// The field.
        field: String,
    },
    /// A path does not parse or names nothing in the value.
    Path {
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Short { needed, given } => {
                write!(f, "the value needs {needed} bytes, {given} were given")
            }
            ValueError::TooLarge { nodes } => write!(
                f,
                "the value holds {nodes} scalars, arrays and objects, more than the {MAX_VALUE_NODES} a decoded value may hold; pick a smaller part with a path"
            ),
            ValueError::Outside { field } => {
                write!(f, "field `{field}` lies outside its object")
            }
            ValueError::Path { path, reason } => write!(f, "path `{path}`: {reason}"),
        }
    }
}

impl std::error::Error for ValueError {}

/// The bytes of an object, for [`Value::decode`].
pub fn bytes_of<T: crate::Object>(value: &T) -> &[u8] {
    value.as_bytes()
}

/// How many nodes a value of this type holds (saturating): every scalar, array, element and
/// object counts, so an array of zero-sized elements is counted by its length.
fn nodes(ty: &FieldType) -> u64 {
    match ty {
        FieldType::Primitive(_) => 1,
        FieldType::Array { elem, len } => nodes(elem.get()).saturating_mul(*len).saturating_add(1),
        FieldType::Object(s) => schema_nodes(s.get()),
    }
}

fn schema_nodes(s: &Schema) -> u64 {
    s.fields()
        .iter()
        .fold(1u64, |n, f| n.saturating_add(nodes(&f.ty)))
}

fn primitive(p: Primitive, b: &[u8]) -> Value {
    let mut w = [0u8; 8];
    let n = (p.size() as usize).min(8).min(b.len());
    w[..n].copy_from_slice(&b[..n]);
    let raw = u64::from_le_bytes(w);
    match p {
        Primitive::U8 | Primitive::U16 | Primitive::U32 | Primitive::U64 => Value::Unsigned(raw),
        Primitive::I8 => Value::Signed(i64::from(raw as u8 as i8)),
        Primitive::I16 => Value::Signed(i64::from(raw as u16 as i16)),
        Primitive::I32 => Value::Signed(i64::from(raw as u32 as i32)),
        Primitive::I64 => Value::Signed(raw as i64),
        Primitive::F32 => Value::F32(f32::from_bits(raw as u32)),
        Primitive::F64 => Value::F64(f64::from_bits(raw)),
    }
}

/// Decodes a value of type `ty` from `b`, which holds at least `ty.size()` bytes.
fn decode_type(ty: &FieldType, b: &[u8]) -> Value {
    match ty {
        FieldType::Primitive(p) => primitive(*p, b),
        FieldType::Array { elem, len } => {
            let size = elem.get().size() as usize;
            let items = (0..*len as usize)
                .map(|i| decode_type(elem.get(), b.get(i * size..).unwrap_or(&[])))
                .collect();
            Value::Array(items)
        }
        FieldType::Object(s) => decode_object(s.get(), b),
    }
}

fn decode_object(s: &Schema, b: &[u8]) -> Value {
    let fields = s
        .fields()
        .iter()
        .map(|f| {
            let at = b.get(f.offset as usize..).unwrap_or(&[]);
            (f.name.to_string(), decode_type(&f.ty, at))
        })
        .collect();
    Value::Object(fields)
}

/// Checks that every field of `s` lies inside it, recursively.
fn check_inside(s: &Schema) -> Result<(), ValueError> {
    for f in s.fields() {
        let end = f.offset.checked_add(f.ty.size());
        if end.is_none_or(|e| e > s.size) {
            return Err(ValueError::Outside {
                field: f.name.to_string(),
            });
        }
        let mut ty = &f.ty;
        while let FieldType::Array { elem, .. } = ty {
            ty = elem.get();
        }
        if let FieldType::Object(inner) = ty {
            check_inside(inner.get())?;
        }
    }
    Ok(())
}

impl Value {
    /// Decodes the object described by `schema` from `bytes` (at least `schema.size` bytes;
    /// any more are ignored). Allocates in proportion to the schema's scalars, at most
    /// [`MAX_VALUE_NODES`] nodes.
    pub fn decode(schema: &Schema, bytes: &[u8]) -> Result<Value, ValueError> {
        if (bytes.len() as u64) < schema.size {
            return Err(ValueError::Short {
                needed: schema.size,
                given: bytes.len() as u64,
            });
        }
        let n = schema_nodes(schema);
        if n > MAX_VALUE_NODES {
            return Err(ValueError::TooLarge { nodes: n });
        }
        check_inside(schema)?;
        Ok(decode_object(schema, bytes))
    }

    /// Decodes only the part of the object at `path` (see [`Value::get`]): the path is
    /// resolved against the schema first, so a bad path fails before any byte is read, and an
    /// object too large to decode whole can still be read a field at a time.
    pub fn decode_at(schema: &Schema, path: &str, bytes: &[u8]) -> Result<Value, ValueError> {
        let (offset, ty) = match locate(schema, path)? {
            (_, Part::Whole) => return Value::decode(schema, bytes),
            (offset, Part::Type(ty)) => (offset, ty),
        };
        let end = offset.saturating_add(ty.size());
        if (bytes.len() as u64) < end {
            return Err(ValueError::Short {
                needed: end,
                given: bytes.len() as u64,
            });
        }
        let n = nodes(ty);
        if n > MAX_VALUE_NODES {
            return Err(ValueError::TooLarge { nodes: n });
        }
        if let FieldType::Object(inner) = ty {
            check_inside(inner.get())?;
        }
        Ok(decode_type(ty, &bytes[offset as usize..end as usize]))
    }

    /// Checks that `path` names a part of the objects `schema` describes, without any bytes.
    pub fn check_path(schema: &Schema, path: &str) -> Result<(), ValueError> {
        locate(schema, path).map(|_| ())
    }

    /// The part of the value at `path`: field names joined by `.`, array indices in brackets
    /// (`pose.x`, `torque[2]`, `joints[1].angle`, `m[0][3]`). An empty path is the value.
    pub fn get(&self, path: &str) -> Result<&Value, ValueError> {
        let bad = |reason: String| ValueError::Path {
            path: path.to_owned(),
            reason,
        };
        let mut v = self;
        for step in parse_path(path).map_err(bad)? {
            v = match (step, v) {
                (Step::Field(name), Value::Object(fields)) => fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                        bad(format!(
                            "no field `{name}` here; the fields are {}",
                            names.join(", ")
                        ))
                    })?,
                (Step::Index(i), Value::Array(items)) => items.get(i).ok_or_else(|| {
                    bad(format!(
                        "index {i} is out of range for an array of {}",
                        items.len()
                    ))
                })?,
                (Step::Field(name), _) => {
                    return Err(bad(format!(
                        "`{name}` names a field of something that has none"
                    )))
                }
                (Step::Index(i), _) => {
                    return Err(bad(format!("[{i}] indexes something that is not an array")))
                }
            };
        }
        Ok(v)
    }

    /// Every scalar of the value, in order, without their paths: the cells of a CSV row whose
    /// header [`Value::leaves`] gave once.
    pub fn scalars(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        self.collect_scalars(&mut out);
        out
    }

    fn collect_scalars<'a>(&'a self, out: &mut Vec<&'a Value>) {
        match self {
            Value::Array(items) => items.iter().for_each(|v| v.collect_scalars(out)),
            Value::Object(fields) => fields.iter().for_each(|(_, v)| v.collect_scalars(out)),
            _ => out.push(self),
        }
    }

    /// Every scalar of the value with its path, in order: the columns of a CSV row.
    pub fn leaves(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        self.collect_leaves(String::new(), &mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, path: String, out: &mut Vec<(String, &'a Value)>) {
        match self {
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.collect_leaves(format!("{path}[{i}]"), out);
                }
            }
            Value::Object(fields) => {
                for (name, v) in fields {
                    let p = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    v.collect_leaves(p, out);
                }
            }
            _ => out.push((path, self)),
        }
    }

    /// The value as JSON: objects as JSON objects (fields in order), arrays as arrays, numbers
    /// as numbers; NaN and infinities, which JSON cannot express, as `null`.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::F32(x) if !x.is_finite() => out.push_str("null"),
            Value::F64(x) if !x.is_finite() => out.push_str("null"),
            Value::Unsigned(_) | Value::Signed(_) | Value::F32(_) | Value::F64(_) => {
                let _ = write!(out, "{self}");
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&crate::schema::json_string(name));
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

impl fmt::Display for Value {
    /// `{ x: 1.5, torque: [1, 2] }`; floats in Rust's shortest form that reads back exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Object(fields) => {
                f.write_str("{ ")?;
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {v}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// What a path names in a schema.
enum Part<'a> {
    /// The whole object.
    Whole,
    /// A field or an element, of this type.
    Type(&'a FieldType),
}

/// The offset and type of the part of `schema` that `path` names.
fn locate<'a>(schema: &'a Schema, path: &str) -> Result<(u64, Part<'a>), ValueError> {
    let bad = |reason: String| ValueError::Path {
        path: path.to_owned(),
        reason,
    };
    let mut offset = 0u64;
    let mut obj: Option<&Schema> = Some(schema);
    let mut ty: Option<&FieldType> = None;
    for step in parse_path(path).map_err(bad)? {
        match (step, obj, ty) {
            (Step::Field(name), Some(s), _) => {
                let f = s.fields().iter().find(|f| f.name == name).ok_or_else(|| {
                    let names: Vec<&str> = s.fields().iter().map(|f| f.name.as_ref()).collect();
                    bad(format!(
                        "no field `{name}` here; the fields are {}",
                        names.join(", ")
                    ))
                })?;
                offset = offset.saturating_add(f.offset);
                ty = Some(&f.ty);
            }
            (Step::Index(i), None, Some(FieldType::Array { elem, len })) => {
                if i as u64 >= *len {
                    return Err(bad(format!(
                        "index {i} is out of range for an array of {len}"
                    )));
                }
                offset = offset.saturating_add((i as u64).saturating_mul(elem.get().size()));
                ty = Some(elem.get());
            }
            (Step::Field(name), None, _) => {
                return Err(bad(format!(
                    "`{name}` names a field of something that has none"
                )))
            }
            (Step::Index(i), _, _) => {
                return Err(bad(format!("[{i}] indexes something that is not an array")))
            }
        }
        obj = match ty {
            Some(FieldType::Object(s)) => Some(s.get()),
            _ => None,
        };
    }
    Ok((offset, ty.map_or(Part::Whole, Part::Type)))
}

enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// Splits `a.b[2][3].c` into steps.
fn parse_path(path: &str) -> Result<Vec<Step<'_>>, String> {
    let mut steps = Vec::new();
    let mut rest = path;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("an index is not closed with `]`")?;
            let i = r[..end]
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("`{}` is not an index", &r[..end]))?;
            steps.push(Step::Index(i));
            rest = &r[end + 1..];
        } else {
            let r = if first {
                rest
            } else {
                rest.strip_prefix('.')
                    .ok_or("expected `.field` or `[index]`")?
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("a field name is empty".into());
            }
            steps.push(Step::Field(&r[..end]));
            rest = &r[end..];
        }
        first = false;
    }
    Ok(steps)
}

#[cfg(test)]
mod tests;

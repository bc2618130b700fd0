//! Schemas of [`Object`] types: what a type looks like in memory, field by field.
//!
//! `#[derive(Object)]` emits a `const` [`Schema`] for every object type: its name, size and
//! alignment, and for every field its name, offset, size and [`FieldType`], recursively through
//! arrays and nested objects. From that schema it computes, at compile time, a 64-bit
//! [`fingerprint`] that covers field names, offsets, sizes and types, but not the type's own
//! name, so that two builds agree exactly when their layouts agree.
//!
//! The creator of a segment writes each object's schema into the segment's metadata with
//! [`encode`]; the peer reads it back with [`decode`], which treats its input as untrusted, and
//! compares it with its own. When the two differ, [`diff`] explains how, field by field:
//!
//! ```text
//! field `torque`: f32 at offset 4 here, f64 at offset 8 in the peer's schema
//! ```
//!
//! The schema types work both as `'static` compile-time constants and as owned values decoded
//! from a segment: strings and field lists are [`Cow`]s, and sub-schemas are [`Link`]s.
//!
//! Schemas also describe a type to other languages and tools: [`c_header`] declares the object
//! types as C structs with `_Static_assert`s on every size, alignment and offset,
//! [`rust_declaration`] declares them again as `#[derive(Object)]` structs (from a decoded
//! schema, say), and [`json`] describes them in a JSON document that carries each schema's
//! encoding too. All three take decoded, untrusted schemas as well as compile-time ones.

use std::borrow::Cow;
use std::fmt;

mod codec;
mod diff;
mod evolve;
mod gen;
pub(crate) mod object;

pub use codec::{
    decode, encode, DecodeError, DecodeErrorKind, FORMAT_VERSION, MAGIC, MAX_DEPTH,
    MAX_ENCODED_LEN, MAX_FIELDS, MAX_NAME_LEN,
};
pub use diff::{diff, Difference, SchemaDiff};
pub use evolve::{prefix, Evolution, NotPrefix};
pub(crate) use gen::json_string;
pub use gen::{c_header, json, rust_declaration};
pub(crate) use object::{Object, Region};

/// A fixed-width primitive: the only scalar types an [`Object`] may contain.
///
/// Every bit pattern is a valid value of each of these types, and their sizes do not depend on
/// the target, so two processes of different word sizes agree on them. `bool`, `char`, `usize`
/// and `isize` are therefore not primitives here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Primitive {
    /// `u8`
    U8 = 1,
    /// `u16`
    U16 = 2,
    /// `u32`
    U32 = 3,
    /// `u64`
    U64 = 4,
    /// `i8`
    I8 = 5,
    /// `i16`
    I16 = 6,
    /// `i32`
    I32 = 7,
    /// `i64`
    I64 = 8,
    /// `f32`
    F32 = 9,
    /// `f64`
    F64 = 10,
}

impl Primitive {
    /// Every primitive, in tag order.
    pub const ALL: [Primitive; 10] = [
        Primitive::U8,
        Primitive::U16,
        Primitive::U32,
        Primitive::U64,
        Primitive::I8,
        Primitive::I16,
        Primitive::I32,
        Primitive::I64,
        Primitive::F32,
        Primitive::F64,
    ];

    /// Size in bytes, which is also the alignment on every supported target.
    pub const fn size(self) -> u64 {
        match self {
            Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        }
    }

    /// The Rust name of the type, such as `"f32"`.
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
        }
    }

    /// The stable one-byte tag of this primitive in encodings and fingerprints.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The primitive with the given tag, if any.
    pub const fn from_tag(tag: u8) -> Option<Primitive> {
        if tag >= 1 && tag <= 10 {
            Some(Primitive::ALL[(tag - 1) as usize])
        } else {
            None
        }
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A reference to a sub-schema: `'static` in compile-time schemas, boxed in decoded ones.
///
/// Compare and read it through [`Link::get`] (usable in `const` code) or `Deref`; equality
/// compares the referenced values, never the addresses.
#[derive(Debug)]
pub enum Link<T: 'static> {
    /// A reference to a compile-time constant.
    Static(&'static T),
    /// An owned value, as produced by [`decode`].
    Owned(Box<T>),
}

impl<T> Link<T> {
    /// The referenced value.
    pub const fn get(&self) -> &T {
        match self {
            Link::Static(r) => r,
            Link::Owned(b) => b,
        }
    }
}

impl<T> std::ops::Deref for Link<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T: Clone> Clone for Link<T> {
    fn clone(&self) -> Self {
        match self {
            Link::Static(r) => Link::Static(r),
            Link::Owned(b) => Link::Owned(b.clone()),
        }
    }
}

impl<T: PartialEq> PartialEq for Link<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for Link<T> {}

/// The type of one field of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A fixed-width integer or float.
    Primitive(Primitive),
    /// An array `[elem; len]`.
    Array {
        /// The element type.
        elem: Link<FieldType>,
        /// The number of elements.
        len: u64,
    },
    /// Another object type, nested in place.
    Object(Link<Schema>),
}

impl FieldType {
    /// The size of a value of this type in bytes.
    ///
    /// Saturates at `u64::MAX` for types too large to exist (possible only in decoded schemas,
    /// which [`decode`] rejects before they reach a caller).
    pub const fn size(&self) -> u64 {
        match self {
            FieldType::Primitive(p) => p.size(),
            FieldType::Array { elem, len } => elem.get().size().saturating_mul(*len),
            FieldType::Object(s) => s.get().size,
        }
    }

    /// The alignment of a value of this type in bytes.
    pub const fn align(&self) -> u64 {
        match self {
            FieldType::Primitive(p) => p.size(),
            FieldType::Array { elem, .. } => elem.get().align(),
            FieldType::Object(s) => s.get().align,
        }
    }
}

impl fmt::Display for FieldType {
    /// Rust syntax for the type: `f32`, `[[u8; 4]; 2]`, or the nested object's type name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Primitive(p) => f.write_str(p.name()),
            FieldType::Array { elem, len } => write!(f, "[{}; {len}]", elem.get()),
            FieldType::Object(s) => f.write_str(&s.get().name),
        }
    }
}

/// One field of an object: its name, where it sits and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name; `"0"`, `"1"`, ... for tuple structs.
    pub name: Cow<'static, str>,
    /// Byte offset of the field from the start of the object.
    pub offset: u64,
    /// Size of the field in bytes.
    pub size: u64,
    /// The field's type.
    pub ty: FieldType,
    /// The revision of the type in which the field was added: `#[rtipc(since = N)]`, 1 for
    /// every field declared without it (and for every field of a type that is not
    /// [appendable](Schema::appendable)).
    pub since: u32,
}

/// The full layout of an object type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The type's name: the struct's identifier, or `#[rtipc(name = "...")]`.
    pub name: Cow<'static, str>,
    /// `size_of` the type, in bytes.
    pub size: u64,
    /// `align_of` the type, in bytes.
    pub align: u64,
    /// The fields in declaration order.
    pub fields: Cow<'static, [Field]>,
    /// `#[rtipc(appendable)]`: later revisions of the type may append fields at its end, and
    /// a peer built with an earlier or later revision may attach (see [`prefix`]). A type
    /// that is not appendable matches exactly or not at all.
    pub appendable: bool,
}

impl Schema {
    /// The schema's fields as a slice.
    pub const fn fields(&self) -> &[Field] {
        cow_slice(&self.fields)
    }

    /// The schema's name as a string slice.
    pub const fn name(&self) -> &str {
        cow_str(&self.name)
    }

    /// The schema's [`fingerprint`].
    pub const fn fingerprint(&self) -> u64 {
        fingerprint(self)
    }

    /// The type's revision: the highest `since` of its fields (1 for a type that is not
    /// appendable).
    pub const fn revision(&self) -> u32 {
        let fields = self.fields();
        let mut rev = 1;
        let mut i = 0;
        while i < fields.len() {
            if fields[i].since > rev {
                rev = fields[i].since;
            }
            i += 1;
        }
        rev
    }
}

impl Field {
    /// The field's name as a string slice.
    pub const fn name(&self) -> &str {
        cow_str(&self.name)
    }
}

// `&Cow` rather than `&str`: `Cow`'s `Deref` is not `const`, so the match happens here.
#[allow(clippy::ptr_arg)]
const fn cow_str<'a>(c: &'a Cow<'static, str>) -> &'a str {
    match c {
        Cow::Borrowed(s) => s,
        Cow::Owned(s) => s.as_str(),
    }
}

#[allow(clippy::ptr_arg)]
const fn cow_slice<'a, T: Clone>(c: &'a Cow<'static, [T]>) -> &'a [T] {
    match c {
        Cow::Borrowed(s) => s,
        Cow::Owned(v) => v.as_slice(),
    }
}

// ---------------------------------------------------------------------------------------------
// Hashing: FNV-1a over a canonical byte stream, finished with the SplitMix64 mixer. Stable
// across builds, targets and versions of Rust: it is part of the segment format.
// ---------------------------------------------------------------------------------------------

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Clone, Copy)]
struct Hasher(u64);

impl Hasher {
    const fn new(domain: u8) -> Hasher {
        Hasher(FNV_OFFSET).byte(domain)
    }

    const fn byte(self, b: u8) -> Hasher {
        Hasher((self.0 ^ b as u64).wrapping_mul(FNV_PRIME))
    }

    const fn bytes(mut self, bytes: &[u8]) -> Hasher {
        let mut i = 0;
        while i < bytes.len() {
            self = self.byte(bytes[i]);
            i += 1;
        }
        self
    }

    const fn u64(self, v: u64) -> Hasher {
        self.bytes(&v.to_le_bytes())
    }

    /// A length-prefixed string, so that `("ab", "c")` and `("a", "bc")` differ.
    const fn str(self, s: &str) -> Hasher {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }

    const fn finish(self) -> u64 {
        // SplitMix64 finaliser: spreads FNV's weak high bits over the whole word.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The default id of an object type: a stable 64-bit hash of its type name.
///
/// `#[derive(Object)]` uses this when no `#[rtipc(id = N)]` is given. The name is the struct's
/// identifier (or `#[rtipc(name = "...")]`), never its module path, so the same declaration in
/// two crates gets the same id. The hash is FNV-1a over the UTF-8 bytes of the name followed by
/// the SplitMix64 finaliser; it is part of the segment format and will not change within a
/// layout version.
///
/// ```
/// assert_eq!(rtipc::schema::id_from_name("JointState"), rtipc::schema::id_from_name("JointState"));
/// assert_ne!(rtipc::schema::id_from_name("JointState"), rtipc::schema::id_from_name("ArmState"));
/// ```
pub const fn id_from_name(name: &str) -> u64 {
    Hasher::new(b'I').str(name).finish()
}

/// The 64-bit fingerprint of a schema's layout.
///
/// It covers the object's size and alignment and, for every field in order, its name, offset,
/// size and type, recursing into arrays and nested objects; for an
/// [appendable](Schema::appendable) type, also that it is appendable and each field's
/// revision. It does not cover the type's own
/// name nor the names of nested types: renaming a struct keeps its fingerprint, renaming,
/// reordering or retyping a field changes it. It is a `const fn`, so `#[derive(Object)]` computes
/// it at compile time.
pub const fn fingerprint(schema: &Schema) -> u64 {
    hash_schema(Hasher::new(b'F'), schema).finish()
}

const fn hash_schema(mut h: Hasher, s: &Schema) -> Hasher {
    let fields = s.fields();
    h = h
        .byte(b'S')
        .u64(s.size)
        .u64(s.align)
        .u64(fields.len() as u64);
    let mut i = 0;
    while i < fields.len() {
        let f = &fields[i];
        h = h.str(f.name()).u64(f.offset).u64(f.size);
        h = hash_type(h, &f.ty);
        // Only appendable types hash their revisions, so that every other type keeps the
        // fingerprint it had before revisions existed.
        if s.appendable {
            h = h.byte(b'R').u64(f.since as u64);
        }
        i += 1;
    }
    if s.appendable {
        h = h.byte(b'X');
    }
    h
}

const fn hash_type(h: Hasher, t: &FieldType) -> Hasher {
    match t {
        FieldType::Primitive(p) => h.byte(b'P').byte(p.tag()),
        FieldType::Array { elem, len } => hash_type(h.byte(b'A').u64(*len), elem.get()),
        FieldType::Object(s) => hash_schema(h.byte(b'O'), s.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: Schema = Schema {
        name: Cow::Borrowed("Inner"),
        size: 8,
        align: 4,
        fields: Cow::Borrowed(&[
            Field {
                name: Cow::Borrowed("a"),
                offset: 0,
                size: 4,
                ty: FieldType::Primitive(Primitive::U32),
                since: 1,
            },
            Field {
                name: Cow::Borrowed("b"),
                offset: 4,
                size: 4,
                ty: FieldType::Primitive(Primitive::F32),
                since: 1,
            },
        ]),
        appendable: false,
    };

    #[test]
    fn primitive_tags_round_trip() {
        for p in Primitive::ALL {
            assert_eq!(Primitive::from_tag(p.tag()), Some(p));
        }
        assert_eq!(Primitive::from_tag(0), None);
        assert_eq!(Primitive::from_tag(11), None);
    }

    /// A type that is not appendable keeps the fingerprint it had before revisions existed:
    /// this value was computed by an independent implementation of the hash.
    #[test]
    fn fingerprints_of_types_that_are_not_appendable_are_unchanged() {
        assert_eq!(fingerprint(&INNER), 0x5fe5_12d4_dfec_5a4b);
    }

    #[test]
    fn fingerprint_ignores_type_name_but_not_field_names() {
        let mut renamed = INNER.clone();
        renamed.name = Cow::Borrowed("Other");
        assert_eq!(fingerprint(&INNER), fingerprint(&renamed));

        let mut field_renamed = INNER.clone();
        field_renamed.fields.to_mut()[0].name = Cow::Borrowed("x");
        assert_ne!(fingerprint(&INNER), fingerprint(&field_renamed));
    }

    #[test]
    fn owned_and_static_links_compare_by_value() {
        let a = FieldType::Object(Link::Static(&INNER));
        let b = FieldType::Object(Link::Owned(Box::new(INNER.clone())));
        assert_eq!(a, b);
        assert_eq!(a.size(), 8);
        assert_eq!(a.to_string(), "Inner");
        let arr = FieldType::Array {
            elem: Link::Owned(Box::new(FieldType::Array {
                elem: Link::Static(&FieldType::Primitive(Primitive::U8)),
                len: 4,
            })),
            len: 2,
        };
        assert_eq!(arr.to_string(), "[[u8; 4]; 2]");
        assert_eq!(arr.size(), 8);
        assert_eq!(arr.align(), 1);
    }
}

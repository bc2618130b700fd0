//! The schema encoding: round trips, and a decoder that survives any input.

use std::borrow::Cow;

use proptest::prelude::*;
use rtipc::schema::{
    decode, diff, encode, fingerprint, DecodeErrorKind, Field, FieldType, Link, Primitive, Schema,
    FORMAT_VERSION, MAGIC, MAX_DEPTH, MAX_ENCODED_LEN, MAX_FIELDS,
};

// ---------------------------------------------------------------------------------------------
// Building schemas by hand, laid out the way `#[repr(C)]` lays them out.
// ---------------------------------------------------------------------------------------------

fn prim(p: Primitive) -> FieldType {
    FieldType::Primitive(p)
}

fn array(elem: FieldType, len: u64) -> FieldType {
    FieldType::Array {
        elem: Link::Owned(Box::new(elem)),
        len,
    }
}

fn object(schema: Schema) -> FieldType {
    FieldType::Object(Link::Owned(Box::new(schema)))
}

/// A `#[repr(C)]` layout of the named fields, in order.
fn layout(name: &str, fields: Vec<(String, FieldType)>) -> Schema {
    let mut offset = 0u64;
    let mut align = 1u64;
    let mut out = Vec::new();
    for (field_name, ty) in fields {
        let a = ty.align();
        offset = offset.next_multiple_of(a);
        let size = ty.size();
        out.push(Field {
            name: Cow::Owned(field_name),
            offset,
            size,
            ty,
            since: 1,
        });
        offset += size;
        align = align.max(a);
    }
    Schema {
        name: Cow::Owned(name.to_owned()),
        size: offset.next_multiple_of(align),
        align,
        fields: Cow::Owned(out),
        appendable: false,
    }
}

/// A tuple struct: fields named `"0"`, `"1"`, ...
fn tuple(name: &str, types: Vec<FieldType>) -> Schema {
    layout(
        name,
        types
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), t))
            .collect(),
    )
}

fn named(name: &str, fields: &[(&str, FieldType)]) -> Schema {
    layout(
        name,
        fields
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.clone()))
            .collect(),
    )
}

static VEC3: Schema = Schema {
    name: Cow::Borrowed("Vec3"),
    size: 12,
    align: 4,
    fields: Cow::Borrowed(&[
        Field {
            name: Cow::Borrowed("x"),
            offset: 0,
            size: 4,
            ty: FieldType::Primitive(Primitive::F32),
            since: 1,
        },
        Field {
            name: Cow::Borrowed("y"),
            offset: 4,
            size: 4,
            ty: FieldType::Primitive(Primitive::F32),
            since: 1,
        },
        Field {
            name: Cow::Borrowed("z"),
            offset: 8,
            size: 4,
            ty: FieldType::Primitive(Primitive::F32),
            since: 1,
        },
    ]),
    appendable: false,
};

/// A compile-time constant, the way `#[derive(Object)]` emits schemas.
static BODY: Schema = Schema {
    name: Cow::Borrowed("Body"),
    size: 32,
    align: 8,
    fields: Cow::Borrowed(&[
        Field {
            name: Cow::Borrowed("position"),
            offset: 0,
            size: 12,
            ty: FieldType::Object(Link::Static(&VEC3)),
            since: 1,
        },
        Field {
            name: Cow::Borrowed("flags"),
            offset: 12,
            size: 4,
            ty: FieldType::Array {
                elem: Link::Static(&FieldType::Primitive(Primitive::U8)),
                len: 4,
            },
            since: 1,
        },
        Field {
            name: Cow::Borrowed("stamp"),
            offset: 16,
            size: 8,
            ty: FieldType::Primitive(Primitive::U64),
            since: 1,
        },
        Field {
            name: Cow::Borrowed("mass"),
            offset: 24,
            size: 8,
            ty: FieldType::Primitive(Primitive::F64),
            since: 1,
        },
    ]),
    appendable: false,
};

fn all_primitives() -> Schema {
    // Largest first, so that no padding is needed.
    let mut ps = Primitive::ALL.to_vec();
    ps.sort_by_key(|p| std::cmp::Reverse(p.size()));
    layout(
        "AllPrimitives",
        ps.into_iter()
            .map(|p| (format!("{p}_field"), prim(p)))
            .collect(),
    )
}

fn arrays_of_arrays() -> Schema {
    named(
        "Grids",
        &[
            ("grid", array(array(prim(Primitive::U8), 4), 2)),
            ("cube", array(array(array(prim(Primitive::I16), 2), 3), 4)),
            ("empty", array(prim(Primitive::U64), 0)),
            ("matrix", array(array(prim(Primitive::F64), 4), 4)),
        ],
    )
}

fn three_levels() -> Schema {
    let leaf = named(
        "Leaf",
        &[
            ("value", prim(Primitive::F32)),
            ("count", prim(Primitive::U16)),
        ],
    );
    let middle = named(
        "Middle",
        &[
            ("leaf", object(leaf.clone())),
            ("leaves", array(object(leaf), 3)),
            ("id", prim(Primitive::U64)),
        ],
    );
    let top = named(
        "Top",
        &[("tag", prim(Primitive::U8)), ("middle", object(middle))],
    );
    named(
        "Root",
        &[
            ("top", object(top)),
            ("body", FieldType::Object(Link::Static(&BODY))),
        ],
    )
}

fn tuple_struct() -> Schema {
    tuple(
        "Pair",
        vec![
            prim(Primitive::U32),
            prim(Primitive::F32),
            object(tuple(
                "Inner",
                vec![prim(Primitive::I8), prim(Primitive::I8)],
            )),
        ],
    )
}

fn many_fields(n: u32) -> Schema {
    layout(
        "Many",
        (0..n)
            .map(|i| {
                let p = Primitive::ALL[(i % 10) as usize];
                (format!("field_{i}"), prim(p))
            })
            .collect(),
    )
}

fn empty() -> Schema {
    layout("Unit", Vec::new())
}

/// Every hand-built schema, with a short name for failure messages.
fn fixtures() -> Vec<(&'static str, Schema)> {
    vec![
        ("empty", empty()),
        ("vec3", VEC3.clone()),
        ("body (static)", BODY.clone()),
        ("all primitives", all_primitives()),
        ("arrays of arrays", arrays_of_arrays()),
        ("three levels", three_levels()),
        ("tuple struct", tuple_struct()),
        ("many fields", many_fields(100)),
        ("MAX_FIELDS fields", many_fields(MAX_FIELDS)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_round_trips_with_the_same_fingerprint() {
    for (what, schema) in fixtures() {
        let bytes = encode(&schema);
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(decoded, schema, "{what}");
        assert_eq!(fingerprint(&decoded), fingerprint(&schema), "{what}");
        assert_eq!(decoded.fingerprint(), schema.fingerprint(), "{what}");
        assert!(diff(&schema, &decoded).is_empty(), "{what}");
        assert_eq!(encode(&decoded), bytes, "{what}: the encoding is canonical");
    }
}

#[test]
fn the_encoding_starts_with_magic_and_version() {
    let bytes = encode(&empty());
    assert_eq!(&bytes[..4], b"RTSC");
    assert_eq!(MAGIC, *b"RTSC");
    // Version 1 for every schema without an appendable type; 2, the newest, with one.
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 1);
    assert_eq!(FORMAT_VERSION, 2);
}

// ---------------------------------------------------------------------------------------------
// Untrusted input
// ---------------------------------------------------------------------------------------------

/// What `decode` may do with any input: fail, or succeed with a schema whose encoding is
/// exactly that input (the encoding is canonical).
fn check_any(bytes: &[u8]) {
    if let Ok(schema) = decode(bytes) {
        assert_eq!(encode(&schema), bytes);
        assert_eq!(decode(&encode(&schema)), Ok(schema));
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (what, schema) in fixtures() {
        let bytes = encode(&schema);
        if bytes.len() > 8192 {
            continue; // quadratic; the 100-field fixture covers the same code
        }
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).expect_err(what);
            assert_eq!(
                err.kind,
                DecodeErrorKind::Truncated,
                "{what}, {len} bytes: {err}"
            );
            assert!(err.offset <= len as u64, "{what}: {err}");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_survived() {
    for schema in [
        VEC3.clone(),
        tuple_struct(),
        three_levels(),
        arrays_of_arrays(),
    ] {
        let bytes = encode(&schema);
        let mut copy = bytes.clone();
        for i in 0..bytes.len() {
            for value in 0..=u8::MAX {
                copy[i] = value;
                check_any(&copy);
            }
            copy[i] = bytes[i];
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&VEC3);
    let end = bytes.len() as u64;
    bytes.push(0);
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::TrailingBytes);
    assert_eq!(err.offset, end);
}

#[test]
fn wrong_magic_and_version_are_rejected() {
    let mut bytes = encode(&VEC3);
    bytes[0] = b'X';
    assert_eq!(decode(&bytes).unwrap_err().kind, DecodeErrorKind::BadMagic);
    assert_eq!(decode(b"XY").unwrap_err().kind, DecodeErrorKind::BadMagic);
    assert_eq!(decode(b"RT").unwrap_err().kind, DecodeErrorKind::Truncated);

    let mut bytes = encode(&VEC3);
    bytes[4] = 3;
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::UnsupportedVersion);
    assert_eq!(err.offset, 4);
    assert!(err.to_string().contains("version 3"), "{err}");
    // Version 2 is read, and a version-1 body under it is not a version-2 encoding.
    bytes[4] = 2;
    assert!(decode(&bytes).is_err());
}

/// Hand-written encodings, for inputs `encode` cannot produce.
struct Raw(Vec<u8>);

impl Raw {
    /// A format-version-1 encoding: no flags, no revisions.
    fn new() -> Raw {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        Raw(bytes)
    }
    fn u8(mut self, v: u8) -> Raw {
        self.0.push(v);
        self
    }
    fn u32(mut self, v: u32) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn name(self, s: &[u8]) -> Raw {
        let mut r = self.u32(s.len() as u32);
        r.0.extend_from_slice(s);
        r
    }
    /// A schema header: name, size, align, field count.
    fn schema(self, size: u64, align: u64, count: u32) -> Raw {
        self.name(b"T").u64(size).u64(align).u32(count)
    }
    /// A field's name, offset and size; its type follows.
    fn field(self, name: &[u8], offset: u64, size: u64) -> Raw {
        self.name(name).u64(offset).u64(size)
    }
}

#[test]
fn depth_bombs_are_rejected() {
    // MAX_DEPTH nested arrays are fine, one more is not.
    let nest = |depth: u32| {
        let mut ty = prim(Primitive::U8);
        for _ in 0..depth {
            ty = array(ty, 1);
        }
        named("Deep", &[("deep", ty)])
    };
    assert!(decode(&encode(&nest(MAX_DEPTH))).is_ok());
    let err = decode(&encode(&nest(MAX_DEPTH + 1))).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");

    // The same with objects, and with objects and arrays mixed: both count.
    let nest_objects = |depth: u32, arrays: bool| {
        let mut s = named("Leaf", &[("v", prim(Primitive::U32))]);
        for i in 0..depth {
            let ty = if arrays && i % 2 == 0 {
                array(object(s), 1)
            } else {
                object(s)
            };
            s = named("Level", &[("next", ty)]);
        }
        s
    };
    assert!(decode(&encode(&nest_objects(MAX_DEPTH, false))).is_ok());
    let err = decode(&encode(&nest_objects(MAX_DEPTH + 1, false))).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");
    // 10 levels of objects with 5 arrays among them: depth 15.
    assert!(decode(&encode(&nest_objects(10, true))).is_ok());
    // 12 levels with 6 arrays: depth 18.
    let err = decode(&encode(&nest_objects(12, true))).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");

    // A hundred thousand array tags: refused at the limit, without recursing further.
    let mut raw = Raw::new().schema(1, 1, 1).field(b"a", 0, 1);
    for _ in 0..100_000 {
        raw = raw.u8(0x40).u64(1);
    }
    let raw = raw.u8(1);
    let header = Raw::new().schema(1, 1, 1).field(b"a", 0, 1).0.len() as u64;
    let err = decode(&raw.0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded);
    assert_eq!(err.offset, header + 9 * u64::from(MAX_DEPTH), "{err}");
}

#[test]
fn huge_counts_and_lengths_fail_fast() {
    let err = decode(&Raw::new().schema(0, 1, u32::MAX).0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");
    assert!(err.to_string().contains("4294967295 fields"), "{err}");

    // Within the limit, but the bytes for the fields are not there.
    let err = decode(&Raw::new().schema(0, 1, MAX_FIELDS).0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Truncated, "{err}");

    let err = decode(&Raw::new().u32(u32::MAX).0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");

    let raw = Raw::new()
        .schema(8, 8, 1)
        .field(b"a", 0, 8)
        .u8(0x40)
        .u64(u64::MAX)
        .u8(Primitive::U64.tag());
    let err = decode(&raw.0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidLayout, "{err}");

    let mut long = encode(&VEC3);
    long.resize(MAX_ENCODED_LEN + 1, 0);
    let err = decode(&long).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::LimitExceeded, "{err}");
}

#[test]
fn impossible_layouts_are_rejected() {
    let f32_tag = Primitive::F32.tag();
    let cases: Vec<(&str, Raw, &str)> = vec![
        (
            "align not a power of two",
            Raw::new().schema(6, 3, 0),
            "not a power of two",
        ),
        (
            "align zero",
            Raw::new().schema(0, 0, 0),
            "not a power of two",
        ),
        (
            "size not a multiple of align",
            Raw::new().schema(6, 4, 0),
            "not a multiple of its alignment",
        ),
        (
            "field past the end",
            Raw::new().schema(4, 4, 1).field(b"a", 4, 4).u8(f32_tag),
            "does not fit",
        ),
        (
            "offset + size overflows",
            Raw::new()
                .schema(4, 4, 1)
                .field(b"a", u64::MAX - 3, 4)
                .u8(f32_tag),
            "does not fit",
        ),
        (
            "misaligned offset",
            Raw::new().schema(8, 4, 1).field(b"a", 2, 4).u8(f32_tag),
            "not a multiple of its type's alignment",
        ),
        (
            "field size differs from its type's",
            Raw::new().schema(8, 4, 1).field(b"a", 0, 8).u8(f32_tag),
            "recorded as 8 bytes",
        ),
        (
            "field aligned more than the struct",
            Raw::new()
                .schema(8, 4, 1)
                .field(b"a", 0, 8)
                .u8(Primitive::F64.tag()),
            "only aligned to 4",
        ),
        (
            "invalid nested object",
            Raw::new()
                .schema(4, 4, 1)
                .field(b"a", 0, 4)
                .u8(0x80)
                .schema(4, 0, 0),
            "not a power of two",
        ),
    ];
    for (what, raw, expected) in cases {
        let err = decode(&raw.0).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::InvalidLayout, "{what}: {err}");
        assert!(err.reason.contains(expected), "{what}: {err}");
    }
}

#[test]
fn unknown_tags_and_bad_utf8_are_rejected() {
    for tag in [0u8, 11, 0x3f, 0x41, 0x7f, 0x81, 0xff] {
        let raw = Raw::new().schema(4, 4, 1).field(b"a", 0, 4).u8(tag);
        let err = decode(&raw.0).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnknownTag, "{tag}: {err}");
        assert_eq!(err.offset, raw.0.len() as u64 - 1);
    }
    let raw = Raw::new()
        .schema(4, 4, 1)
        .field(b"a\xff", 0, 4)
        .u8(Primitive::U32.tag());
    let err = decode(&raw.0).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidUtf8, "{err}");
}

#[test]
fn errors_name_the_place_and_the_problem() {
    let raw = Raw::new().schema(8, 4, 1).field(b"torque", 2, 4).u8(9);
    let err = decode(&raw.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at byte 41: field `torque` is at offset 2, not a multiple of its type's alignment 4"
    );
    let err = decode(&raw.0[..raw.0.len() - 1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at byte 57: the encoding is cut short: the type of field `torque` takes 1 bytes here, \
         0 remain"
    );
    let err = decode(&encode(&VEC3)[..40]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at byte 30: `Vec3` declares 3 fields but only 6 bytes remain, too few for them; the \
         schema was cut short"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_type() -> impl Strategy<Value = FieldType> {
    let leaf = prop::sample::select(Primitive::ALL.to_vec()).prop_map(FieldType::Primitive);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), 0u64..4).prop_map(|(elem, len)| array(elem, len)),
            prop::collection::vec(inner, 0..4).prop_map(|types| object(tuple("Inner", types))),
        ]
    })
}

fn arb_schema() -> impl Strategy<Value = Schema> {
    (
        prop::collection::vec(arb_type(), 0..6),
        any::<bool>(),
        0usize..6,
    )
        .prop_map(|(types, appendable, first_appended)| {
            evolve(tuple("Top", types), appendable, first_appended)
        })
}

/// The schema made appendable, its fields from `first_appended` on of revision 2 (the first
/// field stays revision 1), when `appendable`.
fn evolve(mut s: Schema, appendable: bool, first_appended: usize) -> Schema {
    if appendable {
        s.appendable = true;
        for (i, f) in s.fields.to_mut().iter_mut().enumerate() {
            if i > 0 && i >= first_appended {
                f.since = 2;
            }
        }
    }
    s
}

/// Schemas from a small space, so that two of them are often equal.
fn small_schema() -> impl Strategy<Value = Schema> {
    let ty = prop_oneof![
        Just(prim(Primitive::U32)),
        Just(prim(Primitive::F32)),
        Just(array(prim(Primitive::U32), 2)),
        Just(array(prim(Primitive::U32), 3)),
        Just(object(tuple("A", vec![prim(Primitive::U32)]))),
        Just(object(tuple("B", vec![prim(Primitive::F32)]))),
    ];
    let name = prop::sample::select(vec!["a", "b", "c"]);
    let fields = prop::collection::vec((name, ty), 0..3);
    (fields, any::<bool>(), 0usize..3).prop_map(|(fields, appendable, first_appended)| {
        let mut seen = Vec::new();
        let fields = fields
            .into_iter()
            .filter(|(n, _)| {
                let new = !seen.contains(n);
                seen.push(*n);
                new
            })
            .map(|(n, t)| (n.to_owned(), t))
            .collect();
        evolve(layout("S", fields), appendable, first_appended)
    })
}

/// A valid encoding with a few bytes overwritten, inserted or removed.
fn mutated_encoding() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..3);
    (
        arb_schema(),
        prop::collection::vec(edit, 1..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(schema, edits, cut, truncate)| {
            let mut bytes = encode(&schema);
            for (at, value, op) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = value,
                    1 => bytes.insert(i, value),
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => bytes.push(value),
                }
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_any(&bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&tail);
        check_any(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(bytes in mutated_encoding()) {
        check_any(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_schemas_round_trip(schema in arb_schema()) {
        let bytes = encode(&schema);
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(fingerprint(&decoded), fingerprint(&schema));
        prop_assert!(diff(&schema, &decoded).is_empty());
        prop_assert_eq!(decoded, schema);
    }

    #[test]
    fn diff_is_empty_exactly_when_fingerprints_agree(a in small_schema(), b in small_schema()) {
        let d = diff(&a, &b);
        prop_assert_eq!(d.is_empty(), fingerprint(&a) == fingerprint(&b), "{}", d);
        prop_assert_eq!(diff(&b, &a).is_empty(), d.is_empty());
    }
}

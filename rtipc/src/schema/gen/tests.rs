//! Tests of the generators.

use std::borrow::Cow;

use super::*;
use crate::schema::{decode, Link};
use crate::Object;

#[derive(Object)]
#[repr(C)]
struct Joint {
    position: f64,
    velocity: f32,
    torque: f32,
}

#[derive(Object)]
#[repr(C, align(64))]
#[rtipc(id = 0xdead_beef)]
struct Arm {
    joints: [Joint; 3],
    grid: [[u8; 4]; 2],
    int: u32,
    r#type: u32,
}

#[derive(Object)]
#[repr(C)]
struct Pair(u32, i32);

fn field(name: &str, offset: u64, ty: FieldType) -> Field {
    Field {
        name: Cow::Owned(name.to_owned()),
        offset,
        size: ty.size(),
        ty,
        since: 1,
    }
}

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

fn schema(name: &str, size: u64, align: u64, fields: Vec<Field>) -> Schema {
    Schema {
        name: Cow::Owned(name.to_owned()),
        size,
        align,
        fields: Cow::Owned(fields),
        appendable: false,
    }
}

fn all() -> [(&'static Schema, u64); 3] {
    [
        (Arm::SCHEMA, Arm::ID),
        (Pair::SCHEMA, Pair::ID),
        (Joint::SCHEMA, Joint::ID),
    ]
}

/// The block of `text` from the line that starts with `start` to the next line that starts
/// with `end`, included.
fn block<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in:\n{text}"));
    let len = text[from..].find(end).expect("end of block") + end.len();
    &text[from..from + len]
}

#[test]
fn c_header_declares_nested_types_arrays_and_keywords() {
    let header = c_header(&all(), "arm.h");
    assert!(header.starts_with("/* Generated from rtipc schemas"));
    assert!(header.contains("#ifndef ARM_H\n#define ARM_H\n"));
    assert!(header.contains("#include <stddef.h>\n#include <stdint.h>\n"));
    assert!(header.ends_with("#endif /* ARM_H */\n"));
    assert_eq!(
        block(&header, "typedef struct Arm {", "} Arm;"),
        "typedef struct Arm {\n    _Alignas(64) struct Joint joints[3];\n    uint8_t grid[2][4];\n    \
         uint32_t int_; /* field `int` */\n    uint32_t type;\n} Arm;"
    );
    assert_eq!(
        block(&header, "typedef struct Pair {", "} Pair;"),
        "typedef struct Pair {\n    uint32_t _0; /* field `0` */\n    int32_t _1; /* field `1` */\n} Pair;"
    );
    for line in [
        "_Static_assert(sizeof(struct Arm) == 64, ",
        "_Static_assert(_Alignof(struct Arm) == 64, ",
        "_Static_assert(offsetof(struct Arm, grid) == 48, ",
        "_Static_assert(offsetof(struct Arm, int_) == 56, ",
        "_Static_assert(offsetof(struct Joint, torque) == 12, ",
        "_Static_assert(sizeof(float) == 4, ",
        "_Static_assert(sizeof(double) == 8, ",
        "#define ARM_RTIPC_ID UINT64_C(0x00000000deadbeef)\n",
    ] {
        assert!(header.contains(line), "missing `{line}` in:\n{header}");
    }
    let fp = format!(
        "#define JOINT_RTIPC_FINGERPRINT UINT64_C({:#018x})\n",
        Joint::FINGERPRINT
    );
    assert!(header.contains(&fp));
}

#[test]
fn nested_types_come_once_and_before_their_use() {
    // Joint is nested in Arm, listed on its own, and listed twice.
    let mut objects = all().to_vec();
    objects.push((Joint::SCHEMA, Joint::ID));
    let header = c_header(&objects, "x");
    assert_eq!(header.matches("typedef struct Joint {").count(), 1);
    assert_eq!(header.matches("#define JOINT_RTIPC_ID").count(), 1);
    let joint = header.find("typedef struct Joint {").unwrap();
    assert!(joint < header.find("typedef struct Arm {").unwrap());

    // A decoded copy of Arm is equal by value: nothing is emitted twice.
    let decoded = decode(&encode(Arm::SCHEMA)).unwrap();
    let both = c_header(&[(Arm::SCHEMA, Arm::ID), (&decoded, Arm::ID)], "x");
    assert_eq!(both, c_header(&[(Arm::SCHEMA, Arm::ID)], "x"));

    let source = rust_declaration(&objects);
    assert_eq!(source.matches("pub struct Joint {").count(), 1);
}

#[test]
fn different_types_with_one_name_get_distinct_names() {
    let a = schema("Joint", 4, 4, vec![field("x", 0, prim(Primitive::U32))]);
    let b = schema("Joint", 8, 8, vec![field("x", 0, prim(Primitive::F64))]);
    let outer = schema(
        "Outer",
        16,
        8,
        vec![
            field("a", 0, object(a.clone())),
            field("b", 8, object(b.clone())),
        ],
    );
    let header = c_header(&[(&outer, 1), (&b, 2)], "x");
    assert!(header.contains("typedef struct Joint {\n    uint32_t x;\n} Joint;"));
    assert!(header.contains("typedef struct Joint_2 {\n    double x;\n} Joint_2;"));
    assert!(header
        .contains("    struct Joint a;\n    uint8_t _rtipc_pad_0[4];\n    struct Joint_2 b;\n"));
    assert!(header.contains("#define JOINT_2_RTIPC_ID UINT64_C(0x0000000000000002)\n"));

    let source = rust_declaration(&[(&outer, 1), (&b, 2)]);
    assert!(source.contains("#[rtipc(name = \"Joint\", id = 0x0000000000000002)]\n"));
    assert!(source.contains("pub struct Joint_2 {"));
    assert!(source.contains("    pub b: Joint_2,\n"));

    // Names that differ only in case would give the same macros.
    let upper = schema("JOINT", 4, 4, vec![field("x", 0, prim(Primitive::U32))]);
    let header = c_header(&[(&a, 1), (&upper, 2)], "x");
    assert!(header.contains("#define JOINT_RTIPC_ID UINT64_C(0x0000000000000001)\n"));
    assert!(header.contains("#define JOINT_2_RTIPC_ID UINT64_C(0x0000000000000002)\n"));
}

#[test]
fn reserved_and_odd_names_are_sanitised_and_unique() {
    let names = [
        "int", "int_", "NULL", "_Bool", "uint8_t", "INT64_C", "a b", "é", "linux",
    ];
    let fields = names
        .iter()
        .enumerate()
        .map(|(i, n)| field(n, i as u64, prim(Primitive::U8)))
        .collect();
    let s = schema("struct", 9, 1, fields);
    let header = c_header(&[(&s, 1)], "9 lives.h");
    assert!(header.contains("#ifndef _9_LIVES_H\n"));
    assert!(header.contains("typedef struct struct_ {\n"));
    let expected = [
        "int_", "int__2", "NULL_", "_Bool_", "uint8_t_", "INT64_C_", "a_b", "_", "linux_",
    ];
    for (name, c) in names.iter().zip(expected) {
        assert!(
            header.contains(&format!("offsetof(struct struct_, {c}) ==")),
            "{c}"
        );
        if *name != c {
            assert!(
                header.contains(&format!("    uint8_t {c}; /* field `")),
                "{c}"
            );
        }
    }
    assert!(header.contains("uint8_t _; /* field `\\u{e9}` */"));
    assert!(header.contains("#define STRUCT__RTIPC_ID "));

    let source = rust_declaration(&[(&s, 1)]);
    assert!(source.contains("#[rtipc(name = \"struct\", id = 0x0000000000000001)]\n"));
    assert!(source.contains("pub struct struct_ {"));
    assert!(source.contains("    pub a_b: u8,\n"));
    assert!(source.contains("// Same layout, but not the same fingerprint"));
}

#[test]
fn rust_keywords_become_raw_identifiers() {
    let fields = ["type", "self", "0x", "fn"]
        .iter()
        .enumerate()
        .map(|(i, n)| field(n, i as u64, prim(Primitive::U8)))
        .collect();
    let s = schema("u8", 4, 1, fields);
    let source = rust_declaration(&[(&s, id_from_name("u8"))]);
    assert!(source.contains("#[rtipc(name = \"u8\")]\n#[allow(non_camel_case_types)]\n"));
    assert!(source.contains(
        "pub struct u8_ {\n    pub r#type: u8,\n    // field `self`\n    pub self_: u8,\n"
    ));
    assert!(source.contains("    pub _0x: u8,\n    pub r#fn: u8,\n}"));
    assert!(source.contains("offset_of!(u8_, r#fn) == 3"));
}

#[test]
fn gaps_become_explicit_padding() {
    let s = schema(
        "Gappy",
        16,
        4,
        vec![
            field("a", 0, prim(Primitive::U8)),
            field("b", 4, prim(Primitive::U32)),
            field("_rtipc_pad_0", 8, prim(Primitive::U16)),
        ],
    );
    let header = c_header(&[(&s, 1)], "x");
    assert_eq!(
        block(&header, "typedef struct Gappy {", "} Gappy;"),
        "typedef struct Gappy {\n    uint8_t a;\n    uint8_t _rtipc_pad_0_2[3];\n    uint32_t b;\n    \
         uint16_t _rtipc_pad_0;\n    uint8_t _rtipc_pad_1[6];\n} Gappy;"
    );
    let source = rust_declaration(&[(&s, 1)]);
    assert!(source.contains("    pub _rtipc_pad_0_2: [u8; 3],\n"));
    assert!(source.contains("    pub _rtipc_pad_1: [u8; 6],\n}"));
    assert!(source.contains("padding is declared as fields"));

    let empty = schema("Empty", 0, 1, vec![]);
    let header = c_header(&[(&empty, 1)], "x");
    assert!(header.contains("typedef struct Empty {\n    uint8_t _rtipc_pad_0[0];\n} Empty;"));
    let source = rust_declaration(&[(&empty, 1)]);
    assert!(source.contains("pub struct Empty {\n    pub _rtipc_pad_0: [u8; 0],\n}"));
}

#[test]
fn fields_are_laid_out_in_offset_order() {
    let s = schema(
        "Swapped",
        8,
        4,
        vec![
            field("b", 4, prim(Primitive::F32)),
            field("a", 0, prim(Primitive::I32)),
        ],
    );
    let header = c_header(&[(&s, 1)], "x");
    assert!(header.contains("{\n    int32_t a;\n    float b;\n}"));
    // The assertions keep the schema's order.
    let b = header.find("offsetof(struct Swapped, b) == 4").unwrap();
    assert!(b < header.find("offsetof(struct Swapped, a) == 0").unwrap());
    let source = rust_declaration(&[(&s, 1)]);
    assert!(source.contains("declared in the order of their offsets"));
}

#[test]
fn over_aligned_types_force_their_alignment() {
    let s = schema(
        "Line",
        64,
        64,
        vec![field("words", 0, array(prim(Primitive::U64), 8))],
    );
    let header = c_header(&[(&s, 1)], "x");
    assert!(header.contains("{\n    _Alignas(64) uint64_t words[8];\n}"));
    assert!(header.contains("_Static_assert(_Alignof(struct Line) == 64, "));
    let source = rust_declaration(&[(&s, 1)]);
    assert!(source.contains("#[repr(C, align(64))]\n"));

    // Alignment that is not a power of two cannot be forced; the assertions say so.
    let odd = schema("Odd", 6, 3, vec![field("a", 0, prim(Primitive::U8))]);
    let header = c_header(&[(&odd, 1)], "x");
    assert!(!header.contains("_Alignas"));
    assert!(header.contains("_Static_assert(_Alignof(struct Odd) == 3, "));
    assert!(rust_declaration(&[(&odd, 1)]).contains("alignment 3 cannot be declared"));
}

#[test]
fn rust_declaration_reproduces_derived_types() {
    let source = rust_declaration(&all());
    assert_eq!(
        block(
            &source,
            "#[derive(rtipc::Object)]\n#[repr(C, align(64))]",
            "}\n"
        ),
        "#[derive(rtipc::Object)]\n#[repr(C, align(64))]\n#[rtipc(id = 0x00000000deadbeef)]\n\
         pub struct Arm {\n    pub joints: [Joint; 3],\n    pub grid: [[u8; 4]; 2],\n    \
         pub int: u32,\n    pub r#type: u32,\n}\n"
    );
    assert!(source.contains("#[repr(C)]\npub struct Pair(pub u32, pub i32);\n"));
    assert!(source.contains("const _: () = assert!(::core::mem::offset_of!(Pair, 1) == 4);\n"));
    assert!(source.contains("const _: () = assert!(::core::mem::size_of::<Arm>() == 64);\n"));
    assert!(!source.contains("not the same fingerprint"));
    // Default ids get no attribute.
    assert!(source.contains("\n#[repr(C)]\npub struct Joint {"));
}

/// Lowercase hex to bytes.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn json_describes_the_objects_and_carries_their_encoding() {
    let doc = json(&all());
    assert!(doc.starts_with("{\"format\":\"rtipc-schema\",\"version\":1,\"objects\":[{"));
    assert!(doc.ends_with("}]}\n"));
    let arm = format!(
        "{{\"name\":\"Arm\",\"id\":\"0x00000000deadbeef\",\"fingerprint\":\"{:#018x}\",\
         \"size\":64,\"align\":64,\"fields\":[{{\"name\":\"joints\",\"offset\":0,\"size\":48,\
         \"type\":{{\"array\":{{\"len\":3,\"elem\":{{\"object\":{{\"name\":\"Joint\",\"size\":16,\
         \"align\":8,\"fields\":[{{\"name\":\"position\",\"offset\":0,\"size\":8,\"type\":\"f64\"}},",
        Arm::FINGERPRINT
    );
    assert!(doc.contains(&arm), "{doc}");
    assert!(doc.contains(
        "{\"name\":\"grid\",\"offset\":48,\"size\":8,\"type\":{\"array\":{\"len\":2,\"elem\":\
         {\"array\":{\"len\":4,\"elem\":\"u8\"}}}}}"
    ));
    for (schema, _) in all() {
        let start = doc
            .find(&format!("\"name\":\"{}\",\"id\"", schema.name()))
            .unwrap();
        let rtsc = &doc[start..];
        let rtsc = &rtsc[rtsc.find("\"rtsc\":\"").unwrap() + 8..];
        let rtsc = &rtsc[..rtsc.find('"').unwrap()];
        assert_eq!(&decode(&unhex(rtsc)).unwrap(), schema);
    }
}

#[test]
fn json_escapes_strings() {
    let s = schema(
        "a\"b\\c\nd\u{1}é",
        1,
        1,
        vec![field("x\ty", 0, prim(Primitive::I8))],
    );
    let doc = json(&[(&s, 1)]);
    assert!(doc.contains(r#""name":"a\"b\\c\nd\u0001é","id""#), "{doc}");
    assert!(doc.contains(r#"{"name":"x\ty","offset":0,"size":1,"type":"i8"}"#));
    let header = c_header(&[(&s, 1)], "x");
    assert!(header.contains("/* rtipc object `a\"b\\c\\u{a}d\\u{1}\\u{e9}`: 1 bytes"));
}

#[test]
fn output_is_deterministic() {
    let objects = all();
    assert_eq!(c_header(&objects, "g"), c_header(&objects, "g"));
    assert_eq!(rust_declaration(&objects), rust_declaration(&objects));
    assert_eq!(json(&objects), json(&objects));
}

/// Schemas that describe impossible layouts or push every limit.
fn odd_schemas() -> Vec<Schema> {
    let huge = u64::MAX;
    let mut deep_array = prim(Primitive::U8);
    for _ in 0..100 {
        deep_array = array(deep_array, 1);
    }
    let mut deep_object = schema("Leaf", 1, 1, vec![field("x", 0, prim(Primitive::U8))]);
    for _ in 0..40 {
        deep_object = schema("Nest", 1, 1, vec![field("inner", 0, object(deep_object))]);
    }
    vec![
        schema("", 0, 0, vec![]),
        schema(
            "*/ /* ??/\n",
            huge,
            3,
            vec![field("*/", huge, prim(Primitive::U64))],
        ),
        schema(
            "Overlap",
            4,
            4,
            vec![
                field("a", 0, prim(Primitive::U32)),
                field("b", 2, array(prim(Primitive::U16), huge)),
                field("a", 1, prim(Primitive::U8)),
            ],
        ),
        schema(
            "Big",
            huge,
            1 << 40,
            vec![field("x", huge - 1, array(prim(Primitive::F64), huge))],
        ),
        schema("Deep", 1, 1, vec![field("a", 0, deep_array)]),
        deep_object,
    ]
}

#[test]
fn odd_schemas_do_not_panic() {
    let schemas = odd_schemas();
    let objects: Vec<(&Schema, u64)> = schemas.iter().map(|s| (s, u64::MAX)).collect();
    let header = c_header(&objects, "");
    assert!(header.contains("#ifndef RTIPC_SCHEMAS_H\n"));
    // Names from the schemas never close a comment early or open a new one.
    let comments: Vec<&str> = header.split("/*").skip(1).collect();
    for comment in comments {
        let body = &comment[..comment.find("*/").expect("a closed comment")];
        assert!(
            !body.contains('\n') || body.starts_with(" Generated"),
            "{body}"
        );
    }
    assert!(header.contains("uint8_t a[1][1][1]"));
    assert!(header.contains("nests deeper than 16: opaque words"));
    assert!(header.contains("nests deeper than 16, which rtipc does not decode"));
    let _ = rust_declaration(&objects);
    let doc = json(&objects);
    assert!(doc.contains("{\"opaque\":{\"name\":\"Nest\",\"size\":1,\"align\":1}}"));
    assert!(doc.contains("\"fingerprint\":null"));
    for s in &schemas {
        let one = [(s, 0)];
        let _ = (c_header(&one, "x"), rust_declaration(&one), json(&one));
    }
}

/// A schema that contains itself, which only a `static` can build.
static CYCLE: Schema = Schema {
    name: Cow::Borrowed("Cycle"),
    size: 8,
    align: 8,
    fields: Cow::Borrowed(&[Field {
        name: Cow::Borrowed("next"),
        offset: 0,
        size: 8,
        ty: FieldType::Object(Link::Static(&CYCLE)),
        since: 1,
    }]),
    appendable: false,
};

#[test]
fn cyclic_schemas_stop_at_max_depth() {
    // One type per depth, 0 to MAX_DEPTH, the deepest first and opaque.
    let header = c_header(&[(&CYCLE, 1)], "x");
    let types = MAX_DEPTH as usize + 1;
    assert_eq!(header.matches("typedef struct Cycle").count(), types);
    assert!(
        header.contains("typedef struct Cycle {\n    uint64_t next[1]; /* `Cycle` nests deeper")
    );
    assert!(header.contains(&format!(
        "#define CYCLE_{types}_RTIPC_ID UINT64_C(0x0000000000000001)"
    )));
    assert!(!header.contains("_RTIPC_FINGERPRINT"));
    let source = rust_declaration(&[(&CYCLE, 1)]);
    assert!(source.contains("pub struct Cycle {\n    pub next: [u64; 1],\n}"));
    assert!(source.contains("pub struct Cycle_2 {\n    pub next: Cycle,\n}"));
    assert!(json(&[(&CYCLE, 1)]).contains("\"fingerprint\":null"));
}

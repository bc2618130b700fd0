//! Tests of the schema diff.

use std::borrow::Cow;

use super::*;
use crate::schema::{fingerprint, Link, Primitive};

fn prim(name: &'static str, offset: u64, p: Primitive) -> Field {
    Field {
        name: Cow::Borrowed(name),
        offset,
        size: p.size(),
        ty: FieldType::Primitive(p),
        since: 1,
    }
}

fn field(name: &'static str, offset: u64, ty: FieldType) -> Field {
    Field {
        name: Cow::Borrowed(name),
        offset,
        size: ty.size(),
        ty,
        since: 1,
    }
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

fn schema(name: &'static str, size: u64, align: u64, fields: Vec<Field>) -> Schema {
    Schema {
        name: Cow::Borrowed(name),
        size,
        align,
        fields: Cow::Owned(fields),
        appendable: false,
    }
}

/// A schema `S` of one field `q`: an array of `len` elements of `elem`.
fn one_array(size: u64, elem: Primitive, len: u64) -> Schema {
    let q = field("q", 0, array(FieldType::Primitive(elem), len));
    schema("S", size, elem.size(), vec![q])
}

/// A schema `S` of `size` bytes aligned to 4, with primitive fields `(name, offset, type)`.
fn fields4(size: u64, fields: &[(&'static str, u64, Primitive)]) -> Schema {
    let fields = fields.iter().map(|&(n, o, p)| prim(n, o, p)).collect();
    schema("S", size, 4, fields)
}

fn strings(d: &SchemaDiff) -> Vec<String> {
    d.iter().map(ToString::to_string).collect()
}

fn joint(torque: Field, size: u64, align: u64) -> Schema {
    schema(
        "Joint",
        size,
        align,
        vec![prim("angle", 0, Primitive::F32), torque],
    )
}

#[test]
fn identical_schemas_have_an_empty_diff() {
    let a = joint(prim("torque", 4, Primitive::F32), 8, 4);
    let d = diff(&a, &a.clone());
    assert!(d.is_empty());
    assert_eq!(d.len(), 0);
    assert!(d.notes().is_empty());
    assert_eq!(d.to_string(), "the schemas are identical");
}

#[test]
fn torque_example_reads_as_documented() {
    let ours = schema(
        "Joint",
        16,
        8,
        vec![
            prim("angle", 0, Primitive::F32),
            prim("torque", 4, Primitive::F32),
            prim("stamp", 8, Primitive::U64),
        ],
    );
    let theirs = schema(
        "Joint",
        16,
        8,
        vec![
            prim("angle", 0, Primitive::F32),
            prim("torque", 8, Primitive::F64),
        ],
    );
    let d = diff(&ours, &theirs);
    assert_eq!(
        strings(&d),
        [
            "field `torque`: f32 at offset 4 here, f64 at offset 8 in the peer's schema",
            "field `stamp` (u64 at offset 8) is missing from the peer's schema",
        ]
    );
    assert_eq!(
        d.to_string(),
        "field `torque`: f32 at offset 4 here, f64 at offset 8 in the peer's schema; \
         field `stamp` (u64 at offset 8) is missing from the peer's schema"
    );
}

#[test]
fn renamed_field_is_missing_plus_extra() {
    let ours = fields4(16, &[("a", 0, Primitive::U32), ("x", 8, Primitive::F32)]);
    let theirs = fields4(16, &[("a", 0, Primitive::U32), ("y", 12, Primitive::U32)]);
    let d = diff(&ours, &theirs);
    assert_eq!(
        strings(&d),
        [
            "field `x` (f32 at offset 8) is missing from the peer's schema",
            "the peer's schema has an extra field `y` (u32 at offset 12)",
        ]
    );
}

#[test]
fn swapped_same_size_fields_report_order_and_offsets() {
    let ours = fields4(8, &[("a", 0, Primitive::U32), ("b", 4, Primitive::U32)]);
    let theirs = fields4(8, &[("b", 0, Primitive::U32), ("a", 4, Primitive::U32)]);
    let d = diff(&ours, &theirs);
    assert_eq!(
        strings(&d),
        [
            "fields are in a different order: `a`, `b` here, `b`, `a` in the peer's schema",
            "field `a`: u32 at offset 0 here, u32 at offset 4 in the peer's schema",
            "field `b`: u32 at offset 4 here, u32 at offset 0 in the peer's schema",
        ]
    );
    assert_ne!(fingerprint(&ours), fingerprint(&theirs));
}

#[test]
fn u32_to_f32_is_a_type_change() {
    let ours = schema("S", 4, 4, vec![prim("v", 0, Primitive::U32)]);
    let theirs = schema("S", 4, 4, vec![prim("v", 0, Primitive::F32)]);
    let d = diff(&ours, &theirs);
    assert_eq!(
        d.differences(),
        [Difference::Changed {
            field: "v".into(),
            ours: FieldType::Primitive(Primitive::U32),
            ours_offset: 0,
            theirs: FieldType::Primitive(Primitive::F32),
            theirs_offset: 0,
        }]
    );
    assert_eq!(
        d.to_string(),
        "field `v`: u32 at offset 0 here, f32 at offset 0 in the peer's schema"
    );
}

#[test]
fn array_length_and_size_change() {
    let ours = one_array(12, Primitive::F32, 3);
    let theirs = one_array(16, Primitive::F32, 4);
    let d = diff(&ours, &theirs);
    assert_eq!(
        strings(&d),
        [
            "size is 12 bytes here, 16 bytes in the peer's schema",
            "field `q`: array of 3 elements here, 4 in the peer's schema",
        ]
    );
}

#[test]
fn inner_array_length_change_names_the_element() {
    let grid = |inner| {
        field(
            "grid",
            0,
            array(array(FieldType::Primitive(Primitive::U8), inner), 2),
        )
    };
    let ours = schema("S", 8, 1, vec![grid(4)]);
    let theirs = schema("S", 10, 1, vec![grid(5)]);
    assert_eq!(
        strings(&diff(&ours, &theirs)),
        [
            "size is 8 bytes here, 10 bytes in the peer's schema",
            "field `grid[]`: array of 4 elements here, 5 in the peer's schema",
        ]
    );
}

#[test]
fn array_element_type_change_shows_whole_types() {
    let ours = one_array(16, Primitive::F32, 4);
    let theirs = one_array(16, Primitive::U32, 4);
    assert_eq!(
        diff(&ours, &theirs).to_string(),
        "field `q`: [f32; 4] at offset 0 here, [u32; 4] at offset 0 in the peer's schema"
    );
}

#[test]
fn nested_field_change_names_the_path() {
    let pose = |z: Primitive, size| {
        schema(
            "Pose",
            size,
            z.size().max(4),
            vec![
                prim("x", 0, Primitive::F32),
                prim("y", 4, Primitive::F32),
                prim("z", 8, z),
            ],
        )
    };
    let robot = |p: Schema, size, align| {
        schema(
            "Robot",
            size,
            align,
            vec![
                prim("id", 0, Primitive::U32),
                field("pose", align, object(p)),
            ],
        )
    };
    let ours = robot(pose(Primitive::F32, 12), 16, 4);
    let theirs = robot(pose(Primitive::F64, 16), 24, 8);
    let d = diff(&ours, &theirs);
    assert_eq!(
        strings(&d),
        [
            "size is 16 bytes here, 24 bytes in the peer's schema",
            "alignment is 4 bytes here, 8 bytes in the peer's schema",
            "field `pose`: Pose at offset 4 here, Pose at offset 8 in the peer's schema",
            "size of `pose` is 12 bytes here, 16 bytes in the peer's schema",
            "alignment of `pose` is 4 bytes here, 8 bytes in the peer's schema",
            "field `pose.z`: f32 at offset 8 here, f64 at offset 8 in the peer's schema",
        ]
    );
}

#[test]
fn arrays_of_objects_are_compared_element_wise() {
    let j = |t: Primitive| {
        schema(
            "J",
            8,
            4,
            vec![prim("a", 0, Primitive::F32), prim("t", 4, t)],
        )
    };
    let ours = schema(
        "S",
        48,
        4,
        vec![field("joints", 0, array(object(j(Primitive::F32)), 6))],
    );
    let theirs = schema(
        "S",
        48,
        4,
        vec![field("joints", 0, array(object(j(Primitive::I32)), 6))],
    );
    assert_eq!(
        diff(&ours, &theirs).to_string(),
        "field `joints[].t`: f32 at offset 4 here, i32 at offset 4 in the peer's schema"
    );
}

#[test]
fn type_names_are_notes_not_differences() {
    let a = joint(prim("torque", 4, Primitive::F32), 8, 4);
    let mut b = a.clone();
    b.name = Cow::Borrowed("Joint2");
    let d = diff(&a, &b);
    assert!(d.is_empty());
    assert_eq!(d.to_string(), "the schemas are identical");
    assert_eq!(
        d.notes()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["the type is named `Joint` here, `Joint2` in the peer's schema"]
    );

    let nested = |name| {
        schema(
            "Outer",
            8,
            4,
            vec![field(
                "j",
                0,
                object(Schema {
                    name: Cow::Borrowed(name),
                    ..a.clone()
                }),
            )],
        )
    };
    let d = diff(&nested("Joint"), &nested("Other"));
    assert!(d.is_empty());
    assert_eq!(
        d.notes()[0].to_string(),
        "`j` is named `Joint` here, `Other` in the peer's schema"
    );

    // With a layout difference, the notes follow it in the message.
    let mut c = b.clone();
    c.fields.to_mut()[1] = prim("torque", 4, Primitive::I32);
    assert_eq!(
        diff(&a, &c).to_string(),
        "field `torque`: f32 at offset 4 here, i32 at offset 4 in the peer's schema; \
         note: the type is named `Joint` here, `Joint2` in the peer's schema"
    );
}

#[test]
fn long_reorders_are_shortened() {
    let names: Vec<&'static str> = vec!["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let ours = schema(
        "S",
        10,
        1,
        names
            .iter()
            .enumerate()
            .map(|(i, n)| prim(n, i as u64, Primitive::U8))
            .collect(),
    );
    let theirs = schema(
        "S",
        10,
        1,
        names
            .iter()
            .rev()
            .enumerate()
            .map(|(i, n)| prim(n, i as u64, Primitive::U8))
            .collect(),
    );
    let d = diff(&ours, &theirs);
    assert_eq!(d.len(), 11);
    assert!(d.differences()[0].to_string().starts_with(
        "fields are in a different order: `a`, `b`, `c`, `d`, `e`, `f`, `g`, `h`, ... (2 more) here, `j`"
    ));
}

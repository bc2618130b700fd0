//! Tests of the schema codec.

use super::*;

fn point() -> Schema {
    Schema {
        name: Cow::Borrowed("Point"),
        size: 8,
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
        ]),
        appendable: false,
    }
}

#[test]
fn encoding_matches_the_documented_bytes() {
    let bytes = encode(&point());
    let mut expected = b"RTSC".to_vec();
    expected.extend_from_slice(&1u16.to_le_bytes());
    expected.extend_from_slice(&5u32.to_le_bytes());
    expected.extend_from_slice(b"Point");
    expected.extend_from_slice(&8u64.to_le_bytes());
    expected.extend_from_slice(&4u64.to_le_bytes());
    expected.extend_from_slice(&2u32.to_le_bytes());
    for (name, offset) in [(b"x", 0u64), (b"y", 4)] {
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(name);
        expected.extend_from_slice(&offset.to_le_bytes());
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.push(9);
    }
    assert_eq!(bytes, expected);
    assert_eq!(decode(&bytes).unwrap(), point());
}

#[test]
fn decoded_schemas_are_owned() {
    let schema = decode(&encode(&point())).unwrap();
    assert!(matches!(schema.name, Cow::Owned(_)));
    assert!(matches!(schema.fields, Cow::Owned(_)));
    assert!(schema
        .fields()
        .iter()
        .all(|f| matches!(f.name, Cow::Owned(_))));

    let outer = Schema {
        name: Cow::Borrowed("Outer"),
        size: 16,
        align: 4,
        fields: Cow::Owned(vec![Field {
            name: Cow::Borrowed("points"),
            offset: 0,
            size: 16,
            ty: FieldType::Array {
                elem: Link::Owned(Box::new(FieldType::Object(Link::Owned(Box::new(point()))))),
                len: 2,
            },
            since: 1,
        }]),
        appendable: false,
    };
    let decoded = decode(&encode(&outer)).unwrap();
    assert_eq!(decoded, outer);
    let FieldType::Array { elem, .. } = &decoded.fields()[0].ty else {
        panic!("not an array: {decoded:?}");
    };
    assert!(matches!(elem, Link::Owned(_)));
    assert!(matches!(elem.get(), FieldType::Object(Link::Owned(_))));
}

#[test]
fn overlapping_fields_are_rejected() {
    let mut s = point();
    s.fields.to_mut()[1].offset = 0;
    let err = decode(&encode(&s)).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidLayout);
    assert!(err.reason.contains("overlap"), "{err}");
}

#[test]
fn duplicate_and_empty_field_names_are_rejected() {
    let mut s = point();
    s.fields.to_mut()[1].name = Cow::Borrowed("x");
    let err = decode(&encode(&s)).unwrap_err();
    assert!(err.reason.contains("two fields named `x`"), "{err}");

    let mut s = point();
    s.fields.to_mut()[0].name = Cow::Borrowed("");
    let err = decode(&encode(&s)).unwrap_err();
    assert!(err.reason.contains("empty name"), "{err}");
}

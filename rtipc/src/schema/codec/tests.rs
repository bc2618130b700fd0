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

/// An appendable schema with a field of revision 2.
fn appendable_point() -> Schema {
    let mut s = point();
    s.appendable = true;
    s.fields.to_mut()[1].since = 2;
    s
}

#[test]
fn only_schemas_with_revisions_use_format_version_2() {
    let plain = encode(&point());
    assert_eq!(&plain[4..6], &1u16.to_le_bytes());
    let evolving = encode(&appendable_point());
    assert_eq!(&evolving[4..6], &2u16.to_le_bytes());
    let decoded = decode(&evolving).unwrap();
    assert_eq!(decoded, appendable_point());
    assert_eq!(decoded.fingerprint(), appendable_point().fingerprint());
    assert_eq!(decoded.revision(), 2);
    // A nested appendable type makes the whole encoding version 2.
    let outer = Schema {
        name: Cow::Borrowed("Outer"),
        size: 8,
        align: 4,
        fields: Cow::Owned(vec![Field {
            name: Cow::Borrowed("p"),
            offset: 0,
            size: 8,
            ty: FieldType::Object(Link::Owned(Box::new(appendable_point()))),
            since: 1,
        }]),
        appendable: false,
    };
    let bytes = encode(&outer);
    assert_eq!(&bytes[4..6], &2u16.to_le_bytes());
    assert_eq!(decode(&bytes).unwrap(), outer);
}

#[test]
fn bad_revisions_and_flags_are_rejected() {
    // Revision 0.
    let mut s = appendable_point();
    s.fields.to_mut()[1].since = 0;
    let err = decode(&encode(&s)).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidLayout);
    assert!(err.reason.contains("revision 0"), "{err}");
    // Decreasing.
    let mut s = appendable_point();
    s.fields.to_mut()[0].since = 3;
    let err = decode(&encode(&s)).unwrap_err();
    assert!(
        err.reason.contains("has revision 3 after revision 1"),
        "{err}"
    );
    // A revision in a type that is not appendable.
    let mut s = appendable_point();
    s.appendable = false;
    let err = decode(&encode(&s)).unwrap_err();
    assert!(
        err.reason.contains("in a type that is not appendable"),
        "{err}"
    );
    // Unknown flags: the flags byte follows the name (4 + 5 bytes), size and alignment.
    let mut bytes = encode(&appendable_point());
    let flags_at = 6 + 4 + "Point".len() + 16;
    assert_eq!(bytes[flags_at], 1);
    bytes[flags_at] = 0x81;
    let err = decode(&bytes).unwrap_err();
    assert!(err.reason.contains("flags 0x81"), "{err}");
    // Version 3 is not read.
    let mut bytes = encode(&appendable_point());
    bytes[4] = 3;
    assert_eq!(
        decode(&bytes).unwrap_err().kind,
        DecodeErrorKind::UnsupportedVersion
    );
}

/// Every truncation of a version-2 encoding is an error, never a panic.
#[test]
fn truncated_version_2_encodings_are_errors() {
    let bytes = encode(&appendable_point());
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "{len}");
    }
}

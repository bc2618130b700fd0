use std::borrow::Cow;

use super::*;
use crate::schema::{Field, Link};
use crate::Object;

#[derive(Object)]
#[repr(C)]
struct Joint {
    angle: f64,
    id: i16,
    flags: u16,
    gain: f32,
}

#[derive(Object)]
#[repr(C)]
struct Arm {
    joints: [Joint; 2],
    m: [[u8; 3]; 2],
    small: [i8; 2],
    big: u64,
    neg: i64,
}

fn arm() -> Arm {
    Arm {
        joints: [
            Joint {
                angle: 0.5,
                id: -3,
                flags: 7,
                gain: 0.1,
            },
            Joint {
                angle: -1.25,
                id: 4,
                flags: 65535,
                gain: f32::NAN,
            },
        ],
        m: [[1, 2, 3], [4, 5, 6]],
        small: [-128, 127],
        big: u64::MAX,
        neg: i64::MIN,
    }
}

#[test]
fn every_field_decodes_to_its_value() {
    let a = arm();
    let v = Value::decode(Arm::SCHEMA, bytes_of(&a)).unwrap();
    assert_eq!(v.get("joints[0].angle").unwrap(), &Value::F64(0.5));
    assert_eq!(v.get("joints[0].id").unwrap(), &Value::Signed(-3));
    assert_eq!(v.get("joints[1].flags").unwrap(), &Value::Unsigned(65535));
    assert_eq!(v.get("joints[0].gain").unwrap(), &Value::F32(0.1));
    assert_eq!(v.get("m[1][2]").unwrap(), &Value::Unsigned(6));
    assert_eq!(
        v.get("small").unwrap(),
        &Value::Array(vec![Value::Signed(-128), Value::Signed(127)])
    );
    assert_eq!(v.get("big").unwrap(), &Value::Unsigned(u64::MAX));
    assert_eq!(v.get("neg").unwrap(), &Value::Signed(i64::MIN));
    assert!(std::ptr::eq(v.get("").unwrap(), &v));
}

#[test]
fn display_json_and_leaves() {
    let a = arm();
    let v = Value::decode(Arm::SCHEMA, bytes_of(&a)).unwrap();
    let j = v.get("joints[0]").unwrap();
    assert_eq!(j.to_string(), "{ angle: 0.5, id: -3, flags: 7, gain: 0.1 }");
    assert_eq!(j.to_json(), r#"{"angle":0.5,"id":-3,"flags":7,"gain":0.1}"#);
    // NaN is not JSON: null.
    assert_eq!(v.get("joints[1].gain").unwrap().to_json(), "null");
    assert_eq!(v.get("m").unwrap().to_json(), "[[1,2,3],[4,5,6]]");
    let leaves = v.leaves();
    assert_eq!(leaves.len(), 2 * 4 + 6 + 2 + 2);
    assert_eq!(leaves[0].0, "joints[0].angle");
    assert_eq!(leaves[9].0, "m[0][1]");
    assert_eq!(leaves.last().unwrap().0, "neg");
}

#[test]
fn bad_paths_say_why() {
    let a = arm();
    let v = Value::decode(Arm::SCHEMA, bytes_of(&a)).unwrap();
    for (path, says) in [
        (
            "nope",
            "no field `nope` here; the fields are joints, m, small, big, neg",
        ),
        ("joints[2]", "index 2 is out of range for an array of 2"),
        ("big.x", "`x` names a field of something that has none"),
        ("big[0]", "[0] indexes something that is not an array"),
        ("joints[", "an index is not closed with `]`"),
        ("joints[x]", "`x` is not an index"),
        ("joints[0]angle", "expected `.field` or `[index]`"),
        ("big..x", "a field name is empty"),
    ] {
        let e = v.get(path).unwrap_err();
        assert_eq!(e.to_string(), format!("path `{path}`: {says}"), "{path}");
    }
}

#[test]
fn short_bytes_huge_and_outside_schemas_are_errors() {
    let a = arm();
    let b = bytes_of(&a);
    assert_eq!(
        Value::decode(Arm::SCHEMA, &b[..b.len() - 1]).unwrap_err(),
        ValueError::Short {
            needed: b.len() as u64,
            given: b.len() as u64 - 1
        }
    );
    let huge = Schema {
        name: Cow::Borrowed("Huge"),
        size: 1 << 24,
        align: 1,
        fields: Cow::Owned(vec![Field {
            name: Cow::Borrowed("x"),
            offset: 0,
            size: 1 << 24,
            ty: FieldType::Array {
                elem: Link::Owned(Box::new(FieldType::Primitive(Primitive::U8))),
                len: 1 << 24,
            },
            since: 1,
        }]),
        appendable: false,
    };
    assert!(matches!(
        Value::decode(&huge, &[]),
        Err(ValueError::Short { .. })
    ));
    let bytes = vec![0u8; 1 << 24];
    assert_eq!(
        Value::decode(&huge, &bytes).unwrap_err(),
        ValueError::TooLarge {
            nodes: (1 << 24) + 2
        }
    );
    // One element of it can still be read.
    assert_eq!(
        Value::decode_at(&huge, "x[5]", &bytes).unwrap(),
        Value::Unsigned(0)
    );
    // Zero-sized elements count by their number.
    let empty = FieldType::Array {
        elem: Link::Owned(Box::new(FieldType::Primitive(Primitive::U8))),
        len: 0,
    };
    let zeros = Schema {
        name: Cow::Borrowed("Zeros"),
        size: 1,
        align: 1,
        fields: Cow::Owned(vec![
            Field {
                name: Cow::Borrowed("z"),
                offset: 0,
                size: 0,
                ty: FieldType::Array {
                    elem: Link::Owned(Box::new(empty)),
                    len: 1 << 62,
                },
                since: 1,
            },
            Field {
                name: Cow::Borrowed("b"),
                offset: 0,
                size: 1,
                ty: FieldType::Primitive(Primitive::U8),
                since: 1,
            },
        ]),
        appendable: false,
    };
    assert!(matches!(
        Value::decode(&zeros, &[7]),
        Err(ValueError::TooLarge { .. })
    ));
    assert!(matches!(
        Value::decode_at(&zeros, "z", &[7]),
        Err(ValueError::TooLarge { .. })
    ));
    assert_eq!(
        Value::decode_at(&zeros, "b", &[7]).unwrap(),
        Value::Unsigned(7)
    );
    let outside = Schema {
        name: Cow::Borrowed("Out"),
        size: 4,
        align: 4,
        fields: Cow::Owned(vec![Field {
            name: Cow::Borrowed("y"),
            offset: 2,
            size: 4,
            ty: FieldType::Primitive(Primitive::U32),
            since: 1,
        }]),
        appendable: false,
    };
    assert_eq!(
        Value::decode(&outside, &[0; 8]).unwrap_err(),
        ValueError::Outside { field: "y".into() }
    );
}

#[test]
fn decode_at_reads_one_part_and_checks_the_path_first() {
    let a = arm();
    let b = bytes_of(&a);
    let whole = Value::decode(Arm::SCHEMA, b).unwrap();
    for path in [
        "joints[1].angle",
        "joints[0]",
        "m[1]",
        "m[1][2]",
        "small[0]",
        "neg",
        "",
    ] {
        let part = Value::decode_at(Arm::SCHEMA, path, b).unwrap();
        assert_eq!(part.to_json(), whole.get(path).unwrap().to_json(), "{path}");
    }
    // A bad path fails with the same words as `get`, without any bytes.
    for path in ["nope", "joints[2]", "big.x", "big[0]", "joints[0]angle"] {
        let e = Value::check_path(Arm::SCHEMA, path).unwrap_err();
        assert_eq!(e, whole.get(path).unwrap_err(), "{path}");
        assert!(Value::decode_at(Arm::SCHEMA, path, &[]).is_err());
    }
    assert!(matches!(
        Value::decode_at(Arm::SCHEMA, "neg", &b[..b.len() - 1]),
        Err(ValueError::Short { .. })
    ));
    // Scalars only, in the order of the leaves.
    let cells: Vec<String> = whole.scalars().iter().map(|v| v.to_string()).collect();
    let leaves: Vec<String> = whole.leaves().iter().map(|(_, v)| v.to_string()).collect();
    assert_eq!(cells, leaves);
}

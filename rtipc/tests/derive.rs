//! `#[derive(Object)]`: the schema, id and fingerprint it emits.

use std::mem::{align_of, offset_of, size_of};

use rtipc::schema::{id_from_name, FieldType, Primitive, Schema};
use rtipc::Object;

#[derive(Object, Debug, PartialEq)]
#[repr(C)]
struct Joint {
    position: f64,
    velocity: f32,
    torque: f32,
}

mod here {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f64,
        pub velocity: f32,
        pub torque: f32,
    }
}

mod there {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f64,
        pub velocity: f32,
        pub torque: f32,
    }
}

mod field_renamed {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f64,
        pub speed: f32,
        pub torque: f32,
    }
}

mod fields_swapped {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f64,
        pub torque: f32,
        pub velocity: f32,
    }
}

mod retyped {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f64,
        pub velocity: u32,
        pub torque: f32,
    }
}

/// Same fields as `Joint`, under another name.
#[derive(Object)]
#[repr(C)]
struct Actuator {
    position: f64,
    velocity: f32,
    torque: f32,
}

mod array_short {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Samples {
        pub values: [u16; 4],
    }
}

mod array_long {
    #[derive(rtipc::Object)]
    #[repr(C)]
    pub struct Samples {
        pub values: [u16; 8],
    }
}

#[derive(Object)]
#[repr(C, align(16))]
struct Arm {
    joints: [Joint; 2],
    base: Joint,
    grid: [[u8; 3]; 2],
    flags: [u8; 2],
    sequence: u64,
    padding: [u8; 16],
}

#[derive(Object)]
#[repr(transparent)]
#[rtipc(id = 0xdead_beef, name = "Metres")]
struct Meters(f64);

#[derive(Object)]
#[repr(C)]
struct Pair(u32, i32);

const JOINT_FP: u64 = <Joint as Object>::FINGERPRINT;
const _: () = assert!(JOINT_FP == <here::Joint as Object>::FINGERPRINT);
const _: () = assert!(JOINT_FP != <retyped::Joint as Object>::FINGERPRINT);
const _: () = assert!(<Meters as Object>::ID == 0xdead_beef);

#[test]
fn same_declaration_in_two_modules_has_the_same_fingerprint_and_id() {
    assert_eq!(
        <here::Joint as Object>::FINGERPRINT,
        <there::Joint as Object>::FINGERPRINT
    );
    assert_eq!(<here::Joint as Object>::ID, <there::Joint as Object>::ID);
    assert_eq!(<here::Joint as Object>::FINGERPRINT, JOINT_FP);
}

#[test]
fn field_names_order_types_and_lengths_change_the_fingerprint() {
    let changed = [
        <field_renamed::Joint as Object>::FINGERPRINT,
        <fields_swapped::Joint as Object>::FINGERPRINT,
        <retyped::Joint as Object>::FINGERPRINT,
    ];
    for fingerprint in changed {
        assert_ne!(fingerprint, JOINT_FP);
    }
    // Swapping two fields of the same size keeps the size and every offset list the same set.
    assert_eq!(
        size_of::<fields_swapped::Joint>(),
        size_of::<Joint>(),
        "the swap must not change the size"
    );
    assert_ne!(
        <array_short::Samples as Object>::FINGERPRINT,
        <array_long::Samples as Object>::FINGERPRINT
    );
}

#[test]
fn renamed_type_keeps_its_fingerprint_but_not_its_id() {
    assert_eq!(<Actuator as Object>::FINGERPRINT, JOINT_FP);
    assert_ne!(<Actuator as Object>::ID, <Joint as Object>::ID);
    assert_eq!(<Joint as Object>::ID, id_from_name("Joint"));
    assert_eq!(<Actuator as Object>::ID, id_from_name("Actuator"));
}

#[test]
fn explicit_id_and_name() {
    assert_eq!(<Meters as Object>::ID, 0xdead_beef);
    assert_eq!(<Meters as Object>::SCHEMA.name(), "Metres");
    let fields = <Meters as Object>::SCHEMA.fields();
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].name(), "0");
    assert_eq!(fields[0].ty, FieldType::Primitive(Primitive::F64));
}

#[test]
fn schema_matches_the_layout() {
    let schema: &Schema = <Joint as Object>::SCHEMA;
    assert_eq!(schema.name(), "Joint");
    assert_eq!(schema.size, size_of::<Joint>() as u64);
    assert_eq!(schema.align, align_of::<Joint>() as u64);
    let expected = [
        ("position", offset_of!(Joint, position), 8, Primitive::F64),
        ("velocity", offset_of!(Joint, velocity), 4, Primitive::F32),
        ("torque", offset_of!(Joint, torque), 4, Primitive::F32),
    ];
    assert_eq!(schema.fields().len(), expected.len());
    for (field, (name, offset, size, primitive)) in schema.fields().iter().zip(expected) {
        assert_eq!(field.name(), name);
        assert_eq!(field.offset, offset as u64);
        assert_eq!(field.size, size);
        assert_eq!(field.ty, FieldType::Primitive(primitive));
    }

    let pair = <Pair as Object>::SCHEMA.fields();
    assert_eq!(pair[1].name(), "1");
    assert_eq!(pair[1].offset, offset_of!(Pair, 1) as u64);
    assert_eq!(pair[1].ty, FieldType::Primitive(Primitive::I32));
}

#[test]
fn nested_schemas_link_to_the_inner_schema() {
    let schema = <Arm as Object>::SCHEMA;
    assert_eq!(schema.size, size_of::<Arm>() as u64);
    assert_eq!(schema.align, 16);
    let fields = schema.fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        ["joints", "base", "grid", "flags", "sequence", "padding"]
    );
    for (field, offset) in fields.iter().zip([
        offset_of!(Arm, joints),
        offset_of!(Arm, base),
        offset_of!(Arm, grid),
        offset_of!(Arm, flags),
        offset_of!(Arm, sequence),
        offset_of!(Arm, padding),
    ]) {
        assert_eq!(field.offset, offset as u64);
        assert_eq!(field.size, field.ty.size());
    }

    match &fields[1].ty {
        FieldType::Object(inner) => {
            assert!(std::ptr::eq(inner.get(), <Joint as Object>::SCHEMA));
        }
        other => panic!("`base` should be an object, not {other}"),
    }
    match &fields[0].ty {
        FieldType::Array { elem, len } => {
            assert_eq!(*len, 2);
            assert_eq!(
                **elem,
                FieldType::Object(rtipc::schema::Link::Static(<Joint as Object>::SCHEMA))
            );
        }
        other => panic!("`joints` should be an array, not {other}"),
    }
    assert_eq!(fields[0].ty.to_string(), "[Joint; 2]");
    assert_eq!(fields[2].ty.to_string(), "[[u8; 3]; 2]");
    assert_eq!(fields[2].size, 6);

    // The inner schema is part of the outer fingerprint.
    assert_ne!(
        <Arm as Object>::FINGERPRINT,
        rtipc::schema::fingerprint(&Schema {
            fields: std::borrow::Cow::Borrowed(&fields[2..]),
            ..schema.clone()
        })
    );
}

#[test]
fn derived_copy_and_object_methods() {
    let joint = Joint {
        position: 1.5,
        velocity: -2.0,
        torque: 0.25,
    };
    let copy = joint;
    assert_eq!(copy, joint.clone());
    let bytes = joint.as_bytes();
    assert_eq!(bytes.len(), size_of::<Joint>());
    assert_eq!(Joint::read_from_prefix(bytes), Some(joint));
    assert_eq!(
        Joint::zeroed(),
        Joint {
            position: 0.0,
            velocity: 0.0,
            torque: 0.0
        }
    );
}

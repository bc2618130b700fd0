use core::mem::{align_of, offset_of, size_of};

use rtipc::schema::{id_from_name, FieldType, Primitive};
use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct JointState {
    position: [f64; 6],
    effort: [f32; 6],
    sequence: u32,
    mode: u16,
    reserved: u16,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 7)]
struct Command {
    target: JointState,
    deadline_ns: u64,
}

const JOINT_FINGERPRINT: u64 = <JointState as Object>::FINGERPRINT;
const COMMAND_ID: u64 = <Command as Object>::ID;

fn main() {
    let schema = <JointState as Object>::SCHEMA;
    assert_eq!(schema.name(), "JointState");
    assert_eq!(schema.size, size_of::<JointState>() as u64);
    assert_eq!(schema.align, align_of::<JointState>() as u64);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name()).collect();
    assert_eq!(names, ["position", "effort", "sequence", "mode", "reserved"]);
    let offsets: Vec<u64> = schema.fields().iter().map(|f| f.offset).collect();
    assert_eq!(
        offsets,
        [
            offset_of!(JointState, position) as u64,
            offset_of!(JointState, effort) as u64,
            offset_of!(JointState, sequence) as u64,
            offset_of!(JointState, mode) as u64,
            offset_of!(JointState, reserved) as u64,
        ]
    );
    assert_eq!(schema.fields()[3].ty, FieldType::Primitive(Primitive::U16));
    assert_eq!(<JointState as Object>::ID, id_from_name("JointState"));
    assert_eq!(JOINT_FINGERPRINT, schema.fingerprint());
    assert_eq!(COMMAND_ID, 7);
    match &<Command as Object>::SCHEMA.fields()[0].ty {
        FieldType::Object(inner) => assert_eq!(inner.fingerprint(), JOINT_FINGERPRINT),
        other => panic!("expected an object, found {other}"),
    }
}

// The generated code is warning-free under strict lints, with nested objects (whose `FieldKind`
// bounds are on the impls) and padding checks.
#![deny(warnings, unused, unused_lifetimes, unused_qualifications, unused_results)]
#![deny(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code)]
#![deny(trivial_casts, trivial_numeric_casts, single_use_lifetimes, missing_debug_implementations)]

use rtipc::Object;

#[derive(Object, Debug)]
#[repr(C)]
pub struct Vector3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(Object, Debug)]
#[repr(C, align(8))]
pub struct Pose(pub Vector3, pub [Vector3; 2], pub [u32; 2]);

fn main() {
    let pose = Pose::zeroed();
    let copy = pose;
    assert_eq!(copy.as_bytes(), pose.clone().as_bytes());
}

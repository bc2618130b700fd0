use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Vector3 {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Object)]
#[repr(C)]
struct Pose {
    position: Vector3,
    orientation: [f64; 4],
}

#[derive(Object)]
#[repr(C)]
struct Trajectory {
    stamp_ns: u64,
    poses: [Pose; 8],
}

fn main() {
    let outer = <Trajectory as Object>::SCHEMA;
    assert_eq!(outer.fields()[1].ty.size(), 8 * 56);
}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(id = "pose")]
struct Pose {
    x: f32,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 1 + 2)]
struct Twist {
    x: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 3, version = 2)]
struct Pose {
    x: f32,
}

fn main() {}

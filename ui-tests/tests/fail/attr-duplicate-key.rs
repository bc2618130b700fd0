use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 3)]
#[rtipc(id = 4)]
struct Pose {
    x: f32,
}

fn main() {}

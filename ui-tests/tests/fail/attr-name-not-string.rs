use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(name = Pose2)]
struct Pose {
    x: f32,
}

fn main() {}

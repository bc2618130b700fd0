use rtipc::Object;

#[derive(Object)]
#[repr(C, packed)]
struct Pose {
    x: f32,
    y: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(align(8))]
struct Pose {
    x: f32,
    y: f32,
}

fn main() {}

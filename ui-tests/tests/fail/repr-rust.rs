use rtipc::Object;

#[derive(Object)]
#[repr(Rust)]
struct Pose {
    x: f32,
    y: f32,
}

fn main() {}

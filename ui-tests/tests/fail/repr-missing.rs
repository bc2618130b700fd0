use rtipc::Object;

#[derive(Object)]
struct Pose {
    x: f32,
    y: f32,
}

fn main() {}

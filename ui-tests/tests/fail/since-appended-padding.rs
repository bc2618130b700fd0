use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: f32,
    #[rtipc(since = 2)]
    y: f64,
}

fn main() {}

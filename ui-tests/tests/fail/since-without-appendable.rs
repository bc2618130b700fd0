use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Pose {
    x: f64,
    #[rtipc(since = 2)]
    y: f64,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: f64,
    #[rtipc(since = 3)]
    y: f64,
    #[rtipc(since = 2)]
    z: f64,
}

fn main() {}

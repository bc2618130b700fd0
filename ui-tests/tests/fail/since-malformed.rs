use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: f64,
    #[rtipc(since = "two")]
    y: f64,
    #[rtipc(since = 0)]
    z: f64,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    #[rtipc(since = 2)]
    x: f64,
}

fn main() {}

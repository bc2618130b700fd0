use rtipc::Object;

// The path is used as given, and rustc reports it where it is written.
#[derive(Object)]
#[repr(C)]
#[rtipc(crate = not_rtipc)]
struct Pose {
    x: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Pose {
    #[rtipc(name = "X")]
    x: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 18446744073709551616)]
struct Pose {
    x: f32,
}

fn main() {}

use rtipc::Object;

mod re {
    pub use rtipc as inner;
}

#[derive(Object)]
#[repr(C)]
#[rtipc(crate = re::inner)]
#[rtipc(crate = ::rtipc)]
struct Pose {
    x: f32,
}

fn main() {}

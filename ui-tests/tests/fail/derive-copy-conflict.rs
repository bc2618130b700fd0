use rtipc::Object;

// `Object` implies `Clone + Copy`: the derive implements them, so they are not derived again.
#[derive(Clone, Copy, Object)]
#[repr(C)]
struct Pose {
    x: f32,
}

fn main() {}

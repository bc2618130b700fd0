use rtipc::Object;

// `Clone` and `Copy` in a `#[derive]` after `#[derive(Object)]` are visible to it, and reported
// with the fix.
#[derive(Object)]
#[derive(Debug, Clone, core::marker::Copy)]
#[repr(C)]
struct Pose {
    x: f32,
}

fn main() {}

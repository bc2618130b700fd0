use rtipc::Object;

// Revision 1 (`x`, `y`) would be 12 bytes aligned to 8: padding at its end, which revision 2's
// `z` fills. A build of revision 1 could not exist, and its size would not be where `z` starts.
#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: u64,
    y: u32,
    #[rtipc(since = 2)]
    z: u32,
}

fn main() {}

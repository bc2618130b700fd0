//! Revision 2 of `Pose`, compiled on its own; the roles are in `../driver.rs`.

use std::process::ExitCode;

use rtipc::Object;

#[path = "../../driver.rs"]
mod driver;

/// Revision 2: revision 1's fields, then `z` and `w`.
#[derive(Object, Debug)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: u64,
    y: u64,
    #[rtipc(since = 2)]
    z: u64,
    #[rtipc(since = 2)]
    w: u64,
}

impl driver::Rev for Pose {
    const REV: u32 = 2;
    fn make(seq: u64) -> Self {
        Pose {
            x: seq,
            y: seq.wrapping_mul(3),
            z: seq.wrapping_mul(5).wrapping_add(1),
            w: !seq,
        }
    }
    fn words(&self) -> Vec<u64> {
        vec![self.x, self.y, self.z, self.w]
    }
}

fn main() -> ExitCode {
    driver::main::<Pose>()
}

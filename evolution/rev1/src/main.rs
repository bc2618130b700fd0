//! Revision 1 of `Pose`, compiled on its own; the roles are in `../driver.rs`.

use std::process::ExitCode;

use rtipc::Object;

#[path = "../../driver.rs"]
mod driver;

/// Revision 1.
#[derive(Object, Debug)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: u64,
    y: u64,
}

impl driver::Rev for Pose {
    const REV: u32 = 1;
    fn make(seq: u64) -> Self {
        Pose {
            x: seq,
            y: seq.wrapping_mul(3),
        }
    }
    fn words(&self) -> Vec<u64> {
        vec![self.x, self.y]
    }
}

fn main() -> ExitCode {
    driver::main::<Pose>()
}

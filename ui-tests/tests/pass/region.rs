use std::sync::atomic::Ordering;

use rtipc::region::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Event, Semaphore, SharedRegion};
use rtipc::{Object, Region, Segment};

#[derive(Object)]
#[repr(C)]
struct Limits {
    max: [u16; 2],
    min: u32,
}

#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
struct Lane {
    flags: AtomicU32,
    level: AtomicI32,
}

/// Atomics, arrays of them, nested objects and nested region types.
#[derive(Object)]
#[rtipc(region, id = 7, name = "Control")]
#[repr(C)]
struct Control {
    ticks: AtomicU64,
    offset: AtomicI64,
    lanes: [Lane; 3],
    counts: [AtomicU32; 2],
    ready: Event,
    jobs: Semaphore,
    limits: Limits,
}

fn main() {
    assert_eq!(Control::ID, 7);
    assert_eq!(Control::SCHEMA.fields().len(), 7);
    let seg = Segment::builder()
        .region::<Control>("control", |c| c.limits.min = 3)
        .create_anonymous()
        .unwrap();
    let c = SharedRegion::<Control>::new(&seg, "control").unwrap();
    c.lanes[2].flags.fetch_or(1, Ordering::Relaxed);
    assert_eq!(c.limits.min, 3);
}

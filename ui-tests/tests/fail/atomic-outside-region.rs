use rtipc::region::AtomicU64;
use rtipc::Object;

/// Atomics are for regions only: an ordinary object stays free of interior mutability.
#[derive(Object)]
#[repr(C)]
struct Counter {
    ticks: AtomicU64,
}

fn main() {}

use rtipc::region::AtomicU32;
use rtipc::Object;

#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
struct Flags {
    bits: AtomicU32,
}

fn copy<T: Copy>(_: T) {}

/// A region is shared in place, never copied.
fn take(f: Flags) {
    copy(f);
}

fn main() {}

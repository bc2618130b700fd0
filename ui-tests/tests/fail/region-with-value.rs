use rtipc::region::AtomicU32;
use rtipc::Object;

#[derive(Object)]
#[rtipc(region = true)]
#[repr(C)]
struct Flags {
    bits: AtomicU32,
}

fn main() {}

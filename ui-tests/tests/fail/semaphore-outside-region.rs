use rtipc::region::Semaphore;
use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Jobs {
    jobs: Semaphore,
}

fn main() {}

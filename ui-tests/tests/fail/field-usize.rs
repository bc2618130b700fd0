use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Counts {
    total: u64,
    per_bucket: [usize; 4],
}

fn main() {}

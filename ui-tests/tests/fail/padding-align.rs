use rtipc::Object;

#[derive(Object)]
#[repr(C, align(16))]
struct Sample {
    value: u64,
}

fn main() {}

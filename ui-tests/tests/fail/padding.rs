use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Sample {
    flag: u8,
    value: u32,
}

fn main() {}

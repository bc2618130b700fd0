use rtipc::Object;

// One error per gap, with the number of bytes and the field to insert.
#[derive(Object)]
#[repr(C)]
struct Sample {
    a: u8,
    b: u16,
    c: u8,
    d: u32,
}

fn main() {}

use rtipc::Object;

// The size is a multiple of the largest alignment, so 7 bytes follow `flag`.
#[derive(Object)]
#[repr(C)]
struct Sample {
    value: u64,
    flag: u8,
}

// In a tuple struct the fields have no names to suggest.
#[derive(Object)]
#[repr(C)]
struct Pair(u8, u32);

fn main() {}

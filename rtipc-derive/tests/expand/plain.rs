// A named struct of primitives; the id is the hash of its name.
#[repr(C)]
struct Sample {
    stamp_ns: u64,
    value: f32,
    count: ::core::primitive::u16,
    flags: [u8; 2],
}

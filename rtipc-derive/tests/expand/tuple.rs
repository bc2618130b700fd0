// A tuple struct: its fields are named "0" and "1" in the schema.
#[repr(C)]
struct Pair(u32, i32);

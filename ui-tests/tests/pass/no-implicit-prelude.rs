#![no_implicit_prelude]

// Every path the derive emits is absolute, so it works without the prelude, and user items
// named like prelude items or primitives do not capture it.

#[allow(dead_code, non_camel_case_types)]
struct u64;
#[allow(dead_code)]
struct Clone;
#[allow(dead_code)]
struct Copy;
#[allow(dead_code)]
mod core {}

#[derive(::rtipc::Object)]
#[repr(C)]
struct Sample {
    value: ::core::primitive::u64,
    count: ::core::primitive::u32,
    flags: [::core::primitive::u8; 4],
}

#[derive(::rtipc::Object)]
#[repr(transparent)]
#[rtipc(id = 5)]
struct Wrapper(Sample);

fn main() {
    let sample = Sample {
        value: 1,
        count: 2,
        flags: [0; 4],
    };
    let copy = sample;
    let _ = (sample, copy);
    ::std::assert_eq!(<Wrapper as ::rtipc::Object>::ID, 5);
}

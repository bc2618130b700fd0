use rtipc::Object;

/// A plain struct that does not derive `Object`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Inner {
    x: u32,
}

#[derive(Object)]
#[repr(C)]
struct Outer {
    inner: [Inner; 2],
}

fn main() {}

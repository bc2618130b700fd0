use rtipc::Object;

// `align(N)` is allowed next to `C` when the fields fill the size; primitive types may be named
// by path.
#[derive(Object)]
#[repr(C, align(8))]
struct Header {
    magic: core::primitive::u32,
    version: ::std::primitive::u16,
    flags: [u8; 2],
}

#[derive(Object)]
#[repr(C)]
struct Raw {
    r#type: u32,
    r#ref: i32,
}

fn main() {
    assert_eq!(<Header as Object>::SCHEMA.align, 8);
    assert_eq!(<Raw as Object>::SCHEMA.fields()[0].name(), "type");
}

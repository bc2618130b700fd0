use rtipc::Object;

// With the missing `#[repr(C)]`, the field type that is not allowed is reported too, and
// nothing about `Copy`.
#[derive(Object)]
struct Message {
    id: u64,
    text: String,
}

fn main() {}

use rtipc::Object;

// A field type that is not allowed is reported on the field, without errors about `Copy`; code
// that uses the struct as an `Object` gets the same message, at the use.
#[derive(Object)]
#[repr(C)]
struct Message {
    id: u64,
    text: String,
    cell: core::cell::Cell<u64>,
}

fn size_of_object<T: Object>() -> u64 {
    T::SCHEMA.size
}

fn main() {
    let _ = size_of_object::<Message>();
}

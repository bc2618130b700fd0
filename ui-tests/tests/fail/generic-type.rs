use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Sample<T> {
    value: T,
}

fn main() {}

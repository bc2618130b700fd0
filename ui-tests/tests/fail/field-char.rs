use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Key {
    code: char,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Delta {
    change: isize,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Nothing {}

fn main() {}

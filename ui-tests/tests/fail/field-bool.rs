use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Flags {
    enabled: bool,
    level: u8,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
struct Config {
    name: String,
}

fn main() {}

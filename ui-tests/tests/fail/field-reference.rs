use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Named {
    name: &'static str,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Message {
    id: u64,
    text: String,
}

fn main() {}

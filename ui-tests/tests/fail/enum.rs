use rtipc::Object;

#[derive(Object)]
#[repr(u8)]
enum Mode {
    Idle,
    Running,
}

fn main() {}

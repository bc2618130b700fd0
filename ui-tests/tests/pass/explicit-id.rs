use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 42)]
#[rtipc(name = "rtipc.example.Pose")]
struct Pose {
    x: f32,
    y: f32,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(id = 18446744073709551615u64, name = "Max")]
struct Max {
    x: u8,
}

const _: () = assert!(<Pose as Object>::ID == 42);
const _: () = assert!(<Max as Object>::ID == u64::MAX);

fn main() {
    assert_eq!(<Pose as Object>::SCHEMA.name(), "rtipc.example.Pose");
}

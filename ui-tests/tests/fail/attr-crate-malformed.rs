use rtipc::Object;

#[derive(Object)]
#[repr(C)]
#[rtipc(crate = 42)]
struct Number {
    x: f32,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(crate = "not a path")]
struct Words {
    x: f32,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(crate = rtipc::Vec<u8>)]
struct Generic {
    x: f32,
}

#[derive(Object)]
#[repr(C)]
#[rtipc(crate)]
struct Missing {
    x: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}

use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct Samples<const N: usize> {
    values: [f32; N],
}

fn main() {}

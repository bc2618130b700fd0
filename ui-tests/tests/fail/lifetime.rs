use rtipc::Object;

#[derive(Object)]
#[repr(C)]
struct View<'a> {
    bytes: [u8; 8],
    marker: core::marker::PhantomData<&'a ()>,
}

fn main() {}

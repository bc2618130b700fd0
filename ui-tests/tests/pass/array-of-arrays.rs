use rtipc::Object;

const ROWS: usize = 3;

#[derive(Object)]
#[repr(C)]
struct Image {
    pixels: [[[u8; 4]; 16]; ROWS],
    histogram: [[u32; 2]; 8],
    empty: [u64; 0],
}

fn main() {
    let fields = <Image as Object>::SCHEMA.fields();
    assert_eq!(fields[0].ty.to_string(), "[[[u8; 4]; 16]; 3]");
    assert_eq!(fields[0].size, 192);
}

// A struct declared by a `macro_rules!`, with the path of rtipc and the field types passed in,
// and a constant named like the locals of the padding checks.
mod re {
    pub use rtipc as inner;
}

#[allow(non_upper_case_globals)]
const bytes: usize = 4;

macro_rules! object {
    ($krate:path, $name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(rtipc::Object)]
        #[repr(C)]
        #[rtipc(crate = $krate)]
        struct $name {
            $($field: $ty),*
        }
    };
}

object!(re::inner, Sample { value: u64, raw: [u8; bytes], count: u32 });

fn main() {
    use rtipc::Object;
    assert_eq!(<Sample as Object>::SCHEMA.fields()[1].size, 4);
}

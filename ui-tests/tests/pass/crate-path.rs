// `#[rtipc(crate = ...)]`: generated code names rtipc through the given path, as a crate that
// re-exports rtipc under another name needs. The path may be given as a path or in a string.

mod re {
    pub use rtipc as inner;
}

#[derive(rtipc::Object)]
#[repr(C)]
#[rtipc(crate = re::inner)]
struct Relative {
    value: u64,
}

#[derive(rtipc::Object)]
#[repr(C)]
#[rtipc(crate = "crate::re::inner", id = 3)]
struct InString {
    inner: Relative,
    pair: [u32; 2],
}

#[derive(rtipc::Object)]
#[repr(transparent)]
#[rtipc(crate = ::rtipc)]
struct Absolute(InString);

fn main() {
    use re::inner::Object;
    assert_eq!(<Relative as Object>::SCHEMA.size, 8);
    assert_eq!(<InString as Object>::ID, 3);
    assert_eq!(<Absolute as Object>::SCHEMA.fields()[0].name(), "0");
}

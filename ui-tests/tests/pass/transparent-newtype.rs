use rtipc::Object;

#[derive(Object)]
#[repr(transparent)]
struct Nanoseconds(u64);

#[derive(Object)]
#[repr(transparent)]
struct Stamp {
    time: Nanoseconds,
}

fn main() {
    assert_eq!(<Stamp as Object>::SCHEMA.size, 8);
    assert_eq!(<Nanoseconds as Object>::SCHEMA.fields()[0].name(), "0");
}

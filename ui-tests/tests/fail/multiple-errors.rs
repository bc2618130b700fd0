use rtipc::Object;

#[derive(Object)]
#[rtipc(id = "x", colour = "red")]
struct Everything<'a, T> {
    flag: bool,
    count: [usize; 2],
    text: &'a str,
    value: T,
}

fn main() {}

use rtipc::schema::Schema;
use rtipc::Object;

/// Revision 3 of a type that gained fields twice.
#[derive(Object)]
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: f64,
    y: f64,
    #[rtipc(since = 2)]
    z: f64,
    #[rtipc(since = 2)]
    w: f64,
    #[rtipc(since = 3)]
    stamp: u64,
}

fn main() {
    let s: &Schema = <Pose as Object>::SCHEMA;
    assert!(s.appendable);
    assert_eq!(s.revision(), 3);
    let since: Vec<u32> = s.fields().iter().map(|f| f.since).collect();
    assert_eq!(since, [1, 1, 2, 2, 3]);
}

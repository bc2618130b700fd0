use rtipc::schema::Schema;

#[derive(Clone, Copy)]
#[repr(C)]
struct Pose {
    x: f32,
}

// `Object` is sealed: only the derive can implement it.
unsafe impl rtipc::Object for Pose {
    const ID: u64 = 1;
    const SCHEMA: &'static Schema = &Schema {
        name: std::borrow::Cow::Borrowed("Pose"),
        size: 4,
        align: 4,
        fields: std::borrow::Cow::Borrowed(&[]),
        appendable: false,
    };
    const FINGERPRINT: u64 = 0;
}

fn main() {}

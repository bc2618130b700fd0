use rtipc::Object;

// Only the missing `#[repr(C)]` is reported, not that `Pose` does not implement `Object`.
#[derive(Object)]
struct Pose {
    x: f32,
}

fn size_of_object<T: Object>() -> u64 {
    T::SCHEMA.size
}

fn main() {
    let _ = size_of_object::<Pose>();
    let _ = <Pose as Object>::FINGERPRINT;
}

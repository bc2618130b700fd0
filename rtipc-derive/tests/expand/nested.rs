// Fields of other object types, alone and in arrays, need a `FieldKind` bound; arrays of
// primitives do not.
#[repr(C, align(8))]
struct Trajectory {
    origin: Vector3,
    poses: [[Pose; 4]; 2],
    weights: [[f32; 3]; 2],
}

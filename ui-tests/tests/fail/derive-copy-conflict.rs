use rtipc::Object;

// `Object` implies `Clone + Copy`: the derive implements them, so they are not derived again.
// A derive macro does not see the other traits of its own `#[derive(...)]` list (nor those of
// an earlier one), so this is rustc's conflict error, which a macro cannot reword; the note
// names the macro that emits the impls, whose name says what to do.
#[derive(Clone, Copy, Object)]
#[repr(C)]
struct Pose {
    x: f32,
}

fn main() {}

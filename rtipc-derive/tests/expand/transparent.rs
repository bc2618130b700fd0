// `repr(transparent)` cannot have padding: one plain size assertion.
#[repr(transparent)]
#[rtipc(crate = "::renamed_rtipc")]
struct Meters(f64);

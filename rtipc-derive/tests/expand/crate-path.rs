// Generated code names rtipc through the given path.
#[repr(C)]
#[rtipc(crate = my_crate::reexports::rtipc)]
struct Sample {
    value: u64,
}

// An appendable struct: revision 2 appends `heading`; the revision check sits at its start.
#[repr(C)]
#[rtipc(appendable)]
struct Pose {
    x: u32,
    y: u32,
    #[rtipc(since = 2)]
    heading: u64,
}

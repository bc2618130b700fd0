// `id` and `name` given, in one attribute or two; a raw identifier is named without `r#`.
#[repr(C)]
#[rtipc(id = 0x10, name = "arm.Command")]
struct Command {
    r#type: u32,
    deadline_ms: u32,
}

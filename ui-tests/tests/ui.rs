//! Every construct that `#[derive(Object)]` refuses, one file each with its expected error, and
//! inputs that it must accept.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}

//! The revision-1 program runs and says which revision it is (the cross-revision tests, in
//! the revision-2 package, run it beside the revision-2 program).

#[test]
fn describes_its_revision() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evolution-rev1"))
        .arg("describe")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "revision=1 fields=2"
    );
}

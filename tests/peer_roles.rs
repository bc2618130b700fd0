//! The peer binary's command line: every role round-trips through its name, and an unknown
//! role is refused with exit code 2.

mod common;

use std::process::Command;

use common::Role;

#[test]
fn every_role_parses_from_its_name() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        assert_eq!(role.to_string(), role.as_str());
    }
    let err = "stress_producer".parse::<Role>().unwrap_err();
    assert!(err.contains("stress-producer"), "{err}");
}

#[test]
fn an_unknown_role_exits_with_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_rtipc-test-peer"))
        .args(["no-such-role", "x", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown role `no-such-role`"), "{stderr}");
}

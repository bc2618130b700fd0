//! Compile-fail and compile-pass tests for `#[derive(Object)]`, run with trybuild.

//! `rtipc-bridge` (work in progress).

fn main() {}

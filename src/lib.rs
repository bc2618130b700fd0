//! Examples and cross-process integration tests for rtipc.

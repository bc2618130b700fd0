//! Atomics used by the lock-free protocols: `core`'s normally, loom's under `--cfg loom` so that
//! the protocols can be model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A word read from shared memory that breaks a protocol: the protocols return it instead of
/// acting on it, and the handles turn it into an [`Error::Corrupt`](crate::Error::Corrupt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadWord {
    /// The word as read.
    pub word: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

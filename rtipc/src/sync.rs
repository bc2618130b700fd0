//! Atomics used by the lock-free protocols: `core`'s normally, loom's under `--cfg loom` so that
//! the protocols can be model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

//! Shared regions: one typed object that both processes read and write in place, for
//! synchronisation and shared configuration where passing messages does not fit.
//!
//! A region's type derives `Object` with `#[rtipc(region)]`. Besides everything an object may
//! hold, its fields may be rtipc's atomics ([`AtomicU32`], [`AtomicU64`], [`AtomicI32`],
//! [`AtomicI64`]: `repr(transparent)` over the standard ones, valid for every bit pattern), an
//! [`Event`] (wait until a word changes) or a [`Semaphore`] (a counting semaphore), and arrays
//! of them. Ordinary channel objects refuse all of these, so they stay free of interior
//! mutability. The creator initialises the region once, with a closure run before any peer can
//! attach; after that both sides get a [`SharedRegion<T>`], which dereferences to `&T`.
//!
//! ```no_run
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//! use rtipc::region::{AtomicU64, Semaphore, SharedRegion};
//! use rtipc::{Object, Segment};
//!
//! #[derive(Object)]
//! #[rtipc(region)]
//! #[repr(C)]
//! struct Control {
//!     ticks: AtomicU64,
//!     jobs: Semaphore,
//!     limit: u32,
//!     _pad: u32,
//! }
//!
//! // Creator.
//! let seg = Segment::builder()
//!     .region::<Control>("control", |c| c.limit = 8)
//!     .create("plant")?;
//! let control = SharedRegion::<Control>::new(&seg, "control")?;
//! control.ticks.fetch_add(1, Ordering::Relaxed);
//! control.jobs.post();
//!
//! // Peer (another process).
//! let seg = Segment::open("plant")?;
//! let control = SharedRegion::<Control>::new(&seg, "control")?;
//! if control.jobs.wait(Some(Duration::from_millis(100))) {
//!     println!("a job, limit {}", control.limit);
//! }
//! # Ok::<(), rtipc::Error>(())
//! ```
//!
//! Nothing in a region is owned by a process: a process killed while waiting, or between a
//! semaphore's `wait` and its `post`, leaves nothing locked. A semaphore counts; it does not
//! know who took a unit, so a unit taken by a process that dies is not given back (post it
//! again from whoever notices). Plain fields of a region are written only by the creator's
//! initialisation; both sides read them.

// Under loom only the protocol is compiled and model-checked.
#[cfg(not(loom))]
mod atomic;
#[cfg(not(loom))]
mod declare;
#[cfg(not(loom))]
mod handle;
pub(crate) mod protocol;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use self::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64};
#[cfg(not(loom))]
pub use self::handle::SharedRegion;
#[cfg(not(loom))]
pub use self::wait::{Event, Semaphore};

#[cfg(all(test, not(loom)))]
mod tests;

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

mod atomic;
mod handle;
mod wait;

pub use self::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64};
pub use self::handle::SharedRegion;
pub use self::wait::{Event, Semaphore};

use std::borrow::Cow;
use std::sync::Arc;

use crate::layout::{ChannelKind, ChannelSpec, Ctrl, Direction};
use crate::schema::object::{region_bytes, zeroed_region};
use crate::schema::Region;
use crate::segment::SegmentBuilder;

/// A region's control block holds only the common lines, which start zeroed.
fn init(_: Ctrl<'_>, _: u32) {}

impl ChannelSpec {
    /// A shared region called `name` holding one `T`, all zeros until
    /// [`ChannelSpec::init_region`] says otherwise.
    pub fn region<T: Region>(name: impl Into<String>) -> ChannelSpec {
        let mut spec = ChannelSpec::new(
            name.into(),
            ChannelKind::Region,
            Direction::CreatorToPeer,
            1,
            init,
        );
        spec.objects.push(crate::layout::spec::ObjectSpec {
            id: T::ID,
            fingerprint: T::FINGERPRINT,
            size: size_of::<T>() as u64,
            align: align_of::<T>() as u64,
            schema: Cow::Borrowed(T::SCHEMA),
        });
        spec
    }

    /// A region of no type yet, all zeros (its object comes from a handshake request).
    pub(crate) fn region_untyped(name: String) -> ChannelSpec {
        ChannelSpec::new(name, ChannelKind::Region, Direction::CreatorToPeer, 1, init)
    }

    /// Sets the initial value of a region declared with [`ChannelSpec::region::<T>`]: `f`
    /// gets a zeroed `T` to fill in, which the creator copies into the segment before any peer
    /// can attach (when the segment is created; a creator that resumes a stale segment keeps
    /// the region as it was).
    pub fn init_region<T: Region>(
        mut self,
        f: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> ChannelSpec {
        self.data = Some(Arc::new(move || {
            let mut value = zeroed_region::<T>();
            f(&mut value);
            region_bytes(&*value).to_vec()
        }));
        self
    }
}

impl SegmentBuilder {
    /// Declares a shared region holding one `T`, initialised by `f` (which gets a zeroed `T`)
    /// before any peer can attach.
    pub fn region<T: Region>(
        self,
        name: impl Into<String>,
        f: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> Self {
        self.channel(ChannelSpec::region::<T>(name).init_region(f))
    }
}

#[cfg(test)]
mod tests;

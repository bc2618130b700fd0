//! Keeping a segment's memory resident, for real-time processes: prefaulting every page,
//! locking them (`mlock`), huge pages for anonymous segments, and locking the whole process.
//!
//! A page of a fresh mapping is faulted in on its first touch, and an unlocked page may be
//! reclaimed or swapped out later: either costs a page fault, microseconds to milliseconds,
//! on the data path. After [`Segment::lock_memory`] (or the builder's
//! [`lock_memory`](SegmentBuilder::lock_memory)), every page of the segment is resident and
//! mapped for writing in this process, and publishes, fetches, pushes and pops take no page
//! fault. Each process maps the segment itself, so each side locks its own mapping.

use super::{Segment, SegmentBuilder};
use crate::error::{Error, Result};
use crate::sys::{mem, proc};

/// What the builder asked for, applied to the creator's mapping once it is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Residency {
    pub prefault: bool,
    pub lock: bool,
    pub huge_pages: bool,
}

impl Residency {
    /// Refuses huge pages for a backend that cannot have them (named: `/dev/shm` is a tmpfs;
    /// System V: not supported here).
    pub(crate) fn refuse_huge_pages(&self) -> Result<()> {
        if self.huge_pages {
            return Err(Error::InvalidArgument(
                "huge pages are for anonymous segments (`create_anonymous`): a named segment \
                 lives in /dev/shm, which has none"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Prefaults and locks `seg`'s mapping as asked.
    pub(crate) fn apply(&self, seg: &Segment) -> Result<()> {
        if self.lock {
            seg.lock_memory()
        } else if self.prefault {
            seg.prefault()
        } else {
            Ok(())
        }
    }
}

impl Segment {
    /// The segment's size in bytes (what [`Segment::lock_memory`] locks; a segment in huge
    /// pages occupies whole huge pages).
    pub fn size(&self) -> u64 {
        self.inner.layout.header.segment_size
    }

    /// Faults every page of this process's mapping of the segment in, for writing (for
    /// reading, on a tool's read-only mapping), without changing a byte. Pages can still be
    /// reclaimed later under memory pressure: [`Segment::lock_memory`] also pins them.
    pub fn prefault(&self) -> Result<()> {
        self.inner
            .map
            .populate()
            .map_err(|e| Error::io("prefaulting the segment's pages", e))
    }

    /// Prefaults every page of this process's mapping of the segment and locks them in memory
    /// (`mlock`) until the segment's last handle in this process is dropped. Needs an
    /// `RLIMIT_MEMLOCK` that covers the segment (and whatever else the process has locked) or
    /// `CAP_IPC_LOCK`; otherwise [`Error::MemoryLockLimit`] says what to raise.
    pub fn lock_memory(&self) -> Result<()> {
        self.prefault()?;
        let len = self.inner.map.len() as u64;
        self.inner.map.lock().map_err(|e| lock_error(e, len))
    }
}

/// Locks every page this process has mapped and will map (`mlockall(MCL_CURRENT |
/// MCL_FUTURE)`): its code, stacks, heap and every segment, so that no page fault interrupts
/// a real-time loop. Call it once at startup, after allocating what the loop needs; with
/// `MCL_FUTURE`, every later allocation and mapping is locked too and counts against the
/// limit. Needs an `RLIMIT_MEMLOCK` that covers the process (`ulimit -l unlimited`,
/// `LimitMEMLOCK=infinity` in a systemd unit) or `CAP_IPC_LOCK`; otherwise
/// [`Error::MemoryLockLimit`] says so.
pub fn lock_all_memory() -> Result<()> {
    mem::lock_all().map_err(|e| lock_error(e, process_size()))
}

/// The process's mapped size (`VmSize`), for the error's figure.
fn process_size() -> u64 {
    proc::field("/proc/self/status", "VmSize").map_or(0, |kib| kib * 1024)
}

/// `mlock`'s refusal as the error a user can act on.
fn lock_error(e: std::io::Error, needed: u64) -> Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOMEM) | Some(libc::EAGAIN) => Error::MemoryLockLimit {
            needed: needed + mem::locked_now().unwrap_or(0),
            limit: mem::memlock_limit(),
        },
        _ => Error::io("locking the segment's pages", e),
    }
}

impl SegmentBuilder {
    /// Prefaults every page of the creator's mapping once the segment is written (default:
    /// off); see [`Segment::prefault`]. A peer calls [`Segment::prefault`] after attaching.
    pub fn prefault(mut self, on: bool) -> Self {
        self.residency.prefault = on;
        self
    }

    /// Prefaults and locks the creator's mapping in memory once the segment is written
    /// (default: off); see [`Segment::lock_memory`]. Creation fails with
    /// [`Error::MemoryLockLimit`] if the process may not lock that much. A peer calls
    /// [`Segment::lock_memory`] after attaching.
    pub fn lock_memory(mut self, on: bool) -> Self {
        self.residency.lock = on;
        self
    }

    /// Backs an anonymous segment ([`create_anonymous`](SegmentBuilder::create_anonymous))
    /// with huge pages of the system's default size (`MFD_HUGETLB`; default: off): fewer TLB
    /// misses for large segments, and pages that are never swapped. The system must have
    /// enough free huge pages reserved (`/proc/sys/vm/nr_hugepages`), or creation fails with
    /// [`Error::NoHugePages`]; named and System V segments refuse the option.
    pub fn huge_pages(mut self, on: bool) -> Self {
        self.residency.huge_pages = on;
        self
    }
}

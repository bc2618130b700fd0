//! System V shared memory: the third backend, with the same layout and the same checks as the
//! others.
//!
//! A System V segment is found by a 32-bit key, given directly ([`SysvKey::new`]) or derived
//! from a name ([`SysvKey::from_name`]). It has no file descriptor, so the kernel locks that
//! say who is alive (the creator's, and each channel end's claim) live on a companion lock
//! file, `/dev/shm/rtipc-sysv-KEY.lock` (KEY in 8 hexadecimal digits), created with the segment
//! and removed with it. A segment whose lock file is gone, or whose creator lock nobody holds,
//! is stale, as a named segment is.
//!
//! Creating takes the creator lock first, then the segment (`IPC_CREAT | IPC_EXCL`, mode
//! 0600): a key already in use under a lock that nobody holds is a stale segment, which
//! [`SegmentBuilder::replace_stale`] replaces; one under a held lock belongs to a running
//! creator ([`Error::AlreadyExists`]). The creator touches every page of a new segment, so
//! that its memory is committed at creation. When its last handle goes the segment is removed
//! (`IPC_RMID`, and the lock file unlinked) unless [`SegmentBuilder::keep`] was set. Unlike a
//! POSIX segment, a System V segment cannot be truncated under its users. A creator restarted
//! on a stale key replaces the segment; resuming one with its data is for named segments.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering;

use super::{Segment, SegmentBuilder};
use crate::error::{Error, Result};
use crate::layout::Side;
use crate::sys::lock::{self, Lock};
use crate::sys::mem::{Mapping, Owner};
use crate::sys::{proc, sysv};

/// The key of a System V segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysvKey(i32);

impl SysvKey {
    /// A key given directly. `IPC_PRIVATE` (0) names no shared segment and is refused.
    pub fn new(key: i32) -> Result<SysvKey> {
        if key == libc::IPC_PRIVATE {
            return Err(Error::InvalidArgument(
                "System V key 0 is IPC_PRIVATE, which no other process can find".into(),
            ));
        }
        Ok(SysvKey(key))
    }

    /// The key for `name`: the 32-bit FNV-1a hash of the bytes `rtipc:` followed by the
    /// name's UTF-8 bytes, with the top bit cleared (so that it is positive), or 1 if that is
    /// 0. Stable: it is part of the format.
    ///
    /// ```
    /// # use rtipc::SysvKey;
    /// assert_eq!(SysvKey::from_name("plant").get(), SysvKey::from_name("plant").get());
    /// assert_ne!(SysvKey::from_name("plant").get(), SysvKey::from_name("plant2").get());
    /// ```
    pub fn from_name(name: &str) -> SysvKey {
        let mut h: u32 = 0x811c_9dc5;
        for b in b"rtipc:".iter().chain(name.as_bytes()) {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let k = (h & 0x7fff_ffff) as i32;
        SysvKey(if k == 0 { 1 } else { k })
    }

    /// The key as the kernel takes it.
    pub fn get(self) -> i32 {
        self.0
    }

    fn label(self) -> String {
        format!("System V key {:#010x}", self.0)
    }
}

fn lock_file(key: SysvKey, create: bool) -> std::io::Result<File> {
    let path = sysv::lock_path(key.0);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(std::ffi::OsStr::from_bytes(path.as_bytes()))
}

impl SegmentBuilder {
    /// Creates a System V shared-memory segment with key `key` (see the module
    /// documentation of [`SysvKey`] for keys, stale segments and removal).
    pub fn create_sysv(&self, key: SysvKey) -> Result<Segment> {
        self.residency.refuse_huge_pages()?;
        let pid = std::process::id();
        let plan = self.plan(pid, proc::start_time(pid))?;
        let size = usize::try_from(plan.size())
            .map_err(|_| Error::InvalidArgument("the segment is too large to map".into()))?;
        let file = lock_file(key, true).map_err(|e| Error::io("creating the lock file", e))?;
        let lock = Lock::try_take(file.as_fd(), lock::creator_lock())
            .map_err(|e| Error::io("taking the creator lock", e))?
            .ok_or_else(|| Error::AlreadyExists { name: key.label() })?;
        let id = self.sysv_segment(key, size)?;
        let dup = file
            .try_clone()
            .map_err(|e| Error::io("duplicating a descriptor", e))?;
        let mut map = Mapping::sysv(id, size, dup, true).map_err(|e| {
            let _ = sysv::remove(id);
            Error::io("attaching the System V segment", e)
        })?;
        // Commit the memory now: a later first touch must not find it missing.
        for page in (0..plan.size()).step_by(4096) {
            // Relaxed: nobody else can see the segment yet.
            map.atomic_u32(page).fetch_add(0, Ordering::Relaxed);
        }
        plan.write(&map);
        let (unlink, sysv_id) = if self.keep {
            (None, None)
        } else {
            (Some(sysv::lock_path(key.0)), Some(id))
        };
        map.set_owner(Owner {
            lock,
            unlink,
            sysv: sysv_id,
        });
        let seg = Segment::from_plan(map, plan, Side::Creator, Vec::new())?;
        self.residency.apply(&seg)?;
        Ok(seg)
    }

    /// A new segment under `key`, replacing a stale one if asked (the caller holds the creator
    /// lock, so one already there is stale).
    fn sysv_segment(&self, key: SysvKey, size: usize) -> Result<i32> {
        match sysv::create(key.0, size) {
            Ok(id) => Ok(id),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if !self.replace_stale {
                    return Err(Error::Stale {
                        name: key.label(),
                        pid: 0,
                    });
                }
                if let Ok(old) = sysv::lookup(key.0) {
                    let _ = sysv::remove(old);
                }
                sysv::create(key.0, size).map_err(|e| Error::io("creating the System V segment", e))
            }
            Err(e) => Err(Error::io("creating the System V segment", e)),
        }
    }
}

impl Segment {
    /// Attaches to the System V segment `key` created by another process, checking all of it
    /// as [`Segment::open`] does. [`Error::NotFound`] if there is none; [`Error::Stale`] if its
    /// creator is gone.
    pub fn open_sysv(key: SysvKey) -> Result<Segment> {
        let id = sysv::lookup(key.0).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name: key.label() },
            _ => Error::io("looking up the System V segment", e),
        })?;
        let stale = || Error::Stale {
            name: key.label(),
            pid: 0,
        };
        let file = lock_file(key, false).map_err(|_| stale())?;
        if !super::named::creator_alive(file.as_fd())? {
            return Err(stale());
        }
        let size = sysv::size(id).map_err(|e| Error::io("reading the segment's size", e))?;
        if size < crate::layout::HEADER_SIZE {
            return Err(Error::corrupt(
                "segment size",
                size,
                "smaller than the header",
            ));
        }
        let size = usize::try_from(size)
            .map_err(|_| Error::corrupt("segment size", size, "too large to map"))?;
        let map = Mapping::sysv(id, size, file, true)
            .map_err(|e| Error::io("attaching the System V segment", e))?;
        Segment::attach_mapped(map, Side::Peer)
    }

    /// Removes the System V segment `key` if its creator is gone. Returns whether it removed
    /// one; a segment whose creator runs is left alone ([`Error::AlreadyExists`]).
    pub fn remove_stale_sysv(key: SysvKey) -> Result<bool> {
        let Ok(id) = sysv::lookup(key.0) else {
            let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(
                sysv::lock_path(key.0).as_bytes(),
            ));
            return Ok(false);
        };
        let file = lock_file(key, true).map_err(|e| Error::io("opening the lock file", e))?;
        let _taken = match Lock::try_take(file.as_fd(), lock::creator_lock()) {
            Ok(Some(l)) => l,
            Ok(None) => return Err(Error::AlreadyExists { name: key.label() }),
            Err(e) => return Err(Error::io("taking a stale segment's creator lock", e)),
        };
        sysv::remove(id).map_err(|e| Error::io("removing the System V segment", e))?;
        let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(
            sysv::lock_path(key.0).as_bytes(),
        ));
        Ok(true)
    }
}

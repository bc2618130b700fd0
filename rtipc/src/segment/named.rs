//! Named segments in POSIX shared memory (`/dev/shm/NAME`): creating, opening, resuming and
//! replacing them.
//!
//! **Creating** is atomic: the segment is built in a nameless file (`O_TMPFILE`), its memory
//! reserved (`fallocate`), its creator lock taken, and only then linked under its name. A
//! creator killed at any point before the link leaves nothing; after it, a complete segment
//! whose creator lock the kernel released: stale at once.
//!
//! **A segment whose creator is gone** (no process holds its creator lock) is *stale*. A creator
//! started again with the same declaration resumes it: it takes the creator lock, and the
//! channels, their data and every attached peer carry on. With another declaration it is an
//! error ([`Error::Stale`]) unless [`SegmentBuilder::replace_stale`] asks to replace it; peers
//! still attached to the replaced one are told by [`Segment::check`] ([`Error::Replaced`]).
//! Resuming and replacing both take the old segment's creator lock first, so of two processes
//! racing for one stale segment exactly one wins; the other gets [`Error::Replacing`].
//!
//! A process that can write `/dev/shm/NAME` can also truncate it, and a peer touching a page
//! that is gone dies of `SIGBUS`: POSIX shared memory cannot be sealed. Segments handed over as
//! sealed memfds ([`SegmentBuilder::create_anonymous`], the [`handshake`](crate::handshake))
//! cannot be shrunk by anyone.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use zerocopy::FromBytes;

use super::{Segment, SegmentBuilder};
use crate::error::{Error, Result};
use crate::layout::{Header, Plan, Side, HEADER_SIZE};
use crate::sys::lock::{self, Lock};
use crate::sys::mem::{Mapping, Owner};
use crate::sys::{proc, shm};

/// Validates a segment name and turns it into the `/name` form that `shm_open` takes.
pub(super) fn shm_name(name: &str) -> Result<CString> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > 250 || bare.contains('/') || bare.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "segment name `{name}` must be 1 to 250 bytes without `/` or NUL"
        )));
    }
    CString::new(format!("/{bare}")).map_err(|_| Error::InvalidArgument(name.to_owned()))
}

/// Whether a process holds the creator lock of the segment file open at `fd`.
pub(super) fn creator_alive(fd: BorrowedFd<'_>) -> Result<bool> {
    lock::is_held(fd, lock::creator_lock()).map_err(|e| Error::io("looking for the creator", e))
}

/// The pid a segment's header records for its creator, or 0.
fn recorded_creator(file: &File) -> u32 {
    let mut buf = [0u8; HEADER_SIZE as usize];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Header::read_from_bytes(&buf).map_or(0, |h| h.creator_pid),
        Err(_) => 0,
    }
}

fn open_existing(cname: &CStr, name: &str) -> Result<File> {
    shm::open_existing(cname)
        .map(File::from)
        .map_err(|e| open_error(e, name))
}

/// [`open_existing`], read-only: for tools.
fn open_read_only(cname: &CStr, name: &str) -> Result<File> {
    shm::open_read_only(cname)
        .map(File::from)
        .map_err(|e| open_error(e, name))
}

/// A failed open of `name`: not there, or an I/O error.
fn open_error(e: std::io::Error, name: &str) -> Error {
    if e.raw_os_error() == Some(libc::ENOENT) {
        Error::NotFound {
            name: name.to_owned(),
        }
    } else {
        Error::io("opening shm segment", e)
    }
}

impl Segment {
    /// Attaches to the named segment `name` created by another process, checking all of it.
    ///
    /// Fails with [`Error::NotFound`] if there is none, with [`Error::Stale`] if its creator is
    /// no longer running (a restarted creator resumes it: see [`Segment::wait_open`]).
    pub fn open(name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let file = open_existing(&cname, name)?;
        if !creator_alive(file.as_fd())? {
            return Err(Error::Stale {
                name: name.to_owned(),
                pid: recorded_creator(&file),
            });
        }
        let mut seg = Self::attach(file)?;
        seg.set_name(name);
        Ok(seg)
    }

    /// Attaches to the named segment `name` whether or not its creator runs, checking all of
    /// it, for tools that only read (a stale segment's data stays readable).
    /// The segment is mapped read-only: no handle that writes can be made from it.
    pub(crate) fn open_any(name: &str) -> Result<Segment> {
        let cname = shm_name(name)?;
        let file = open_read_only(&cname, name)?;
        let mut seg = Self::attach_with(file, false)?;
        seg.set_name(name);
        Ok(seg)
    }

    /// [`Segment::open`], waiting up to `timeout` for a creator that has not started yet, is
    /// restarting, or is still building the segment. Returns the last error once the time is
    /// up; an error that waiting cannot cure (a corrupt segment, a version mismatch) at once.
    pub fn wait_open(name: &str, timeout: Duration) -> Result<Segment> {
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_micros(200);
        loop {
            match Segment::open(name) {
                Ok(seg) => return Ok(seg),
                Err(e) if e.is_retryable() => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(e);
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the named segment `name` if its creator is no longer running. Returns whether
    /// it removed one; a segment whose creator runs is left alone ([`Error::AlreadyExists`]).
    pub fn remove_stale(name: &str) -> Result<bool> {
        let cname = shm_name(name)?;
        let file = match open_existing(&cname, name) {
            Ok(f) => f,
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let _taken = take_stale(&file, name)?;
        unlink_if_same(&cname, &file)?;
        Ok(true)
    }
}

/// What [`remove`](crate::inspect::remove) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removed {
    /// The segment's creator was gone: its name is removed.
    Stale,
    /// The segment's creator runs, and the name was removed all the same (forced).
    Live {
        /// The creator's pid, from the header.
        creator_pid: u32,
    },
    /// The segment's creator runs: nothing was removed.
    Refused {
        /// The creator's pid, from the header.
        creator_pid: u32,
    },
}

/// Removes the name of rtipc segment `name`: a stale one always, a live one only if `force`.
/// A file under that name that is not an rtipc segment (by its magic) is left alone; a
/// corrupt rtipc segment can be removed. Processes that have it mapped keep their mapping.
pub(crate) fn remove(name: &str, force: bool) -> Result<Removed> {
    let cname = shm_name(name)?;
    let file = open_existing(&cname, name)?;
    let mut magic = [0u8; 8];
    if file.read_exact_at(&mut magic, 0).is_err()
        || u64::from_le_bytes(magic) != crate::layout::MAGIC
    {
        return Err(Error::InvalidArgument(format!(
            "`{name}` is not an rtipc segment (no segment magic): left alone"
        )));
    }
    let creator_pid = recorded_creator(&file);
    if creator_alive(file.as_fd())? {
        if !force {
            return Ok(Removed::Refused { creator_pid });
        }
        unlink_checked(&cname, &file, name)?;
        return Ok(Removed::Live { creator_pid });
    }
    let _taken = take_stale(&file, name)?;
    unlink_checked(&cname, &file, name)?;
    Ok(Removed::Stale)
}

/// Unlinks `name` if it still names `file`; an error if it names another segment now (one
/// that replaced it) or if the unlink fails.
fn unlink_checked(cname: &CStr, file: &File, name: &str) -> Result<()> {
    let ours =
        shm::identity(file.as_fd()).map_err(|e| Error::io("reading a segment's identity", e))?;
    if shm::identity_of_name(cname) != Some(ours) {
        return Err(Error::Replaced {
            name: name.to_owned(),
        });
    }
    shm::unlink_checked(cname).map_err(|e| Error::io("removing the segment's name", e))
}

/// What a segment's header says and whether its creator runs, read with `pread` (no
/// mapping): for listing every segment on the machine, which must not die of a `SIGBUS` if one
/// of them is truncated under it.
pub(crate) fn peek(name: &str) -> Result<(Header, bool)> {
    let cname = shm_name(name)?;
    let file = open_read_only(&cname, name)?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading the segment's size", e))?;
    if !meta.is_file() {
        return Err(Error::corrupt("segment file", 0, "is not a regular file"));
    }
    let mut raw = [0u8; HEADER_SIZE as usize];
    file.read_exact_at(&mut raw, 0)
        .map_err(|_| Error::corrupt("segment size", meta.len(), "smaller than the header"))?;
    let header = crate::layout::parse::header(&raw, meta.len()).map_err(|e| match e {
        crate::layout::FormatError::Corrupt { ref field, .. } if field == "header.ready" => {
            Error::NotReady
        }
        e => e.into(),
    })?;
    Ok((header, creator_alive(file.as_fd())?))
}

/// Takes the creator lock of a stale segment, so that no other process resumes, replaces or
/// removes it meanwhile. A running creator is [`Error::AlreadyExists`]; another process holding
/// it for the same purpose, [`Error::Replacing`].
fn take_stale(file: &File, name: &str) -> Result<Lock> {
    if creator_alive(file.as_fd())? {
        return Err(Error::AlreadyExists {
            name: name.to_owned(),
        });
    }
    match Lock::try_take(file.as_fd(), lock::creator_lock()) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(Error::Replacing {
            name: name.to_owned(),
        }),
        Err(e) => Err(Error::io("taking a stale segment's creator lock", e)),
    }
}

/// Unlinks `name` if it still names `file` (not a segment that replaced it meanwhile).
fn unlink_if_same(cname: &CStr, file: &File) -> Result<()> {
    let ours =
        shm::identity(file.as_fd()).map_err(|e| Error::io("reading a segment's identity", e))?;
    if shm::identity_of_name(cname) == Some(ours) {
        shm::unlink(cname);
    }
    Ok(())
}

/// Whether the segment in `file` is exactly what `plan` lays out, creator aside: then a new
/// creator can resume it.
fn same_declaration(file: &File, plan: &Plan) -> bool {
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if meta.len() < plan.size() {
        return false;
    }
    let mut same = true;
    plan.write_bytes(|offset, bytes| {
        let mut found = vec![0u8; bytes.len()];
        if file.read_exact_at(&mut found, offset).is_err() {
            same = false;
        } else if offset == 0 {
            // The header: everything but the ready word and the creator's identity.
            let (Ok(ours), Ok(theirs)) = (
                Header::read_from_bytes(bytes),
                Header::read_from_bytes(&found),
            ) else {
                same = false;
                return;
            };
            let mask = |h: Header| Header {
                ready: 0,
                creator_pid: 0,
                creation_token: 0,
                ..h
            };
            same &= mask(ours) == mask(theirs) && theirs.ready == crate::layout::READY;
        } else {
            same &= found == bytes;
        }
    });
    same
}

impl SegmentBuilder {
    /// Creates a named POSIX shared-memory segment (`/dev/shm/NAME`).
    ///
    /// If the name is taken by a segment whose creator is gone, and this builder declares
    /// exactly the same channels, the segment is resumed: the new creator takes it over with
    /// its data, and peers attached to it carry on. Otherwise fails with
    /// [`Error::AlreadyExists`] if the name is taken by a running creator, with
    /// [`Error::Stale`] if it was left by a dead one with another declaration (unless
    /// [`SegmentBuilder::replace_stale`]), and with [`Error::Replacing`] if another process is
    /// resuming or replacing it right now. A full `/dev/shm` or a memory limit is an error here,
    /// never a `SIGBUS` later.
    pub fn create(&self, name: &str) -> Result<Segment> {
        self.residency.refuse_huge_pages()?;
        let cname = shm_name(name)?;
        let pid = std::process::id();
        let plan = self.plan(pid, proc::start_time(pid))?;
        let (file, map, lock) = self.build_unnamed(&plan)?;
        // Each round either links the segment, resumes the old one, or removes a stale one
        // and tries again; a name that keeps coming back means another creator is racing us.
        for _ in 0..8 {
            match shm::link(&file, &cname) {
                Ok(()) => {
                    let mut seg = self.finish(map, plan, lock, Some(cname))?;
                    seg.set_name(name);
                    return Ok(seg);
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if let Some(seg) = self.resume_or_remove(&cname, name, &plan)? {
                        return Ok(seg);
                    }
                    // The stale segment is gone: link ours in its place.
                }
                Err(e) => return Err(Error::io("naming the segment in /dev/shm", e)),
            }
        }
        Err(Error::Replacing {
            name: name.to_owned(),
        })
    }

    /// The segment, complete and locked, in a nameless file.
    fn build_unnamed(&self, plan: &Plan) -> Result<(File, Mapping, Lock)> {
        let file = shm::tmpfile().map_err(|e| Error::io("creating a file in /dev/shm", e))?;
        let lock = Lock::try_take(file.as_fd(), lock::creator_lock())
            .map_err(|e| Error::io("taking the creator lock", e))?
            .ok_or_else(|| Error::InvalidArgument("a new file is already locked".into()))?;
        file.set_len(plan.size())
            .map_err(|e| Error::io("sizing the segment", e))?;
        shm::reserve(&file, plan.size())
            .map_err(|e| Error::io("reserving the segment's memory in /dev/shm", e))?;
        let size = usize::try_from(plan.size())
            .map_err(|_| Error::InvalidArgument("the segment is too large to map".into()))?;
        let map = Mapping::new(
            file.try_clone()
                .map_err(|e| Error::io("duplicating a descriptor", e))?,
            size,
        )
        .map_err(|e| Error::io("mapping the segment", e))?;
        plan.write(&map);
        Ok((file, map, lock))
    }

    /// The creator's segment, holding its lock (and the name to unlink unless kept).
    fn finish(
        &self,
        mut map: Mapping,
        plan: Plan,
        lock: Lock,
        name: Option<CString>,
    ) -> Result<Segment> {
        let unlink = if self.keep { None } else { name };
        map.set_owner(Owner {
            lock,
            unlink,
            sysv: None,
        });
        let seg = Segment::from_plan(map, plan, Side::Creator, Vec::new())?;
        self.residency.apply(&seg)?;
        Ok(seg)
    }

    /// `name` is taken. Resumes it if its creator is gone and it is exactly this declaration;
    /// removes it if its creator is gone and `replace_stale` was asked for (`Ok(None)`: link
    /// ours); otherwise the error that says why not.
    fn resume_or_remove(&self, cname: &CStr, name: &str, plan: &Plan) -> Result<Option<Segment>> {
        let old = match open_existing(cname, name) {
            Ok(f) => f,
            // Removed in between: try the name again.
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let lock = take_stale(&old, name)?;
        // Another process may have replaced or removed the segment between our open and our
        // lock: then the name is not `old` any more, and we start over.
        let ours =
            shm::identity(old.as_fd()).map_err(|e| Error::io("reading a segment's identity", e))?;
        if shm::identity_of_name(cname) != Some(ours) {
            return Ok(None);
        }
        if same_declaration(&old, plan) {
            return self.resume(old, lock, cname, name, plan).map(Some);
        }
        if !self.replace_stale {
            return Err(Error::Stale {
                name: name.to_owned(),
                pid: recorded_creator(&old),
            });
        }
        unlink_if_same(cname, &old)?;
        Ok(None)
    }

    /// Takes over a stale segment with this very declaration: its data and channels carry on.
    fn resume(
        &self,
        old: File,
        lock: Lock,
        cname: &CStr,
        name: &str,
        plan: &Plan,
    ) -> Result<Segment> {
        let size = usize::try_from(plan.size())
            .map_err(|_| Error::InvalidArgument("the segment is too large to map".into()))?;
        let mut map = Mapping::new(old, size).map_err(|e| Error::io("mapping the segment", e))?;
        // The header records the new creator, for people and tools (liveness is the lock's).
        crate::layout::record_creator(&map, plan.header.creator_pid, plan.header.creation_token);
        let unlink = if self.keep {
            None
        } else {
            Some(cname.to_owned())
        };
        map.set_owner(Owner {
            lock,
            unlink,
            sysv: None,
        });
        let mut seg = Segment::attach_mapped(map, Side::Creator)?;
        seg.set_name(name);
        Ok(seg)
    }
}

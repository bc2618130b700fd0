//! Anonymous segments: a sealed memfd, handed to the peer as a file descriptor together with
//! the eventfds of its notify-enabled channels.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::{Segment, SegmentBuilder};
use crate::error::{Error, Result};
use crate::layout::Side;
use crate::sys::eventfd::{self, Checked};
use crate::sys::lock::{self, Lock};
use crate::sys::mem::{Mapping, Owner};
use crate::sys::{proc, shm};

impl Segment {
    /// Attaches to an anonymous segment from its memfd, checking its seals, its size and all of
    /// its contents. Takes ownership of `fd`. A segment with notify-enabled channels needs
    /// their eventfds too: use [`Segment::from_fds`].
    pub fn from_fd(fd: OwnedFd) -> Result<Segment> {
        Self::from_fds(fd, Vec::new())
    }

    /// Attaches to an anonymous segment from its memfd and the eventfds of its notify-enabled
    /// channels, in table order (as [`Segment::event_fds`] gives them). Checks the memfd as
    /// [`Segment::from_fd`] does, that there is exactly one eventfd per notify-enabled channel,
    /// and that each is an eventfd. Takes ownership of all the descriptors; they are closed on
    /// error.
    pub fn from_fds(fd: OwnedFd, eventfds: Vec<OwnedFd>) -> Result<Segment> {
        match shm::seals(fd.as_fd()) {
            None => {
                return Err(Error::InvalidArgument(
                    "the file descriptor is not a sealable memfd".into(),
                ))
            }
            Some(seals) if seals & shm::REQUIRED_SEALS != shm::REQUIRED_SEALS => {
                return Err(Error::InvalidArgument(format!(
                    "the memfd is not sealed against growing and shrinking (seals {seals:#x})"
                )))
            }
            Some(_) => {}
        }
        let seg = Self::attach(File::from(fd))?;
        let notify: Vec<usize> = (seg.inner.layout.channels.iter().enumerate())
            .filter(|(_, c)| c.notify)
            .map(|(i, _)| i)
            .collect();
        if eventfds.len() != notify.len() {
            return Err(Error::InvalidArgument(format!(
                "the segment has {} notify-enabled channels but {} eventfds were given; pass \
                 one per notify-enabled channel, in table order",
                notify.len(),
                eventfds.len()
            )));
        }
        let mut per_channel = vec![None; seg.inner.layout.channels.len()];
        for (k, (i, fd)) in notify.into_iter().zip(eventfds).enumerate() {
            match eventfd::check(fd.as_fd()) {
                Ok(Checked::EventFd) => per_channel[i] = Some(Arc::new(fd)),
                Ok(Checked::Other(what)) => {
                    return Err(Error::InvalidArgument(format!(
                        "file descriptor {k} of the notify-enabled channels is not an eventfd \
                         ({what})"
                    )))
                }
                Err(e) => return Err(Error::io("checking an eventfd", e)),
            }
        }
        let inner = Arc::into_inner(seg.inner).expect("a new segment has one handle");
        let map = Arc::into_inner(inner.map).expect("a new segment's mapping has one owner");
        Ok(Segment::new(map, inner.layout, inner.side, per_channel))
    }

    /// The eventfds of the notify-enabled channels, in table order: hand them to the peer of
    /// an anonymous segment with the memfd ([`Segment::as_fd`](AsFd::as_fd)), for
    /// [`Segment::from_fds`]. Empty for named segments, which wake with a futex only.
    pub fn event_fds(&self) -> Vec<BorrowedFd<'_>> {
        (self.inner.eventfds.iter())
            .flatten()
            .map(|fd| fd.as_fd())
            .collect()
    }
}

impl SegmentBuilder {
    /// Creates an anonymous segment in a memfd sealed against growing and shrinking, and an
    /// eventfd for each notify-enabled channel. Hand its file descriptor
    /// ([`Segment::as_fd`](AsFd::as_fd)) to the peer, which attaches with
    /// [`Segment::from_fd`], or, if it has notify-enabled channels, hand it with their eventfds
    /// ([`Segment::event_fds`]) to [`Segment::from_fds`]. The [`handshake`](crate::handshake)
    /// does this over a socket.
    pub fn create_anonymous(&self) -> Result<Segment> {
        let pid = std::process::id();
        let plan = self.plan(pid, proc::start_time(pid))?;
        let huge = self.residency.huge_pages;
        // Huge pages: the file is a whole number of them (the segment's own size is at most
        // the file's).
        let len = match huge.then(shm::huge_pages) {
            None => plan.size(),
            Some(Some((page, free))) if page > 0 => {
                let len = plan.size().div_ceil(page) * page;
                if free < len / page {
                    return Err(Error::NoHugePages { needed: len, page });
                }
                len
            }
            Some(_) => {
                return Err(Error::NoHugePages {
                    needed: plan.size(),
                    page: 0,
                })
            }
        };
        let file: File = shm::memfd(huge).map_err(|e| Error::io("creating memfd", e))?;
        file.set_len(len)
            .map_err(|e| Error::io("sizing memfd", e))?;
        shm::reserve(&file, len).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::ENOMEM) if huge => Error::NoHugePages {
                needed: len,
                page: shm::huge_pages().map_or(0, |(p, _)| p),
            },
            _ => Error::io("reserving the segment's memory", e),
        })?;
        shm::seal(&file).map_err(|e| Error::io("sealing memfd", e))?;
        let lock = Lock::try_take(file.as_fd(), lock::creator_lock())
            .map_err(|e| Error::io("taking the creator lock", e))?
            .ok_or_else(|| Error::InvalidArgument("a new memfd is already locked".into()))?;
        let size = usize::try_from(len)
            .map_err(|_| Error::InvalidArgument("the segment is too large to map".into()))?;
        let mut map = Mapping::new(file, size).map_err(|e| Error::io("mapping the segment", e))?;
        map.set_owner(Owner {
            lock,
            unlink: None,
            sysv: None,
        });
        let eventfds = (self.channels.iter())
            .map(|c| c.notify.then(eventfd::new).transpose())
            .map(|fd| fd.map(|fd| fd.map(Arc::new)))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("creating eventfd", e))?;
        plan.write(&map);
        let seg = Segment::from_plan(map, plan, Side::Creator, eventfds)?;
        self.residency.apply(&seg)?;
        Ok(seg)
    }
}

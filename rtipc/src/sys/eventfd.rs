//! Eventfds: created with a segment, checked when received from a peer, written to wake, read
//! to drain, polled to sleep.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use super::timespec_until;

/// A new eventfd, close-on-exec and non-blocking.
pub(crate) fn new() -> io::Result<OwnedFd> {
    // SAFETY: eventfd with valid flags returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a descriptor received from a peer turned out to be.
pub(crate) enum Checked {
    /// An eventfd, now non-blocking.
    EventFd,
    /// Something else: what `/proc/self/fd` says it is.
    Other(String),
}

/// Checks that `fd` is an eventfd and makes it non-blocking (a blocking one would hang the
/// drain before each wait).
pub(crate) fn check(fd: BorrowedFd<'_>) -> io::Result<Checked> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if link.as_os_str() != "anon_inode:[eventfd]" {
        return Ok(Checked::Other(link.display().to_string()));
    }
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Checked::EventFd)
}

/// Adds 1 to an eventfd's counter. Cannot block (the fd is non-blocking); a full counter
/// (`EAGAIN`, after 2^64 - 2 unread wake-ups) is already readable, so the error is moot.
pub(crate) fn write(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to a valid descriptor.
    unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// Empties an eventfd so that it is readable again only after a new write.
pub(crate) fn drain(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = [0u8; 8];
    // One read empties a normal eventfd; a semaphore-mode one (which a peer could have sent)
    // needs one per count: bounded, since a leftover count only costs a spurious wake-up.
    for _ in 0..64 {
        // SAFETY: reads at most 8 bytes into a live buffer from a valid descriptor.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(()),
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }
    Ok(())
}

/// Sleeps until `fd` is readable, `deadline` passes (`Ok(true)`), or a signal arrives.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    let ts = match timespec_until(deadline) {
        Some(None) => return Ok(true),
        Some(Some(ts)) => Some(ts),
        None => None,
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one valid pollfd; `tsp` is null or points to a live timespec.
    let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r == 0)
}

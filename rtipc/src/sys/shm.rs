//! Segment files: POSIX shared memory objects and memfds, their seals and sizes.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600)`.
pub(crate) fn open_exclusive(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags and mode are valid.
    let fd = unsafe {
        libc::shm_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    owned(fd)
}

/// `shm_open(name, O_RDWR | O_CLOEXEC)` of an existing object.
pub(crate) fn open_existing(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::shm_open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) };
    owned(fd)
}

/// `shm_unlink(name)`; errors (the name is already gone) are ignored.
pub(crate) fn unlink(name: &CStr) {
    // SAFETY: `name` is a valid NUL-terminated string.
    unsafe { libc::shm_unlink(name.as_ptr()) };
}

/// A new memfd that can be sealed, closed on exec.
pub(crate) fn memfd() -> io::Result<File> {
    // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            c"rtipc".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    owned(fd).map(File::from)
}

/// Seals a memfd against growing and shrinking, and against further sealing.
pub(crate) fn seal(file: &File) -> io::Result<()> {
    let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a valid descriptor with an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is a memfd sealed against growing and shrinking: `Ok(None)` if it cannot be
/// sealed at all (not a memfd), `Ok(Some(seals))` otherwise.
pub(crate) fn seals(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: fcntl on a valid descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    (seals >= 0).then_some(seals)
}

/// The seals a peer requires of a memfd before it maps it.
pub(crate) const REQUIRED_SEALS: i32 = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

//! Segment files: POSIX shared memory objects and memfds, their seals and sizes.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// `shm_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)` of an existing object: for tools.
/// `O_NONBLOCK`: a FIFO put under the name must not block the open (the caller then finds that
/// it is not a regular file).
pub(crate) fn open_read_only(name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags, 0) };
    owned(fd)
}

/// `shm_open(name, O_RDWR | O_NONBLOCK | O_CLOEXEC)` of an existing object (`O_NONBLOCK`: as
/// for [`open_read_only`]; it changes nothing for a regular file).
pub(crate) fn open_existing(name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags, 0) };
    owned(fd)
}

/// `shm_unlink(name)`; errors (the name is already gone) are ignored.
pub(crate) fn unlink(name: &CStr) {
    let _ = unlink_checked(name);
}

/// `shm_unlink(name)`, with its error.
pub(crate) fn unlink_checked(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(name.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new memfd that can be sealed, closed on exec; in huge pages (of the default size) if
/// `huge`.
pub(crate) fn memfd(huge: bool) -> io::Result<File> {
    let huge = if huge { libc::MFD_HUGETLB } else { 0 };
    // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            c"rtipc".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | huge,
        )
    };
    owned(fd).map(File::from)
}

/// The default huge page size in bytes and how many are free (`/proc/meminfo`); `None` where
/// the kernel has no huge pages.
pub(crate) fn huge_pages() -> Option<(u64, u64)> {
    let field = |key| super::proc::field("/proc/meminfo", key);
    Some((field("Hugepagesize")? * 1024, field("HugePages_Free")?))
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

/// Where POSIX shared-memory objects live.
const SHM_DIR: &CStr = c"/dev/shm";

/// A new, nameless file in `/dev/shm` (`O_TMPFILE`), mode 0600, closed on exec. It disappears
/// with its last descriptor unless [`link`] gives it a name: what makes creating a named
/// segment atomic.
pub(crate) fn tmpfile() -> io::Result<File> {
    // SAFETY: a valid NUL-terminated path; valid flags and mode.
    let fd = unsafe {
        libc::open(
            SHM_DIR.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    owned(fd).map(File::from)
}

/// The path of the shared-memory object `name` (in `shm_open`'s `/name` form).
fn path_of(name: &CStr) -> std::ffi::CString {
    let mut path = SHM_DIR.to_bytes().to_vec();
    path.extend_from_slice(name.to_bytes());
    std::ffi::CString::new(path).expect("no NUL: both parts are C strings")
}

/// Gives the nameless `file` the name `name` (in `shm_open`'s `/name` form); fails with
/// `EEXIST` if the name is taken, atomically.
pub(crate) fn link(file: &File, name: &CStr) -> io::Result<()> {
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .expect("no NUL in a number");
    let to = path_of(name);
    // SAFETY: two valid NUL-terminated paths; AT_SYMLINK_FOLLOW links the file that the
    // `/proc` link names, which needs no privilege (unlike AT_EMPTY_PATH).
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The device and inode of the object called `name`, if it exists.
pub(crate) fn identity_of_name(name: &CStr) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let path = path_of(name);
    let meta = std::fs::metadata(std::ffi::OsStr::from_bytes(path.to_bytes())).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The device and inode of an open file.
pub(crate) fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = File::from(fd.try_clone_to_owned()?).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Reserves the memory of the first `len` bytes of a shared-memory file (`fallocate`), so that
/// a full `/dev/shm` or a memory limit is an error now rather than a `SIGBUS` at the first write.
///
/// A segment larger than the machine's memory and swap together is refused before anything is
/// allocated: on a file system without a size limit (a memfd's) the kernel would otherwise
/// allocate until the out-of-memory killer stepped in.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    if let Some(total) = memory_and_swap() {
        if len > total {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("{len} bytes is more than this machine's memory and swap ({total} bytes)"),
            ));
        }
    }
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too large"))?;
    loop {
        // SAFETY: fallocate on a valid descriptor with a valid range.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// The machine's memory plus swap, in bytes, if the kernel says.
fn memory_and_swap() -> Option<u64> {
    // SAFETY: `sysinfo` is plain data; all zeroes is a valid value.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo fills in a live struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    let unit = u64::from(info.mem_unit.max(1));
    (info.totalram as u64)
        .checked_add(info.totalswap as u64)?
        .checked_mul(unit)
}

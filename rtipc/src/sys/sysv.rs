//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`.
//!
//! A System V segment has no file descriptor, so the locks that say who is alive (the
//! creator's and each channel end's claims) live on a companion lock file in `/dev/shm`
//! (`rtipc-sysv-KEY.lock`), created with the segment and removed with it.

use std::ffi::CString;
use std::io;
use std::ptr::NonNull;

/// `shmget(key, size, IPC_CREAT | IPC_EXCL | 0600)`: a new segment, or `EEXIST`.
pub(crate) fn create(key: i32, size: usize) -> io::Result<i32> {
    // SAFETY: plain integer arguments; the result is checked.
    let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// `shmget(key, 0, 0)`: the id of an existing segment, or `ENOENT`.
pub(crate) fn lookup(key: i32) -> io::Result<i32> {
    // SAFETY: plain integer arguments; the result is checked.
    let id = unsafe { libc::shmget(key, 0, 0) };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// The segment's size in bytes (`IPC_STAT`).
pub(crate) fn size(id: i32) -> io::Result<u64> {
    // SAFETY: `shmid_ds` is plain data, valid when zeroed.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `IPC_STAT` fills the live `ds`.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ds.shm_segsz as u64)
}

/// Marks segment `id` for removal (`IPC_RMID`): it goes when the last process detaches.
pub(crate) fn remove(id: i32) -> io::Result<()> {
    // SAFETY: `IPC_RMID` takes no buffer.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches segment `id` read-write (or read-only) at an address the kernel chooses.
pub(crate) fn attach(id: i32, writable: bool) -> io::Result<NonNull<u8>> {
    let flags = if writable { 0 } else { libc::SHM_RDONLY };
    // SAFETY: a null address lets the kernel choose; the result is checked against -1.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("shmat gave null"))
}

/// Detaches the segment attached at `p`.
///
/// # Safety
///
/// `p` was returned by [`attach`] and nothing borrowed from the attachment outlives the call.
pub(crate) unsafe fn detach(p: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe { libc::shmdt(p.as_ptr().cast()) };
}

/// The companion lock file of the segment of `key`.
pub(crate) fn lock_path(key: i32) -> CString {
    CString::new(format!("/dev/shm/rtipc-sysv-{key:08x}.lock")).unwrap_or_default()
}

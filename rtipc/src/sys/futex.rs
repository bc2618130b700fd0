//! Futex waits and wakes on a 32-bit word in a shared mapping.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use super::timespec_until;

/// `FUTEX_WAIT` on `word` while it holds `expected`, until woken or `deadline`.
///
/// Returns `Ok(true)` when the deadline passed, `Ok(false)` when woken, interrupted, or the
/// word no longer held `expected` (all of which mean: look again).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> io::Result<bool> {
    let ts = match timespec_until(deadline) {
        Some(None) => return Ok(true),
        Some(Some(ts)) => Some(ts),
        None => None,
    };
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, 4-aligned 32-bit word (in a shared mapping, hence no
    // FUTEX_PRIVATE_FLAG); the timeout is null or a live relative timespec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ETIMEDOUT) => Ok(true),
            // EAGAIN: the word changed before we slept; EINTR: a signal. Both: look again.
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(false)
}

/// `FUTEX_WAKE` of every waiter on `word`.
pub(crate) fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, 4-aligned 32-bit word in a shared mapping. The result is the
    // number of waiters woken; no error is possible for a valid address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

//! Liveness the kernel keeps: byte-range locks on open file descriptions (`F_OFD_SETLK`).
//!
//! A [`Lock`] is a write lock on one byte of a segment file, taken through an open file
//! description of its own (the file re-opened through `/proc/self/fd`). The kernel releases it
//! when the last descriptor of that description is closed, which happens when the holder drops
//! it or when its process dies, however it dies. Unlike a pid, it works across pid namespaces,
//! is never confused with a reused pid or a zombie (a process's descriptors are closed before
//! it becomes one), and two handles in one process conflict like two processes do.
//!
//! **Fork.** A forked child inherits every descriptor, so it would keep its parent's locks
//! alive after the parent died. A `pthread_atfork` handler closes, in the child, every
//! descriptor that holds a lock, before the child runs any code of its own; the child's copies
//! of the handles then know (by the fork count) that their lock is not theirs and release
//! nothing when dropped. The locks stay with the parent. While the process holds locks, `fork`
//! returns in the parent only once the child has closed its copies (the child says so over a
//! pipe), so a parent killed at any point after `fork` returns leaves nothing held; only a child
//! stopped before it runs its fork handlers (by a debugger, say) keeps them until it runs.
//!
//! The locks sit past the end of the file (from 2^62 on), where no data is, so they can never
//! be confused with anything else a program does with the file.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

/// The first byte of the lock area.
pub(crate) const LOCK_BASE: u64 = 1 << 62;

fn flock(kind: libc::c_short, offset: u64) -> libc::flock {
    // SAFETY: `flock` is plain data; all zeroes is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset as libc::off_t;
    fl.l_len = 1;
    fl
}

/// Whether some open file description other than `fd`'s holds a lock on byte `offset`.
pub(crate) fn is_held(fd: BorrowedFd<'_>, offset: u64) -> io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, offset);
    // SAFETY: F_OFD_GETLK on a valid descriptor with a live `flock` to fill in.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// A held lock on one byte of a file; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    fd: Option<OwnedFd>,
    /// The fork count when the lock was taken: in a forked child it differs, and the
    /// descriptor was closed by the fork handler.
    forks: u64,
}

impl Lock {
    /// Takes a write lock on byte `offset` of the file open at `file`, through an open file
    /// description of its own, without waiting. `Ok(None)` if another holds it.
    pub(crate) fn try_take(file: BorrowedFd<'_>, offset: u64) -> io::Result<Option<Lock>> {
        let own = reopen(file)?;
        let fl = flock(libc::F_WRLCK as libc::c_short, offset);
        // SAFETY: F_OFD_SETLK on a valid descriptor with a live `flock`.
        if unsafe { libc::fcntl(own.as_raw_fd(), libc::F_OFD_SETLK, &fl) } < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(Registry::register(own)))
    }

    /// Whether this process is the one that took the lock (false in a forked child).
    pub(crate) fn ours(&self) -> bool {
        self.forks == FORKS.load(Ordering::Acquire)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else {
            return;
        };
        if !self.ours() {
            // In a forked child the fork handler closed this descriptor already; its number
            // may belong to something else now. Forget it.
            std::mem::forget(fd);
            return;
        }
        Registry::unregister(fd);
    }
}

/// A new open file description of the file open at `fd`, close-on-exec.
fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    // SAFETY: `path` is NUL-terminated; the flags are valid.
    let r = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// How many times this process has been forked into: bumped in the child.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// The descriptors that hold locks, for the fork handler: fixed-size chunks linked through a
/// pointer, never freed, so that the handler walks them without allocating. A spin lock keeps
/// registration, removal and fork apart.
struct Registry;

const CHUNK: usize = 256;

struct Chunk {
    fds: [AtomicI32; CHUNK],
    next: std::sync::atomic::AtomicPtr<Chunk>,
}

static FIRST: std::sync::atomic::AtomicPtr<Chunk> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static BUSY: AtomicBool = AtomicBool::new(false);
static HANDLERS: Once = Once::new();

fn spin_lock() {
    // Acquire: the previous holder's changes to the chunks are visible.
    while BUSY
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn spin_unlock() {
    // Release: our changes to the chunks are visible to the next holder.
    BUSY.store(false, Ordering::Release);
}

/// The pipe over which a forked child says that it has closed its copies of the locks.
static FORK_PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

extern "C" fn before_fork() {
    spin_lock();
    if chunks().any(|c| c.fds.iter().any(|fd| fd.load(Ordering::Relaxed) >= 0)) {
        let mut fds: [libc::c_int; 2] = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into a live array of two.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0 {
            FORK_PIPE[0].store(fds[0], Ordering::Relaxed);
            FORK_PIPE[1].store(fds[1], Ordering::Relaxed);
        }
    }
}

extern "C" fn after_fork_parent() {
    let (read, write) = (
        FORK_PIPE[0].swap(-1, Ordering::Relaxed),
        FORK_PIPE[1].swap(-1, Ordering::Relaxed),
    );
    if write >= 0 {
        // SAFETY: our end of the pipe made in `before_fork`; the child has its own copy.
        unsafe { libc::close(write) };
    }
    if read >= 0 {
        let mut byte = 0u8;
        // Until the child writes (it closed its copies) or its end closes (it died, and its
        // copies with it); retried on a signal.
        loop {
            // SAFETY: reads at most one byte into a live buffer from our pipe.
            let r = unsafe { libc::read(read, (&mut byte as *mut u8).cast(), 1) };
            if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        // SAFETY: our end of the pipe, closed once.
        unsafe { libc::close(read) };
    }
    spin_unlock();
}

extern "C" fn after_fork_child() {
    // Only async-signal-safe work here: walking the chunks and `close`.
    let mut chunk = FIRST.load(Ordering::Acquire);
    while !chunk.is_null() {
        // SAFETY: chunks are leaked, never freed: the pointer stays valid.
        let c = unsafe { &*chunk };
        for slot in &c.fds {
            let fd = slot.swap(-1, Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: a descriptor the registry owns; closing it drops the child's
                // reference to the parent's lock, never the parent's own.
                unsafe { libc::close(fd) };
            }
        }
        chunk = c.next.load(Ordering::Acquire);
    }
    FORKS.fetch_add(1, Ordering::Release);
    let (read, write) = (
        FORK_PIPE[0].swap(-1, Ordering::Relaxed),
        FORK_PIPE[1].swap(-1, Ordering::Relaxed),
    );
    if read >= 0 {
        // SAFETY: the child's copy of the parent's read end, closed once.
        unsafe { libc::close(read) };
    }
    if write >= 0 {
        let byte = 1u8;
        // SAFETY: writes one byte from a live buffer to our copy of the pipe.
        unsafe { libc::write(write, (&byte as *const u8).cast(), 1) };
        // SAFETY: our copy of the write end, closed once.
        unsafe { libc::close(write) };
    }
    spin_unlock();
}

fn chunks() -> impl Iterator<Item = &'static Chunk> {
    let mut chunk = FIRST.load(Ordering::Acquire);
    std::iter::from_fn(move || {
        // SAFETY: chunks are leaked, never freed: a non-null pointer stays valid.
        let c = unsafe { chunk.as_ref() }?;
        chunk = c.next.load(Ordering::Acquire);
        Some(c)
    })
}

impl Registry {
    fn register(fd: OwnedFd) -> Lock {
        HANDLERS.call_once(|| {
            // SAFETY: three `extern "C"` functions that live for the program's life.
            unsafe {
                libc::pthread_atfork(
                    Some(before_fork),
                    Some(after_fork_parent),
                    Some(after_fork_child),
                )
            };
        });
        spin_lock();
        let raw: RawFd = fd.as_raw_fd();
        let placed = chunks().flat_map(|c| c.fds.iter()).any(|slot| {
            slot.compare_exchange(-1, raw, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
        if !placed {
            let chunk = Box::leak(Box::new(Chunk {
                fds: std::array::from_fn(|_| AtomicI32::new(-1)),
                next: std::sync::atomic::AtomicPtr::new(FIRST.load(Ordering::Relaxed)),
            }));
            chunk.fds[0].store(raw, Ordering::Relaxed);
            // Release: the chunk's contents are visible to whoever loads the pointer.
            FIRST.store(chunk, Ordering::Release);
        }
        let forks = FORKS.load(Ordering::Acquire);
        spin_unlock();
        Lock {
            fd: Some(fd),
            forks,
        }
    }

    fn unregister(fd: OwnedFd) {
        spin_lock();
        let raw = fd.as_raw_fd();
        for slot in chunks().flat_map(|c| c.fds.iter()) {
            if slot
                .compare_exchange(raw, -1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        // Closed under the spin lock, so that a fork cannot come between the removal and the
        // close (the child would keep the lock's description open).
        drop(fd);
        spin_unlock();
    }
}

/// Byte offsets of the locks of a segment: the creator's, and each channel end's.
pub(crate) fn creator_lock() -> u64 {
    LOCK_BASE
}

/// The lock of `end` (0 producer, 1 consumer) of channel `index`.
pub(crate) fn end_lock(index: usize, end: u64) -> u64 {
    LOCK_BASE + 16 + 2 * index as u64 + end
}

/// The lock of consumer `consumer` (1 to 15; consumer 0's is [`end_lock`]`(index, 1)`) of
/// fan-out channel `index`, after the range of [`end_lock`].
pub(crate) fn fanout_consumer_lock(index: usize, consumer: u32) -> u64 {
    LOCK_BASE + 16 + 2 * 1024 + 16 * index as u64 + u64::from(consumer)
}

impl AsFd for Lock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("a held lock has its descriptor")
            .as_fd()
    }
}

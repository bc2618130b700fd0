//! A shared mapping of a segment file: the one place that turns offsets into pointers.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A `MAP_SHARED`, read-write mapping of a whole segment file, with the file it maps.
///
/// Everything else reaches the memory through [`Mapping::ptr`] and the atomic accessors, which
/// check the range against the mapped length.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// The length to unmap: `len`, rounded up to whole huge pages for a file in huge pages.
    map_len: usize,
    fd: OwnedFd,
    /// What the segment's creator holds with its mapping.
    owner: Option<Owner>,
    /// False for a tool's read-only mapping.
    writable: bool,
    /// A System V attachment (detached with `shmdt`), not an `mmap`.
    sysv: bool,
}

/// What the creator of a segment holds with its mapping: the creator lock (its presence, for
/// every peer) and, for a named segment it does not keep, the name to unlink when the last
/// handle goes.
pub(crate) struct Owner {
    pub lock: super::lock::Lock,
    pub unlink: Option<CString>,
    /// For a System V segment it does not keep: its id, to remove, and its lock file (whose
    /// path is `unlink`).
    pub sysv: Option<i32>,
}

// SAFETY: `Mapping` owns a shared mapping that lives until it is dropped; the raw pointer is
// only an address into it. Access to the memory goes through atomics or through handles whose
// claims make each end single-owner, so sharing the address between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: see `Send`; `&Mapping` gives out nothing but the address and length.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.sysv {
            // SAFETY: `ptr` is the attachment this value made and still owns; nothing
            // borrowed from it outlives `self`.
            unsafe { super::sysv::detach(self.ptr) };
        } else {
            // SAFETY: `ptr..ptr + len` is the mapping this value created and still owns;
            // nothing borrowed from it outlives `self` (handles keep it alive through an
            // `Arc`).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.map_len) };
        }
        if let Some(owner) = self.owner.take() {
            // A forked child's copy owns nothing: it neither unlinks nor releases.
            if owner.lock.ours() && owner.sysv.is_some() {
                if let (Some(id), Some(path)) = (owner.sysv, &owner.unlink) {
                    let _ = super::sysv::remove(id);
                    let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(path.as_bytes()));
                }
            } else if owner.lock.ours() {
                if let Some(name) = &owner.unlink {
                    // Only if the name is still this segment's, not one that replaced it.
                    let ours = super::shm::identity(self.fd.as_fd()).ok();
                    if ours.is_some() && super::shm::identity_of_name(name) == ours {
                        super::shm::unlink(name);
                    }
                }
            }
        }
    }
}

/// `len` rounded up to whole huge pages if `file` is in huge pages (the kernel maps whole
/// ones and unmaps only whole ones), else `len`.
fn huge_len(file: &File, len: usize) -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one statfs into the buffer we pass, for a descriptor we own.
    let r = unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) };
    if r != 0 {
        return len;
    }
    // SAFETY: fstatfs succeeded, so it wrote the whole value.
    let fs = unsafe { fs.assume_init() };
    let page = file.metadata().map_or(0, |m| m.blksize()) as usize;
    if fs.f_type != libc::HUGETLBFS_MAGIC || page == 0 {
        return len;
    }
    len.div_ceil(page).saturating_mul(page)
}

/// The size of a page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(r).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// Locks every page the process has mapped and will map (`mlockall(MCL_CURRENT |
/// MCL_FUTURE)`).
pub(crate) fn lock_all() -> io::Result<()> {
    // SAFETY: mlockall has no memory-safety preconditions.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The process's `RLIMIT_MEMLOCK` soft limit in bytes; `None` if unlimited.
pub(crate) fn memlock_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the value we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0
        || r.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(r.rlim_cur)
}

/// Bytes the process has locked now (`VmLck` of `/proc/self/status`), if known.
pub(crate) fn locked_now() -> Option<u64> {
    super::proc::field("/proc/self/status", "VmLck").map(|kib| kib * 1024)
}

impl Mapping {
    /// Maps the first `len` bytes of `file`, shared and read-write.
    pub(crate) fn new(file: File, len: usize) -> io::Result<Mapping> {
        Self::map(file, len, true)
    }

    /// Maps the first `len` bytes of `file`, shared and read-only: for tools, which only ever
    /// load from it, with relaxed atomic loads of at most 8 bytes (the only atomic accesses
    /// that read-only memory allows; the protocols' read-only steps order them with fences).
    pub(crate) fn read_only(file: File, len: usize) -> io::Result<Mapping> {
        Self::map(file, len, false)
    }

    fn map(file: File, len: usize, writable: bool) -> io::Result<Mapping> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty segment",
            ));
        }
        // SAFETY: a new mapping chosen by the kernel (null hint) of a file descriptor we own;
        // the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping {
            ptr,
            len,
            map_len: huge_len(&file, len),
            fd: OwnedFd::from(file),
            owner: None,
            writable,
            sysv: false,
        })
    }

    /// Attaches System V segment `id` (`len` bytes), with `lock_file` as the descriptor that
    /// its locks live on.
    pub(crate) fn sysv(
        id: i32,
        len: usize,
        lock_file: File,
        writable: bool,
    ) -> io::Result<Mapping> {
        let ptr = super::sysv::attach(id, writable)?;
        Ok(Mapping {
            ptr,
            len,
            map_len: len,
            fd: OwnedFd::from(lock_file),
            owner: None,
            writable,
            sysv: true,
        })
    }

    /// Faults every page of the mapping in, for writing if it is writable, without changing
    /// a byte (`MADV_POPULATE_WRITE` or `_READ`; before Linux 5.14, an atomic add of 0 to or a
    /// load of a word of each page).
    pub(crate) fn populate(&self) -> io::Result<()> {
        let advice = if self.writable {
            libc::MADV_POPULATE_WRITE
        } else {
            libc::MADV_POPULATE_READ
        };
        // SAFETY: `ptr..ptr + len` is this value's own mapping; the populate advice only
        // faults pages in and never changes their contents.
        let r = unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, advice) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        // An older kernel: touch each page. The add of 0 is a write that changes nothing,
        // atomic so that it cannot race with a peer's stores. Relaxed: only the fault is
        // wanted; nothing is published or read through these accesses.
        for at in (0..self.len as u64).step_by(page_size()) {
            let w = self.atomic_u64(at);
            if self.writable {
                w.fetch_add(0, std::sync::atomic::Ordering::Relaxed);
            } else {
                w.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Locks the mapping's pages in memory (`mlock`): they stay resident until it is unmapped.
    pub(crate) fn lock(&self) -> io::Result<()> {
        // SAFETY: `ptr..ptr + len` is this value's own mapping.
        if unsafe { libc::mlock(self.ptr.as_ptr().cast(), self.len) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whether the mapping may be written (every mapping but a tool's).
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Makes this the creator's mapping: it holds `owner` until the last handle goes.
    pub(crate) fn set_owner(&mut self, owner: Owner) {
        self.owner = Some(owner);
    }

    /// The mapped length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A pointer to byte `offset` of the mapping, for a range `offset..offset + len` inside it.
    ///
    /// # Panics
    ///
    /// If the range leaves the mapping: callers pass ranges that the layout's parser validated
    /// against this very length, so this is an internal invariant, not a peer-controlled
    /// condition.
    pub(crate) fn ptr(&self, offset: u64, len: u64) -> *mut u8 {
        let end = offset.checked_add(len).expect("range overflow");
        assert!(end <= self.len as u64, "range outside the mapping");
        // SAFETY: `offset <= self.len`, so the result is inside (or one past) the mapping.
        unsafe { self.ptr.as_ptr().add(offset as usize) }
    }

    /// The atomic word at `offset`, which must be 8-aligned and inside the mapping.
    pub(crate) fn atomic_u64(&self, offset: u64) -> &AtomicU64 {
        let p = self.ptr(offset, 8);
        assert!((p as usize).is_multiple_of(8), "misaligned atomic");
        // SAFETY: `p` is inside the mapping, 8-aligned, and lives as long as `self`; every
        // process accesses this word only atomically.
        unsafe { &*(p as *const AtomicU64) }
    }

    /// The atomic word at `offset`, which must be 4-aligned and inside the mapping.
    pub(crate) fn atomic_u32(&self, offset: u64) -> &AtomicU32 {
        let p = self.ptr(offset, 4);
        assert!((p as usize).is_multiple_of(4), "misaligned atomic");
        // SAFETY: as for `atomic_u64`, with 4-byte alignment.
        unsafe { &*(p as *const AtomicU32) }
    }

    /// The 8-byte words `offset..offset + 8 * count` as atomics.
    pub(crate) fn atomics_u64(&self, offset: u64, count: u64) -> &[AtomicU64] {
        let len = count.checked_mul(8).expect("range overflow");
        let p = self.ptr(offset, len);
        assert!((p as usize).is_multiple_of(8), "misaligned atomic");
        // SAFETY: `count` 8-aligned words inside the mapping, alive as long as `self`, and only
        // ever accessed atomically.
        unsafe { std::slice::from_raw_parts(p as *const AtomicU64, count as usize) }
    }

    /// Copies `out.len()` bytes from `offset` into `out`: the way untrusted metadata leaves
    /// shared memory. Fails if the range leaves the mapping.
    pub(crate) fn copy_out(&self, offset: u64, out: &mut [u8]) -> Result<(), ()> {
        let end = offset.checked_add(out.len() as u64).ok_or(())?;
        if end > self.len as u64 {
            return Err(());
        }
        // SAFETY: `offset..end` lies inside the mapping and `out` is a distinct, writable
        // buffer of the same length. The bytes are plain data that the caller treats as
        // untrusted; a concurrently writing peer can only make the copy wrong, which
        // validation catches.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(offset, 0), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `bytes` to `offset`. For a segment that no other process can see yet.
    ///
    /// # Panics
    ///
    /// If the range leaves the mapping (an internal invariant: the writer sizes the mapping).
    pub(crate) fn copy_in(&self, offset: u64, bytes: &[u8]) {
        let dst = self.ptr(offset, bytes.len() as u64);
        // SAFETY: `dst..dst + len` is inside the mapping (checked by `ptr`) and does not
        // overlap `bytes`, which is private memory. Other processes only read these bytes
        // after the creator's release store of the ready word.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
    }
}

impl AsFd for Mapping {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The cache line the prefetches below step by.
const LINE: usize = 64;

/// Asks the processor to start bringing the cache line at `p` into its cache, to be read: a
/// hint, which changes no memory, is not an access in the memory model, and never faults,
/// whatever the address. Nothing on other architectures.
#[inline(always)]
pub(crate) fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` belongs to SSE, which every x86-64 processor has; it reads nothing
    // the program can observe and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// How a producer asks for the lines it will write next, so that they are its own before it
/// writes them: `PREFETCHW` (each line fetched exclusive, other cores' copies invalidated),
/// where the processor has it, and nothing elsewhere. Decided once, when a handle is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteAhead {
    on: bool,
}

impl WriteAhead {
    /// The most bytes asked for at once, so that the loop after each publish of a large object
    /// stays short. Measured up to 4 KiB, where asking for the whole object is what gains (a
    /// 4 KiB round trip: 3.1 times the floor with all 64 lines asked for, 4.1 with 32, 4.4 with
    /// none).
    pub(crate) const MAX: usize = 16 << 10;

    /// Whether this processor has `PREFETCHW` (CPUID leaf 0x8000_0001, ECX bit 8: every AMD
    /// x86-64 processor, Intel from Broadwell on).
    pub(crate) fn new() -> WriteAhead {
        #[cfg(target_arch = "x86_64")]
        let on = core::arch::x86_64::__cpuid(0x8000_0001).ecx >> 8 & 1 == 1;
        #[cfg(not(target_arch = "x86_64"))]
        let on = false;
        WriteAhead { on }
    }

    /// Asks for the lines of the `len` bytes at `p` (at most [`WriteAhead::MAX`]), to be
    /// written: a hint, as [`prefetch_read`], which only moves the lines between caches.
    #[inline(always)]
    pub(crate) fn lines(self, p: *const u8, len: usize) {
        if !self.on {
            return;
        }
        let first = p as usize & !(LINE - 1);
        let end = p as usize + len.min(Self::MAX);
        let mut line = first;
        while line < end {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `prefetchw` exists on this processor (checked by `new`); like every
            // prefetch it reads and writes nothing the program can observe and never faults.
            unsafe {
                core::arch::asm!(
                    "prefetchw [{0}]",
                    in(reg) line,
                    options(nostack, preserves_flags, readonly)
                )
            };
            line += LINE;
        }
    }
}

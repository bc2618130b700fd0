//! The harness's own shared memory (the control block and the raw floor), CPU pinning, the
//! clock and bounded busy-waiting.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// One cache line's worth (128 bytes, as rtipc lays out its hot words) of 64-bit words, so
/// that words written by different processes never share a line.
#[repr(C, align(128))]
pub struct Line {
    pub w: [AtomicU64; 16],
}

/// The harness's control block, in a memfd shared by the two processes. Fixed-width words
/// only: both processes are the same binary, but the layout does not depend on that.
#[repr(C)]
pub struct Ctrl {
    /// Raw floor, parent to child: the sequence number of the last ping.
    pub ping: Line,
    /// Raw floor, child to parent: the echoed sequence number.
    pub pong: Line,
    /// Written by the parent: a command for the child (see [`Cmd`]).
    pub cmd: Line,
    /// Written by the child: its state and answers (see [`St`]).
    pub status: Line,
    /// Written by the child during the payload sweep: when it saw which update.
    pub stamp: Line,
    /// Written by the parent: tells a child looping without a count to stop.
    pub stop: Line,
}

/// Words of [`Ctrl::cmd`].
pub mod cmd {
    /// Sequence number of the command; the child acts when it changes. Stored last.
    pub const SEQ: usize = 0;
    /// What to do (`crate::child::Op` as a number).
    pub const OP: usize = 1;
    /// How many iterations.
    pub const COUNT: usize = 2;
    /// The first sequence number of the block.
    pub const START: usize = 3;
    /// An operation-specific parameter.
    pub const ARG: usize = 4;
}

/// Words of [`Ctrl::status`].
pub mod st {
    /// [`READY`](super::READY) once the child has attached everything.
    pub const READY: usize = 0;
    /// The sequence number of the last command the child finished.
    pub const DONE: usize = 1;
    /// Data errors the child found so far (sequence numbers, payload words).
    pub const ERRORS: usize = 2;
    /// Non-zero if the child failed (it also prints why to stderr).
    pub const FAILED: usize = 3;
    /// An operation-specific result of the last command (a count).
    pub const RESULT: usize = 4;
    /// A second operation-specific result.
    pub const RESULT2: usize = 5;
}

/// Value of `status[READY]` once the child is attached.
pub const READY: u64 = 0x5245_4144_595f_4348;

/// The control block, mapped from a memfd that the child inherits.
pub struct Shared {
    ptr: *mut Ctrl,
    fd: OwnedFd,
}

impl Shared {
    /// Creates the control block in a new memfd that a child process inherits.
    pub fn create() -> io::Result<Shared> {
        // SAFETY: the name is a valid NUL-terminated string; no MFD_CLOEXEC, so that the
        // spawned child inherits the descriptor.
        let raw = unsafe { libc::memfd_create(c"rtipc-bench-ctrl".as_ptr(), 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on a valid descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size_of::<Ctrl>() as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd)
    }

    /// Maps the control block from the descriptor `raw` inherited from the parent.
    pub fn inherit(raw: RawFd) -> io::Result<Shared> {
        let fd = adopt(raw)?;
        let len = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if len < size_of::<Ctrl>() as u64 {
            return Err(io::Error::other(format!(
                "the control block is {len} bytes, not {}",
                size_of::<Ctrl>()
            )));
        }
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Shared> {
        // SAFETY: a fresh shared mapping of a descriptor at least `size_of::<Ctrl>()` long
        // (the parent sized it; the child maps what the parent made).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_of::<Ctrl>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Shared { ptr: p.cast(), fd })
    }

    pub fn ctrl(&self) -> &Ctrl {
        // SAFETY: the mapping is page-aligned (so aligned for `Ctrl`), as long as `Ctrl`, lives
        // as long as `self`, starts zeroed (a valid `Ctrl`: all atomics) and is only accessed
        // through atomics by both processes.
        unsafe { &*self.ptr }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference into it outlives
        // `self` (they all borrow it).
        unsafe { libc::munmap(self.ptr.cast(), size_of::<Ctrl>()) };
    }
}

/// Takes ownership of descriptor `raw`, inherited from the parent, after checking that it is
/// open.
pub fn adopt(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor number has no preconditions; it fails if it is not open.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is open (checked above), and the parent handed it to this process to own:
    // nothing else here uses it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A duplicate of `fd` without close-on-exec, for a child process to inherit.
pub fn inheritable(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: dup of an open descriptor; the new one has FD_CLOEXEC cleared.
    let raw = unsafe { libc::dup(fd) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Pins the calling thread (the whole process: it has one thread) to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data, valid when zeroed; CPU_SET writes inside it for
    // `cpu < CPU_SETSIZE` (checked by the caller passing 0 or 1); sched_setaffinity(0)
    // acts on the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process, so a time stamped in
/// one process can be subtracted from one stamped in another.
#[inline(always)]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The real-time priority of the open-loop processes under `SCHED_FIFO` (cyclictest's usual
/// `-p 80`): above the kernel's threaded interrupt handlers (50), below its watchdogs (99).
pub const FIFO_PRIORITY: i32 = 80;

/// Sets the calling thread's scheduling policy: `SCHED_FIFO` at [`FIFO_PRIORITY`] (`on`), or
/// back to `SCHED_OTHER`.
pub fn set_fifo(on: bool) -> io::Result<()> {
    let (policy, priority) = if on {
        (libc::SCHED_FIFO, FIFO_PRIORITY)
    } else {
        (libc::SCHED_OTHER, 0)
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler reads one sched_param; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The page faults of this process so far, (minor, major), from `getrusage(RUSAGE_SELF)`.
pub fn page_faults() -> (u64, u64) {
    // SAFETY: `rusage` is plain data, valid when zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage; RUSAGE_SELF always exists.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    (ru.ru_minflt as u64, ru.ru_majflt as u64)
}

/// This process's CPU time so far (user and system), in seconds, from
/// `getrusage(RUSAGE_SELF)`.
pub fn own_cpu_s() -> f64 {
    // SAFETY: `rusage` is plain data, valid when zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage; RUSAGE_SELF always exists.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Seconds per clock tick of /proc's CPU times (`USER_HZ`).
fn tick_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1.0 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// The CPU time of all CPUs so far, in seconds, from the `cpu` line of /proc/stat: (busy, the
/// sum of user, nice, system, irq and softirq; steal, the time the hypervisor ran something
/// else while a vCPU had work). `None` if /proc/stat cannot be read.
pub fn machine_cpu_s() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    Some((busy as f64 * tick_s(), get(7) as f64 * tick_s()))
}

/// Process `pid`'s CPU time so far (user and system), in seconds, from /proc/PID/stat.
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) of proc(5); `rest` starts at field 3.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 * tick_s())
}

/// Sleeps until `CLOCK_MONOTONIC` reads `deadline_ns` (an absolute time:
/// `clock_nanosleep(TIMER_ABSTIME)`, so that a period never drifts by the time each cycle
/// takes). Returns at once if the deadline has passed.
pub fn sleep_until(deadline_ns: u64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: reads one timespec; the remaining time is not asked for (null) with
        // TIMER_ABSTIME.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        match r {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Sets the calling thread's timer slack (by how much the kernel may delay its timers to batch
/// wake-ups; 50 µs by default for `SCHED_OTHER` threads, none for real-time ones) to `ns`;
/// returns the previous value.
pub fn set_timer_slack(ns: u64) -> io::Result<u64> {
    // SAFETY: PR_GET_TIMERSLACK takes no pointer and returns the slack.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    if old < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: PR_SET_TIMERSLACK takes the slack by value.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old as u64)
}

/// How long a busy-wait may last before the harness gives up on the other process.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A bounded busy-wait: `tick` is a counter increment on the fast path and looks at the clock
/// once every 65,536 spins, so that a dead or wedged peer ends the run with an error instead
/// of spinning forever.
pub struct Spin {
    n: u32,
    since: Option<Instant>,
    what: &'static str,
}

impl Spin {
    #[inline(always)]
    pub fn new(what: &'static str) -> Spin {
        Spin {
            n: 0,
            since: None,
            what,
        }
    }

    #[inline(always)]
    pub fn tick(&mut self) -> Result<(), String> {
        self.n = self.n.wrapping_add(1);
        if self.n & 0xffff == 0 {
            return self.slow();
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn slow(&mut self) -> Result<(), String> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > PATIENCE {
            return Err(format!(
                "gave up waiting for {} after {} s",
                self.what,
                PATIENCE.as_secs()
            ));
        }
        Ok(())
    }
}

/// Errors of the harness: what failed, for the person running it.
pub type Res<T> = Result<T, String>;

/// Adds what was being done to an error.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Res<T>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    #[inline(always)]
    fn ctx(self, what: &str) -> Res<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

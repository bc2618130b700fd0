//! Every call into the operating system, behind small safe wrappers.
//!
//! Nothing outside this module calls `libc` for a system call or maps memory: shared-memory
//! objects and memfds ([`shm`]), System V shared memory ([`sysv`]), the mapping itself ([`mem`]), processes ([`proc`]), futexes
//! ([`futex`]), eventfds ([`eventfd`]) and unix sockets ([`socket`]). Each `unsafe` block states
//! in a `// SAFETY:` line why it is sound. Linux only.

pub(crate) mod eventfd;
pub(crate) mod futex;
pub(crate) mod lock;
pub(crate) mod mem;
pub(crate) mod proc;
pub(crate) mod shm;
pub(crate) mod socket;
pub(crate) mod sysv;

use std::time::Instant;

/// The time left until `deadline` as a relative timespec: `None` without a deadline,
/// `Some(None)` once it has passed.
fn timespec_until(deadline: Option<Instant>) -> Option<Option<libc::timespec>> {
    let d = deadline?;
    let left = d
        .checked_duration_since(Instant::now())
        .filter(|l| !l.is_zero());
    Some(left.map(|left| libc::timespec {
        tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: left.subsec_nanos() as libc::c_long,
    }))
}

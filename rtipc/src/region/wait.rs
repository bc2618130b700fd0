//! Blocking primitives that live in a region: an event and a counting semaphore, on futexes.
//!
//! Neither owns anything: a process killed while waiting, posting or notifying leaves no lock
//! behind, and every other process carries on. Each keeps a count of sleepers beside its word,
//! so that posting or notifying makes a system call only when someone may be asleep (a sleeper
//! killed in its sleep leaves the count raised, which costs later posts one needless wake-up
//! each, nothing more).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::protocol;
use super::AtomicU32;
use crate::sys::futex;

/// Sleeps on `word` while it holds `expected`, until `deadline`, counting itself in `sleepers`.
/// Returns false when the deadline has passed.
fn sleep(word: &AtomicU32, sleepers: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    // See `protocol`: either the waker sees this sleeper, or this sleeper sees the changed word.
    protocol::count_in(sleepers);
    if protocol::still(word) != expected {
        protocol::count_out(sleepers);
        return true;
    }
    let timed_out = match futex::wait(word, expected, deadline) {
        Ok(t) => t,
        // Not possible for a live, aligned word; look again rather than spin on it.
        Err(_) => {
            std::thread::sleep(Duration::from_millis(1));
            false
        }
    };
    protocol::count_out(sleepers);
    !timed_out
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    // A timeout too long to represent waits forever.
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// An event: a 32-bit counter that [`Event::notify`] raises and [`Event::wait`] waits on.
///
/// Read the counter, look at the state it guards, and wait for the counter to move from what
/// was read: no notification between the read and the wait is lost.
#[derive(crate::Object)]
#[rtipc(crate = crate, region)]
#[repr(C)]
pub struct Event {
    count: AtomicU32,
    sleepers: AtomicU32,
}

impl Event {
    /// The counter now (acquire: what was written before the notify that raised it is
    /// visible).
    pub fn current(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Raises the counter and wakes every waiter; returns the new value. A system call only
    /// when a waiter may be asleep.
    pub fn notify(&self) -> u32 {
        let (now, wake) = protocol::notify(&self.count, &self.sleepers);
        if wake {
            futex::wake(&self.count);
        }
        now
    }

    /// Waits until the counter differs from `seen` (a value [`Event::current`] returned) or
    /// `timeout` passes (`None`: no limit). Returns the new value, or `None` on timeout.
    pub fn wait(&self, seen: u32, timeout: Option<Duration>) -> Option<u32> {
        let deadline = deadline(timeout);
        loop {
            let now = self.current();
            if now != seen {
                return Some(now);
            }
            if !sleep(&self.count, &self.sleepers, seen, deadline) {
                let now = self.current();
                return (now != seen).then_some(now);
            }
        }
    }
}

/// A counting semaphore: [`Semaphore::post`] adds a unit, [`Semaphore::wait`] takes one,
/// sleeping until there is one.
///
/// It does not own anything and does not know who took a unit: a process that dies holding
/// one does not give it back, and nobody is blocked on it by the death itself.
#[derive(crate::Object)]
#[rtipc(crate = crate, region)]
#[repr(C)]
pub struct Semaphore {
    count: AtomicU32,
    sleepers: AtomicU32,
}

impl Semaphore {
    /// Units available now.
    pub fn available(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Adds a unit and wakes one waiter if any may be asleep. False (and nothing added) if the
    /// count is already `u32::MAX`.
    pub fn post(&self) -> bool {
        match protocol::post(&self.count, &self.sleepers) {
            None => false,
            Some(wake) => {
                if wake {
                    futex::wake(&self.count);
                }
                true
            }
        }
    }

    /// Takes a unit if there is one, without waiting.
    pub fn try_wait(&self) -> bool {
        protocol::try_take(&self.count)
    }

    /// Takes a unit, sleeping until there is one or `timeout` passes (`None`: no limit).
    /// Returns whether it took one.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = deadline(timeout);
        loop {
            if self.try_wait() {
                return true;
            }
            if !sleep(&self.count, &self.sleepers, 0, deadline) {
                return self.try_wait();
            }
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("count", &self.current())
            .finish()
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

//! Blocking primitives that live in a region: an event and a counting semaphore, on futexes.
//!
//! Neither owns anything: a process killed while waiting, posting or notifying leaves no lock
//! behind, and every other process carries on. Each keeps a count of sleepers beside its word,
//! so that posting or notifying makes a system call only when someone may be asleep (a sleeper
//! killed in its sleep leaves the count raised, which costs later posts one needless wake-up
//! each, nothing more).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::AtomicU32;
use crate::sys::futex;

/// Sleeps on `word` while it holds `expected`, until `deadline`, counting itself in `sleepers`.
/// Returns false when the deadline has passed.
fn sleep(word: &AtomicU32, sleepers: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    // SeqCst, with the waker's SeqCst change of `word` and load of `sleepers`: either the waker
    // sees this sleeper, or the futex sees the changed word and does not sleep.
    sleepers.fetch_add(1, Ordering::SeqCst);
    let timed_out = match futex::wait(word, expected, deadline) {
        Ok(t) => t,
        // Not possible for a live, aligned word; look again rather than spin on it.
        Err(_) => {
            std::thread::sleep(Duration::from_millis(1));
            false
        }
    };
    sleepers.fetch_sub(1, Ordering::SeqCst);
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
        // SeqCst: see `sleep`; also a release for what was written before.
        let now = self.count.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
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
        // SeqCst: see `sleep`; also a release for what was written before.
        let added = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |c| c.checked_add(1))
            .is_ok();
        if added && self.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake(&self.count);
        }
        added
    }

    /// Takes a unit if there is one, without waiting.
    pub fn try_wait(&self) -> bool {
        // Acquire: what the poster wrote before its post is visible after the take.
        self.count
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |c| c.checked_sub(1))
            .is_ok()
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
        f.debug_struct("Event").field("count", &self.current()).finish()
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

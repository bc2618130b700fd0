//! The counting and sleeping protocol of a region's [`Event`](super::Event) and
//! [`Semaphore`](super::Semaphore), free of any mapping so that loom can model-check it with
//! the futex modelled by a mutex and a condition variable (`RUSTFLAGS="--cfg loom" cargo test
//! -p rtipc --lib --release loom`).
//!
//! Each primitive is a 32-bit word (the semaphore's units, the event's counter) and a count of
//! sleepers. A sleeper counts itself in, then sleeps on the word only while the word still
//! holds the value it saw (the futex checks that atomically with queueing it). A poster
//! changes the word, then wakes only if it sees a sleeper. A SeqCst fence sits between the
//! sleeper's count-in and its last look at the word, and another between the poster's change
//! and its look at the count: of two such fences one comes first in the single total order, so
//! either the poster sees the sleeper (and wakes it), or the sleeper sees the changed word (and
//! does not sleep). No wake-up is lost, and nothing is owned: a
//! process killed anywhere in these steps leaves at worst a sleeper count too high, which costs
//! later posts a needless wake-up each.

use crate::sync::{fence, AtomicU32, Ordering};

/// Takes a unit if there is one (acquire: what the poster wrote before its post is visible).
pub(crate) fn try_take(count: &AtomicU32) -> bool {
    let mut c = count.load(Ordering::Relaxed);
    while c > 0 {
        match count.compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => c = now,
        }
    }
    false
}

/// Adds a unit (release: what the poster wrote before is visible to the taker); `None` if the
/// count is at its maximum, else whether a sleeper may need waking.
pub(crate) fn post(count: &AtomicU32, sleepers: &AtomicU32) -> Option<bool> {
    let mut c = count.load(Ordering::Relaxed);
    loop {
        let next = c.checked_add(1)?;
        match count.compare_exchange_weak(c, next, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => c = now,
        }
    }
    Some(sleeper_seen(sleepers))
}

/// Raises an event's counter (release, as for [`post`]): the new value, and whether a sleeper
/// may need waking.
pub(crate) fn notify(counter: &AtomicU32, sleepers: &AtomicU32) -> (u32, bool) {
    let now = counter.fetch_add(1, Ordering::Release).wrapping_add(1);
    (now, sleeper_seen(sleepers))
}

/// The poster's look at the sleepers, after its change: the SeqCst fence pairs with the one in
/// [`count_in`] (see the module documentation). Relaxed: ordered by the fence.
fn sleeper_seen(sleepers: &AtomicU32) -> bool {
    fence(Ordering::SeqCst);
    sleepers.load(Ordering::Relaxed) != 0
}

/// A sleeper counts itself in, before it looks at the word a last time ([`still`]) and
/// sleeps. Relaxed, then the SeqCst fence that pairs with the poster's.
pub(crate) fn count_in(sleepers: &AtomicU32) {
    sleepers.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::SeqCst);
}

/// A sleeper that woke (or never slept) counts itself out. Relaxed: only posters read the
/// count, to decide whether to wake.
pub(crate) fn count_out(sleepers: &AtomicU32) {
    sleepers.fetch_sub(1, Ordering::Relaxed);
}

/// The word as a sleeper checks it before sleeping, after [`count_in`] (acquire: what the
/// poster wrote before its change is visible).
pub(crate) fn still(word: &AtomicU32) -> u32 {
    word.load(Ordering::Acquire)
}

#[cfg(all(test, loom))]
mod loom_tests;

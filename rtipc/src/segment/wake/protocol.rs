//! The wake-up handshake between a producer and a waiting consumer, over one shared `waiting`
//! word, free of memory mappings and system calls so that loom can model-check it
//! (`RUSTFLAGS="--cfg loom" cargo test -p rtipc --lib --release loom`): the models that run
//! it against each channel kind's protocol are in `notify/models.rs`.
//!
//! The consumer writes the word to announce that it is about to sleep, and how: [`FUTEX`] (it
//! sleeps in `FUTEX_WAIT` on this very word, expecting [`FUTEX`]) or [`EVENTFD`] (it sleeps in
//! `poll` on the channel's eventfd). The producer reads the word after every publish and, only
//! when it is not zero, takes it back to zero with one swap and wakes the consumer the way the
//! swapped-out value says. A publish with nobody waiting is therefore one fence and one load
//! of a word that stays in the producer's cache: no system call, no store.
//!
//! # Why no wake-up is lost
//!
//! The two sides form the store-buffering (Dekker) pattern, each separated by a `SeqCst` fence:
//!
//! ```text
//! consumer (announce)                      producer (publish)
//! waiting.swap(how)           (1)          middle.swap(DIRTY | ...)      (4)
//! fence(SeqCst)               (2)          fence(SeqCst)                 (5)
//! data = middle & DIRTY       (3)          w = waiting.load()            (6)
//! if !data { sleep }                       if w != 0 { swap(0); wake(w) }
//! ```
//!
//! For a queue, the check (3) loads the ring cell at the consumer's position, the cell that
//! the producer's push (4) swaps; everything below holds with it in place of the middle word.
//!
//! `SeqCst` fences are totally ordered. If (2) comes before (5), the load (6) sees the
//! announcement (1) or a later value of the word; if (5) comes before (2), the check (3) sees
//! the publish (4) or a later value of the middle word, which is still DIRTY because only the
//! consumer clears it and it does not fetch while waiting. So for every publish and every
//! announcement, the consumer sees the data or the producer sees the announcement (C++20
//! \[atomics.fences\], the rule for two `SeqCst` fences; loom implements it).
//!
//! When the producer sees a non-zero word, either its own swap takes it to zero and it wakes
//! the consumer, or the swap finds zero because another publish already took the announcement,
//! and that publish woke the consumer. The consumer sleeps only in a state from which that wake
//! gets it out:
//!
//! * futex: the kernel puts the consumer to sleep only if the word still holds [`FUTEX`],
//!   checked atomically with queueing it; a swap to zero before that makes `FUTEX_WAIT` return
//!   at once, a swap after it is followed by the `FUTEX_WAKE` that finds it queued.
//! * eventfd: the consumer drains the eventfd *before* announcing, so a write for this
//!   announcement comes after the drain and leaves the eventfd readable until the consumer
//!   reads it again: `poll` returns whether the write came before or after it began.
//!
//! A woken consumer starts over: it checks for data and, if there is none (a wake-up left over
//! from an earlier announcement), announces again, and the argument applies to the new
//! announcement. Only the consumer clears `DIRTY`, so data it was woken for is still there.
//!
//! The other orderings are `Relaxed`: the word carries no data, only the decision to make a
//! system call, and the data itself is ordered by the channel's own acquire/release protocol
//! when the consumer fetches.
//!
//! Every write to the word is a read-modify-write (`swap`), the consumer's too, though a
//! store would do under the C++ model: the word's writes are then totally ordered by what
//! each swap read. Loom keeps a partial modification order, in which a plain store and a
//! concurrent swap stay unordered, so with stores it reports lost wake-ups that the C++ model
//! rules out (a later load may read the swap that, in the total order, precedes the store).
//! The swaps are on the consumer's slow path only, just before it sleeps; on x86 the
//! announcing swap doubles as the fence.
//!
//! A consumer that gives up (timeout) or finds data withdraws its announcement by swapping in
//! zero. That may race with a producer's swap: at worst the producer makes one needless
//! wake-up call. A peer that ignores the protocol (announcing without waiting) can make the
//! producer issue a wake-up per publish, slower but never wrong.

use crate::sync::{fence, AtomicU32, Ordering};

/// The consumer sleeps in `FUTEX_WAIT` on the `waiting` word, expecting this value.
pub(crate) const FUTEX: u32 = 1;
/// The consumer sleeps in `poll` on the channel's eventfd.
pub(crate) const EVENTFD: u32 = 2;

/// How a sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// Woken, interrupted, or the futex word had already changed: look again.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Consumer: announces that it is about to sleep (`how` is [`FUTEX`] or [`EVENTFD`]), then
/// checks for data. Returns `true`, with the announcement withdrawn, if data is already there;
/// `false` if the consumer may now sleep: a publish after this point wakes it.
pub(crate) fn announce(waiting: &AtomicU32, how: u32, has_data: impl Fn() -> bool) -> bool {
    // Relaxed swap, SeqCst fence, then the check: the consumer's half of the pattern above.
    waiting.swap(how, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    if has_data() {
        withdraw(waiting);
        true
    } else {
        false
    }
}

/// Consumer: withdraws an announcement (it found data or stopped waiting).
pub(crate) fn withdraw(waiting: &AtomicU32) {
    // Relaxed: see the module documentation; a race with a producer's swap costs at most one
    // needless wake-up call.
    waiting.swap(0, Ordering::Relaxed);
}

/// Producer: after a publish, returns how to wake the consumer: 0 when nobody waits (no system
/// call needed), otherwise the announcement, which this call took back to zero.
#[inline]
pub(crate) fn after_publish(waiting: &AtomicU32) -> u32 {
    // The producer's half of the pattern: the publish swap, a SeqCst fence, then the load.
    fence(Ordering::SeqCst);
    // Relaxed: the fence orders it; loading first keeps the common case free of stores.
    if waiting.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    // Relaxed: only one publish gets the non-zero value and makes the wake-up call.
    waiting.swap(0, Ordering::Relaxed)
}

/// Producer: [`after_publish`] for a further `waiting` word, after the fence that
/// `after_publish` made (a fan-out channel has one word per consumer).
#[inline]
pub(crate) fn after_fence(waiting: &AtomicU32) -> u32 {
    // Relaxed: ordered by the caller's fence, as in `after_publish`.
    if waiting.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    waiting.swap(0, Ordering::Relaxed)
}

/// Consumer: waits until `has_data` holds or `sleep` reports a timeout.
///
/// `prepare` runs before each announcement (the eventfd drain); `sleep(how)` blocks until a
/// wake-up, a spurious return, or the deadline. Returns whether data is there.
pub(crate) fn wait<E>(
    waiting: &AtomicU32,
    how: u32,
    has_data: impl Fn() -> bool,
    mut prepare: impl FnMut() -> Result<(), E>,
    mut sleep: impl FnMut(u32) -> Result<Slept, E>,
) -> Result<bool, E> {
    let mut announced = false;
    let result = loop {
        if has_data() {
            break Ok(true);
        }
        if let Err(e) = prepare() {
            break Err(e);
        }
        if announce(waiting, how, &has_data) {
            // `announce` withdrew the announcement itself.
            return Ok(true);
        }
        announced = true;
        match sleep(how) {
            Ok(Slept::Woken) => continue,
            Ok(Slept::TimedOut) => break Ok(has_data()),
            Err(e) => break Err(e),
        }
    };
    if announced {
        withdraw(waiting);
    }
    result
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn publish_with_nobody_waiting_takes_nothing() {
        let w = AtomicU32::new(0);
        assert_eq!(after_publish(&w), 0);
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn announcement_is_taken_once() {
        let w = AtomicU32::new(0);
        assert!(!announce(&w, FUTEX, || false));
        assert_eq!(after_publish(&w), FUTEX);
        assert_eq!(after_publish(&w), 0, "the second publish makes no call");
    }

    #[test]
    fn announcement_with_data_is_withdrawn() {
        let w = AtomicU32::new(0);
        assert!(announce(&w, EVENTFD, || true));
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn wait_times_out_and_withdraws() {
        let w = AtomicU32::new(0);
        let sleeps = Cell::new(0);
        let r = wait::<()>(
            &w,
            FUTEX,
            || false,
            || Ok(()),
            |_| {
                sleeps.set(sleeps.get() + 1);
                Ok(if sleeps.get() < 3 {
                    Slept::Woken
                } else {
                    Slept::TimedOut
                })
            },
        );
        assert_eq!(r, Ok(false));
        assert_eq!(sleeps.get(), 3, "spurious wake-ups announce again");
        assert_eq!(w.load(Ordering::Relaxed), 0, "withdrawn");
    }

    #[test]
    fn wait_returns_at_once_with_data() {
        let w = AtomicU32::new(0);
        let r = wait::<()>(&w, FUTEX, || true, || Ok(()), |_| panic!("must not sleep"));
        assert_eq!(r, Ok(true));
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }
}

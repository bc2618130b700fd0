//! Loom models of the region primitives: no wake-up is lost between a poster and a sleeper,
//! and the units are counted exactly. The futex is a mutex and a condition variable: its
//! value check is atomic with queueing the sleeper, as the kernel's is. A lost wake-up leaves a
//! sleeper asleep with the poster finished, which loom reports as a deadlock.

use loom::sync::{Arc, Condvar, Mutex};

use super::*;

struct Futex {
    word: AtomicU32,
    sleepers: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Futex {
    fn new() -> Futex {
        Futex {
            word: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// `FUTEX_WAIT`: sleeps only if the word still holds `expected`.
    fn wait(&self, expected: u32) {
        let g = self.lock.lock().unwrap();
        if still(&self.word) == expected {
            drop(self.cv.wait(g).unwrap());
        }
    }

    /// `FUTEX_WAKE` of everyone.
    fn wake(&self) {
        let _g = self.lock.lock().unwrap();
        self.cv.notify_all();
    }

    /// A semaphore's wait without a timeout.
    fn take(&self) {
        loop {
            if try_take(&self.word) {
                return;
            }
            count_in(&self.sleepers);
            self.wait(0);
            count_out(&self.sleepers);
        }
    }

    fn post(&self) {
        if post(&self.word, &self.sleepers) == Some(true) {
            self.wake();
        }
    }
}

/// A taker that finds no unit sleeps; one post from another thread wakes it, whatever the
/// interleaving (a lost wake-up would leave it asleep: a deadlock loom reports).
#[test]
fn loom_semaphore_post_wakes_a_sleeping_taker() {
    loom::model(|| {
        let f = Arc::new(Futex::new());
        let taker = {
            let f = Arc::clone(&f);
            loom::thread::spawn(move || f.take())
        };
        f.post();
        taker.join().unwrap();
        assert_eq!(f.word.load(Ordering::Relaxed), 0);
    });
}

/// Units are counted exactly: two posts racing with a take leave exactly one unit.
#[test]
fn loom_semaphore_counts_exactly() {
    loom::model(|| {
        let f = Arc::new(Futex::new());
        let posters: Vec<_> = (0..2)
            .map(|_| {
                let f = Arc::clone(&f);
                loom::thread::spawn(move || assert_eq!(post(&f.word, &f.sleepers), Some(false)))
            })
            .collect();
        let took = try_take(&f.word);
        for p in posters {
            p.join().unwrap();
        }
        let left = f.word.load(Ordering::Relaxed);
        assert_eq!(left + u32::from(took), 2);
        // At the maximum, a post adds nothing and says so.
        f.word.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(post(&f.word, &f.sleepers), None);
    });
}

/// An event: a waiter that saw counter 0 returns once it moved, whatever the interleaving.
#[test]
fn loom_event_notify_wakes_the_waiter() {
    loom::model(|| {
        let f = Arc::new(Futex::new());
        let waiter = {
            let f = Arc::clone(&f);
            loom::thread::spawn(move || {
                let seen = 0;
                loop {
                    if still(&f.word) != seen {
                        return;
                    }
                    count_in(&f.sleepers);
                    f.wait(seen);
                    count_out(&f.sleepers);
                }
            })
        };
        let (now, wake) = notify(&f.word, &f.sleepers);
        assert_eq!(now, 1);
        if wake {
            f.wake();
        }
        waiter.join().unwrap();
    });
}

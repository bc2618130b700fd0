//! Model checks of the fan-out protocol: two consumers and a producer, sides that stop at every
//! step and successors that take over, a consumer that holds its slot for good, and observers
//! that a producer laps during their copy.
//!
//! Three threads make a large state space; the models bound the preemptions per execution to
//! three (loom's `preemption_bound`), which covers every interleaving with up to three forced
//! switches.

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use super::*;
use crate::sync::{StopAfter, Stopped};

const CONSUMERS: usize = 2;
const SLOTS: usize = CONSUMERS + 2;

/// Each slot holds (sequence, sequence * 7); loom's `UnsafeCell` fails the model on any access
/// to a slot that races with a write. Observers read a copy of each slot through two atomic
/// words instead, as the real observer does: racing reads are allowed there, and a copy that
/// the protocol accepts must not be torn.
struct Shared {
    latest: AtomicU64,
    seqs: [AtomicU64; SLOTS],
    table: [AtomicU64; CONSUMERS],
    seen: [AtomicU64; CONSUMERS],
    slots: [UnsafeCell<(u64, u64)>; SLOTS],
    mirror: [[AtomicU64; 2]; SLOTS],
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            latest: AtomicU64::new(initial_latest()),
            seqs: std::array::from_fn(|_| AtomicU64::new(0)),
            table: std::array::from_fn(|_| AtomicU64::new(NONE)),
            seen: std::array::from_fn(|_| AtomicU64::new(0)),
            slots: std::array::from_fn(|_| UnsafeCell::new((0, 0))),
            mirror: std::array::from_fn(|_| [AtomicU64::new(0), AtomicU64::new(0)]),
        })
    }

    fn words(&self) -> Words<'_> {
        Words {
            latest: &self.latest,
            seqs: &self.seqs,
            table: &self.table,
            seen: &self.seen,
            seen_stride: 1,
        }
    }
}

/// A producer publishing `publishes` updates, killed after `stop` steps and replaced by a
/// successor that claims the end from the shared words and publishes the rest.
fn producer(s: &Shared, publishes: u64, stop: Option<u32>) -> u64 {
    let mut p = claim_producer(s.words()).unwrap();
    let mut steps = StopAfter(stop);
    while p.seq < publishes {
        let seq = p.seq + 1;
        let b = p.back as usize;
        s.slots[b].with_mut(|v| {
            // SAFETY: the producer owns its back slot exclusively (what the model checks).
            unsafe { *v = (seq, seq * 7) }
        });
        // Relaxed, as plain writes to the slot: the observers' copies race with them.
        s.mirror[b][0].store(seq, Ordering::Relaxed);
        s.mirror[b][1].store(seq * 7, Ordering::Relaxed);
        match publish_steps(s.words(), &mut p, &mut steps).unwrap() {
            Ok(got) => assert_eq!(got, seq),
            Err(Stopped) => {
                p = claim_producer(s.words()).unwrap();
                steps = StopAfter(None);
            }
        }
    }
    p.seq
}

/// Checks the consumer's front slot against what it was told.
fn check_front(s: &Shared, c: &Consumer) {
    if let (Some(front), true) = (c.front, c.seq > 0) {
        let (seq, check) = s.slots[front as usize].with(|v| {
            // SAFETY: the consumer holds its front slot (what the model checks).
            unsafe { *v }
        });
        assert_eq!(seq, c.seq, "the front slot holds the update it was given");
        assert_eq!(check, seq * 7, "torn read");
    }
}

/// Consumer `index` making `fetches` fetches, killed after `stop` steps and replaced.
fn consumer(s: &Shared, index: u32, fetches: usize, stop: Option<u32>) -> Consumer {
    let mut c = claim_consumer(s.words(), index).unwrap();
    let mut steps = StopAfter(stop);
    for _ in 0..fetches {
        let before = c.seq;
        match fetch_steps(s.words(), &mut c, &mut steps).unwrap() {
            Ok(Fetched::Empty) => assert_eq!(c.seq, 0),
            Ok(Fetched::Unchanged) => assert_eq!(c.seq, before),
            Ok(Fetched::New { missed }) => assert_eq!(c.seq, before + missed + 1),
            Err(Stopped) => {
                c = claim_consumer(s.words(), index).unwrap();
                steps = StopAfter(None);
                assert!(c.seq <= 3, "a successor's count is one the producer made");
            }
        }
        check_front(s, &c);
    }
    c
}

fn model(publishes: u64, fetches: usize, producer_stop: Option<u32>, consumer_stop: Option<u32>) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(move || {
        let s = Shared::new();
        let (s0, s1) = (s.clone(), s.clone());
        let prod = loom::thread::spawn(move || producer(&s0, publishes, producer_stop));
        let other = loom::thread::spawn(move || consumer(&s1, 1, fetches, None));
        let mut c = consumer(&s, 0, fetches, consumer_stop);
        assert_eq!(prod.join().unwrap(), publishes);
        let mut d = other.join().unwrap();
        // After the producer is done, one more fetch sees the final update, for both.
        for c in [&mut c, &mut d] {
            let _ = fetch(s.words(), c).unwrap();
            check_front(&s, c);
            assert_eq!(c.seq, publishes, "the last update is always delivered");
        }
    });
}

#[test]
fn loom_fanout_two_consumers() {
    model(3, 2, None, None);
}

#[test]
fn loom_fanout_producer_killed_at_every_step() {
    // A publish is at most 5 steps here (sequence word, load, up to 3 exchanges) plus the
    // table's: two publishes and the start of a third cover a kill before, inside and after
    // each.
    for stop in 0..9 {
        model(3, 2, Some(stop), None);
    }
}

#[test]
fn loom_fanout_consumer_killed_at_every_step() {
    // A fetch is at most 3 steps (load, take, seen).
    for stop in 0..7 {
        model(2, 3, None, Some(stop));
    }
}

#[test]
fn loom_fanout_a_consumer_that_stops_for_good_keeps_its_slot() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Shared::new();
        let s0 = s.clone();
        // Consumer 1 takes whatever is there and then never fetches again (slow or dead).
        let slow = loom::thread::spawn(move || {
            let mut c = claim_consumer(s0.words(), 1).unwrap();
            let _ = fetch(s0.words(), &mut c).unwrap();
            c
        });
        // Meanwhile the producer publishes four times, and consumer 0 keeps up.
        let s2 = s.clone();
        let fast = loom::thread::spawn(move || consumer(&s2, 0, 2, None));
        let published = producer(&s, 4, None);
        assert_eq!(published, 4);
        let held = slow.join().unwrap();
        // The slot it holds was never written while it held it.
        check_front(&s, &held);
        let mut c = fast.join().unwrap();
        let _ = fetch(s.words(), &mut c).unwrap();
        assert_eq!(c.seq, 4);
    });
}

/// An observer's copy of the newest update, or `None` when the check refused it.
fn observe_once(s: &Shared) -> Option<(u64, u64, u64)> {
    let o = observe(s.words()).unwrap()?;
    let b = o.slot as usize;
    // Relaxed: the copy races with the producer's writes; `observed` decides.
    let copy = (
        s.mirror[b][0].load(Ordering::Relaxed),
        s.mirror[b][1].load(Ordering::Relaxed),
    );
    observed(s.words(), o).then_some((o.seq, copy.0, copy.1))
}

#[test]
fn loom_fanout_observer_lapped_during_its_copy() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Shared::new();
        let s0 = s.clone();
        // Three publishes: an observer that copies the first can see its slot written for the
        // third while it copies.
        let prod = loom::thread::spawn(move || producer(&s0, 3, None));
        let s1 = s.clone();
        let cons = loom::thread::spawn(move || consumer(&s1, 0, 1, None));
        let mut last = 0;
        for _ in 0..2 {
            // Let the others run first: without it, loom's first schedule runs this thread
            // to the end before them and the bounded search never gets the observer a value.
            loom::thread::yield_now();
            if let Some((seq, a, b)) = observe_once(&s) {
                assert_eq!((a, b), (seq, seq * 7), "an accepted copy is whole");
                assert!(seq >= last, "observations never go back");
                last = seq;
            }
        }
        prod.join().unwrap();
        cons.join().unwrap();
        let (seq, a, b) = observe_once(&s).expect("nothing moves any more");
        assert_eq!((seq, a, b), (3, 3, 21));
    });
}

//! Model checks of the triple buffer, with sides that stop at every step and a successor that
//! takes over from the shared word alone.

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use super::*;
use crate::sync::{StopAfter, Stopped};

/// Each slot holds (sequence, sequence * 7): a torn or foreign read is detectable, and loom's
/// `UnsafeCell` fails the model on any access to a slot that races with a write.
struct Shared {
    state: AtomicU64,
    seqs: [AtomicU64; 3],
    slots: [UnsafeCell<(u64, u64)>; 3],
    /// A copy of each slot in atomic words, for observers, whose reads race with the
    /// producer's writes as the real observer's copy does.
    mirror: [[AtomicU64; 2]; 3],
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            state: AtomicU64::new(initial_word()),
            seqs: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            slots: [
                UnsafeCell::new((0, 0)),
                UnsafeCell::new((0, 0)),
                UnsafeCell::new((0, 0)),
            ],
            mirror: std::array::from_fn(|_| [AtomicU64::new(0), AtomicU64::new(0)]),
        })
    }

    fn words(&self) -> Words<'_> {
        Words {
            state: &self.state,
            seqs: &self.seqs,
        }
    }
}

/// A producer publishing `publishes` updates, killed after `stop` steps and replaced by a
/// successor that claims the end from the word and publishes the rest.
fn producer(s: &Shared, publishes: u64, stop: Option<u32>) -> u64 {
    let mut p = claim_producer(s.words()).unwrap();
    let mut steps = StopAfter(stop);
    let mut done = 0;
    while done < publishes {
        let seq = p.seq + 1;
        s.slots[p.back as usize].with_mut(|v| {
            // SAFETY: the producer owns its back slot exclusively (what the model checks).
            unsafe { *v = (seq, seq * 7) }
        });
        // Relaxed, as plain writes to the slot: the observers' copies race with them.
        s.mirror[p.back as usize][0].store(seq, Ordering::Relaxed);
        s.mirror[p.back as usize][1].store(seq * 7, Ordering::Relaxed);
        match publish_steps(s.words(), &mut p, &mut steps).unwrap() {
            Ok(got) => {
                assert_eq!(got, seq);
                done += 1;
            }
            Err(Stopped) => {
                // Killed: a successor takes over from the shared word alone.
                p = claim_producer(s.words()).unwrap();
                steps = StopAfter(None);
                done = p.seq;
            }
        }
    }
    p.seq
}

/// Checks the consumer's front slot against what it was told.
fn check_front(s: &Shared, c: &Consumer) {
    if c.seq > 0 {
        let (seq, check) = s.slots[c.front as usize].with(|v| {
            // SAFETY: the consumer owns its front slot exclusively (what the model checks).
            unsafe { *v }
        });
        assert_eq!(seq, c.seq, "the front slot holds the update it was given");
        assert_eq!(check, seq * 7, "torn read");
    }
}

/// A consumer making `fetches` fetches, killed after `stop` steps and replaced by a successor.
fn consumer(s: &Shared, fetches: usize, stop: Option<u32>) -> Consumer {
    let mut c = claim_consumer(s.words()).unwrap();
    let mut steps = StopAfter(stop);
    for _ in 0..fetches {
        let before = c.seq;
        match fetch_steps(s.words(), &mut c, &mut steps).unwrap() {
            Ok(Fetched::Empty) => assert_eq!(c.seq, 0),
            Ok(Fetched::Unchanged) => assert_eq!(c.seq, before),
            Ok(Fetched::New { missed }) => assert_eq!(c.seq, before + missed + 1),
            Err(Stopped) => {
                c = claim_consumer(s.words()).unwrap();
                steps = StopAfter(None);
                assert!(c.seq >= before, "a successor never goes back");
            }
        }
        check_front(s, &c);
    }
    c
}

fn model(publishes: u64, fetches: usize, producer_stop: Option<u32>, consumer_stop: Option<u32>) {
    loom::model(move || {
        let s = Shared::new();
        let ps = s.clone();
        let prod = loom::thread::spawn(move || producer(&ps, publishes, producer_stop));
        let mut c = consumer(&s, fetches, consumer_stop);
        let last = prod.join().unwrap();
        assert_eq!(last, publishes);
        // After the producer is done, one more fetch sees the final update.
        let _ = fetch(s.words(), &mut c).unwrap();
        check_front(&s, &c);
        assert_eq!(c.seq, publishes, "the last update is always delivered");
    });
}

#[test]
fn loom_triple_buffer_two_publishes_two_fetches() {
    model(2, 2, None, None);
}

#[test]
fn loom_triple_buffer_three_publishes_two_fetches() {
    model(3, 2, None, None);
}

#[test]
fn loom_triple_buffer_producer_killed_at_every_step() {
    // A publish is at most 5 steps (the sequence word, up to 4 exchanges); two publishes and
    // the first steps of a third cover a kill before, inside and after each.
    for stop in 0..8 {
        model(3, 2, Some(stop), None);
    }
}

#[test]
fn loom_triple_buffer_consumer_killed_at_every_step() {
    // A fetch is at most 4 steps (load, exchange, request, exchange).
    for stop in 0..8 {
        model(2, 3, None, Some(stop));
    }
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
fn loom_triple_buffer_observer_lapped_during_its_copy() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Shared::new();
        let s0 = s.clone();
        // Three publishes: an observer that copies the first can see its slot written for the
        // third while it copies.
        let prod = loom::thread::spawn(move || producer(&s0, 3, None));
        let s1 = s.clone();
        let cons = loom::thread::spawn(move || consumer(&s1, 1, None));
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

//! Model checks of the queue, with sides that stop at every step and a successor that takes
//! over from the shared words alone.

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use super::*;
use crate::sync::{StopAfter, Stopped};

/// Each slot holds (position + 1, check): a torn or foreign read is detectable, and loom's
/// `UnsafeCell` fails the model on any access to a slot that races with a write.
struct Shared {
    cells: Vec<AtomicU64>,
    headers: Vec<AtomicU64>,
    words: [AtomicU64; 5],
    slots: Vec<UnsafeCell<(u64, u64)>>,
    /// A copy of each slot in atomic words, for observers, whose reads race with the
    /// producer's writes as the real observer's copy does.
    mirror: Vec<[AtomicU64; 2]>,
}

impl Shared {
    fn new(capacity: u64) -> Arc<Shared> {
        let mut cells = Vec::new();
        for i in 0..capacity {
            let (pos, st) = initial_cell(i, capacity);
            cells.push(AtomicU64::new(pos));
            cells.push(AtomicU64::new(st));
        }
        let (p, c) = initial_records(capacity);
        Arc::new(Shared {
            cells,
            headers: (0..capacity + 2)
                .map(|_| AtomicU64::new(NO_MESSAGE))
                .collect(),
            words: [
                AtomicU64::new(0),
                AtomicU64::new(p),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(c),
            ],
            slots: (0..capacity + 2).map(|_| UnsafeCell::new((0, 0))).collect(),
            mirror: (0..capacity + 2)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        })
    }

    fn w(&self) -> Words<'_> {
        Words {
            cells: &self.cells,
            headers: &self.headers,
            head: &self.words[0],
            producer: &self.words[1],
            tail: &self.words[2],
            pending: &self.words[3],
            consumer: &self.words[4],
        }
    }
}

/// Pushes until `messages` messages are in, killed after `stop` steps and replaced by a
/// successor that claims the end from the words.
fn producer(s: &Shared, messages: u64, force: bool, stop: Option<u32>) -> u64 {
    let mut p = claim_producer(&s.w()).unwrap();
    let mut steps = StopAfter(stop);
    let mut tries = 0;
    while p.head < messages && tries < 2 * messages + 2 {
        tries += 1;
        let number = p.head + 1;
        s.slots[p.slot as usize].with_mut(|v| {
            // SAFETY: the producer owns its slot exclusively (what the model checks).
            unsafe { *v = (number, number * 7) }
        });
        // Relaxed, as plain writes to the slot: the observers' copies race with them.
        s.mirror[p.slot as usize][0].store(number, Ordering::Relaxed);
        s.mirror[p.slot as usize][1].store(number * 7, Ordering::Relaxed);
        match push_steps(&s.w(), &mut p, force, &mut steps).unwrap() {
            Ok(_) => {}
            Err(Stopped) => {
                p = claim_producer(&s.w()).unwrap();
                steps = StopAfter(None);
            }
        }
    }
    p.head
}

fn consumer(s: &Shared, pops: usize, stop: Option<u32>) -> (Consumer, u64) {
    let mut c = claim_consumer(&s.w()).unwrap();
    let mut steps = StopAfter(stop);
    let mut last = 0;
    // Whether a successor took over: its first pop may pass over a message its predecessor
    // took, which is neither delivered nor missed.
    let mut replaced = false;
    for _ in 0..pops {
        let before = c.tail;
        match pop_steps(&s.w(), &mut c, &mut steps).unwrap() {
            Ok(Popped::Message { pos, missed }) => {
                let (n, chk) = s.slots[c.slot as usize].with(|v| {
                    // SAFETY: the consumer owns the slot of its last message.
                    unsafe { *v }
                });
                assert_eq!(n, pos + 1, "the slot holds the popped message");
                assert_eq!(chk, n * 7, "torn read");
                assert!(n > last, "order preserved");
                assert!(missed <= pos, "missed counts only earlier messages");
                if !replaced {
                    assert_eq!(missed, pos - before, "every position passed over is missed");
                }
                last = n;
            }
            Ok(Popped::Empty) => {}
            Err(Stopped) => {
                c = claim_consumer(&s.w()).unwrap();
                steps = StopAfter(None);
                last = last.max(c.tail);
                replaced = true;
            }
        }
    }
    (c, last)
}

fn model(capacity: u64, messages: u64, pops: usize, force: bool, ps: Option<u32>, cs: Option<u32>) {
    loom::model(move || {
        let s = Shared::new(capacity);
        let s2 = s.clone();
        let prod = loom::thread::spawn(move || producer(&s2, messages, force, ps));
        let (mut c, mut last) = consumer(&s, pops, cs);
        let sent = prod.join().unwrap();
        // Drain what is left: the newest message always arrives, and every position before it
        // was delivered or counted missed.
        let mut before = c.tail;
        while let Popped::Message { pos, missed } = pop(&s.w(), &mut c).unwrap() {
            assert_eq!(missed, pos - before, "every position passed over is missed");
            before = c.tail;
            let (n, chk) = s.slots[c.slot as usize].with(|v| {
                // SAFETY: the producer is done; the consumer owns the slot.
                unsafe { *v }
            });
            assert_eq!((n, chk), (pos + 1, (pos + 1) * 7));
            last = n;
        }
        if force {
            assert_eq!(last, sent, "the newest message always arrives");
        }
    });
}

#[test]
fn loom_queue_force_push_overwrites_and_wraps() {
    model(2, 4, 2, true, None, None);
}

#[test]
fn loom_queue_try_push_full_and_empty() {
    model(2, 3, 2, false, None, None);
}

#[test]
fn loom_queue_capacity_one_slot_handover() {
    model(1, 3, 2, true, None, None);
}

#[test]
fn loom_queue_producer_killed_at_every_step() {
    for stop in 0..10 {
        model(1, 2, 2, true, Some(stop), None);
    }
}

#[test]
fn loom_queue_consumer_killed_at_every_step() {
    for stop in 0..8 {
        model(1, 3, 2, true, None, Some(stop));
    }
}

/// An observer following the queue from position 0: what it accepted, in order, and how many
/// positions it counted as missed.
fn observer(s: &Shared, looks: usize) -> (Vec<u64>, u64) {
    let (mut q, mut seen, mut missed) = (0u64, Vec::new(), 0);
    for _ in 0..looks {
        // Let the others run first (see the state models).
        loom::thread::yield_now();
        match observe(&s.w(), q) {
            Sighting::NotYet => {}
            Sighting::Gone { pos } => {
                missed += pos + 1 - q;
                q = pos + 1;
            }
            Sighting::At { pos, slot } => {
                // Relaxed: the copy races with the producer's writes; `observed` decides.
                let copy = (
                    s.mirror[slot as usize][0].load(Ordering::Relaxed),
                    s.mirror[slot as usize][1].load(Ordering::Relaxed),
                );
                if observed(&s.w(), pos, slot) {
                    assert_eq!(copy, (pos + 1, (pos + 1) * 7), "an accepted copy is whole");
                    missed += pos - q;
                    seen.push(pos);
                    q = pos + 1;
                }
            }
        }
    }
    (seen, missed)
}

/// An observer beside a producer of `messages` messages into a queue of capacity 1 and, with
/// `pops`, a consumer: every copy it accepts is whole and in order, and once everything has
/// stopped it accounts for every position.
fn observer_model(messages: u64, pops: usize, bound: usize) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(move || {
        let s = Shared::new(1);
        let s0 = s.clone();
        let prod = loom::thread::spawn(move || producer(&s0, messages, true, None));
        let s1 = s.clone();
        let cons = (pops > 0).then(|| loom::thread::spawn(move || consumer(&s1, pops, None)));
        let (seen, missed) = observer(&s, 2);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order");
        assert!(
            missed + seen.len() as u64 <= messages,
            "no position counted twice"
        );
        prod.join().unwrap();
        if let Some(c) = cons {
            c.join().unwrap();
        }
        // Once everything stopped, the observer reaches the end and counts exactly.
        let (seen, missed) = observer(&s, 4);
        assert_eq!(
            missed + seen.len() as u64,
            messages,
            "every position reported or missed"
        );
        assert_eq!(
            seen.last(),
            Some(&(messages - 1)),
            "the newest message is still there"
        );
    });
}

#[test]
fn loom_queue_observer_lapped_during_its_copy() {
    // The producer takes the very slot the observer copies (capacity 1, `force_push`).
    observer_model(3, 0, 3);
}

#[test]
fn loom_queue_observer_beside_a_consumer() {
    // The consumer's record and the cell disagree while it pops: the observer must not take
    // the wrong candidate. Two messages and two preemptions keep the three-thread model small
    // enough.
    observer_model(2, 1, 2);
}

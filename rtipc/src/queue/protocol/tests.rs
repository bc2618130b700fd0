//! Sequential tests of the queue protocol, its recovery, and every word a peer could write.

use super::*;
use crate::sync::Stopped;

struct Shared {
    cells: Vec<AtomicU64>,
    headers: Vec<AtomicU64>,
    words: [AtomicU64; 5],
}

impl Shared {
    fn new(capacity: u64) -> Shared {
        let mut cells = Vec::new();
        for i in 0..capacity {
            let (pos, st) = initial_cell(i, capacity);
            cells.push(AtomicU64::new(pos));
            cells.push(AtomicU64::new(st));
        }
        let (p, c) = initial_records(capacity);
        Shared {
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
        }
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

    /// Every slot is owned exactly once: by a cell, the producer or the consumer.
    fn owned_once(&self, p: &Producer, c: &Consumer) {
        let mut owned: Vec<u64> = (0..self.cells.len() / 2)
            .map(|i| slot_of(self.cells[2 * i + 1].load(Ordering::Relaxed)))
            .collect();
        owned.push(p.slot);
        owned.push(c.slot);
        owned.sort();
        assert_eq!(owned, (0..self.headers.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn empty_full_overwrite_and_wrap() {
    let s = Shared::new(4);
    let mut p = claim_producer(&s.w()).unwrap();
    let mut c = claim_consumer(&s.w()).unwrap();
    assert_eq!(pop(&s.w(), &mut c), Ok(Popped::Empty));
    for _ in 0..4 {
        assert_eq!(
            push(&s.w(), &mut p, false),
            Ok(Pushed::Done { overwrote: false })
        );
    }
    assert_eq!(push(&s.w(), &mut p, false), Ok(Pushed::Full));
    for _ in 0..2 {
        assert_eq!(
            push(&s.w(), &mut p, true),
            Ok(Pushed::Done { overwrote: true })
        );
    }
    // After an overwrite, `try_push` says full, it does not call the queue corrupt.
    assert_eq!(push(&s.w(), &mut p, false), Ok(Pushed::Full));
    for (pos, missed) in [(2, 2), (3, 0), (4, 0), (5, 0)] {
        assert_eq!(
            pop(&s.w(), &mut c),
            Ok(Popped::Message { pos, missed }),
            "pop of {pos}"
        );
    }
    assert_eq!(pop(&s.w(), &mut c), Ok(Popped::Empty));
    for i in 6..1000 {
        assert!(matches!(
            push(&s.w(), &mut p, false),
            Ok(Pushed::Done { overwrote: false })
        ));
        assert_eq!(
            pop(&s.w(), &mut c),
            Ok(Popped::Message { pos: i, missed: 0 })
        );
    }
    s.owned_once(&p, &c);
}

#[test]
fn a_consumer_lapped_many_times_reads_exact_positions() {
    let s = Shared::new(4);
    let mut c = claim_consumer(&s.w()).unwrap();
    // Far more than 2^39 positions would take too long; start the ring just before a multiple
    // of 2^39 instead, as a producer that has run that long would have left it.
    let start = (1u64 << 39) * 3 - 4;
    for i in 0..4u64 {
        let pos = start + i - 4;
        s.cells[2 * i as usize].store(pos, Ordering::Relaxed);
        s.cells[2 * i as usize + 1].store(cell(true, pos, i), Ordering::Relaxed);
    }
    s.words[0].store(start, Ordering::Relaxed);
    let mut p = claim_producer(&s.w()).unwrap();
    for _ in 0..10 {
        push(&s.w(), &mut p, true).unwrap();
    }
    match pop(&s.w(), &mut c) {
        Ok(Popped::Message { pos, missed }) => {
            assert_eq!(pos, start + 6, "the oldest message still in the ring");
            assert_eq!(missed, pos, "everything before it is missed");
        }
        other => panic!("{other:?}"),
    }
    s.owned_once(&p, &c);
}

#[test]
fn successors_resolve_every_kill_point_of_a_push() {
    // Kill a producer after each step of a push; the successor must hold exactly one slot that
    // no cell holds, and the message must be pushed at most once.
    for stop in 0..9 {
        let s = Shared::new(2);
        let mut p = claim_producer(&s.w()).unwrap();
        let mut c = claim_consumer(&s.w()).unwrap();
        push(&s.w(), &mut p, true).unwrap();
        struct Stop(u32);
        impl Steps for Stop {
            type Stop = Stopped;
            fn next(&mut self) -> Result<(), Stopped> {
                let go = self.0 > 0;
                self.0 = self.0.saturating_sub(1);
                if go {
                    Ok(())
                } else {
                    Err(Stopped)
                }
            }
        }
        let _ = push_steps(&s.w(), &mut p, true, &mut Stop(stop)).unwrap();
        let mut p2 = claim_producer(&s.w()).unwrap();
        s.owned_once(&p2, &c);
        push(&s.w(), &mut p2, true).unwrap();
        let mut last = 0;
        while let Ok(Popped::Message { pos, .. }) = pop(&s.w(), &mut c) {
            assert!(pos >= last);
            last = pos;
        }
        assert_eq!(last + 1, p2.head, "stop {stop}: the newest message arrives");
        s.owned_once(&p2, &c);
    }
}

#[test]
fn successors_resolve_every_kill_point_of_a_pop() {
    for stop in 0..7 {
        for pushes_after in [0, 1, 2, 5] {
            let s = Shared::new(2);
            let mut p = claim_producer(&s.w()).unwrap();
            let mut c = claim_consumer(&s.w()).unwrap();
            push(&s.w(), &mut p, true).unwrap();
            push(&s.w(), &mut p, true).unwrap();
            struct Stop(u32);
            impl Steps for Stop {
                type Stop = Stopped;
                fn next(&mut self) -> Result<(), Stopped> {
                    let go = self.0 > 0;
                    self.0 = self.0.saturating_sub(1);
                    if go {
                        Ok(())
                    } else {
                        Err(Stopped)
                    }
                }
            }
            let _ = pop_steps_with(&s.w(), &mut c, &mut Stop(stop), |_| {}).unwrap();
            // The producer goes on while the consumer is dead, lapping its cell.
            for _ in 0..pushes_after {
                push(&s.w(), &mut p, true).unwrap();
            }
            let mut c2 = claim_consumer(&s.w()).unwrap();
            s.owned_once(&p, &c2);
            for _ in 0..3 {
                push(&s.w(), &mut p, true).unwrap();
                let _ = pop(&s.w(), &mut c2).unwrap();
                s.owned_once(&p, &c2);
            }
        }
    }
}

#[test]
fn every_probed_word_is_a_value_or_an_error() {
    let probes = [
        0,
        1,
        2,
        3,
        u64::MAX,
        u64::MAX - 1,
        1 << 38,
        (1 << 38) - 1,
        (1 << 38) + 1,
        1 << 39,
        PENDING | 1,
        0x5555_5555_5555_5555,
    ];
    for word in 0..5 {
        for &v in &probes {
            let s = Shared::new(3);
            s.words[word].store(v, Ordering::Relaxed);
            if let Ok(mut p) = claim_producer(&s.w()) {
                let _ = push(&s.w(), &mut p, false);
                let _ = push(&s.w(), &mut p, true);
            }
            if let Ok(mut c) = claim_consumer(&s.w()) {
                let _ = pop(&s.w(), &mut c);
                let _ = latest(&s.w(), &mut c, v, |_| {});
            }
        }
    }
    for i in 0..6 {
        for &v in &probes {
            let s = Shared::new(3);
            s.cells[i].store(v, Ordering::Relaxed);
            s.headers[i % 5].store(v, Ordering::Relaxed);
            let mut p = claim_producer(&s.w()).unwrap();
            let mut c = claim_consumer(&s.w()).unwrap();
            for _ in 0..4 {
                let _ = push(&s.w(), &mut p, true);
                let _ = pop(&s.w(), &mut c);
            }
        }
    }
}

#[test]
fn bad_words_are_errors() {
    let s = Shared::new(2);
    let mut p = claim_producer(&s.w()).unwrap();
    s.cells[1].store(7, Ordering::Relaxed);
    assert!(push(&s.w(), &mut p, true).is_err(), "slot out of range");
    let s = Shared::new(2);
    let mut p = claim_producer(&s.w()).unwrap();
    s.words[2].store(100, Ordering::Relaxed);
    assert!(push(&s.w(), &mut p, false).is_err(), "tail ahead of head");
}

#[test]
fn try_push_reads_the_tail_only_when_the_queue_looks_full() {
    let s = Shared::new(4);
    let w = &s.w();
    let mut p = claim_producer(w).unwrap();
    let mut c = claim_consumer(w).unwrap();
    for _ in 0..4 {
        assert_eq!(
            push(w, &mut p, false),
            Ok(Pushed::Done { overwrote: false })
        );
    }
    assert_eq!(push(w, &mut p, false), Ok(Pushed::Full));
    // A successor of a producer that left a full queue refuses too: it reads the tail first.
    let mut p2 = claim_producer(w).unwrap();
    assert_eq!(push(w, &mut p2, false), Ok(Pushed::Full));
    assert!(matches!(
        pop(w, &mut c),
        Ok(Popped::Message { pos: 0, missed: 0 })
    ));
    assert_eq!(
        push(w, &mut p2, false),
        Ok(Pushed::Done { overwrote: false })
    );
    assert_eq!(push(w, &mut p2, false), Ok(Pushed::Full));
    // While the tail it saw leaves room, a push does not read the tail: a tail moved backwards
    // by a hostile peer is noticed only when the queue looks full, and then as an error.
    for _ in 0..4 {
        assert!(matches!(pop(w, &mut c), Ok(Popped::Message { .. })));
    }
    assert_eq!(
        push(w, &mut p2, false),
        Ok(Pushed::Done { overwrote: false })
    );
    s.words[2].store(100, Ordering::Relaxed);
    for _ in 0..3 {
        assert_eq!(
            push(w, &mut p2, false),
            Ok(Pushed::Done { overwrote: false })
        );
    }
    assert_eq!(
        push(w, &mut p2, false),
        Err(bad(100, CorruptWord::QueueTail)),
        "the tail is ahead of the head"
    );
    s.owned_once(&p2, &c);
}

#[test]
fn the_kept_cell_is_the_position_modulo_the_capacity_across_2_64() {
    // Each side steps its cell instead of dividing; a capacity that does not divide 2^64 puts
    // 2^64 - 1 and 0 in the same cell, and the step must agree with the division there too.
    for capacity in 1..=7u64 {
        let s = Shared::new(capacity);
        let w = &s.w();
        let from = u64::MAX - 2 * capacity;
        let mut cell = w.cell_of(from);
        let mut at = from;
        for _ in 0..4 * capacity {
            at = at.wrapping_add(1);
            cell = w.next_cell(cell, at);
            assert_eq!(cell, at % capacity, "capacity {capacity}, position {at:#x}");
        }
    }
}

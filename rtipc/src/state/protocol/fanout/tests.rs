//! Sequential tests of the fan-out protocol, its recovery, and every word a peer could write.

use super::*;

struct Shared {
    latest: AtomicU64,
    seqs: Vec<AtomicU64>,
    table: Vec<AtomicU64>,
    seen: Vec<AtomicU64>,
}

impl Shared {
    fn new(consumers: usize) -> Shared {
        Shared {
            latest: AtomicU64::new(initial_latest()),
            seqs: (0..consumers + 2).map(|_| AtomicU64::new(0)).collect(),
            table: (0..consumers).map(|_| AtomicU64::new(NONE)).collect(),
            seen: (0..consumers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn w(&self) -> Words<'_> {
        Words {
            latest: &self.latest,
            seqs: &self.seqs,
            table: &self.table,
            seen: &self.seen,
            seen_stride: 1,
        }
    }
}

/// The slots held by consumers (their fronts), the latest, and the producer's back: the back
/// is never any of the others.
fn back_is_free(s: &Shared, p: &Producer, consumers: &[Consumer]) {
    let latest = s.latest.load(Ordering::Relaxed) & SLOT_MASK;
    assert_ne!(p.back, latest, "the back slot is not the latest");
    for c in consumers {
        assert_ne!(
            Some(p.back),
            c.front,
            "consumer {} holds the back slot",
            c.index
        );
    }
}

#[test]
fn each_consumer_takes_the_newest_and_counts_what_it_missed() {
    let s = Shared::new(3);
    let w = s.w();
    let mut p = claim_producer(w).unwrap();
    let mut cs: Vec<Consumer> = (0..3).map(|k| claim_consumer(w, k).unwrap()).collect();
    assert_eq!(fetch(w, &mut cs[0]), Ok(Fetched::Empty));
    for seq in 1..=10 {
        assert_eq!(publish(w, &mut p), Ok(seq));
        back_is_free(&s, &p, &cs);
        // Consumer 0 takes every update, 1 every other one, 2 only at the end.
        assert_eq!(fetch(w, &mut cs[0]), Ok(Fetched::New { missed: 0 }));
        assert_eq!(fetch(w, &mut cs[0]), Ok(Fetched::Unchanged));
        if seq % 2 == 0 {
            assert_eq!(fetch(w, &mut cs[1]), Ok(Fetched::New { missed: 1 }));
        }
        back_is_free(&s, &p, &cs);
    }
    assert_eq!(fetch(w, &mut cs[2]), Ok(Fetched::New { missed: 9 }));
    for c in &cs {
        assert_eq!(c.seq, 10);
        assert_eq!(s.seen[c.index as usize].load(Ordering::Relaxed), 10);
    }
}

#[test]
fn a_consumer_that_never_fetches_again_keeps_its_slot() {
    let s = Shared::new(2);
    let w = s.w();
    let mut p = claim_producer(w).unwrap();
    let mut slow = claim_consumer(w, 1).unwrap();
    let mut fast = claim_consumer(w, 0).unwrap();
    publish(w, &mut p).unwrap();
    assert_eq!(fetch(w, &mut slow), Ok(Fetched::New { missed: 0 }));
    let held = slow.front.unwrap();
    for _ in 0..100 {
        publish(w, &mut p).unwrap();
        assert_ne!(p.back, held);
        fetch(w, &mut fast).unwrap();
        back_is_free(&s, &p, &[slow, fast]);
    }
}

#[test]
fn successors_take_over_from_the_words() {
    let s = Shared::new(2);
    let w = s.w();
    let mut p = claim_producer(w).unwrap();
    let mut c = claim_consumer(w, 0).unwrap();
    for _ in 0..5 {
        publish(w, &mut p).unwrap();
    }
    fetch(w, &mut c).unwrap();
    // A new consumer 0 holds what its predecessor took; a new consumer 1 nothing, and counts
    // from what its predecessor saw (nothing).
    let c2 = claim_consumer(w, 0).unwrap();
    assert_eq!((c2.front, c2.seq), (c.front, 5));
    let mut d = claim_consumer(w, 1).unwrap();
    assert_eq!((d.front, d.seq), (None, 0));
    // A new producer continues the numbering and keeps away from the held slots.
    let mut p2 = claim_producer(w).unwrap();
    assert_eq!(p2.seq, 5);
    back_is_free(&s, &p2, &[c2, d]);
    assert_eq!(publish(w, &mut p2), Ok(6));
    assert_eq!(fetch(w, &mut d), Ok(Fetched::New { missed: 5 }));
}

#[test]
fn a_producer_killed_between_exchange_and_table_is_repaired_by_its_successor() {
    let s = Shared::new(2);
    let w = s.w();
    let mut p = claim_producer(w).unwrap();
    let mut c = claim_consumer(w, 0).unwrap();
    publish(w, &mut p).unwrap();
    fetch(w, &mut c).unwrap();
    // The second publish exchanges the word, then stops before recording who held what.
    struct StopAt(u32);
    impl Steps for StopAt {
        type Stop = ();
        fn next(&mut self) -> Result<(), ()> {
            if self.0 == 0 {
                return Err(());
            }
            self.0 -= 1;
            Ok(())
        }
    }
    assert_eq!(publish_steps(w, &mut p, &mut StopAt(3)), Ok(Err(())));
    assert_eq!(s.table[0].load(Ordering::Relaxed), NONE, "not recorded");
    let p2 = claim_producer(w).unwrap();
    assert_eq!(s.table[0].load(Ordering::Relaxed), c.front.unwrap());
    back_is_free(&s, &p2, &[c]);
}

#[test]
fn bad_words_are_errors() {
    let s = Shared::new(2);
    let w = s.w();
    for bad in [
        u64::MAX,
        4,                                       // slot 4 of 4 slots
        0,                                       // slot 0, previous 0
        1 << 42,                                 // reserved bits
        1 << PREV_SHIFT | 1 << (TOOK_SHIFT + 2), // a consumer that does not exist
    ] {
        s.latest.store(bad, Ordering::Relaxed);
        assert!(claim_producer(w).is_err(), "{bad:#x}");
        assert!(claim_consumer(w, 0).is_err(), "{bad:#x}");
        let mut c = Consumer {
            index: 0,
            front: None,
            seq: 0,
        };
        assert!(fetch(w, &mut c).is_err(), "{bad:#x}");
        assert!(observe(w).is_err(), "{bad:#x}");
    }
}

/// Every value a peer could leave in any word: the calls return a value or an error.
#[test]
fn every_probed_word_is_a_value_or_an_error() {
    let values = [
        0,
        1,
        2,
        3,
        NONE,
        NONE - 1,
        MAX_SEQ,
        1 << 38,
        (1 << 38) - 1,
        0x5555_5555_5555_5555,
        0xdead_beef_0bad_f00d,
    ];
    let words = 1 + 4 + 2 + 2;
    for word in 0..words {
        for &v in &values {
            let s = Shared::new(2);
            let w = s.w();
            let mut p = claim_producer(w).unwrap();
            let mut c = claim_consumer(w, 0).unwrap();
            publish(w, &mut p).unwrap();
            let target = match word {
                0 => &s.latest,
                1..=4 => &s.seqs[word - 1],
                5..=6 => &s.table[word - 5],
                _ => &s.seen[word - 7],
            };
            target.store(v, Ordering::Relaxed);
            let _ = fetch(w, &mut c);
            let _ = publish(w, &mut p);
            let _ = fetch(w, &mut c);
            let _ = observe(w).map(|o| o.map(|o| observed(w, o)));
            let _ = has_data(w, 1);
            if let Ok(mut p2) = claim_producer(w) {
                let _ = publish(w, &mut p2);
            }
            if let Ok(mut c2) = claim_consumer(w, 1) {
                let _ = fetch(w, &mut c2);
            }
        }
    }
}

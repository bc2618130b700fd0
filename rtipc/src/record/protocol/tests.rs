//! The record protocol in one thread, against a `VecDeque` model: random sequences of
//! reserve, commit, abandon, pop and release, lossless and overwriting, across many wraps.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::test_ring::Ring;
use super::*;

fn geometry() -> Geometry {
    // 8-byte elements, records of up to 6 elements (64 bytes), a ring of 256 bytes.
    Geometry {
        capacity: 256,
        align: 16,
        elem: 8,
        max_len: 6,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Commit(u64),
    Abandon(u64),
    Force(u64),
    Pop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..=6).prop_map(Op::Commit),
        (1u64..=6).prop_map(Op::Abandon),
        (1u64..=6).prop_map(Op::Force),
        Just(Op::Pop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// What is popped is exactly what the model says, in order, whole; refusals say how much
    /// is free; dropped records are counted as missed.
    #[test]
    fn matches_a_vecdeque_model(ops in prop::collection::vec(op(), 1..200)) {
        let r = Ring::new(&geometry());
        let g = r.g;
        let w = r.words();
        let mut p = claim_producer(w, &g).unwrap();
        let mut c = claim_consumer(w);
        // The model: (seq, len, bytes) of each unread record; bytes used by padding are not
        // modelled, so free space is checked only as a lower bound.
        let mut model: VecDeque<(u64, u64)> = VecDeque::new();
        let mut missed_expected = 0u64;
        for op in ops {
            match op {
                Op::Commit(n) | Op::Force(n) => {
                    let force = matches!(op, Op::Force(_));
                    match reserve(w, &mut p, &g, n, force) {
                        Ok(res) => {
                            for _ in 0..res.dropped {
                                model.pop_front();
                                missed_expected += 1;
                            }
                            r.fill(res.payload(&g), n, p.seq + 1);
                            let seq = commit(w, &mut p, &g, res);
                            model.push_back((seq, n));
                        }
                        Err(Refused::NoRoom { need: total, free }) => {
                            // Refused only when the record (and its padding) does not fit,
                            // and `free` is what the ring has: capacity minus what is unread.
                            prop_assert!(!force);
                            let off = p.tail % g.capacity;
                            let need = g.bytes(n);
                            let pad = if off + need > g.capacity { g.capacity - off } else { 0 };
                            prop_assert!(free < need + pad);
                            prop_assert_eq!(total, need + pad);
                            let head = r.head.load(Ordering::Relaxed);
                            prop_assert_eq!(free, g.capacity - (p.tail - head));
                        }
                        Err(e) => prop_assert!(false, "refused: {e:?}"),
                    }
                }
                Op::Abandon(n) => {
                    // A reservation dropped without a commit: nothing changes.
                    if let Ok(res) = reserve(w, &mut p, &g, n, false) {
                        r.fill(res.payload(&g), n, 0xDEAD);
                    }
                }
                Op::Pop => {
                    let got = pop(w, &mut c, &g).unwrap();
                    match (got, model.pop_front()) {
                        (None, None) => {}
                        (Some(x), Some((seq, len))) => {
                            prop_assert_eq!((x.seq, x.len), (seq, len));
                            prop_assert!(r.whole(x.payload(&g), x.len, x.seq));
                            prop_assert_eq!(x.missed, missed_expected);
                            missed_expected = 0;
                            release(w);
                        }
                        (got, want) => prop_assert!(false, "popped {got:?}, model {want:?}"),
                    }
                }
            }
        }
        // Everything left comes out in order.
        while let Some((seq, len)) = model.pop_front() {
            let x = pop(w, &mut c, &g).unwrap().unwrap();
            prop_assert_eq!((x.seq, x.len), (seq, len));
            prop_assert!(r.whole(x.payload(&g), x.len, x.seq));
            release(w);
        }
        prop_assert_eq!(pop(w, &mut c, &g).unwrap(), None);
    }
}

#[test]
fn a_held_record_is_never_overwritten_and_blocks_only_when_in_the_way() {
    let r = Ring::new(&geometry());
    let g = r.g;
    let w = r.words();
    let mut p = claim_producer(w, &g).unwrap();
    let mut c = claim_consumer(w);
    let res = reserve(w, &mut p, &g, 6, false).unwrap();
    r.fill(res.payload(&g), 6, 1);
    commit(w, &mut p, &g, res);
    let held = pop(w, &mut c, &g).unwrap().unwrap();
    // The overwrite form fills the ring over and over; the held record stays whole.
    let mut blocked = 0;
    for _ in 0..100 {
        match reserve(w, &mut p, &g, 3, true) {
            Ok(res) => {
                r.fill(res.payload(&g), 3, p.seq + 1);
                commit(w, &mut p, &g, res);
            }
            Err(Refused::Held { .. }) => blocked += 1,
            Err(e) => panic!("{e:?}"),
        }
        assert!(r.whole(held.payload(&g), 6, 1));
    }
    assert!(blocked > 0, "the held record was in the way at some point");
    release(w);
    // Released: the producer may go on.
    assert!(reserve(w, &mut p, &g, 6, true).is_ok());
}

/// A consumer that loaded `head`, then stalled while the producer dropped past that record and
/// wrote more than a ring on, stores the stale position in `reading` before its swap of
/// `head` fails. The producer must take that for what it is (the consumer holds nothing), not
/// for a corrupt word; and the consumer's swap must fail, so it never reads the overwritten
/// bytes.
#[test]
fn a_stale_reading_left_by_a_stalled_consumer_is_not_corruption() {
    let r = Ring::new(&geometry());
    let g = r.g;
    let w = r.words();
    let mut p = claim_producer(w, &g).unwrap();
    let mut c = claim_consumer(w);
    let send = |p: &mut Producer| {
        let res = reserve(w, p, &g, 3, true).unwrap();
        r.fill(res.payload(&g), 3, p.seq + 1);
        commit(w, p, &g, res);
    };
    send(&mut p);
    // The consumer loads the head here, then stalls...
    let stale = w.head.load(std::sync::atomic::Ordering::Relaxed);
    // ...while the producer drops past it and writes two rings on.
    while p.tail - stale <= 2 * g.capacity {
        send(&mut p);
    }
    // The consumer wakes and records the position it is about to take.
    w.reading.store(stale, std::sync::atomic::Ordering::Relaxed);
    for _ in 0..10 {
        send(&mut p);
    }
    // Its swap of `head` fails; it looks again and takes the oldest record left, whole.
    assert!(w
        .head
        .compare_exchange(
            stale,
            stale + g.align,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Relaxed
        )
        .is_err());
    w.reading.store(NONE, std::sync::atomic::Ordering::Relaxed);
    let x = pop(w, &mut c, &g).unwrap().unwrap();
    assert!(x.missed > 0);
    assert!(r.whole(x.payload(&g), x.len, x.seq));
    release(w);
    // A `reading` beyond the tail, or off the record alignment, is still refused.
    for bad in [p.tail + g.align, stale + 1] {
        w.reading.store(bad, std::sync::atomic::Ordering::Relaxed);
        let mut q = p;
        let mut fill = 0;
        let e = loop {
            match reserve(w, &mut q, &g, 3, true) {
                Ok(res) => {
                    commit(w, &mut q, &g, res);
                }
                Err(e) => break e,
            }
            fill += 1;
            assert!(fill < 1000, "refused at last");
        };
        assert!(matches!(e, Refused::Corrupt(_)), "{bad}: {e:?}");
    }
}

#[test]
fn hostile_headers_and_positions_are_errors() {
    let g = geometry();
    let r = Ring::new(&g);
    let w = r.words();
    let mut p = claim_producer(w, &g).unwrap();
    let mut c = claim_consumer(w);
    let res = reserve(w, &mut p, &g, 2, false).unwrap();
    commit(w, &mut p, &g, res);
    for (word, value) in [
        (0usize, 0u64),
        (0, 7),
        (0, u64::MAX),
        (0, PAD | 8),
        (1, 0),
        (1, 99),
    ] {
        let old = r.ring[word].swap(value, Ordering::Relaxed);
        let e = pop(w, &mut c, &g).unwrap_err();
        assert_eq!(e.reason, CorruptWord::RecordHeader, "{word} = {value}");
        r.ring[word].store(old, Ordering::Relaxed);
    }
    // Positions off a record boundary, the last one 8 bytes before the ring's end (its header
    // would reach past the ring): errors, never an index out of bounds.
    for (t, h) in [(g.capacity, g.capacity - 8), (40, 8), (g.capacity - 8, 0)] {
        r.tail.store(t, Ordering::Relaxed);
        r.head.store(h, Ordering::Relaxed);
        let e = pop(w, &mut c, &g).unwrap_err();
        assert_eq!(e.reason, CorruptWord::RecordPositions, "tail {t}, head {h}");
    }
    for (t, h) in [(1000, 0), (0, 16), (u64::MAX, 0)] {
        r.tail.store(t, Ordering::Relaxed);
        r.head.store(h, Ordering::Relaxed);
        assert!(pop(w, &mut c, &g).is_err() || t == h);
        assert!(matches!(
            reserve(w, &mut p, &g, 1, false),
            Err(Refused::Corrupt(_)) | Ok(_)
        ));
    }
}

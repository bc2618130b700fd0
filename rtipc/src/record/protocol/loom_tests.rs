//! Loom models of the record protocol: a producer and a consumer in two threads on a tiny ring,
//! across the wrap, lossless and overwriting, with the consumer holding records while the
//! producer drops others; a full ring, an empty one and an abandoned reservation; each side
//! killed at every step (`Steps`) and replaced by a successor that claims its end from the
//! words. Every record's payload word holds its sequence number; a torn or foreign payload, a
//! record out of order, a number skipped or given twice, or a miscount fails the model.

use loom::sync::Arc;

use super::test_ring::Ring;
use super::*;
use crate::sync::StopAfter;

/// A ring of 80 bytes, 16-byte header blocks, one 8-byte element per record: 32-byte
/// records, so the third record of a ring needs a 16-byte padding record at the wrap.
fn geometry() -> Geometry {
    Geometry {
        capacity: 80,
        align: 16,
        elem: 8,
        max_len: 1,
    }
}

/// Commits one record (its payload word is its sequence number) if there is room.
fn produce_one(r: &Ring, g: &Geometry, p: &mut Producer, force: bool) -> bool {
    produce_steps(r, g, p, force, &mut StopAfter(None)).expect("a producer that never stops")
}

/// Pops one record, checks it whole and in order, and releases it.
fn consume_one(r: &Ring, g: &Geometry, c: &mut Consumer) -> Option<u64> {
    let w = r.words();
    let x = pop(w, c, g).unwrap()?;
    let at = (x.payload(g) / 8) as usize;
    assert_eq!(r.ring[at].load(Ordering::Relaxed), x.seq, "whole");
    // Held: read again, with the producer possibly running in between.
    loom::thread::yield_now();
    assert_eq!(
        r.ring[at].load(Ordering::Relaxed),
        x.seq,
        "still whole while held"
    );
    release(w);
    Some(x.seq)
}

/// The producer commits `n` records, dropping what is in the way, while this thread takes one
/// and holds it; after the join this thread takes the rest. Each record taken is whole, they
/// come in order and the consumer ends at the last one committed. Returns the records taken
/// and the sum of their missed counts.
fn take_while_overwriting(
    r: &Arc<Ring>,
    g: &Geometry,
    mut p: Producer,
    c: &mut Consumer,
    n: usize,
) -> (Vec<u64>, u64) {
    let producer = {
        let r = Arc::clone(r);
        loom::thread::spawn(move || {
            let g = geometry();
            for _ in 0..n {
                produce_one(&r, &g, &mut p, true);
            }
        })
    };
    let w = r.words();
    let mut seen = Vec::new();
    seen.extend(consume_one(r, g, c));
    producer.join().unwrap();
    let mut missed = 0;
    while let Some(x) = pop(w, c, g).unwrap() {
        let at = (x.payload(g) / 8) as usize;
        assert_eq!(r.ring[at].load(Ordering::Relaxed), x.seq, "whole");
        missed += x.missed;
        seen.push(x.seq);
        release(w);
    }
    assert!(seen.windows(2).all(|s| s[0] < s[1]), "{seen:?}");
    assert_eq!(c.last, r.seq.load(Ordering::Relaxed));
    (seen, missed)
}

/// Records 1 and 2 committed and record 1 taken, before the model's threads start: the next
/// record wraps.
fn prefill(r: &Ring, g: &Geometry) -> (Producer, Consumer) {
    let w = r.words();
    let mut p = claim_producer(w, g).unwrap();
    let mut c = claim_consumer(w);
    assert!(produce_one(r, g, &mut p, false));
    assert!(produce_one(r, g, &mut p, false));
    assert_eq!(consume_one(r, g, &mut c), Some(1));
    (p, c)
}

/// Lossless, across the wrap: the producer commits record 3 (after a padding record) while the
/// consumer takes record 2 and perhaps 3; afterwards everything is there, whole, in order.
#[test]
fn loom_records_lossless_across_the_wrap() {
    loom::model(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let (mut p, mut c) = prefill(&r, &g);
        let producer = {
            let r = Arc::clone(&r);
            loom::thread::spawn(move || {
                assert!(
                    produce_one(&r, &geometry(), &mut p, false),
                    "room for record 3"
                );
            })
        };
        let mut got = Vec::new();
        for _ in 0..2 {
            got.extend(consume_one(&r, &g, &mut c));
        }
        producer.join().unwrap();
        got.extend(consume_one(&r, &g, &mut c));
        got.extend(consume_one(&r, &g, &mut c));
        assert_eq!(got, [2, 3]);
        assert_eq!(c.last, 3);
    });
}

/// Overwriting: the producer commits records 3 and 4 without waiting, dropping what is in the
/// way, while the consumer takes one record and holds it: the held record stays whole, and
/// what the consumer gets plus what it misses is every record.
#[test]
fn loom_records_overwrite_never_touches_the_held_record() {
    // Every interleaving with up to five forced preemptions: the exhaustive search passes too
    // but takes minutes; each race between the drops, the pop's swap and the release arises
    // within two or three switches (an `oldest = head` mutant fails with a bound of 3).
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(5);
    b.check(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let (p, mut c) = prefill(&r, &g);
        let (seen, missed) = take_while_overwriting(&r, &g, p, &mut c, 2);
        let produced = r.seq.load(Ordering::Relaxed);
        // Every record after 1 was either seen or counted as missed.
        let first_missed = seen.first().map_or(0, |&s| s - 2);
        assert_eq!(
            seen.len() as u64 + missed + first_missed,
            produced - 1,
            "{seen:?}"
        );
    });
}

/// A consumer that loads `head` and stalls while the producer drops past that record and
/// writes more than a ring on (records 3, 4 and 5, forced) stores a stale position in
/// `reading` for an instant: the producer must not take it for a corrupt word (it would panic
/// here), and the consumer's swap fails, so it only ever takes whole records, in order.
#[test]
fn loom_records_a_stalled_consumer_leaves_no_false_corruption() {
    // The race needs three switches: the consumer stops after its load of `head`, the
    // producer writes two records, the consumer stores `reading`, the producer reserves.
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(4);
    b.check(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let (p, mut c) = prefill(&r, &g);
        take_while_overwriting(&r, &g, p, &mut c, 3);
    });
}

/// Reserves and commits one record (payload word = its number), dropping the oldest if
/// `force`, stopping after `steps` allow; `Ok(false)` when there was no room.
fn produce_steps(
    r: &Ring,
    g: &Geometry,
    p: &mut Producer,
    force: bool,
    steps: &mut StopAfter,
) -> Result<bool, crate::sync::Stopped> {
    let w = r.words();
    let res = match reserve_steps(w, p, g, 1, force, steps) {
        Ok(Ok(res)) => res,
        Ok(Err(stop)) => return Err(stop),
        Err(Refused::NoRoom { .. }) | Err(Refused::Held { .. }) => return Ok(false),
        Err(e) => panic!("{e:?}"),
    };
    let at = (res.payload(g) / 8) as usize;
    // Relaxed: published by commit's release store of `tail`.
    r.ring[at].store(p.seq + 1, Ordering::Relaxed);
    commit_steps(w, p, g, res, steps)?;
    Ok(true)
}

/// A producer killed after `stop` steps of its commit of record 3 (which wraps), replaced by a
/// successor that claims the end from the words and commits record 3 if its predecessor did
/// not publish it, beside a consumer taking records: the consumer gets 2 and 3, whole, in
/// order, nothing missed, and no number is skipped or given twice.
#[test]
fn loom_records_producer_killed_at_every_step() {
    // Stops at the reservation (no drops: lossless), then before each of the commit's 7
    // stores, and never.
    for stop in (0..8).map(Some).chain([None]) {
        loom::model(move || {
            let g = geometry();
            let r = Arc::new(Ring::new(&g));
            let (mut p, mut c) = prefill(&r, &g);
            let producer = {
                let r = Arc::clone(&r);
                loom::thread::spawn(move || {
                    let g = geometry();
                    if produce_steps(&r, &g, &mut p, false, &mut StopAfter(stop)).is_err() {
                        p = claim_producer(r.words(), &g).expect("a successor claims");
                        assert!(p.seq == 2 || p.seq == 3, "{p:?}");
                        // The dead reservation was never published: its room is free again.
                        if p.seq == 2 {
                            assert!(
                                produce_steps(&r, &g, &mut p, false, &mut StopAfter(None)).unwrap()
                            );
                        }
                    }
                    assert_eq!(p.seq, 3);
                })
            };
            let mut got = Vec::new();
            got.extend(consume_one(&r, &g, &mut c));
            producer.join().unwrap();
            while let Some(s) = consume_one(&r, &g, &mut c) {
                got.push(s);
            }
            // consume_one asserts each payload whole and returns only records numbered one
            // after the last (pop's missed count is checked there too).
            assert_eq!(got, [2, 3], "stop {stop:?}");
            assert_eq!(r.seq.load(Ordering::Relaxed) & !COMMITTING, 3);
        });
    }
}

/// A consumer killed after `stop` steps of a pop, beside a producer committing record 3 (which
/// wraps), replaced by a successor that claims the end: every record is taken once at most,
/// whole, in order, and the successor counts what its predecessor took without recording it
/// as missed, so that taken + missed covers every record.
#[test]
fn loom_records_consumer_killed_at_every_step() {
    for stop in (0..5).map(Some).chain([None]) {
        loom::model(move || {
            let g = geometry();
            let r = Arc::new(Ring::new(&g));
            let (mut p, mut c) = prefill(&r, &g);
            let producer = {
                let r = Arc::clone(&r);
                loom::thread::spawn(move || {
                    let g = geometry();
                    assert!(
                        produce_steps(&r, &g, &mut p, false, &mut StopAfter(None)).unwrap(),
                        "room for record 3"
                    );
                })
            };
            let w = r.words();
            // The victim: record 2 (or nothing), stopped somewhere in its pop.
            let mut seen = Vec::new();
            let mut steps = StopAfter(stop);
            let mut dead = false;
            match pop_steps(w, &mut c, &g, &mut steps).unwrap() {
                Ok(Some(x)) => {
                    let at = (x.payload(&g) / 8) as usize;
                    assert_eq!(r.ring[at].load(Ordering::Relaxed), x.seq, "whole");
                    seen.push(x.seq);
                    // Killed while holding it: `reading` stays set.
                    dead = true;
                }
                Ok(None) => release(w),
                Err(_) => dead = true,
            }
            let _ = dead;
            producer.join().unwrap();
            // The successor.
            let mut c = claim_consumer(w);
            let mut missed = 0;
            while let Some(x) = pop(w, &mut c, &g).unwrap() {
                let at = (x.payload(&g) / 8) as usize;
                assert_eq!(r.ring[at].load(Ordering::Relaxed), x.seq, "whole");
                missed += x.missed;
                seen.push(x.seq);
                release(w);
            }
            assert!(
                seen.windows(2).all(|s| s[0] < s[1]),
                "{seen:?} stop {stop:?}"
            );
            assert_eq!(seen.last(), Some(&3), "{seen:?} stop {stop:?}");
            // Records 2 and 3: each seen or counted as missed, none twice.
            assert_eq!(
                seen.len() as u64 + missed,
                2,
                "{seen:?} missed {missed} stop {stop:?}"
            );
            assert_eq!(r.reading.load(Ordering::Relaxed), NONE);
        });
    }
}

/// A full ring and then an empty one: records 1 and 2 fill it (no room for a third); the
/// producer tries a record, abandons a reservation it got (writing its payload first, which
/// nobody may see) and commits the next, while the consumer takes what is there until the
/// ring is empty. The abandoned payload never shows, and numbers stay consecutive.
#[test]
fn loom_records_full_empty_and_abandoned() {
    loom::model(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let w = r.words();
        let mut p = claim_producer(w, &g).unwrap();
        let mut c = claim_consumer(w);
        assert!(produce_one(&r, &g, &mut p, false));
        assert!(produce_one(&r, &g, &mut p, false));
        assert!(matches!(
            reserve(w, &mut p, &g, 1, false),
            Err(Refused::NoRoom { need: 48, free: 16 })
        ));
        let producer = {
            let r = Arc::clone(&r);
            loom::thread::spawn(move || {
                let g = geometry();
                let w = r.words();
                match reserve(w, &mut p, &g, 1, false) {
                    Ok(res) => {
                        // Abandoned: written but never committed.
                        let at = (res.payload(&g) / 8) as usize;
                        r.ring[at].store(999, Ordering::Relaxed);
                        assert!(produce_one(&r, &g, &mut p, false));
                        true
                    }
                    Err(Refused::NoRoom { free, .. }) => {
                        assert!(free < 48);
                        false
                    }
                    Err(e) => panic!("{e:?}"),
                }
            })
        };
        let mut got = Vec::new();
        got.extend(consume_one(&r, &g, &mut c));
        got.extend(consume_one(&r, &g, &mut c));
        let third = producer.join().unwrap();
        while let Some(s) = consume_one(&r, &g, &mut c) {
            got.push(s);
        }
        assert!(pop(w, &mut c, &g).unwrap().is_none(), "empty");
        let expected: &[u64] = if third { &[1, 2, 3] } else { &[1, 2] };
        assert_eq!(got, expected);
    });
}

/// The consumer holds record 1 (the oldest bytes of the ring) while the producer tries two
/// lossless reservations in a row: the second may use what the producer learned in the first
/// only as a bound below the held record, so record 1 stays whole until it is released.
#[test]
fn loom_records_lossless_reservations_never_touch_the_held_record() {
    loom::model(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let w = r.words();
        let mut p = claim_producer(w, &g).unwrap();
        let mut c = claim_consumer(w);
        assert!(produce_one(&r, &g, &mut p, false));
        assert!(produce_one(&r, &g, &mut p, false));
        let held = pop(w, &mut c, &g).unwrap().unwrap();
        assert_eq!(held.seq, 1);
        let producer = {
            let r = Arc::clone(&r);
            loom::thread::spawn(move || {
                let g = geometry();
                let mut n = 0;
                for _ in 0..2 {
                    n += u64::from(produce_one(&r, &g, &mut p, false));
                }
                n
            })
        };
        let at = (held.payload(&g) / 8) as usize;
        loom::thread::yield_now();
        assert_eq!(
            r.ring[at].load(Ordering::Relaxed),
            1,
            "the held record is whole"
        );
        release(w);
        let produced = producer.join().unwrap();
        let mut got = Vec::new();
        while let Some(s) = consume_one(&r, &g, &mut c) {
            got.push(s);
        }
        let expected: Vec<u64> = (2..=2 + produced).collect();
        assert_eq!(got, expected);
    });
}

//! Loom models of the record protocol: a producer and a consumer in two threads on a tiny ring,
//! across the wrap, lossless and overwriting, with the consumer holding records while the
//! producer drops others. Every record's payload word holds its sequence number; a torn or
//! foreign payload, a record out of order or a miscount fails the model.

use loom::sync::Arc;

use super::*;

struct Ring {
    ring: Vec<AtomicU64>,
    tail: AtomicU64,
    seq: AtomicU64,
    next: AtomicU64,
    head: AtomicU64,
    reading: AtomicU64,
    taken: AtomicU64,
}

impl Ring {
    fn new(g: &Geometry) -> Ring {
        Ring {
            ring: (0..g.capacity / 8).map(|_| AtomicU64::new(0)).collect(),
            tail: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            next: AtomicU64::new(0),
            head: AtomicU64::new(0),
            reading: AtomicU64::new(NONE),
            taken: AtomicU64::new(0),
        }
    }

    fn words(&self) -> Words<'_> {
        Words {
            ring: &self.ring,
            tail: &self.tail,
            seq: &self.seq,
            next: &self.next,
            head: &self.head,
            reading: &self.reading,
            taken: &self.taken,
        }
    }
}

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
    let w = r.words();
    match reserve(w, p, g, 1, force) {
        Ok(res) => {
            let at = (res.payload(g) / 8) as usize;
            // Relaxed: published by commit's release store of `tail`.
            r.ring[at].store(p.seq + 1, Ordering::Relaxed);
            commit(w, p, g, res);
            true
        }
        Err(Refused::NoRoom { .. }) | Err(Refused::Held) => false,
        Err(e) => panic!("{e:?}"),
    }
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
    loom::model(|| {
        let g = geometry();
        let r = Arc::new(Ring::new(&g));
        let (mut p, mut c) = prefill(&r, &g);
        let producer = {
            let r = Arc::clone(&r);
            loom::thread::spawn(move || {
                let g = geometry();
                produce_one(&r, &g, &mut p, true);
                produce_one(&r, &g, &mut p, true);
            })
        };
        let w = r.words();
        let mut seen = Vec::new();
        seen.extend(consume_one(&r, &g, &mut c));
        producer.join().unwrap();
        let mut missed = 0;
        while let Some(x) = pop(w, &mut c, &g).unwrap() {
            missed += x.missed;
            seen.push(x.seq);
            release(w);
        }
        assert!(seen.windows(2).all(|s| s[0] < s[1]), "{seen:?}");
        let produced = r.seq.load(Ordering::Relaxed);
        assert_eq!(c.last, produced);
        // Every record after 1 was either seen or counted as missed.
        let first_missed = seen.first().map_or(0, |&s| s - 2);
        assert_eq!(
            seen.len() as u64 + missed + first_missed,
            produced - 1,
            "{seen:?}"
        );
    });
}

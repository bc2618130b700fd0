//! The triple-buffer protocol over one shared index word, free of any memory mapping so that
//! loom can model-check it (`RUSTFLAGS="--cfg loom" cargo test -p rtipc --lib loom`).
//!
//! Three slots; at any time one is the producer's *back* slot, one the consumer's *front* slot,
//! and one sits in the shared *middle* word, which is the only word both sides write. The
//! producer writes its back slot and swaps it into the middle with the DIRTY bit and a sequence
//! number; the consumer, when it sees DIRTY, swaps its front slot into the middle (clean) and
//! takes the slot it got back. Each side is one load or one swap: wait-free.
//!
//! Middle word: bits 0-1 slot index, bit 2 DIRTY, bits 3-63 sequence number of the slot's data
//! (the producer's 1-based publish count; meaningful only with DIRTY).

use crate::sync::{AtomicU64, BadWord, CorruptWord, Ordering};

/// Bits of a word that hold a slot index.
pub(crate) const IDX_MASK: u64 = 0b11;
/// Set in the middle word while it holds data the consumer has not taken.
pub(crate) const DIRTY: u64 = 0b100;
/// Where the sequence number starts in a word.
pub(crate) const SEQ_SHIFT: u32 = 3;
/// Number of slots.
pub(crate) const SLOTS: u64 = 3;

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// The slot the producer writes next.
    pub back: u64,
    /// Sequence number of the last publish (0: none yet).
    pub seq: u64,
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// The slot the consumer reads.
    pub front: u64,
    /// Sequence number of the data in `front` (0: nothing fetched yet).
    pub seq: u64,
}

/// What a fetch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// Nothing has ever been published.
    Empty,
    /// Nothing new since the last fetch; `front` still holds the last data.
    Unchanged,
    /// `front` now holds new data; `skipped` updates were overwritten before we saw them.
    New { skipped: u64 },
}

/// Packs a private state into a word (for the recovery copies each side keeps).
#[inline]
pub(crate) const fn pack(index: u64, seq: u64) -> u64 {
    (seq << SEQ_SHIFT) | index
}

/// The initial words of a fresh channel: `(middle, producer, consumer)`. Slot 0 is the
/// producer's, slot 1 the middle (clean), slot 2 the consumer's.
pub(crate) const fn initial_words() -> (u64, u64, u64) {
    (pack(1, 0), pack(0, 0), pack(2, 0))
}

/// The slot that is neither `a` nor `b`, if they are two distinct slots.
fn third(a: u64, b: u64) -> Option<u64> {
    (a < SLOTS && b < SLOTS && a != b).then(|| 3 - a - b)
}

/// An end's slot for a new holder of the end, from the middle word, the end's saved word and
/// the other end's saved word: the saved slot, unless a holder died between its swap and saving
/// its state, which leaves its saved slot in the middle; its real slot is then the one that is
/// neither in the middle nor the other end's.
fn recover_slot(middle: u64, own: u64, other: u64) -> Result<u64, BadWord> {
    let bad = BadWord {
        word: middle,
        reason: CorruptWord::StateIndices,
    };
    let (mid, other) = (middle & IDX_MASK, other & IDX_MASK);
    let mut slot = own & IDX_MASK;
    if slot == mid {
        slot = third(mid, other).ok_or(bad)?;
    }
    if third(slot, mid).is_none() || slot == other || other >= SLOTS {
        return Err(bad);
    }
    Ok(slot)
}

/// The producer's state for a new holder of the producer end (see [`recover_slot`]).
pub(crate) fn recover_producer(
    middle: u64,
    producer: u64,
    consumer: u64,
) -> Result<Producer, BadWord> {
    let back = recover_slot(middle, producer, consumer)?;
    let mut seq = producer >> SEQ_SHIFT;
    if middle & DIRTY != 0 {
        seq = seq.max(middle >> SEQ_SHIFT);
    }
    Ok(Producer { back, seq })
}

/// The consumer's state for a new holder of the consumer end (see [`recover_slot`]).
pub(crate) fn recover_consumer(
    middle: u64,
    producer: u64,
    consumer: u64,
) -> Result<Consumer, BadWord> {
    Ok(Consumer {
        front: recover_slot(middle, consumer, producer)?,
        seq: consumer >> SEQ_SHIFT,
    })
}

/// Publishes the producer's back slot. On success the producer owns a new back slot.
#[inline]
pub(crate) fn publish(middle: &AtomicU64, p: &mut Producer) -> Result<u64, BadWord> {
    let seq = p.seq + 1;
    // AcqRel. Release: our plain writes into the back slot happen-before any consumer that
    // acquires this word (its fetch swap) reads the slot. Acquire: the consumer's reads of the
    // slot we receive (its former front, released by its fetch swap) happen-before our next
    // writes into it.
    let old = middle.swap((seq << SEQ_SHIFT) | DIRTY | p.back, Ordering::AcqRel);
    let idx = old & IDX_MASK;
    if idx >= SLOTS || idx == p.back {
        return Err(BadWord {
            word: old,
            reason: CorruptWord::StateMiddleOnPublish,
        });
    }
    p.back = idx;
    p.seq = seq;
    Ok(seq)
}

/// Takes the newest published slot, if there is one the consumer has not seen.
#[inline]
pub(crate) fn fetch(middle: &AtomicU64, c: &mut Consumer) -> Result<Fetched, BadWord> {
    // Relaxed: this load only decides whether to swap; no slot data is read on its account.
    let cur = middle.load(Ordering::Relaxed);
    if cur & DIRTY == 0 {
        return Ok(if c.seq == 0 {
            Fetched::Empty
        } else {
            Fetched::Unchanged
        });
    }
    // AcqRel. Acquire pairs with the producer's release swap, so the slot's data is visible.
    // Release: our reads of the front slot we hand back happen-before the producer's next
    // writes into it (it acquires this word when it swaps).
    let old = middle.swap(c.front, Ordering::AcqRel);
    let idx = old & IDX_MASK;
    let seq = old >> SEQ_SHIFT;
    if old & DIRTY == 0 || idx >= SLOTS || idx == c.front {
        return Err(BadWord {
            word: old,
            reason: CorruptWord::StateMiddleOnFetch,
        });
    }
    if seq <= c.seq {
        return Err(BadWord {
            word: old,
            reason: CorruptWord::StateSeqBackwards,
        });
    }
    let skipped = seq - c.seq - 1;
    c.front = idx;
    c.seq = seq;
    Ok(Fetched::New { skipped })
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Shared {
        middle: AtomicU64,
        // Each slot holds (sequence, sequence * 7) so that a torn read is detectable; loom's
        // UnsafeCell also fails the model on any unsynchronised concurrent access.
        slots: [UnsafeCell<(u64, u64)>; 3],
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            middle: AtomicU64::new(1),
            slots: [
                UnsafeCell::new((0, 0)),
                UnsafeCell::new((0, 0)),
                UnsafeCell::new((0, 0)),
            ],
        })
    }

    fn model(publishes: u64, fetches: usize) {
        loom::model(move || {
            let s = shared();
            let ps = s.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer { back: 0, seq: 0 };
                for n in 1..=publishes {
                    ps.slots[p.back as usize].with_mut(|v| {
                        // SAFETY: the producer owns its back slot exclusively.
                        unsafe { *v = (n, n * 7) }
                    });
                    assert_eq!(publish(&ps.middle, &mut p), Ok(n));
                }
            });
            let mut c = Consumer { front: 2, seq: 0 };
            let mut seen = 0;
            let mut skipped_total = 0;
            for _ in 0..fetches {
                match fetch(&s.middle, &mut c).expect("valid protocol") {
                    Fetched::Empty => assert_eq!(c.seq, 0),
                    Fetched::Unchanged => assert!(c.seq > 0),
                    Fetched::New { skipped } => {
                        skipped_total += skipped;
                        seen += 1;
                        assert!(c.seq > 0);
                    }
                }
                if c.seq > 0 {
                    let (seq, check) = s.slots[c.front as usize].with(|v| {
                        // SAFETY: the consumer owns its front slot exclusively.
                        unsafe { *v }
                    });
                    assert_eq!(seq, c.seq, "front slot holds the fetched update");
                    assert_eq!(check, seq * 7, "torn read");
                }
            }
            producer.join().unwrap();
            // Drain: after the producer is done, one more fetch sees the final update.
            if let Fetched::New { skipped } = fetch(&s.middle, &mut c).unwrap() {
                skipped_total += skipped;
                seen += 1;
            }
            assert_eq!(c.seq, publishes, "the last update is always delivered");
            assert_eq!(seen + skipped_total, publishes, "skipped counts add up");
        });
    }

    #[test]
    fn loom_triple_buffer_one_publish() {
        model(1, 2);
    }

    #[test]
    fn loom_triple_buffer_three_publishes() {
        model(3, 2);
    }

    #[test]
    fn loom_triple_buffer_four_publishes_three_fetches() {
        model(4, 3);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sequential_protocol() {
        let m = AtomicU64::new(1);
        let mut p = Producer { back: 0, seq: 0 };
        let mut c = Consumer { front: 2, seq: 0 };
        assert_eq!(fetch(&m, &mut c), Ok(Fetched::Empty));
        assert_eq!(publish(&m, &mut p), Ok(1));
        assert_eq!(fetch(&m, &mut c), Ok(Fetched::New { skipped: 0 }));
        assert_eq!(fetch(&m, &mut c), Ok(Fetched::Unchanged));
        for _ in 0..5 {
            publish(&m, &mut p).unwrap();
        }
        assert_eq!(fetch(&m, &mut c), Ok(Fetched::New { skipped: 4 }));
        assert_eq!(c.seq, 6);
        let mut all = [p.back, c.front, m.load(Ordering::Relaxed) & IDX_MASK];
        all.sort();
        assert_eq!(all, [0, 1, 2], "the three slots stay distinct");
    }

    #[test]
    fn bad_words_are_errors() {
        let m = AtomicU64::new(3);
        let mut p = Producer { back: 0, seq: 0 };
        assert!(publish(&m, &mut p).is_err());
        let m = AtomicU64::new(DIRTY | (5 << SEQ_SHIFT) | 2);
        let mut c = Consumer { front: 2, seq: 0 };
        assert!(fetch(&m, &mut c).is_err(), "middle equals front");
        let m = AtomicU64::new(DIRTY | (5 << SEQ_SHIFT) | 1);
        let mut c = Consumer { front: 2, seq: 9 };
        assert!(fetch(&m, &mut c).is_err(), "sequence went backwards");
    }
}

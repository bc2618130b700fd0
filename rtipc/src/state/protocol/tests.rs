//! Sequential tests of the triple buffer, and of every word a peer could write.

use super::*;

struct Shared {
    state: AtomicU64,
    seqs: [AtomicU64; 3],
}

impl Shared {
    fn new() -> Shared {
        Shared {
            state: AtomicU64::new(initial_word()),
            seqs: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn words(&self) -> Words<'_> {
        Words {
            state: &self.state,
            seqs: &self.seqs,
        }
    }
}

fn distinct(p: &Producer, c: &Consumer, s: &Shared) {
    let d = Word::decode(s.state.load(Ordering::Relaxed), CorruptWord::StateIndices).unwrap();
    let mut all = [p.back, c.front, d.mid];
    all.sort();
    assert_eq!(all, [0, 1, 2], "the three slots stay distinct");
    assert_eq!(d.cons, c.front);
}

#[test]
fn sequential_protocol() {
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::Empty));
    assert_eq!(publish(s.words(), &mut p), Ok(1));
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::New { missed: 0 }));
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::Unchanged));
    for _ in 0..5 {
        publish(s.words(), &mut p).unwrap();
    }
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::New { missed: 4 }));
    assert_eq!(c.seq, 6);
    distinct(&p, &c, &s);
}

#[test]
fn a_request_is_served_by_the_next_publish() {
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    publish(s.words(), &mut p).unwrap();
    // The consumer's exchange lost a race and it asked to be handed the next publish.
    s.state.fetch_or(REQ, Ordering::Relaxed);
    publish(s.words(), &mut p).unwrap();
    let d = Word::decode(s.state.load(Ordering::Relaxed), CorruptWord::StateIndices).unwrap();
    assert!(!d.req && !d.dirty, "handed over, not left in the middle");
    assert_ne!(d.cons, c.front, "the consumer's slot is the new publish");
    // A new consumer (the asking one died) takes the handed-over slot.
    c = claim_consumer(s.words()).unwrap();
    assert_eq!(c.seq, 2);
    distinct(&p, &c, &s);
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::Unchanged));
}

#[test]
fn successors_take_over_from_the_word_alone() {
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    for _ in 0..3 {
        publish(s.words(), &mut p).unwrap();
    }
    fetch(s.words(), &mut c).unwrap();
    publish(s.words(), &mut p).unwrap();
    let p2 = claim_producer(s.words()).unwrap();
    assert_eq!((p2.back, p2.seq), (p.back, p.seq));
    let c2 = claim_consumer(s.words()).unwrap();
    assert_eq!((c2.front, c2.seq), (c.front, c.seq));
}

#[test]
fn every_probed_word_is_a_value_or_an_error() {
    let probes = [
        0,
        1,
        2,
        3,
        9,
        u64::MAX,
        u64::MAX - 1,
        1 << 38,
        (1 << 38) - 1,
        0x5555_5555_5555_5555,
    ];
    for &word in &probes {
        for &seq in &probes {
            let s = Shared::new();
            s.state.store(word, Ordering::Relaxed);
            for w in &s.seqs {
                w.store(seq, Ordering::Relaxed);
            }
            if let Ok(mut p) = claim_producer(s.words()) {
                let _ = publish(s.words(), &mut p);
                let _ = last_published(s.words(), &p);
            }
            if let Ok(mut c) = claim_consumer(s.words()) {
                let _ = fetch(s.words(), &mut c);
                let _ = fetch(s.words(), &mut c);
            }
        }
    }
}

#[test]
fn bad_words_are_errors() {
    let s = Shared::new();
    s.state.store(3, Ordering::Relaxed); // middle slot 3
    assert!(claim_producer(s.words()).is_err());
    let s = Shared::new();
    let mut c = claim_consumer(s.words()).unwrap();
    // A word that says the consumer's slot is in the middle.
    s.state.store(c.front | DIRTY, Ordering::Relaxed);
    assert!(fetch(s.words(), &mut c).is_err());
    // A sequence number going backwards.
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    publish(s.words(), &mut p).unwrap();
    fetch(s.words(), &mut c).unwrap();
    publish(s.words(), &mut p).unwrap();
    // The dirty word claims a sequence number before the one the consumer holds.
    let word = s.state.load(Ordering::Relaxed);
    s.state.store(word & 0x3f, Ordering::Relaxed);
    assert_eq!(
        fetch(s.words(), &mut c).map_err(|b| b.reason),
        Err(CorruptWord::StateSeqBackwards)
    );
}

/// The reference for [`fetched`]: the middle and the consumer's slot swapped, clean.
fn fetched_by_fields(w: u64) -> u64 {
    let (mid, cons) = (w & MID_MASK, (w >> CONS_SHIFT) & MID_MASK);
    cons | mid << CONS_SHIFT | w & !FLAG_BITS
}

#[test]
fn the_take_table_swaps_the_two_fields() {
    for low in 0..64 {
        for high in [0, 1, 0x5555, MAX_SEQ] {
            let w = low | high << SEQ_SHIFT;
            assert_eq!(fetched(w), fetched_by_fields(w), "word {w:#x}");
        }
    }
}

#[test]
fn the_fetch_masks_accept_exactly_the_words_the_decode_accepts() {
    for front in 0..3u64 {
        for low in 0..32u64 {
            let ok =
                Word::decode(low, CorruptWord::StateMiddleOnFetch).is_ok_and(|d| d.cons == front);
            let dirty = low & DIRTY != 0;
            assert_eq!(
                TAKE[front as usize] >> low & 1 == 1,
                ok && dirty,
                "{front} {low:#x}"
            );
            assert_eq!(
                IDLE[front as usize] >> low & 1 == 1,
                ok && !dirty,
                "{front} {low:#x}"
            );
        }
    }
    assert_eq!((TAKE[3], IDLE[3]), (0, 0));
}

#[test]
fn every_low_word_fetches_as_the_decode_says() {
    // Every value of the six low bits, with and without sequence numbers, against a consumer
    // on each slot: refused exactly when the decode refuses it or it does not name the
    // consumer's slot; otherwise taken when dirty, unchanged when clean.
    for front_word in [initial_word(), 2 | 1 << CONS_SHIFT, 1] {
        for low in 0..64u64 {
            for seq in [0u64, 1, 7] {
                let s = Shared::new();
                s.state.store(front_word, Ordering::Relaxed);
                let mut c = claim_consumer(s.words()).unwrap();
                let word = low | seq << SEQ_SHIFT;
                s.state.store(word, Ordering::Relaxed);
                let ours = Word::decode(word, CorruptWord::StateMiddleOnFetch)
                    .ok()
                    .filter(|d| d.cons == c.front);
                let r = fetch(s.words(), &mut c);
                match ours {
                    None => assert_eq!(
                        r.map_err(|b| b.reason),
                        Err(CorruptWord::StateMiddleOnFetch),
                        "{word:#x}"
                    ),
                    Some(d) if !d.dirty => assert_eq!(r, Ok(Fetched::Empty), "{word:#x}"),
                    Some(_) if seq == 0 => assert_eq!(
                        r.map_err(|b| b.reason),
                        Err(CorruptWord::StateSeqBackwards),
                        "{word:#x}"
                    ),
                    Some(_) => {
                        assert_eq!(r, Ok(Fetched::New { missed: seq - 1 }), "{word:#x}");
                        assert_eq!(s.state.load(Ordering::Relaxed), fetched_by_fields(word));
                    }
                }
            }
        }
    }
}

#[test]
fn a_new_producer_serves_a_request_left_in_the_word() {
    // A consumer asked (its exchange lost a race), then the producer died before its next
    // publish: the successor's first publish hands the slot over.
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    publish(s.words(), &mut p).unwrap();
    s.state.fetch_or(REQ, Ordering::Relaxed);
    let mut p = claim_producer(s.words()).unwrap();
    assert_eq!(publish(s.words(), &mut p), Ok(2));
    let d = Word::decode(s.state.load(Ordering::Relaxed), CorruptWord::StateIndices).unwrap();
    assert!(!d.req && !d.dirty, "handed over, not left in the middle");
    assert_ne!(d.cons, c.front);
    c = claim_consumer(s.words()).unwrap();
    assert_eq!(c.seq, 2);
    distinct(&p, &c, &s);
}

#[test]
fn a_publish_refuses_a_word_that_gives_away_its_slot() {
    // The first exchange expects the producer's own word and fails on any other; every word
    // read back is checked before it is exchanged.
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    // The producer holds slot 0; a word with slot 0 in the middle says it is someone else's.
    s.state
        .store(2 << CONS_SHIFT | DIRTY | 5 << SEQ_SHIFT, Ordering::Relaxed);
    assert_eq!(
        publish(s.words(), &mut p).map_err(|b| b.reason),
        Err(CorruptWord::StateMiddleOnPublish)
    );
    assert_eq!(
        s.state.load(Ordering::Relaxed) & DIRTY,
        DIRTY,
        "nothing exchanged"
    );
}

#[test]
fn a_consumer_predicts_the_word_of_one_publish() {
    let s = Shared::new();
    let mut p = claim_producer(s.words()).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    for round in 1..=4u64 {
        publish(s.words(), &mut p).unwrap();
        assert_eq!(s.state.load(Ordering::Relaxed), c.next, "round {round}");
        let next_taken = c.next_taken;
        assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::New { missed: 0 }));
        assert_eq!(s.state.load(Ordering::Relaxed), next_taken);
        assert_eq!(c.seq, round);
        distinct(&p, &c, &s);
    }
    // Two publishes: not the predicted word; the checked path takes it and counts one missed.
    publish(s.words(), &mut p).unwrap();
    publish(s.words(), &mut p).unwrap();
    assert_ne!(s.state.load(Ordering::Relaxed), c.next);
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::New { missed: 1 }));
    // A consumer claimed over a dirty word predicts one publish more, and counts the one it
    // never took as missed.
    publish(s.words(), &mut p).unwrap();
    let mut c = claim_consumer(s.words()).unwrap();
    publish(s.words(), &mut p).unwrap();
    assert_eq!(s.state.load(Ordering::Relaxed), c.next);
    assert_eq!(fetch(s.words(), &mut c), Ok(Fetched::New { missed: 1 }));
    distinct(&p, &c, &s);
}

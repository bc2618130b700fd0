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

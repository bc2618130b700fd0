//! The record channel's handles in one process, over a real mapping shared by a creator and a
//! peer handle of the same memfd: reservation, commit, abandon, truncation, the wrap, both
//! refusals, overwriting around a held record, claims and the limits of a declaration.

use std::os::fd::AsFd;

use super::*;
use crate::{DataError, Direction, Error, Object, Segment};

#[derive(Object, Debug, PartialEq)]
#[repr(C)]
struct Word {
    v: u64,
}

#[derive(Object, Debug, PartialEq)]
#[repr(C, align(64))]
struct Wide {
    v: [u64; 8],
}

fn pair(ring: u64) -> (Segment, Segment) {
    let seg = Segment::builder()
        .record::<Word>("r", Direction::CreatorToPeer, ring)
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap();
    (seg, peer)
}

fn words(seq: u64, len: usize) -> Vec<Word> {
    (0..len as u64)
        .map(|i| Word {
            v: seq * 1_000_003 + i,
        })
        .collect()
}

#[test]
fn records_arrive_whole_in_order_across_many_wraps() {
    let (seg, peer) = pair(4096);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    assert_eq!(tx.ring_bytes(), 4096);
    assert_eq!(tx.max_len(), (2048 - 16) / 8);
    assert_eq!(rx.max_len(), tx.max_len());
    let mut sent = 0u64;
    let mut got = 0u64;
    for round in 0..5000u64 {
        let len = 1 + (round * 37 % tx.max_len() as u64) as usize;
        match tx.try_send(&words(sent + 1, len)) {
            Ok(seq) => {
                sent += 1;
                assert_eq!(seq, sent);
            }
            Err(DataError::NoRoom { needed, free }) => assert!(needed > free),
            Err(e) => panic!("{e}"),
        }
        if round % 3 != 0 {
            while let Some(r) = rx.pop().unwrap() {
                got += 1;
                assert_eq!((r.seq(), r.missed()), (got, 0));
                assert_eq!(&r[..], &words(got, r.len())[..]);
            }
        }
    }
    while let Some(r) = rx.pop().unwrap() {
        got += 1;
        assert_eq!(&r[..], &words(got, r.len())[..]);
    }
    assert_eq!((got, tx.committed(), rx.taken()), (sent, sent, sent));
    assert!(sent > 1000, "{sent}");
}

#[test]
fn an_abandoned_reservation_publishes_nothing_and_a_truncated_one_its_prefix() {
    let (seg, peer) = pair(4096);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    let mut r = tx.try_reserve(10).unwrap();
    r.fill(Word { v: 99 });
    drop(r);
    assert!(rx.pop().unwrap().is_none());
    let mut r = tx.try_reserve(10).unwrap();
    assert_eq!(r.len(), 10);
    for (i, w) in r.iter_mut().enumerate() {
        w.v = i as u64;
    }
    r.truncate(4);
    r.truncate(20);
    assert_eq!(r.len(), 4);
    assert_eq!(r.commit(), 1);
    let got = rx.pop().unwrap().unwrap();
    assert_eq!(got.iter().map(|w| w.v).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(got.seq(), 1);
}

#[test]
fn a_full_ring_refuses_saying_how_much_is_free_and_too_long_is_refused() {
    let (seg, peer) = pair(4096);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    let max = tx.max_len();
    match tx.try_reserve(max + 1) {
        Err(DataError::TooLong { len, max: m }) => {
            assert_eq!((len, m as usize), (max as u64 + 1, max))
        }
        other => panic!("{other:?}"),
    }
    // Two records of the largest size fill the ring exactly.
    tx.try_send(&words(1, max)).unwrap();
    tx.try_send(&words(2, max)).unwrap();
    match tx.try_reserve(1) {
        Err(DataError::NoRoom { needed, free }) => assert_eq!((needed, free), (32, 0)),
        other => panic!("{other:?}"),
    }
    let e = tx.try_reserve(1).unwrap_err().to_string();
    assert!(
        e.contains("needs 32 bytes") && e.contains("reserve_overwrite"),
        "{e}"
    );
    // Taking one frees its bytes once it is released.
    let r = rx.pop().unwrap().unwrap();
    assert!(matches!(
        tx.try_reserve(1),
        Err(DataError::NoRoom { free: 0, .. })
    ));
    drop(r);
    match tx.try_reserve(1) {
        Ok(r) => assert_eq!(r.commit(), 3),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn overwriting_drops_the_oldest_never_the_held_one_and_the_consumer_counts_them() {
    let (seg, peer) = pair(4096);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    // 16 records of 8 elements (16 + 64 = 80 bytes each): 1280 bytes.
    for seq in 1..=16 {
        tx.try_send(&words(seq, 8)).unwrap();
    }
    let held = rx.pop().unwrap().unwrap();
    assert_eq!(held.seq(), 1);
    // Records of 100 elements (816 bytes) fill what is free; the next one would have to go
    // over record 1, which the consumer holds (the oldest bytes of the ring): refused.
    let mut last = 16;
    let refused = loop {
        match tx.reserve_overwrite(100) {
            Ok(mut r) => {
                assert_eq!(r.dropped(), 0);
                last += 1;
                r.copy_from_slice(&words(last, 100));
                assert_eq!(r.commit(), last);
            }
            Err(e) => break e,
        }
        assert!(last < 100, "the held record must stop the producer");
    };
    assert_eq!(refused, DataError::Held);
    assert!(refused.to_string().contains("consumer holds"), "{refused}");
    assert_eq!(&held[..], &words(1, 8)[..], "the held record is intact");
    drop(held);
    // Released: the producer drops the oldest unread records to make room.
    let mut dropped = 0;
    for _ in 0..10 {
        let mut r = tx.reserve_overwrite(100).unwrap();
        dropped += r.dropped();
        last += 1;
        r.copy_from_slice(&words(last, 100));
        assert_eq!(r.commit(), last);
    }
    assert!(dropped > 0);
    let (mut seen, mut missed, mut prev) = (1, 0, 1);
    while let Some(r) = rx.pop().unwrap() {
        assert!(r.seq() > prev);
        assert_eq!(r.missed(), r.seq() - prev - 1);
        assert_eq!(&r[..], &words(r.seq(), r.len())[..]);
        prev = r.seq();
        seen += 1;
        missed += r.missed();
    }
    assert_eq!(prev, last);
    assert_eq!(
        seen + missed,
        last,
        "every record was seen or counted as missed"
    );
    assert_eq!(
        missed,
        tx.dropped(),
        "the consumer counts what the producer dropped"
    );
}

#[test]
fn elements_aligned_past_16_bytes_stay_aligned() {
    let seg = Segment::builder()
        .record::<Wide>("w", Direction::CreatorToPeer, 8192)
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap();
    let mut tx = RecordProducer::<Wide>::new(&seg, "w").unwrap();
    let mut rx = RecordConsumer::<Wide>::new(&peer, "w").unwrap();
    assert_eq!(tx.max_len(), (4096 - 64) / 64);
    for seq in 1..=200u64 {
        let len = (seq % 7 + 1) as usize;
        let mut r = tx.try_reserve(len).unwrap();
        assert_eq!(r.as_ptr() as usize % 64, 0);
        r.fill(Wide { v: [seq; 8] });
        r.commit();
        let got = rx.pop().unwrap().unwrap();
        assert_eq!(got.as_ptr() as usize % 64, 0);
        assert!(got.iter().all(|w| w.v == [seq; 8]) && got.len() == len);
    }
}

#[test]
fn ends_are_claimed_once_and_successors_continue_the_numbers() {
    let (seg, peer) = pair(4096);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    assert!(matches!(
        RecordProducer::<Word>::new(&seg, "r"),
        Err(Error::AlreadyClaimed { .. })
    ));
    tx.try_send(&words(1, 3)).unwrap();
    tx.try_send(&words(2, 3)).unwrap();
    drop(tx);
    let mut tx = RecordProducer::<Word>::new(&seg, "r").unwrap();
    assert_eq!(tx.committed(), 2);
    assert_eq!(tx.try_send(&words(3, 3)).unwrap(), 3);
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    let r = rx.pop().unwrap().unwrap();
    assert_eq!(r.seq(), 1);
    // A consumer dropped while it holds a record: its successor goes on after it.
    std::mem::forget(r);
    drop(rx);
    let mut rx = RecordConsumer::<Word>::new(&peer, "r").unwrap();
    let seqs: Vec<u64> = std::iter::from_fn(|| rx.pop().unwrap().map(|r| r.seq())).collect();
    assert_eq!(seqs, [2, 3]);
}

#[test]
fn wrong_types_kinds_and_sizes_are_clear_errors() {
    let (seg, peer) = pair(4096);
    match RecordConsumer::<Wide>::new(&peer, "r") {
        Err(e @ Error::ObjectNotFound { .. }) => assert!(e.to_string().contains("Wide"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Another build's `Word`, with a field changed: the error names the field.
    mod other {
        #[derive(crate::Object)]
        #[repr(C)]
        pub struct Word {
            pub v: u32,
            pub flags: u32,
        }
    }
    match RecordConsumer::<other::Word>::new(&peer, "r") {
        Err(e @ Error::SchemaMismatch { .. }) => assert!(e.to_string().contains("flags"), "{e}"),
        other => panic!("{other:?}"),
    }
    match crate::QueueConsumer::<Word>::new(&peer, "r") {
        Err(e @ Error::WrongChannel { .. }) => assert!(e.to_string().contains("record"), "{e}"),
        other => panic!("{other:?}"),
    }
    match crate::RawObserver::new(&seg, "r") {
        Err(e @ Error::WrongChannel { .. }) => assert!(e.to_string().contains("record"), "{e}"),
        other => panic!("{other:?}"),
    }
    for ring in [0, 63, 1 << 31] {
        let e = Segment::builder()
            .record::<Word>("r", Direction::CreatorToPeer, ring)
            .create_anonymous()
            .unwrap_err();
        assert!(
            e.to_string().contains("ring of 64 to 1073741824 bytes"),
            "{e}"
        );
    }
}

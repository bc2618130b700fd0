//! Cross-process tests of queue channels: a real second process on real shared memory.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use rtipc::{
    DataError, Direction, Error, MessageRef, QueueConsumer, QueueProducer, Segment, StateConsumer,
};

struct Tally {
    seen: u64,
    missed: u64,
    last: u64,
}

/// Pops until message `count` arrives, checking order, content and the count of missed
/// messages. `slow` makes the consumer spin for a while after each message.
fn consume(rx: &mut QueueConsumer<Numbered>, peer: &mut Child, count: u64, slow: bool) -> Tally {
    let mut t = Tally {
        seen: 0,
        missed: 0,
        last: 0,
    };
    let start = Instant::now();
    let mut idle = 0u64;
    while t.last < count {
        match rx.pop().unwrap() {
            Some(m) => {
                assert!(numbered_ok(&m), "message content");
                assert_eq!(
                    m.n,
                    MessageRef::seq(&m),
                    "the message number is its sequence number"
                );
                assert!(m.n > t.last, "increasing order: {} after {}", m.n, t.last);
                assert_eq!(
                    MessageRef::missed(&m),
                    m.n - t.last - 1,
                    "missed counts the gap exactly"
                );
                t.missed += MessageRef::missed(&m);
                t.seen += 1;
                t.last = m.n;
                if slow {
                    let spin = Instant::now();
                    while spin.elapsed() < Duration::from_micros(2) {
                        std::hint::spin_loop();
                    }
                }
            }
            None => {
                idle += 1;
                if idle.is_multiple_of(65536) {
                    assert!(start.elapsed() < Duration::from_secs(300), "timed out");
                    if let Some(status) = peer.try_wait().unwrap() {
                        assert!(status.success(), "peer failed: {status}");
                        // The peer is done: what it pushed must all be there.
                        if rx.pop().unwrap().is_none() && t.last < count {
                            panic!("peer exited but message {count} never arrived");
                        }
                    }
                }
            }
        }
    }
    t
}

#[test]
fn million_messages_through_16_slots_fast_producer_slow_consumer() {
    const COUNT: u64 = 1_000_000;
    let name = seg_name("force");
    let seg = Segment::builder()
        .queue::<Numbered>("numbers", Direction::PeerToCreator, 16)
        .create(&name)
        .unwrap();
    let mut rx = QueueConsumer::<Numbered>::new(&seg, "numbers").unwrap();
    assert_eq!(rx.capacity(), 16);
    let mut peer = spawn_peer(Role::QueueForce, &name, COUNT);
    let t = consume(&mut rx, &mut peer, COUNT, true);
    assert!(peer.wait().unwrap().success());
    assert_eq!(t.last, COUNT);
    assert_eq!(
        t.seen + t.missed,
        COUNT,
        "missed plus seen equals sent exactly"
    );
    assert!(t.seen >= 16, "the consumer saw messages");
    assert!(
        rx.pop().unwrap().is_none(),
        "nothing after the last message"
    );
    eprintln!("seen {}, missed {}", t.seen, t.missed);
}

#[test]
fn try_push_with_a_consumer_that_keeps_up_loses_nothing() {
    const COUNT: u64 = 1_000_000;
    let name = seg_name("try");
    let seg = Segment::builder()
        .queue::<Numbered>("numbers", Direction::PeerToCreator, 16)
        .create(&name)
        .unwrap();
    let mut rx = QueueConsumer::<Numbered>::new(&seg, "numbers").unwrap();
    let mut peer = spawn_peer(Role::QueueTry, &name, COUNT);
    let t = consume(&mut rx, &mut peer, COUNT, false);
    assert!(peer.wait().unwrap().success());
    assert_eq!((t.seen, t.missed, t.last), (COUNT, 0, COUNT), "zero loss");
}

fn peer_side(seg: &Segment) -> Segment {
    use std::os::fd::AsFd;
    Segment::from_fd(dup(seg.as_fd())).unwrap()
}

#[test]
fn full_queue_try_push_refuses_and_force_push_overwrites_the_oldest() {
    let seg = Segment::builder()
        .queue::<Numbered>("q", Direction::CreatorToPeer, 4)
        .create_anonymous()
        .unwrap();
    let peer = peer_side(&seg);
    let mut tx = QueueProducer::<Numbered>::new(&seg, "q").unwrap();
    let mut rx = QueueConsumer::<Numbered>::new(&peer, "q").unwrap();
    assert!(rx.pop().unwrap().is_none(), "empty");
    for n in 1..=4 {
        assert!(tx.try_push(&numbered(n)).unwrap());
    }
    assert!(!tx.try_push(&numbered(5)).unwrap(), "full: refused");
    // The refused message stays in the producer's slot.
    assert_eq!(tx.write().unwrap().n, 5);
    assert!(tx.force_push(&numbered(5)).unwrap(), "full: overwrote 1");
    assert!(tx.force_push(&numbered(6)).unwrap(), "full: overwrote 2");
    // After an overwrite the queue is still full: refused, not an error.
    assert!(!tx.try_push(&numbered(6)).unwrap(), "still full: refused");
    let mut got = Vec::new();
    while let Some(m) = rx.pop().unwrap() {
        got.push((m.n, MessageRef::missed(&m)));
    }
    assert_eq!(
        got,
        [(3, 2), (4, 0), (5, 0), (6, 0)],
        "1 and 2 were overwritten"
    );
    // Wrap around many times.
    for n in 7..=1000 {
        assert!(tx.try_push(&numbered(n)).unwrap());
        let m = rx.pop().unwrap().unwrap();
        assert_eq!((m.n, MessageRef::missed(&m)), (n, 0));
    }
    // `latest` jumps to the newest and counts the rest as missed.
    for n in 1001..=1003 {
        assert!(
            !tx.force_push(&numbered(n)).unwrap(),
            "room: nothing overwritten"
        );
    }
    let m = rx.latest().unwrap().unwrap();
    assert_eq!((m.n, MessageRef::missed(&m)), (1003, 2));
    assert!(rx.latest().unwrap().is_none());
}

#[test]
fn queue_handles_check_kind_schema_and_claims() {
    let seg = Segment::builder()
        .queue::<Numbered>("q", Direction::CreatorToPeer, 8)
        .state::<Small>("s", Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    let peer = peer_side(&seg);
    let err = StateConsumer::<Numbered>::new(&peer, "q").unwrap_err();
    assert!(matches!(err, Error::WrongChannel { .. }), "{err}");
    assert!(err.to_string().contains("queue"), "{err}");
    let err = QueueConsumer::<Small>::new(&peer, "q").unwrap_err();
    assert!(matches!(err, Error::ObjectNotFound { .. }), "{err}");
    let err = QueueConsumer::<Numbered>::new(&peer, "s").unwrap_err();
    assert!(matches!(err, Error::WrongChannel { .. }), "{err}");
    let _rx = QueueConsumer::<Numbered>::new(&peer, "q").unwrap();
    let err = QueueConsumer::<Numbered>::new(&peer, "q").unwrap_err();
    assert!(matches!(err, Error::AlreadyClaimed { .. }), "{err}");
    let err = QueueProducer::<Numbered>::new(&peer, "q").unwrap_err();
    assert!(matches!(err, Error::WrongChannel { .. }), "{err}");
    // Bad capacities are refused by the builder.
    for cap in [0, (1 << 20) + 1] {
        let err = Segment::builder()
            .queue::<Numbered>("q", Direction::CreatorToPeer, cap)
            .create_anonymous()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}

#[test]
fn corrupt_ring_cells_fail_the_next_pop_and_push() {
    let name = seg_name("corrupt");
    let seg = Segment::builder()
        .queue::<Numbered>("numbers", Direction::CreatorToPeer, 4)
        .create(&name)
        .unwrap();
    let peer = Segment::open(&name).unwrap();
    let mut tx = QueueProducer::<Numbered>::new(&seg, "numbers").unwrap();
    let mut rx = QueueConsumer::<Numbered>::new(&peer, "numbers").unwrap();
    tx.force_push(&numbered(1)).unwrap();
    assert_eq!(rx.pop().unwrap().unwrap().n, 1);
    tx.force_push(&numbered(2)).unwrap();

    let f = shm_file(&name);
    let cells = ctrl_line(&f, 0, QUEUE_LINE_CELLS);
    // Each cell is a position word and a state word (free bit, the position's low 39 bits,
    // slot index). Cell 1 holds message 2 (position 1): point it at a slot that does not exist.
    let bad = (1u64 << 24) | 0xff_ffff;
    write_n(&f, cells + 16 + 8, 8, bad);
    let err = rx.pop().map(|_| ()).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("ring"), "{err}");
    assert!(
        matches!(rx.pop().map(|_| ()), Err(DataError::Poisoned)),
        "the handle stays refused"
    );
    // Cell 2, where message 3 goes, offers the producer a slot that does not exist.
    let free_before_2 = (1u64 << 63) | ((2u64.wrapping_sub(4) & ((1 << 39) - 1)) << 24);
    write_n(&f, cells + 2 * 16 + 8, 8, free_before_2 | 0xff_ffff);
    let err = tx.force_push(&numbered(3)).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(
        matches!(tx.force_push(&numbered(4)), Err(DataError::Poisoned)),
        "the producer stays refused"
    );
}

/// Raw queue ends move messages as bytes between processes' views of the same queue: a raw
/// producer's bytes are read by a typed consumer, a typed producer's by a raw consumer, in
/// order, none missed; wrong lengths are refused.
#[test]
fn raw_queue_ends_move_bytes() {
    let name = seg_name("raw-queue");
    let seg = rtipc::Segment::builder()
        .queue::<Small>("up", rtipc::Direction::CreatorToPeer, 64)
        .queue::<Small>("down", rtipc::Direction::PeerToCreator, 64)
        .create(&name)
        .unwrap();
    let peer = rtipc::Segment::open(&name).unwrap();
    let mut raw_tx = rtipc::RawQueueProducer::new(&seg, "up").unwrap();
    let mut rx = rtipc::QueueConsumer::<Small>::new(&peer, "up").unwrap();
    let mut tx = rtipc::QueueProducer::<Small>::new(&peer, "down").unwrap();
    let mut raw_rx = rtipc::RawQueueConsumer::new(&seg, "down").unwrap();
    assert_eq!((raw_tx.size(), raw_rx.size()), (16, 16));
    let mut out = [0u8; 16];
    for i in 1..=1000u64 {
        let mut bytes = i.to_le_bytes().to_vec();
        bytes.extend_from_slice(&5u32.to_le_bytes());
        bytes.extend_from_slice(&(i as u32).to_le_bytes());
        assert!(raw_tx.try_push(&bytes).unwrap());
        let m = rx.pop().unwrap().unwrap();
        assert_eq!((m.seq, m.tag, m.check), (i, 5, i as u32));
        assert!(tx
            .try_push(&Small {
                seq: i,
                tag: 6,
                check: !(i as u32)
            })
            .unwrap());
        let r = raw_rx.pop_into(&mut out).unwrap().unwrap();
        assert_eq!((r.seq, r.missed), (i, 0));
        assert_eq!(out[..8], i.to_le_bytes());
        assert_eq!(out[12..], (!(i as u32)).to_le_bytes());
    }
    assert!(raw_rx.pop_into(&mut out).unwrap().is_none());
    assert!(raw_tx.try_push(&[0; 8]).is_err());
    assert!(raw_rx.pop_into(&mut [0; 17]).is_err());
}

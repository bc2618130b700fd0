//! Cross-process tests of state channels: a real second process attached to real shared memory.

mod common;

use std::time::Duration;

use common::*;
use rtipc::{
    ChannelSpec, DataError, Direction, MultiStateProducer, QueueConsumer, QueueProducer,
    RecordConsumer, RecordProducer, Segment, StateConsumer, StateProducer, StateRef,
};

#[test]
fn million_updates_of_4k_are_never_torn() {
    const UPDATES: u64 = 1_000_000;
    let name = seg_name("million");
    let seg = Segment::builder()
        .state::<Big>("big", Direction::PeerToCreator)
        .create(&name)
        .unwrap();
    let mut rx = StateConsumer::<Big>::new(&seg, "big").unwrap();
    let mut peer = spawn_peer(Role::StressProducer, &name, UPDATES);
    let (mut last, mut seen, mut missed, mut torn, mut empty) = (0u64, 0u64, 0u64, 0u64, 0u64);
    until(&mut peer, Duration::from_secs(300), || {
        match rx.fetch().unwrap() {
            None => empty += 1,
            Some(s) if StateRef::is_new(&s) => {
                let seq = StateRef::seq(&s);
                assert!(
                    seq > last,
                    "update numbers must strictly increase: {seq} after {last}"
                );
                assert_eq!(StateRef::missed(&s), seq - last - 1, "missed count");
                if !big_ok(&s, seq) {
                    torn += 1;
                }
                seen += 1;
                missed += StateRef::missed(&s);
                last = seq;
            }
            Some(s) => assert_eq!(
                StateRef::seq(&s),
                last,
                "an unchanged update keeps its number"
            ),
        }
        last == UPDATES
    });
    wait_peer(peer, Duration::from_secs(60));
    assert_eq!(torn, 0, "torn reads");
    assert_eq!(last, UPDATES);
    assert_eq!(seen + missed, UPDATES, "seen plus missed is every update");
    assert!(seen > 1, "the consumer saw more than the last update");
    eprintln!("seen {seen}, missed {missed}, empty polls {empty}");
}

#[test]
fn several_channels_in_both_directions_carry_their_own_data() {
    let name = seg_name("multi");
    let seg = multi_declaration().create(&name).unwrap();
    multi_run(&seg, &name, 20_000);
}

#[test]
fn peer_maps_only_the_second_object_of_a_channel() {
    const UPDATES: u64 = 10_000;
    let name = seg_name("second");
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("robot", Direction::CreatorToPeer)
                .object::<Pose>()
                .object::<Battery>(),
        )
        .create(&name)
        .unwrap();
    let mut w = MultiStateProducer::new(&seg, "robot").unwrap();
    let pose = w.object::<Pose>().unwrap();
    let battery = w.object::<Battery>().unwrap();
    let mut peer = spawn_peer(Role::SecondOnly, &name, UPDATES);
    for seq in 1..=UPDATES {
        let mut d = w.write().unwrap();
        *d.get_mut(pose) = Pose {
            x: seq as f64,
            y: -(seq as f64),
            z: 0.5,
        };
        *d.get_mut(battery) = Battery {
            seq,
            volts: 12.0 + (seq % 100) as f32 / 100.0,
            amps: -1.5,
        };
        assert_eq!(d.publish().unwrap(), seq);
    }
    // Keep the segment alive until the peer has seen the last update.
    let _ = &mut peer;
    wait_peer(peer, Duration::from_secs(60));
}

/// The seccomp test's segment: a state channel and a queue each way, a fan-out channel and a
/// record channel each way, all notify-enabled.
fn seccomp_segment(name: &str) -> Segment {
    Segment::builder()
        .channel(
            ChannelSpec::state("up", Direction::PeerToCreator)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::state("down", Direction::CreatorToPeer)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::queue("qup", Direction::PeerToCreator, 64)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::state("fan", Direction::CreatorToPeer)
                .consumers(2)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::queue("qdown", Direction::CreatorToPeer, 64)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::record("rup", Direction::PeerToCreator, 4096)
                .object::<Small>()
                .notify(true),
        )
        .channel(
            ChannelSpec::record("rdown", Direction::CreatorToPeer, 4096)
                .object::<Small>()
                .notify(true),
        )
        .create(name)
        .unwrap()
}

/// The seccomp test's record channels, this side: records of 1 to 4 `Small`s down, checked
/// ones up.
struct SeccompRecords {
    down: RecordProducer<Small>,
    up: RecordConsumer<Small>,
    up_last: u64,
}

impl SeccompRecords {
    fn new(seg: &Segment) -> SeccompRecords {
        SeccompRecords {
            down: RecordProducer::new(seg, "rdown").unwrap(),
            up: RecordConsumer::new(seg, "rup").unwrap(),
            up_last: 0,
        }
    }

    /// One record down unless the ring is full; every record up, checked.
    fn round(&mut self) {
        let seq = self.down.committed() + 1;
        match self.down.try_reserve((seq % 4 + 1) as usize) {
            Ok(mut r) => {
                r.iter_mut().for_each(|s| *s = small(seq, TAG_DOWN));
                r.commit();
            }
            Err(DataError::NoRoom { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        while let Some(r) = self.up.pop().unwrap() {
            let n = r.seq();
            assert_eq!((n, r.len() as u64), (self.up_last + 1, n % 4 + 1));
            assert!(r.iter().all(|s| s.seq == n && small_ok(s, TAG_UP)));
            self.up_last = n;
        }
    }
}

/// The peer publishes, fetches, pushes and pops 100,000 times in seccomp strict mode, where any
/// system call but read, write and exit kills it; it also fetches as a consumer of a fan-out
/// channel, follows a state channel and a queue with observers, and sends and takes records on
/// a record channel each way. Every channel is notify-enabled and nobody
/// waits, so this also shows that a publish or push on a notify-enabled channel makes no
/// wake-up call unless the consumer announced that it waits.
#[test]
fn data_path_makes_no_system_call() {
    const ROUNDS: u64 = 100_000;
    let name = seg_name("seccomp");
    let seg = seccomp_segment(&name);
    let mut records = SeccompRecords::new(&seg);
    let mut down = StateProducer::<Small>::new(&seg, "down").unwrap();
    let mut up = StateConsumer::<Small>::new(&seg, "up").unwrap();
    let mut qdown = QueueProducer::<Small>::new(&seg, "qdown").unwrap();
    let mut qup = QueueConsumer::<Small>::new(&seg, "qup").unwrap();
    let mut fan = StateProducer::<Small>::new(&seg, "fan").unwrap();
    let (mut pushed, mut popped) = (0, 0);
    // Publish before the peer starts so that it always has something to fetch.
    down.publish_copy(&small(1, TAG_DOWN)).unwrap();
    fan.publish_copy(&small(1, TAG_DOWN)).unwrap();
    let mut peer = spawn_peer(Role::Seccomp, &name, ROUNDS);
    let mut seq = 1;
    let mut last_up = 0;
    loop {
        seq += 1;
        down.publish_copy(&small(seq, TAG_DOWN)).unwrap();
        fan.publish_copy(&small(seq, TAG_DOWN)).unwrap();
        if let Some(s) = up.fetch().unwrap() {
            if StateRef::is_new(&s) {
                assert!(s.seq > last_up && small_ok(&s, TAG_UP));
                last_up = s.seq;
            }
        }
        if qdown.try_push(&small(pushed + 1, TAG_DOWN)).unwrap() {
            pushed += 1;
        }
        while let Some(m) = qup.pop().unwrap() {
            // try_push never overwrites: every message arrives, in order.
            assert!(
                m.seq == popped + 1 && small_ok(&m, TAG_UP),
                "message {}",
                m.seq
            );
            popped += 1;
        }
        records.round();
        if seq % 1024 == 0 && peer.try_wait().unwrap().is_some() {
            break;
        }
    }
    let status = peer.wait().unwrap();
    // A process killed by seccomp has no exit code (SIGKILL).
    assert_eq!(
        status.code(),
        Some(0),
        "peer under seccomp strict mode: {status}"
    );
    let s = up.fetch().unwrap().expect("the peer published");
    assert_eq!(
        StateRef::seq(&s),
        ROUNDS,
        "every publish of the peer went through"
    );
    assert!(
        records.up_last > 0,
        "records came from the peer under seccomp"
    );
    assert!(small_ok(&s, TAG_UP));
    while let Some(m) = qup.pop().unwrap() {
        assert!(
            m.seq == popped + 1 && small_ok(&m, TAG_UP),
            "message {}",
            m.seq
        );
        popped += 1;
    }
    assert_eq!(popped, ROUNDS, "one message from the peer in every round");
}

/// A channel declared from a schema (as a bridge declares one it received) is the same channel
/// as one declared from the type: a peer built with the type attaches and reads what the
/// schema's producer side writes; an impossible schema is refused with the reason.
#[test]
fn a_channel_declared_from_a_decoded_schema_carries_the_type() {
    use rtipc::schema::{decode, encode, id_from_name};
    use rtipc::{ChannelSpec, Object};
    let received = decode(&encode(<Small as Object>::SCHEMA)).unwrap();
    let name = seg_name("from-schema");
    let spec = ChannelSpec::state("small", rtipc::Direction::CreatorToPeer)
        .object_schema(id_from_name("Small"), received.clone())
        .unwrap();
    let seg = rtipc::Segment::builder()
        .channel(spec)
        .create(&name)
        .unwrap();
    let peer = rtipc::Segment::open(&name).unwrap();
    let mut tx = rtipc::StateProducer::<Small>::new(&seg, "small").unwrap();
    let mut rx = rtipc::StateConsumer::<Small>::new(&peer, "small").unwrap();
    tx.publish_copy(&Small {
        seq: 7,
        tag: 1,
        check: 9,
    })
    .unwrap();
    let v = rx.fetch().unwrap().unwrap();
    assert_eq!((v.seq, v.tag, v.check), (7, 1, 9));
    let mut bad = received;
    bad.size = 4;
    let e = ChannelSpec::state("bad", rtipc::Direction::CreatorToPeer)
        .object_schema(1, bad)
        .unwrap_err();
    assert!(
        e.to_string().contains("describes no possible layout"),
        "{e}"
    );
}

/// A raw producer writes an update as bytes; a consumer built with the type reads it, and a
/// wrong length is refused.
#[test]
fn a_raw_producer_publishes_bytes_that_the_typed_consumer_reads() {
    let name = seg_name("raw-producer");
    let seg = rtipc::Segment::builder()
        .state::<Small>("small", rtipc::Direction::CreatorToPeer)
        .create(&name)
        .unwrap();
    let peer = rtipc::Segment::open(&name).unwrap();
    let mut tx = rtipc::RawStateProducer::new(&seg, "small").unwrap();
    let mut rx = rtipc::StateConsumer::<Small>::new(&peer, "small").unwrap();
    assert_eq!(tx.size(), 16);
    for i in 1..=100u64 {
        let mut bytes = i.to_le_bytes().to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&(i as u32 ^ 7).to_le_bytes());
        assert_eq!(tx.publish(&bytes).unwrap(), i);
        let v = rx.fetch().unwrap().unwrap();
        assert_eq!((v.seq, v.tag, v.check), (i, 3, i as u32 ^ 7));
    }
    let e = tx.publish(&[0; 15]).unwrap_err();
    assert!(e.to_string().contains("is 16 bytes, not 15"), "{e}");
}

/// Updates a raw producer says were never carried count as missed, for every kind of consumer,
/// and the sequence numbers keep the gap.
#[test]
fn a_raw_producer_publishes_after_a_gap_that_consumers_count_as_missed() {
    for consumers in [1u32, 2] {
        let name = seg_name(&format!("raw-gap-{consumers}"));
        let seg = rtipc::Segment::builder()
            .channel(
                rtipc::ChannelSpec::state("small", rtipc::Direction::CreatorToPeer)
                    .object::<Small>()
                    .consumers(consumers),
            )
            .create(&name)
            .unwrap();
        let peer = rtipc::Segment::open(&name).unwrap();
        let mut tx = rtipc::RawStateProducer::new(&seg, "small").unwrap();
        let mut rx = rtipc::StateConsumer::<Small>::new(&peer, "small").unwrap();
        let bytes = |i: u64| {
            let mut b = i.to_le_bytes().to_vec();
            b.extend_from_slice(&[0; 8]);
            b
        };
        let mut expect = 0u64;
        for (i, gap) in [(1u64, 4u64), (2, 0), (3, 1), (4, 1000)] {
            expect += gap + 1;
            assert_eq!(tx.publish_after(&bytes(i), gap).unwrap(), expect);
            assert_eq!(tx.published(), expect);
            let v = rx.fetch().unwrap().unwrap();
            assert_eq!(
                (v.seq, rtipc::StateRef::seq(&v), rtipc::StateRef::missed(&v)),
                (i, expect, gap)
            );
        }
        // Two publishes between fetches: the gap and the overwritten one both count.
        tx.publish_after(&bytes(5), 7).unwrap();
        tx.publish(&bytes(6)).unwrap();
        let v = rx.fetch().unwrap().unwrap();
        assert_eq!((v.seq, rtipc::StateRef::missed(&v)), (6, 8));
        assert!(tx.publish_after(&[0; 3], 1).is_err());
        assert_eq!(tx.published(), expect + 9, "a refused update skips nothing");
    }
}

use std::os::fd::AsFd;

use super::*;
use crate::{
    Direction, Object, QueueConsumer, QueueProducer, SegmentBuilder, StateConsumer, StateProducer,
};

#[derive(Object)]
#[repr(C)]
struct Pose {
    x: f64,
    y: [f32; 2],
}

/// A creator's segment and a peer attached to it in this process (two mappings of one memfd).
fn pair() -> (Segment, Segment) {
    let seg = SegmentBuilder::default()
        .state::<Pose>("pose", Direction::CreatorToPeer)
        .channel(
            ChannelSpec::state("fan", Direction::CreatorToPeer)
                .object::<Pose>()
                .consumers(3),
        )
        .queue::<Pose>("q", Direction::CreatorToPeer, 4)
        .notify(false)
        .create_anonymous()
        .unwrap();
    let fd = seg.as_fd().try_clone_to_owned().unwrap();
    let peer = Segment::from_fd(fd).unwrap();
    (seg, peer)
}

use crate::ChannelSpec;

fn pose(i: u64) -> Pose {
    Pose {
        x: i as f64,
        y: [i as f32, -(i as f32)],
    }
}

#[test]
fn facts_of_a_segment_and_its_channels() {
    let (seg, _peer) = pair();
    let ins = Inspector::of(&seg);
    let f = ins.facts();
    assert_eq!(f.channels, 3);
    assert_eq!(f.creator_pid, std::process::id());
    assert!(f.creator_alive);
    assert_eq!(f.name, None);
    let chans = ins.channels().unwrap();
    let names: Vec<_> = chans.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["pose", "fan", "q"]);
    let (pose, fan, q) = (&chans[0], &chans[1], &chans[2]);
    assert_eq!(
        (pose.kind, pose.consumers, pose.slots, pose.capacity),
        (ChannelKind::State, 1, 3, None)
    );
    assert_eq!((fan.consumers, fan.slots), (3, 5));
    assert_eq!(
        (q.kind, q.capacity, q.slots),
        (ChannelKind::Queue, Some(4), 6)
    );
    assert_eq!(pose.objects.len(), 1);
    assert_eq!(pose.objects[0].id, Pose::ID);
    assert_eq!(pose.objects[0].fingerprint, Pose::FINGERPRINT);
    assert_eq!(&pose.objects[0].schema, Pose::SCHEMA);
    assert_eq!(fan.ends.len(), 4);
    for c in &chans {
        assert_eq!(c.published, 0);
        assert!(c.ends.iter().all(|e| !e.held && e.pid.is_none()), "{c:?}");
    }
}

#[test]
fn holders_and_progress_follow_the_handles() {
    let (seg, peer) = pair();
    let ins = Inspector::of(&peer);
    let mut p = StateProducer::<Pose>::new(&seg, "pose").unwrap();
    let mut c = StateConsumer::<Pose>::new(&peer, "pose").unwrap();
    let me = Some(std::process::id());
    let ch = ins.channel("pose").unwrap();
    assert!(ch.ends.iter().all(|e| e.held && e.pid == me), "{ch:?}");
    assert_eq!(
        (ch.ends[1].taken, ch.ends[1].pending, ch.ends[1].missed),
        (None, Some(0), Some(0))
    );
    for i in 1..=5 {
        p.publish_copy(&pose(i)).unwrap();
    }
    assert_eq!(c.fetch().unwrap().unwrap().x, 5.0);
    for i in 6..=8 {
        p.publish_copy(&pose(i)).unwrap();
    }
    let ch = ins.channel("pose").unwrap();
    assert_eq!(ch.published, 8);
    assert_eq!(
        (ch.ends[1].taken, ch.ends[1].pending, ch.ends[1].missed),
        (Some(5), Some(3), Some(2))
    );
    drop(c);
    let ch = ins.channel("pose").unwrap();
    assert!(ch.ends[0].held && !ch.ends[1].held);

    // Fan-out: consumer 1 takes update 2, consumer 2 never fetches.
    let mut fp = StateProducer::<Pose>::new(&seg, "fan").unwrap();
    let mut c1 = StateConsumer::<Pose>::new_at(&peer, "fan", 1).unwrap();
    fp.publish_copy(&pose(1)).unwrap();
    fp.publish_copy(&pose(2)).unwrap();
    c1.fetch().unwrap().unwrap();
    fp.publish_copy(&pose(3)).unwrap();
    let ch = ins.channel("fan").unwrap();
    assert_eq!(ch.published, 3);
    let held: Vec<bool> = ch.ends.iter().map(|e| e.held).collect();
    assert_eq!(held, [true, false, true, false]);
    assert_eq!(
        (ch.ends[2].taken, ch.ends[2].pending, ch.ends[2].missed),
        (Some(2), Some(1), Some(0))
    );
    assert_eq!(
        (ch.ends[3].taken, ch.ends[3].pending, ch.ends[3].missed),
        (None, Some(3), Some(2))
    );

    // Queue of capacity 4: three pushed, one popped.
    let mut qp = QueueProducer::<Pose>::new(&seg, "q").unwrap();
    let mut qc = QueueConsumer::<Pose>::new(&peer, "q").unwrap();
    for i in 1..=3 {
        assert!(qp.try_push(&pose(i)).unwrap());
    }
    assert_eq!(qc.pop().unwrap().unwrap().x, 1.0);
    let ch = ins.channel("q").unwrap();
    assert_eq!(ch.published, 3);
    assert_eq!(
        (ch.ends[1].taken, ch.ends[1].pending, ch.ends[1].missed),
        (Some(1), Some(2), Some(0))
    );
}

#[test]
fn the_raw_observer_and_value_decode_give_the_published_fields() {
    let (seg, _peer) = pair();
    let ins = Inspector::of(&seg);
    let mut p = StateProducer::<Pose>::new(&seg, "pose").unwrap();
    p.publish_copy(&pose(7)).unwrap();
    let mut obs = ins.observer("pose").unwrap();
    let schema = obs.objects().next().unwrap().schema.clone();
    let seen = obs.observe().unwrap().unwrap();
    assert_eq!(crate::Observed::seq(&seen), 1);
    let v = Value::decode(&schema, crate::Observed::value(&seen)).unwrap();
    assert_eq!(v.to_json(), r#"{"x":7,"y":[7,-7]}"#);
}

#[test]
fn a_named_segment_is_inspected_through_a_read_only_mapping() {
    let name = format!("rtipc-inspect-ro-{}", std::process::id());
    let seg = SegmentBuilder::default()
        .state::<Pose>("pose", Direction::CreatorToPeer)
        .state::<Pose>("cmd", Direction::PeerToCreator)
        .replace_stale(true)
        .create(&name)
        .unwrap();
    let mut p = StateProducer::<Pose>::new(&seg, "pose").unwrap();
    p.publish_copy(&pose(3)).unwrap();
    let ins = Inspector::open(&name).unwrap();
    assert_eq!(ins.facts().name.as_deref(), Some(name.as_str()));
    assert_eq!(ins.channel("pose").unwrap().published, 1);
    // Observers work on it; nothing that writes can be made from it.
    let mut obs = crate::StateObserver::<Pose>::new(ins.segment(), "pose").unwrap();
    assert_eq!(obs.observe().unwrap().unwrap().x, 3.0);
    let e = StateConsumer::<Pose>::new(ins.segment(), "pose").unwrap_err();
    assert!(
        e.to_string().contains("opened read-only, for inspection"),
        "{e}"
    );
    // The peer's end of a channel the peer produces: refused for the mapping alone.
    let e = StateProducer::<Pose>::new(ins.segment(), "cmd").unwrap_err();
    assert!(
        e.to_string().contains("opened read-only, for inspection"),
        "{e}"
    );
    // Not found, and a name that is not a segment name.
    assert!(matches!(
        Inspector::open(&format!("{name}-none")),
        Err(crate::Error::NotFound { .. })
    ));
    assert!(matches!(
        Inspector::open("a/b"),
        Err(crate::Error::InvalidArgument(_))
    ));
}

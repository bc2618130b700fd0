//! The prefix rule of appendable types at attach, for the handles the separately built
//! programs of `evolution/` do not exercise: fan-out channels, observers, the handles that need
//! the exact layout, and every refusal's text. (The pairings of revisions across processes are
//! in `evolution/rev2/tests/pairings.rs`.)

use rtipc::schema::{prefix, NotPrefix};
use rtipc::{
    Direction, Error, MultiStateConsumer, MultiStateProducer, Object, QueueObserver,
    RecordConsumer, Segment, StateConsumer, StateObserver, StateProducer, StateRef,
};

mod v1 {
    use super::Object;
    /// Revision 1.
    #[derive(Object, Debug)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Pose {
        pub x: u64,
        pub y: u64,
    }
}

mod v2 {
    use super::Object;
    /// Revision 2: `z` appended.
    #[derive(Object, Debug)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Pose {
        pub x: u64,
        pub y: u64,
        #[rtipc(since = 2)]
        pub z: u64,
    }
}

mod changed {
    use super::Object;
    /// `y` changed type in the middle, and a field appended.
    #[derive(Object, Debug)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Pose {
        pub x: u64,
        pub y: f64,
        #[rtipc(since = 2)]
        pub z: u64,
    }
}

mod plain {
    use super::Object;
    /// Revision 2's layout, not appendable.
    #[derive(Object, Debug)]
    #[repr(C)]
    pub struct Pose {
        pub x: u64,
        pub y: u64,
        pub z: u64,
    }
}

mod nested1 {
    use super::Object;
    #[derive(Object, Debug)]
    #[repr(C)]
    pub struct Inner {
        pub a: u32,
        pub b: u32,
    }
    #[derive(Object, Debug)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Arm {
        pub inner: Inner,
    }
}

mod nested2 {
    use super::Object;
    #[derive(Object, Debug)]
    #[repr(C)]
    pub struct Inner {
        pub a: u32,
        pub b: i32,
    }
    #[derive(Object, Debug)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Arm {
        pub inner: Inner,
        #[rtipc(since = 2)]
        pub extra: u64,
    }
}

fn name(tag: &str) -> String {
    format!("rtipc-evolution-{}-{tag}", std::process::id())
}

fn mismatch(e: Error) -> String {
    assert!(matches!(e, Error::SchemaMismatch { .. }), "{e:?}");
    e.to_string()
}

/// Equal fingerprints take the fast path: no evolution to report.
#[test]
fn the_same_revision_attaches_with_nothing_to_report() {
    let seg = Segment::builder()
        .state::<v2::Pose>("pose", Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    let tx = StateProducer::<v2::Pose>::new(&seg, "pose").unwrap();
    assert!(tx.evolution().is_none());
}

/// A fan-out channel of revision 2 read by a revision-1 consumer end and a revision-1
/// observer, each reading its prefix in place, beside a revision-2 end.
#[test]
fn fan_out_ends_and_observers_of_an_earlier_revision_read_their_prefix() {
    let seg = Segment::builder()
        .state::<v2::Pose>("pose", Direction::CreatorToPeer)
        .consumers(2)
        .create(&name("fanout-consumers"))
        .unwrap();
    let peer = Segment::open(&name("fanout-consumers")).unwrap();
    let mut tx = StateProducer::<v2::Pose>::new(&seg, "pose").unwrap();
    let mut old = StateConsumer::<v1::Pose>::new(&peer, "pose").unwrap();
    let mut new = StateConsumer::<v2::Pose>::new(&peer, "pose").unwrap();
    let mut watch = StateObserver::<v1::Pose>::new(&peer, "pose").unwrap();
    assert_eq!(
        old.evolution().unwrap().to_string(),
        "revision 1 here, 2 in the peer's schema; only the peer's has `z`"
    );
    assert!(new.evolution().is_none());
    assert_eq!(
        watch.evolution().unwrap().to_string(),
        "revision 1 here, 2 in the peer's schema; only the peer's has `z`"
    );
    for i in 1..=100u64 {
        tx.publish_copy(&v2::Pose {
            x: i,
            y: 3 * i,
            z: 5 * i,
        })
        .unwrap();
        let o = old.fetch().unwrap().unwrap();
        assert_eq!((o.x, o.y, StateRef::seq(&o)), (i, 3 * i, i));
        let n = new.fetch().unwrap().unwrap();
        assert_eq!((n.x, n.y, n.z), (i, 3 * i, 5 * i));
        let w = watch.observe().unwrap().unwrap();
        assert_eq!((w.x, w.y), (i, 3 * i));
    }
}

/// A revision-1 producer on a revision-2 fan-out channel zeroes `z` for every end.
#[test]
fn an_earlier_producer_zeroes_the_tail_for_every_end() {
    let seg = Segment::builder()
        .state::<v2::Pose>("pose", Direction::PeerToCreator)
        .consumers(2)
        .create(&name("fanout-producer"))
        .unwrap();
    let peer = Segment::open(&name("fanout-producer")).unwrap();
    let mut a = StateConsumer::<v2::Pose>::new(&seg, "pose").unwrap();
    let mut b = StateConsumer::<v2::Pose>::new(&seg, "pose").unwrap();
    {
        let mut newer = StateProducer::<v2::Pose>::new(&peer, "pose").unwrap();
        for i in 1..=10u64 {
            newer
                .publish_copy(&v2::Pose {
                    x: i,
                    y: i,
                    z: u64::MAX,
                })
                .unwrap();
        }
    }
    let mut older = StateProducer::<v1::Pose>::new(&peer, "pose").unwrap();
    assert!(older.evolution().is_some());
    for i in 11..=40u64 {
        older.publish_copy(&v1::Pose { x: i, y: i }).unwrap();
        for end in [&mut a, &mut b] {
            let v = end.fetch().unwrap().unwrap();
            assert_eq!((v.x, v.y, v.z), (i, i, 0), "a stale tail");
        }
    }
}

/// Every refusal keeps the field-level diff and says why the prefix rule did not apply.
#[test]
fn refusals_say_why_the_prefix_rule_did_not_apply() {
    let seg = Segment::builder()
        .state::<v1::Pose>("pose", Direction::CreatorToPeer)
        .queue::<v1::Pose>("poses", Direction::CreatorToPeer, 8)
        .record::<v1::Pose>("tracks", Direction::CreatorToPeer, 4096)
        .create(&name("refusals"))
        .unwrap();
    let peer = Segment::open(&name("refusals")).unwrap();
    // A field changed in the middle.
    let e = mismatch(StateConsumer::<changed::Pose>::new(&peer, "pose").unwrap_err());
    assert_eq!(
        e,
        "schema mismatch for `Pose` in channel `pose`: size is 24 bytes here, 16 bytes in the \
         peer's schema; field `y`: f64 at offset 8 here, u64 at offset 8 in the peer's schema; \
         field `z` (u64 at offset 16) is missing from the peer's schema; the prefix rule does \
         not apply: field `y` (number 2) differs, and a later revision may only append fields \
         at the end"
    );
    // One side not appendable.
    let e = mismatch(StateConsumer::<plain::Pose>::new(&peer, "pose").unwrap_err());
    assert_eq!(
        e,
        "schema mismatch for `Pose` in channel `pose`: size is 24 bytes here, 16 bytes in the \
         peer's schema; the type is not appendable here and is in the peer's schema; field `z` \
         (u64 at offset 16) is missing from the peer's schema; the prefix rule does not apply: \
         our type is not `#[rtipc(appendable)]`, so the schemas must match exactly"
    );
    // A later revision refused by an in-place consumer and by an observer.
    let e = mismatch(StateObserver::<v2::Pose>::new(&peer, "pose").unwrap_err());
    assert!(e.contains("has fields the segment's slots do not"), "{e}");
    let e = mismatch(QueueObserver::<v2::Pose>::new(&peer, "poses").unwrap_err());
    assert!(e.contains("has fields the segment's slots do not"), "{e}");
    // A multi-object consumer reads an earlier revision in place, not a later one; a
    // multi-object producer needs the exact layout, and says so.
    let multi = MultiStateConsumer::new(&peer, "pose").unwrap();
    let e = mismatch(multi.object::<v2::Pose>().unwrap_err());
    assert!(e.contains("has fields the segment's slots do not"), "{e}");
    drop(multi);
    let multi = MultiStateProducer::new(&seg, "pose").unwrap();
    let e = mismatch(multi.object::<changed::Pose>().unwrap_err());
    assert!(e.contains("field `y` (number 2) differs"), "{e}");
    drop(multi);
    let older = Segment::builder()
        .state::<v2::Pose>("pose", Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    let multi = MultiStateProducer::new(&older, "pose").unwrap();
    let e = mismatch(multi.object::<v1::Pose>().unwrap_err());
    assert!(
        e.ends_with(
            "this handle needs the exact layout; the prefix rule of appendable types applies \
             to `StateProducer`, `StateConsumer`, `StateCopier`, `QueueProducer`, \
             `QueueConsumer`, `QueueCopier`, `RecordCopier`, `RecordSender`, observers and \
             `MultiStateConsumer`"
        ),
        "{e}"
    );
    let e = mismatch(RecordConsumer::<v2::Pose>::new(&peer, "tracks").unwrap_err());
    assert!(
        e.contains("a record channel's records are arrays of this type"),
        "{e}"
    );
}

/// A nested object never changes under the rule, even in an appendable outer type.
#[test]
fn a_changed_nested_object_is_refused() {
    let e = prefix(
        <nested2::Arm as Object>::SCHEMA,
        <nested1::Arm as Object>::SCHEMA,
    )
    .unwrap_err();
    assert!(
        matches!(&e, NotPrefix::ChangedField { field, nested: true, .. } if field == "inner"),
        "{e:?}"
    );
    let seg = Segment::builder()
        .state::<nested1::Arm>("arm", Direction::PeerToCreator)
        .create_anonymous()
        .unwrap();
    let e = mismatch(StateConsumer::<nested2::Arm>::new(&seg, "arm").unwrap_err());
    assert!(
        e.ends_with(
            "the prefix rule does not apply: field `inner` (number 1) is a nested object or \
             array that changed; only whole fields are appended, to the outer struct"
        ),
        "{e}"
    );
}

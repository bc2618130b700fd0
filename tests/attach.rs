//! Attach-time checks: schema mismatches and corrupt segments give clear errors, never panics.
//!
//! The peer side here is a second, independent mapping of the same POSIX shared-memory object
//! (`Segment::open`), exactly what another process gets; corruption is written through the
//! shared-memory file itself.

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use common::{
    ctrl_line, dup, entry_offset, memfd, read_u64, seg_name, shm_file, write_n, ENTRY_FIELDS,
    HEADER_CREATOR_PID, HEADER_FIELDS, HEADER_SEGMENT_SIZE, STATE_LINE_MIDDLE,
};
use rtipc::{
    DataError, Direction, End, Error, Object, Segment, StateConsumer, StateProducer, StateRef,
};

mod ours {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f32,
        pub torque: f32,
        pub limits: [f32; 4],
    }
}

mod renamed_field {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f32,
        pub effort: f32,
        pub limits: [f32; 4],
    }
}

mod swapped_fields {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub torque: f32,
        pub position: f32,
        pub limits: [f32; 4],
    }
}

mod changed_type {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f32,
        pub torque: u32,
        pub limits: [f32; 4],
    }
}

mod changed_len {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f32,
        pub torque: f32,
        pub limits: [f32; 5],
    }
}

mod other_id {
    use rtipc::Object;
    #[derive(Object)]
    #[repr(C)]
    #[rtipc(id = 7)]
    pub struct Joint {
        pub position: f32,
        pub torque: f32,
        pub limits: [f32; 4],
    }
}

mod same_layout {
    use rtipc::Object;
    /// Declared again in another module: same layout, so it must attach.
    #[derive(Object)]
    #[repr(C)]
    pub struct Joint {
        pub position: f32,
        pub torque: f32,
        pub limits: [f32; 4],
    }
}

#[derive(Object)]
#[repr(C)]
struct Gripper {
    opening: f32,
}

fn create(test: &str) -> (Segment, String) {
    let name = seg_name(test);
    let seg = Segment::builder()
        .state::<ours::Joint>("arm", Direction::CreatorToPeer)
        .state::<Gripper>("hand", Direction::PeerToCreator)
        .create(&name)
        .unwrap();
    (seg, name)
}

fn consumer_err<T: Object>(peer: &Segment, channel: &str) -> Error {
    StateConsumer::<T>::new(peer, channel).expect_err("must be refused")
}

#[test]
fn mismatch_matrix_gives_distinct_errors_naming_the_cause() {
    let (_seg, name) = create("matrix");
    let peer = Segment::open(&name).unwrap();

    // The same declaration in another module attaches.
    let mut ok = StateConsumer::<same_layout::Joint>::new(&peer, "arm").unwrap();
    assert!(ok.fetch().unwrap().is_none(), "nothing published yet");
    drop(ok);

    let cases: Vec<(&str, Error, &[&str])> = vec![
        (
            "renamed field",
            consumer_err::<renamed_field::Joint>(&peer, "arm"),
            &["`effort`", "`torque`"],
        ),
        (
            "swapped fields",
            consumer_err::<swapped_fields::Joint>(&peer, "arm"),
            &["`torque`", "offset 0 here", "offset 4 in the peer's schema"],
        ),
        (
            "changed type",
            consumer_err::<changed_type::Joint>(&peer, "arm"),
            &["field `torque`: u32 at offset 4 here, f32 at offset 4 in the peer's schema"],
        ),
        (
            "changed array length",
            consumer_err::<changed_len::Joint>(&peer, "arm"),
            &["`limits`", "5 elements here, 4 in the peer's schema"],
        ),
        (
            "different id",
            consumer_err::<other_id::Joint>(&peer, "arm"),
            &["id", "0x0000000000000007"],
        ),
        (
            "missing object",
            consumer_err::<Gripper>(&peer, "arm"),
            &["`arm`", "`Gripper`"],
        ),
        (
            "missing channel",
            consumer_err::<ours::Joint>(&peer, "leg"),
            &["`leg`", "`arm`", "`hand`"],
        ),
    ];
    let mut messages = std::collections::HashSet::new();
    for (case, err, needles) in &cases {
        let msg = err.to_string();
        for n in *needles {
            assert!(msg.contains(n), "{case}: `{msg}` should mention {n}");
        }
        assert!(
            messages.insert(msg.clone()),
            "{case}: message not distinct: {msg}"
        );
        match (case, err) {
            (&"missing channel", Error::ChannelNotFound { .. })
            | (&"missing object", Error::ObjectNotFound { .. })
            | (&"different id", Error::IdMismatch { .. }) => {}
            (_, Error::SchemaMismatch { .. })
                if !["missing channel", "missing object", "different id"].contains(case) => {}
            _ => panic!("{case}: unexpected error kind {err:?}"),
        }
    }
}

#[test]
fn wrong_end_and_double_claims_are_refused() {
    let (seg, name) = create("claims");
    let peer = Segment::open(&name).unwrap();
    // The peer cannot produce a creator-to-peer channel.
    let err = StateProducer::<ours::Joint>::new(&peer, "arm").unwrap_err();
    assert!(matches!(err, Error::WrongChannel { .. }), "{err}");
    let first = StateConsumer::<ours::Joint>::new(&peer, "arm").unwrap();
    let err = StateConsumer::<ours::Joint>::new(&peer, "arm").unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyClaimed {
                end: End::Consumer,
                ..
            }
        ),
        "{err}"
    );
    drop(first);
    // Dropping the handle released the claim.
    let _again = StateConsumer::<ours::Joint>::new(&peer, "arm").unwrap();
    let _tx = StateProducer::<ours::Joint>::new(&seg, "arm").unwrap();
    let err = StateProducer::<ours::Joint>::new(&seg, "arm").unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyClaimed {
                end: End::Producer,
                ..
            }
        ),
        "{err}"
    );
}

/// Byte offsets and widths of every header field (layout version 2), and a bad value for each
/// (version 1: the layout before the crash-safe protocols).
fn expect_open_error(name: &str, what: &str) -> Error {
    match Segment::open(name) {
        Ok(_) => panic!("{what}: corrupt segment was accepted"),
        Err(e) => e,
    }
}

#[test]
fn every_corrupted_header_field_is_an_error() {
    for &(field, at, width, value) in HEADER_FIELDS {
        let (_seg, name) = create(&format!("h-{field}"));
        let f = shm_file(&name);
        write_n(&f, at, width, value);
        let err = expect_open_error(&name, field);
        let msg = err.to_string();
        let named = msg.contains(&format!("header.{field}"))
            || matches!(
                (field, &err),
                ("version", Error::UnsupportedVersion { .. }) | ("ready", Error::NotReady)
            );
        assert!(named, "{field}: error should name the field: {msg}");
    }
}

#[test]
fn every_corrupted_table_field_is_an_error() {
    for ch in 0..2u64 {
        for &(field, at, width, value) in ENTRY_FIELDS {
            let (_seg, name) = create(&format!("t{ch}-{field}"));
            let f = shm_file(&name);
            write_n(&f, entry_offset(&f, ch) + at, width, value);
            let err = expect_open_error(&name, field);
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("channel[{ch}]")) || msg.contains("header.channel"),
                "channel {ch} {field}: error should name the channel field: {msg}"
            );
        }
    }
}

#[test]
fn overlapping_slots_are_an_error() {
    let (_seg, name) = create("overlap");
    let f = shm_file(&name);
    // Point channel 1's control block and slots at channel 0's.
    for at in [32u64, 48] {
        let v = read_u64(&f, entry_offset(&f, 0) + at);
        write_n(&f, entry_offset(&f, 1) + at, 8, v);
    }
    let err = expect_open_error(&name, "overlap");
    assert!(err.to_string().contains("overlaps"), "{err}");
}

#[test]
fn truncated_segment_is_an_error() {
    let (seg, name) = create("truncated");
    let f = shm_file(&name);
    let size = read_u64(&f, HEADER_SEGMENT_SIZE);
    // The creator maps the whole segment but touches nothing past the header from here on.
    f.set_len(size / 2).unwrap();
    let err = expect_open_error(&name, "truncated");
    assert!(err.to_string().contains("header.segment_size"), "{err}");
    f.set_len(64).unwrap();
    let err = expect_open_error(&name, "tiny");
    assert!(err.to_string().contains("header"), "{err}");
    drop(seg);
}

#[test]
fn corrupt_index_word_fails_the_next_fetch_and_publish() {
    let (seg, name) = create("index");
    let peer = Segment::open(&name).unwrap();
    let mut tx = StateProducer::<ours::Joint>::new(&seg, "arm").unwrap();
    let mut rx = StateConsumer::<ours::Joint>::new(&peer, "arm").unwrap();
    tx.publish_copy(&ours::Joint {
        position: 1.0,
        torque: 2.0,
        limits: [0.0; 4],
    })
    .unwrap();
    assert_eq!(rx.fetch().unwrap().unwrap().torque, 2.0);

    let f = shm_file(&name);
    let middle = ctrl_line(&f, 0, STATE_LINE_MIDDLE);
    // Index 3 does not exist, and the word claims new data.
    write_n(&f, middle, 8, (9 << 3) | 0b100 | 3);
    let err = rx.fetch().map(|_| ()).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("middle"), "{err}");
    // The handle stays refused afterwards.
    assert!(matches!(rx.fetch().map(|_| ()), Err(DataError::Poisoned)));
    write_n(&f, middle, 8, 3);
    let err = tx.publish_copy(&ours::Joint::zeroed()).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(matches!(tx.write().map(|_| ()), Err(DataError::Poisoned)));
}

#[test]
fn anonymous_segments_check_seals_and_size() {
    let seg = Segment::builder()
        .state::<ours::Joint>("arm", Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fd(dup(seg.as_fd())).unwrap();
    let mut rx = StateConsumer::<ours::Joint>::new(&peer, "arm").unwrap();
    let mut tx = StateProducer::<ours::Joint>::new(&seg, "arm").unwrap();
    tx.publish_copy(&ours::Joint {
        position: 3.0,
        torque: 4.0,
        limits: [1.0, 2.0, 3.0, 4.0],
    })
    .unwrap();
    let s = rx.fetch().unwrap().unwrap();
    assert_eq!((s.position, s.limits[3], StateRef::seq(&s)), (3.0, 4.0, 1));

    // A copy of the segment in a smaller, sealed memfd.
    let mut image = vec![0u8; 8192];
    let src = std::fs::File::from(dup(seg.as_fd()));
    let n = src.read_at(&mut image, 0).unwrap();
    let small = memfd(&image[..n / 2], true);
    let err = Segment::from_fd(small).unwrap_err();
    assert!(err.to_string().contains("segment_size"), "{err}");

    // The same bytes, full size, but without seals.
    let unsealed = memfd(&image[..n], false);
    let err = Segment::from_fd(unsealed).unwrap_err();
    assert!(err.to_string().contains("sealed"), "{err}");

    // Not a memfd at all.
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let err = Segment::from_fd(file.into()).unwrap_err();
    assert!(err.to_string().contains("memfd"), "{err}");
}

#[test]
fn the_creator_fields_are_informational() {
    let (seg, name) = create("creator-fields");
    let f = shm_file(&name);
    write_n(&f, HEADER_CREATOR_PID, 4, 0x7fff_fff0);
    write_n(&f, HEADER_CREATOR_PID + 8, 8, 12345);
    // The creator holds its lock: the segment is alive whatever its header says.
    let peer = Segment::open(&name).unwrap();
    assert_eq!(peer.creator_pid(), 0x7fff_fff0);
    assert!(peer.creator_alive());
    assert!(peer.check().is_ok());
    drop(seg);
    // The creator is gone (and unlinked the name).
    assert!(!peer.creator_alive());
    assert!(matches!(peer.check(), Err(Error::CreatorGone { .. })));
}

/// 64 KiB, to make a segment larger than any test machine's memory with few messages.
#[derive(Object)]
#[repr(C)]
struct Huge {
    words: [u64; 8192],
}

#[test]
fn a_segment_larger_than_memory_is_an_error_at_create() {
    // 2^20 messages of 64 KiB: 64 GiB of slots.
    let builder = Segment::builder().queue::<Huge>("huge", Direction::CreatorToPeer, 1 << 20);
    let err = builder.create_anonymous().unwrap_err();
    assert!(
        err.to_string().contains("reserving the segment's memory"),
        "{err}"
    );
    let err = builder.create(&seg_name("huge")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

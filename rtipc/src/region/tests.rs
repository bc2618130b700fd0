use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::{Object, Segment};

#[derive(Object)]
#[repr(C)]
struct Limits {
    max: u32,
    min: u32,
}

#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
struct Control {
    ticks: AtomicU64,
    level: AtomicI32,
    flags: AtomicU32,
    offset: AtomicI64,
    ready: Event,
    jobs: Semaphore,
    limits: Limits,
    lanes: [AtomicU32; 4],
}

/// A creator's segment with a region, and a peer's mapping of the same memfd.
fn pair() -> (Segment, Segment) {
    let seg = Segment::builder()
        .region::<Control>("control", |c| {
            c.limits.max = 9;
            c.limits.min = 2;
            c.ticks.store(100, Ordering::Relaxed);
            c.lanes[3].store(7, Ordering::Relaxed);
        })
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap();
    (seg, peer)
}

#[test]
fn the_initial_value_is_there_for_the_peer_and_atomics_are_shared() {
    let (seg, peer) = pair();
    let a = SharedRegion::<Control>::new(&seg, "control").unwrap();
    let b = SharedRegion::<Control>::new(&peer, "control").unwrap();
    assert_eq!((b.limits.max, b.limits.min), (9, 2));
    assert_eq!(b.ticks.load(Ordering::Relaxed), 100);
    assert_eq!(b.lanes[3].load(Ordering::Relaxed), 7);
    assert_eq!(b.level.load(Ordering::Relaxed), 0);
    a.ticks.fetch_add(5, Ordering::Relaxed);
    b.offset.store(-3, Ordering::Relaxed);
    assert_eq!(b.ticks.load(Ordering::Relaxed), 105);
    assert_eq!(a.offset.load(Ordering::Relaxed), -3);
    // Any number of handles, on either side.
    let c = SharedRegion::<Control>::new(&peer, "control").unwrap();
    c.flags.fetch_or(4, Ordering::Relaxed);
    assert_eq!(a.flags.load(Ordering::Relaxed), 4);
}

#[test]
fn a_segment_with_a_region_is_layout_version_4() {
    let (seg, _peer) = pair();
    assert_eq!(seg.layout().header.version, 4);
    let plain = Segment::builder()
        .state::<Limits>("s", crate::Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    assert_eq!(plain.layout().header.version, 2);
}

#[test]
fn a_region_of_another_type_or_kind_is_refused() {
    #[derive(Object)]
    #[rtipc(region, name = "Control")]
    #[repr(C)]
    struct OtherControl {
        ticks: u64,
    }
    let (seg, _peer) = pair();
    let e = SharedRegion::<OtherControl>::new(&seg, "control").unwrap_err();
    assert!(
        matches!(
            e,
            crate::Error::IdMismatch { .. } | crate::Error::SchemaMismatch { .. }
        ),
        "{e}"
    );
    let s = Segment::builder()
        .state::<Limits>("s", crate::Direction::CreatorToPeer)
        .create_anonymous()
        .unwrap();
    let e = SharedRegion::<Control>::new(&s, "s").unwrap_err();
    assert!(e.to_string().contains("a region"), "{e}");
    assert!(crate::StateProducer::<Limits>::new(&seg, "control").is_err());
}

#[test]
fn a_peer_with_a_plain_integer_for_an_atomic_gets_the_field() {
    #[derive(Object)]
    #[rtipc(region, name = "Control", id = 0x1234)]
    #[repr(C)]
    struct Plain {
        ticks: u64,
    }
    #[derive(Object)]
    #[rtipc(region, name = "Control", id = 0x1234)]
    #[repr(C)]
    struct Atomic {
        ticks: AtomicU64,
    }
    let seg = Segment::builder()
        .region::<Atomic>("r", |_| {})
        .create_anonymous()
        .unwrap();
    let e = SharedRegion::<Plain>::new(&seg, "r").unwrap_err();
    let text = e.to_string();
    assert!(text.contains("field `ticks`"), "{text}");
    assert!(text.contains("AtomicU64"), "{text}");
}

#[test]
fn event_wait_returns_on_notify_and_times_out() {
    let (seg, peer) = pair();
    let a = SharedRegion::<Control>::new(&seg, "control").unwrap();
    let b = SharedRegion::<Control>::new(&peer, "control").unwrap();
    let seen = b.ready.current();
    let t0 = Instant::now();
    assert_eq!(b.ready.wait(seen, Some(Duration::from_millis(20))), None);
    assert!(t0.elapsed() >= Duration::from_millis(20));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            a.ready.notify();
        });
        assert_eq!(b.ready.wait(seen, None), Some(seen.wrapping_add(1)));
    });
    // A notify before the wait is not lost.
    let seen = b.ready.current();
    a.ready.notify();
    assert_eq!(
        b.ready.wait(seen, Some(Duration::ZERO)),
        Some(seen.wrapping_add(1))
    );
}

#[test]
fn semaphore_counts_and_wakes() {
    let (seg, peer) = pair();
    let a = SharedRegion::<Control>::new(&seg, "control").unwrap();
    let b = SharedRegion::<Control>::new(&peer, "control").unwrap();
    assert!(!b.jobs.try_wait());
    assert!(!b.jobs.wait(Some(Duration::from_millis(5))));
    assert!(a.jobs.post());
    assert!(a.jobs.post());
    assert_eq!(b.jobs.available(), 2);
    assert!(b.jobs.try_wait());
    assert!(b.jobs.wait(Some(Duration::ZERO)));
    assert!(!b.jobs.try_wait());
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..1000 {
                assert!(a.jobs.post());
            }
        });
        for _ in 0..1000 {
            assert!(b.jobs.wait(Some(Duration::from_secs(10))));
        }
    });
    assert_eq!(b.jobs.available(), 0);
}

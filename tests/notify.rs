//! Wake-ups across processes: a consumer blocked in `wait` is woken by a publish from another
//! process, through a futex (named segment) and through an eventfd (segment received with the
//! handshake). Each test prints the median wake-up latency; nothing asserts on timing.

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use common::*;
use rtipc::handshake::Listener;
use rtipc::notify::Pollable;
use rtipc::{
    ChannelSpec, Direction, Error, MessageRef, QueueConsumer, QueueProducer, Segment,
    StateConsumer, StateProducer, StateRef,
};

const WAKEUPS: u64 = 1_000;
/// How long a peer may take.
const PEER_LIMIT: Duration = Duration::from_secs(60);

/// Answers `WAKEUPS` pings, blocking in `wait` for each; returns the latencies in ns.
fn answer_pings(seg: &Segment) -> Vec<u64> {
    let mut ping = StateConsumer::<Stamp>::new(seg, "ping").unwrap();
    let mut pong = StateProducer::<Stamp>::new(seg, "pong").unwrap();
    let mut latencies = Vec::with_capacity(WAKEUPS as usize);
    let mut last = 0;
    while last < WAKEUPS {
        assert!(
            ping.wait(Some(Duration::from_secs(10))).unwrap(),
            "woken within 10 s: no wake-up was lost"
        );
        let now = monotonic_ns();
        let s = ping.fetch().unwrap().expect("data after a wake-up");
        assert!(StateRef::is_new(&s), "wait returns true only for new data");
        assert_eq!(s.seq, last + 1, "one ping at a time");
        latencies.push(now.saturating_sub(s.sent_ns));
        last = s.seq;
        pong.publish_copy(&Stamp {
            seq: last,
            sent_ns: now,
        })
        .unwrap();
    }
    latencies
}

fn report(what: &str, mut latencies: Vec<u64>) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    eprintln!(
        "{what}: {} wake-ups across processes, median {:.1} us, p90 {:.1} us, p99 {:.1} us",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

#[test]
fn futex_wakes_a_blocked_consumer_in_another_process() {
    let name = seg_name("wake-futex");
    let seg = wake_channels(Segment::builder()).create(&name).unwrap();
    assert!(seg.event_fds().is_empty(), "named segments use the futex");
    let peer = spawn_peer(Role::WakeNamed, &name, WAKEUPS);
    let latencies = answer_pings(&seg);
    wait_peer(peer, PEER_LIMIT);
    report("futex (named segment)", latencies);
}

#[test]
fn eventfd_wakes_a_blocked_consumer_in_another_process() {
    let path = sock_path("wake-eventfd");
    let listener = Listener::bind(&path).unwrap();
    let peer = spawn_peer(Role::WakeClient, path.to_str().unwrap(), WAKEUPS);
    let conn = listener
        .accept(|req| {
            assert_eq!(req.peer().pid, peer.id(), "SO_PEERCRED names the client");
            Ok(())
        })
        .unwrap();
    assert_eq!(
        conn.segment().event_fds().len(),
        2,
        "one eventfd per channel"
    );
    let latencies = answer_pings(conn.segment());
    wait_peer(peer, PEER_LIMIT);
    report("eventfd (anonymous segment via handshake)", latencies);
    // The client is gone: the connection says so, and its socket polls as hung up.
    assert!(!conn.peer_alive());
    let revents = poll_in(conn.as_fd().as_raw_fd(), 1000).expect("the socket polls");
    assert_ne!(revents & libc::POLLHUP, 0, "POLLHUP once the peer is gone");
}

/// A queue consumer that only ever blocks in `wait` receives every message of a producer in
/// another process that retries `try_push` when the queue is full: a lost wake-up would stall
/// it for the full 10 s timeout.
#[test]
fn queue_consumer_is_woken_for_every_message_from_another_process() {
    const MESSAGES: u64 = 20_000;
    let name = seg_name("qwake");
    let seg = Segment::builder()
        .channel(
            ChannelSpec::queue("numbers", Direction::PeerToCreator, 8)
                .object::<Numbered>()
                .notify(true),
        )
        .create(&name)
        .unwrap();
    let mut rx = QueueConsumer::<Numbered>::new(&seg, "numbers").unwrap();
    let peer = spawn_peer(Role::QueueTry, &name, MESSAGES);
    let (mut last, mut waits) = (0, 0u64);
    while last < MESSAGES {
        assert!(
            rx.wait(Some(Duration::from_secs(10))).unwrap(),
            "woken within 10 s after message {last}"
        );
        waits += 1;
        while let Some(m) = rx.pop().unwrap() {
            assert_eq!(m.n, last + 1, "in order, none lost (try_push)");
            assert_eq!(MessageRef::missed(&m), 0);
            assert!(numbered_ok(&m));
            last = m.n;
        }
    }
    wait_peer(peer, PEER_LIMIT);
    eprintln!("queue: {MESSAGES} messages in {waits} waits");
}

#[test]
fn queue_waits_and_polls_like_state() {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::queue("q", Direction::CreatorToPeer, 4)
                .object::<Small>()
                .notify(true),
        )
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fds(
        dup(seg.as_fd()),
        seg.event_fds().into_iter().map(dup).collect(),
    )
    .unwrap();
    let mut tx = QueueProducer::<Small>::new(&seg, "q").unwrap();
    let mut rx = Pollable::new(QueueConsumer::<Small>::new(&peer, "q").unwrap()).unwrap();
    assert!(!rx.wait(Some(Duration::from_millis(5))).unwrap());
    assert!(!rx.arm().unwrap());
    assert!(!tx.force_push(&small(1, TAG_DOWN)).unwrap());
    assert!(poll_in(rx.as_raw_fd(), 5000).is_some(), "readable");
    assert!(rx.wait(None).unwrap());
    assert_eq!(rx.pop().unwrap().unwrap().seq, 1);
    assert!(
        !rx.wait(Some(Duration::ZERO)).unwrap(),
        "popped: nothing left"
    );
}

fn anonymous_pair(notify: bool) -> (Segment, Segment) {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("s", Direction::CreatorToPeer)
                .object::<Small>()
                .notify(notify),
        )
        .create_anonymous()
        .unwrap();
    let peer = Segment::from_fds(
        dup(seg.as_fd()),
        seg.event_fds().into_iter().map(dup).collect(),
    )
    .unwrap();
    (seg, peer)
}

#[test]
fn waiting_on_a_channel_without_notify_is_a_clear_error() {
    let (seg, peer) = anonymous_pair(false);
    assert!(seg.event_fds().is_empty());
    let mut rx = StateConsumer::<Small>::new(&peer, "s").unwrap();
    let err = rx.wait(Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, Error::NotifyDisabled { .. }), "{err}");
    assert!(err.to_string().contains("notify(true)"), "{err}");
    assert!(matches!(rx.arm(), Err(Error::NotifyDisabled { .. })));
    assert!(matches!(Pollable::new(rx), Err(Error::NoEventFd { .. })));
}

#[test]
fn named_segments_wait_but_cannot_be_polled() {
    let name = seg_name("nopoll");
    let seg = wake_channels(Segment::builder()).create(&name).unwrap();
    let mut rx = StateConsumer::<Stamp>::new(&seg, "ping").unwrap();
    assert!(rx.wait_fd().is_none());
    assert!(matches!(rx.arm(), Err(Error::NoEventFd { .. })));
    let start = Instant::now();
    assert!(
        !rx.wait(Some(Duration::from_millis(20))).unwrap(),
        "times out"
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    let err = Pollable::new(rx).unwrap_err();
    assert!(err.to_string().contains("futex"), "{err}");
}

#[test]
fn wait_returns_at_once_when_data_is_there_and_after_a_publish_from_another_thread() {
    let (seg, peer) = anonymous_pair(true);
    let mut tx = StateProducer::<Small>::new(&seg, "s").unwrap();
    let mut rx = StateConsumer::<Small>::new(&peer, "s").unwrap();
    assert!(!rx.wait(Some(Duration::from_millis(5))).unwrap());
    tx.publish_copy(&small(1, TAG_DOWN)).unwrap();
    assert!(rx.wait(None).unwrap(), "data is there");
    assert!(rx.wait(None).unwrap(), "still there until fetched");
    rx.fetch().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.publish_copy(&small(2, TAG_DOWN)).unwrap();
    });
    assert!(rx.wait(Some(Duration::from_secs(10))).unwrap());
    assert_eq!(rx.fetch().unwrap().unwrap().seq, 2);
    t.join().unwrap();
}

#[test]
fn pollable_eventfd_becomes_readable_after_arm_and_publish() {
    let (seg, peer) = anonymous_pair(true);
    let mut tx = StateProducer::<Small>::new(&seg, "s").unwrap();
    let mut rx = Pollable::new(StateConsumer::<Small>::new(&peer, "s").unwrap()).unwrap();
    let readable = |fd: i32, ms: i32| poll_in(fd, ms).is_some();
    for k in 1..=100 {
        assert!(!rx.arm().unwrap(), "nothing to fetch");
        assert!(
            !readable(rx.as_raw_fd(), 0),
            "armed and drained: not readable"
        );
        tx.publish_copy(&small(k, TAG_DOWN)).unwrap();
        assert!(readable(rx.as_raw_fd(), 5000), "readable after the publish");
        assert_eq!(rx.fetch().unwrap().unwrap().seq, k);
    }
    // Data already there: arm says so instead of announcing.
    tx.publish_copy(&small(101, TAG_DOWN)).unwrap();
    assert!(rx.arm().unwrap(), "data already there: arm says so");
}

#[test]
fn from_fds_checks_the_eventfds() {
    let seg = wake_channels(Segment::builder())
        .create_anonymous()
        .unwrap();
    let efds = seg.event_fds();
    assert_eq!(efds.len(), 2);
    // Too few, too many.
    let err = Segment::from_fds(dup(seg.as_fd()), vec![dup(efds[0])]).unwrap_err();
    assert!(
        err.to_string().contains("2 notify-enabled channels but 1"),
        "{err}"
    );
    let three = vec![dup(efds[0]), dup(efds[1]), dup(efds[0])];
    assert!(Segment::from_fds(dup(seg.as_fd()), three).is_err());
    // Not an eventfd: a pipe, and the memfd itself.
    let (r, w) = pipe();
    let err = Segment::from_fds(dup(seg.as_fd()), vec![dup(efds[0]), r]).unwrap_err();
    assert!(err.to_string().contains("not an eventfd"), "{err}");
    let err = Segment::from_fds(dup(seg.as_fd()), vec![dup(seg.as_fd()), w]).unwrap_err();
    assert!(err.to_string().contains("not an eventfd"), "{err}");
    // The plain `from_fd` refuses a segment with notify-enabled channels.
    assert!(Segment::from_fd(dup(seg.as_fd())).is_err());
    // The right ones work.
    Segment::from_fds(dup(seg.as_fd()), efds.into_iter().map(dup).collect()).unwrap();
}

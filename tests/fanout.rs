//! Fan-out state channels and observers, across real processes: readers of a 4 KiB object
//! whose words all carry the update number (the peer binary's `Fanout*` and `Queue*` roles,
//! `tests/support/fanout.rs`), a consumer end killed with SIGKILL and claimed again 100 times,
//! and a queue observer beside the queue's consumer. Every reader checks every value it gets.
//!
//! `RTIPC_UPDATES` sets the number of updates and messages (default 1,000,000). Each test
//! prints its figures (`cargo test --test fanout -- --nocapture`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use rtipc::{
    ChannelSpec, Direction, Error, QueueProducer, Segment, StateConsumer, StateObserver,
    StateProducer, StateRef,
};

/// How many updates (or messages) each run publishes.
fn updates() -> u64 {
    std::env::var("RTIPC_UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// How long a reader may take to finish after the last update.
const FINISH: Duration = Duration::from_secs(300);
/// How many times the victim consumer end is killed and claimed again.
const KILLS: u64 = 100;

/// A reader process and the lines of its stdout, read by a thread.
struct Reader {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Reader {
    fn spawn(role: Role, name: &str, count: u64) -> Reader {
        let mut child = peer_command(role, name, count)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn reader");
        let out: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Reader { child, lines }
    }

    /// The next line that starts with `word`, within `limit`.
    fn expect(&self, word: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(word) => return line,
                Ok(line) => assert!(
                    !line.starts_with("claim-failed") && !line.starts_with("error"),
                    "{line}"
                ),
                Err(_) => panic!("no `{word}` line within {limit:?}"),
            }
        }
    }

    /// Waits for the exit and returns the `done` tally.
    fn finish(mut self) -> ReaderTally {
        let line = self.expect("done", FINISH);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "reader exited with {status}: {line}");
        ReaderTally::parse(&line).expect("a tally line")
    }
}

/// One producer (this process), `steady` consumer processes, `observers` observer processes
/// and, with `victim`, one more consumer end whose process is killed and replaced [`KILLS`]
/// times during the run, on a state channel of `Big` with as many consumer ends.
fn run_state(test: &str, steady: u32, observers: u32, victim: bool) {
    let total = updates();
    let name = seg_name(test);
    let ends = steady + u32::from(victim);
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("pages", Direction::CreatorToPeer)
                .consumers(ends)
                .object::<Big>(),
        )
        .create(&name)
        .unwrap();
    let mut tx = StateProducer::<Big>::new(&seg, "pages").unwrap();
    let mut readers = Vec::new();
    for _ in 0..steady {
        let r = Reader::spawn(Role::FanoutConsumer, &name, total);
        r.expect("claimed", Duration::from_secs(30));
        readers.push(r);
    }
    let mut watchers = Vec::new();
    for _ in 0..observers {
        let r = Reader::spawn(Role::FanoutObserver, &name, total);
        r.expect("claimed", Duration::from_secs(30));
        watchers.push(r);
    }
    // The producer keeps pace with the kills, so that they spread over the whole run.
    let kills = Arc::new(AtomicU64::new(if victim { 0 } else { KILLS }));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let producer = {
        let (kills, stop) = (kills.clone(), stop.clone());
        std::thread::spawn(move || {
            for seq in 1..=total {
                while seq > (kills.load(Ordering::Relaxed) + 1) * total / (KILLS + 1)
                    && !stop.load(Ordering::Relaxed)
                {
                    std::thread::sleep(Duration::from_micros(100));
                }
                let mut g = tx.write().unwrap();
                g.words.fill(seq);
                assert_eq!(g.publish().unwrap(), seq);
            }
            tx
        })
    };
    let mut victim_values = 0;
    if victim {
        let mut rng = seed_rng();
        for k in 0..KILLS {
            let mut v = Reader::spawn(Role::FanoutVictim, &name, u64::from(steady));
            let claimed = v.expect("claimed", Duration::from_secs(30));
            assert_eq!(claimed, format!("claimed {steady}"), "kill {k}");
            std::thread::sleep(Duration::from_micros(rng.next() % 20_000));
            v.child.kill().unwrap();
            v.child.wait().unwrap();
            // Whatever it printed before the kill: every value it checked was whole.
            let mut last = None;
            while let Ok(line) = v.lines.recv_timeout(Duration::from_secs(5)) {
                assert!(!line.starts_with("error"), "victim {k}: {line}");
                if line.starts_with("progress") {
                    last = ReaderTally::parse(&line);
                }
            }
            if let Some(t) = last {
                assert_eq!((t.torn, t.backwards), (0, 0), "victim {k}: {t:?}");
                victim_values += t.seen;
            }
            kills.fetch_add(1, Ordering::Relaxed);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let tx = producer.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(tx.published(), total);
    for (i, r) in readers.into_iter().enumerate() {
        let t = r.finish();
        println!("consumer {i}: {t:?}");
        assert_eq!((t.torn, t.backwards), (0, 0), "consumer {i}: {t:?}");
        assert_eq!(t.last, total, "consumer {i} saw the last update");
        assert_eq!(t.seen + t.missed, total, "consumer {i}: seen + missed");
    }
    for (i, r) in watchers.into_iter().enumerate() {
        let t = r.finish();
        println!("observer {i}: {t:?}");
        assert_eq!((t.torn, t.backwards), (0, 0), "observer {i}: {t:?}");
        assert_eq!(t.last, total, "observer {i} saw the last update");
        assert_eq!(t.seen + t.missed, total, "observer {i}: seen + missed");
    }
    println!(
        "{total} updates of 4 KiB to {steady} consumers and {observers} observers in {:.1} s; \
         {} kills of a consumer end, whose processes checked {victim_values} values",
        elapsed.as_secs_f64(),
        if victim { KILLS } else { 0 },
    );
}

/// A small xorshift generator, seeded from the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed_rng() -> Rng {
    Rng(monotonic_ns() | 1)
}

#[test]
fn four_consumers_and_two_observers_see_every_update_whole_while_a_fifth_is_killed() {
    run_state("fanout", 4, 2, true);
}

#[test]
fn observers_of_a_single_consumer_channel_see_every_update_whole() {
    run_state("observe-one", 1, 2, false);
}

/// One producer (this process) force-pushing into a queue of 64 `Big`s, its consumer and an
/// observer in processes of their own.
#[test]
fn a_queue_observer_reports_every_message_whole_in_order_and_counts_the_rest() {
    let total = updates();
    let name = seg_name("observe-queue");
    let seg = Segment::builder()
        .channel(ChannelSpec::queue("pages", Direction::CreatorToPeer, 64).object::<Big>())
        .create(&name)
        .unwrap();
    let mut tx = QueueProducer::<Big>::new(&seg, "pages").unwrap();
    let watcher = Reader::spawn(Role::QueueObserve, &name, total);
    watcher.expect("claimed", Duration::from_secs(30));
    let popper = Reader::spawn(Role::QueuePop, &name, total);
    popper.expect("claimed", Duration::from_secs(30));
    let start = Instant::now();
    for n in 1..=total {
        let mut m = tx.write().unwrap();
        m.words.fill(n);
        m.force_push().unwrap();
    }
    let elapsed = start.elapsed();
    let t = watcher.finish();
    println!("observer: {t:?}");
    assert_eq!((t.torn, t.backwards), (0, 0), "observer: {t:?}");
    assert_eq!(t.last, total, "the observer reached the last message");
    assert_eq!(
        t.seen + t.missed,
        total,
        "every message seen or counted missed"
    );
    let c = popper.finish();
    println!("consumer: {c:?}");
    assert_eq!((c.torn, c.backwards), (0, 0), "consumer: {c:?}");
    assert_eq!(c.last, total);
    println!(
        "{total} messages of 4 KiB in {:.1} s: the observer copied {} whole and counted {} \
         missed; the consumer popped {} and missed {}",
        elapsed.as_secs_f64(),
        t.seen,
        t.missed,
        c.seen,
        c.missed
    );
}

#[test]
fn each_reader_claims_its_own_end_and_all_read_the_same_update() {
    let name = seg_name("fanout-ends");
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("pose", Direction::CreatorToPeer)
                .consumers(3)
                .object::<Pose>(),
        )
        .create(&name)
        .unwrap();
    let peer = Segment::open(&name).unwrap();
    let mut tx = StateProducer::<Pose>::new(&seg, "pose").unwrap();
    let mut a = StateConsumer::<Pose>::new(&peer, "pose").unwrap();
    let mut b = StateConsumer::<Pose>::new(&peer, "pose").unwrap();
    let mut c = StateConsumer::<Pose>::new_at(&peer, "pose", 2).unwrap();
    assert_eq!((a.index(), b.index(), c.index()), (0, 1, 2));
    match StateConsumer::<Pose>::new(&peer, "pose") {
        Err(e @ Error::AllConsumersClaimed { consumers: 3, .. }) => {
            assert!(e.is_retryable());
            assert!(e.to_string().contains("all 3 consumer ends"), "{e}");
        }
        other => panic!("a fourth reader: {other:?}"),
    }
    match StateConsumer::<Pose>::new_at(&peer, "pose", 3) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("no consumer 3"), "{msg}"),
        other => panic!("consumer 3 of 3: {other:?}"),
    }
    match StateConsumer::<Pose>::new_at(&peer, "pose", 1) {
        Err(Error::AlreadyClaimed { .. }) => {}
        other => panic!("consumer 1 again: {other:?}"),
    }
    assert!(a.fetch().unwrap().is_none(), "nothing published yet");
    for round in 1..=10u64 {
        let mut g = tx.write().unwrap();
        g.x = round as f64;
        g.publish().unwrap();
        // `a` reads every update, `b` every other one, `c` only the last.
        let s = a.fetch().unwrap().unwrap();
        assert_eq!(
            (StateRef::seq(&s), s.x, StateRef::missed(&s)),
            (round, round as f64, 0)
        );
        if round % 2 == 0 {
            let s = b.fetch().unwrap().unwrap();
            assert_eq!((StateRef::seq(&s), StateRef::missed(&s)), (round, 1));
            assert!(StateRef::is_new(&s));
        }
    }
    let s = c.fetch().unwrap().unwrap();
    assert_eq!(
        (StateRef::seq(&s), s.x, StateRef::missed(&s)),
        (10, 10.0, 9)
    );
    let s = c.fetch().unwrap().unwrap();
    assert!(!StateRef::is_new(&s), "nothing newer");
    // A reader that lets its end go makes room for another.
    drop(b);
    let mut d = StateConsumer::<Pose>::new(&peer, "pose").unwrap();
    assert_eq!(d.index(), 1);
    let s = d.fetch().unwrap().unwrap();
    assert_eq!(StateRef::seq(&s), 10);
    assert_eq!(StateRef::missed(&s), 0, "its predecessor had seen up to 10");
    assert!(tx.consumer_alive().unwrap());
    // An observer reads the same update without an end.
    let mut w = StateObserver::<Pose>::new(&peer, "pose").unwrap();
    let o = w.observe().unwrap().unwrap();
    assert_eq!(
        (rtipc::Observed::seq(&o), o.x, rtipc::Observed::missed(&o)),
        (10, 10.0, 9)
    );
}

#[test]
fn a_fan_out_segment_is_layout_version_3_and_bad_consumer_counts_are_refused() {
    let name = seg_name("fanout-version");
    let _seg = Segment::builder()
        .channel(
            ChannelSpec::state("pose", Direction::CreatorToPeer)
                .consumers(2)
                .object::<Pose>(),
        )
        .create(&name)
        .unwrap();
    // A build that reads version 2 only refuses it with `UnsupportedVersion`.
    assert_eq!(read_u64(&shm_file(&name), 8) as u32, 3);
    let plain = seg_name("fanout-version-plain");
    let _plain = Segment::builder()
        .state::<Pose>("pose", Direction::CreatorToPeer)
        .create(&plain)
        .unwrap();
    assert_eq!(read_u64(&shm_file(&plain), 8) as u32, 2);
    for n in [0, 17] {
        let e = Segment::builder()
            .state::<Pose>("pose", Direction::CreatorToPeer)
            .consumers(n)
            .create(&seg_name(&format!("fanout-bad-{n}")))
            .unwrap_err();
        assert!(
            e.to_string().contains("between 1 and 16 consumers"),
            "{n} consumers: {e}"
        );
    }
    let e = Segment::builder()
        .channel(
            ChannelSpec::queue("q", Direction::CreatorToPeer, 4)
                .consumers(2)
                .object::<Pose>(),
        )
        .create(&seg_name("fanout-bad-queue"))
        .unwrap_err();
    assert!(e.to_string().contains("QueueObserver"), "{e}");
}

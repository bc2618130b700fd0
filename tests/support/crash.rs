//! The peer's roles for the crash tests (`tests/crash.rs`), which kill them with SIGKILL at
//! random moments. Each reports on stdout in the lines of [`crash_line`], one `println!` (one
//! write) each, so that what it wrote before it was killed is in the pipe.

use std::io::BufRead;
use std::time::{Duration, Instant};

use crate::common::{
    crash_declaration, crash_line, monotonic_ns, Payload, Problem, Racer, StreamCheck,
};
use rtipc::{
    DataError, Error, MessageRef, QueueConsumer, QueueProducer, Segment, StateConsumer,
    StateProducer, StateRef,
};

/// How many problems are printed one by one; the progress lines count all of them.
const PRINTED: u64 = 100;
/// How often at most a role prints a progress line by the clock.
const PROGRESS_EVERY: Duration = Duration::from_millis(1);

/// The role's report: its problems and a progress line after its first value, then every
/// 4096 values or, when there were new ones, every millisecond (looked at every 64 values and
/// whenever a consumer finds nothing new), and at the end.
struct Report {
    values: u64,
    /// `values` in the last progress line.
    values_printed: u64,
    last: u64,
    problems: u64,
    printed: Instant,
}

impl Report {
    fn new() -> Report {
        Report {
            values: 0,
            values_printed: 0,
            last: 0,
            problems: 0,
            printed: Instant::now(),
        }
    }

    fn problem(&mut self, p: Problem) {
        self.problems += 1;
        if self.problems <= PRINTED {
            println!("{} {p}", crash_line::PROBLEM);
        }
    }

    fn progress(&mut self) {
        println!(
            "{} values={} last={} problems={}",
            crash_line::PROGRESS,
            self.values,
            self.last,
            self.problems
        );
        self.printed = Instant::now();
        self.values_printed = self.values;
    }

    /// A consumer found nothing new: a progress line if there is news and it is time.
    fn idle(&mut self) {
        if self.values != self.values_printed && self.printed.elapsed() >= PROGRESS_EVERY {
            self.progress();
        }
        std::thread::yield_now();
    }

    /// One more value, numbered `seq`; whether the role has done `count` (0: never done).
    fn value(&mut self, seq: u64, count: u64) -> bool {
        self.values += 1;
        self.last = seq;
        let done = count != 0 && self.values >= count;
        if self.values == 1
            || self.values.is_multiple_of(4096)
            || (self.values.is_multiple_of(64) && self.printed.elapsed() >= PROGRESS_EVERY)
            || done
        {
            self.progress();
        }
        done
    }

    /// A data-path error: reported, and the role ends with exit code 4.
    fn error(&self, e: DataError) -> i32 {
        println!("{} {e:?}", crash_line::ERROR);
        4
    }
}

/// A claim that failed: reported, and the role ends with exit code 3.
fn claim_failed(e: &Error) -> i32 {
    println!("{} {e:?}", crash_line::CLAIM_FAILED);
    3
}

/// Opens the segment; a failure is reported like a failed claim.
pub fn open(name: &str) -> Segment {
    match Segment::open(name) {
        Ok(seg) => seg,
        Err(e) => std::process::exit(claim_failed(&e)),
    }
}

/// Publishes on `state`, every word the update's number (the producer's count + 1).
pub fn state_producer(seg: &Segment, count: u64) -> i32 {
    let mut tx = match StateProducer::<Payload>::new(seg, "state") {
        Ok(tx) => tx,
        Err(e) => return claim_failed(&e),
    };
    println!("{} {}", crash_line::CLAIMED, tx.published());
    let mut report = Report::new();
    loop {
        let seq = tx.published() + 1;
        let mut g = match tx.write() {
            Ok(g) => g,
            Err(e) => return report.error(e),
        };
        g.words.fill(seq);
        match g.publish() {
            Ok(got) if got != seq => report.problem(Problem::Numbered { got, expected: seq }),
            Ok(_) => {}
            Err(e) => return report.error(e),
        }
        if report.value(seq, count) {
            return 0;
        }
    }
}

/// Force-pushes on `queue`, every word the message's number (the count pushed + 1).
pub fn queue_producer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut tx = match QueueProducer::<Payload>::new(&seg, "queue") {
        Ok(tx) => tx,
        Err(e) => return claim_failed(&e),
    };
    println!("{} {}", crash_line::CLAIMED, tx.pushed());
    let mut report = Report::new();
    loop {
        let seq = tx.pushed() + 1;
        let mut m = match tx.write() {
            Ok(m) => m,
            Err(e) => return report.error(e),
        };
        m.words.fill(seq);
        if let Err(e) = m.force_push() {
            return report.error(e);
        }
        if tx.pushed() != seq {
            let got = tx.pushed();
            report.problem(Problem::Numbered { got, expected: seq });
        }
        if report.value(seq, count) {
            return 0;
        }
    }
}

/// Fetches from `state` and checks every update.
pub fn state_consumer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut rx = match StateConsumer::<Payload>::new(&seg, "state") {
        Ok(rx) => rx,
        Err(e) => return claim_failed(&e),
    };
    println!("{} 0", crash_line::CLAIMED);
    let mut report = Report::new();
    let mut check = StreamCheck::default();
    loop {
        match rx.fetch() {
            Ok(Some(s)) => {
                let (seq, new) = (StateRef::seq(&s), StateRef::is_new(&s));
                check.read(&s, seq, new, StateRef::missed(&s), |p| report.problem(p));
                if !new {
                    report.idle();
                } else if report.value(seq, count) {
                    return 0;
                }
            }
            Ok(None) => report.idle(),
            Err(e) => return report.error(e),
        }
    }
}

/// Pops from `queue` and checks every message.
pub fn queue_consumer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut rx = match QueueConsumer::<Payload>::new(&seg, "queue") {
        Ok(rx) => rx,
        Err(e) => return claim_failed(&e),
    };
    println!("{} 0", crash_line::CLAIMED);
    let mut report = Report::new();
    let mut check = StreamCheck::default();
    loop {
        match rx.pop() {
            Ok(Some(m)) => {
                let seq = MessageRef::seq(&m);
                check.read(&m, seq, true, MessageRef::missed(&m), |p| report.problem(p));
                if report.value(seq, count) {
                    return 0;
                }
            }
            Ok(None) => report.idle(),
            Err(e) => return report.error(e),
        }
    }
}

/// Creates the segment (resuming or replacing a stale one), then publishes on `state`.
pub fn creator(name: &str, count: u64) -> i32 {
    println!("{}", crash_line::CREATING);
    let seg = match crash_declaration().replace_stale(true).create(name) {
        Ok(seg) => seg,
        Err(e) => {
            println!("{} {e:?}", crash_line::CREATE_FAILED);
            return 3;
        }
    };
    println!("{}", crash_line::CREATED);
    state_producer(&seg, count)
}

/// Waits for a line on stdin, `go T`, waits until `CLOCK_MONOTONIC` reaches T nanoseconds (so
/// that two racers start together, each on its core), creates the successor of a stale segment as
/// `racer` says, prints the outcome, and holds the segment until stdin closes.
pub fn racer(name: &str, racer: Racer) -> i32 {
    let builder = racer.builder();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    println!("{}", crash_line::READY);
    if stdin.read_line(&mut line).is_err() {
        return 5;
    }
    let start: u64 = line
        .trim()
        .strip_prefix("go ")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    // Sleeps until shortly before the moment (leaving the cores to the others), then spins.
    let early = start.saturating_sub(200_000).saturating_sub(monotonic_ns());
    std::thread::sleep(Duration::from_nanos(early));
    while monotonic_ns() < start {
        std::hint::spin_loop();
    }
    let began = monotonic_ns();
    let seg = builder.create(name);
    let ended = monotonic_ns();
    // The call's span, so that the test can tell whether the two overlapped.
    print!("{began} {ended} ");
    match &seg {
        Ok(_) => println!("{}", crash_line::OK),
        Err(e) => {
            let variant = match e {
                Error::Replacing { .. } => "Replacing",
                Error::AlreadyExists { .. } => "AlreadyExists",
                Error::Stale { .. } => "Stale",
                _ => "other",
            };
            println!("{} {variant}: {e}", crash_line::ERR);
        }
    }
    // Holds the segment (or nothing) until the test closes stdin.
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {}
    drop(seg);
    0
}

//! The fan-out and observer roles of the peer binary: readers of a 4 KiB `Big` whose words all
//! carry the update (or message) number, each checking every value it gets and printing a
//! [`ReaderTally`] line.

use std::time::{Duration, Instant};

use super::common::*;
use rtipc::{
    DataError, Observed, QueueConsumer, QueueObserver, Segment, StateConsumer, StateObserver,
    StateRef,
};

/// How long a reader waits for the last update before it gives up (exit code 5).
const LIMIT: Duration = Duration::from_secs(300);

fn open(name: &str) -> Segment {
    Segment::wait_open(name, Duration::from_secs(10)).unwrap_or_else(|e| {
        println!("error open {e}");
        std::process::exit(10)
    })
}

/// A consumer: the first free end of `pages`, until update `count`.
pub fn consumer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut rx = match StateConsumer::<Big>::new(&seg, "pages") {
        Ok(rx) => rx,
        Err(e) => {
            println!("claim-failed {e}");
            return 3;
        }
    };
    println!("claimed {}", rx.index());
    let mut t = ReaderTally::default();
    let start = Instant::now();
    while t.last < count {
        match rx.fetch() {
            Ok(Some(s)) if StateRef::is_new(&s) => {
                let seq = StateRef::seq(&s);
                t.record(seq, StateRef::missed(&s), big_ok(&s, seq));
            }
            Ok(_) => std::thread::yield_now(),
            Err(e) => {
                println!("error {e}");
                return 4;
            }
        }
        if start.elapsed() > LIMIT {
            println!("{}", t.line("timeout"));
            return 5;
        }
    }
    println!("{}", t.line("done"));
    0
}

/// A consumer on end `index` that reads until it is killed.
pub fn victim(name: &str, index: u64) -> i32 {
    let seg = open(name);
    let mut rx = match StateConsumer::<Big>::new_at(&seg, "pages", index as u32) {
        Ok(rx) => rx,
        Err(e) => {
            println!("claim-failed {e}");
            return 3;
        }
    };
    println!("claimed {}", rx.index());
    let mut t = ReaderTally::default();
    let mut first = true;
    loop {
        match rx.fetch() {
            Ok(Some(s)) if StateRef::is_new(&s) => {
                let seq = StateRef::seq(&s);
                let whole = big_ok(&s, seq);
                if first {
                    // A successor's first count starts from its predecessor's last update.
                    t.last = seq - 1 - StateRef::missed(&s);
                    first = false;
                }
                t.record(seq, StateRef::missed(&s), whole);
                println!("{}", t.line("progress"));
            }
            Ok(_) => std::thread::yield_now(),
            Err(e) => {
                println!("error {e}");
                return 4;
            }
        }
    }
}

/// An observer of `pages`, until update `count`.
pub fn observer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut watch = match StateObserver::<Big>::new(&seg, "pages") {
        Ok(w) => w,
        Err(e) => {
            println!("claim-failed {e}");
            return 3;
        }
    };
    println!("claimed observer");
    let mut t = ReaderTally::default();
    let start = Instant::now();
    while t.last < count {
        match watch.observe() {
            Ok(Some(o)) if Observed::is_new(&o) => {
                let seq = Observed::seq(&o);
                t.record(seq, Observed::missed(&o), big_ok(&o, seq));
            }
            Ok(_) | Err(DataError::Lapped) => std::thread::yield_now(),
            Err(e) => {
                println!("error {e}");
                return 4;
            }
        }
        if start.elapsed() > LIMIT {
            println!("{}", t.line("timeout"));
            return 5;
        }
    }
    println!("{}", t.line("done"));
    0
}

/// An observer of queue `pages`, until message `count`.
pub fn queue_observer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut watch = match QueueObserver::<Big>::new(&seg, "pages") {
        Ok(w) => w,
        Err(e) => {
            println!("claim-failed {e}");
            return 3;
        }
    };
    println!("claimed observer");
    let mut t = ReaderTally::default();
    let start = Instant::now();
    while t.last < count {
        match watch.observe() {
            Ok(Some(m)) => {
                let seq = Observed::seq(&m);
                t.record(seq, Observed::missed(&m), big_ok(&m, seq));
            }
            Ok(None) => std::thread::yield_now(),
            Err(e) => {
                println!("error {e}");
                return 4;
            }
        }
        if start.elapsed() > LIMIT {
            println!("{}", t.line("timeout"));
            return 5;
        }
    }
    println!("{}", t.line("done"));
    0
}

/// The consumer of queue `pages`, until message `count`.
pub fn queue_pop(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut rx = match QueueConsumer::<Big>::new(&seg, "pages") {
        Ok(rx) => rx,
        Err(e) => {
            println!("claim-failed {e}");
            return 3;
        }
    };
    println!("claimed 0");
    let mut t = ReaderTally::default();
    let start = Instant::now();
    while t.last < count {
        match rx.pop() {
            Ok(Some(m)) => {
                let seq = rtipc::MessageRef::seq(&m);
                t.record(seq, rtipc::MessageRef::missed(&m), big_ok(&m, seq));
            }
            Ok(None) => std::thread::yield_now(),
            Err(e) => {
                println!("error {e}");
                return 4;
            }
        }
        if start.elapsed() > LIMIT {
            println!("{}", t.line("timeout"));
            return 5;
        }
    }
    println!("{}", t.line("done"));
    0
}

//! The peer's roles for the shared-region tests.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtipc::region::SharedRegion;
use rtipc::Segment;

use super::common::Shared;

fn shared(name: &str) -> Option<(Segment, SharedRegion<Shared>)> {
    let seg = match Segment::open(name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer: cannot open `{name}`: {e}");
            return None;
        }
    };
    match SharedRegion::<Shared>::new(&seg, "shared") {
        Ok(r) => Some((seg, r)),
        Err(e) => {
            eprintln!("peer: cannot open region `shared`: {e}");
            None
        }
    }
}

/// Adds 1 to the counter `count` times, after saying that it started.
pub fn add(name: &str, count: u64) -> i32 {
    let Some((_seg, r)) = shared(name) else {
        return 10;
    };
    r.started.notify();
    for _ in 0..count {
        r.counter.fetch_add(1, Ordering::Relaxed);
    }
    0
}

/// `count` round trips: waits for a ping, replies twice the value, posts a pong.
pub fn pong(name: &str, count: u64) -> i32 {
    let Some((_seg, r)) = shared(name) else {
        return 10;
    };
    for i in 0..count {
        if !r.ping.wait(Some(Duration::from_secs(20))) {
            eprintln!("peer: no ping {i} within 20 s");
            return 1;
        }
        // Acquire by the semaphore's take; release by its post.
        let v = r.value.load(Ordering::Relaxed);
        r.reply.store(v.wrapping_mul(2), Ordering::Relaxed);
        if !r.pong.post() {
            return 1;
        }
    }
    0
}

/// Waits up to `ms` for a ping that never comes.
pub fn waiter(name: &str, ms: u64) -> i32 {
    let Some((_seg, r)) = shared(name) else {
        return 10;
    };
    r.started.notify();
    let t0 = Instant::now();
    if r.ping.wait(Some(Duration::from_millis(ms))) {
        return 1;
    }
    if t0.elapsed() < Duration::from_millis(ms) {
        return 3;
    }
    0
}

/// Attaches and sleeps until killed.
pub fn idle(name: &str) -> i32 {
    let Some((_seg, r)) = shared(name) else {
        return 10;
    };
    r.started.notify();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

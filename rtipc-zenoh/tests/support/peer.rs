//! The application processes of the bridge's tests: a producer on the exporting side and
//! consumers on the importing side, each its own process. `ROLE SEGMENT ARGS...`; the result
//! is one `result ...` line on standard output, and the exit code is 0 when every check
//! passed.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtipc::{
    Direction, QueueConsumer, QueueProducer, Segment, StateConsumer, StateProducer, StateRef,
};

/// What every test channel carries: an index and seven words derived from it, so that a torn
/// or wrong message is seen.
#[derive(rtipc::Object, Debug)]
#[repr(C)]
pub struct Sample {
    /// 0 for a warm-up message, then 1, 2, ...
    pub index: u64,
    /// `word(index, k)`.
    pub words: [u64; 7],
}

/// The same type as another build would have it: a field changed.
mod changed {
    #[derive(rtipc::Object, Debug)]
    #[repr(C)]
    pub struct Sample {
        pub index: u64,
        pub words: [u64; 6],
        pub extra: f64,
    }
}

/// A state object of 64 KiB: an observer's copy of it takes far longer than a producer's
/// update of its index in place.
#[derive(rtipc::Object, Debug)]
#[repr(C)]
pub struct Big {
    /// 0 while warming up; the index of the last update at the end.
    pub index: u64,
    /// `word(index, k)` in the updates that are checked (the warm-up and the last).
    pub words: [u64; 8191],
}

fn big(index: u64) -> Box<Big> {
    let mut b = Box::new(Big {
        index,
        words: [0; 8191],
    });
    for (k, w) in b.words.iter_mut().enumerate() {
        *w = word(index, k);
    }
    b
}

fn word(index: u64, k: usize) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

fn sample(index: u64) -> Sample {
    Sample {
        index,
        words: std::array::from_fn(|k| word(index, k)),
    }
}

fn intact(s: &Sample) -> bool {
    (0..7).all(|k| s.words[k] == word(s.index, k))
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    let code = match arg(1) {
        "produce" => produce(arg(2), num(3), num(4) as u32, Path::new(arg(5)), num(6)),
        "consume" => consume(arg(2), num(3), num(4), Path::new(arg(5)), num(6)),
        "changed" => changed(arg(2)),
        "changed-records" => changed_records(arg(2)),
        "produce-records" => produce_records(arg(2), num(3), Path::new(arg(4))),
        "consume-records" => consume_records(arg(2), num(3), Path::new(arg(4))),
        "flood" => flood(arg(2), num(3), num(4) as u32, Path::new(arg(5))),
        "watch" => watch(arg(2)),
        "churn" => churn(arg(2), Path::new(arg(3)), num(4)),
        "last-big" => last_big(arg(2), Path::new(arg(3))),
        other => {
            eprintln!("peer: unknown role `{other}`");
            2
        }
    };
    std::process::exit(code);
}

/// Waits up to 60 s for segment `seg` and opens it; `None` (said as `role`) if it cannot.
fn open(seg: &str, role: &str) -> Option<Segment> {
    Segment::wait_open(seg, Duration::from_secs(60))
        .map_err(|e| eprintln!("{role}: {e}"))
        .ok()
}

/// Creates `seg` with state channel `pose` and queue `events` (capacity `cap`), both of
/// `Sample` with notification, and claims their producer ends; `None` (said as `role`) if it
/// cannot.
fn create(
    seg: &str,
    cap: u32,
    role: &str,
) -> Option<(Segment, StateProducer<Sample>, QueueProducer<Sample>)> {
    let seg = Segment::builder()
        .channel(
            rtipc::ChannelSpec::state("pose", Direction::CreatorToPeer)
                .object::<Sample>()
                .notify(true),
        )
        .channel(
            rtipc::ChannelSpec::queue("events", Direction::CreatorToPeer, cap)
                .object::<Sample>()
                .notify(true),
        )
        .replace_stale(true)
        .create(seg)
        .map_err(|e| eprintln!("{role}: {e}"))
        .ok()?;
    let state = StateProducer::<Sample>::new(&seg, "pose").expect("state producer");
    let queue = QueueProducer::<Sample>::new(&seg, "events").expect("queue producer");
    Some((seg, state, queue))
}

/// Creates `seg` with state channel `pose` and queue `events` (capacity `cap`); sends warm-up
/// messages (index 0) every 10 ms until file `go` exists; then publishes indexes
/// `base + 1..=base + n` on both (the queue never overwrites: a full queue is retried), and
/// stays until killed.
fn produce(seg: &str, n: u64, cap: u32, go: &Path, base: u64) -> i32 {
    let Some((_seg, mut state, mut queue)) = create(seg, cap, "produce") else {
        return 1;
    };
    let warm = sample(0);
    while !go.exists() {
        state.publish_copy(&warm).expect("publish");
        let _ = queue.try_push(&warm).expect("push");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let mut full = 0u64;
    for i in base + 1..=base + n {
        let s = sample(i);
        state.publish_copy(&s).expect("publish");
        while !queue.try_push(&s).expect("push") {
            full += 1;
            std::thread::yield_now();
        }
    }
    println!(
        "result produced={n} queue_full_retries={full} seconds={:.3}",
        started.elapsed().as_secs_f64()
    );
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Creates `seg` like `produce`; once the exporting bridge holds the queue and file `go` exists,
/// publishes `n` updates and offers `n` messages without waiting (a full queue refuses them),
/// and exits: a producer never waits for its readers.
fn flood(seg: &str, n: u64, cap: u32, go: &Path) -> i32 {
    let Some((seg, mut state, mut queue)) = create(seg, cap, "flood") else {
        return 1;
    };
    // Warm-ups until the exporting bridge holds the queue's consumer end and the test, having
    // seen the importing side subscribed, says go.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = queue.try_push(&sample(0)).expect("push");
        std::thread::sleep(Duration::from_millis(10));
        let held = rtipc::inspect::Inspector::of(&seg)
            .channel("events")
            .map(|f| {
                f.ends
                    .iter()
                    .any(|e| e.end == rtipc::End::Consumer && e.held)
            })
            .unwrap_or(false);
        if held && go.exists() {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("flood: the bridges did not start within 60 s");
            return 1;
        }
    }
    let (mut accepted, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    for i in 1..=n {
        let s = sample(i);
        state.publish_copy(&s).expect("publish");
        if queue.try_push(&s).expect("push") {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    println!(
        "result published={} accepted={accepted} refused={refused} seconds={:.3}",
        state.published(),
        started.elapsed().as_secs_f64()
    );
    0
}

/// The length of record `i`: 1 to 50 elements.
fn record_len(i: u64) -> u64 {
    1 + i % 50
}

/// Element `k` of record `i`.
fn record_element(i: u64, k: u64) -> Sample {
    let mut s = sample(i.wrapping_mul(64).wrapping_add(k));
    s.index = i;
    s
}

fn record_element_ok(i: u64, k: u64, e: &Sample) -> bool {
    let want = record_element(i, k);
    e.index == i && e.words == want.words
}

/// Creates `seg` with record channel `log` (a 64 KiB ring of `Sample` elements); sends
/// warm-up records (index 0) every 10 ms until file `go` exists, then records 1..=n of 1 to 50
/// elements (a full ring is retried), and stays until killed.
fn produce_records(seg: &str, n: u64, go: &Path) -> i32 {
    let seg = match Segment::builder()
        .channel(
            rtipc::ChannelSpec::record("log", Direction::CreatorToPeer, 64 << 10)
                .object::<Sample>()
                .notify(true),
        )
        .replace_stale(true)
        .create(seg)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("produce-records: {e}");
            return 1;
        }
    };
    let mut p = rtipc::RecordProducer::<Sample>::new(&seg, "log").expect("record producer");
    while !go.exists() {
        let _ = p.try_send(&[sample(0)]);
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 1..=n {
        let items: Vec<Sample> = (0..record_len(i)).map(|k| record_element(i, k)).collect();
        loop {
            match p.try_send(&items) {
                Ok(_) => break,
                Err(rtipc::DataError::NoRoom { .. }) => std::thread::yield_now(),
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    println!("result produced={n}");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Reads record channel `log` of `seg` until record `n` arrived (or nothing came for 20 s),
/// checking every element and the order; creates file `go` once a warm-up record arrived.
fn consume_records(seg: &str, n: u64, go: &Path) -> i32 {
    let Some(seg) = open(seg, "consume-records") else {
        return 1;
    };
    let mut c = rtipc::RecordConsumer::<Sample>::new(&seg, "log").expect("record consumer");
    let mut t = Tally::default();
    let mut last_progress = Instant::now();
    while t.last < n && last_progress.elapsed() < Duration::from_secs(20) {
        let Some(r) = c.pop().expect("pop") else {
            let _ = c.wait(Some(Duration::from_millis(1)));
            continue;
        };
        last_progress = Instant::now();
        let i = r.first().map(|e| e.index).unwrap_or(0);
        if i == 0 {
            drop(r);
            let _ = std::fs::write(go, b"go");
            continue;
        }
        t.seen += 1;
        let whole = r.len() as u64 == record_len(i)
            && r.iter()
                .enumerate()
                .all(|(k, e)| record_element_ok(i, k as u64, e));
        t.bad += u64::from(!whole);
        t.missed += r.missed();
        let expected = t.last + 1 + r.missed();
        if i < expected {
            t.wrong += 1;
        } else {
            t.unexplained += i - expected;
        }
        t.last = i;
    }
    println!(
        "result records_seen={} records_bad={} records_missed={} records_wrong={} \
         records_unexplained={} records_last={}",
        t.seen, t.bad, t.missed, t.wrong, t.unexplained, t.last
    );
    i32::from(t.bad + t.wrong > 0)
}

/// Attaches to record channel `log` with a changed element type: 0 if refused.
fn changed_records(seg: &str) -> i32 {
    let Some(seg) = open(seg, "changed-records") else {
        return 1;
    };
    match rtipc::RecordConsumer::<changed::Sample>::new(&seg, "log") {
        Err(e) => {
            println!("refused record: {e}");
            0
        }
        Ok(_) => {
            println!("accepted record");
            1
        }
    }
}

/// Counts of what a consumer saw.
#[derive(Default)]
struct Tally {
    seen: u64,
    bad: u64,
    missed: u64,
    last: u64,
    /// State: updates whose missed count disagrees with the indexes. Queue: messages before
    /// their predecessor.
    wrong: u64,
    /// Queue: indexes skipped that the missed counts do not explain (lost before the local
    /// queue).
    unexplained: u64,
}

/// Reads `pose` and `events` of the imported segment `seg` until index `base + n` arrived on
/// both (or nothing came for 20 s), sleeping `slow_us` after each queue message; creates file
/// `go` once a warm-up message arrived on both. Indexes up to `base` (warm-ups, and what an
/// earlier producer left) are passed over.
fn consume(seg: &str, n: u64, slow_us: u64, go: &Path, base: u64) -> i32 {
    let Some(seg) = open(seg, "consume") else {
        return 1;
    };
    let mut state = StateConsumer::<Sample>::new(&seg, "pose").expect("state consumer");
    let mut queue = QueueConsumer::<Sample>::new(&seg, "events").expect("queue consumer");
    let (mut st, mut qu) = (Tally::default(), Tally::default());
    (st.last, qu.last) = (base, base);
    let n = base + n;
    let (mut warm_state, mut warm_queue) = (false, false);
    let mut last_progress = Instant::now();
    while (st.last < n || qu.last < n) && last_progress.elapsed() < Duration::from_secs(20) {
        let mut progress = false;
        if let Some(v) = state.fetch().expect("fetch") {
            if StateRef::is_new(&v) {
                progress = true;
                if v.index <= base {
                    warm_state |= v.index == 0;
                } else {
                    st.seen += 1;
                    st.bad += u64::from(!intact(&v));
                    let missed = StateRef::missed(&v);
                    if st.seen > 1 {
                        st.missed += missed;
                        if v.index.checked_sub(st.last + 1) != Some(missed) {
                            st.wrong += 1;
                        }
                    }
                    st.last = v.index;
                }
            }
        }
        for _ in 0..64 {
            let Some(m) = queue.pop().expect("pop") else {
                break;
            };
            progress = true;
            if m.index <= base {
                warm_queue |= m.index == 0;
                continue;
            }
            qu.seen += 1;
            qu.bad += u64::from(!intact(&m));
            let missed = rtipc::MessageRef::missed(&m);
            qu.missed += missed;
            let expected = qu.last + 1 + missed;
            if m.index < expected {
                qu.wrong += 1;
            } else {
                qu.unexplained += m.index - expected;
            }
            qu.last = m.index;
            if slow_us > 0 {
                std::thread::sleep(Duration::from_micros(slow_us));
            }
        }
        if warm_state && warm_queue && !go.exists() {
            let _ = std::fs::write(go, b"go");
            if slow_us > 0 {
                // A slow consumer is behind from the start, however fast this machine runs it
                // or slowly it runs the bridges: it lets several queues' worth arrive first.
                let _ = wait_for_backlog(&seg, &mut last_progress);
            }
        }
        if progress {
            last_progress = Instant::now();
        } else {
            let _ = state.wait(Some(Duration::from_millis(1)));
        }
    }
    println!(
        "result state_seen={} state_bad={} state_missed={} state_wrong={} state_last={} \
         queue_seen={} queue_bad={} queue_missed={} queue_wrong={} queue_unexplained={} queue_last={}",
        st.seen, st.bad, st.missed, st.wrong, st.last, qu.seen, qu.bad, qu.missed, qu.wrong,
        qu.unexplained, qu.last
    );
    i32::from(st.bad + st.wrong + qu.bad + qu.wrong > 0)
}

/// Waits until four times the capacity of `events` and two updates of `pose` were published in
/// `seg` after this call began (or 60 s pass); whether they were.
fn wait_for_backlog(seg: &Segment, last_progress: &mut Instant) -> bool {
    let inspector = rtipc::inspect::Inspector::of(seg);
    let published = |name: &str| {
        inspector
            .channel(name)
            .map(|c| (c.published, c.capacity.unwrap_or(0)))
            .unwrap_or((0, 0))
    };
    let ((events0, cap), (pose0, _)) = (published("events"), published("pose"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut backlog = false;
    while !backlog && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let ((events, _), (pose, _)) = (published("events"), published("pose"));
        backlog = events >= events0 + 4 * u64::from(cap) && pose >= pose0 + 2;
    }
    *last_progress = Instant::now();
    backlog
}

/// Attaches with a changed type: prints each refusal; 0 if both channels refused it.
fn changed(seg: &str) -> i32 {
    let Some(seg) = open(seg, "changed") else {
        return 1;
    };
    let state = StateConsumer::<changed::Sample>::new(&seg, "pose");
    let queue = QueueConsumer::<changed::Sample>::new(&seg, "events");
    let mut refused = 0;
    for (what, r) in [("state", state.err()), ("queue", queue.err())] {
        match r {
            Some(e) => {
                refused += 1;
                println!("refused {what}: {e}");
            }
            None => println!("accepted {what}"),
        }
    }
    i32::from(refused != 2)
}

/// Waits for the producer of `pose`, says `ready`, then waits until it is reported gone and
/// prints when (nanoseconds since the epoch).
fn watch(seg: &str) -> i32 {
    let Some(seg) = open(seg, "watch") else {
        return 1;
    };
    let mut state = StateConsumer::<Sample>::new(&seg, "pose").expect("state consumer");
    if !state
        .wait_for_producer(Some(Duration::from_secs(60)))
        .unwrap_or(false)
    {
        eprintln!("watch: no producer");
        return 1;
    }
    println!("ready");
    loop {
        match state.wait(Some(Duration::from_secs(1))) {
            Ok(_) => {
                let _ = state.fetch();
            }
            Err(rtipc::Error::NoProducer { .. }) => {
                println!("result gone_unix_ns={}", unix_ns());
                return 0;
            }
            Err(e) => {
                eprintln!("watch: {e}");
                return 1;
            }
        }
    }
}

/// Creates `seg` with state channel `big` of [`Big`]; publishes warm-ups (index 0) every 10 ms
/// until file `go` exists; then, for `ms` milliseconds, updates only the index in place as
/// fast as it can (the other words stay those of index 0); then publishes one whole update
/// with the next index and says `result churned=N last=I`; stays until killed.
fn churn(seg: &str, go: &Path, ms: u64) -> i32 {
    let seg = match Segment::builder()
        .channel(
            rtipc::ChannelSpec::state("big", Direction::CreatorToPeer)
                .object::<Big>()
                .notify(true),
        )
        .replace_stale(true)
        .create(seg)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("churn: {e}");
            return 1;
        }
    };
    let mut state = StateProducer::<Big>::new(&seg, "big").expect("state producer");
    let warm = big(0);
    while !go.exists() {
        state.publish_copy(&warm).expect("publish");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_millis(ms) {
        i += 1;
        let mut w = state.write().expect("write");
        w.index = i;
        w.publish().expect("publish");
    }
    state.publish_copy(&big(i + 1)).expect("publish");
    println!("result churned={i} last={}", i + 1);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Reads `big` of the imported segment `seg`: creates file `go` once a warm-up arrived, then
/// waits (up to 60 s without progress) for an update whose words all match its nonzero index
/// (only the churning producer's last update does) and says `result index=I`.
fn last_big(seg: &str, go: &Path) -> i32 {
    let Some(seg) = open(seg, "last-big") else {
        return 1;
    };
    let mut state = StateConsumer::<Big>::new(&seg, "big").expect("state consumer");
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_secs(60) {
        let Some(v) = state.fetch().expect("fetch") else {
            let _ = state.wait(Some(Duration::from_millis(10)));
            continue;
        };
        if !StateRef::is_new(&v) {
            let _ = state.wait(Some(Duration::from_millis(10)));
            continue;
        }
        last_progress = Instant::now();
        let whole = v
            .words
            .iter()
            .enumerate()
            .all(|(k, w)| *w == word(v.index, k));
        if v.index == 0 && whole && !go.exists() {
            let _ = std::fs::write(go, b"go");
        } else if v.index != 0 && whole {
            println!("result index={}", v.index);
            return 0;
        }
    }
    eprintln!("last-big: no whole update after the warm-ups");
    1
}

//! Latency and throughput of rtipc channels carried between two processes by two
//! `rtipc-bridge` processes over Zenoh on loopback TCP, against Zenoh alone in the same run:
//! the same payloads put and received by two bare Zenoh sessions.
//!
//! * Latency: a state update stamped with the wall clock (`CLOCK_REALTIME`, one machine) when
//!   it is published, and read by a consumer that waits on the imported channel's doorbell;
//!   1 kHz, with the exporting bridge polling every 100 µs (its default) and without sleeping.
//! * Throughput: 8-byte and 4 KiB queue messages pushed as fast as the queue takes them, the
//!   bridges' queues blocking rather than dropping (lossless), against Zenoh's blocking puts.
//!
//! `rtipc-bridge-bench [--quick]`; it starts `rtipc-bridge` from its own directory and itself
//! for each role. Every message is checked (its index, in order).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtipc::{
    ChannelSpec, Direction, QueueConsumer, QueueProducer, Segment, StateConsumer, StateProducer,
    StateRef,
};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// A stamped state update.
#[derive(rtipc::Object, Debug)]
#[repr(C)]
struct Stamp {
    /// Nanoseconds since the epoch when it was published.
    t_ns: u64,
    /// 0 for a warm-up, then 1, 2, ...
    index: u64,
}

/// An 8-byte message.
#[derive(rtipc::Object, Debug)]
#[repr(C)]
struct Msg8 {
    index: u64,
}

/// A 4 KiB message.
#[derive(rtipc::Object, Debug)]
#[repr(C)]
struct Msg4k {
    index: u64,
    fill: [u64; 511],
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    let go = |i: usize| PathBuf::from(arg(i));
    match arg(1) {
        "stamp-pub" => stamp_pub(arg(2), num(3), num(4), &go(5)),
        "stamp-sub" => stamp_sub(arg(2), num(3), &go(4)),
        "zenoh-pub" => zenoh_pub(arg(2), num(3), num(4), &go(5)),
        "zenoh-sub" => zenoh_sub(arg(2), num(3), &go(4), false),
        "zenoh-sub-busy" => zenoh_sub(arg(2), num(3), &go(4), true),
        "queue-pub" => match num(3) {
            8 => queue_pub::<Msg8>(arg(2), num(4), &go(5), |i| Msg8 { index: i }),
            _ => queue_pub::<Msg4k>(arg(2), num(4), &go(5), |i| Msg4k {
                index: i,
                fill: [i; 511],
            }),
        },
        "queue-sub" => match num(3) {
            8 => queue_sub::<Msg8>(arg(2), num(4), &go(5), |m| (m.index, true)),
            _ => queue_sub::<Msg4k>(arg(2), num(4), &go(5), |m| {
                (m.index, m.fill.iter().all(|&w| w == m.index))
            }),
        },
        "zenoh-tput-pub" => zenoh_tput_pub(arg(2), num(3) as usize, num(4), &go(5)),
        "zenoh-tput-sub" => zenoh_tput_sub(arg(2), num(3) as usize, num(4), &go(5)),
        _ => run(args.iter().any(|a| a == "--quick")),
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// A child process; killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn<S: AsRef<std::ffi::OsStr>>(program: &Path, args: &[S]) -> Proc {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    Proc(child)
}

/// The `result ...` line the process prints, then waits for it to end.
fn result(mut p: Proc) -> String {
    let out = p.0.stdout.take().expect("piped");
    let line = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("result "))
        .unwrap_or_default();
    let _ = p.0.wait();
    line
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Setup {
    me: PathBuf,
    bridge: PathBuf,
    id: u32,
    run: u32,
}

impl Setup {
    fn names(&mut self) -> (String, String, String, String, String) {
        self.run += 1;
        let tag = format!("{}-{}", self.id, self.run);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(17447);
        let go = std::env::temp_dir().join(format!("rtipc-bridge-bench-{tag}.go"));
        let _ = std::fs::remove_file(&go);
        (
            format!("rtipc-bb-{tag}"),
            format!("rtipc-bb-{tag}-in"),
            format!("bench/{tag}"),
            format!("tcp/127.0.0.1:{port}"),
            go.to_string_lossy().into_owned(),
        )
    }

    /// Producer, exporter, importer, consumer; the consumer's result.
    fn through_bridge(
        &mut self,
        pubr: &[&str],
        subr: &[&str],
        channel: &str,
        bridge: &[&str],
    ) -> String {
        let (remote, local, prefix, endpoint, go) = self.names();
        let fill = |role: &[&str], seg: &str| -> Vec<String> {
            role.iter()
                .map(|a| match *a {
                    "SEG" => seg.to_owned(),
                    "GO" => go.clone(),
                    other => other.to_owned(),
                })
                .collect()
        };
        let pub_args = fill(pubr, &remote);
        let sub_args = fill(subr, &local);
        let _producer = spawn(&self.me, &pub_args);
        let mut ex = vec![
            "--listen", &endpoint, "--prefix", &prefix, "--export", &remote,
        ];
        ex.extend_from_slice(bridge);
        let _exporter = spawn(&self.bridge, &ex);
        let import = format!("{remote}:{channel}={local}");
        let mut im = vec![
            "--connect",
            &endpoint,
            "--prefix",
            &prefix,
            "--import",
            &import,
        ];
        im.extend_from_slice(bridge);
        let _importer = spawn(&self.bridge, &im);
        let r = result(spawn(&self.me, &sub_args));
        let _ = std::fs::remove_file(&go);
        r
    }

    /// Two bare Zenoh sessions; the subscriber's result.
    fn zenoh_alone(&mut self, pubr: &[&str], subr: &[&str]) -> String {
        let (_, _, _, endpoint, go) = self.names();
        let fill = |role: &[&str]| -> Vec<String> {
            role.iter()
                .map(|a| match *a {
                    "EP" => endpoint.clone(),
                    "GO" => go.clone(),
                    other => other.to_owned(),
                })
                .collect()
        };
        let (p, s) = (fill(pubr), fill(subr));
        let _publisher = spawn(&self.me, &p);
        let r = result(spawn(&self.me, &s));
        let _ = std::fs::remove_file(&go);
        r
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn run(quick: bool) {
    let me = std::env::current_exe().expect("own path");
    let bridge = me.with_file_name("rtipc-bridge");
    if !bridge.exists() {
        eprintln!(
            "{} not found: build it first (cargo build --release -p rtipc-zenoh)",
            bridge.display()
        );
        std::process::exit(1);
    }
    let mut s = Setup {
        me,
        bridge,
        id: std::process::id(),
        run: 0,
    };
    let rounds = if quick { 1 } else { 5 };
    println!(
        "rtipc through two rtipc-bridge processes over loopback TCP, against Zenoh alone \
         (two bare sessions) in the same run; {rounds} round(s), medians over the rounds"
    );
    latency(&mut s, rounds, if quick { 1000 } else { 5000 });
    throughput(&mut s, rounds, if quick { 20_000 } else { 200_000 });
}

/// One path's latency figures, one entry per round.
struct Row {
    name: &'static str,
    p50: Vec<f64>,
    p99: Vec<f64>,
    max: Vec<f64>,
    missed: Vec<f64>,
}

impl Row {
    fn new(name: &'static str) -> Row {
        Row {
            name,
            p50: vec![],
            p99: vec![],
            max: vec![],
            missed: vec![],
        }
    }

    fn push(&mut self, r: &str) {
        self.p50.push(field(r, "p50_ns") / 1e3);
        self.p99.push(field(r, "p99_ns") / 1e3);
        self.max.push(field(r, "max_ns") / 1e3);
        self.missed.push(field(r, "missed"));
    }
}

fn latency(s: &mut Setup, rounds: u32, n: u64) {
    let n_s = n.to_string();
    println!("\nstate update latency, published at 1 kHz ({n} per round), in µs:");
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>9}",
        "path", "p50", "p99", "max", "missed"
    );
    let mut rows = [
        Row::new("bridge, exporter polls every 100 µs"),
        Row::new("bridge, exporter polls busily"),
        Row::new("zenoh alone"),
        Row::new("zenoh alone, subscriber polls busily"),
    ];
    for _ in 0..rounds {
        for (i, poll) in ["100", "0"].iter().enumerate() {
            let r = s.through_bridge(
                &["stamp-pub", "SEG", "1000", &n_s, "GO"],
                &["stamp-sub", "SEG", &n_s, "GO"],
                "stamp",
                &["--poll-us", poll],
            );
            rows[i].push(&r);
        }
        for (i, sub) in [(2, "zenoh-sub"), (3, "zenoh-sub-busy")] {
            let r = s.zenoh_alone(
                &["zenoh-pub", "EP", "1000", &n_s, "GO"],
                &[sub, "EP", &n_s, "GO"],
            );
            rows[i].push(&r);
        }
    }
    let mut medians = Vec::new();
    for r in &mut rows {
        let (a, b) = (median(&mut r.p50), median(&mut r.p99));
        let (c, d) = (median(&mut r.max), median(&mut r.missed));
        println!("  {:<38} {a:>9.1} {b:>9.1} {c:>9.1} {d:>9}", r.name);
        medians.push((a, b));
    }
    // Each bridge row against the reference that sleeps or polls as its exporter does.
    for (row, reference) in [(0, 2), (1, 3)] {
        println!(
            "  ratio, {} / {}: p50 {:.2}, p99 {:.2}",
            rows[row].name,
            rows[reference].name,
            medians[row].0 / medians[reference].0,
            medians[row].1 / medians[reference].1
        );
    }
}

fn throughput(s: &mut Setup, rounds: u32, count: u64) {
    println!("\nqueue throughput, lossless ({count} messages per round), messages per second:");
    for size in [8usize, 4096] {
        let (m, sz) = (count.to_string(), size.to_string());
        let (mut b, mut z) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let r = s.through_bridge(
                &["queue-pub", "SEG", &sz, &m, "GO"],
                &["queue-sub", "SEG", &sz, &m, "GO"],
                "q",
                &["--poll-us", "100", "--queue-congestion", "block"],
            );
            assert_eq!(field(&r, "bad"), 0.0, "{r}");
            assert_eq!(field(&r, "received"), count as f64, "{r}");
            b.push(field(&r, "rate"));
            let r = s.zenoh_alone(
                &["zenoh-tput-pub", "EP", &sz, &m, "GO"],
                &["zenoh-tput-sub", "EP", &sz, &m, "GO"],
            );
            assert_eq!(field(&r, "bad"), 0.0, "{r}");
            assert_eq!(field(&r, "received"), count as f64, "{r}");
            z.push(field(&r, "rate"));
        }
        let (b, z) = (median(&mut b), median(&mut z));
        println!(
            "  {size:>5} B: bridge {b:>10.0} msg/s ({:>7.1} MB/s), zenoh alone {z:>10.0} msg/s; \
             ratio {:.2}",
            b * size as f64 / 1e6,
            b / z
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Roles.

/// Calls `f` for the indexes 1..=n at `rate` per second, on absolute deadlines.
fn paced(rate: u64, n: u64, mut f: impl FnMut(u64)) {
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = Instant::now();
    for i in 1..=n {
        next += period;
        if let Some(rest) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
        f(i);
    }
}

fn linger() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn stamp_pub(seg: &str, rate: u64, n: u64, go: &Path) {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("stamp", Direction::CreatorToPeer)
                .object::<Stamp>()
                .notify(true),
        )
        .replace_stale(true)
        .create(seg)
        .expect("segment");
    let mut p = StateProducer::<Stamp>::new(&seg, "stamp").expect("producer");
    while !go.exists() {
        p.publish_copy(&Stamp { t_ns: 0, index: 0 })
            .expect("publish");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    paced(rate, n, |i| {
        p.publish_copy(&Stamp {
            t_ns: now_ns(),
            index: i,
        })
        .expect("publish");
    });
    linger();
}

/// Prints the latency percentiles of `lat` (nanoseconds).
fn report(mut lat: Vec<u64>, n: u64, bad: u64) {
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "result samples={} missed={} bad={bad} p50_ns={} p99_ns={} max_ns={}",
        lat.len(),
        n - lat.len() as u64,
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    );
}

fn stamp_sub(seg: &str, n: u64, go: &Path) {
    let seg = Segment::wait_open(seg, Duration::from_secs(60)).expect("segment");
    let mut c = StateConsumer::<Stamp>::new(&seg, "stamp").expect("consumer");
    let mut lat = Vec::with_capacity(n as usize);
    let (mut last, mut bad) = (0u64, 0u64);
    let mut idle = Instant::now();
    while last < n && idle.elapsed() < Duration::from_secs(5) {
        let _ = c.wait(Some(Duration::from_millis(100)));
        let Some(v) = c.fetch().expect("fetch") else {
            continue;
        };
        if !StateRef::is_new(&v) {
            continue;
        }
        let t = now_ns();
        idle = Instant::now();
        if v.index == 0 {
            let _ = std::fs::write(go, b"go");
            continue;
        }
        if v.index <= last {
            bad += 1;
        }
        last = v.index;
        lat.push(t.saturating_sub(v.t_ns));
    }
    report(lat, n, bad);
}

fn session(endpoint: &str, listen: bool) -> zenoh::Session {
    let mut c = zenoh::Config::default();
    c.insert_json5("scouting/multicast/enabled", "false")
        .expect("config");
    let key = if listen {
        "listen/endpoints"
    } else {
        "connect/endpoints"
    };
    c.insert_json5(key, &format!("[\"{endpoint}\"]"))
        .expect("config");
    zenoh::open(c).wait().expect("zenoh session")
}

fn zenoh_pub(endpoint: &str, rate: u64, n: u64, go: &Path) {
    let s = session(endpoint, true);
    let p = s
        .declare_publisher("bench/stamp")
        .congestion_control(CongestionControl::Drop)
        .express(true)
        .wait()
        .expect("publisher");
    let put = |t: u64, i: u64| {
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&i.to_le_bytes());
        p.put(b).wait().expect("put");
    };
    while !go.exists() {
        put(0, 0);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    paced(rate, n, |i| put(now_ns(), i));
    linger();
}

fn word(b: &[u8], i: usize) -> u64 {
    b.get(i * 8..i * 8 + 8)
        .and_then(|w| w.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// The reference subscriber: it blocks in the handler's `recv`, or (`busy`) polls it.
fn zenoh_sub(endpoint: &str, n: u64, go: &Path, busy: bool) {
    let s = session(endpoint, false);
    let sub = s
        .declare_subscriber("bench/stamp")
        .wait()
        .expect("subscriber");
    let mut lat = Vec::with_capacity(n as usize);
    let (mut last, mut bad) = (0u64, 0u64);
    let mut idle = Instant::now();
    while last < n && idle.elapsed() < Duration::from_secs(5) {
        let got = if busy {
            sub.try_recv()
        } else {
            sub.recv_timeout(Duration::from_millis(100))
        };
        let Ok(Some(sample)) = got else {
            std::hint::spin_loop();
            continue;
        };
        idle = Instant::now();
        let t = now_ns();
        let b = sample.payload().to_bytes();
        let (stamp, index) = (word(&b, 0), word(&b, 1));
        if index == 0 {
            let _ = std::fs::write(go, b"go");
            continue;
        }
        if index <= last {
            bad += 1;
        }
        last = index;
        lat.push(t.saturating_sub(stamp));
    }
    report(lat, n, bad);
}

fn queue_pub<T: rtipc::Object>(seg: &str, n: u64, go: &Path, make: impl Fn(u64) -> T) {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::queue("q", Direction::CreatorToPeer, 1024)
                .object::<T>()
                .notify(true),
        )
        .replace_stale(true)
        .create(seg)
        .expect("segment");
    let mut p = QueueProducer::<T>::new(&seg, "q").expect("producer");
    while !go.exists() {
        let _ = p.try_push(&make(0)).expect("push");
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 1..=n {
        let m = make(i);
        while !p.try_push(&m).expect("push") {
            std::thread::yield_now();
        }
    }
    linger();
}

/// Prints the rate at which indexes 1..=n arrived (from the first to the last).
fn rate_report(first: Option<Instant>, got: u64, bad: u64) {
    let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    println!(
        "result received={got} bad={bad} seconds={secs:.3} rate={:.0}",
        got as f64 / secs
    );
}

fn queue_sub<T: rtipc::Object>(seg: &str, n: u64, go: &Path, check: impl Fn(&T) -> (u64, bool)) {
    let seg = Segment::wait_open(seg, Duration::from_secs(60)).expect("segment");
    let mut c = QueueConsumer::<T>::new(&seg, "q").expect("consumer");
    let (mut last, mut got, mut bad) = (0u64, 0u64, 0u64);
    let mut first = None;
    let mut idle = Instant::now();
    while last < n && idle.elapsed() < Duration::from_secs(10) {
        let Some(m) = c.pop().expect("pop") else {
            let _ = c.wait(Some(Duration::from_millis(10)));
            continue;
        };
        idle = Instant::now();
        let (index, intact) = check(&m);
        if index == 0 {
            let _ = std::fs::write(go, b"go");
            continue;
        }
        first.get_or_insert_with(Instant::now);
        got += 1;
        if index != last + 1 || !intact {
            bad += 1;
        }
        last = index;
    }
    rate_report(first, got, bad);
}

fn zenoh_tput_pub(endpoint: &str, size: usize, n: u64, go: &Path) {
    let s = session(endpoint, true);
    let p = s
        .declare_publisher("bench/q")
        .congestion_control(CongestionControl::Block)
        .wait()
        .expect("publisher");
    let put = |i: u64| {
        let mut b = vec![0u8; size.max(8)];
        b[..8].copy_from_slice(&i.to_le_bytes());
        p.put(b).wait().expect("put");
    };
    while !go.exists() {
        put(0);
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 1..=n {
        put(i);
    }
    linger();
}

fn zenoh_tput_sub(endpoint: &str, size: usize, n: u64, go: &Path) {
    let s = session(endpoint, false);
    let sub = s.declare_subscriber("bench/q").wait().expect("subscriber");
    let (mut last, mut got, mut bad) = (0u64, 0u64, 0u64);
    let mut first = None;
    while last < n {
        let Ok(Some(sample)) = sub.recv_timeout(Duration::from_secs(10)) else {
            break;
        };
        let b = sample.payload().to_bytes();
        let index = word(&b, 0);
        if index == 0 {
            let _ = std::fs::write(go, b"go");
            continue;
        }
        first.get_or_insert_with(Instant::now);
        got += 1;
        if index != last + 1 || b.len() != size.max(8) {
            bad += 1;
        }
        last = index;
    }
    rate_report(first, got, bad);
}

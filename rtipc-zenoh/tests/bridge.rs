//! The bridge between processes: a producer and an exporting bridge on one side, an importing
//! bridge and consumers on the other, each its own process, over Zenoh on loopback TCP (no
//! multicast scouting), then across two network namespaces joined by a veth pair.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BRIDGE: &str = env!("CARGO_BIN_EXE_rtipc-bridge");
const PEER: &str = env!("CARGO_BIN_EXE_rtipc-zenoh-test-peer");

/// One scenario at a time: each runs five processes on a machine that may have two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// A child process whose output lines are collected as they come.
struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(name: &str, wrap: &[String], program: &str, args: &[String]) -> Proc {
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        let mut child = cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, tag) in [
            (Box::new(out) as Box<dyn std::io::Read + Send>, "out"),
            (Box::new(err), "err"),
        ] {
            let lines = lines.clone();
            let label = format!("{name} {tag}");
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("  [{label}] {line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// The first output line that starts with `prefix`, waiting up to `limit` for it.
    fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// The first output line that contains `part`, waiting up to `limit` for it.
    fn line_containing(&self, part: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(l) = self.lines_with(part).into_iter().next() {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Every output line that contains `part`.
    fn lines_with(&self, part: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.contains(part)).cloned().collect()
    }

    /// Waits for the process to end, up to `limit`; its exit code.
    fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not end within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} {}", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=` in a line of `key=value` words.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in `{line}`"))
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| s(x)).collect()
}

/// Where each side runs: a command prefix (e.g. `ip netns exec ns`) and the endpoints.
struct Net {
    export_side: Vec<String>,
    import_side: Vec<String>,
    listen: String,
    connect: String,
}

impl Net {
    fn loopback() -> Net {
        let port = free_port();
        Net {
            export_side: vec![],
            import_side: vec![],
            listen: format!("tcp/127.0.0.1:{port}"),
            connect: format!("tcp/127.0.0.1:{port}"),
        }
    }
}

impl Net {
    /// A bridge listening on this network that exports segment `names.remote`.
    fn exporter(&self, name: &str, names: &Names, congestion: &str) -> Proc {
        let args = [
            "--listen",
            &self.listen,
            "--prefix",
            &names.prefix,
            "--export",
            &names.remote,
            "--queue-congestion",
            congestion,
        ];
        Proc::spawn(name, &self.export_side, BRIDGE, &strings(&args))
    }

    /// A bridge connecting to the exporter that imports each of `channels` of `names.remote`
    /// into segment `names.local`.
    fn importer(&self, names: &Names, channels: &[&str], congestion: &str) -> Proc {
        let mut args = strings(&["--connect", &self.connect, "--prefix", &names.prefix]);
        for ch in channels {
            args.push(s("--import"));
            args.push(format!("{}:{ch}={}", names.remote, names.local));
        }
        args.extend(strings(&["--queue-congestion", congestion]));
        Proc::spawn("importer", &self.import_side, BRIDGE, &args)
    }
}

/// A test's names: the exporting side's segment, the importing side's, the key prefix, and a
/// file whose creation says go (any left over is removed).
struct Names {
    remote: String,
    local: String,
    prefix: String,
    go: PathBuf,
    go_s: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let id = format!("{tag}-{}", std::process::id());
        let go = std::env::temp_dir().join(format!("rtipc-brt-{id}.go"));
        let _ = std::fs::remove_file(&go);
        Names {
            remote: format!("rtipc-brt-{id}"),
            local: format!("rtipc-brt-{id}-in"),
            prefix: format!("test/{id}"),
            go_s: go.to_string_lossy().into_owned(),
            go,
        }
    }
}

/// What a scenario checks beyond the counts.
struct Extra {
    changed_struct: bool,
    kill_exporter: bool,
    /// Exported queues block rather than drop on a congested network: nothing may be lost.
    block: bool,
}

/// Runs producer, exporter, importer and consumer; checks the consumer's result against the
/// importer's counters; returns the consumer's result line.
fn scenario(net: &Net, tag: &str, n: u64, cap: u32, slow_us: u64, extra: Extra) -> String {
    let names = Names::new(tag);
    let (remote, local, go_s) = (&names.remote, &names.local, &names.go_s);
    let (n_s, cap_s, slow_s) = (n.to_string(), cap.to_string(), slow_us.to_string());
    let congestion = if extra.block { "block" } else { "drop" };
    let producer = Proc::spawn(
        "producer",
        &net.export_side,
        PEER,
        &strings(&["produce", remote, &n_s, &cap_s, go_s, "0"]),
    );
    let mut exporter = net.exporter("exporter", &names, congestion);
    let mut importer = net.importer(&names, &["pose", "events"], congestion);
    let mut consumer = Proc::spawn(
        "consumer",
        &net.import_side,
        PEER,
        &strings(&["consume", local, &n_s, &slow_s, go_s, "0"]),
    );
    let code = consumer.wait(Duration::from_secs(600));
    let result = consumer
        .line("result ", Duration::from_secs(1))
        .expect("the consumer's result");
    assert_eq!(code, 0, "consumer: {result}");
    let produced = producer
        .line("result ", Duration::from_secs(10))
        .expect("the producer's result");
    assert_eq!(field(&produced, "produced"), n);

    if extra.changed_struct {
        changed_struct_is_refused(net, local);
    }
    if extra.kill_exporter {
        killed_exporter_is_reported(net, tag, local, &mut exporter);
    } else {
        exporter.signal("-TERM");
        assert_eq!(
            exporter.wait(Duration::from_secs(30)),
            0,
            "a clean exit on SIGTERM"
        );
        assert!(!exporter.lines_with("stats export").is_empty());
    }

    importer.signal("-TERM");
    assert_eq!(
        importer.wait(Duration::from_secs(30)),
        0,
        "a clean exit on SIGTERM"
    );
    let stats = importer.lines_with("stats import");
    let events = stats
        .iter()
        .find(|l| l.contains("/events:"))
        .expect("the queue's counters");
    let pose = stats
        .iter()
        .find(|l| l.contains("/pose:"))
        .expect("the state's counters");
    eprintln!("{tag}: consumer {result}\n{tag}: importer {events}\n{tag}: importer {pose}");
    drop(producer);
    let _ = std::fs::remove_file(&names.go);

    check_counts(&result, events, pose, n, cap, extra.block);
    result
}

/// A consumer built with a changed struct gets the field-level mismatch on the importing side.
fn changed_struct_is_refused(net: &Net, local: &str) {
    let mut changed = Proc::spawn(
        "changed",
        &net.import_side,
        PEER,
        &[s("changed"), local.to_owned()],
    );
    assert_eq!(
        changed.wait(Duration::from_secs(60)),
        0,
        "both channels refuse it"
    );
    for what in ["state", "queue"] {
        let l = changed
            .line(&format!("refused {what}: "), Duration::from_secs(1))
            .unwrap();
        // The field-level difference, as against a local producer.
        assert!(l.contains("`words`") && l.contains("`extra`"), "{l}");
    }
}

/// Kills the exporting bridge; the importing side's consumer is told its producer is gone.
fn killed_exporter_is_reported(net: &Net, tag: &str, local: &str, exporter: &mut Proc) {
    let ns = death_is_reported(&net.import_side, local, exporter, "the exporter's");
    let ms = ns as f64 / 1e6;
    println!("{tag}: exporter killed -> consumer saw no producer after {ms:.1} ms");
}

/// A consumer of `local`'s `pose` (run with `side`) waits for its producer; `victim` is
/// SIGKILLed; the consumer must be told that its producer is gone. Returns how long after the
/// kill it was told, in nanoseconds.
fn death_is_reported(side: &[String], local: &str, victim: &mut Proc, whose: &str) -> u128 {
    let mut watch = Proc::spawn("watch", side, PEER, &[s("watch"), local.to_owned()]);
    watch
        .line("ready", Duration::from_secs(30))
        .expect("watch ready");
    let killed = unix_ns();
    victim.signal("-KILL");
    victim.wait(Duration::from_secs(10));
    assert_eq!(
        watch.wait(Duration::from_secs(30)),
        0,
        "{whose} death is reported"
    );
    let gone = field(
        &watch.line("result ", Duration::from_secs(1)).unwrap(),
        "gone_unix_ns",
    );
    u128::from(gone).saturating_sub(killed)
}

/// Every message is accounted for, against the importer's counters.
fn check_counts(result: &str, events: &str, pose: &str, n: u64, cap: u32, block: bool) {
    // Every message is accounted for: seen, missed by the slow consumer (the local queue
    // overwrote it), or lost before the local queue, which the importer counted.
    // Dropping bridges may lose the last messages too, which no later message reveals as a
    // gap: the accounting runs up to the last message that arrived. Blocking ones lose none.
    let last = field(result, "queue_last");
    if block {
        assert_eq!(last, n, "{result}");
    }
    assert_eq!(
        field(result, "state_last"),
        n,
        "the newest state arrives: {result}"
    );
    for k in ["state_bad", "state_wrong", "queue_bad", "queue_wrong"] {
        assert_eq!(field(result, k), 0, "{k}: {result}");
    }
    assert_eq!(
        field(result, "queue_seen")
            + field(result, "queue_missed")
            + field(result, "queue_unexplained"),
        last,
        "{result}"
    );
    assert_eq!(
        field(result, "queue_unexplained"),
        field(events, "network_lost") + field(events, "upstream_missed"),
        "{result} / {events}"
    );
    // The local queue's overwrites are the consumer's misses, save the messages the consumer
    // passed over when lapped, which the queue counts when it overwrites them later.
    let overwritten = field(events, "overwritten");
    let missed = field(result, "queue_missed");
    assert!(
        overwritten <= missed && missed <= overwritten + u64::from(cap),
        "{result} / {events}"
    );
    if block {
        // Nothing lost anywhere: every message crossed and was read.
        assert_eq!(field(result, "queue_seen"), n, "{result}");
        assert_eq!(field(events, "network_lost"), 0, "{events}");
        assert_eq!(field(events, "overwritten"), 0, "{events}");
    }
    assert_eq!(field(events, "foreign"), 0);
    assert_eq!(field(pose, "foreign"), 0);
}

#[test]
fn state_and_queue_cross_loopback_tcp_with_every_word_checked() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let result = scenario(
        &Net::loopback(),
        "loopback",
        100_000,
        1024,
        0,
        Extra {
            changed_struct: true,
            kill_exporter: true,
            block: false,
        },
    );
    println!("loopback: {result}");
}

/// A 64 KiB state object whose producer updates it in place far faster than the exporter can
/// copy it: every copy may be overwritten before it ends, and the exporter tries again rather
/// than giving the channel up; the last update, published once the churn stops, arrives whole.
#[test]
fn a_state_channel_rewritten_faster_than_it_is_copied_is_still_exported() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::loopback();
    let names = Names::new("churn");
    let producer = Proc::spawn(
        "producer",
        &[],
        PEER,
        &strings(&["churn", &names.remote, &names.go_s, "2000"]),
    );
    let mut exporter = net.exporter("exporter", &names, "drop");
    let mut importer = net.importer(&names, &["big"], "drop");
    let mut consumer = Proc::spawn(
        "consumer",
        &[],
        PEER,
        &strings(&["last-big", &names.local, &names.go_s]),
    );
    let code = consumer.wait(Duration::from_secs(300));
    let produced = producer
        .line("result ", Duration::from_secs(10))
        .expect("the producer's result");
    let result = consumer
        .line("result ", Duration::from_secs(1))
        .unwrap_or_default();
    assert_eq!(code, 0, "the last update arrives whole: {produced}");
    assert_eq!(
        field(&result, "index"),
        field(&produced, "last"),
        "{result}"
    );
    assert!(field(&produced, "churned") > 0, "{produced}");
    let gave_up = exporter.lines_with("not exported");
    assert!(gave_up.is_empty(), "{gave_up:?}");
    for p in [&mut exporter, &mut importer] {
        p.signal("-TERM");
        assert_eq!(
            p.wait(Duration::from_secs(30)),
            0,
            "a clean exit on SIGTERM"
        );
    }
    // The churn did lap the exporter's copies, and its counters say so.
    let stats = exporter.lines_with("stats export");
    let lapped = stats.first().map(|l| field(l, "lapped")).unwrap_or(0);
    println!("churn: {produced}; {result}; exporter {stats:?}");
    assert!(lapped > 0, "{stats:?}");
    drop(producer);
    let _ = std::fs::remove_file(&names.go);
}

#[test]
fn a_slow_consumer_on_the_importing_side_gets_exact_missed_counts() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let result = scenario(
        &Net::loopback(),
        "slow",
        100_000,
        64,
        20,
        Extra {
            changed_struct: false,
            kill_exporter: false,
            block: false,
        },
    );
    assert!(
        field(&result, "queue_missed") > 0,
        "the consumer was slow enough to miss: {result}"
    );
    assert!(field(&result, "state_missed") > 0, "{result}");
    println!("slow consumer: {result}");
}

/// One round of a producer process and a consumer process through the running bridges: the
/// producer publishes indexes `base + 1..=base + n`, and the consumer checks each and gets
/// them all.
fn round(remote: &str, local: &str, base: u64, tag: &str) -> Proc {
    let n = 2000;
    let go = std::env::temp_dir().join(format!("rtipc-brt-{tag}-{}.go", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let go_s = go.to_string_lossy().into_owned();
    let (n_s, base_s) = (n.to_string(), base.to_string());
    let producer = Proc::spawn(
        "producer",
        &[],
        PEER,
        &strings(&["produce", remote, &n_s, "4096", &go_s, &base_s]),
    );
    let mut consumer = Proc::spawn(
        "consumer",
        &[],
        PEER,
        &strings(&["consume", local, &n_s, "0", &go_s, &base_s]),
    );
    assert_eq!(consumer.wait(Duration::from_secs(120)), 0);
    let result = consumer.line("result ", Duration::from_secs(1)).unwrap();
    eprintln!("{tag}: {result}");
    assert_eq!(field(&result, "queue_seen"), n, "{result}");
    assert_eq!(field(&result, "queue_last"), base + n, "{result}");
    assert_eq!(field(&result, "state_last"), base + n, "{result}");
    let _ = std::fs::remove_file(&go);
    producer
}

/// The exporting side's producer is killed and started again, then the exporting bridge: the
/// importing bridge follows each time without being told, and its consumers are told when
/// the producer is gone.
#[test]
fn producer_and_exporter_restarts_need_no_user_code() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::loopback();
    let names = Names::new("restart");
    let (remote, local) = (&names.remote, &names.local);
    let mut exporter = net.exporter("exporter", &names, "block");
    let mut importer = net.importer(&names, &["pose", "events"], "block");
    let mut first = round(remote, local, 0, "first producer");

    // The producer dies: the importing side's consumers see no producer.
    death_is_reported(&[], local, &mut first, "the producer's");

    // A new producer (a new segment of the same name): carried again.
    let mut second = round(remote, local, 1_000_000, "second producer");

    // The exporting bridge dies and another starts; so does the producer.
    death_is_reported(&[], local, &mut exporter, "the exporter's");
    second.signal("-KILL");
    second.wait(Duration::from_secs(10));
    let _exporter = net.exporter("exporter 2", &names, "block");
    let _third = round(remote, local, 2_000_000, "third producer");

    importer.signal("-TERM");
    assert_eq!(importer.wait(Duration::from_secs(30)), 0);
    let stats = importer.lines_with("stats import");
    // The restarted producers resumed the segment, so the numbers went on; what the second
    // exporting bridge put before the importing one reconnected to it is counted as lost.
    for l in &stats {
        assert_eq!(field(l, "foreign"), 0, "{l}");
        assert!(field(l, "published") > 0, "{l}");
    }
    assert_eq!(stats.len(), 2);
}

/// With both bridges blocking and no one reading the imported queue, the importing bridge
/// waits, then Zenoh, then the exporting bridge: the producer is refused, never held up, and
/// both bridges still stop cleanly on SIGTERM.
#[test]
fn a_stalled_importing_side_never_holds_up_the_producer() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::loopback();
    let names = Names::new("stall");
    let importer = net.importer(&names, &["pose", "events"], "block");
    let mut flood = Proc::spawn(
        "flood",
        &[],
        PEER,
        &strings(&["flood", &names.remote, "200000", "64", &names.go_s]),
    );
    let exporter = net.exporter("exporter", &names, "block");
    // The flood starts once the importing side takes the queue (it has the description and
    // subscribed), so that the congestion reaches back to the exporting side.
    let taking = importer.line_containing("producing `events` here", Duration::from_secs(60));
    assert!(taking.is_some(), "the importer takes the queue");
    std::fs::write(&names.go, b"go").unwrap();
    assert_eq!(flood.wait(Duration::from_secs(120)), 0);
    let _ = std::fs::remove_file(&names.go);
    let r = flood.line("result ", Duration::from_secs(1)).unwrap();
    assert_eq!(field(&r, "published"), 200_000, "{r}");
    assert!(field(&r, "refused") > 0, "the queue filled up: {r}");
    // The imported queue (64) and the queues between hold the rest.
    assert!(field(&r, "accepted") < 100_000, "{r}");
    let mut bridges = [exporter, importer];
    for b in &mut bridges {
        b.signal("-TERM");
    }
    for b in &mut bridges {
        assert_eq!(
            b.wait(Duration::from_secs(30)),
            0,
            "{} exits on SIGTERM",
            b.name
        );
    }
}

/// A record channel crosses too: 20,000 records of 1 to 50 elements, every element checked,
/// in order, none lost with both bridges blocking; a consumer with a changed element type is
/// refused on the importing side.
#[test]
fn records_cross_whole_and_in_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::loopback();
    let names = Names::new("records");
    let (local, go_s) = (&names.local, &names.go_s);
    let n = 20_000u64;
    let producer = Proc::spawn(
        "producer",
        &[],
        PEER,
        &strings(&["produce-records", &names.remote, &n.to_string(), go_s]),
    );
    let mut exporter = net.exporter("exporter", &names, "block");
    let mut importer = net.importer(&names, &["log"], "block");
    let mut consumer = Proc::spawn(
        "consumer",
        &[],
        PEER,
        &strings(&["consume-records", local, &n.to_string(), go_s]),
    );
    assert_eq!(consumer.wait(Duration::from_secs(300)), 0);
    let r = consumer.line("result ", Duration::from_secs(1)).unwrap();
    assert_eq!(field(&r, "records_seen"), n, "{r}");
    assert_eq!(field(&r, "records_last"), n, "{r}");
    for k in [
        "records_bad",
        "records_wrong",
        "records_missed",
        "records_unexplained",
    ] {
        assert_eq!(field(&r, k), 0, "{k}: {r}");
    }
    let mut changed = Proc::spawn("changed", &[], PEER, &strings(&["changed-records", local]));
    assert_eq!(changed.wait(Duration::from_secs(60)), 0);
    let l = changed
        .line("refused record: ", Duration::from_secs(1))
        .unwrap();
    assert!(l.contains("`words`") && l.contains("`extra`"), "{l}");
    for b in [&mut exporter, &mut importer] {
        b.signal("-TERM");
        assert_eq!(b.wait(Duration::from_secs(30)), 0);
    }
    let stats = importer.lines_with("stats import");
    assert_eq!(stats.len(), 1);
    assert_eq!(field(&stats[0], "foreign"), 0, "{}", stats[0]);
    assert_eq!(field(&stats[0], "network_lost"), 0, "{}", stats[0]);
    drop(producer);
    let _ = std::fs::remove_file(&names.go);
}

/// Two network namespaces joined by a veth pair, removed on drop.
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn make() -> Result<Namespaces, String> {
        let id = std::process::id() % 100_000;
        let ns = Namespaces {
            a: format!("rtipc-a{id}"),
            b: format!("rtipc-b{id}"),
        };
        let net = 10 + id % 200;
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("cannot run `ip`: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`ip {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        ip(&["netns", "add", &ns.a])?;
        ip(&["netns", "add", &ns.b])?;
        let (va, vb) = (format!("rva{id}"), format!("rvb{id}"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &ns.a])?;
        ip(&["link", "set", &vb, "netns", &ns.b])?;
        let addr_a = format!("10.213.{net}.1/24");
        let addr_b = format!("10.213.{net}.2/24");
        ip(&["-n", &ns.a, "addr", "add", &addr_a, "dev", &va])?;
        ip(&["-n", &ns.b, "addr", "add", &addr_b, "dev", &vb])?;
        for (n, v) in [(&ns.a, &va), (&ns.b, &vb)] {
            ip(&["-n", n, "link", "set", v, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[test]
fn state_and_queue_cross_two_network_namespaces_over_a_veth_pair() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = match Namespaces::make() {
        Ok(ns) => ns,
        Err(why) => {
            println!("SKIPPED: network namespaces cannot be made here: {why}");
            eprintln!("SKIPPED: network namespaces cannot be made here: {why}");
            return;
        }
    };
    let id = std::process::id() % 100_000;
    let net_id = 10 + id % 200;
    let exec = |n: &str| vec![s("ip"), s("netns"), s("exec"), n.to_owned()];
    let net = |port: u16| Net {
        export_side: exec(&ns.a),
        import_side: exec(&ns.b),
        listen: format!("tcp/10.213.{net_id}.1:{port}"),
        connect: format!("tcp/10.213.{net_id}.1:{port}"),
    };
    // Nothing lost with both bridges blocking; the changed struct and the killed exporter.
    let result = scenario(
        &net(7447),
        "netns",
        100_000,
        1024,
        0,
        Extra {
            changed_struct: true,
            kill_exporter: true,
            block: true,
        },
    );
    println!("netns: {result}");
    // Dropping, with a slow consumer: the missed counts exact.
    let result = scenario(
        &net(7448),
        "netns-slow",
        100_000,
        64,
        20,
        Extra {
            changed_struct: false,
            kill_exporter: false,
            block: false,
        },
    );
    assert!(field(&result, "queue_missed") > 0, "{result}");
    println!("netns, slow consumer: {result}");
}

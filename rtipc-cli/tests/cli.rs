//! The `rtipc` binary against a real creator process: a separate process (this test binary,
//! started again in the role `creator_process`) creates a named segment with a state channel of
//! nested objects and arrays, a queue and a fan-out state channel, and publishes at a steady
//! rate; the tests run the built `rtipc` command against it and check what it prints.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rtipc::inspect::{bytes_of, Value};
use rtipc::{ChannelSpec, Direction, Object, QueueProducer, Segment, StateConsumer, StateProducer};

const ROLE: &str = "RTIPC_CLI_TEST_CREATOR";
/// Publishes per second of the creator.
const RATE: u64 = 1000;

#[derive(Object)]
#[repr(C)]
struct Joint {
    angle: f64,
    torque: [f32; 3],
    id: u32,
}

#[derive(Object)]
#[repr(C)]
struct Arm {
    seq: u64,
    joints: [Joint; 2],
    grid: [[u16; 2]; 2],
    t: f64,
}

#[derive(Object)]
#[repr(C)]
struct Event {
    seq: u64,
    code: i32,
    level: f32,
}

/// The same type as `Arm` in another build: `t` became an `f32` and a field was added.
mod other_build {
    use super::Joint;
    use rtipc::Object;

    #[derive(Object)]
    #[rtipc(name = "Arm")]
    #[repr(C)]
    pub struct Arm {
        pub seq: u64,
        pub joints: [Joint; 2],
        pub grid: [[u16; 2]; 2],
        pub t: f32,
        pub extra: u32,
    }
}

/// A shared region beside the channels.
#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
struct Control {
    ticks: rtipc::region::AtomicU64,
    limit: u32,
    mode: u32,
}

fn arm(seq: u64) -> Arm {
    let joint = |i: u32| Joint {
        angle: seq as f64 * 0.5 + f64::from(i),
        torque: [seq as f32, i as f32, -1.25],
        id: i,
    };
    Arm {
        seq,
        joints: [joint(0), joint(1)],
        grid: [[seq as u16, 1], [2, 3]],
        t: seq as f64 / 1000.0,
    }
}

fn event(seq: u64) -> Event {
    Event {
        seq,
        code: -(seq as i32),
        level: seq as f32 / 4.0,
    }
}

fn json_of<T: Object>(v: &T) -> serde_json::Value {
    let text = Value::decode(T::SCHEMA, bytes_of(v)).unwrap().to_json();
    serde_json::from_str(&text).unwrap()
}

/// The creator: publishes `arm(k)`, `event(k)` and `event(k)` on the fan-out channel at
/// [`RATE`] per second, for at most a minute.
#[test]
#[ignore = "a process role: the creator that the other tests start"]
fn creator_process() {
    let Ok(name) = std::env::var(ROLE) else {
        return;
    };
    let seg = Segment::builder()
        .state::<Arm>("arm", Direction::CreatorToPeer)
        .queue::<Event>("events", Direction::CreatorToPeer, 64)
        .channel(
            ChannelSpec::state("status", Direction::CreatorToPeer)
                .object::<Event>()
                .consumers(3),
        )
        .region::<Control>("control", |c| {
            c.limit = 7;
            c.mode = 2;
        })
        .record::<Event>("frames", Direction::CreatorToPeer, 8192)
        .replace_stale(true)
        .create(&name)
        .unwrap();
    let control = rtipc::region::SharedRegion::<Control>::new(&seg, "control").unwrap();
    let mut a = StateProducer::<Arm>::new(&seg, "arm").unwrap();
    let mut q = QueueProducer::<Event>::new(&seg, "events").unwrap();
    let mut s = StateProducer::<Event>::new(&seg, "status").unwrap();
    let mut frames = rtipc::RecordProducer::<Event>::new(&seg, "frames").unwrap();
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / RATE);
    for k in 1..=60 * RATE {
        a.publish_copy(&arm(k)).unwrap();
        q.force_push(&event(k)).unwrap();
        s.publish_copy(&event(k)).unwrap();
        control.ticks.store(k, std::sync::atomic::Ordering::Relaxed);
        // A record of 1 to 3 events; nobody takes them, so the oldest are dropped.
        let events = [event(k), event(k), event(k)];
        frames
            .send_overwrite(&events[..(k % 3 + 1) as usize])
            .unwrap();
        if k == 1 {
            // Every channel has something in it by the time the tests look.
            println!("ready");
        }
        let next = start + period * (k as u32);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

/// A creator process, killed when dropped.
struct Creator {
    child: Child,
    name: String,
}

impl Creator {
    fn start(tag: &str) -> Creator {
        let name = format!("rtipc-cli-{tag}-{}", std::process::id());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["creator_process", "--exact", "--ignored", "--nocapture"])
            .env(ROLE, &name)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.trim() == "ready")),
            "the creator did not start"
        );
        Creator { child, name }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Creator {
    fn drop(&mut self) {
        self.kill();
        let _ = rtipc::inspect::remove(&self.name, true);
    }
}

/// Runs `rtipc ARGS`, killing it after 20 s.
fn rtipc(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtipc"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let _ = stdout.read_to_end(&mut o);
        o
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rtipc {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut err = Vec::new();
    let _ = stderr.read_to_end(&mut err);
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err,
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs `rtipc ARGS` and expects exit status 0.
fn ok(args: &[&str]) -> String {
    let o = rtipc(args);
    assert!(
        o.status.success(),
        "rtipc {args:?}: {o:?}, stderr {}",
        stderr(&o)
    );
    stdout(&o)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn ls_lists_the_live_segment() {
    let c = Creator::start("ls");
    let all = json(&ok(&["ls", "--json"]));
    let ours: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == c.name.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{all}");
    assert_eq!(ours[0]["state"], "live");
    assert_eq!(ours[0]["creator_pid"], c.pid());
    assert_eq!(ours[0]["channels"], 5);
    let text = ok(&["ls"]);
    let line = text.lines().find(|l| l.starts_with(&c.name)).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[2..], [c.pid().to_string().as_str(), "live", "5"]);
    assert!(text.starts_with("NAME"), "{text}");
}

#[test]
fn show_reports_channels_objects_and_holders() {
    let c = Creator::start("show");
    let seg = Segment::open(&c.name).unwrap();
    let mut consumer = StateConsumer::<Arm>::new(&seg, "arm").unwrap();
    let got = loop {
        if let Some(v) = consumer.fetch().unwrap() {
            break v.seq;
        }
    };
    let v = json(&ok(&["show", &c.name, "--json"]));
    assert_eq!(v["segment"]["creator_pid"], c.pid());
    assert_eq!(v["segment"]["creator_alive"], true);
    let ch = v["channels"].as_array().unwrap();
    let names: Vec<_> = ch.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["arm", "events", "status", "control", "frames"]);
    assert_eq!(ch[0]["objects"][0]["name"], "Arm");
    assert_eq!(
        ch[0]["objects"][0]["fingerprint"],
        format!("{:#018x}", Arm::FINGERPRINT)
    );
    assert_eq!(ch[0]["objects"][0]["id"], format!("{:#018x}", Arm::ID));
    assert_eq!(ch[0]["objects"][0]["size"], size_of::<Arm>());
    assert_eq!(
        (ch[1]["kind"].as_str(), ch[1]["capacity"].as_u64()),
        (Some("queue"), Some(64))
    );
    assert_eq!(
        (ch[2]["consumers"].as_u64(), ch[2]["slots"].as_u64()),
        (Some(3), Some(5))
    );
    // The producer is held by the creator, the consumer by this process.
    let ends = ch[0]["ends"].as_array().unwrap();
    assert_eq!(
        (ends[0]["held"].as_bool(), ends[0]["pid"].as_u64()),
        (Some(true), Some(u64::from(c.pid())))
    );
    assert_eq!(
        (ends[1]["held"].as_bool(), ends[1]["pid"].as_u64()),
        (Some(true), Some(u64::from(std::process::id())))
    );
    assert!(ends[1]["taken"].as_u64().unwrap() >= got);
    assert!(ch[0]["published"].as_u64().unwrap() >= got);
    assert_eq!(ch[2]["ends"].as_array().unwrap().len(), 4);
    assert!(ch[2]["ends"].as_array().unwrap()[1..]
        .iter()
        .all(|e| e["held"] == false));
    let text = ok(&["show", &c.name]);
    assert!(
        text.contains(&format!("creator pid {} (alive)", c.pid())),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:#018x}", Arm::FINGERPRINT)),
        "{text}"
    );
    let consumer_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("consumer  "))
        .unwrap();
    assert!(
        consumer_line.contains(&std::process::id().to_string()),
        "{text}"
    );
}

#[test]
fn schema_prints_text_c_rust_and_json() {
    let c = Creator::start("schema");
    let text = ok(&["schema", &c.name, "arm"]);
    assert!(
        text.starts_with(&format!(
            "Arm (id {:#018x}, fingerprint {:#018x}): {} bytes",
            Arm::ID,
            Arm::FINGERPRINT,
            size_of::<Arm>()
        )),
        "{text}"
    );
    assert!(text.contains("joints  [Joint; 2]"), "{text}");
    assert!(text.contains("Joint (nested"), "{text}");
    let header = ok(&["schema", &c.name, "arm", "--format", "c"]);
    assert!(
        header.contains("_Static_assert(sizeof(struct Arm) == 72"),
        "{header}"
    );
    assert!(
        header.contains(&format!("{:x}", Arm::FINGERPRINT)),
        "{header}"
    );
    assert!(header.contains("struct Joint joints[2];"), "{header}");
    let rust = ok(&["schema", &c.name, "--format", "rust"]);
    for ty in ["struct Arm", "struct Joint", "struct Event"] {
        assert!(rust.contains(ty), "{rust}");
    }
    let j = json(&ok(&["schema", &c.name, "--format", "json"]));
    let names: Vec<_> = j["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Arm", "Event", "Control"]);
}

#[test]
fn echo_prints_the_published_values() {
    let c = Creator::start("echo");
    let text = ok(&["echo", &c.name, "arm", "--count", "5", "--json"]);
    let lines: Vec<_> = text.lines().map(json).collect();
    assert_eq!(lines.len(), 5);
    let mut last = 0;
    for l in &lines {
        let seq = l["seq"].as_u64().unwrap();
        assert!(seq > last, "{text}");
        last = seq;
        // The k-th publish is update k and carries arm(k).
        assert_eq!(l["value"], json_of(&arm(seq)), "{text}");
    }
    // One field.
    let text = ok(&[
        "echo",
        &c.name,
        "arm",
        "--field",
        "joints[1].angle",
        "--count",
        "3",
    ]);
    for line in text.lines() {
        let (seq, v) = line.strip_prefix("seq ").unwrap().split_once(": ").unwrap();
        let seq: u64 = seq.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(v.parse::<f64>().unwrap(), seq as f64 * 0.5 + 1.0, "{line}");
    }
    // A queue: messages in order, each one what was pushed, gaps counted as missed.
    let text = ok(&["echo", &c.name, "events", "--count", "20", "--json"]);
    let mut prev: Option<u64> = None;
    for l in text.lines().map(json) {
        let seq = l["seq"].as_u64().unwrap();
        assert_eq!(l["value"], json_of(&event(seq)), "{text}");
        if let Some(p) = prev {
            assert_eq!(seq, p + 1 + l["missed"].as_u64().unwrap(), "{text}");
        }
        prev = Some(seq);
    }
    // CSV: a header of field paths, then rows.
    let text = ok(&["echo", &c.name, "status", "--count", "2", "--csv"]);
    let rows: Vec<_> = text.lines().collect();
    assert_eq!(rows[0], "seq,missed,seq,code,level");
    let cells: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(cells[0], cells[2]);
    let seq: i64 = cells[0].parse().unwrap();
    assert_eq!(cells[3].parse::<i64>().unwrap(), -seq);
}

/// The rates `rtipc hz` reports against the real rate, measured from the published counters
/// around it.
#[test]
fn hz_measures_the_creators_rate() {
    let c = Creator::start("hz");
    // Read in this process, right before `hz` starts and right after it ends.
    let ins = rtipc::inspect::Inspector::open(&c.name).unwrap();
    let published = |ch: usize| ins.channels().unwrap()[ch].published;
    let (a0, t0) = (published(0), Instant::now());
    let text = ok(&["hz", &c.name, "--window", "0.5", "--count", "4", "--json"]);
    let (a1, t1) = (published(0), Instant::now());
    let real = (a1 - a0) as f64 / (t1 - t0).as_secs_f64();
    let windows: Vec<_> = text.lines().map(json).collect();
    assert_eq!(windows.len(), 4);
    // Per channel, the mean of the windows' rates against the real rate over the same time
    // (a loaded machine may stall the creator in one window and let it catch up in the next).
    for k in 0..3 {
        let rates: Vec<f64> = windows
            .iter()
            .map(|w| w["channels"][k]["rate"].as_f64().unwrap())
            .collect();
        assert!(rates.iter().all(|&r| r > 0.0), "{text}");
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        assert!(
            (mean - real).abs() <= 0.2 * real,
            "channel {k} at {mean}/s, real {real}/s: {text}"
        );
    }
    let one = ok(&["hz", &c.name, "events", "--window", "0.2", "--count", "1"]);
    let row = one.lines().find(|l| l.starts_with("events")).unwrap();
    assert!(
        row.split_whitespace()
            .nth(2)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0,
        "{one}"
    );
}

mod pose_v1 {
    use rtipc::Object;
    /// Revision 1 of an appendable type.
    #[derive(Object)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Pose {
        pub x: u64,
        pub y: u64,
    }
}

mod pose_v2 {
    use rtipc::Object;
    /// Revision 2: `z` appended.
    #[derive(Object)]
    #[repr(C)]
    #[rtipc(appendable)]
    pub struct Pose {
        pub x: u64,
        pub y: u64,
        #[rtipc(since = 2)]
        pub z: u64,
    }
}

/// `rtipc check` applies the prefix rule of appendable types: an earlier revision than the
/// segment's attaches (and says how), a later one does not, with the reason.
#[test]
fn check_applies_the_prefix_rule() {
    let name = format!("rtipc-cli-evolve-{}", std::process::id());
    let seg = Segment::builder()
        .state::<pose_v2::Pose>("pose", Direction::CreatorToPeer)
        .create(&name)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rtipc-cli-evolve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(vec![dir.clone()]);
    let v1 = dir.join("v1.rtsc");
    std::fs::write(
        &v1,
        rtipc::schema::encode(<pose_v1::Pose as Object>::SCHEMA),
    )
    .unwrap();
    let out = ok(&["check", &name, "--schema", v1.to_str().unwrap()]);
    assert_eq!(
        out,
        "Pose in channel `pose`: attaches\n  attaches by the prefix rule of appendable types \
         (revision 1 here, 2 in the peer's schema; only the peer's has `z`): consumers read \
         their fields in place, producers zero the others\n"
    );
    drop(seg);
    let seg = Segment::builder()
        .state::<pose_v1::Pose>("pose", Direction::CreatorToPeer)
        .create(&name)
        .unwrap();
    let v2 = dir.join("v2.rtsc");
    std::fs::write(
        &v2,
        rtipc::schema::encode(<pose_v2::Pose as Object>::SCHEMA),
    )
    .unwrap();
    let o = rtipc(&["check", &name, "--schema", v2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.contains(
            "the prefix rule applies (revision 2 here, 1 in the peer's schema; only ours has \
             `z`), but the segment's slots lack this revision's fields: only a copying consumer \
             (`StateCopier`, `QueueCopier`) attaches"
        ),
        "{text}"
    );
    drop(seg);
}

#[test]
fn check_says_whether_a_build_attaches() {
    let c = Creator::start("check");
    let dir = std::env::temp_dir().join(format!("rtipc-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(vec![dir.clone()]);
    let same = dir.join("arm.json");
    std::fs::write(&same, ok(&["schema", &c.name, "arm", "--format", "json"])).unwrap();
    let out = ok(&["check", &c.name, "--schema", same.to_str().unwrap()]);
    assert_eq!(out, "Arm in channel `arm`: attaches\n");
    // The library's binary encoding works too.
    let bin = dir.join("event.rtsc");
    std::fs::write(&bin, rtipc::schema::encode(Event::SCHEMA)).unwrap();
    let out = ok(&["check", &c.name, "--schema", bin.to_str().unwrap()]);
    assert_eq!(
        out,
        "Event in channel `events`: attaches\nEvent in channel `status`: attaches\n\
         Event in channel `frames`: attaches\n"
    );
    // Another build's Arm.
    let other = dir.join("other.json");
    let doc = rtipc::schema::json(&[(other_build::Arm::SCHEMA, other_build::Arm::ID)]);
    std::fs::write(&other, doc).unwrap();
    let o = rtipc(&["check", &c.name, "--schema", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.starts_with("Arm in channel `arm`: does not attach\n"),
        "{text}"
    );
    assert!(
        text.contains("field `t`: f32 at offset 64 here, f64 at offset 64 in the peer's schema"),
        "{text}"
    );
    assert!(text.contains("field `extra`"), "{text}");
    let j = json(&stdout(&rtipc(&[
        "check",
        &c.name,
        "--schema",
        other.to_str().unwrap(),
        "--json",
    ])));
    assert_eq!(j["attaches"], false);
    // Not a schema file: an error, status 2.
    let junk = dir.join("junk");
    std::fs::write(&junk, b"hello").unwrap();
    let o = rtipc(&["check", &c.name, "--schema", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rm_removes_a_stale_segment_and_refuses_a_live_one() {
    let mut c = Creator::start("rm");
    let o = rtipc(&["rm", &c.name, "--stale-only"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("is live: its creator (pid {}) runs", c.pid())),
        "{}",
        stderr(&o)
    );
    assert!(Segment::open(&c.name).is_ok());
    c.kill();
    let all = json(&ok(&["ls", "--json"]));
    let ours = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == c.name.as_str())
        .unwrap()
        .clone();
    assert_eq!(ours["state"], "stale");
    // A stale segment's values are still readable.
    let v = json(&ok(&[
        "echo",
        &c.name,
        "arm",
        "--count",
        "1",
        "--json",
        "--timeout",
        "5",
    ]));
    assert_eq!(v["value"], json_of(&arm(v["seq"].as_u64().unwrap())));
    assert_eq!(
        ok(&["rm", &c.name, "--stale-only"]),
        format!("removed stale segment {}\n", c.name)
    );
    assert!(matches!(
        Segment::open(&c.name),
        Err(rtipc::Error::NotFound { .. })
    ));
    let o = rtipc(&["rm", &c.name]);
    assert_eq!(o.status.code(), Some(2));
    // A live one goes with --force.
    let c2 = Creator::start("rmf");
    let v = json(&ok(&["rm", &c2.name, "--force", "--json"]));
    assert_eq!(
        (v["removed"].as_bool(), v["was"].as_str()),
        (Some(true), Some("live"))
    );
    assert_eq!(v["creator_pid"], c2.pid());
    assert!(matches!(
        Segment::open(&c2.name),
        Err(rtipc::Error::NotFound { .. })
    ));
}

/// Removes files when dropped, whether the test passed or not.
struct Cleanup(Vec<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Runs of commands on corrupted segments, and how many ended in a clear error.
#[derive(Default)]
struct Tally {
    runs: usize,
    errors: usize,
}

impl Tally {
    /// Runs `rtipc ARGS` on a segment corrupted at byte `at`: a clear one-line error or a
    /// normal answer, never a panic, a signal or a hang.
    fn run(&mut self, args: &[&str], at: usize) -> String {
        let o = rtipc(args);
        let err = stderr(&o);
        assert!(
            !err.contains("panicked"),
            "rtipc {args:?} at byte {at}: {err}"
        );
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "rtipc {args:?} at byte {at}: {o:?}"
        );
        assert!(
            err.lines().count() <= 1,
            "rtipc {args:?} at byte {at}: {err}"
        );
        if !o.status.success() {
            assert!(
                err.starts_with("rtipc: "),
                "rtipc {args:?} at byte {at}: {err}"
            );
            self.errors += 1;
        }
        self.runs += 1;
        err
    }
}

/// A killed creator's segment, its bytes, and the offsets of its parts.
struct Image {
    good: Vec<u8>,
    table_end: usize,
    metadata: (usize, usize),
    /// Per channel: its name and its control block.
    ctrl: Vec<(String, usize, usize)>,
}

impl Image {
    fn of(path: &str) -> Image {
        let good = std::fs::read(path).unwrap();
        let word = |at: usize, n: usize| {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&good[at..at + n]);
            u64::from_le_bytes(b) as usize
        };
        let (table, count, entry) = (word(40, 8), word(32, 4), word(36, 4));
        let ctrl = ["arm", "events", "status"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let e = table + i * entry;
                ((*n).to_owned(), word(e + 48, 8), word(e + 56, 8))
            })
            .collect();
        Image {
            table_end: table + count * entry,
            metadata: (word(64, 8), word(72, 8)),
            ctrl,
            good,
        }
    }

    /// Writes the image with `v` in place of the `n` bytes at `at` to `path`.
    fn write_with(&self, path: &str, at: usize, v: &[u8]) {
        let mut bytes = self.good.clone();
        bytes[at..at + v.len()].copy_from_slice(v);
        std::fs::write(path, &bytes).unwrap();
    }

    fn flipped(&self, at: usize) -> [u8; 8] {
        let w = u64::from_le_bytes(self.good[at..at + 8].try_into().unwrap());
        (!w).to_le_bytes()
    }
}

/// Every command on a segment with one header or table field corrupted, then with one word of
/// its metadata (schemas, names) and one word of its control blocks corrupted: a clear
/// one-line error or a normal answer, never a panic, a signal or a hang.
#[test]
fn corrupt_segments_give_clear_errors() {
    let mut c = Creator::start("corrupt");
    c.kill();
    let img = Image::of(&format!("/dev/shm/{}", c.name));
    let name = format!("{}-bad", c.name);
    let bad_path = format!("/dev/shm/{name}");
    let schema_file = std::env::temp_dir().join(format!("{name}.rtsc"));
    let _cleanup = Cleanup(vec![bad_path.clone().into(), schema_file.clone()]);
    std::fs::write(&schema_file, rtipc::schema::encode(Arm::SCHEMA)).unwrap();
    let schema_arg = schema_file.to_str().unwrap();
    let mut header = Tally::default();
    for at in (0..img.table_end).step_by(4) {
        let w = u32::from_le_bytes(img.good[at..at + 4].try_into().unwrap());
        for v in [u32::MAX, w ^ 1] {
            img.write_with(&bad_path, at, &v.to_le_bytes());
            for args in [
                vec!["ls"],
                vec!["check", &name, "--schema", schema_arg],
                vec!["show", &name],
                vec!["schema", &name, "--format", "c"],
                vec!["echo", &name, "arm", "--count", "1", "--timeout", "0.05"],
                vec!["hz", &name, "--window", "0.01", "--count", "1"],
                vec!["rm", &name, "--stale-only"],
            ] {
                let err = header.run(&args, at);
                if at == 0 && args[0] == "show" {
                    assert!(err.contains("not an rtipc segment"), "{err}");
                }
            }
        }
    }
    assert_eq!(header.runs, img.table_end / 4 * 2 * 7);
    let mut meta = Tally::default();
    let (from, len) = img.metadata;
    for at in (from..from + len).step_by(8) {
        img.write_with(&bad_path, at, &img.flipped(at));
        for args in [
            vec!["show", &name],
            vec!["schema", &name],
            vec!["schema", &name, "--format", "rust"],
            vec![
                "echo",
                &name,
                "arm",
                "--count",
                "1",
                "--json",
                "--timeout",
                "0.02",
            ],
            vec!["check", &name, "--schema", schema_arg],
        ] {
            meta.run(&args, at);
        }
    }
    let mut ctrl = Tally::default();
    for (channel, from, len) in &img.ctrl {
        for at in (*from..from + len).step_by(8) {
            img.write_with(&bad_path, at, &img.flipped(at));
            for args in [
                vec!["show", &name, "--json"],
                vec!["echo", &name, channel, "--count", "1", "--timeout", "0.02"],
                vec!["hz", &name, channel, "--window", "0.01", "--count", "1"],
            ] {
                ctrl.run(&args, at);
            }
        }
    }
    // The arm channel's state word (line 2 of its control block) zeroed, which names slot 0 as
    // both the middle and the consumer's: `show` reports the fault of that channel alone, and
    // `echo` refuses with the word.
    let cache_line = u32::from_le_bytes(img.good[20..24].try_into().unwrap()) as usize;
    let at = img.ctrl[0].1 + 2 * cache_line;
    img.write_with(&bad_path, at, &0u64.to_le_bytes());
    let v = json(&ok(&["show", &name, "--json"]));
    let faults: Vec<bool> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| !c["fault"].is_null())
        .collect();
    assert_eq!(faults, [true, false, false, false, false], "{v}");
    let o = rtipc(&["echo", &name, "arm", "--count", "1", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    println!(
        "header and table: {} commands, {} clear errors; metadata: {} commands, {} clear errors; control blocks: {} commands, {} clear errors",
        header.runs, header.errors, meta.runs, meta.errors, ctrl.runs, ctrl.errors
    );
    // Most header and table words are checked at attach; every schema word is covered by the
    // schemas' own checks or changes a name (then `check` or `echo` still answer).
    assert!(
        header.errors > header.runs / 4,
        "{} of {}",
        header.errors,
        header.runs
    );
    assert!(meta.errors > 0 && ctrl.runs > 0);
}

#[test]
fn files_that_are_not_segments_are_named_and_left_alone() {
    let name = format!("rtipc-cli-foreign-{}", std::process::id());
    let path = format!("/dev/shm/{name}");
    let _cleanup = Cleanup(vec![path.clone().into()]);
    std::fs::write(&path, b"not a segment at all").unwrap();
    let hidden = json(&ok(&["ls", "--json"]));
    assert!(!hidden
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == name.as_str()));
    let all = json(&ok(&["ls", "--json", "--all"]));
    let ours = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap()
        .clone();
    assert_eq!(ours["state"], "not-rtipc");
    for args in [
        vec!["rm", &name, "--force"],
        vec!["show", &name],
        vec!["echo", &name, "x"],
    ] {
        let o = rtipc(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("not an rtipc segment"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1);
    }
    assert!(std::path::Path::new(&path).exists());
    std::fs::remove_file(&path).unwrap();
    let o = rtipc(&["show", &name]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&name), "{}", stderr(&o));
}

/// A FIFO under a segment's name (anyone may make one in /dev/shm) neither blocks nor
/// confuses the commands.
#[test]
fn a_fifo_in_dev_shm_is_not_a_segment() {
    let name = format!("rtipc-cli-fifo-{}", std::process::id());
    let path = format!("/dev/shm/{name}");
    let _cleanup = Cleanup(vec![path.clone().into()]);
    let c = std::ffi::CString::new(path.clone()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let all = json(&ok(&["ls", "--json", "--all"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != name.as_str()),
        "{all}"
    );
    for args in [
        vec!["show", &name],
        vec!["echo", &name, "x"],
        vec!["rm", &name],
    ] {
        let o = rtipc(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(
            stderr(&o).contains("not a regular file")
                || stderr(&o).contains("not an rtipc segment"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let seg = Segment::open(&name);
    assert!(seg.is_err());
}

/// Channel `name` of `show --json`'s output.
fn channel_of(show: &serde_json::Value, name: &str) -> serde_json::Value {
    show["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["name"] == name)
        .unwrap()
        .clone()
}

/// A shared region: `show` lists it with no ends, `echo` prints snapshots of its fields.
#[test]
fn a_region_is_shown_and_echoed() {
    let c = Creator::start("region");
    let v = json(&ok(&["show", &c.name, "--json"]));
    let region = channel_of(&v, "control");
    assert_eq!(region["kind"], "region");
    assert_eq!(region["ends"].as_array().unwrap().len(), 0);
    assert_eq!(region["objects"][0]["name"], "Control");
    assert_eq!(v["segment"]["version"], 5);
    let text = ok(&["echo", &c.name, "control", "--count", "2", "--json"]);
    let lines: Vec<_> = text.lines().map(json).collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["value"]["limit"], 7);
        assert_eq!(l["value"]["mode"], 2);
        assert!(l["value"]["ticks"]["value"].as_u64().unwrap() > 0, "{text}");
    }
    let schema = ok(&["schema", &c.name, "control"]);
    assert!(schema.contains("ticks  AtomicU64"), "{schema}");
}

#[test]
fn a_record_channel_is_shown_and_echo_says_why_it_cannot_follow_it() {
    // The creator is ready once it has sent its first record.
    let c = Creator::start("records");
    let frames = channel_of(&json(&ok(&["show", &c.name, "--json"])), "frames");
    assert_eq!(frames["kind"], "record");
    assert_eq!(frames["ring_bytes"], 8192);
    assert_eq!(frames["objects"][0]["name"], "Event");
    assert!(frames["published"].as_u64().unwrap() > 0, "{frames}");
    let ends = frames["ends"].as_array().unwrap();
    assert_eq!(
        (ends[0]["held"].as_bool(), ends[0]["pid"].as_u64()),
        (Some(true), Some(u64::from(c.pid())))
    );
    assert_eq!(ends[1]["held"], false);
    let text = ok(&["show", &c.name]);
    let row = text.lines().find(|l| l.starts_with("frames")).unwrap();
    assert!(row.contains("record") && row.contains("8192 B"), "{row}");
    let o = rtipc(&["echo", &c.name, "frames", "--count", "1", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("record channel"), "{}", stderr(&o));
}

//! Every pairing of revision 1 and revision 2 of an appendable type, as two separately
//! compiled programs (the packages `rtipc-evolution-rev1` and `rtipc-evolution-rev2`) sharing
//! a named segment: the documented outcome of each, every word of every value checked.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn rev2() -> PathBuf {
    env!("CARGO_BIN_EXE_evolution-rev2").into()
}

/// The revision-1 program, built beside this package's by `cargo test --workspace` (its own
/// package has a test that runs it).
fn rev1() -> PathBuf {
    let p = rev2().with_file_name("evolution-rev1");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p rtipc-evolution-rev1` (with this test's \
         profile)",
        p.display()
    );
    p
}

fn seg(tag: &str) -> String {
    format!("rtipc-evo-{}-{tag}", std::process::id())
}

struct Proc {
    child: Child,
    out: BufReader<ChildStdout>,
    text: String,
}

impl Proc {
    fn spawn(bin: PathBuf, args: &[&str]) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Proc {
            child,
            out,
            text: String::new(),
        }
    }

    /// Reads lines until `ready`.
    fn ready(&mut self) {
        loop {
            let mut line = String::new();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "ended before it was ready: {}",
                self.text
            );
            self.text.push_str(&line);
            if line.trim() == "ready" {
                return;
            }
        }
    }

    /// Waits for the process to exit (killing it after `limit`) and returns all it printed.
    fn finish(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child.wait().unwrap();
        self.out.read_to_string(&mut self.text).unwrap();
        std::mem::take(&mut self.text)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key` on the line that starts with `what`.
fn get(text: &str, what: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{what} ")))
        .unwrap_or_else(|| panic!("no line `{what}` in:\n{text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}` in `{line}`"))
        .parse()
        .unwrap()
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting `{start}` in:\n{text}"))
}

const N: u64 = 20_000;

/// A revision-1 consumer of a revision-2 segment reads its prefix in place, state and queue.
#[test]
fn an_older_consumer_reads_a_newer_segment_in_place() {
    let name = seg("old-consumer");
    let mut producer = Proc::spawn(rev2(), &["create-produce", &name, &N.to_string()]);
    producer.ready();
    let consumer = Proc::spawn(rev1(), &["open-consume", &name, &N.to_string()]);
    let out = consumer.finish(Duration::from_secs(60));
    let produced = producer.finish(Duration::from_secs(10));
    println!("{out}{produced}");
    assert!(!out.contains("refused state"), "{out}");
    assert!(!out.contains("refused queue"), "{out}");
    // A record is an array of the element type: the in-place consumer is refused, and the
    // copier reads the prefix of every element.
    assert!(
        line(&out, "refused record consumer:").contains("use `RecordCopier` to read"),
        "{out}"
    );
    assert_eq!(
        line(&out, "evolution record copier:"),
        "evolution record copier: revision 1 here, 2 in the peer's schema; only the peer's has \
         `z`, `w`"
    );
    assert_eq!(
        get(&out, "records", "seen"),
        N,
        "records are lossless: {out}"
    );
    assert_eq!(
        line(&out, "evolution state consumer:"),
        "evolution state consumer: revision 1 here, 2 in the peer's schema; only the peer's \
         has `z`, `w`"
    );
    assert!(
        out.contains("evolution queue consumer: revision 1 here, 2"),
        "{out}"
    );
    for what in ["state", "queue", "records"] {
        assert_eq!(get(&out, what, "bad"), 0, "{out}");
        assert_eq!(get(&out, what, "backwards"), 0, "{out}");
        assert_eq!(get(&out, what, "last"), N, "{out}");
        assert_eq!(get(&out, what, "full"), get(&out, what, "seen"), "{out}");
    }
    assert_eq!(
        get(&out, "queue", "seen"),
        N,
        "the queue is lossless: {out}"
    );
}

/// A revision-2 consumer of a revision-1 segment is refused by the typed handles, with the
/// field-level diff and why the prefix rule does not let it read in place; the copying forms
/// read revision 1 with zeros in `z` and `w`, state and queue.
#[test]
fn a_newer_consumer_of_an_older_segment_is_refused_and_copies() {
    let name = seg("new-consumer");
    let mut producer = Proc::spawn(rev1(), &["create-produce", &name, &N.to_string()]);
    producer.ready();
    let consumer = Proc::spawn(rev2(), &["open-consume", &name, &N.to_string()]);
    let out = consumer.finish(Duration::from_secs(60));
    let produced = producer.finish(Duration::from_secs(10));
    println!("{out}{produced}");
    assert_eq!(
        line(&out, "refused state consumer:"),
        "refused state consumer: schema mismatch for `Pose` in channel `down`: size is 32 bytes \
         here, 16 bytes in the peer's schema; field `z` (u64 at offset 16) is missing from the \
         peer's schema; field `w` (u64 at offset 24) is missing from the peer's schema; the \
         prefix rule applies, but this consumer's type (revision 2 here, 1 in the peer's \
         schema; only ours has `z`, `w`) has fields the segment's slots do not: it cannot read \
         them in place; read the segment's revision with a build of that revision, or copy it \
         out with `StateCopier` or `QueueCopier`, which fill the missing fields with zeros"
    );
    assert!(
        line(&out, "refused queue consumer:").contains("the prefix rule applies"),
        "{out}"
    );
    assert_eq!(
        line(&out, "evolution state copier:"),
        "evolution state copier: revision 2 here, 1 in the peer's schema; only ours has `z`, `w`"
    );
    assert!(
        out.contains("evolution queue copier: revision 2 here, 1"),
        "{out}"
    );
    assert_eq!(get(&out, "copied", "revision"), 1);
    for what in ["state", "queue", "records"] {
        assert_eq!(get(&out, what, "bad"), 0, "{out}");
        assert_eq!(get(&out, what, "backwards"), 0, "{out}");
        assert_eq!(get(&out, what, "last"), N, "{out}");
        assert_eq!(
            get(&out, what, "zero_tail"),
            get(&out, what, "seen"),
            "{out}"
        );
    }
    assert_eq!(
        get(&out, "queue", "seen"),
        N,
        "the queue is lossless: {out}"
    );
}

/// A revision-1 producer replaces a revision-2 producer of a revision-2 segment: it zeroes the
/// fields it does not have on every publish and push, so the revision-2 consumer sees zeros
/// in `z` and `w` from its first update on, never the values its predecessor left in the
/// slots.
#[test]
fn an_older_producer_zeroes_the_fields_it_does_not_have() {
    let name = seg("old-producer");
    let n = 4_000u64;
    let mut consumer = Proc::spawn(rev2(), &["create-consume", &name, &n.to_string()]);
    consumer.ready();
    let newer = Proc::spawn(rev2(), &["open-produce", &name, &(n / 2).to_string(), "1"]);
    let newer = newer.finish(Duration::from_secs(30));
    assert!(newer.contains(&format!("produced={}", n / 2)), "{newer}");
    let older = Proc::spawn(
        rev1(),
        &[
            "open-produce",
            &name,
            &n.to_string(),
            &(n / 2 + 1).to_string(),
        ],
    );
    let older = older.finish(Duration::from_secs(30));
    let out = consumer.finish(Duration::from_secs(30));
    println!("{newer}{older}{out}");
    assert_eq!(
        line(&older, "evolution state producer:"),
        "evolution state producer: revision 1 here, 2 in the peer's schema; only the peer's \
         has `z`, `w`"
    );
    for what in ["state", "queue", "records"] {
        assert_eq!(get(&out, what, "bad"), 0, "a stale or torn value: {out}");
        assert_eq!(get(&out, what, "backwards"), 0, "{out}");
        assert_eq!(get(&out, what, "last"), n, "{out}");
        assert!(get(&out, what, "last_full") <= n / 2, "{out}");
        assert!(get(&out, what, "first_zero") > n / 2, "{out}");
    }
    assert_eq!(get(&out, "queue", "full"), n / 2, "{out}");
    assert_eq!(get(&out, "queue", "zero_tail"), n / 2, "{out}");
}

/// A revision-2 producer is refused by a revision-1 segment: its slots have no room for the
/// fields it would write.
#[test]
fn a_newer_producer_is_refused_by_an_older_segment() {
    let name = seg("new-producer");
    let mut consumer = Proc::spawn(rev1(), &["create-consume", &name, "10"]);
    consumer.ready();
    let producer = Proc::spawn(rev2(), &["open-produce", &name, "10", "1"]);
    let out = producer.finish(Duration::from_secs(30));
    drop(consumer);
    println!("{out}");
    assert_eq!(
        line(&out, "refused state producer:"),
        "refused state producer: schema mismatch for `Pose` in channel `up`: size is 32 bytes \
         here, 16 bytes in the peer's schema; field `z` (u64 at offset 16) is missing from the \
         peer's schema; field `w` (u64 at offset 24) is missing from the peer's schema; the \
         prefix rule applies, but this producer's type (revision 2 here, 1 in the peer's \
         schema; only ours has `z`, `w`) is longer than the segment's slots: a producer may \
         only be of the segment's revision or an earlier one"
    );
    assert!(
        line(&out, "refused queue producer:").contains("is longer than"),
        "{out}"
    );
    assert!(
        line(&out, "refused record producer:").contains("use `RecordCopier`"),
        "{out}"
    );
    assert!(
        line(&out, "refused record sender:").contains("is longer than"),
        "{out}"
    );
    assert!(!out.contains("produced="), "{out}");
}

/// A revision-2 producer killed with SIGKILL in the middle of its stream is replaced by a
/// revision-1 producer: the revision-2 consumer sees every update whole, in order, with `z`
/// and `w` zero from the first update of the replacement on, never a value the killed
/// producer left in a slot.
#[test]
fn an_older_producer_replaces_a_killed_newer_one() {
    let name = seg("killed");
    let (from, end) = (10_000_001u64, 10_002_000u64);
    let mut consumer = Proc::spawn(rev2(), &["create-consume", &name, &end.to_string()]);
    consumer.ready();
    let mut newer = Proc::spawn(rev2(), &["open-produce", &name, "1000000000", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    newer.child.kill().unwrap();
    newer.child.wait().unwrap();
    let older = Proc::spawn(
        rev1(),
        &["open-produce", &name, &end.to_string(), &from.to_string()],
    );
    let older = older.finish(Duration::from_secs(30));
    let out = consumer.finish(Duration::from_secs(30));
    println!("{older}{out}");
    assert!(older.contains("produced=2000"), "{older}");
    for what in ["state", "queue", "records"] {
        assert_eq!(get(&out, what, "bad"), 0, "a stale or torn value: {out}");
        assert_eq!(get(&out, what, "backwards"), 0, "{out}");
        assert_eq!(get(&out, what, "last"), end, "{out}");
        assert!(
            get(&out, what, "full") > 0,
            "the killed producer was seen: {out}"
        );
        assert!(get(&out, what, "last_full") < from, "{out}");
        assert!(get(&out, what, "first_zero") >= from, "{out}");
    }
    assert_eq!(get(&out, "queue", "zero_tail"), end - from + 1, "{out}");
}

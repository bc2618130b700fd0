//! Lifecycles across real processes: holders in another pid namespace, zombie holders, forked
//! children, a full `/dev/shm`, a 64 GiB sparse memfd, hostile control words, and creators and
//! producers that are killed and restarted.
//!
//! Every other process is the peer binary (`tests/support/peer.rs`, roles `life-*` in
//! `tests/support/life.rs`), started in a process group of its own so that a test can kill it
//! with everything it started. The namespace tests need root and `unshare` (util-linux); without
//! them they fail, unless `RTIPC_NO_NAMESPACES=1` is set, in which case they say that they did
//! not run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;
use rtipc::{
    ChannelSpec, DataError, Direction, End, Error, MessageRef, Observed, QueueConsumer,
    QueueObserver, QueueProducer, Segment, StateConsumer, StateObserver, StateProducer, StateRef,
};

/// The "did not hang" bound of every step that waits for another process.
const LIMIT: Duration = Duration::from_secs(20);

const PEER: &str = env!("CARGO_BIN_EXE_rtipc-test-peer");

// --- Processes. -------------------------------------------------------------------------------

/// A peer process (possibly under `unshare`) in a process group of its own, with its stdout
/// read line by line. Dropping it kills the group and reaps the process.
struct Peer {
    child: Child,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
    reaped: bool,
}

impl Peer {
    /// Runs `wrapper...` followed by the peer binary as `role` on `target` with `count`.
    fn spawn(wrapper: &[&str], role: Role, target: &str, count: u64) -> Peer {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest)
                    .arg(PEER)
                    .args([role.as_str(), target, &count.to_string()]);
                cmd
            }
            None => peer_command(role, target, count),
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {wrapper:?} {role}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            lines,
            reaped: false,
        }
    }

    /// The pid of the process started (`unshare` when wrapped), also its process group.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line, which must start with `prefix`; returns the rest of it.
    fn expect(&mut self, prefix: &str) -> String {
        match self.lines.recv_timeout(LIMIT) {
            Ok(line) => {
                assert!(
                    line.starts_with(prefix),
                    "the peer said `{line}`, expected `{prefix}...`"
                );
                line[prefix.len()..].trim().to_owned()
            }
            Err(e) => panic!(
                "the peer said nothing starting with `{prefix}` within {LIMIT:?} ({e}); its \
                 status: {:?}",
                self.child.try_wait()
            ),
        }
    }

    /// Kills the whole process group with SIGKILL and reaps the process started.
    fn kill_group(&mut self) {
        signal(-(self.pid() as i32), libc::SIGKILL);
        self.child.wait().expect("wait");
        self.reaped = true;
    }

    /// Waits (up to `LIMIT`) for the process to exit by itself, and reaps it.
    fn finish(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.reaped = true;
                return status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "the peer did not exit within {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every remaining line of its output, once it has exited.
    fn rest(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.reaped {
            signal(-(self.pid() as i32), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// `kill(pid, sig)`; a process that is already gone is not an error.
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill takes two integers and touches no memory of ours.
    let r = unsafe { libc::kill(pid, sig) };
    let e = std::io::Error::last_os_error();
    assert!(
        r == 0 || e.raw_os_error() == Some(libc::ESRCH),
        "kill({pid}, {sig}): {e}"
    );
}

/// The state letter of process `pid` in `/proc/PID/stat` (`R`, `S`, `Z`, ...): `None` once it is
/// gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: the state follows the last.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits until process `pid` has exited (gone, or a zombie: its descriptors are closed).
fn wait_gone(pid: u32) {
    let start = Instant::now();
    while !matches!(proc_state(pid), None | Some('Z') | Some('X')) {
        assert!(start.elapsed() < LIMIT, "process {pid} did not die");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The pid (in this namespace) of the only child of process `pid`.
fn only_child(pid: u32) -> u32 {
    let start = Instant::now();
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().expect("a pid");
        }
        assert!(start.elapsed() < LIMIT, "process {pid} has no child");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The device and inode of the named segment's file, if it exists.
fn identity(name: &str) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/dev/shm/{name}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Removes a segment left behind by killed creators, when the test ends however it ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Segment::remove_stale(&self.0);
    }
}

/// Whether the namespace tests can run: root and a working `unshare`. Fails with a clear
/// message if not, unless `RTIPC_NO_NAMESPACES=1`, which makes them say that they did not run.
fn namespaces(test: &str) -> bool {
    if std::env::var("RTIPC_NO_NAMESPACES").as_deref() == Ok("1") {
        eprintln!("{test}: NOT RUN: RTIPC_NO_NAMESPACES=1 skips the namespace tests");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root to create pid and mount namespaces; run the tests as root, or set \
         RTIPC_NO_NAMESPACES=1 to skip the namespace tests"
    );
    let status = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "true"])
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{test} needs `unshare` (util-linux): {e}; install it, or set \
                 RTIPC_NO_NAMESPACES=1 to skip the namespace tests"
            )
        });
    assert!(
        status.success(),
        "{test}: `unshare --pid --fork --mount-proc true` failed ({status}): namespaces are not \
         available here; set RTIPC_NO_NAMESPACES=1 to skip the namespace tests"
    );
    true
}

/// Fetches from `rx` until it has seen `count` new updates after `after`, checking that each is
/// intact, numbered by its sequence number, and newer than the one before. Returns the last
/// sequence number.
fn receive(rx: &mut StateConsumer<Numbered>, after: u64, count: u64) -> u64 {
    let mut last = after;
    let mut seen = 0;
    let start = Instant::now();
    while seen < count {
        assert!(
            start.elapsed() < LIMIT,
            "only {seen} of {count} updates arrived"
        );
        if let Some(s) = rx.fetch().expect("fetch") {
            if StateRef::is_new(&s) {
                let seq = StateRef::seq(&s);
                assert!(numbered_ok(&s), "update {seq} is intact");
                assert_eq!(s.n, seq, "update numbered by its sequence number");
                assert!(seq > last, "update {seq} after {last}");
                last = seq;
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    last
}

fn expect_already_claimed<T>(r: rtipc::Result<T>, holder: u32) {
    match r {
        Err(Error::AlreadyClaimed {
            end: End::Producer,
            holder: h,
            ..
        }) => assert_eq!(h, Some(holder), "the holder's pid as the holder wrote it"),
        Err(e) => panic!("expected AlreadyClaimed, got {e:?}"),
        Ok(_) => panic!("a live holder's end was claimed a second time"),
    }
}

// --- 1. Pid namespaces. -----------------------------------------------------------------------

/// A creator in another pid namespace: its pid means nothing here (it is 1 there, and process 1
/// here is someone else), yet it is seen as alive while it runs and as gone once it is killed,
/// because liveness is the kernel's locks, not pids.
///
/// A side claims only its own ends (the creator produces `life/state`, a peer `life/up`), so
/// the namespaced process holds two producer ends: `life/state` as the creator, whose consumer
/// end this process claims, and `life/up` through a peer handle of its own, which this process,
/// a peer too, tries to take.
#[test]
fn a_holder_in_another_pid_namespace_is_alive_until_killed() {
    if !namespaces("a_holder_in_another_pid_namespace_is_alive_until_killed") {
        return;
    }
    let name = seg_name("life-pidns");
    let _cleanup = Cleanup(name.clone());
    let mut ns = Peer::spawn(
        &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
        Role::LifeCreator,
        &name,
        0,
    );
    let ns_pid: u32 = ns.expect("ready ").parse().unwrap();
    let host_pid = only_child(ns.pid());
    eprintln!("pid namespace: the creator is pid {ns_pid} there, {host_pid} here");
    assert_ne!(
        ns_pid, host_pid,
        "the creator runs in another pid namespace"
    );

    // Alive: the segment is not stale, its creator is there, and the end it holds as a peer
    // cannot be taken (the error names its pid as it wrote it: its pid over there).
    let seg = Segment::open(&name).expect("a live creator in another namespace is not stale");
    assert!(seg.creator_alive());
    seg.check().expect("check");
    assert_eq!(
        seg.creator_pid(),
        ns_pid,
        "the header has the creator's own pid"
    );
    expect_already_claimed(StateProducer::<Numbered>::new(&seg, "life/up"), ns_pid);
    // The consumer end of its channel is free, and its updates arrive.
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").expect("consumer");
    assert!(rx.producer_alive().unwrap());
    let last = receive(&mut rx, 0, 20);

    // Killed (the whole group; `--kill-child` takes the inner process along if `unshare` dies
    // first): once it has exited, everything it held is free at once, and the segment is stale.
    ns.kill_group();
    wait_gone(host_pid);
    let up = StateProducer::<Numbered>::new(&seg, "life/up");
    assert!(up.is_ok(), "claimable at once: {:?}", up.err());
    assert!(!rx.producer_alive().unwrap());
    assert!(!seg.creator_alive());
    assert!(matches!(seg.check(), Err(Error::CreatorGone { .. })));
    match Segment::open(&name) {
        Err(Error::Stale { pid, .. }) => assert_eq!(pid, ns_pid),
        other => panic!("expected Stale, got {other:?}"),
    }
    // The pid it recorded names a live process here: liveness does not come from pids.
    assert!(proc_state(ns_pid).is_some(), "pid {ns_pid} exists here");
    eprintln!("pid namespace: {last} updates received; after the kill: claimable, Stale");
}

// --- 2. Zombies. ------------------------------------------------------------------------------

/// A holder that has exited but was not reaped is a zombie: its descriptors are closed, so its
/// end is free although its pid still exists.
#[test]
fn a_zombie_holder_does_not_hold_its_end() {
    let name = seg_name("life-zombie");
    let seg = life_channels(Segment::builder()).create(&name).unwrap();
    let peer = Segment::open(&name).unwrap();
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/up").unwrap();
    let mut holder = Peer::spawn(&[], Role::LifeZombie, &name, 5);
    let pid: u32 = holder.expect("claimed ").parse().unwrap();
    assert_eq!(pid, holder.pid());
    // While it runs, its end is taken.
    expect_already_claimed(StateProducer::<Numbered>::new(&peer, "life/up"), pid);
    assert_eq!(receive(&mut rx, 0, 1), 5);

    // It exits (its stdin closes) and is not reaped: a zombie.
    drop(holder.stdin.take());
    let start = Instant::now();
    while proc_state(pid) != Some('Z') {
        assert!(start.elapsed() < LIMIT, "no zombie: {:?}", proc_state(pid));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!rx.producer_alive().unwrap(), "a zombie holds nothing");
    let mut tx = StateProducer::<Numbered>::new(&peer, "life/up")
        .expect("a successor claims a zombie's end at once");
    assert_eq!(
        proc_state(pid),
        Some('Z'),
        "still a zombie when the end was claimed"
    );
    assert!(rx.producer_alive().unwrap());
    assert_eq!(tx.publish_copy(&numbered(6)).unwrap(), 6, "carries on");
    let s = rx.fetch().unwrap().expect("published");
    assert_eq!((s.n, StateRef::seq(&s), StateRef::missed(&s)), (6, 6, 0));

    let status = holder.finish();
    assert!(status.success(), "the zombie had exited with {status}");
    eprintln!("zombie: pid {pid} was 'Z' while its end was claimed");
}

// --- 3. Fork. ---------------------------------------------------------------------------------

/// Whether process `pid` has a descriptor open on the file with identity `id`.
fn holds_file(pid: u32, id: (u64, u64)) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == id))
}

/// A process that holds claims forks twice. A child that drops its copies of the handles and
/// the segment takes nothing with it; a child that outlives its killed parent keeps nothing of
/// the parent's alive.
#[test]
fn forked_children_neither_release_nor_keep_their_parents_claims() {
    let name = seg_name("life-fork");
    let _cleanup = Cleanup(name.clone());
    let mut parent = Peer::spawn(&[], Role::LifeFork, &name, 0);
    // Step 1: the first child dropped its copies of both handles and of both segment handles
    // (the creator's and its own peer's) and exited with status 0.
    assert_eq!(
        parent.expect("dropped "),
        "0",
        "the first child's wait status"
    );

    // Its drops released nothing of the parent's: the name is still linked (the creator's
    // mapping did not unlink it), the creator lock is held, the claim is held (a third process
    // cannot take the end) and its claim word still names the parent (not cleared)...
    let seg = Segment::open(&name).expect("the segment was not unlinked by the child");
    seg.check().expect("the creator lock is still the parent's");
    expect_already_claimed(
        StateProducer::<Numbered>::new(&seg, "life/up"),
        parent.pid(),
    );
    // ...and the creator-side end too (asked through the consumer of its channel).
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").unwrap();
    assert!(
        rx.producer_alive().unwrap(),
        "the parent's producer claim is held"
    );
    assert_eq!(receive(&mut rx, 0, 1), 1);

    // Step 2: a child that sleeps (it has printed, so its fork handlers have run), holding the
    // descriptors it inherited: among them one of the segment file itself.
    writeln!(parent.stdin.as_mut().unwrap(), "go").unwrap();
    let sleeper: u32 = parent.expect("sleeping ").parse().unwrap();
    let id = identity(&name).expect("the segment exists");
    assert!(
        holds_file(sleeper, id),
        "the sleeping child holds a descriptor of the segment file"
    );
    expect_already_claimed(
        StateProducer::<Numbered>::new(&seg, "life/up"),
        parent.pid(),
    );

    // The parent is killed; the child lives on with the segment file open, yet the parent's
    // claims and its creator lock are free at once: the descriptors that carried them were not
    // among those the child kept.
    signal(parent.pid() as i32, libc::SIGKILL);
    let status = parent.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(
        matches!(proc_state(sleeper), Some('S' | 'R')),
        "the child still runs: {:?}",
        proc_state(sleeper)
    );
    assert!(holds_file(sleeper, id), "and still holds the segment file");
    let up = StateProducer::<Numbered>::new(&seg, "life/up");
    assert!(up.is_ok(), "claimable at once: {:?}", up.err());
    assert!(
        !rx.producer_alive().unwrap(),
        "no producer: the child holds no claim"
    );
    assert!(matches!(seg.check(), Err(Error::CreatorGone { .. })));
    assert!(matches!(Segment::open(&name), Err(Error::Stale { .. })));

    // The sleeper goes now (dropping `parent` would kill it too: it is in its process group).
    signal(sleeper as i32, libc::SIGKILL);
    eprintln!("fork: the parent's claims survived a child's drops and died with the parent");
}

/// A parent killed the moment `fork` returns leaves nothing held: while rtipc holds locks,
/// `fork` returns in the parent only once the child has closed its copies of the lock
/// descriptors, so the child, alive and holding every other descriptor it inherited, keeps none
/// of the parent's claims. Repeated, to give the scheduler every chance to run the parent first.
#[test]
fn a_parent_killed_right_after_fork_leaves_its_claims_free() {
    for round in 0..40 {
        let name = seg_name(&format!("life-fork-die-{round}"));
        let _cleanup = Cleanup(name.clone());
        let mut parent = Peer::spawn(&[], Role::LifeForkThenDie, &name, 0);
        let status = parent.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "round {round}: the parent killed itself"
        );
        let seg = Segment::open(&name).map(Some).or_else(|e| match e {
            Error::Stale { .. } => Ok(None),
            e => Err(e),
        });
        assert!(
            matches!(seg, Ok(None)),
            "round {round}: the dead parent's segment is stale at once: {seg:?}"
        );
        // The claim the parent held is free at once, though its child lives on: a new creator
        // resumes the segment and claims it.
        let resumed = life_channels(Segment::builder()).create(&name).unwrap();
        let own_peer = Segment::open(&name).unwrap();
        StateProducer::<Numbered>::new(&own_peer, "life/up")
            .unwrap_or_else(|e| panic!("round {round}: the parent's claim is held: {e}"));
        drop((own_peer, resumed));
    }
}

/// The one window left: a child stopped before it runs rtipc's fork handler (by a debugger,
/// or, as here, by a fork handler of the program's that runs before rtipc's). Its parent stays
/// inside `fork` meanwhile; if the parent is killed there, the stopped child keeps the lock
/// descriptors it inherited, and with them the parent's claims, until it runs on: then they are
/// free at once. Documented in `sys/lock.rs` and the README.
#[test]
fn a_child_stopped_before_its_fork_handler_keeps_the_claims_until_it_runs() {
    let name = seg_name("life-fork-stall");
    let _cleanup = Cleanup(name.clone());
    let mut parent = Peer::spawn(&[], Role::LifeForkStall, &name, 0);
    assert_eq!(parent.expect(""), "forking");
    assert_eq!(
        parent.expect(""),
        "stalled",
        "the child waits before rtipc's handler"
    );
    let seg = Segment::open(&name).unwrap();
    signal(parent.pid() as i32, libc::SIGKILL);
    parent.child.wait().unwrap();
    let while_stalled = StateProducer::<Numbered>::new(&seg, "life/up").map(drop);
    assert!(
        matches!(while_stalled, Err(Error::AlreadyClaimed { .. })),
        "held by the stopped child: {while_stalled:?}"
    );
    writeln!(parent.stdin.as_mut().unwrap(), "go").unwrap();
    let continued = parent.expect("continued ");
    assert!(continued.parse::<u32>().is_ok(), "{continued}");
    let after = StateProducer::<Numbered>::new(&seg, "life/up").map(drop);
    assert!(
        after.is_ok(),
        "free once the child ran its handler: {after:?}"
    );
    assert!(!seg.creator_alive(), "and the creator lock too");
}

// --- 4. A full tmpfs. -------------------------------------------------------------------------

/// In a mount namespace of its own with an 8 MiB tmpfs on `/dev/shm`, a 16 MiB segment is a
/// clear error from `create` (the memory is reserved up front), nothing is left behind, and a
/// small segment still works.
#[test]
fn a_full_dev_shm_is_an_error_from_create() {
    if !namespaces("a_full_dev_shm_is_an_error_from_create") {
        return;
    }
    let name = seg_name("life-full");
    let mut p = Peer::spawn(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o size=8m tmpfs /dev/shm && exec \"$0\" \"$@\"",
        ],
        Role::LifeFullShm,
        &name,
        0,
    );
    let free: u64 = p.expect("free ").parse().unwrap();
    let error = p.expect("error ");
    let free_after: u64 = p.expect("free-after ").parse().unwrap();
    let small = p.expect("small ");
    let status = p.finish();
    assert!(status.success(), "{status}; more output: {:?}", p.rest());
    eprintln!("full tmpfs ({free} bytes free): create said: {error}");
    assert_eq!(free, 8 << 20, "the private tmpfs");
    assert!(
        error.starts_with("Io: reserving the segment's memory in /dev/shm"),
        "{error}"
    );
    assert!(error.contains("os error 28"), "ENOSPC: {error}");
    assert_eq!(free_after, free, "the failed create left nothing behind");
    assert_eq!(small, "42", "a small segment works");
    assert!(
        identity(&name).is_none(),
        "nothing appeared in this /dev/shm"
    );
}

// --- 5. A 64 GiB sparse memfd. ----------------------------------------------------------------

/// Runs the `life-sparse` role in `mode`: its result line and peak RSS in KiB.
fn sparse(mode: &str) -> (String, u64) {
    let mut p = Peer::spawn(&[], Role::LifeSparse, mode, 0);
    let before: u64 = p.expect("vmhwm-before ").parse().unwrap();
    let result = p.expect("result ");
    let peak: u64 = p.expect("vmhwm ").parse().unwrap();
    let status = p.finish();
    assert!(status.success(), "{mode}: {status}");
    eprintln!(
        "64 GiB memfd, {mode}: {result}; peak RSS {before} KiB before attaching, {peak} KiB after"
    );
    assert!(peak < 64 << 10, "{mode}: peak RSS {peak} KiB");
    (result, peak)
}

/// Attaching a sealed 64 GiB memfd copies only the header, the table and the metadata and maps
/// only the declared size: the peak RSS stays far below the file's size.
#[test]
fn a_64_gib_sparse_memfd_attaches_without_allocating() {
    let (zero, _) = sparse("zero");
    assert!(
        zero.starts_with("error Corrupt: corrupt segment: `header.magic` is 0: not an rtipc"),
        "{zero}"
    );
    let (header, _) = sparse("header");
    assert_eq!(
        header, "ok n=7 seq=7",
        "a valid segment at the start attaches"
    );
    let (huge, _) = sparse("huge-size");
    assert_eq!(
        huge, "ok n=7 seq=7",
        "a header declaring 64 GiB maps it, sparse"
    );
}

// --- 6. Hostile control words. ----------------------------------------------------------------

/// The values every control word is set to: edges, the queue's 39-bit position boundary, and a
/// few fixed pseudo-random values.
fn probe_values() -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        2,
        u64::MAX,
        u64::MAX - 1,
        (1 << 38) - 1,
        1 << 38,
        (1 << 38) + 1,
        1 << 39,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x);
    }
    v
}

/// An error's text without the word it quotes: one line per kind of error.
fn reason(text: &str) -> String {
    match text.strip_prefix("corrupt control word ") {
        Some(rest) => format!(
            "corrupt control word: {}",
            rest.split_once(": ").map_or(rest, |r| r.1)
        ),
        None => text.to_owned(),
    }
}

/// What the probes saw.
#[derive(Default)]
struct Tally {
    probes: u64,
    ok: u64,
    errors: u64,
    claim_errors: u64,
    panics: Vec<String>,
    messages: std::collections::BTreeSet<String>,
}

impl Tally {
    fn data<T>(&mut self, r: Result<T, DataError>) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok += 1;
                Some(v)
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        DataError::Corrupt { .. } | DataError::Poisoned | DataError::Lapped
                    ),
                    "{e:?}"
                );
                self.errors += 1;
                self.messages.insert(reason(&e.to_string()));
                None
            }
        }
    }

    fn claim<T>(&mut self, r: rtipc::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                assert!(
                    matches!(e, Error::Data(_)),
                    "a claim over a bad word: {e:?}"
                );
                self.claim_errors += 1;
                self.messages.insert(reason(&e.to_string()));
                None
            }
        }
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: {} probes, {} operations Ok, {} data errors, {} claims refused, {} panics",
            self.probes,
            self.ok,
            self.errors,
            self.claim_errors,
            self.panics.len()
        );
        for m in &self.messages {
            eprintln!("  error seen: {m}");
        }
        assert!(self.panics.is_empty(), "{what}: panics: {:#?}", self.panics);
    }
}

/// The offsets in the segment file of a state channel's control words: the state word and the
/// three slots' sequence words.
fn state_words(f: &std::fs::File) -> Vec<(String, u64)> {
    let line = ctrl_line(f, 0, STATE_LINE_MIDDLE);
    ["state", "seq[0]", "seq[1]", "seq[2]"]
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), line + 8 * i as u64))
        .collect()
}

/// Publishes and fetches six times with whatever handles there are, each consumer fetching
/// and an observer (made over the hostile word) observing after each publish.
fn state_traffic(
    t: &mut Tally,
    tx: &mut Option<StateProducer<Numbered>>,
    rxs: &mut [Option<StateConsumer<Numbered>>],
    watch: &mut StateObserver<Numbered>,
) {
    for k in 0..6 {
        if let Some(tx) = tx.as_mut() {
            t.data(tx.publish_copy(&numbered(100 + k)));
        }
        for rx in rxs.iter_mut().flatten() {
            if let Some(Some(s)) = t.data(rx.fetch()) {
                // Whatever a hostile word did, the view is a valid `Numbered` to read.
                std::hint::black_box((s.n, s.check, StateRef::missed(&s)));
            }
        }
        if let Some(Some(o)) = t.data(watch.observe()) {
            std::hint::black_box((o.n, Observed::seq(&o), Observed::missed(&o)));
        }
    }
}

/// One probe of a state channel: traffic, `value` written at word `at`, then more traffic with
/// the same handles (`fresh == false`) or with handles claimed over the word.
fn state_probe(name: &str, word: usize, value: u64, fresh: bool, t: &mut Tally) {
    let seg = Segment::builder()
        .state::<Numbered>("s", Direction::CreatorToPeer)
        .create(name)
        .unwrap();
    let peer = Segment::open(name).unwrap();
    let f = shm_file(name);
    let mut tx = Some(StateProducer::<Numbered>::new(&seg, "s").unwrap());
    let mut rx = Some(StateConsumer::<Numbered>::new(&peer, "s").unwrap());
    tx.as_mut().unwrap().publish_copy(&numbered(1)).unwrap();
    rx.as_mut().unwrap().fetch().unwrap();
    tx.as_mut().unwrap().publish_copy(&numbered(2)).unwrap();
    if fresh {
        (tx, rx) = (None, None);
    }
    write_n(&f, state_words(&f)[word].1, 8, value);
    if fresh {
        tx = t.claim(StateProducer::new(&seg, "s"));
        rx = t.claim(StateConsumer::new(&peer, "s"));
    }
    let mut watch = StateObserver::new(&peer, "s").unwrap();
    state_traffic(t, &mut tx, std::slice::from_mut(&mut rx), &mut watch);
}

/// The offsets of a fan-out channel's control words (2 consumers): the latest word, the four
/// slots' sequence words, the producer's table, the consumers' `seen` words.
fn fanout_words(f: &std::fs::File) -> Vec<(String, u64)> {
    let cl = u64::from(read_u32(f, HEADER_CACHE_LINE));
    let line = |l: u64| ctrl_line(f, 0, l);
    let mut words = vec![("latest".to_string(), line(2))];
    for i in 0..4 {
        words.push((format!("seq[{i}]"), line(3) + 8 * i));
    }
    for k in 0..2 {
        words.push((format!("table[{k}]"), line(3) + 8 * (4 + k)));
    }
    let first = 3 + (8 * 6u64).div_ceil(cl);
    for k in 0..2 {
        words.push((format!("seen[{k}]"), line(first + k) + 8));
    }
    words
}

/// One probe of a fan-out channel of two consumers, as `state_probe`.
fn fanout_probe(name: &str, word: usize, value: u64, fresh: bool, t: &mut Tally) {
    let seg = Segment::builder()
        .channel(
            ChannelSpec::state("s", Direction::CreatorToPeer)
                .consumers(2)
                .object::<Numbered>(),
        )
        .create(name)
        .unwrap();
    let peer = Segment::open(name).unwrap();
    let f = shm_file(name);
    let mut tx = Some(StateProducer::<Numbered>::new(&seg, "s").unwrap());
    let mut rxs = [
        Some(StateConsumer::<Numbered>::new(&peer, "s").unwrap()),
        Some(StateConsumer::<Numbered>::new(&peer, "s").unwrap()),
    ];
    tx.as_mut().unwrap().publish_copy(&numbered(1)).unwrap();
    rxs[0].as_mut().unwrap().fetch().unwrap();
    tx.as_mut().unwrap().publish_copy(&numbered(2)).unwrap();
    rxs[1].as_mut().unwrap().fetch().unwrap();
    if fresh {
        tx = None;
        rxs = [None, None];
    }
    write_n(&f, fanout_words(&f)[word].1, 8, value);
    if fresh {
        tx = t.claim(StateProducer::new(&seg, "s"));
        rxs = [
            t.claim(StateConsumer::new_at(&peer, "s", 0)),
            t.claim(StateConsumer::new_at(&peer, "s", 1)),
        ];
    }
    let mut watch = StateObserver::new(&peer, "s").unwrap();
    state_traffic(t, &mut tx, &mut rxs, &mut watch);
}

/// A queue's control words: the producer's, the consumer's, each ring cell's two and each
/// slot's header.
fn queue_words(f: &std::fs::File, capacity: u64) -> Vec<(String, u64)> {
    let cl = u64::from(read_u32(f, HEADER_CACHE_LINE));
    let line = |l: u64| ctrl_line(f, 0, l);
    let mut words = vec![
        ("head".to_string(), line(2)),
        ("producer record".to_string(), line(2) + 8),
        ("tail".to_string(), line(4)),
        ("pending".to_string(), line(3)),
        ("consumer record".to_string(), line(3) + 8),
    ];
    for i in 0..capacity {
        words.push((format!("cell[{i}].pos"), line(QUEUE_LINE_CELLS) + 16 * i));
        words.push((
            format!("cell[{i}].state"),
            line(QUEUE_LINE_CELLS) + 16 * i + 8,
        ));
    }
    let headers = line(QUEUE_LINE_CELLS + (16 * capacity).div_ceil(cl));
    for s in 0..capacity + 2 {
        words.push((format!("header[{s}]"), headers + 8 * s));
    }
    words
}

const PROBE_CAPACITY: u32 = 4;

fn queue_traffic(
    t: &mut Tally,
    tx: &mut Option<QueueProducer<Numbered>>,
    rx: &mut Option<QueueConsumer<Numbered>>,
    watch: &mut QueueObserver<Numbered>,
) {
    for k in 0..6 {
        if let Some(Some(m)) = t.data(watch.observe()) {
            std::hint::black_box((m.n, Observed::seq(&m), Observed::missed(&m)));
        }
        if let Some(tx) = tx.as_mut() {
            t.data(tx.force_push(&numbered(100 + k)));
            t.data(tx.try_push(&numbered(200 + k)));
        }
        if let Some(rx) = rx.as_mut() {
            if let Some(Some(m)) = t.data(rx.pop()) {
                std::hint::black_box((m.n, m.check, MessageRef::seq(&m), MessageRef::missed(&m)));
            }
            if k % 2 == 1 {
                if let Some(Some(m)) = t.data(rx.latest()) {
                    std::hint::black_box((m.n, MessageRef::seq(&m), MessageRef::missed(&m)));
                }
            }
        }
    }
}

/// One probe of a queue, as `state_probe`.
fn queue_probe(name: &str, word: usize, value: u64, fresh: bool, t: &mut Tally) {
    let seg = Segment::builder()
        .queue::<Numbered>("q", Direction::CreatorToPeer, PROBE_CAPACITY)
        .create(name)
        .unwrap();
    let peer = Segment::open(name).unwrap();
    let f = shm_file(name);
    let mut tx = Some(QueueProducer::<Numbered>::new(&seg, "q").unwrap());
    let mut rx = Some(QueueConsumer::<Numbered>::new(&peer, "q").unwrap());
    for n in 1..=3 {
        tx.as_mut().unwrap().force_push(&numbered(n)).unwrap();
    }
    rx.as_mut().unwrap().pop().unwrap().expect("a message");
    if fresh {
        (tx, rx) = (None, None);
    }
    write_n(
        &f,
        queue_words(&f, u64::from(PROBE_CAPACITY))[word].1,
        8,
        value,
    );
    if fresh {
        tx = t.claim(QueueProducer::new(&seg, "q"));
        rx = t.claim(QueueConsumer::new(&peer, "q"));
    }
    let mut watch = QueueObserver::new(&peer, "q").unwrap();
    queue_traffic(t, &mut tx, &mut rx, &mut watch);
}

type Probe = fn(&str, usize, u64, bool, &mut Tally);

/// Runs `probe` for every word, every value, with live and with fresh handles, each in a
/// segment of its own; a panic is recorded with the probe that caused it.
fn run_probes(test: &str, words: &[(String, u64)], values: &[u64], probe: Probe) -> Tally {
    let base = seg_name(test);
    let mut t = Tally::default();
    for (w, (word, _)) in words.iter().enumerate() {
        for &value in values {
            for fresh in [false, true] {
                let name = format!("{base}-{}", t.probes);
                t.probes += 1;
                let r = catch_unwind(AssertUnwindSafe(|| probe(&name, w, value, fresh, &mut t)));
                if let Err(p) = r {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let handles = if fresh { "fresh" } else { "live" };
                    t.panics
                        .push(format!("{word} = {value:#x} ({handles} handles): {msg}"));
                }
            }
        }
    }
    t
}

/// Every control word of a state channel set to hostile values: no panic, every operation `Ok`
/// or a clear error.
#[test]
fn hostile_state_words_give_errors_not_panics() {
    let words = {
        let name = seg_name("life-probe-state-layout");
        let _seg = Segment::builder()
            .state::<Numbered>("s", Direction::CreatorToPeer)
            .create(&name)
            .unwrap();
        state_words(&shm_file(&name))
    };
    // Besides the plain values, state words with valid slot indices and huge sequence numbers.
    let mut values = probe_values();
    for seq in [(1u64 << 58) - 1, (1 << 58) - 2, 1 << 38, 1 << 39] {
        values.push(seq << 6 | 0b1001);
        values.push(seq << 6 | 0b1_1001);
        values.push(seq << 6 | 0b11_1001);
    }
    let t = run_probes("life-probe-state", &words, &values, state_probe);
    t.report("state channel word probes");
    assert_eq!(t.probes, 2 * 4 * values.len() as u64);
}

/// Every control word of a fan-out channel set to hostile values: no panic, every operation
/// `Ok` or a clear error, for the producer, both consumers and an observer.
#[test]
fn hostile_fanout_words_give_errors_not_panics() {
    let words = {
        let name = seg_name("life-probe-fanout-layout");
        let _seg = Segment::builder()
            .channel(
                ChannelSpec::state("s", Direction::CreatorToPeer)
                    .consumers(2)
                    .object::<Numbered>(),
            )
            .create(&name)
            .unwrap();
        fanout_words(&shm_file(&name))
    };
    // Besides the plain values, latest words with valid slots and consumer bits.
    let mut values = probe_values();
    for took in [0u64, 1, 2, 3, 0xFFFF] {
        values.push(1 | 2 << 5 | took << 10);
        values.push(3 | took << 10 | took << 26);
    }
    let t = run_probes("life-probe-fanout", &words, &values, fanout_probe);
    t.report("fan-out word probes");
    assert_eq!(t.probes, 2 * words.len() as u64 * values.len() as u64);
}

/// Every control word of a queue set to hostile values: no panic, every operation `Ok` or a
/// clear error.
#[test]
fn hostile_queue_words_give_errors_not_panics() {
    let words = {
        let name = seg_name("life-probe-queue-layout");
        let _seg = Segment::builder()
            .queue::<Numbered>("q", Direction::CreatorToPeer, PROBE_CAPACITY)
            .create(&name)
            .unwrap();
        queue_words(&shm_file(&name), u64::from(PROBE_CAPACITY))
    };
    assert_eq!(words.len(), 5 + 2 * 4 + 6);
    let values = probe_values();
    let t = run_probes("life-probe-queue", &words, &values, queue_probe);
    t.report("queue word probes");
    assert_eq!(t.probes, 2 * words.len() as u64 * values.len() as u64);
}

/// A queue cell's free bit and the width of the position bits it keeps (see `rtipc::layout`).
const CELL_FREE: u64 = 1 << 63;
const CELL_POS_MASK: u64 = (1 << 39) - 1;

/// Rewrites the words of a queue that nobody holds as those of a queue through which `p`
/// messages have passed, all of them taken: head and tail `p`, each cell holding the free slot
/// of the last position that went through it, each side holding its initial slot.
fn queue_at(f: &std::fs::File, capacity: u64, p: u64) {
    let words = queue_words(f, capacity);
    let at = |name: &str| words.iter().find(|w| w.0 == name).expect(name).1;
    write_n(f, at("head"), 8, p);
    write_n(f, at("producer record"), 8, capacity);
    write_n(f, at("tail"), 8, p);
    write_n(f, at("pending"), 8, 0);
    write_n(f, at("consumer record"), 8, capacity + 1);
    for k in 1..=capacity {
        let x = p.wrapping_sub(k);
        let c = x % capacity;
        write_n(f, at(&format!("cell[{c}].pos")), 8, x);
        let state = CELL_FREE | (x & CELL_POS_MASK) << 24 | c;
        write_n(f, at(&format!("cell[{c}].state")), 8, state);
        write_n(f, at(&format!("header[{c}]")), 8, x);
    }
}

/// Pops one message and checks it: number `n` (its position + 1, wrapping), `missed` before it.
fn pop_expect(rx: &mut QueueConsumer<Numbered>, n: u64, missed: u64) -> Result<(), DataError> {
    let m = rx
        .pop()?
        .unwrap_or_else(|| panic!("message {n:#x} was not delivered"));
    assert!(numbered_ok(&m), "message {n:#x} is intact");
    let got = (m.n, MessageRef::seq(&m), MessageRef::missed(&m));
    assert_eq!(
        got,
        (n, n, missed),
        "(number, seq, missed) of message {n:#x}"
    );
    Ok(())
}

/// Runs a queue of `capacity` whose messages start at position `p`: one at a time, overrun by
/// two, filled with `try_push` and read with `latest`. Every message must arrive with its exact
/// number; the first data error ends the run and is returned. Returns how many were checked.
fn queue_from(name: &str, capacity: u32, p: u64) -> Result<u64, DataError> {
    let seg = Segment::builder()
        .queue::<Numbered>("q", Direction::CreatorToPeer, capacity)
        .create(name)
        .unwrap();
    let peer = Segment::open(name).unwrap();
    let cap = u64::from(capacity);
    queue_at(&shm_file(name), cap, p);
    let mut tx = QueueProducer::<Numbered>::new(&seg, "q").expect("producer over the words");
    let mut rx = QueueConsumer::<Numbered>::new(&peer, "q").expect("consumer over the words");
    let mut next = p.wrapping_add(1); // the number of the next message
    let mut checked = 0;
    for _ in 0..3 * cap {
        assert!(!tx.force_push(&numbered(next))?, "nothing overwritten");
        pop_expect(&mut rx, next, 0)?;
        (next, checked) = (next.wrapping_add(1), checked + 1);
    }
    // Overrun: the two oldest are overwritten and counted as missed.
    for k in 0..cap + 2 {
        let overwrote = tx.force_push(&numbered(next.wrapping_add(k)))?;
        assert_eq!(overwrote, k >= cap, "push {k} of {} overwrote", cap + 2);
    }
    pop_expect(&mut rx, next.wrapping_add(2), 2)?;
    for k in 3..cap + 2 {
        pop_expect(&mut rx, next.wrapping_add(k), 0)?;
    }
    assert!(rx.pop()?.is_none(), "all taken");
    (next, checked) = (next.wrapping_add(cap + 2), checked + cap);
    // Full: `try_push` refuses the one too many; `latest` skips to the newest.
    for k in 0..=cap {
        let pushed = tx.try_push(&numbered(next.wrapping_add(k)))?;
        assert_eq!(pushed, k < cap, "try_push {k} of a queue of {cap}");
    }
    pop_expect_latest(&mut rx, next.wrapping_add(cap - 1), cap - 1)?;
    assert!(rx.pop()?.is_none(), "all taken");
    Ok(checked + 1)
}

fn pop_expect_latest(
    rx: &mut QueueConsumer<Numbered>,
    n: u64,
    missed: u64,
) -> Result<(), DataError> {
    let m = rx
        .latest()?
        .unwrap_or_else(|| panic!("message {n:#x} was not delivered"));
    let got = (m.n, MessageRef::seq(&m), MessageRef::missed(&m));
    assert_eq!(
        got,
        (n, n, missed),
        "(number, seq, missed) of the latest, {n:#x}"
    );
    Ok(())
}

/// A queue whose positions are near 2^38, 2^39 (where the 39 position bits of a cell wrap) and
/// u64::MAX delivers every message with its exact number. Across 2^64 (where a message's number
/// wraps to 0) it delivers them or says the words are corrupt; never a panic.
#[test]
fn a_queue_far_along_delivers_exact_numbers() {
    let base = seg_name("life-queue-far");
    let mut run = 0;
    for capacity in [4u32, 3] {
        for p in [
            (1 << 38) - 5,
            1 << 38,
            (1 << 39) - 5,
            (1 << 40) - 5,
            u64::MAX - 40,
            u64::MAX - 5,
        ] {
            run += 1;
            let r = queue_from(&format!("{base}-{run}"), capacity, p);
            let crosses = p.checked_add(4 * u64::from(capacity) + 10).is_none();
            eprintln!("queue of {capacity} from position {p:#x}: {r:?}");
            assert!(r.is_ok() || crosses, "from {p:#x}: {r:?}");
        }
    }
}

/// What a consumer claimed over a saved tail of `tail` finds while the producer force-pushes
/// six messages: the (number, seq, missed) of each message popped, or the error that stopped
/// it; and, if it popped nothing, what a `wait` of 200 ms said.
struct AfterTail {
    got: Vec<(u64, u64, u64)>,
    error: Option<String>,
    wait: Option<rtipc::Result<bool>>,
}

fn consume_after_tail(name: &str, tail: u64) -> AfterTail {
    let seg = Segment::builder()
        .queue::<Numbered>("q", Direction::CreatorToPeer, PROBE_CAPACITY)
        .notify(true)
        .create(name)
        .unwrap();
    let peer = Segment::open(name).unwrap();
    let f = shm_file(name);
    let mut tx = QueueProducer::<Numbered>::new(&seg, "q").unwrap();
    let rx = QueueConsumer::<Numbered>::new(&peer, "q").unwrap();
    for n in 1..=3 {
        tx.force_push(&numbered(n)).unwrap();
    }
    drop(rx);
    let at = queue_words(&f, u64::from(PROBE_CAPACITY))[2].1;
    write_n(&f, at, 8, tail);
    let mut out = AfterTail {
        got: Vec::new(),
        error: None,
        wait: None,
    };
    let mut rx = match QueueConsumer::<Numbered>::new(&peer, "q") {
        Ok(rx) => rx,
        Err(e) => {
            out.error = Some(format!("claim: {e}"));
            return out;
        }
    };
    for n in 4..=9 {
        if let Err(e) = tx.force_push(&numbered(n)) {
            out.error = Some(format!("force_push: {e}"));
            return out;
        }
        match rx.pop() {
            Ok(Some(m)) => out
                .got
                .push((m.n, MessageRef::seq(&m), MessageRef::missed(&m))),
            Ok(None) => {}
            Err(e) => {
                out.error = Some(format!("pop: {e}"));
                return out;
            }
        }
    }
    if out.got.is_empty() {
        out.wait = Some(rx.wait(Some(Duration::from_millis(200))));
    }
    out
}

/// A consumer claimed over a saved tail set near 2^38 (ahead of the producer) or near
/// u64::MAX (behind it, wrapping) either receives the messages pushed after it, each intact and
/// numbered by its position, in increasing order, or is told that the words are corrupt; never
/// a panic, and never silence.
#[test]
fn a_consumer_over_a_hostile_saved_tail_receives_or_is_told() {
    let base = seg_name("life-tail");
    let tails = [
        (1u64 << 38) - 1,
        1 << 38,
        (1 << 38) + 1,
        1 << 39,
        u64::MAX - 100,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut silent = Vec::new();
    for (i, tail) in tails.into_iter().enumerate() {
        let r = consume_after_tail(&format!("{base}-{i}"), tail);
        eprintln!(
            "saved tail {tail:#x}: popped (number, seq, missed) {:?}, error {:?}, wait {:?}",
            r.got, r.error, r.wait
        );
        for w in r.got.windows(2) {
            assert!(w[1].0 > w[0].0, "increasing numbers: {:?}", r.got);
        }
        for &(n, seq, _) in &r.got {
            assert_eq!(n, seq, "numbered by position");
        }
        if r.got.is_empty() && r.error.is_none() {
            silent.push(format!("{tail:#x} (wait for 200 ms: {:?})", r.wait));
        }
    }
    assert!(
        silent.is_empty(),
        "a consumer claimed over these saved tails received none of the 6 messages pushed after \
         it and got no error: {silent:?}"
    );
}

// --- 7. Restarts. -----------------------------------------------------------------------------

/// (a) A creator (not keeping its segment) is killed while this process consumes; a new creator
/// with the same declaration resumes the very segment, and this process's handles carry on
/// without attaching again. (b) A creator with another declaration replaces it, and `check`
/// says so.
#[test]
fn a_restarted_creator_resumes_and_a_replacement_is_reported() {
    let name = seg_name("life-restart");
    let _cleanup = Cleanup(name.clone());
    let mut first = Peer::spawn(&[], Role::LifeCreator, &name, 0);
    first.expect("ready ");
    let seg = Segment::open(&name).unwrap();
    let id = identity(&name).unwrap();
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").unwrap();
    let before = receive(&mut rx, 0, 10);

    // (a) Killed: the segment stays, stale; the handles still read the last update.
    first.kill_group();
    assert!(matches!(seg.check(), Err(Error::CreatorGone { .. })));
    assert!(!rx.producer_alive().unwrap());
    assert!(matches!(Segment::open(&name), Err(Error::Stale { .. })));
    assert_eq!(
        identity(&name),
        Some(id),
        "a killed creator unlinks nothing"
    );
    let mut second = Peer::spawn(&[], Role::LifeCreator, &name, 0);
    second.expect("ready ");
    assert_eq!(
        identity(&name),
        Some(id),
        "resumed: the same file, not a new one"
    );
    seg.check().expect("served again");
    assert!(seg.creator_alive());
    assert!(rx.producer_alive().unwrap());
    let after = receive(&mut rx, before, 10);
    eprintln!("restart: updates up to {before} before the kill, up to {after} after, one handle");

    // (b) Another declaration replaces the stale segment: attached peers are told to reattach.
    second.kill_group();
    let mut third = Peer::spawn(&[], Role::LifeReplacer, &name, 0);
    third.expect("ready ");
    assert_ne!(identity(&name), Some(id), "a new file under the name");
    match seg.check() {
        Err(Error::Replaced { name: n }) => assert_eq!(n, name),
        other => panic!("expected Replaced, got {other:?}"),
    }
    let fresh = Segment::open(&name).expect("attach again");
    assert!(fresh.channel_names().contains(&"life/extra"));
    fresh.check().expect("the replacement is served");
    third.kill_group();
}

/// (c) `wait_open` started before any creator exists returns the segment once one has created
/// it; with no creator it returns a retryable error when its time is up.
#[test]
fn wait_open_waits_for_a_creator_and_gives_up_without_one() {
    let name = seg_name("life-wait-open");
    let _cleanup = Cleanup(name.clone());
    let waiter = {
        let name = name.clone();
        std::thread::spawn(move || Segment::wait_open(&name, LIMIT))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished(), "nothing to open yet");
    let mut creator = Peer::spawn(&[], Role::LifeCreator, &name, 0);
    let seg = waiter
        .join()
        .unwrap()
        .expect("opened once the creator appeared");
    creator.expect("ready ");
    seg.check().expect("check");
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").unwrap();
    receive(&mut rx, 0, 5);

    // No creator: not found, then stale; both retryable, both only after the timeout.
    let none = seg_name("life-wait-open-none");
    for (what, target) in [("no segment", none.as_str()), ("stale", name.as_str())] {
        if what == "stale" {
            creator.kill_group();
        }
        let start = Instant::now();
        let timeout = Duration::from_millis(200);
        let e = Segment::wait_open(target, timeout).expect_err("nobody creates it");
        assert!(e.is_retryable(), "{what}: {e:?}");
        assert!(
            start.elapsed() >= timeout,
            "{what}: gave up before its time"
        );
        match (what, &e) {
            ("no segment", Error::NotFound { .. }) | ("stale", Error::Stale { .. }) => {}
            _ => panic!("{what}: {e:?}"),
        }
        eprintln!("wait_open, {what}: {e:?}");
    }
}

/// (d) A consumer blocked in `wait(None)` on a notify-enabled channel whose producer process is
/// killed returns `NoProducer`; when a new producer process claims the end,
/// `wait_for_producer` returns true and updates flow again, on the same handle.
#[test]
fn a_waiting_consumer_learns_that_its_producer_died_and_waits_for_the_next() {
    let name = seg_name("life-no-producer");
    let _cleanup = Cleanup(name.clone());
    let mut first = Peer::spawn(&[], Role::LifeCreator, &name, 5);
    first.expect("ready ");
    assert_eq!(first.expect("idle "), "5", "five updates, then silence");
    let seg = Segment::open(&name).unwrap();
    let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").unwrap();
    let s = rx.fetch().unwrap().expect("published");
    assert_eq!((s.n, StateRef::seq(&s)), (5, 5));

    let blocked = std::thread::spawn(move || {
        let r = rx.wait(None);
        (r, Instant::now(), rx)
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!blocked.is_finished(), "nothing new: the consumer sleeps");
    first.kill_group();
    let killed = Instant::now();
    while !blocked.is_finished() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "wait(None) did not return"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (r, returned, mut rx) = blocked.join().unwrap();
    eprintln!(
        "no producer: wait returned {:?} ms after the kill: {r:?}",
        returned.saturating_duration_since(killed).as_millis()
    );
    match r {
        Err(Error::NoProducer { channel }) => assert_eq!(channel, "life/state"),
        other => panic!("expected NoProducer, got {other:?}"),
    }
    assert!(!rx.producer_alive().unwrap());
    assert!(!rx
        .wait_for_producer(Some(Duration::from_millis(50)))
        .unwrap());

    let mut second = Peer::spawn(&[], Role::LifeCreator, &name, 10);
    assert!(rx.wait_for_producer(Some(LIMIT)).unwrap(), "a new producer");
    second.expect("ready ");
    let mut last = 5;
    while last < 10 {
        assert!(rx.wait(Some(LIMIT)).unwrap(), "woken by the new producer");
        let s = rx.fetch().unwrap().expect("published");
        assert!(numbered_ok(&s) && s.n == StateRef::seq(&s) && s.n > last);
        last = s.n;
    }
    assert_eq!(
        second.expect("idle "),
        "10",
        "the sequence continued from 5"
    );
}

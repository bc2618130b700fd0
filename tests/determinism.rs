//! Real-time determinism: a segment locked and prefaulted in both processes takes no page
//! fault on the data path, and a process that may not lock enough memory gets an error that
//! says what to raise.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rtipc::{Error, Segment};

fn field(text: &str, key: &str) -> String {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}` in {text:?}"))
        .to_owned()
}

/// 100,000 rounds of publish, fetch, push and pop in each of two processes, each with its own
/// mapping locked (and so prefaulted), after a warm-up on another segment that faults in the
/// code and the stack: 0 minor and 0 major page faults in either. Without the lock, the same
/// rounds fault on the slots they touch first (the control shows the count can fail).
#[test]
fn a_locked_segment_takes_no_page_fault_on_the_data_path_in_either_process() {
    const ROUNDS: u64 = 100_000;
    let name = seg_name("faults");
    let warm = fault_segment(&format!("{name}-warm"), true);
    let seg = fault_segment(&name, true);
    let mut peer = peer_command(Role::FaultCount, &name, ROUNDS)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ours = fault_rounds(&warm, &seg, &FAULT_CREATOR, ROUNDS);
    let mut out = String::new();
    peer.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    wait_peer(peer, Duration::from_secs(60));
    println!(
        "creator: {ours:?} page faults (minor, major); peer: {}",
        out.trim()
    );
    assert_eq!(ours, (0, 0), "the creator's data path faulted");
    assert_eq!(
        (field(&out, "minor"), field(&out, "major")),
        ("0".to_owned(), "0".to_owned()),
        "the peer's data path faulted: {out}"
    );
    // The control: the same rounds on a segment nobody locked or prefaulted.
    let name = seg_name("faults-unlocked");
    let warm = fault_segment(&format!("{name}-warm"), false);
    let seg = fault_segment(&name, false);
    let (minor, _) = fault_rounds(&warm, &seg, &FAULT_CREATOR, ROUNDS);
    println!("unlocked: {minor} minor page faults");
    assert!(
        minor > 0,
        "an unlocked, untouched segment faults on first touch"
    );
}

/// A process without `CAP_IPC_LOCK` whose `RLIMIT_MEMLOCK` is 64 KiB cannot lock a segment of
/// a few hundred KiB, nor all of its memory: the error names the limit and what to raise.
#[test]
fn too_small_a_memlock_limit_is_a_clear_error() {
    let name = seg_name("memlock");
    let seg = Segment::builder()
        .queue::<Big>("big", rtipc::Direction::CreatorToPeer, 64)
        .create(&name)
        .unwrap();
    let out = peer_command(Role::MemlockLimited, &name, 0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("MemoryLockLimit")
            && text.contains("RLIMIT_MEMLOCK")
            && text.contains("65536")
            && text.contains("ulimit -l"),
        "{text}"
    );
    assert!(text.contains("all error MemoryLockLimit"), "{text}");
    drop(seg);
}

/// The options on the builder: a locked anonymous segment counts in the process's locked
/// memory; a tool's read-only mapping and a System V segment lock too.
#[test]
fn builder_options_lock_memory() {
    let locked = || -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with("VmLck:"))
            .unwrap()
            .to_owned();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    let before = locked();
    let seg = Segment::builder()
        .queue::<Big>("big", rtipc::Direction::CreatorToPeer, 256)
        .lock_memory(true)
        .create_anonymous();
    match seg {
        Ok(seg) => {
            let size = seg.size();
            assert!(
                locked() >= before + size,
                "{} locked, {size} more expected",
                locked()
            );
        }
        Err(e @ Error::MemoryLockLimit { .. }) => println!("not permitted here: {e}"),
        Err(e) => panic!("{e}"),
    }
    // A tool's read-only mapping prefaults and locks for reading; a System V segment locks
    // as a named one does.
    let name = seg_name("lock-ro");
    let _named = fault_segment(&name, false);
    let ins = rtipc::inspect::Inspector::open(&name).unwrap();
    ins.segment().prefault().unwrap();
    ins.segment().lock_memory().unwrap();
    let key = rtipc::SysvKey::from_name(&seg_name("lock-sysv"));
    let sysv = Segment::builder()
        .state::<Small>("s", rtipc::Direction::CreatorToPeer)
        .lock_memory(true)
        .create_sysv(key)
        .unwrap();
    Segment::open_sysv(key).unwrap().lock_memory().unwrap();
    drop(sysv);
}

/// A count from `/proc/meminfo` (`HugePages_Free`, `Hugepagesize` in KiB), 0 if absent.
fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Huge pages. Where the system has free huge pages (`.ci/run` reserves some when it may): an
/// anonymous segment takes whole huge pages from the pool while it lives and gives them back
/// when dropped; a second mapping of it (as a peer's, from its descriptor) sees what the first
/// publishes, and locks; a segment that needs more huge pages than are free is refused with
/// `NoHugePages`. Where none are reserved, creation says how to reserve them. Named segments
/// refuse the option either way.
#[test]
fn huge_pages_back_an_anonymous_segment_or_say_how_to_reserve_them() {
    let e = Segment::builder()
        .state::<Small>("s", rtipc::Direction::CreatorToPeer)
        .huge_pages(true)
        .create(&seg_name("huge-named"))
        .unwrap_err();
    assert!(e.to_string().contains("anonymous segments"), "{e}");
    let page = meminfo("Hugepagesize") * 1024;
    let free = meminfo("HugePages_Free");
    let small = || {
        Segment::builder()
            .state::<Small>("s", rtipc::Direction::CreatorToPeer)
            .huge_pages(true)
            .lock_memory(true)
            .create_anonymous()
    };
    if free == 0 {
        let e = small().unwrap_err();
        assert!(matches!(e, Error::NoHugePages { .. }), "{e:?}");
        let hint = if page == 0 {
            "offers none"
        } else {
            "nr_hugepages"
        };
        assert!(e.to_string().contains(hint), "{e}");
        println!("no huge pages free here: {e}");
        return;
    }
    let seg = small().unwrap();
    let taken = free - meminfo("HugePages_Free");
    assert_eq!(
        taken,
        seg.size().div_ceil(page),
        "huge pages taken from the pool"
    );
    let fd = std::os::fd::AsFd::as_fd(&seg).try_clone_to_owned().unwrap();
    let peer = Segment::from_fd(fd).unwrap();
    peer.lock_memory().unwrap();
    let mut tx = rtipc::StateProducer::<Small>::new(&seg, "s").unwrap();
    let mut rx = rtipc::StateConsumer::<Small>::new(&peer, "s").unwrap();
    for i in 1..=1000u64 {
        let mut w = tx.write().unwrap();
        w.seq = i;
        w.tag = 7;
        w.check = i as u32 ^ 0x5a5a;
        w.publish().unwrap();
        let r = rx.fetch().unwrap().expect("an update");
        assert_eq!((r.seq, r.tag, r.check), (i, 7, i as u32 ^ 0x5a5a));
    }
    drop((tx, rx, peer, seg));
    // Another test of this binary may be starting a process right now: between its fork and
    // its exec, the child holds a copy of every descriptor and mapping, ours included, so the
    // pages can come back a moment later than the drop.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while meminfo("HugePages_Free") != free && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        meminfo("HugePages_Free"),
        free,
        "the huge pages went back to the pool"
    );
    // More than are free: a queue of 4 KiB messages one huge page larger than the pool.
    let slots = ((free + 1) * page / 4096).next_power_of_two();
    if slots > u64::from(rtipc::layout::MAX_QUEUE_CAPACITY) {
        println!("huge pages: {free} free, too many to exhaust with one queue");
        return;
    }
    let e = Segment::builder()
        .queue::<Big>("big", rtipc::Direction::CreatorToPeer, slots as u32)
        .huge_pages(true)
        .create_anonymous()
        .unwrap_err();
    assert!(matches!(e, Error::NoHugePages { .. }), "{e:?}");
    assert!(e.to_string().contains("nr_hugepages"), "{e}");
    println!("huge pages: a segment took {taken} of {free} free pages of {page} bytes; a larger one: {e}");
}

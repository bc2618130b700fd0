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
/// memory; huge pages are refused for named segments, and for anonymous ones either work or
/// say that none are reserved.
#[test]
fn builder_options_lock_and_huge_pages() {
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
    let e = Segment::builder()
        .state::<Small>("s", rtipc::Direction::CreatorToPeer)
        .huge_pages(true)
        .create(&seg_name("huge-named"))
        .unwrap_err();
    assert!(e.to_string().contains("anonymous segments"), "{e}");
    match Segment::builder()
        .state::<Small>("s", rtipc::Direction::CreatorToPeer)
        .huge_pages(true)
        .lock_memory(true)
        .create_anonymous()
    {
        Ok(seg) => {
            // A peer maps it too, and both unmap it whole.
            let fd = std::os::fd::AsFd::as_fd(&seg).try_clone_to_owned().unwrap();
            let peer = Segment::from_fd(fd).unwrap();
            peer.lock_memory().unwrap();
            println!("huge pages: a segment of {} bytes", seg.size());
        }
        Err(e @ Error::NoHugePages { .. }) => {
            assert!(e.to_string().contains("nr_hugepages"), "{e}");
            println!("no huge pages reserved here: {e}");
        }
        Err(e) => panic!("{e}"),
    }
}

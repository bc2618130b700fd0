//! The peer's roles for the lifecycle tests (`tests/lifecycle.rs`): creators that are killed and
//! restarted, a holder that becomes a zombie, a process that forks, a full tmpfs and a 64 GiB
//! sparse memfd. Each prints what the test needs on stdout, one fact per line.

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::common::*;
use rtipc::{Direction, Error, Segment, StateConsumer, StateProducer, StateRef};

/// How long an idle role waits to be killed before it gives up (so that nothing outlives a
/// test that failed without killing it).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Prints one line on stdout and flushes it, so that the test sees it at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Sleeps until killed; exits with code 9 after `IDLE_LIMIT`.
fn idle() -> i32 {
    std::thread::sleep(IDLE_LIMIT);
    eprintln!("peer: nobody killed me within {IDLE_LIMIT:?}");
    9
}

/// Publishes the next `Numbered` update on `tx`: its number is its sequence number.
fn publish_next(tx: &mut StateProducer<Numbered>) -> u64 {
    let n = tx.published() + 1;
    let seq = tx.publish_copy(&numbered(n)).expect("publish");
    assert_eq!(seq, n, "the sequence number continues from the word");
    seq
}

/// Creates (or resumes) the `life_channels` segment `name`, holds the producer ends of
/// `life/state` (as the creator) and `life/up` (through a peer handle of its own), publishes
/// `count` updates on `life/state` one millisecond apart (0: until killed), and idles.
pub fn creator(name: &str, count: u64) -> i32 {
    let seg = match life_channels(Segment::builder()).create(name) {
        Ok(seg) => seg,
        Err(e) => {
            say(&format!("error {e:?}"));
            return 10;
        }
    };
    let mut tx = StateProducer::<Numbered>::new(&seg, "life/state").expect("life/state");
    let own_peer = Segment::open(name).expect("open as a peer");
    let _up = StateProducer::<Numbered>::new(&own_peer, "life/up").expect("life/up");
    publish_next(&mut tx);
    say(&format!("ready {}", std::process::id()));
    let start = Instant::now();
    while count == 0 || tx.published() < count {
        std::thread::sleep(Duration::from_millis(1));
        publish_next(&mut tx);
        if start.elapsed() > IDLE_LIMIT {
            return 9;
        }
    }
    say(&format!("idle {}", tx.published()));
    idle()
}

/// Replaces the stale segment `name` with another declaration (`life_channels_other`), and
/// idles.
pub fn replacer(name: &str) -> i32 {
    let seg = life_channels_other(Segment::builder())
        .replace_stale(true)
        .create(name);
    match seg {
        Ok(_seg) => {
            say(&format!("ready {}", std::process::id()));
            idle()
        }
        Err(e) => {
            say(&format!("error {e:?}"));
            10
        }
    }
}

/// Claims the producer end of `life/up`, publishes `count` updates, prints `claimed PID` and
/// exits (with its claim still held up to its last instruction) once its stdin closes.
pub fn zombie(name: &str, count: u64) -> i32 {
    let seg = Segment::open(name).expect("open");
    let mut up = StateProducer::<Numbered>::new(&seg, "life/up").expect("life/up");
    for _ in 0..count {
        publish_next(&mut up);
    }
    say(&format!("claimed {}", std::process::id()));
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    // Exit without dropping anything: the kernel releases the claim.
    std::process::exit(0)
}

/// `fork()`: the child's pid in the parent, 0 in the child.
fn fork_now() -> libc::pid_t {
    // SAFETY: this process is single-threaded (the peer runs no threads), so the child may run
    // any code; rtipc's fork handler closes the child's copies of the lock descriptors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    pid
}

/// Exits at once, without running any exit handler or destructor.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process; nothing of it runs afterwards.
    unsafe { libc::_exit(code) }
}

/// Creates the `life_channels` segment `name` (not kept), claims the producer ends of
/// `life/state` (as the creator) and `life/up` (through a peer handle of its own), publishes
/// update 1 on each, and forks twice:
///
/// 1. a child that drops its copies of the handle and the segment and exits: the parent waits
///    for it and prints `dropped STATUS`, then waits for a line on stdin;
/// 2. a child that sleeps, holding every descriptor it inherited: it prints `sleeping PID` once
///    it runs (its fork handlers have run), and exits by itself after `IDLE_LIMIT` (or when the
///    test kills it); the parent idles until the test kills it.
pub fn fork(name: &str) -> i32 {
    let seg = life_channels(Segment::builder())
        .create(name)
        .expect("create");
    let mut tx = StateProducer::<Numbered>::new(&seg, "life/state").expect("life/state");
    let own_peer = Segment::open(name).expect("open as a peer");
    let mut up = StateProducer::<Numbered>::new(&own_peer, "life/up").expect("life/up");
    publish_next(&mut tx);
    publish_next(&mut up);
    let child = fork_now();
    if child == 0 {
        // The child's copies: dropping them must neither release the parent's claims nor
        // unlink the parent's segment.
        drop((tx, up));
        drop((seg, own_peer));
        exit_now(0);
    }
    let mut status = 0;
    // SAFETY: waits for our own child, writing its status into a live local.
    let r = unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(r, child, "waitpid");
    say(&format!("dropped {status}"));
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if fork_now() == 0 {
        say(&format!("sleeping {}", std::process::id()));
        std::thread::sleep(IDLE_LIMIT);
        exit_now(0);
    }
    // The parent keeps its claim and its segment until it is killed.
    let code = idle();
    drop((tx, up, seg, own_peer));
    code
}

/// Free bytes of the file system holding `/dev/shm`.
fn shm_free() -> u64 {
    // SAFETY: `statvfs` is plain data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a live `statvfs` to fill in.
    let r = unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut st) };
    assert_eq!(r, 0, "statvfs /dev/shm");
    st.f_bfree * st.f_frsize
}

/// Inside a mount namespace with an 8 MiB tmpfs on `/dev/shm`: creating a segment of more than
/// 16 MiB (`name`) must fail with an error, leaving nothing behind, and a small segment must
/// still work. Prints `free BYTES`, `error DEBUG`, `free-after BYTES`, `small N`. Exit codes: 0
/// all as expected; 3 the big segment was created; 4 something was left behind; 5 the small
/// segment failed.
pub fn full_shm(name: &str) -> i32 {
    say(&format!("free {}", shm_free()));
    // 4096 slots of 4 KiB: 16 MiB of slots, plus the control block and the metadata.
    let big = Segment::builder()
        .queue::<Big>("life/big", Direction::CreatorToPeer, 4094)
        .create(name);
    match big {
        Ok(seg) => {
            say(&format!("created {seg:?}"));
            return 3;
        }
        Err(e) => say(&format!("error {e:?}")),
    }
    say(&format!("free-after {}", shm_free()));
    if std::path::Path::new(&format!("/dev/shm/{name}")).exists() {
        return 4;
    }
    let small_name = format!("{name}-small");
    let small = (|| -> Result<u64, Error> {
        let seg = life_channels(Segment::builder()).create(&small_name)?;
        let mut tx = StateProducer::<Numbered>::new(&seg, "life/state")?;
        tx.publish_copy(&numbered(41))?;
        tx.publish_copy(&numbered(42))?;
        let peer = Segment::open(&small_name)?;
        let mut rx = StateConsumer::<Numbered>::new(&peer, "life/state")?;
        let got = rx.fetch()?.expect("published");
        assert!(numbered_ok(&got) && StateRef::seq(&got) == 2);
        Ok(got.n)
    })();
    match small {
        Ok(n) => {
            say(&format!("small {n}"));
            0
        }
        Err(e) => {
            say(&format!("small-error {e:?}"));
            5
        }
    }
}

/// This process's peak resident set (`VmHWM`), in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 64 GiB.
const SPARSE_LEN: u64 = 64 << 30;

/// A memfd of 64 GiB (sparse: nothing allocated) holding `prefix` at offset 0, sealed against
/// growing and shrinking.
fn sparse_memfd(prefix: &[u8]) -> OwnedFd {
    // SAFETY: a valid name and flags.
    let fd = unsafe {
        libc::memfd_create(
            c"life-sparse".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a new descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(SPARSE_LEN).expect("ftruncate to 64 GiB");
    file.write_all_at(prefix, 0).expect("write the prefix");
    let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;
    // SAFETY: fcntl with integer arguments on a valid descriptor.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    assert_eq!(r, 0, "seal");
    file.into()
}

/// The bytes of a small, valid anonymous segment (one state channel, not notify-enabled) in
/// which update 7 was published.
fn valid_segment_bytes() -> Vec<u8> {
    let seg = Segment::builder()
        .state::<Numbered>("life/state", Direction::CreatorToPeer)
        .create_anonymous()
        .expect("create_anonymous");
    let mut tx = StateProducer::<Numbered>::new(&seg, "life/state").expect("producer");
    for n in 1..=7 {
        tx.publish_copy(&numbered(n)).expect("publish");
    }
    let file = File::from(
        std::os::fd::AsFd::as_fd(&seg)
            .try_clone_to_owned()
            .expect("dup"),
    );
    let len = file.metadata().expect("metadata").len();
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0).expect("read the segment");
    bytes
}

/// Attaches a 64 GiB sparse memfd with `Segment::from_fd`. `mode`: `zero` (nothing written: not
/// an rtipc segment), `header` (a small valid segment copied to its start), `huge-size` (the
/// same, its header declaring the whole 64 GiB). Prints `result ...` (with the update fetched
/// when it attached) and `vmhwm-before KIB`, `vmhwm KIB`. Exit code 0; 2 for an unknown mode.
pub fn sparse(mode: &str) -> i32 {
    let prefix = match mode {
        "zero" => Vec::new(),
        "header" => valid_segment_bytes(),
        "huge-size" => {
            let mut b = valid_segment_bytes();
            b[HEADER_SEGMENT_SIZE as usize..][..8].copy_from_slice(&SPARSE_LEN.to_le_bytes());
            b
        }
        _ => return 2,
    };
    let fd = sparse_memfd(&prefix);
    drop(prefix);
    say(&format!("vmhwm-before {}", vm_hwm_kib()));
    match Segment::from_fd(fd) {
        Ok(seg) => {
            let mut rx = StateConsumer::<Numbered>::new(&seg, "life/state").expect("consumer");
            let got = rx.fetch().expect("fetch").expect("published");
            assert!(numbered_ok(&got));
            say(&format!(
                "result ok n={} seq={}",
                got.n,
                StateRef::seq(&got)
            ));
        }
        Err(e) => say(&format!("result error {e:?}")),
    }
    say(&format!("vmhwm {}", vm_hwm_kib()));
    0
}

/// Whether the next fork's child waits, in a fork handler that runs before rtipc's, for a line
/// on stdin.
static STALL_CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn stall_child() {
    if STALL_CHILD.load(std::sync::atomic::Ordering::Relaxed) {
        let msg = b"stalled\n";
        let mut byte = 0u8;
        // SAFETY: write and read are async-signal-safe; both buffers are live locals.
        let written = unsafe { libc::write(1, msg.as_ptr().cast(), msg.len()) };
        // SAFETY: as above; blocks until the test writes to our stdin (or closes it).
        let read = unsafe { libc::read(0, (&raw mut byte).cast(), 1) };
        let _ = (written, read);
    }
}

/// A child stopped before it runs rtipc's fork handler: registers a fork handler of its own
/// before rtipc registers its handlers (child handlers run in the order they were registered),
/// creates the `life_channels` segment `name`, claims the producer ends of `life/state` and
/// `life/up` as `fork` does, prints `forking`, and forks a child that stops itself in that
/// handler, printing `stalled`, until a line arrives on stdin. While rtipc holds locks, `fork`
/// returns in the parent only once the child has closed its copies, so the parent stays inside
/// `fork` until the child is released. The child, once released, prints `continued PID` and
/// sleeps; the parent, if it is still alive, prints `forked PID` and idles until killed.
pub fn fork_stall(name: &str) -> i32 {
    // SAFETY: registers a function that lives for the program's life; no rtipc lock exists
    // yet, so rtipc's handlers are registered after it.
    let r = unsafe { libc::pthread_atfork(None, None, Some(stall_child)) };
    assert_eq!(r, 0, "pthread_atfork");
    let seg = life_channels(Segment::builder())
        .create(name)
        .expect("create");
    let mut tx = StateProducer::<Numbered>::new(&seg, "life/state").expect("life/state");
    let own_peer = Segment::open(name).expect("open as a peer");
    let mut up = StateProducer::<Numbered>::new(&own_peer, "life/up").expect("life/up");
    publish_next(&mut tx);
    publish_next(&mut up);
    STALL_CHILD.store(true, std::sync::atomic::Ordering::Relaxed);
    say("forking");
    let child = fork_now();
    if child == 0 {
        say(&format!("continued {}", std::process::id()));
        std::thread::sleep(IDLE_LIMIT);
        exit_now(0);
    }
    say(&format!("forked {child}"));
    let code = idle();
    drop((tx, up, seg, own_peer));
    code
}

/// A parent killed the moment `fork` returns: creates the `life_channels` segment `name`,
/// claims the producer end of `life/up`, forks a child that sleeps (holding every descriptor it
/// inherited), prints `forked PID`, and kills itself with SIGKILL at once.
pub fn fork_then_die(name: &str) -> i32 {
    let seg = life_channels(Segment::builder())
        .create(name)
        .expect("create");
    let own_peer = Segment::open(name).expect("open as a peer");
    let mut up = StateProducer::<Numbered>::new(&own_peer, "life/up").expect("life/up");
    publish_next(&mut up);
    let child = fork_now();
    if child == 0 {
        std::thread::sleep(IDLE_LIMIT);
        exit_now(0);
    }
    // SAFETY: sends SIGKILL to this very process (`raise` is `kill(getpid(), sig)`).
    unsafe { libc::raise(libc::SIGKILL) };
    say(&format!("survived {child}"));
    drop((up, seg, own_peer));
    1
}

//! The peer process of the cross-process tests: attaches to a segment made by the test and
//! plays one [`Role`], given as `ROLE TARGET COUNT`. Exit code 0 means the role completed and
//! every check passed; 2 means an unknown role.

#[path = "../common/mod.rs"]
mod common;
#[path = "crash.rs"]
mod crash;
#[path = "fanout.rs"]
mod fanout;
#[path = "life.rs"]
mod life;
#[path = "record.rs"]
mod record;
#[path = "region.rs"]
mod region;

use std::time::Duration;

use common::*;
use rtipc::handshake::{self, Listener};
use rtipc::{
    DataError, Error, Observed, QueueConsumer, QueueObserver, QueueProducer, RecordConsumer,
    RecordProducer, Segment, Stage, StateConsumer, StateObserver, StateProducer, StateRef,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let role: Role = match arg(1).parse() {
        Ok(role) => role,
        Err(e) => {
            eprintln!("peer: {e}");
            std::process::exit(2);
        }
    };
    let name = arg(2);
    let count: u64 = arg(3).parse().unwrap_or(0);
    let code = match role {
        Role::StressProducer => stress_producer(name, count),
        Role::Multi => multi(name, count),
        Role::SecondOnly => second_only(name, count),
        Role::Seccomp => seccomp(name, count),
        Role::WakeNamed => wake(&open(name), count),
        Role::WakeClient => wake_client(name, count),
        Role::Server => server(name, count),
        Role::QueueForce => queue_producer(name, count, true),
        Role::QueueTry => queue_producer(name, count, false),
        Role::LifeCreator => life::creator(name, count),
        Role::LifeReplacer => life::replacer(name),
        Role::LifeZombie => life::zombie(name, count),
        Role::LifeFork => life::fork(name),
        Role::LifeForkThenDie => life::fork_then_die(name),
        Role::LifeForkStall => life::fork_stall(name),
        Role::LifeFullShm => life::full_shm(name),
        Role::LifeSparse => life::sparse(name),
        Role::CrashStateProducer => crash::state_producer(&crash::open(name), count),
        Role::CrashQueueProducer => crash::queue_producer(name, count),
        Role::CrashStateConsumer => crash::state_consumer(name, count),
        Role::CrashQueueConsumer => crash::queue_consumer(name, count),
        Role::CrashCreator => crash::creator(name, count),
        Role::CrashRacer => crash::racer(name, Racer::from_code(count)),
        Role::FanoutConsumer => fanout::consumer(name, count),
        Role::FanoutVictim => fanout::victim(name, count),
        Role::FanoutObserver => fanout::observer(name, count),
        Role::QueueObserve => fanout::queue_observer(name, count),
        Role::QueuePop => fanout::queue_pop(name, count),
        Role::RegionAdd => region::add(name, count),
        Role::RegionPong => region::pong(name, count),
        Role::RegionWaiter => region::waiter(name, count),
        Role::RegionIdle => region::idle(name),
        Role::SysvCreator => sysv_creator(name),
        Role::RecordSend => record::send(&open(name), count, false),
        Role::RecordOverwrite => record::send(&open(name), count, true),
        Role::RecordTake => record::take(&open(name), count),
        Role::FaultCount => fault_count(name, count),
        Role::MemlockLimited => memlock_limited(name),
    };
    std::process::exit(code);
}

/// Locks its mapping of `name` (and of `name-warm`, for the warm-up), then counts its page
/// faults over `count` rounds (see `Role::FaultCount`).
fn fault_count(name: &str, count: u64) -> i32 {
    // The whole process first, as a real-time program would.
    let all = match rtipc::lock_all_memory() {
        Ok(()) => "yes",
        Err(Error::MemoryLockLimit { .. }) => "no",
        Err(e) => {
            eprintln!("peer: {e}");
            return 3;
        }
    };
    let warm = open(&format!("{name}-warm"));
    let seg = open(name);
    let mut locked = "yes";
    for s in [&warm, &seg] {
        match s.lock_memory() {
            Ok(()) => {}
            Err(Error::MemoryLockLimit { .. }) => {
                s.prefault().expect("prefault");
                locked = "no";
            }
            Err(e) => {
                eprintln!("peer: {e}");
                return 3;
            }
        }
    }
    let (minor, major) = fault_rounds(&warm, &seg, &FAULT_PEER, count);
    println!("faults minor={minor} major={major} locked={locked} all={all}");
    0
}

/// Drops every capability, limits `RLIMIT_MEMLOCK` to 64 KiB and tries to lock the segment.
fn memlock_limited(name: &str) -> i32 {
    let seg = open(name);
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [0u32; 6];
    // SAFETY: capset with a version-3 header and two zeroed data structs: drops every
    // capability of this thread's process.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if r != 0 {
        eprintln!("peer: capset: {}", std::io::Error::last_os_error());
        return 3;
    }
    let limit = libc::rlimit {
        rlim_cur: 64 << 10,
        rlim_max: 64 << 10,
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
        eprintln!("peer: setrlimit: {}", std::io::Error::last_os_error());
        return 3;
    }
    match seg.lock_memory() {
        Ok(()) => println!("locked"),
        Err(e) => println!("error {e:?}"),
    }
    match rtipc::lock_all_memory() {
        Ok(()) => println!("all locked"),
        Err(e) => println!("all error {e:?}"),
    }
    0
}

/// Attaches to the segment `name`, or to the System V segment `sysv:KEY`.
fn open(name: &str) -> Segment {
    let opened = match name.strip_prefix("sysv:").map(str::parse::<i32>) {
        Some(Ok(key)) => rtipc::SysvKey::new(key).and_then(Segment::open_sysv),
        _ => Segment::open(name),
    };
    match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer: cannot open `{name}`: {e}");
            std::process::exit(10);
        }
    }
}

/// Publishes `count` updates of `Big` on `big`, every word set to the update number.
fn stress_producer(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut tx = StateProducer::<Big>::new(&seg, "big").expect("producer");
    for seq in 1..=count {
        let mut g = tx.write().expect("write");
        g.words.fill(seq);
        assert_eq!(g.publish().expect("publish"), seq);
    }
    0
}

/// Consumes `down_small` and `down_big`, produces `up_small` and `up_mid`, `count` updates each.
fn multi(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut up_small = StateProducer::<Small>::new(&seg, "up_small").expect("up_small");
    let mut up_mid = StateProducer::<Mid>::new(&seg, "up_mid").expect("up_mid");
    let mut down_small = StateConsumer::<Small>::new(&seg, "down_small").expect("down_small");
    let mut down_big = StateConsumer::<Big>::new(&seg, "down_big").expect("down_big");
    let (mut last_small, mut last_big) = (0, 0);
    let mut sent = 0;
    while last_small < count || last_big < count || sent < count {
        if sent < count {
            sent += 1;
            up_small
                .publish_copy(&small(sent, TAG_UP))
                .expect("publish");
            let mut g = up_mid.write().expect("write");
            mid_fill(&mut g, sent);
            g.publish().expect("publish");
        }
        if let Some(s) = down_small.fetch().expect("fetch") {
            if StateRef::is_new(&s) {
                if s.seq <= last_small || s.seq != StateRef::seq(&s) || !small_ok(&s, TAG_DOWN) {
                    eprintln!("peer: bad down_small update {:?}", s.seq);
                    return 3;
                }
                last_small = s.seq;
            }
        }
        if let Some(b) = down_big.fetch().expect("fetch") {
            if StateRef::is_new(&b) {
                let seq = StateRef::seq(&b);
                if seq <= last_big || !big_ok(&b, seq ^ 0xB16) {
                    eprintln!("peer: bad down_big update {seq}");
                    return 4;
                }
                last_big = seq;
            }
        }
    }
    0
}

/// Maps only the second object (`Battery`) of the multi-object channel `robot`.
fn second_only(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut rx = StateConsumer::<Battery>::new(&seg, "robot").expect("battery");
    let mut last = 0;
    while last < count {
        if let Some(b) = rx.fetch().expect("fetch") {
            if StateRef::is_new(&b) {
                let want_volts = 12.0 + (b.seq % 100) as f32 / 100.0;
                if b.seq != StateRef::seq(&b)
                    || b.seq <= last
                    || b.volts != want_volts
                    || b.amps != -1.5
                {
                    eprintln!("peer: bad battery {:?} {} {}", b.seq, b.volts, b.amps);
                    return 3;
                }
                last = b.seq;
            }
        }
    }
    0
}

/// Pushes messages 1..=count on queue `numbers`: forced, or retried until there is room.
fn queue_producer(name: &str, count: u64, force: bool) -> i32 {
    let seg = open(name);
    let mut tx = QueueProducer::<Numbered>::new(&seg, "numbers").expect("queue producer");
    let mut refused = 0u64;
    for n in 1..=count {
        if force {
            tx.force_push(&numbered(n)).expect("force_push");
        } else {
            while !tx.try_push(&numbered(n)).expect("try_push") {
                refused += 1;
                // A consumer that went away will never make room: give up rather than spin on.
                if refused.is_multiple_of(1 << 20) && !tx.consumer_alive().unwrap_or(false) {
                    eprintln!("peer: the consumer is gone after {} messages", n - 1);
                    return 20;
                }
                std::hint::spin_loop();
            }
        }
    }
    assert_eq!(tx.pushed(), count);
    eprintln!("peer: pushed {count} messages, try_push refused {refused} times");
    0
}

/// Attaches, claims `up` and `qup` (producer) and `down` and `qdown` (consumer), then enters
/// seccomp strict mode, in which any system call but read, write and exit kills the process,
/// and runs `count` rounds of publish, fetch, push (spinning while the queue is full) and pop.
/// Exits through the raw `exit`
/// system call.
fn seccomp(name: &str, count: u64) -> i32 {
    let seg = open(name);
    let mut up = StateProducer::<Small>::new(&seg, "up").expect("up");
    let mut down = StateConsumer::<Small>::new(&seg, "down").expect("down");
    let mut qup = QueueProducer::<Small>::new(&seg, "qup").expect("qup");
    let mut qdown = QueueConsumer::<Small>::new(&seg, "qdown").expect("qdown");
    let mut extra = SeccompReaders::new(&seg);
    let (mut pushed, mut popped) = (0, 0);
    // SAFETY: prctl with valid arguments; afterwards only read/write/exit are allowed.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_STRICT as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return 20;
    }
    let mut code = 0;
    let mut last = 0;
    for seq in 1..=count {
        if up.publish_copy(&small(seq, TAG_UP)).is_err() {
            code = 5;
            break;
        }
        match down.fetch() {
            Ok(Some(s)) => {
                let seq = StateRef::seq(&s);
                if StateRef::is_new(&s) && (seq <= last || s.seq != seq || !small_ok(&s, TAG_DOWN))
                {
                    code = 6;
                    break;
                }
                last = seq;
            }
            Ok(None) => {}
            Err(_) => {
                code = 7;
                break;
            }
        }
        code = extra.round();
        if code != 0 {
            break;
        }
        // Every round pushes one message, waiting (spinning) while the parent drains a full
        // queue, so the parent can count exactly `count` messages.
        loop {
            match qup.try_push(&small(pushed + 1, TAG_UP)) {
                Ok(true) => break,
                Ok(false) => std::hint::spin_loop(),
                Err(_) => code = 9,
            }
            if code != 0 {
                break;
            }
        }
        pushed += 1;
        loop {
            match qdown.pop() {
                Ok(Some(m)) if m.seq == popped + 1 && small_ok(&m, TAG_DOWN) => popped += 1,
                Ok(Some(_)) => code = 10, // out of order or torn
                Ok(None) => break,
                Err(_) => code = 11,
            }
            if code != 0 {
                break;
            }
        }
        if code != 0 {
            break;
        }
    }
    if code == 0 && (last == 0 || popped == 0 || !extra.saw_all()) {
        code = 8; // never saw the parent's data
    }
    // SAFETY: the raw exit system call, allowed in strict mode (exit_group is not).
    unsafe { libc::syscall(libc::SYS_exit, code) };
    unreachable!()
}

/// The seccomp peer's other readers: a consumer end of a fan-out channel, and observers of a
/// state channel and a queue.
struct SeccompReaders {
    /// Record channels: one each way.
    rup: RecordProducer<Small>,
    rdown: RecordConsumer<Small>,
    rdown_last: u64,
    fan: StateConsumer<Small>,
    watch: StateObserver<Small>,
    qwatch: QueueObserver<Small>,
    fan_last: u64,
    watched: u64,
    qwatched: u64,
}

impl SeccompReaders {
    fn new(seg: &Segment) -> SeccompReaders {
        SeccompReaders {
            rup: RecordProducer::new(seg, "rup").expect("rup"),
            rdown: RecordConsumer::new(seg, "rdown").expect("rdown"),
            rdown_last: 0,
            fan: StateConsumer::new(seg, "fan").expect("fan"),
            watch: StateObserver::new(seg, "down").expect("watch down"),
            qwatch: QueueObserver::new(seg, "qdown").expect("watch qdown"),
            fan_last: 0,
            watched: 0,
            qwatched: 0,
        }
    }

    /// One round of each; an exit code, 0 if all is well.
    fn round(&mut self) -> i32 {
        // A record of 1 to 4 elements, each the record's number, unless the ring is full.
        let seq = self.rup.committed() + 1;
        match self.rup.try_reserve((seq % 4 + 1) as usize) {
            Ok(mut r) => {
                r.iter_mut().for_each(|s| *s = small(seq, TAG_UP));
                r.commit();
            }
            Err(DataError::NoRoom { .. }) => {}
            Err(_) => return 18,
        }
        loop {
            match self.rdown.pop() {
                Ok(Some(r)) => {
                    let seq = r.seq();
                    if seq != self.rdown_last + 1
                        || r.len() as u64 != seq % 4 + 1
                        || !r.iter().all(|s| s.seq == seq && small_ok(s, TAG_DOWN))
                    {
                        return 19;
                    }
                    self.rdown_last = seq;
                }
                Ok(None) => break,
                Err(_) => return 19,
            }
        }
        match self.fan.fetch() {
            Ok(Some(s)) if StateRef::is_new(&s) => {
                let seq = StateRef::seq(&s);
                if seq <= self.fan_last || s.seq != seq || !small_ok(&s, TAG_DOWN) {
                    return 12;
                }
                self.fan_last = seq;
            }
            Ok(_) => {}
            Err(_) => return 13,
        }
        match self.watch.observe() {
            Ok(Some(o)) if Observed::is_new(&o) => {
                let seq = Observed::seq(&o);
                if seq <= self.watched || o.seq != seq || !small_ok(&o, TAG_DOWN) {
                    return 14;
                }
                self.watched = seq;
            }
            Ok(_) | Err(DataError::Lapped) => {}
            Err(_) => return 15,
        }
        match self.qwatch.observe() {
            Ok(Some(m)) => {
                let seq = Observed::seq(&m);
                if seq <= self.qwatched || m.seq != seq || !small_ok(&m, TAG_DOWN) {
                    return 16;
                }
                self.qwatched = seq;
            }
            Ok(None) => {}
            Err(_) => return 17,
        }
        0
    }

    fn saw_all(&self) -> bool {
        self.fan_last > 0 && self.watched > 0 && self.qwatched > 0 && self.rdown_last > 0
    }
}

/// The producing side of the wake-up tests: publishes `ping` number k once the parent has
/// answered k - 1 on `pong` and had time to fall asleep again, so that every ping finds the
/// parent blocked in `wait`.
fn wake(seg: &Segment, count: u64) -> i32 {
    let mut ping = StateProducer::<Stamp>::new(seg, "ping").expect("ping");
    let mut pong = StateConsumer::<Stamp>::new(seg, "pong").expect("pong");
    for k in 1..=count {
        std::thread::sleep(Duration::from_micros(300));
        ping.publish_copy(&Stamp {
            seq: k,
            sent_ns: monotonic_ns(),
        })
        .expect("publish");
        if !wait_for_seq(&mut pong, k, |s| s.seq) {
            eprintln!("peer: no pong {k}");
            return 3;
        }
    }
    0
}

/// `wake` through a segment received with the handshake (eventfd wake-ups).
fn wake_client(path: &str, count: u64) -> i32 {
    let conn = match handshake::connect(path, &wake_channels(Segment::builder())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peer: connect: {e}");
            return 10;
        }
    };
    wake(conn.segment(), count)
}

/// A listener that counts the handshakes that fail (the robustness test sends thousands of
/// malformed ones), then serves the first client that attaches: echoes `rounds` commands
/// (`cmd` k answered by `echo` with seq k and tag 3k) and waits until the client has gone.
/// Prints `errors N timeouts T` on stdout.
fn server(path: &str, rounds: u64) -> i32 {
    let listener = match Listener::bind(path) {
        Ok(l) => l
            // Long enough for the real client's handshake on a loaded machine; each silent
            // client of the robustness test costs it once.
            .handshake_timeout(Duration::from_secs(1))
            .accept_timeout(Some(Duration::from_secs(120))),
        Err(e) => {
            eprintln!("server: bind: {e}");
            return 10;
        }
    };
    println!("ready");
    let (mut errors, mut timeouts) = (0u64, 0u64);
    let conn = loop {
        match listener.accept(|req| {
            if req.channels().iter().any(|c| c.name() == "cmd") {
                Ok(())
            } else {
                Err("no `cmd` channel".into())
            }
        }) {
            Ok(c) => break c,
            Err(Error::Timeout {
                stage: Stage::WaitingForClient,
            }) => {
                eprintln!("server: nobody came");
                return 11;
            }
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(_) => errors += 1,
        }
    };
    if conn.segment().user_meta("cmd").ok() != Some(&b"commands"[..]) {
        return 12;
    }
    let mut cmd = StateConsumer::<Small>::new(conn.segment(), "cmd").expect("cmd");
    let mut echo = StateProducer::<Small>::new(conn.segment(), "echo").expect("echo");
    for k in 1..=rounds {
        if !wait_for_seq(&mut cmd, k, |s| s.seq) {
            eprintln!("server: no command {k}");
            return 13;
        }
        echo.publish_copy(&small(k, 3 * k as u32)).expect("echo");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while conn.peer_alive() {
        if std::time::Instant::now() > deadline {
            return 14;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("errors {errors} timeouts {timeouts}");
    0
}

/// Creates the System V tests' segment under the key of `sysv:KEY` and idles until killed.
fn sysv_creator(target: &str) -> i32 {
    let Some(Ok(key)) = target.strip_prefix("sysv:").map(str::parse::<i32>) else {
        eprintln!("peer: `{target}` is not sysv:KEY");
        return 2;
    };
    let seg = match rtipc::SysvKey::new(key).and_then(|k| sysv_declaration().create_sysv(k)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer: cannot create {target}: {e}");
            return 10;
        }
    };
    println!("ready {}", std::process::id());
    let _keep = seg;
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

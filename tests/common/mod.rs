//! Object types and helpers shared by the cross-process tests and their peer binary
//! (`tests/support/peer.rs` includes this file with `#[path]`): the objects and their checks,
//! the channels of the wake-up and handshake tests, the crash tests' declarations, value checks
//! and report lines, the peer's roles, unique segment and socket names, spawning and watching
//! the peer, and reading and writing a segment's bytes.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rtipc::{ChannelSpec, Direction, Object, Segment, SegmentBuilder, StateConsumer};

// --- Objects. ---------------------------------------------------------------------------------

/// 4 KiB: every word carries the update number.
#[derive(Object)]
#[repr(C)]
pub struct Big {
    pub words: [u64; 512],
}

/// A small message with a channel tag and a check word.
#[derive(Object)]
#[repr(C)]
pub struct Small {
    pub seq: u64,
    pub tag: u32,
    pub check: u32,
}

/// 256 bytes.
#[derive(Object)]
#[repr(C)]
pub struct Mid {
    pub seq: u64,
    pub data: [u32; 62],
}

/// First object of the multi-object channel.
#[derive(Object)]
#[repr(C)]
pub struct Pose {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// Second object of the multi-object channel.
#[derive(Object)]
#[repr(C)]
pub struct Battery {
    pub seq: u64,
    pub volts: f32,
    pub amps: f32,
}

/// The check word of a `Small` with this sequence number and tag.
pub fn small_check(seq: u64, tag: u32) -> u32 {
    (seq as u32).wrapping_mul(2_654_435_761) ^ tag
}

pub fn small(seq: u64, tag: u32) -> Small {
    Small {
        seq,
        tag,
        check: small_check(seq, tag),
    }
}

pub fn small_ok(s: &Small, tag: u32) -> bool {
    s.tag == tag && s.check == small_check(s.seq, tag)
}

pub fn mid_fill(m: &mut Mid, seq: u64) {
    m.seq = seq;
    for (i, d) in m.data.iter_mut().enumerate() {
        *d = (seq as u32).wrapping_add(i as u32);
    }
}

pub fn mid_ok(m: &Mid) -> bool {
    m.data
        .iter()
        .enumerate()
        .all(|(i, &d)| d == (m.seq as u32).wrapping_add(i as u32))
}

pub fn big_ok(b: &Big, seq: u64) -> bool {
    b.words.iter().all(|&w| w == seq)
}

pub const TAG_DOWN: u32 = 0xD0D0;
pub const TAG_UP: u32 = 0x0B0B;

/// A wake-up probe: its sequence number and when it was published.
#[derive(Object)]
#[repr(C)]
pub struct Stamp {
    pub seq: u64,
    /// `CLOCK_MONOTONIC` at publish, in nanoseconds (the same clock in every process).
    pub sent_ns: u64,
}

/// `CLOCK_MONOTONIC` in nanoseconds: comparable across processes, unlike `Instant`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A numbered queue message with a check word.
#[derive(Object)]
#[repr(C)]
pub struct Numbered {
    pub n: u64,
    pub check: u64,
}

pub fn numbered(n: u64) -> Numbered {
    Numbered {
        n,
        check: n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
}

pub fn numbered_ok(m: &Numbered) -> bool {
    m.check == m.n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

// --- Records. --------------------------------------------------------------------------------

/// One element of the record-channel tests: records are `[RecWord]`.
#[derive(Object)]
#[repr(C)]
pub struct RecWord {
    pub v: u64,
}

/// Word `i` of record `seq`.
pub fn rec_word(seq: u64, i: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// The length of record `seq`, in elements, for a channel whose longest record is `max`:
/// mostly small, some of a few KiB, one in a hundred up to `max`, every 10,000th exactly `max`.
pub fn rec_len(seq: u64, max: u64) -> u64 {
    let h = rec_word(seq, 77) >> 11;
    if seq.is_multiple_of(10_000) {
        max
    } else if h % 1000 < 900 {
        1 + h % 64
    } else if h % 1000 < 990 {
        1 + h % 2048.min(max)
    } else {
        1 + h % max
    }
}

/// The longest record the tests send on a channel whose longest is `channel_max` elements.
pub fn rec_max(channel_max: usize) -> u64 {
    REC_MAX.min(channel_max as u64)
}

/// Fills record `seq`.
pub fn rec_fill(r: &mut [RecWord], seq: u64) {
    for (i, w) in r.iter_mut().enumerate() {
        w.v = rec_word(seq, i as u64);
    }
}

/// Whether record `seq` is whole: every word as [`rec_fill`] wrote it.
pub fn rec_ok(r: &[RecWord], seq: u64) -> bool {
    r.iter()
        .enumerate()
        .all(|(i, w)| w.v == rec_word(seq, i as u64))
}

/// The segment of the page-fault tests: a state channel and a queue of `Small` each way
/// (4 KiB-aligned objects would do the same), locked in the creator's memory if `lock`.
pub fn fault_segment(name: &str, lock: bool) -> Segment {
    Segment::builder()
        .state::<Small>("down", Direction::CreatorToPeer)
        .state::<Small>("up", Direction::PeerToCreator)
        .queue::<Small>("qdown", Direction::CreatorToPeer, 512)
        .queue::<Small>("qup", Direction::PeerToCreator, 512)
        .lock_memory(lock)
        .create(name)
        .unwrap()
}

/// Minor and major page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`).
pub fn thread_faults() -> (u64, u64) {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the value we pass.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) }, 0);
    (r.ru_minflt as u64, r.ru_majflt as u64)
}

/// The two ends of each direction of a page-fault segment: which channels a side writes and
/// which it reads, and the tags of each.
pub struct FaultSide {
    pub out: (&'static str, &'static str),
    pub inp: (&'static str, &'static str),
    pub tags: (u32, u32),
}

/// The creator's side and the peer's.
pub const FAULT_CREATOR: FaultSide = FaultSide {
    out: ("down", "qdown"),
    inp: ("up", "qup"),
    tags: (TAG_DOWN, TAG_UP),
};
pub const FAULT_PEER: FaultSide = FaultSide {
    out: ("up", "qup"),
    inp: ("down", "qdown"),
    tags: (TAG_UP, TAG_DOWN),
};

/// One side of the page-fault test: `rounds` rounds of publishing and pushing, fetching and
/// popping (checking what arrives) on `warm`, a segment of the same declaration, so that the
/// code and the stack are faulted in, then as many on `seg`, whose slots this process has not
/// touched yet. Returns the page faults of the calling thread during the rounds on `seg`.
pub fn fault_rounds(warm: &Segment, seg: &Segment, side: &FaultSide, rounds: u64) -> (u64, u64) {
    let mut result = (0, 0);
    for (measured, seg) in [(false, warm), (true, seg)] {
        let mut tx = rtipc::StateProducer::<Small>::new(seg, side.out.0).unwrap();
        let mut qtx = rtipc::QueueProducer::<Small>::new(seg, side.out.1).unwrap();
        let mut rx = StateConsumer::<Small>::new(seg, side.inp.0).unwrap();
        let mut qrx = rtipc::QueueConsumer::<Small>::new(seg, side.inp.1).unwrap();
        let before = thread_faults();
        for seq in 1..=rounds {
            tx.publish_copy(&small(seq, side.tags.0)).unwrap();
            let _ = qtx.force_push(&small(seq, side.tags.0)).unwrap();
            if let Some(s) = rx.fetch().unwrap() {
                assert!(small_ok(&s, side.tags.1));
            }
            while let Some(m) = qrx.pop().unwrap() {
                assert!(small_ok(&m, side.tags.1));
            }
        }
        let after = thread_faults();
        if measured {
            result = (after.0 - before.0, after.1 - before.1);
        }
    }
    result
}

/// The longest record of the record tests: 1 MiB.
pub const REC_MAX: u64 = 1 << 17;

/// The segment of the record tests: record channel `records` with a ring of `ring` bytes,
/// notify-enabled.
pub fn record_segment(name: &str, direction: Direction, ring: u64) -> Segment {
    Segment::builder()
        .channel(
            ChannelSpec::record("records", direction, ring)
                .object::<RecWord>()
                .notify(true),
        )
        .create(name)
        .unwrap()
}

/// xorshift64*: the random moments, repeatable from the seed it prints.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("RTIPC_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| monotonic_ns() ^ u64::from(std::process::id()) << 32);
        println!("{test}: RTIPC_SEED={seed}");
        let mixed = test.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(mixed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform from 0 to `max`.
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.next() % (max.as_nanos() as u64 + 1))
    }
}

// --- Channels. --------------------------------------------------------------------------------

/// The channels of the several-channels test: small and big updates from the creator, small
/// and mid-sized ones from the peer (`Role::Multi`).
pub fn multi_declaration() -> SegmentBuilder {
    Segment::builder()
        .state::<Small>("down_small", Direction::CreatorToPeer)
        .state::<Mid>("up_mid", Direction::PeerToCreator)
        .state::<Big>("down_big", Direction::CreatorToPeer)
        .state::<Small>("up_small", Direction::PeerToCreator)
}

/// The creator's side of the several-channels test, against a `Role::Multi` peer on `target`
/// (a segment name or `sysv:KEY`): publishes `updates` updates on each of its channels and
/// checks every new update of the peer's until the last of each.
pub fn multi_run(seg: &Segment, target: &str, updates: u64) {
    let mut down_small = rtipc::StateProducer::<Small>::new(seg, "down_small").unwrap();
    let mut down_big = rtipc::StateProducer::<Big>::new(seg, "down_big").unwrap();
    let mut up_small = StateConsumer::<Small>::new(seg, "up_small").unwrap();
    let mut up_mid = StateConsumer::<Mid>::new(seg, "up_mid").unwrap();
    let mut peer = spawn_peer(Role::Multi, target, updates);
    let (mut sent, mut last_small, mut last_mid) = (0u64, 0u64, 0u64);
    until(&mut peer, Duration::from_secs(120), || {
        if sent < updates {
            sent += 1;
            down_small.publish_copy(&small(sent, TAG_DOWN)).unwrap();
            let mut g = down_big.write().unwrap();
            g.words.fill(sent ^ 0xB16);
            g.publish().unwrap();
        }
        if let Some(s) = up_small.fetch().unwrap() {
            if rtipc::StateRef::is_new(&s) {
                assert!(s.seq > last_small && s.seq == rtipc::StateRef::seq(&s));
                assert!(small_ok(&s, TAG_UP), "up_small carries the peer's tag");
                last_small = s.seq;
            }
        }
        if let Some(m) = up_mid.fetch().unwrap() {
            if rtipc::StateRef::is_new(&m) {
                assert!(m.seq > last_mid && m.seq == rtipc::StateRef::seq(&m));
                assert!(mid_ok(&m), "up_mid pattern");
                last_mid = m.seq;
            }
        }
        sent == updates && last_small == updates && last_mid == updates
    });
    wait_peer(peer, Duration::from_secs(60));
    assert_eq!((last_small, last_mid), (updates, updates));
}

/// The channels of the wake-up tests: `ping` from the peer (or client), `pong` back, both
/// notify-enabled.
pub fn wake_channels(builder: SegmentBuilder) -> SegmentBuilder {
    builder
        .channel(
            ChannelSpec::state("ping", Direction::PeerToCreator)
                .object::<Stamp>()
                .notify(true),
        )
        .channel(
            ChannelSpec::state("pong", Direction::CreatorToPeer)
                .object::<Stamp>()
                .notify(true),
        )
}

/// The channels of the handshake tests: `cmd` from the client, `echo` back. The server creates
/// the segment, so the client is its peer: client to server is `PeerToCreator`.
pub fn echo_channels(builder: SegmentBuilder) -> SegmentBuilder {
    builder
        .channel(
            ChannelSpec::state("cmd", Direction::PeerToCreator)
                .object::<Small>()
                .notify(true)
                .user_meta(*b"commands"),
        )
        .channel(
            ChannelSpec::state("echo", Direction::CreatorToPeer)
                .object::<Small>()
                .notify(true),
        )
}

/// Waits (blocking, notified) until `rx` has an update with sequence number `seq` or more;
/// false on a 10 s timeout.
pub fn wait_for_seq<T: Object>(
    rx: &mut StateConsumer<T>,
    seq: u64,
    got: impl Fn(&T) -> u64,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(s)) = rx.fetch() {
            if got(&s) >= seq {
                return true;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !rx.wait(Some(left)).unwrap_or(false) {
            return false;
        }
    }
}

// --- The crash tests. ------------------------------------------------------------------------

/// 512 bytes: every word carries the sequence number of the update or message, so that a torn
/// value (words of two values) or a foreign one (another value's number) shows.
#[derive(Object)]
#[repr(C)]
pub struct Payload {
    pub words: [u64; 64],
}

/// The capacity of the crash tests' queue: small, so that the producer laps the consumer often.
pub const CRASH_QUEUE_CAPACITY: u32 = 8;

/// The channels of the crash tests: state channel `state` and queue `queue`, both `direction`.
pub fn crash_channels(builder: SegmentBuilder, direction: Direction) -> SegmentBuilder {
    builder
        .state::<Payload>("state", direction)
        .queue::<Payload>("queue", direction, CRASH_QUEUE_CAPACITY)
}

/// The declaration of the creator scenarios: the creator publishes on `state`.
pub fn crash_declaration() -> SegmentBuilder {
    crash_channels(Segment::builder(), Direction::CreatorToPeer)
}

/// Another declaration under the same name: one channel more.
pub fn crash_other_declaration() -> SegmentBuilder {
    crash_declaration().state::<Payload>("extra", Direction::CreatorToPeer)
}

/// What a [`Role::CrashRacer`] does with the stale segment; its `count` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Racer {
    /// `create` with the stale segment's declaration: resumes it.
    Resume,
    /// `create` with another declaration and `replace_stale(true)`: replaces it.
    Replace,
}

impl Racer {
    pub const fn code(self) -> u64 {
        match self {
            Racer::Resume => 0,
            Racer::Replace => 1,
        }
    }

    pub const fn from_code(code: u64) -> Racer {
        if code == 0 {
            Racer::Resume
        } else {
            Racer::Replace
        }
    }

    /// The builder the racer creates with.
    pub fn builder(self) -> SegmentBuilder {
        match self {
            Racer::Resume => crash_declaration(),
            Racer::Replace => crash_other_declaration().replace_stale(true),
        }
    }
}

/// What is wrong with a value that should carry its sequence number in every word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadValue {
    /// Its words differ: written while it was read, or parts of two values.
    Torn { at: usize, word: u64, first: u64 },
    /// Every word the same, but another value's number.
    Foreign { found: u64 },
}

/// Checks that every word of `p` is `seq`, on one copy of it (so that what is reported is what
/// was read).
pub fn check_payload(p: &Payload, seq: u64) -> Result<(), BadValue> {
    let words = p.words;
    if words.iter().all(|&w| w == seq) {
        return Ok(());
    }
    let first = words[0];
    match words.iter().position(|&w| w != first) {
        Some(at) => Err(BadValue::Torn {
            at,
            word: words[at],
            first,
        }),
        None => Err(BadValue::Foreign { found: first }),
    }
}

/// A problem in a stream of values that a consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The value does not carry the sequence number it was given.
    Bad { seq: u64, bad: BadValue },
    /// A new value whose number is not after the last one's.
    Order { seq: u64, last: u64 },
    /// The count of missed values does not fill the gap to the last one.
    Missed { seq: u64, last: u64, missed: u64 },
    /// A value reported as unchanged under another number than the last one.
    Unchanged { seq: u64, last: u64 },
    /// A publish or push numbered otherwise than one after the producer's last.
    Numbered { got: u64, expected: u64 },
}

impl Problem {
    /// The word the crash tests count it under.
    pub const fn kind(self) -> &'static str {
        match self {
            Problem::Bad {
                bad: BadValue::Torn { .. },
                ..
            } => "torn",
            Problem::Bad {
                bad: BadValue::Foreign { .. },
                ..
            } => "foreign",
            Problem::Order { .. } | Problem::Unchanged { .. } => "order",
            Problem::Missed { .. } => "missed",
            Problem::Numbered { .. } => "numbered",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", self.kind())?;
        match *self {
            Problem::Bad {
                seq,
                bad: BadValue::Torn { at, word, first },
            } => write!(f, "value {seq}: word 0 is {first}, word {at} is {word}"),
            Problem::Bad {
                seq,
                bad: BadValue::Foreign { found },
            } => write!(f, "value {seq}: every word is {found}"),
            Problem::Order { seq, last } => write!(f, "value {seq} after {last}"),
            Problem::Missed { seq, last, missed } => {
                write!(f, "value {seq} after {last} reports {missed} missed")
            }
            Problem::Unchanged { seq, last } => write!(f, "unchanged value {seq} after {last}"),
            Problem::Numbered { got, expected } => {
                write!(f, "got number {got}, expected {expected}")
            }
        }
    }
}

/// Checks a stream of fetched updates or popped messages: every value against its number, the
/// order, and the count of missed values.
#[derive(Clone, Debug, Default)]
pub struct StreamCheck {
    /// The number of the last value read; `None` until the first when the stream's past is
    /// unknown (a consumer that took over from another).
    pub last: Option<u64>,
    /// New values checked.
    pub values: u64,
    /// Reads checked, new or not.
    pub reads: u64,
    pub torn: u64,
    pub foreign: u64,
    pub order: u64,
    pub missed: u64,
}

impl StreamCheck {
    /// A check of a stream read from its beginning (a consumer on a fresh channel).
    pub fn from_start() -> StreamCheck {
        StreamCheck {
            last: Some(0),
            ..StreamCheck::default()
        }
    }

    /// Checks one read: value `p` given number `seq`, new or not, with `missed` values skipped
    /// before it (by the library's count). Calls `problem` for each problem found.
    pub fn read(
        &mut self,
        p: &Payload,
        seq: u64,
        new: bool,
        missed: u64,
        mut problem: impl FnMut(Problem),
    ) {
        self.reads += 1;
        let mut found = |this: &mut StreamCheck, pr: Problem| {
            match pr.kind() {
                "torn" => this.torn += 1,
                "foreign" => this.foreign += 1,
                "missed" => this.missed += 1,
                _ => this.order += 1,
            }
            problem(pr);
        };
        if let Err(bad) = check_payload(p, seq) {
            found(self, Problem::Bad { seq, bad });
        }
        match (self.last, new) {
            (Some(last), true) if seq <= last => found(self, Problem::Order { seq, last }),
            (Some(last), true) if missed != seq - last - 1 => {
                found(self, Problem::Missed { seq, last, missed });
            }
            (Some(last), false) if seq != last => found(self, Problem::Unchanged { seq, last }),
            _ => {}
        }
        if new {
            self.values += 1;
        }
        self.last = Some(seq);
    }

    /// Problems found: torn or foreign values.
    pub fn torn_or_foreign(&self) -> u64 {
        self.torn + self.foreign
    }

    /// Problems found: all kinds.
    pub fn problems(&self) -> u64 {
        self.torn + self.foreign + self.order + self.missed
    }
}

/// The lines a crash role prints on stdout, one per event; the crash tests read them from the
/// pipe, also after killing the role (what it wrote before stays in the pipe).
pub mod crash_line {
    /// `claimed N`: the role holds its end; N is the channel's count so far.
    pub const CLAIMED: &str = "claimed";
    /// `claim-failed ERROR`: the role could not claim its end (exit code 3).
    pub const CLAIM_FAILED: &str = "claim-failed";
    /// `creating`: the creator role calls `create`.
    pub const CREATING: &str = "creating";
    /// `created`: the creator role has its segment.
    pub const CREATED: &str = "created";
    /// `create-failed ERROR`: the creator role could not create it (exit code 3).
    pub const CREATE_FAILED: &str = "create-failed";
    /// `problem KIND TEXT`: a problem found (the first 100; the progress lines count all).
    pub const PROBLEM: &str = "problem";
    /// `progress values=N last=S problems=P`: after the first value, then every 4096 values or
    /// every millisecond, and at the end.
    pub const PROGRESS: &str = "progress";
    /// `error ERROR`: a data-path error (exit code 4).
    pub const ERROR: &str = "error";
    /// `ready`: a racer waits for the line that starts it.
    pub const READY: &str = "ready";
    /// `BEGAN ENDED ok` / `BEGAN ENDED err VARIANT: TEXT`: a racer's outcome, after the span of
    /// its `create` call in `CLOCK_MONOTONIC` nanoseconds.
    pub const OK: &str = "ok";
    pub const ERR: &str = "err";
}

// --- The peer process. ------------------------------------------------------------------------

/// What the peer binary does; its first argument, followed by a segment name or socket path
/// and a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishes `count` updates of `Big` on `big`.
    StressProducer,
    /// Consumes `down_small` and `down_big`, produces `up_small` and `up_mid`.
    Multi,
    /// Maps only the second object (`Battery`) of the multi-object channel `robot`.
    SecondOnly,
    /// Publishes and fetches in seccomp strict mode.
    Seccomp,
    /// Pings a parent that waits, in a named segment (futex).
    WakeNamed,
    /// Pings a parent that waits, through the handshake (eventfd).
    WakeClient,
    /// A listener that counts failed handshakes, then echoes a client's commands.
    Server,
    /// Pushes numbered messages on queue `numbers` with `force_push`.
    QueueForce,
    /// Pushes numbered messages on queue `numbers` with `try_push`, retrying when full.
    QueueTry,
    /// Lifecycle tests: creates a `life_channels` segment, holds both producer ends (`life/state`
    /// as the creator, `life/up` through its own peer handle), publishes `count` updates on
    /// `life/state` (0: until killed), prints `ready PID`, then idles until killed.
    LifeCreator,
    /// Lifecycle tests: replaces a stale segment with another declaration, then idles.
    LifeReplacer,
    /// Lifecycle tests: claims `life/up`, publishes `count` updates, prints `claimed PID`, exits
    /// when its stdin closes.
    LifeZombie,
    /// Lifecycle tests: claims an end, forks a child that drops everything, then one that sleeps.
    LifeFork,
    /// Forks a sleeping child and kills itself with SIGKILL the moment `fork` returns.
    LifeForkThenDie,
    /// Lifecycle tests: claims ends and forks a child that stops before rtipc's fork handler.
    LifeForkStall,
    /// Lifecycle tests: a 16 MiB segment in an 8 MiB tmpfs (run inside a mount namespace).
    LifeFullShm,
    /// Lifecycle tests: attaches a 64 GiB sparse memfd (target: `zero`, `header` or `huge-size`).
    LifeSparse,
    /// Crash tests: claims the producer end of state channel `state` and publishes `Payload`s
    /// as fast as it can, every word the update's sequence number (`count` updates; 0: until
    /// killed).
    CrashStateProducer,
    /// Crash tests: claims the producer end of queue `queue` and force-pushes `Payload`s as
    /// fast as it can, every word the message's number (`count` messages; 0: until killed).
    CrashQueueProducer,
    /// Crash tests: claims the consumer end of state channel `state` and checks every update it
    /// fetches (`count` new updates; 0: until killed).
    CrashStateConsumer,
    /// Crash tests: claims the consumer end of queue `queue` and checks every message it pops
    /// (`count` messages; 0: until killed).
    CrashQueueConsumer,
    /// Crash tests: creates (or resumes, or replaces) the segment with `crash_declaration`, then
    /// publishes on `state` like `CrashStateProducer`.
    CrashCreator,
    /// Crash tests: waits for a line on stdin, then creates the stale segment's successor as
    /// the `Racer` numbered `count` does; prints the outcome and holds the segment until stdin
    /// closes.
    CrashRacer,
    /// Fan-out tests: claims the first free consumer end of `pages` and checks every update
    /// until update `count`; prints a `done` line.
    FanoutConsumer,
    /// Fan-out tests: claims consumer end `count` of `pages` and checks every update until it
    /// is killed, printing `progress` lines.
    FanoutVictim,
    /// Fan-out tests: a `StateObserver` of `pages` that checks every copy until update `count`.
    FanoutObserver,
    /// Observer tests: a `QueueObserver` of queue `pages` that checks every message until
    /// message `count`.
    QueueObserve,
    /// Observer tests: pops queue `pages` until message `count`, checking every message.
    QueuePop,
    /// Regions: adds 1 to `shared.counter` `count` times.
    RegionAdd,
    /// Regions: `count` times, waits for `shared.ping`, stores twice `shared.value` in
    /// `shared.reply`, posts `shared.pong`.
    RegionPong,
    /// Regions: waits up to `count` ms for `shared.ping`; exits 0 if it timed out in time, 1
    /// if it got a unit, 3 if it returned too early.
    RegionWaiter,
    /// Regions: sleeps until killed (a poster that dies before posting).
    RegionIdle,
    /// System V: creates `sysv_declaration()` under the key of target `sysv:KEY`, says
    /// `ready PID`, then sleeps until killed.
    SysvCreator,
    /// Records: claims the producer of `records` and commits `count` more records (0: until
    /// killed) of `rec_len(seq, REC_MAX)` elements, waiting while the ring is full; prints
    /// `committed N` at the end.
    RecordSend,
    /// Records: as `RecordSend`, with records of up to 512 elements and `reserve_overwrite`
    /// (retrying while the consumer's held record is in the way); prints `dropped D` at the
    /// end.
    RecordOverwrite,
    /// Records: claims the consumer of `records` and checks every record until record
    /// `count`, printing `BAD ...` and exiting 1 at the first record out of order or torn, and
    /// `done last=S missed=M` at the end.
    RecordTake,
    /// Determinism: locks all its memory and its mapping of the `faults` segment, warms up,
    /// then counts its page faults over `count` rounds of publish, fetch, push and pop; prints
    /// `faults minor=N major=M locked=yes|no all=yes|no`.
    FaultCount,
    /// Determinism: drops its capabilities, limits `RLIMIT_MEMLOCK` to 64 KiB and tries to
    /// lock the `faults` segment; prints the error.
    MemlockLimited,
}

/// The line fan-out and observer roles print at the end: `done seen=N missed=M torn=T
/// backwards=B last=S`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderTally {
    /// Results with a new value.
    pub seen: u64,
    /// Updates or messages reported missed.
    pub missed: u64,
    /// Values whose words disagree with their number.
    pub torn: u64,
    /// Numbers that did not increase, or broke `previous + missed + 1`.
    pub backwards: u64,
    /// The last number seen.
    pub last: u64,
}

impl ReaderTally {
    /// Records a new value numbered `seq`, reported after `missed` missed ones, whose content
    /// is whole (`whole`).
    pub fn record(&mut self, seq: u64, missed: u64, whole: bool) {
        if !whole {
            self.torn += 1;
        }
        if seq <= self.last || seq != self.last + missed + 1 {
            self.backwards += 1;
        }
        self.seen += 1;
        self.missed += missed;
        self.last = seq;
    }

    /// The line.
    pub fn line(&self, word: &str) -> String {
        format!(
            "{word} seen={} missed={} torn={} backwards={} last={}",
            self.seen, self.missed, self.torn, self.backwards, self.last
        )
    }

    /// Parses a line made by [`ReaderTally::line`].
    pub fn parse(line: &str) -> Option<ReaderTally> {
        let mut t = ReaderTally::default();
        let mut fields = line.split_whitespace();
        fields.next()?;
        for f in fields {
            let (k, v) = f.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "seen" => t.seen = v,
                "missed" => t.missed = v,
                "torn" => t.torn = v,
                "backwards" => t.backwards = v,
                "last" => t.last = v,
                _ => return None,
            }
        }
        Some(t)
    }
}

impl Role {
    pub const ALL: [Role; 38] = [
        Role::StressProducer,
        Role::Multi,
        Role::SecondOnly,
        Role::Seccomp,
        Role::WakeNamed,
        Role::WakeClient,
        Role::Server,
        Role::QueueForce,
        Role::QueueTry,
        Role::LifeCreator,
        Role::LifeReplacer,
        Role::LifeZombie,
        Role::LifeFork,
        Role::LifeForkThenDie,
        Role::LifeForkStall,
        Role::LifeFullShm,
        Role::LifeSparse,
        Role::CrashStateProducer,
        Role::CrashQueueProducer,
        Role::CrashStateConsumer,
        Role::CrashQueueConsumer,
        Role::CrashCreator,
        Role::CrashRacer,
        Role::FanoutConsumer,
        Role::FanoutVictim,
        Role::FanoutObserver,
        Role::QueueObserve,
        Role::QueuePop,
        Role::RegionAdd,
        Role::RegionPong,
        Role::RegionWaiter,
        Role::RegionIdle,
        Role::SysvCreator,
        Role::RecordSend,
        Role::RecordOverwrite,
        Role::RecordTake,
        Role::FaultCount,
        Role::MemlockLimited,
    ];

    /// The role's name on the peer's command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::StressProducer => "stress-producer",
            Role::Multi => "multi",
            Role::SecondOnly => "second-only",
            Role::Seccomp => "seccomp",
            Role::WakeNamed => "wake-named",
            Role::WakeClient => "wake-client",
            Role::Server => "server",
            Role::QueueForce => "queue-force",
            Role::QueueTry => "queue-try",
            Role::LifeCreator => "life-creator",
            Role::LifeReplacer => "life-replacer",
            Role::LifeZombie => "life-zombie",
            Role::LifeFork => "life-fork",
            Role::LifeForkThenDie => "life-fork-then-die",
            Role::LifeForkStall => "life-fork-stall",
            Role::LifeFullShm => "life-full-shm",
            Role::LifeSparse => "life-sparse",
            Role::CrashStateProducer => "crash-state-producer",
            Role::CrashQueueProducer => "crash-queue-producer",
            Role::CrashStateConsumer => "crash-state-consumer",
            Role::CrashQueueConsumer => "crash-queue-consumer",
            Role::CrashCreator => "crash-creator",
            Role::CrashRacer => "crash-racer",
            Role::FanoutConsumer => "fanout-consumer",
            Role::FanoutVictim => "fanout-victim",
            Role::FanoutObserver => "fanout-observer",
            Role::QueueObserve => "queue-observe",
            Role::QueuePop => "queue-pop",
            Role::RegionAdd => "region-add",
            Role::RegionPong => "region-pong",
            Role::RegionWaiter => "region-waiter",
            Role::RegionIdle => "region-idle",
            Role::SysvCreator => "sysv-creator",
            Role::RecordSend => "record-send",
            Role::RecordOverwrite => "record-overwrite",
            Role::RecordTake => "record-take",
            Role::FaultCount => "fault-count",
            Role::MemlockLimited => "memlock-limited",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{s}`; the roles are {}", known.join(", "))
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The peer binary: Cargo tells integration tests where it is (and nothing else, so the peer,
/// which includes this file too, sees `None`).
const PEER_EXE: Option<&str> = option_env!("CARGO_BIN_EXE_rtipc-test-peer");

/// The command that runs the peer binary as `role` on `target` (a segment name or a socket
/// path) with `count`.
pub fn peer_command(role: Role, target: &str, count: u64) -> Command {
    let Some(exe) = PEER_EXE else {
        panic!("only integration tests know where the peer binary is");
    };
    let mut cmd = Command::new(exe);
    cmd.args([role.as_str(), target, &count.to_string()]);
    cmd
}

/// Spawns the peer binary as `role` on `target` with `count`.
pub fn spawn_peer(role: Role, target: &str, count: u64) -> Child {
    peer_command(role, target, count)
        .spawn()
        .expect("spawn peer")
}

/// Waits for the peer, failing the test if it takes longer than `limit` or exits non-zero.
pub fn wait_peer(mut child: Child, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "peer failed: {status}");
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("peer did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Calls `f` until it returns true; fails if `child` exits first or the time runs out.
pub fn until(child: &mut Child, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut n = 0u64;
    while !f() {
        n += 1;
        if n.is_multiple_of(4096) {
            if let Some(status) = child.try_wait().expect("wait") {
                // The peer is done; give the data one last chance to arrive.
                if f() {
                    return;
                }
                panic!("peer exited ({status}) before the expected data arrived");
            }
            assert!(start.elapsed() < limit, "timed out");
        }
    }
}

// --- Names. -----------------------------------------------------------------------------------

/// `rtipc-test-<pid>-<test>`, refusing a `test` that this process has used before: the pid
/// keeps test binaries apart, the registry keeps the tests of one binary (which run in
/// parallel) from sharing a segment or a socket.
pub fn unique_name(test: &str) -> String {
    static USED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        used.insert(test.to_owned()),
        "the name `{test}` is already used by another test of this binary"
    );
    format!("rtipc-test-{}-{test}", std::process::id())
}

/// A segment name of its own for `test`.
pub fn seg_name(test: &str) -> String {
    unique_name(test)
}

/// A unix socket path of its own for `test`, in the temporary directory.
pub fn sock_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.sock", unique_name(test)))
}

// --- A segment's bytes (rtipc::layout documents the format). ----------------------------------

/// Header: the cache-line size (u32).
pub const HEADER_CACHE_LINE: u64 = 20;
/// Header: the segment's size (u64).
pub const HEADER_SEGMENT_SIZE: u64 = 24;
/// Header: the stride of channel table entries (u32).
pub const HEADER_ENTRY_SIZE: u64 = 36;
/// Header: where the channel table starts (u64).
pub const HEADER_TABLE_OFFSET: u64 = 40;
/// Header: the creator's pid (u32).
pub const HEADER_CREATOR_PID: u64 = 80;
/// Channel table entry: where the slots start (u64).
pub const ENTRY_BUFFER_OFFSET: u64 = 32;
/// Channel table entry: where the control block starts (u64).
pub const ENTRY_CTRL_OFFSET: u64 = 48;

/// Control block line of a state channel's middle word.
pub const STATE_LINE_MIDDLE: u64 = 2;
/// Control block line where a queue's ring cells start.
pub const QUEUE_LINE_CELLS: u64 = 5;

/// The shared-memory file of the named segment `name`, for reading and writing.
pub fn shm_file(name: &str) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap()
}

pub fn read_u64(f: &File, at: u64) -> u64 {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).unwrap();
    u64::from_le_bytes(b)
}

pub fn read_u32(f: &File, at: u64) -> u32 {
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, at).unwrap();
    u32::from_le_bytes(b)
}

/// Writes the low `width` bytes of `value` at `at`.
pub fn write_n(f: &File, at: u64, width: usize, value: u64) {
    f.write_all_at(&value.to_le_bytes()[..width], at).unwrap();
}

/// The offset of channel `ch`'s table entry.
pub fn entry_offset(f: &File, ch: u64) -> u64 {
    read_u64(f, HEADER_TABLE_OFFSET) + ch * u64::from(read_u32(f, HEADER_ENTRY_SIZE))
}

/// The offset of line `line` of channel `ch`'s control block.
pub fn ctrl_line(f: &File, ch: u64, line: u64) -> u64 {
    let ctrl = read_u64(f, entry_offset(f, ch) + ENTRY_CTRL_OFFSET);
    ctrl + line * u64::from(read_u32(f, HEADER_CACHE_LINE))
}

// --- Descriptors. -----------------------------------------------------------------------------

pub fn dup(fd: BorrowedFd<'_>) -> OwnedFd {
    fd.try_clone_to_owned().unwrap()
}

/// A pipe: `(read end, write end)`.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two new descriptors.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: a new descriptor that nothing else owns.
    let r = unsafe { OwnedFd::from_raw_fd(p[0]) };
    // SAFETY: the same.
    let w = unsafe { OwnedFd::from_raw_fd(p[1]) };
    (r, w)
}

/// A memfd holding `bytes`, optionally sealed against growing and shrinking.
pub fn memfd(bytes: &[u8], seal: bool) -> OwnedFd {
    // SAFETY: valid name and flags.
    let fd = unsafe {
        libc::memfd_create(
            c"test".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0);
    // SAFETY: a new descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(bytes.len() as u64).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    if seal {
        // SAFETY: fcntl with integer arguments on a valid fd.
        let r = unsafe {
            libc::fcntl(
                file.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_GROW | libc::F_SEAL_SHRINK,
            )
        };
        assert_eq!(r, 0);
    }
    file.into()
}

/// Polls `fd` for input for up to `ms` milliseconds: its `revents`, or `None` on a timeout.
pub fn poll_in(fd: RawFd, ms: i32) -> Option<i16> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        1 => Some(pfd.revents),
        0 => None,
        r => panic!("poll returned {r}: {}", std::io::Error::last_os_error()),
    }
}

// --- Lifecycle (tests/lifecycle.rs and the peer's `Life*` roles). -----------------------------

/// The channels of the lifecycle tests: `life/state` from the creator (notify-enabled, so its
/// consumer can wait) and `life/up` from the peer, both carrying `Numbered` updates whose number
/// is the update's sequence number.
pub fn life_channels(builder: SegmentBuilder) -> SegmentBuilder {
    builder
        .channel(
            ChannelSpec::state("life/state", Direction::CreatorToPeer)
                .object::<Numbered>()
                .notify(true),
        )
        .channel(ChannelSpec::state("life/up", Direction::PeerToCreator).object::<Numbered>())
}

/// `life_channels` and one channel more: another declaration, which cannot resume theirs.
pub fn life_channels_other(builder: SegmentBuilder) -> SegmentBuilder {
    life_channels(builder)
        .channel(ChannelSpec::state("life/extra", Direction::CreatorToPeer).object::<Numbered>())
}

// --- Shared regions. ----------------------------------------------------------------------------

/// The region of the region tests.
#[derive(Object)]
#[rtipc(region)]
#[repr(C)]
pub struct Shared {
    pub counter: rtipc::region::AtomicU64,
    pub value: rtipc::region::AtomicU64,
    pub reply: rtipc::region::AtomicU64,
    pub ping: rtipc::region::Semaphore,
    pub pong: rtipc::region::Semaphore,
    pub started: rtipc::region::Event,
}

/// A segment with the region `shared`.
pub fn region_segment(name: &str) -> Segment {
    Segment::builder()
        .region::<Shared>("shared", |_| {})
        .replace_stale(true)
        .create(name)
        .expect("create the region segment")
}

// --- Fields of the format, each with a value that breaks it. -----------------------------------

/// Every header field, its offset and width, and a value that breaks it.
pub const HEADER_FIELDS: &[(&str, u64, usize, u64)] = &[
    ("magic", 0, 8, 0x1234),
    ("version", 8, 4, 1),
    ("header_size", 12, 4, 64),
    ("ready", 16, 4, 0),
    ("cache_line", 20, 4, 100),
    ("segment_size", 24, 8, 1 << 40),
    ("channel_count", 32, 4, 1000),
    ("entry_size", 36, 4, 64),
    ("table_offset", 40, 8, 1 << 40),
    ("buffers_offset", 48, 8, 64),
    ("buffers_len", 56, 8, u64::MAX),
    ("metadata_offset", 64, 8, u64::MAX - 8),
    ("metadata_len", 72, 8, 1 << 40),
    ("flags", 84, 4, 1),
    ("reserved", 96, 8, 1),
];
// `creator_pid` and `creation_token` are informational: whether the creator runs is the
// kernel's answer (its lock on the segment), so another value there is no error
// (`the_creator_fields_are_informational`).

/// Every table-entry field, its offset and width, and a value that breaks it.
pub const ENTRY_FIELDS: &[(&str, u64, usize, u64)] = &[
    ("kind", 0, 4, 9),
    ("direction", 4, 4, 3),
    ("slot_count", 8, 4, 4),
    ("object_count", 12, 4, 60),
    ("slot_size", 16, 8, 9),
    ("slot_stride", 24, 8, 1 << 62),
    ("buffer_offset", 32, 8, 64),
    ("buffer_len", 40, 8, 1 << 40),
    ("ctrl_offset", 48, 8, 1 << 40),
    ("ctrl_len", 56, 8, 64),
    ("objects_offset", 64, 8, 0),
    ("name_offset", 72, 8, u64::MAX - 1),
    ("name_len", 80, 4, 300),
    ("notify", 84, 4, 8),
    ("user_meta_offset", 88, 8, 4096),
    ("user_meta_len", 96, 8, 1 << 20),
    ("reserved", 104, 8, 1),
];

/// The declaration of the System V tests' segments.
pub fn sysv_declaration() -> SegmentBuilder {
    Segment::builder()
        .state::<Small>("arm", Direction::CreatorToPeer)
        .state::<Mid>("hand", Direction::PeerToCreator)
}

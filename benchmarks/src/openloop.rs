//! Open-loop latency, in the manner of cyclictest: a publisher in this process wakes at a fixed
//! rate on absolute deadlines (`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`), stamps
//! `CLOCK_MONOTONIC` into a state update (an 8-byte sequence number and the stamp) and publishes
//! it; a consumer in another process, pinned to the other core, busy-polls the channel or blocks
//! in `wait` (a futex on a named segment, an eventfd on an anonymous one) and reads the clock
//! when it has the update. The publisher never waits for the consumer: a consumer that falls
//! behind finds the newest update and counts those it missed, as a state channel's reader does.
//!
//! Every configuration runs idle and under a load that the harness starts itself (one process
//! per CPU, pinned, spinning through a buffer larger than the last-level cache), with both
//! processes at `SCHED_OTHER` and, where the process may use it, at `SCHED_FIFO`. Latencies go
//! into HDR histograms (3 significant digits); the exact minimum and maximum are kept beside
//! them. The run fails on any data error: every update's sequence number, its count of missed
//! updates and its stamp are checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rtipc::{Direction, Segment, StateConsumer, StateProducer, StateRef};

use crate::payload::Stamped;
use crate::sys::{
    self, now_ns, own_cpu_s, page_faults, pin_to, set_fifo, st, Ctrl, Ctx, Res, Shared, Spin,
    PATIENCE, READY,
};

/// The hidden first argument that makes the binary an open-loop consumer.
pub const ROLE: &str = "--open-loop-consumer";
/// The hidden first argument that makes the binary a load process.
pub const LOAD_ROLE: &str = "--open-loop-load";

/// The channel of every open-loop segment.
const CHANNEL: &str = "open_loop";
/// The rates measured, in Hz.
pub const RATES: [u64; 2] = [10_000, 1_000];
/// Warm-up before the recorded samples: this long at each rate (50 ms: 500 updates at 10 kHz,
/// 50 at 1 kHz), unrecorded.
pub const WARM_MS: u64 = 50;
/// The largest latency a histogram tracks (a minute); larger ones are recorded as this.
const HIST_MAX_NS: u64 = 60_000_000_000;
/// A block is quiet if everything but its own processes took at most this share of the CPUs'
/// time (percent) while it ran.
pub const QUIET_PCT: f64 = 1.0;
/// How long a blocked consumer waits for an update before it gives up.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// How the consumer learns of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fetches in a tight loop (an anonymous segment, no notification).
    Busy,
    /// Blocks in `wait`: a futex on a word of a named segment.
    Futex,
    /// Blocks in `wait`: the channel's eventfd, of an anonymous segment whose memfd and eventfd
    /// the consumer inherited.
    EventFd,
}

impl Mode {
    /// Every mode, in the order of the tables and plots.
    pub const ALL: [Mode; 3] = [Mode::Busy, Mode::Futex, Mode::EventFd];

    /// The mode's name in JSON and on the command line of the consumer process.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Busy => "busy_poll",
            Mode::Futex => "futex",
            Mode::EventFd => "eventfd",
        }
    }

    /// The mode's name in tables and plots.
    pub const fn label(self) -> &'static str {
        match self {
            Mode::Busy => "busy-poll",
            Mode::Futex => "wait (futex)",
            Mode::EventFd => "wait (eventfd)",
        }
    }

    /// Whether the consumer blocks (and so has a wake-up to measure).
    pub const fn blocks(self) -> bool {
        !matches!(self, Mode::Busy)
    }

    fn from_name(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// "10 kHz", "1 kHz".
pub fn rate_label(hz: u64) -> String {
    if hz.is_multiple_of(1000) {
        format!("{} kHz", hz / 1000)
    } else {
        format!("{hz} Hz")
    }
}

/// "SCHED_FIFO" or "SCHED_OTHER".
pub fn policy_label(fifo: bool) -> &'static str {
    if fifo {
        "SCHED_FIFO"
    } else {
        "SCHED_OTHER"
    }
}

/// One configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Updates per second.
    pub rate_hz: u64,
    /// How the consumer learns of an update.
    pub mode: Mode,
    /// Whether the load processes run.
    pub load: bool,
    /// Both processes at `SCHED_FIFO` (else `SCHED_OTHER`).
    pub fifo: bool,
    /// Recorded updates published (after the warm-up).
    pub samples: u64,
}

impl Config {
    /// The period in nanoseconds.
    pub fn period_ns(&self) -> u64 {
        1_000_000_000 / self.rate_hz
    }

    /// Unrecorded updates before the samples.
    pub fn warm(&self) -> u64 {
        (self.rate_hz * WARM_MS / 1000).max(1)
    }

    /// The name of its JSON line: `10khz_futex_load_fifo`.
    pub fn name(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            rate_label(self.rate_hz).replace(' ', "").to_lowercase(),
            self.mode.name(),
            if self.load { "load" } else { "idle" },
            if self.fifo { "fifo" } else { "other" }
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} {} {} {}, {} samples",
            rate_label(self.rate_hz),
            self.mode.label(),
            if self.load { "under load" } else { "idle" },
            policy_label(self.fifo),
            self.samples
        )
    }
}

/// How many samples per configuration, in how many blocks.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Recorded updates per configuration at 10 kHz.
    pub samples_10k: u64,
    /// Recorded updates per configuration at 1 kHz.
    pub samples_1k: u64,
    /// Rounds: each configuration runs as this many blocks of equal size, one per round, and
    /// every round runs one block of each configuration of its phase (idle or loaded) in an
    /// order rotated by one from the round before, so that all of them see the same machine.
    pub rounds: u64,
}

impl Plan {
    /// The version in the `--quick` and full runs: a few seconds of the whole grid, one round.
    pub fn small() -> Plan {
        Plan {
            samples_10k: 5_000,
            samples_1k: 500,
            rounds: 1,
        }
    }

    /// `--open-loop`: a million samples per configuration at 10 kHz (100 s each), 20,000 at
    /// 1 kHz (20 s each), in 10 rounds.
    pub fn full() -> Plan {
        Plan {
            samples_10k: 1_000_000,
            samples_1k: 20_000,
            rounds: 10,
        }
    }

    fn samples(&self, hz: u64) -> u64 {
        if hz >= 10_000 {
            self.samples_10k
        } else {
            self.samples_1k
        }
    }
}

/// Latencies of one kind in one configuration: an HDR histogram (3 significant digits, up to a
/// minute) and the exact extremes.
pub struct Lat {
    /// The samples, in nanoseconds.
    pub hist: Histogram<u64>,
    min: u64,
    max: u64,
}

impl Lat {
    /// An empty one whose counts are already in memory (the kernel maps a fresh allocation's
    /// pages at their first write, and a page fault while recording would be the harness's).
    pub fn new() -> Res<Lat> {
        let mut hist = Histogram::new_with_bounds(1, HIST_MAX_NS, 3).ctx("creating a histogram")?;
        // Writes every count.
        hist.reset();
        Ok(Lat {
            hist,
            min: u64::MAX,
            max: 0,
        })
    }

    /// Adds the samples of `other`.
    fn add(&mut self, other: &Lat) -> Res<()> {
        self.hist.add(&other.hist).ctx("adding histograms")?;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The exact smallest sample (0 if none).
    pub fn min(&self) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.min
        }
    }

    /// The exact largest sample (0 if none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (0 to 1) to the histogram's precision, never above the exact maximum.
    pub fn q(&self, q: f64) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.hist.value_at_quantile(q).min(self.max)
        }
    }

    /// The histogram as text lines `hist TAG VALUE COUNT` and `extremes TAG MIN MAX`.
    fn write(&self, tag: &str, out: &mut String) {
        use std::fmt::Write as _;
        for v in self.hist.iter_recorded() {
            let _ = writeln!(
                out,
                "hist {tag} {} {}",
                v.value_iterated_to(),
                v.count_at_value()
            );
        }
        let _ = writeln!(out, "extremes {tag} {} {}", self.min, self.max);
    }

    /// Takes one line written by [`Lat::write`] (its words after the tag).
    fn read(&mut self, kind: &str, a: u64, b: u64) -> Res<()> {
        match kind {
            "hist" => self
                .hist
                .record_n(a, b)
                .ctx("a histogram line from the consumer"),
            _ => {
                (self.min, self.max) = (a, b);
                Ok(())
            }
        }
    }
}

/// What one configuration measured.
pub struct OlResult {
    /// The configuration (with its samples over all blocks).
    pub cfg: Config,
    /// Publish to seen: the consumer's clock when it has the update minus the publisher's stamp.
    pub seen: Lat,
    /// Blocked modes: the publisher's stamp to the consumer's `wait` returning.
    pub wake: Lat,
    /// The publisher's lateness: its stamp minus the deadline it slept until.
    pub late: Lat,
    /// Recorded updates published, and those of them the consumer never saw (a newer one
    /// replaced them first).
    pub published: u64,
    pub missed: u64,
    /// Blocked modes: waits that returned with nothing new to fetch.
    pub spurious: u64,
    /// Blocked modes: recorded updates fetched after a wait that a previous update ended (it
    /// was replaced between the wait's return and the fetch): their publish came after the
    /// wake-up, so they have a publish-to-seen time but no wake-up time.
    pub wake_replaced: u64,
    /// Page faults over the recorded updates, (minor, major): the publisher's and the
    /// consumer's.
    pub pub_faults: (u64, u64),
    pub con_faults: (u64, u64),
    /// Updates that were wrong (sequence number, missed count or stamp out of order), plus one
    /// if the counts disagree (seen + missed must be published).
    pub errors: u64,
    /// While the publisher ran, in CPU seconds: the time of all CPUs (the wall-clock time
    /// times the CPUs), the CPU time of everything but the publisher, the consumer and the load
    /// processes (other processes, kernel threads and interrupts), and the time the hypervisor
    /// kept a vCPU that had work (steal). Zero if /proc/stat could not be read. A machine
    /// shared with other work shows here.
    pub span_s: f64,
    pub others_s: f64,
    pub steal_s: f64,
    /// The largest share of the CPUs' time that everything else took in one block (percent).
    pub others_max_pct: f64,
    /// Blocks (one per round) the configuration ran in.
    pub blocks: u64,
    /// The quiet blocks alone (see [`QUIET_PCT`]): how many, their publish-to-seen times, and
    /// their updates published and missed.
    pub quiet_blocks: u64,
    pub quiet_seen: Lat,
    pub quiet_published: u64,
    pub quiet_missed: u64,
}

impl OlResult {
    fn empty(cfg: Config) -> Res<OlResult> {
        Ok(OlResult {
            cfg,
            seen: Lat::new()?,
            wake: Lat::new()?,
            late: Lat::new()?,
            published: 0,
            missed: 0,
            spurious: 0,
            wake_replaced: 0,
            pub_faults: (0, 0),
            con_faults: (0, 0),
            errors: 0,
            span_s: 0.0,
            others_s: 0.0,
            steal_s: 0.0,
            others_max_pct: 0.0,
            blocks: 0,
            quiet_blocks: 0,
            quiet_seen: Lat::new()?,
            quiet_published: 0,
            quiet_missed: 0,
        })
    }

    /// The CPU time that everything else took while the publisher ran, in percent of all CPUs'
    /// time (NaN if unknown).
    pub fn others_pct(&self) -> f64 {
        pct(self.others_s, self.span_s)
    }

    /// The hypervisor's steal while the publisher ran, in percent of all CPUs' time.
    pub fn steal_pct(&self) -> f64 {
        pct(self.steal_s, self.span_s)
    }

    /// Adds block `b` of the same configuration.
    fn absorb(&mut self, b: &OlResult) -> Res<()> {
        self.seen.add(&b.seen)?;
        self.wake.add(&b.wake)?;
        self.late.add(&b.late)?;
        self.published += b.published;
        self.missed += b.missed;
        self.spurious += b.spurious;
        self.wake_replaced += b.wake_replaced;
        self.pub_faults = (
            self.pub_faults.0 + b.pub_faults.0,
            self.pub_faults.1 + b.pub_faults.1,
        );
        self.con_faults = (
            self.con_faults.0 + b.con_faults.0,
            self.con_faults.1 + b.con_faults.1,
        );
        self.errors += b.errors;
        self.span_s += b.span_s;
        self.others_s += b.others_s;
        self.steal_s += b.steal_s;
        self.others_max_pct = self.others_max_pct.max(b.others_pct());
        self.blocks += 1;
        if b.others_pct() <= QUIET_PCT {
            self.quiet_blocks += 1;
            self.quiet_seen.add(&b.seen)?;
            self.quiet_published += b.published;
            self.quiet_missed += b.missed;
        }
        Ok(())
    }
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        f64::NAN
    }
}

/// The whole open-loop run.
pub struct OlRun {
    /// One per configuration, in the order of [`run`].
    pub results: Vec<OlResult>,
    /// `Ok` if `SCHED_FIFO` was permitted, else why not.
    pub fifo: Result<(), String>,
    /// Each load process's buffer.
    pub load_bytes: usize,
    /// Load processes (one per CPU).
    pub load_procs: usize,
    /// The samples and rounds the run was made with.
    pub plan: Plan,
}

impl OlRun {
    /// Data errors over all configurations.
    pub fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.errors).sum()
    }
}

/// Measures every configuration of `plan`: idle, then under load; at each rate; at
/// `SCHED_OTHER`, then at `SCHED_FIFO` if permitted; busy-polling, then waiting on a futex,
/// then on an eventfd. The caller has pinned this process to CPU 0.
pub fn run(plan: &Plan) -> Res<OlRun> {
    let fifo = probe_fifo();
    match &fifo {
        Ok(()) => eprintln!(
            "open loop: SCHED_FIFO permitted (priority {}): each configuration runs at \
             SCHED_OTHER and at SCHED_FIFO",
            sys::FIFO_PRIORITY
        ),
        Err(e) => eprintln!(
            "open loop: SCHED_FIFO not permitted ({e}); every configuration runs at SCHED_OTHER"
        ),
    }
    let policies: &[bool] = if fifo.is_ok() {
        &[false, true]
    } else {
        &[false]
    };
    // A SCHED_OTHER thread's timers may fire up to 50 µs late by default, to batch wake-ups:
    // the publisher asks for none, as a real-time loop would.
    let slack = sys::set_timer_slack(1);
    if let Err(e) = &slack {
        eprintln!("open loop: could not set the timer slack ({e}); SCHED_OTHER deadlines may slip");
    }
    let load_bytes = load_bytes();
    let load_procs = online_cpus();
    let mut configs = Vec::new();
    for load in [false, true] {
        for hz in RATES {
            for &fifo in policies {
                for mode in Mode::ALL {
                    configs.push(Config {
                        rate_hz: hz,
                        mode,
                        load,
                        fifo,
                        samples: plan.samples(hz),
                    });
                }
            }
        }
    }
    let rounds = plan.rounds.max(1);
    let secs: u64 = configs
        .iter()
        .map(|c| (c.samples + rounds * c.warm()) / c.rate_hz)
        .sum();
    eprintln!(
        "open loop: {} configurations in {rounds} round(s), at least {secs} s of publishing",
        configs.len()
    );
    let mut results: Vec<OlResult> = configs
        .iter()
        .map(|c| OlResult::empty(*c))
        .collect::<Res<_>>()?;
    let mut k = 0;
    for phase in [false, true] {
        let idx: Vec<usize> = (0..configs.len())
            .filter(|&i| configs[i].load == phase)
            .collect();
        let load = if phase {
            eprintln!(
                "open loop: starting {load_procs} load processes, {} MiB each",
                load_bytes >> 20
            );
            Some(Load::start(load_procs, load_bytes)?)
        } else {
            None
        };
        for round in 0..rounds {
            for j in 0..idx.len() {
                let i = idx[(j + round as usize) % idx.len()];
                let block = Config {
                    samples: configs[i].samples / rounds,
                    ..configs[i]
                };
                eprint!(
                    "open loop: round {}/{rounds}, {} ... ",
                    round + 1,
                    block.describe()
                );
                let r = run_one(&block, k, load.as_ref())?;
                k += 1;
                eprintln!(
                    "p50 {} p99.99 {} max {} ns, missed {}, others {:.1}% steal {:.2}%, \
                     errors {}",
                    r.seen.q(0.5),
                    r.seen.q(0.9999),
                    r.seen.max(),
                    r.missed,
                    r.others_pct(),
                    r.steal_pct(),
                    r.errors
                );
                results[i].absorb(&r)?;
            }
        }
    }
    if let Ok(old) = slack {
        let _ = sys::set_timer_slack(old);
    }
    Ok(OlRun {
        results,
        fifo,
        load_bytes,
        load_procs,
        plan: *plan,
    })
}

/// Whether this process may use `SCHED_FIFO`: tries it, and goes back to `SCHED_OTHER`.
fn probe_fifo() -> Result<(), String> {
    set_fifo(true).map_err(|e| e.to_string())?;
    set_fifo(false).map_err(|e| format!("could not go back to SCHED_OTHER: {e}"))
}

/// The machine's CPU time at one moment, to tell afterwards what else ran.
struct CpuMark {
    t: u64,
    machine: Option<(f64, f64)>,
    own: f64,
    load: f64,
}

impl CpuMark {
    fn now(load: Option<&Load>) -> CpuMark {
        CpuMark {
            t: now_ns(),
            machine: sys::machine_cpu_s(),
            own: own_cpu_s(),
            load: load.map_or(0.0, Load::cpu_s),
        }
    }
}

/// Configuration `cfg` (the `k`-th): a new segment, a new consumer process, the publisher
/// here; `load` the load processes if they run.
fn run_one(cfg: &Config, k: usize, load: Option<&Load>) -> Res<OlResult> {
    let shared = Shared::create().ctx("creating the control block")?;
    let spec = |notify: bool| {
        Segment::builder()
            .state::<Stamped>(CHANNEL, Direction::CreatorToPeer)
            .notify(notify)
    };
    // Descriptors the consumer inherits; ours are closed once it has them.
    let mut inherit: Vec<OwnedFd> = Vec::new();
    let mut seg_args: Vec<String> = Vec::new();
    let seg = match cfg.mode {
        Mode::Futex => {
            let name = format!("rtipc-bench-ol-{}-{k}", std::process::id());
            let seg = spec(true).create(&name).ctx("creating the named segment")?;
            seg_args.extend(["named".to_owned(), name]);
            seg
        }
        Mode::Busy | Mode::EventFd => {
            let seg = spec(cfg.mode == Mode::EventFd)
                .create_anonymous()
                .ctx("creating the anonymous segment")?;
            seg_args.push("anon".to_owned());
            let fds = std::iter::once(seg.as_fd()).chain(seg.event_fds());
            for fd in fds {
                let dup = sys::inheritable(fd.as_raw_fd()).ctx("duplicating a descriptor")?;
                seg_args.push(dup.as_raw_fd().to_string());
                inherit.push(dup);
            }
            seg
        }
    };
    let mut tx = StateProducer::<Stamped>::new(&seg, CHANNEL).ctx("open-loop producer")?;
    let warm = cfg.warm();
    let total = warm + cfg.samples;
    let exe = std::env::current_exe().ctx("locating this binary")?;
    let child = Command::new(exe)
        .arg(ROLE)
        .arg(shared.raw_fd().to_string())
        .arg(cfg.mode.name())
        .arg(u8::from(cfg.fifo).to_string())
        .arg(total.to_string())
        .arg(warm.to_string())
        .args(&seg_args)
        .stdout(Stdio::piped())
        .spawn()
        .ctx("spawning the consumer")?;
    drop(inherit);
    let mut child = Reap(child);
    wait_ready(shared.ctrl(), &mut child.0)?;

    let mut late = Lat::new()?;
    if cfg.fifo {
        set_fifo(true).ctx("SCHED_FIFO for the publisher")?;
    }
    let m0 = CpuMark::now(load);
    let published = publish(cfg, &mut tx, shared.ctrl(), &mut late);
    let m1 = CpuMark::now(load);
    if cfg.fifo {
        set_fifo(false).ctx("SCHED_OTHER again for the publisher")?;
    }
    let (f0, f1) = published?;

    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .ok_or("the consumer has no stdout")?
        .read_to_string(&mut out)
        .ctx("reading the consumer's results")?;
    let status = child.0.wait().ctx("waiting for the consumer")?;
    if !status.success() {
        return Err(format!("the open-loop consumer exited with {status}"));
    }
    let mut r = OlResult::empty(*cfg)?;
    r.late = late;
    r.published = cfg.samples;
    r.pub_faults = (f1.0 - f0.0, f1.1 - f0.1);
    r.blocks = 1;
    let con_cpu = parse(&out, &mut r)?;
    r.errors += u64::from(r.seen.count() + r.missed != r.published);
    if let (Some(a), Some(b)) = (m0.machine, m1.machine) {
        let ours = (m1.own - m0.own) + con_cpu + (m1.load - m0.load);
        r.span_s = (m1.t - m0.t) as f64 / 1e9 * online_cpus() as f64;
        r.others_s = ((b.0 - a.0) - ours).max(0.0);
        r.steal_s = b.1 - a.1;
    }
    r.others_max_pct = r.others_pct();
    Ok(r)
}

/// The consumer process, killed if it still runs when dropped (on an error path).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits, sleeping, until the consumer has attached and says so.
fn wait_ready(ctrl: &Ctrl, child: &mut Child) -> Res<()> {
    let start = Instant::now();
    // Acquire: the consumer is set up once it has stored READY.
    while ctrl.status.w[st::READY].load(Ordering::Acquire) != READY {
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("the open-loop consumer exited early ({s})"));
        }
        if start.elapsed() > PATIENCE {
            return Err("gave up waiting for the open-loop consumer to attach".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// The publisher: `warm + samples` updates, one per period on absolute deadlines. Records its
/// lateness for the samples; returns the page-fault counts before the first sample and after
/// the last.
fn publish(
    cfg: &Config,
    tx: &mut StateProducer<Stamped>,
    ctrl: &Ctrl,
    late: &mut Lat,
) -> Res<((u64, u64), (u64, u64))> {
    let period = cfg.period_ns();
    let warm = cfg.warm();
    let total = warm + cfg.samples;
    let mut f0 = (0, 0);
    // The first deadline two periods ahead: every update, the first too, follows a sleep.
    let mut deadline = now_ns() + 2 * period;
    for s in 1..=total {
        sys::sleep_until(deadline).ctx("clock_nanosleep")?;
        let mut g = tx.write().ctx("open-loop write")?;
        g.w[0] = s;
        let stamp = now_ns();
        g.w[1] = stamp;
        g.publish().ctx("open-loop publish")?;
        if s > warm {
            late.record(stamp.saturating_sub(deadline));
        } else if s == warm {
            f0 = page_faults();
        }
        if s & 1023 == 0 && ctrl.status.w[st::FAILED].load(Ordering::Relaxed) != 0 {
            return Err("the open-loop consumer failed".into());
        }
        deadline += period;
    }
    Ok((f0, page_faults()))
}

/// Reads the consumer's results (written at the end of `consume`) into `r`; returns the CPU
/// time the consumer used while it consumed.
fn parse(out: &str, r: &mut OlResult) -> Res<f64> {
    let mut cpu = None;
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Res<u64> {
            w.get(i)
                .ok_or_else(|| format!("short line from the consumer: `{line}`"))?
                .parse()
                .ctx("a number from the consumer")
        };
        match w.first().copied() {
            Some("counts") => {
                (r.missed, r.spurious, r.errors) = (num(1)?, num(2)?, num(3)?);
                r.con_faults = (num(4)?, num(5)?);
                r.wake_replaced = num(6)?;
                cpu = Some(
                    w.get(7)
                        .and_then(|x| x.parse::<f64>().ok())
                        .ok_or("no CPU time from the consumer")?,
                );
            }
            Some(kind @ ("hist" | "extremes")) => {
                let lat = match w.get(1).copied() {
                    Some("seen") => &mut r.seen,
                    Some("wake") => &mut r.wake,
                    _ => return Err(format!("unknown histogram in `{line}`")),
                };
                lat.read(kind, num(2)?, num(3)?)?;
            }
            _ => return Err(format!("unexpected line from the consumer: `{line}`")),
        }
    }
    cpu.ok_or_else(|| "the consumer sent no counts".into())
}

/// The consumer's tally of what it saw.
struct Tally {
    warm: u64,
    total: u64,
    last_seq: u64,
    last_stamp: u64,
    seen: Lat,
    wake: Lat,
    missed: u64,
    spurious: u64,
    wake_replaced: u64,
    errors: u64,
    /// Page faults when the first sample arrived.
    faults0: Option<(u64, u64)>,
}

impl Tally {
    /// A new update: rtipc's sequence number `seq`, `missed` replaced before it, its words
    /// `w`, seen at `t` (and, in the blocked modes, `wait` returned at `woke`). Returns whether
    /// it was the last update.
    #[inline(always)]
    fn see(&mut self, seq: u64, missed: u64, w: &[u64; 2], t: u64, woke: Option<u64>) -> bool {
        let (s, stamp) = (w[0], w[1]);
        let ok = s == seq
            && seq > self.last_seq
            && missed == seq - self.last_seq - 1
            && stamp >= self.last_stamp
            && t >= stamp;
        self.errors += u64::from(!ok);
        if seq > self.warm {
            if self.faults0.is_none() {
                self.faults0 = Some(page_faults());
            }
            self.seen.record(t.saturating_sub(stamp));
            // An update stamped after the wait returned was published between the wake-up and
            // the fetch, replacing the one that ended the wait.
            match woke {
                Some(x) if x >= stamp => self.wake.record(x - stamp),
                Some(_) => self.wake_replaced += 1,
                None => {}
            }
            // Only the recorded updates' misses count.
            self.missed += missed.min(seq - 1 - self.warm);
        }
        self.last_seq = seq;
        self.last_stamp = stamp;
        seq >= self.total
    }
}

/// The consumer process: `ROLE ctrl_fd mode fifo total warm (named NAME | anon MEMFD [EVENTFD])`.
pub fn consumer_main(args: &[String]) -> ExitCode {
    match consumer(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("open-loop consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn consumer(args: &[String]) -> Res<()> {
    let [ctrl_fd, mode, fifo, total, warm, seg_args @ ..] = args else {
        return Err(format!("{ROLE} takes at least 6 arguments"));
    };
    let shared = Shared::inherit(ctrl_fd.parse().ctx("descriptor argument")?)
        .ctx("mapping the control block")?;
    let ctrl = shared.ctrl();
    let result = (|| {
        let mode = Mode::from_name(mode).ok_or_else(|| format!("no mode `{mode}`"))?;
        let fifo = fifo == "1";
        let total: u64 = total.parse().ctx("the update count")?;
        let warm: u64 = warm.parse().ctx("the warm-up count")?;
        let fd = |s: &String| -> Res<OwnedFd> {
            sys::adopt(s.parse().ctx("descriptor argument")?).ctx("an inherited descriptor")
        };
        let seg = match seg_args {
            [kind, name] if kind == "named" => {
                Segment::wait_open(name, Duration::from_secs(5)).ctx("opening the segment")?
            }
            [kind, memfd] if kind == "anon" => {
                Segment::from_fd(fd(memfd)?).ctx("attaching the segment")?
            }
            [kind, memfd, efd] if kind == "anon" => {
                Segment::from_fds(fd(memfd)?, vec![fd(efd)?]).ctx("attaching the segment")?
            }
            _ => return Err("bad segment arguments".into()),
        };
        consume(ctrl, &seg, mode, fifo, total, warm)
    })();
    if result.is_err() {
        ctrl.status.w[st::FAILED].store(1, Ordering::Release);
    }
    result
}

fn consume(ctrl: &Ctrl, seg: &Segment, mode: Mode, fifo: bool, total: u64, warm: u64) -> Res<()> {
    if let Err(e) = pin_to(1) {
        eprintln!("open-loop consumer: could not pin to CPU 1 ({e}); figures will be noisier");
    }
    if fifo {
        set_fifo(true).ctx("SCHED_FIFO for the consumer")?;
    }
    let mut rx = StateConsumer::<Stamped>::new(seg, CHANNEL).ctx("open-loop consumer")?;
    let mut t = Tally {
        warm,
        total,
        last_seq: 0,
        last_stamp: 0,
        seen: Lat::new()?,
        wake: Lat::new()?,
        missed: 0,
        spurious: 0,
        wake_replaced: 0,
        errors: 0,
        faults0: None,
    };
    let cpu0 = own_cpu_s();
    // Release: the consumer end is claimed before the publisher starts.
    ctrl.status.w[st::READY].store(READY, Ordering::Release);
    if mode.blocks() {
        loop {
            if !rx.wait(Some(WAIT_LIMIT)).ctx("open-loop wait")? {
                return Err(format!("no update for {} s", WAIT_LIMIT.as_secs()));
            }
            let woke = now_ns();
            match rx.fetch().ctx("open-loop fetch")? {
                Some(r) if StateRef::is_new(&r) => {
                    let seen = now_ns();
                    if t.see(
                        StateRef::seq(&r),
                        StateRef::missed(&r),
                        &r.w,
                        seen,
                        Some(woke),
                    ) {
                        break;
                    }
                }
                _ => t.spurious += 1,
            }
        }
    } else {
        loop {
            // A new patience for every update: the run lasts longer than one.
            let mut spin = Spin::new("the next open-loop update");
            let last = loop {
                if let Some(r) = rx.fetch().ctx("open-loop fetch")? {
                    if StateRef::is_new(&r) {
                        let seen = now_ns();
                        break t.see(StateRef::seq(&r), StateRef::missed(&r), &r.w, seen, None);
                    }
                }
                spin.tick()?;
            };
            if last {
                break;
            }
        }
    }
    let f1 = page_faults();
    let cpu = own_cpu_s() - cpu0;
    if fifo {
        set_fifo(false).ctx("SCHED_OTHER again for the consumer")?;
    }
    let f0 = t.faults0.unwrap_or(f1);
    let mut out = format!(
        "counts {} {} {} {} {} {} {cpu:.6}\n",
        t.missed,
        t.spurious,
        t.errors,
        f1.0 - f0.0,
        f1.1 - f0.1,
        t.wake_replaced
    );
    t.seen.write("seen", &mut out);
    if mode.blocks() {
        t.wake.write("wake", &mut out);
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .ctx("writing the results")
}

/// The load processes: one per CPU, pinned, each streaming through its own buffer.
struct Load {
    procs: Vec<Child>,
}

impl Load {
    /// Starts `n` of them with buffers of `bytes` each; returns once each has been through its
    /// buffer once (so that its pages are in memory).
    fn start(n: usize, bytes: usize) -> Res<Load> {
        let exe = std::env::current_exe().ctx("locating this binary")?;
        let mut load = Load { procs: Vec::new() };
        for cpu in 0..n {
            let child = Command::new(&exe)
                .args([
                    LOAD_ROLE.to_owned(),
                    cpu.to_string(),
                    bytes.to_string(),
                    std::process::id().to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .ctx("spawning a load process")?;
            load.procs.push(child);
        }
        for p in &mut load.procs {
            let out = p.stdout.take().ok_or("a load process has no stdout")?;
            let mut line = String::new();
            BufReader::new(out)
                .read_line(&mut line)
                .ctx("waiting for a load process")?;
            if line.trim() != "ready" {
                return Err("a load process ended before it was ready".into());
            }
        }
        Ok(load)
    }
}

impl Load {
    /// The CPU time the load processes have used so far, in seconds.
    fn cpu_s(&self) -> f64 {
        (self.procs.iter())
            .filter_map(|p| sys::proc_cpu_s(p.id()))
            .sum()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// A load process: `LOAD_ROLE cpu bytes parent_pid`. Pins itself to `cpu` and adds one to a
/// word of every cache line of a buffer of `bytes`, over and over: the CPU always busy and the
/// caches and memory bus streaming. Says `ready` after its first pass; leaves when its parent
/// has gone (or is killed).
pub fn load_main(args: &[String]) -> ExitCode {
    let parse = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let (Some(cpu), Some(bytes), Some(parent)) = (parse(0), parse(1), parse(2)) else {
        eprintln!("{LOAD_ROLE} takes: cpu bytes parent_pid");
        return ExitCode::FAILURE;
    };
    let _ = pin_to(cpu);
    let mut buf = vec![0u64; bytes / 8];
    let mut first = true;
    loop {
        for i in (0..buf.len()).step_by(8) {
            buf[i] = buf[i].wrapping_add(1);
        }
        std::hint::black_box(&mut buf);
        if first {
            first = false;
            let mut out = std::io::stdout().lock();
            if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } as usize != parent {
            return ExitCode::SUCCESS;
        }
    }
}

/// The load buffer: the largest cache the kernel reports for CPU 0 (the last level; on a
/// virtual machine the host's), rounded up to a power of two, from 64 MiB to 1 GiB.
fn load_bytes() -> usize {
    let mut largest = 0usize;
    for i in 0..8 {
        let path = format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size");
        let Ok(s) = std::fs::read_to_string(path) else {
            continue;
        };
        let s = s.trim();
        let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let Ok(n) = digits.parse::<usize>() else {
            continue;
        };
        let bytes = match unit {
            "K" => n << 10,
            "M" => n << 20,
            "G" => n << 30,
            _ => n,
        };
        largest = largest.max(bytes);
    }
    largest.next_power_of_two().clamp(64 << 20, 1 << 30)
}

/// CPUs online (not those this pinned process may use).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

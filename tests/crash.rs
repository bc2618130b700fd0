//! Crash tests: real processes killed with SIGKILL at random moments while they hold an end of a
//! channel or create a segment, and a survivor that checks every value.
//!
//! The victims are the peer binary's `Crash*` roles (`tests/support/crash.rs`). Half of them are
//! killed at a moment drawn uniformly from 0 to twice the time a victim takes to claim (a few
//! milliseconds) after their spawn: before, during or after the claim, in the middle of a
//! publish, a fetch, a push or a pop. The other half are stepped into their claim by stops
//! (SIGSTOP, a moment of SIGCONT, again) and killed in it or just after. The next victim is spawned as soon
//! as the last one is reaped and must claim its end at once. After every kill the stream must
//! move on within [`HANG`]: when nothing moved for [`OWED`] after a kill, the victim of the
//! moment lives until something does, and the last one runs to completion.
//!
//! Creators are killed likewise, half of them stepped into `create`; and two successors race
//! for one stale segment, started together or with the first stepped until it is caught between
//! opening the stale segment and locking it (as a process preempted there would be).
//!
//! `RTIPC_KILLS` sets the kills per producer or consumer scenario (default 60); the creator
//! scenarios make 30% of it (at least 30, or all of it if fewer), and the racing scenario as
//! many rounds. `.ci/run` runs 1,000. `RTIPC_SEED` repeats a run's random moments (as far as
//! the scheduler allows). Each scenario prints its figures (`cargo test --test crash --
//! --nocapture`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rtipc::{
    Direction, Error, MessageRef, QueueConsumer, QueueProducer, Segment, StateConsumer,
    StateProducer, StateRef,
};

// --- Settings. --------------------------------------------------------------------------------

/// How long after a kill the stream may stand still before the victim of the moment is left to
/// live until it moves.
const OWED: Duration = Duration::from_millis(100);
/// How long after a kill the stream may stand still before it counts as a hang.
const HANG: Duration = Duration::from_secs(20);
/// How many values the last victim of a scenario handles before it exits by itself.
const FINAL_VALUES: u64 = 1000;
/// The longest a process being stepped through its `create` runs between two stops.
const STEP: Duration = Duration::from_micros(30);
/// How many handles the churn scenarios create and drop.
const HANDLES: u64 = 10_000;

/// Kills per producer or consumer scenario: `RTIPC_KILLS`, default 60.
fn kills() -> u64 {
    std::env::var("RTIPC_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(60)
}

/// Kills per creator scenario: 30% of `kills()`, at least 30 (or all of them if fewer).
fn creator_kills() -> u64 {
    let k = kills();
    (k * 3 / 10).max(k.min(30))
}

/// How many victims of a scenario are timed (and killed right after the line they are timed
/// to) before the others are killed at random moments.
const TIMED: usize = 9;

/// Crash scenarios run one at a time: each keeps both cores busy, and a kill's moment means
/// little on a machine shared with another scenario.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The moments of the kills: the first [`TIMED`] victims are timed from their spawn to a line
/// (they are killed right after it), and the others are killed at a moment drawn uniformly from
/// 0 to `factor` times the median of those times.
struct Moments {
    rng: Rng,
    what: String,
    factor: f64,
    times: Vec<Duration>,
    tries: usize,
    median: Duration,
    max: Option<Duration>,
}

impl Moments {
    fn new(what: &str, factor: f64) -> Moments {
        Moments {
            rng: Rng::new(what),
            what: what.to_owned(),
            factor,
            times: Vec::new(),
            tries: 0,
            median: Duration::from_millis(1),
            max: None,
        }
    }

    /// Whether the next victim is to be timed.
    fn timing(&self) -> bool {
        self.max.is_none()
    }

    /// Takes in the time of a timed victim (`None`: the line never came).
    fn timed(&mut self, took: Option<Duration>) {
        self.tries += 1;
        self.times.extend(took);
        if self.times.len() < TIMED && self.tries < 2 * TIMED {
            return;
        }
        self.times.sort();
        let median = self
            .times
            .get(self.times.len() / 2)
            .copied()
            .unwrap_or(Duration::from_millis(2));
        let max = median.mul_f64(self.factor);
        self.median = median;
        println!(
            "{}: {:.2} ms from spawn to the line (median of {}); kills from 0 to {:.2} ms",
            self.what,
            median.as_secs_f64() * 1e3,
            self.times.len(),
            max.as_secs_f64() * 1e3
        );
        self.max = Some(max);
    }

    /// When to start stepping a victim into its claim or `create`, after its spawn: well
    /// before the line it was timed to.
    fn lead(&self) -> Duration {
        self.median.mul_f64(0.7)
    }

    /// A moment for a kill, after the spawn.
    fn delay(&mut self) -> Duration {
        let max = self.max.unwrap_or(Duration::from_millis(2));
        self.rng.delay(max)
    }
}

fn sleep_until(t: Instant) {
    let left = t.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}

/// Polls `done` until it is true (true) or `deadline` passes (false).
fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

// --- Victims. ---------------------------------------------------------------------------------

/// A peer process and the lines it prints, read by a thread of ours as they come.
struct Victim {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// The lines taken from `lines` so far.
    seen: Vec<String>,
    spawned: Instant,
}

/// How a victim ended, and everything it printed.
struct Ended {
    status: ExitStatus,
    lines: Vec<String>,
}

impl Ended {
    fn killed(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }

    /// The first line starting with `word`, without it.
    fn line(&self, word: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix(word))
    }

    /// The count a producer found when it claimed (`claimed N`).
    fn claimed(&self) -> Option<u64> {
        self.line(crash_line::CLAIMED)?.trim().parse().ok()
    }

    /// The number of the last value its progress lines reported.
    fn last_reported(&self) -> Option<u64> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(crash_line::PROGRESS))
            .filter_map(|rest| {
                rest.split_whitespace()
                    .find_map(|f| f.strip_prefix("last="))
                    .and_then(|v| v.parse().ok())
            })
            .max()
    }
}

impl Victim {
    /// Spawns the peer as `role` with its stdout piped to us. `reports` counts its progress
    /// lines as they arrive.
    fn spawn(role: Role, name: &str, count: u64, reports: Option<&Arc<AtomicU64>>) -> Victim {
        let mut cmd = peer_command(role, name, count);
        cmd.stdin(Stdio::null());
        Victim::start(cmd, reports)
    }

    fn start(mut cmd: Command, reports: Option<&Arc<AtomicU64>>) -> Victim {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn the peer");
        let spawned = Instant::now();
        let out = child.stdout.take().expect("piped stdout");
        let reports = reports.cloned();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(r) = &reports {
                    if line.starts_with(crash_line::PROGRESS) {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Victim {
            child,
            lines,
            reader: Some(reader),
            seen: Vec::new(),
            spawned,
        }
    }

    /// Waits until `deadline` for a line starting with `word`; returns the rest of it.
    fn wait_line(&mut self, word: &str, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            let rest = line.strip_prefix(word).map(str::to_owned);
            self.seen.push(line);
            if rest.is_some() {
                return rest;
            }
        }
    }

    /// Waits until a progress line says `last=` at least `value`, or `deadline` passes.
    fn wait_progress(&mut self, value: u64, deadline: Instant) {
        while let Some(rest) = self.wait_line(crash_line::PROGRESS, deadline) {
            let last = rest
                .split_whitespace()
                .find_map(|f| f.strip_prefix("last="))
                .and_then(|v| v.parse::<u64>().ok());
            if last.is_some_and(|l| l >= value) {
                return;
            }
        }
    }

    /// Kills the victim with SIGKILL and reaps it.
    fn kill(mut self) -> Ended {
        let _ = self.child.kill();
        self.reap()
    }

    /// Waits until `deadline` for the victim to exit by itself, then kills it.
    fn finish(mut self, deadline: Instant) -> Ended {
        wait_until(deadline, || self.child.try_wait().ok().flatten().is_some());
        self.kill()
    }

    fn reap(mut self) -> Ended {
        let status = self.child.wait().expect("reap the peer");
        // The pipe is at its end now: the reader has everything the victim wrote.
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.seen.extend(self.lines.try_iter());
        Ended {
            status,
            lines: self.seen,
        }
    }
}

// --- Figures. ---------------------------------------------------------------------------------

/// What a scenario counts; all but `kills` and `values` must end at 0.
#[derive(Default)]
struct Figures {
    kills: u64,
    /// Victims stepped into their claim by stops and killed there (the others were killed at a
    /// random moment after their spawn).
    stepped: u64,
    /// Victims killed before they reported their claim.
    before_claim: u64,
    reclaim_failures: u64,
    torn_foreign: u64,
    /// Values out of order, or numbered otherwise than the count says.
    order: u64,
    /// Wrong counts of missed values.
    missed: u64,
    /// Values checked.
    values: u64,
    /// Values the victims reported: checked by consumers, written by producers.
    victim_values: u64,
    hangs: u64,
    errors: u64,
    /// The first problems, for the failure message.
    notes: Vec<String>,
}

/// A `progress values=N last=S problems=P` line: `(N, P)`.
fn parse_progress(rest: &str) -> Option<(u64, u64)> {
    let mut values = None;
    let mut problems = None;
    for field in rest.split_whitespace() {
        if let Some(v) = field.strip_prefix("values=") {
            values = v.parse().ok();
        } else if let Some(p) = field.strip_prefix("problems=") {
            problems = p.parse().ok();
        }
    }
    Some((values?, problems?))
}

impl Figures {
    fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("{text}");
            self.notes.push(text);
        }
    }

    /// Takes in what a victim printed, and how it ended.
    fn victim(&mut self, what: &str, e: &Ended) {
        let (mut printed, mut reported, mut values) = (0, 0, 0);
        for l in &e.lines {
            if let Some(rest) = l.strip_prefix(crash_line::PROBLEM) {
                printed += 1;
                match rest.split_whitespace().next() {
                    Some("torn" | "foreign") => self.torn_foreign += 1,
                    Some("missed") => self.missed += 1,
                    _ => self.order += 1,
                }
                self.note(format!("{what}: {l}"));
            } else if l.starts_with(crash_line::CLAIM_FAILED)
                || l.starts_with(crash_line::CREATE_FAILED)
            {
                self.reclaim_failures += 1;
                self.note(format!("{what}: {l}"));
            } else if l.starts_with(crash_line::ERROR) {
                self.errors += 1;
                self.note(format!("{what}: {l}"));
            } else if let Some((v, p)) = l
                .strip_prefix(crash_line::PROGRESS)
                .and_then(parse_progress)
            {
                values = v.max(values);
                reported = p.max(reported);
            }
        }
        // Problems past the ones printed one by one.
        self.order += reported.saturating_sub(printed);
        self.victim_values += values;
        if e.killed() {
            self.kills += 1;
            if !e.lines.iter().any(|l| l.starts_with(crash_line::CLAIMED)) {
                self.before_claim += 1;
            }
        } else if !e.status.success() && e.status.code() != Some(3) {
            self.errors += 1;
            self.note(format!("{what} exited by itself: {}", e.status));
        }
    }

    /// Takes in what a survivor thread found.
    fn survivor(&mut self, s: Survived) {
        self.torn_foreign += s.check.torn_or_foreign();
        self.order += s.check.order + s.numbered;
        self.missed += s.check.missed;
        self.values += s.check.values;
        self.errors += s.errors;
        for n in s.notes {
            self.note(n);
        }
    }

    /// Prints the scenario's figures and fails on any problem.
    fn report(&self, what: &str, kills: u64) {
        println!(
            "{what}: {} kills ({} stepped into the claim, {} before the claim was reported), {} \
             could not be re-claimed, {} torn/foreign of {} values, {} out of order, {} \
             miscounted, {} hangs, {} errors",
            self.kills,
            self.stepped,
            self.before_claim,
            self.reclaim_failures,
            self.torn_foreign,
            self.values,
            self.order,
            self.missed,
            self.hangs,
            self.errors
        );
        let bad = self.reclaim_failures
            + self.torn_foreign
            + self.order
            + self.missed
            + self.hangs
            + self.errors;
        assert!(
            bad == 0 && self.kills == kills,
            "{what}: {} kills of {kills}; first problems: {:#?}",
            self.kills,
            self.notes
        );
    }
}

// --- Survivors: threads of the test process. --------------------------------------------------

/// What a survivor thread shares while it runs.
#[derive(Default)]
struct Live {
    /// The number of the last value the survivor read or wrote.
    last: AtomicU64,
    stop: AtomicBool,
}

/// What a survivor thread found.
#[derive(Default)]
struct Survived {
    check: StreamCheck,
    /// Publishes or pushes numbered otherwise than the count says.
    numbered: u64,
    errors: u64,
    notes: Vec<String>,
}

impl Survived {
    fn note(&mut self, text: String) {
        if self.notes.len() < 10 {
            self.notes.push(text);
        }
    }

    fn problem(&mut self, p: Problem) {
        self.note(format!("survivor: problem {p}"));
    }
}

/// Runs `body` in a thread until `live.stop`; it returns false to stop early.
fn survivor(
    live: &Arc<Live>,
    body: impl FnOnce(&Live, &mut Survived) + Send + 'static,
) -> JoinHandle<Survived> {
    let live = Arc::clone(live);
    std::thread::spawn(move || {
        let mut s = Survived::default();
        body(&live, &mut s);
        s
    })
}

/// The surviving consumer of `state`: fetches as fast as it can and checks every value.
fn state_consumer_survivor(seg: Segment, live: &Arc<Live>) -> JoinHandle<Survived> {
    survivor(live, move |live, s| {
        let mut rx = StateConsumer::<Payload>::new(&seg, "state").expect("claim");
        let mut check = StreamCheck::from_start();
        let mut problems = Vec::new();
        while !live.stop.load(Ordering::Relaxed) {
            match rx.fetch() {
                Ok(Some(v)) => {
                    let (seq, new) = (StateRef::seq(&v), StateRef::is_new(&v));
                    check.read(&v, seq, new, StateRef::missed(&v), |p| problems.push(p));
                    live.last.store(seq, Ordering::Relaxed);
                    if !new {
                        std::thread::yield_now();
                    }
                }
                Ok(None) => std::thread::yield_now(),
                Err(e) => {
                    s.errors += 1;
                    s.note(format!("survivor: fetch: {e:?}"));
                    drop(rx);
                    rx = StateConsumer::<Payload>::new(&seg, "state").expect("claim again");
                }
            }
            for p in problems.drain(..) {
                s.problem(p);
            }
        }
        s.check = check;
    })
}

/// The surviving consumer of `queue`: pops as fast as it can and checks every message.
fn queue_consumer_survivor(seg: Segment, live: &Arc<Live>) -> JoinHandle<Survived> {
    survivor(live, move |live, s| {
        let mut rx = QueueConsumer::<Payload>::new(&seg, "queue").expect("claim");
        let mut check = StreamCheck::from_start();
        let mut problems = Vec::new();
        while !live.stop.load(Ordering::Relaxed) {
            match rx.pop() {
                Ok(Some(m)) => {
                    let seq = MessageRef::seq(&m);
                    check.read(&m, seq, true, MessageRef::missed(&m), |p| problems.push(p));
                    live.last.store(seq, Ordering::Relaxed);
                }
                Ok(None) => std::thread::yield_now(),
                Err(e) => {
                    s.errors += 1;
                    s.note(format!("survivor: pop: {e:?}"));
                    drop(rx);
                    rx = QueueConsumer::<Payload>::new(&seg, "queue").expect("claim again");
                }
            }
            for p in problems.drain(..) {
                s.problem(p);
            }
        }
        s.check = check;
    })
}

/// The surviving producer of `state`: publishes as fast as it can, every word the number.
fn state_producer_survivor(seg: Segment, live: &Arc<Live>) -> JoinHandle<Survived> {
    survivor(live, move |live, s| {
        let mut tx = StateProducer::<Payload>::new(&seg, "state").expect("claim");
        while !live.stop.load(Ordering::Relaxed) {
            let seq = tx.published() + 1;
            let published = tx.write().and_then(|mut g| {
                g.words.fill(seq);
                g.publish()
            });
            match published {
                Ok(got) if got == seq => live.last.store(seq, Ordering::Relaxed),
                Ok(got) => {
                    s.numbered += 1;
                    s.problem(Problem::Numbered { got, expected: seq });
                }
                Err(e) => {
                    s.errors += 1;
                    s.note(format!("survivor: publish: {e:?}"));
                    return;
                }
            }
        }
    })
}

/// The surviving producer of `queue`: force-pushes as fast as it can, every word the number.
fn queue_producer_survivor(seg: Segment, live: &Arc<Live>) -> JoinHandle<Survived> {
    survivor(live, move |live, s| {
        let mut tx = QueueProducer::<Payload>::new(&seg, "queue").expect("claim");
        while !live.stop.load(Ordering::Relaxed) {
            let seq = tx.pushed() + 1;
            let pushed = tx.write().and_then(|mut m| {
                m.words.fill(seq);
                m.force_push()
            });
            if let Err(e) = pushed {
                s.errors += 1;
                s.note(format!("survivor: push: {e:?}"));
                return;
            }
            if tx.pushed() == seq {
                live.last.store(seq, Ordering::Relaxed);
            } else {
                s.numbered += 1;
                s.problem(Problem::Numbered {
                    got: tx.pushed(),
                    expected: seq,
                });
            }
        }
    })
}

// --- The kill loop. ---------------------------------------------------------------------------

/// How the kill loop sees the stream move on after a kill.
enum Watch<'a> {
    /// The survivor consumes: the stream moved on once it read a value numbered after the
    /// count that a victim spawned after the kill found when it claimed.
    Survivor(&'a Live),
    /// The victims consume: the stream moved on once a victim spawned after the kill reported
    /// a value.
    Victims(&'a Arc<AtomicU64>),
}

/// A kill after which the stream has not been seen to move on yet.
struct Owed {
    when: Instant,
    /// `Survivor`: the number the survivor must reach (unknown until a claimant says).
    /// `Victims`: the count of progress lines at the kill.
    mark: Option<u64>,
}

impl Watch<'_> {
    fn owed_now(&self) -> Owed {
        let mark = match self {
            Watch::Survivor(_) => None,
            Watch::Victims(lines) => Some(lines.load(Ordering::Relaxed)),
        };
        Owed {
            when: Instant::now(),
            mark,
        }
    }

    /// Takes in the count a victim spawned after the kills in `owed` found when it claimed.
    fn claimed(&self, owed: &mut [Owed], count: Option<u64>) {
        if let (Watch::Survivor(_), Some(n)) = (self, count) {
            for o in owed.iter_mut().filter(|o| o.mark.is_none()) {
                o.mark = Some(n + 1);
            }
        }
    }

    fn moved_on(&self, owed: &Owed) -> bool {
        match (self, owed.mark) {
            (Watch::Survivor(live), Some(need)) => live.last.load(Ordering::Relaxed) >= need,
            (Watch::Victims(lines), Some(at)) => lines.load(Ordering::Relaxed) > at,
            (_, None) => false,
        }
    }

    fn reports(&self) -> Option<&Arc<AtomicU64>> {
        match self {
            Watch::Survivor(_) => None,
            Watch::Victims(lines) => Some(lines),
        }
    }
}

/// Kills `n` victims playing `role`, each at a random moment after its spawn, spawning the next
/// as soon as the last is reaped; then lets one more run to completion.
fn kill_loop(role: Role, name: &str, n: u64, watch: &Watch<'_>, f: &mut Figures) {
    let mut moments = Moments::new(role.as_str(), 2.0);
    let segment = std::path::PathBuf::from(format!("/dev/shm/{name}"));
    let mut owed: Vec<Owed> = Vec::new();
    let mut spawned = 0;
    while f.kills < n {
        spawned += 1;
        assert!(
            spawned <= 2 * n + 100,
            "victims keep exiting: {:#?}",
            f.notes
        );
        let mut v = Victim::spawn(role, name, 0, watch.reports());
        let delay = moments.delay();
        owed.retain(|o| !watch.moved_on(o));
        match owed.first() {
            _ if moments.timing() => {
                let claimed = v.wait_line(crash_line::CLAIMED, Instant::now() + HANG);
                moments.timed(claimed.map(|_| v.spawned.elapsed()));
            }
            Some(oldest) if oldest.when.elapsed() > OWED => {
                // Nothing moved for a while: this victim lives until something does.
                let deadline = oldest.when + HANG;
                if let Watch::Survivor(_) = watch {
                    let count = v.wait_line(crash_line::CLAIMED, deadline);
                    watch.claimed(&mut owed, count.and_then(|c| c.trim().parse().ok()));
                }
                if wait_until(deadline, || owed.iter().all(|o| watch.moved_on(o))) {
                    std::thread::sleep(delay);
                } else {
                    f.hangs += 1;
                    f.note(format!("{role}: no progress {HANG:?} after a kill"));
                }
                owed.clear();
            }
            _ if spawned.is_multiple_of(2) => {
                // Every other one stepped into its claim by stops, and killed there.
                sleep_until(v.spawned + moments.lead());
                step_into(&v, |p| p == segment, &mut moments.rng);
                f.stepped += 1;
            }
            _ => sleep_until(v.spawned + delay),
        }
        let ended = v.kill();
        f.victim(role.as_str(), &ended);
        watch.claimed(&mut owed, ended.claimed());
        owed.push(watch.owed_now());
    }
    last_victim(role, name, watch, owed, f);
}

/// The victim after the last kill runs to completion: the stream goes on to the end.
fn last_victim(role: Role, name: &str, watch: &Watch<'_>, mut owed: Vec<Owed>, f: &mut Figures) {
    let since = owed.first().map_or_else(Instant::now, |o| o.when);
    let deadline = since + HANG;
    let mut v = Victim::spawn(role, name, FINAL_VALUES, watch.reports());
    let moved = match watch {
        Watch::Survivor(live) => {
            let count = v.wait_line(crash_line::CLAIMED, deadline);
            let count = count.and_then(|c| c.trim().parse::<u64>().ok());
            watch.claimed(&mut owed, count);
            // Its last value stays the newest: the survivor reads it (which covers the marks).
            let end = count.map(|c| c + FINAL_VALUES);
            wait_until(deadline, || {
                end.is_some_and(|e| live.last.load(Ordering::Relaxed) >= e)
            })
        }
        Watch::Victims(_) => wait_until(deadline, || owed.iter().all(|o| watch.moved_on(o))),
    };
    let ended = v.finish(Instant::now() + HANG);
    if !moved || !ended.status.success() {
        f.hangs += 1;
        f.note(format!(
            "{role}: the last victim ({}) did not complete {FINAL_VALUES} values",
            ended.status
        ));
    }
    f.victim(role.as_str(), &ended);
}

// --- Producers and consumers killed. ----------------------------------------------------------

/// Runs a scenario: the test process creates the segment with the channels in `direction` and
/// runs `survivor` on it, while `role` is killed `kills()` times.
fn victims_scenario(
    test: &str,
    direction: Direction,
    survivor: fn(Segment, &Arc<Live>) -> JoinHandle<Survived>,
    role: Role,
) {
    let _serial = serial();
    let name = seg_name(test);
    let seg = crash_channels(Segment::builder(), direction)
        .create(&name)
        .expect("create");
    let live = Arc::new(Live::default());
    let thread = survivor(seg.clone(), &live);
    let lines = Arc::new(AtomicU64::new(0));
    let watch = match direction {
        Direction::PeerToCreator => Watch::Survivor(&live),
        _ => Watch::Victims(&lines),
    };
    let mut f = Figures::default();
    let start = Instant::now();
    kill_loop(role, &name, kills(), &watch, &mut f);
    live.stop.store(true, Ordering::Relaxed);
    f.survivor(thread.join().expect("the survivor thread"));
    if let Watch::Victims(_) = watch {
        // The victims were the consumers: theirs are the values checked.
        f.values += f.victim_values;
    }
    let what = role.as_str().trim_start_matches("crash-").replace('-', " ");
    println!("{what}: {:.1} s", start.elapsed().as_secs_f64());
    f.report(&what, kills());
}

#[test]
fn state_producer_killed_at_random_moments() {
    victims_scenario(
        "crash-state-producer",
        Direction::PeerToCreator,
        state_consumer_survivor,
        Role::CrashStateProducer,
    );
}

#[test]
fn queue_producer_killed_at_random_moments() {
    victims_scenario(
        "crash-queue-producer",
        Direction::PeerToCreator,
        queue_consumer_survivor,
        Role::CrashQueueProducer,
    );
}

#[test]
fn state_consumer_killed_at_random_moments() {
    victims_scenario(
        "crash-state-consumer",
        Direction::CreatorToPeer,
        state_producer_survivor,
        Role::CrashStateConsumer,
    );
}

#[test]
fn queue_consumer_killed_at_random_moments() {
    victims_scenario(
        "crash-queue-consumer",
        Direction::CreatorToPeer,
        queue_producer_survivor,
        Role::CrashQueueConsumer,
    );
}

// --- Stepping a process by stops. -------------------------------------------------------------

/// Sends `signal` to victim `v`.
fn signal(v: &Victim, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(v.child.id()).expect("a pid");
    // SAFETY: kill has no memory effects; `pid` is our child, not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal a peer");
}

/// Stops victim `v` (SIGSTOP) and waits until it is stopped; false if it exited instead (it is
/// left for `Victim::reap`).
fn stop(v: &Victim) -> bool {
    signal(v, libc::SIGSTOP);
    let pid = libc::id_t::from(v.child.id());
    // SAFETY: all zeroes is a valid `siginfo_t` (plain data).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WSTOPPED | libc::WEXITED | libc::WNOWAIT;
    // SAFETY: waitid writes one `siginfo_t` into a live local; `pid` is our child; `WNOWAIT`
    // leaves it to be reaped.
    let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, flags) };
    r == 0 && info.si_code == libc::CLD_STOPPED
}

/// Lets victim `v` go on (SIGCONT) for a random moment of up to [`STEP`].
fn let_go(v: &Victim, rng: &mut Rng) {
    signal(v, libc::SIGCONT);
    // Yielding, not spinning: the victim may be waiting for this very core.
    let until = Instant::now() + rng.delay(STEP);
    while Instant::now() < until {
        std::thread::yield_now();
    }
}

/// Whether process `pid` holds open a file whose path `wanted` accepts. `seen` holds the
/// descriptors looked at before, which are not read again (a process stepped through `create`
/// only opens descriptors).
fn holds(
    pid: u32,
    wanted: impl Fn(&std::path::Path) -> bool,
    seen: &mut Vec<std::ffi::OsString>,
) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let number = fd.file_name();
        if seen.contains(&number) {
            return false;
        }
        let open = std::fs::read_link(fd.path()).is_ok_and(|l| wanted(&l));
        seen.push(number);
        open
    })
}

/// Steps racer `v` through its `create` from `at` (a `CLOCK_MONOTONIC` time), for up to 10 ms:
/// stops it, looks whether it holds the stale segment `name` open, and if not lets it go on for
/// a moment. Once it holds it open, leaves it stopped if it has not taken its creator lock yet
/// (returns true), else lets it go.
fn catch(v: &Victim, name: &str, at: u64, rng: &mut Rng) -> bool {
    let path = std::path::PathBuf::from(format!("/dev/shm/{name}"));
    let named = |p: &std::path::Path| p == path;
    let mut seen = Vec::new();
    holds(v.child.id(), named, &mut seen);
    while monotonic_ns() < at {
        std::hint::spin_loop();
    }
    while monotonic_ns() < at + 10_000_000 && stop(v) {
        if holds(v.child.id(), named, &mut seen) {
            // Stale still: the racer has not taken the creator lock.
            let caught = matches!(Segment::open(name), Err(Error::Stale { .. }));
            if !caught {
                signal(v, libc::SIGCONT);
            }
            return caught;
        }
        let_go(v, rng);
    }
    signal(v, libc::SIGCONT);
    false
}

/// Steps victim `v` until it holds open a file that `wanted` accepts (a creator is inside
/// `create` once it holds a file of `/dev/shm`, a claimant inside its claim once it holds the
/// segment), then a random number of steps more, for up to 20 ms; leaves it stopped.
fn step_into(v: &Victim, wanted: impl Fn(&std::path::Path) -> bool, rng: &mut Rng) {
    let deadline = Instant::now() + Duration::from_millis(20);
    let mut more = None;
    while Instant::now() < deadline && stop(v) {
        // Every descriptor read each time: the loader opens and closes some before `main`.
        if more.is_none() && holds(v.child.id(), &wanted, &mut Vec::new()) {
            more = Some(rng.next() % 4);
        }
        match &mut more {
            Some(0) => return,
            Some(n) => *n -= 1,
            None => {}
        }
        let_go(v, rng);
    }
}

// --- Creators killed. -------------------------------------------------------------------------

/// What the creator scenarios count; all but the first five must end at 0.
#[derive(Default)]
struct CreatorFigures {
    kills: u64,
    /// Kills inside `create` (the creator said it calls it, not that it returned), and after it.
    inside_create: u64,
    after_create: u64,
    /// `open` after a kill: nothing under the name, or a stale segment.
    absent: u64,
    stale: u64,
    /// Successors: resumed with the dead creator's data, replaced, or either (when the dead
    /// creator said too little to tell what its successor finds).
    resumed: u64,
    replaced: u64,
    either: u64,
    /// `open` after a kill gave anything but `NotFound` or `Stale`.
    bad_open: u64,
    /// Successors that failed, or did not carry the data on.
    failed: u64,
    /// Peers that were told wrong (`check`, `producer_alive`, the data after a resume).
    peer_errors: u64,
    notes: Vec<String>,
}

impl CreatorFigures {
    fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("{text}");
            self.notes.push(text);
        }
    }

    fn report(&self, what: &str, kills: u64) {
        println!(
            "{what}: {} kills ({} inside `create`, {} after it), open after the kill: {} not \
             found, {} stale, {} anything else; successors: {} resumed with the data, {} \
             replaced, {} created or resumed, {} failed; {} errors told to peers",
            self.kills,
            self.inside_create,
            self.after_create,
            self.absent,
            self.stale,
            self.bad_open,
            self.resumed,
            self.replaced,
            self.either,
            self.failed,
            self.peer_errors
        );
        assert!(
            self.bad_open + self.failed + self.peer_errors == 0 && self.kills == kills,
            "{what}: {} kills of {kills}; first problems: {:#?}",
            self.kills,
            self.notes
        );
    }
}

/// The last number a creator published before it was killed, as far as it said: at least the
/// count it found when it claimed, and the last value of its progress lines.
fn published_at_least(e: &Ended) -> Option<u64> {
    let claimed = e.claimed()?;
    Some(e.last_reported().unwrap_or(claimed).max(claimed))
}

/// A peer of a creator: attached to its segment, reading `state`.
struct Peer {
    seg: Segment,
    rx: StateConsumer<Payload>,
}

/// Attaches a peer to the creator's segment and reads a value of its.
fn attach_peer(name: &str) -> Result<Peer, String> {
    let seg = Segment::wait_open(name, HANG).map_err(|e| format!("open: {e:?}"))?;
    let mut rx = StateConsumer::<Payload>::new(&seg, "state").map_err(|e| format!("{e:?}"))?;
    let deadline = Instant::now() + HANG;
    loop {
        match rx.fetch() {
            Ok(Some(v)) => {
                check_payload(&v, StateRef::seq(&v)).map_err(|b| format!("{b:?}"))?;
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::yield_now(),
            Ok(None) => return Err("nothing published".into()),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    Ok(Peer { seg, rx })
}

/// After a creator was killed: `open` finds nothing or a stale segment (`running`: a stale
/// one), and a peer is told that the creator is gone.
fn after_creator_kill(name: &str, running: bool, peer: Option<&Peer>, f: &mut CreatorFigures) {
    match Segment::open(name) {
        Err(e @ Error::NotFound { .. }) if !running && e.is_retryable() => f.absent += 1,
        Err(e @ Error::Stale { .. }) if e.is_retryable() => f.stale += 1,
        Ok(_) => {
            f.bad_open += 1;
            f.note("open succeeded with the creator dead".into());
        }
        Err(e) => {
            f.bad_open += 1;
            f.note(format!("open after the kill: {e:?}"));
        }
    }
    if let Some(p) = peer {
        if !matches!(p.seg.check(), Err(Error::CreatorGone { .. })) {
            f.peer_errors += 1;
            f.note(format!("check after the kill: {:?}", p.seg.check()));
        }
        if !matches!(p.rx.producer_alive(), Ok(false)) {
            f.peer_errors += 1;
            f.note(format!(
                "producer_alive after the kill: {:?}",
                p.rx.producer_alive()
            ));
        }
    }
}

/// How a successor made its segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    /// With the same declaration, without `replace_stale`: resumed a stale segment of it, or
    /// created one where there was none.
    Same,
    /// With the same declaration and `replace_stale`, over a stale segment of the other one.
    SameReplacing,
    /// With the other declaration and `replace_stale`.
    Other,
}

/// The segment of the successor of round `i`, made at once: even rounds with the same
/// declaration (which resumes), odd ones with the other (`replace_stale`); kept stale when it
/// goes in every other pair of rounds. `maybe_other`: the name may hold a stale segment of the
/// other declaration, which the same declaration cannot resume (`Stale`): then it replaces it.
fn successor_segment(
    name: &str,
    i: u64,
    maybe_other: bool,
    f: &mut CreatorFigures,
) -> Option<(Segment, Made, bool)> {
    let keep = (i / 2).is_multiple_of(2);
    let made = if !i.is_multiple_of(2) {
        crash_other_declaration()
            .replace_stale(true)
            .keep(keep)
            .create(name)
            .map(|seg| (seg, Made::Other))
    } else {
        match crash_declaration().keep(keep).create(name) {
            Err(Error::Stale { .. }) if maybe_other => crash_declaration()
                .replace_stale(true)
                .keep(keep)
                .create(name)
                .map(|seg| (seg, Made::SameReplacing)),
            made => made.map(|seg| (seg, Made::Same)),
        }
    };
    match made {
        Ok((seg, made)) => Some((seg, made, keep)),
        Err(e) => {
            f.failed += 1;
            f.note(format!("successor {i}: {e:?}"));
            None
        }
    }
}

/// A successor in this process, at once (see [`successor_segment`]): checks that it carries on
/// the data of what it resumed (`floor`: what the name's segment had published at least, if
/// known) or starts afresh, publishes one value, and checks what the peer of the killed creator
/// is told. Returns whether it left a stale segment of the other declaration.
fn successor(
    name: &str,
    i: u64,
    (floor, maybe_other): (Option<u64>, bool),
    peer: Option<Peer>,
    f: &mut CreatorFigures,
) -> bool {
    let Some((seg, made, keep)) = successor_segment(name, i, maybe_other, f) else {
        return maybe_other;
    };
    let mut tx = StateProducer::<Payload>::new(&seg, "state").expect("claim");
    let count = tx.published();
    let other = seg.channel_names().contains(&"extra");
    // What the dead creator had published, when it published anything: its successor resumes.
    match (made, floor.filter(|&n| n > 0)) {
        (Made::Same, Some(at_least)) if count >= at_least && !other => f.resumed += 1,
        (Made::Same, None) if !other => f.either += 1,
        (Made::SameReplacing | Made::Other, _) if count == 0 && other == (made == Made::Other) => {
            f.replaced += 1;
        }
        _ => {
            f.failed += 1;
            f.note(format!(
                "successor {i}: count {count} (the dead creator had published {floor:?}), \
                 channel `extra`: {other}"
            ));
        }
    }
    let seq = tx.publish_copy(&Payload {
        words: [count + 1; 64],
    });
    if let Some(mut p) = peer {
        let told = p.seg.check();
        let fine = if made == Made::Same {
            let seen = p.rx.fetch().ok().flatten().map(|v| {
                let fine = check_payload(&v, StateRef::seq(&v)).is_ok() && StateRef::is_new(&v);
                (StateRef::seq(&v), fine)
            });
            let producer = p.rx.wait_for_producer(Some(Duration::ZERO));
            told.is_ok() && seq.is_ok() && seen == Some((count + 1, true)) && producer.is_ok()
        } else {
            matches!(told, Err(Error::Replaced { .. }))
        };
        if !fine {
            f.peer_errors += 1;
            f.note(format!("peer after successor {i}: check {told:?}"));
        }
    }
    other && keep
}

/// Kills `n` creators, each at a random moment: `running` once it has published and a peer
/// has read it, otherwise from its spawn (while it creates, resumes or replaces).
fn creator_kills_scenario(test: &str, running: bool) {
    let _serial = serial();
    let name = seg_name(&test.replace(' ', "-"));
    let n = creator_kills();
    let mut moments = Moments::new(test, 1.5);
    let mut f = CreatorFigures::default();
    let start = Instant::now();
    let mut left_other = false;
    for i in 0..n {
        let mut v = Victim::spawn(Role::CrashCreator, &name, 0, None);
        let mut peer = None;
        if running {
            if v.wait_line(crash_line::PROGRESS, Instant::now() + HANG)
                .is_none()
            {
                f.failed += 1;
                f.note(format!("creator {i} did not publish"));
            }
            match attach_peer(&name) {
                Ok(p) => peer = Some(p),
                Err(e) => {
                    f.peer_errors += 1;
                    f.note(format!("attaching to creator {i}: {e}"));
                }
            }
            std::thread::sleep(moments.rng.delay(Duration::from_millis(2)));
        } else if moments.timing() {
            let created = v.wait_line(crash_line::CREATED, Instant::now() + HANG);
            moments.timed(created.map(|_| v.spawned.elapsed()));
        } else if i.is_multiple_of(2) {
            sleep_until(v.spawned + moments.delay());
        } else {
            // Every other one stepped into `create` by stops, and killed there.
            step_into(&v, |p| p.starts_with("/dev/shm"), &mut moments.rng);
        }
        let ended = v.kill();
        if ended.killed() {
            f.kills += 1;
        } else {
            f.failed += 1;
            f.note(format!("creator {i} ended by itself: {}", ended.status));
        }
        if let Some(l) = ended.line(crash_line::CREATE_FAILED) {
            f.failed += 1;
            f.note(format!("creator {i}: {l}"));
        }
        if ended.line(crash_line::CREATED).is_some() {
            f.after_create += 1;
        } else if ended.line(crash_line::CREATING).is_some() {
            f.inside_create += 1;
        }
        after_creator_kill(&name, running, peer.as_ref(), &mut f);
        // Unless the creator made its segment, the name may still hold what the last
        // successor left.
        let maybe_other = left_other && ended.line(crash_line::CREATED).is_none();
        let left = (published_at_least(&ended), maybe_other);
        left_other = successor(&name, i, left, peer, &mut f);
    }
    if Segment::remove_stale(&name).is_err() || Segment::open(&name).is_ok() {
        f.failed += 1;
        f.note("remove_stale left the segment".into());
    }
    println!("{test}: {:.1} s", start.elapsed().as_secs_f64());
    f.report(test, n);
}

#[test]
fn creator_killed_while_creating() {
    creator_kills_scenario("creator killed while creating", false);
}

#[test]
fn creator_killed_while_running() {
    creator_kills_scenario("creator killed while running", true);
}

// --- Handles made and dropped while the other end runs at full speed. -------------------------

/// Creates and drops `HANDLES` handles of one end in this process, each used once, while `peer`
/// runs the other end at full speed in another; `churn` makes and uses one handle.
fn churn_scenario(
    test: &str,
    direction: Direction,
    peer: Role,
    mut churn: impl FnMut(&Segment, &mut StreamCheck, &mut Figures),
) {
    let _serial = serial();
    let name = seg_name(test);
    let seg = crash_channels(Segment::builder(), direction)
        .create(&name)
        .expect("create");
    let mut v = Victim::spawn(peer, &name, 0, None);
    let ready = v.wait_line(crash_line::CLAIMED, Instant::now() + HANG);
    let mut f = Figures::default();
    let mut check = StreamCheck::from_start();
    let start = Instant::now();
    if ready.is_some() {
        for _ in 0..HANDLES {
            churn(&seg, &mut check, &mut f);
        }
    }
    let took = start.elapsed();
    if direction == Direction::CreatorToPeer && ready.is_some() {
        // The consuming peer takes what was produced last and says so (or the check below
        // fails after the deadline).
        v.wait_progress(HANDLES, Instant::now() + Duration::from_secs(30));
    }
    let ended = v.kill();
    f.victim(peer.as_str(), &ended);
    if !ended.killed() || ready.is_none() {
        f.errors += 1;
        f.note(format!("{peer} did not run to the end: {}", ended.status));
    }
    if direction == Direction::CreatorToPeer {
        // The peer consumed and checked: it must have seen the last value.
        f.values = f.victim_values;
        if ended.last_reported() != Some(HANDLES) {
            f.errors += 1;
            f.note(format!("the {peer} saw {:?} last", ended.last_reported()));
        }
    }
    f.torn_foreign += check.torn_or_foreign();
    f.order += check.order;
    f.missed += check.missed;
    f.values += check.values;
    println!(
        "{test}: {HANDLES} handles created and dropped in {:.1} s against a full-speed {}, {} \
         errors, {} torn/foreign of {} values, {} out of order, {} miscounted",
        took.as_secs_f64(),
        peer.as_str().trim_start_matches("crash-").replace('-', " "),
        f.errors,
        f.torn_foreign,
        f.values,
        f.order,
        f.missed
    );
    assert!(
        f.errors + f.torn_foreign + f.order + f.missed + f.reclaim_failures == 0,
        "{test}: first problems: {:#?}",
        f.notes
    );
}

/// Counts an error of a handle in the churn.
fn churn_error(f: &mut Figures, what: &str, e: &dyn std::fmt::Debug) {
    f.errors += 1;
    f.note(format!("{what}: {e:?}"));
}

#[test]
fn state_consumer_handles_come_and_go_under_a_full_speed_producer() {
    churn_scenario(
        "churn-state-consumer",
        Direction::PeerToCreator,
        Role::CrashStateProducer,
        |seg, check, f| match StateConsumer::<Payload>::new(seg, "state") {
            Ok(mut rx) => match rx.fetch() {
                Ok(Some(v)) => {
                    let (seq, new) = (StateRef::seq(&v), StateRef::is_new(&v));
                    let mut found = Vec::new();
                    check.read(&v, seq, new, StateRef::missed(&v), |p| found.push(p));
                    for p in found {
                        f.note(format!("consumer handle: {p}"));
                    }
                }
                Ok(None) => {}
                Err(e) => churn_error(f, "fetch", &e),
            },
            Err(e) => churn_error(f, "claim", &e),
        },
    );
}

#[test]
fn queue_consumer_handles_come_and_go_under_a_full_speed_producer() {
    churn_scenario(
        "churn-queue-consumer",
        Direction::PeerToCreator,
        Role::CrashQueueProducer,
        |seg, check, f| match QueueConsumer::<Payload>::new(seg, "queue") {
            Ok(mut rx) => match rx.pop() {
                Ok(Some(m)) => {
                    let mut found = Vec::new();
                    let seq = MessageRef::seq(&m);
                    check.read(&m, seq, true, MessageRef::missed(&m), |p| found.push(p));
                    for p in found {
                        f.note(format!("consumer handle: {p}"));
                    }
                }
                Ok(None) => {}
                Err(e) => churn_error(f, "pop", &e),
            },
            Err(e) => churn_error(f, "claim", &e),
        },
    );
}

#[test]
fn state_producer_handles_come_and_go_under_a_full_speed_consumer() {
    let mut published = 0;
    churn_scenario(
        "churn-state-producer",
        Direction::CreatorToPeer,
        Role::CrashStateConsumer,
        |seg, _, f| match StateProducer::<Payload>::new(seg, "state") {
            Ok(mut tx) => {
                let seq = published + 1;
                match tx.publish_copy(&Payload { words: [seq; 64] }) {
                    Ok(got) if got == seq && tx.published() == seq => published = seq,
                    Ok(got) => {
                        f.order += 1;
                        f.note(format!("publish numbered {got}, expected {seq}"));
                        published = got;
                    }
                    Err(e) => churn_error(f, "publish", &e),
                }
            }
            Err(e) => churn_error(f, "claim", &e),
        },
    );
}

#[test]
fn queue_producer_handles_come_and_go_under_a_full_speed_consumer() {
    let mut pushed = 0;
    churn_scenario(
        "churn-queue-producer",
        Direction::CreatorToPeer,
        Role::CrashQueueConsumer,
        |seg, _, f| match QueueProducer::<Payload>::new(seg, "queue") {
            Ok(mut tx) => {
                let seq = pushed + 1;
                if tx.pushed() != pushed {
                    f.order += 1;
                    f.note(format!(
                        "a new producer found {} pushed, not {pushed}",
                        tx.pushed()
                    ));
                }
                match tx.force_push(&Payload { words: [seq; 64] }) {
                    Ok(_) => pushed = tx.pushed(),
                    Err(e) => churn_error(f, "push", &e),
                }
            }
            Err(e) => churn_error(f, "claim", &e),
        },
    );
}

// --- Successors racing for one stale segment. -------------------------------------------------

/// What the racing scenario counts; the last four must end at 0.
#[derive(Default)]
struct RaceFigures {
    rounds: u64,
    /// Rounds started together in which the two `create` calls overlapped in time.
    overlapping: u64,
    /// Rounds in which the first racer was caught holding the stale segment open, before it
    /// locked it, and stopped there.
    caught: u64,
    /// How long an unpaused `create` call took, in nanoseconds.
    spans: Vec<u64>,
    /// Rounds won by resuming, and by replacing.
    resumed: u64,
    replaced: u64,
    /// The losers' errors.
    replacing: u64,
    already_exists: u64,
    /// Rounds that two racers won, or none.
    two_winners: u64,
    no_winner: u64,
    /// Losers told anything but `Replacing` or `AlreadyExists`; names holding a segment other
    /// than the winner's; racers that failed.
    unclear: u64,
    wrong_segment: u64,
    notes: Vec<String>,
}

impl RaceFigures {
    fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("{text}");
            self.notes.push(text);
        }
    }
}

/// Leaves a stale segment under `name`: made with the crash declaration, one value published,
/// its creator gone.
fn make_stale(name: &str) {
    let _ = Segment::remove_stale(name);
    let seg = crash_declaration()
        .keep(true)
        .create(name)
        .expect("create the segment to leave stale");
    let mut tx = StateProducer::<Payload>::new(&seg, "state").expect("claim");
    tx.publish_copy(&Payload { words: [1; 64] })
        .expect("publish");
    drop(tx);
    drop(seg);
    assert!(
        matches!(Segment::open(name), Err(Error::Stale { .. })),
        "the segment is stale"
    );
}

/// A racer: the process, the pipe that starts it and lets it go, and what it said.
type Raced = (Victim, ChildStdin, Option<String>);

/// How two racers start.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// The second `gap` after the first.
    Together(Duration),
    /// The first alone, stepped through its `create` by stops (SIGSTOP) and left stopped if it
    /// is caught between opening the stale segment and taking its creator lock, as a process
    /// preempted there would be; then the second, and the first goes on (SIGCONT) once the
    /// second has finished.
    Caught,
}

/// Starts two racers as `start` says, and returns their outcomes while they still hold what
/// they made, and whether the first was caught.
fn race(name: &str, racers: [Racer; 2], start: Start, rng: &mut Rng) -> ([Raced; 2], bool) {
    let started = racers.map(|r| {
        let mut cmd = peer_command(Role::CrashRacer, name, r.code());
        cmd.stdin(Stdio::piped());
        let mut v = Victim::start(cmd, None);
        let stdin = v.child.stdin.take().expect("piped stdin");
        let ready = v.wait_line(crash_line::READY, Instant::now() + HANG);
        assert!(ready.is_some(), "a racer did not come up");
        (v, stdin)
    });
    // Both wait for their moment, 2 ms from now: they start together, each on its core.
    let at = monotonic_ns() + 2_000_000;
    let [(mut a, mut a_in), (mut b, mut b_in)] = started;
    writeln!(a_in, "go {at}").expect("start a racer");
    match start {
        Start::Together(gap) => {
            writeln!(b_in, "go {}", at + gap.as_nanos() as u64).expect("start a racer");
        }
        Start::Caught => {
            let caught = catch(&a, name, at, rng);
            // The second goes now, while the first is stopped (if it was caught).
            writeln!(b_in, "go 0").expect("start a racer");
            if caught {
                let outcome = b.wait_line("", Instant::now() + HANG);
                signal(&a, libc::SIGCONT);
                let first = a.wait_line("", Instant::now() + HANG);
                return ([(a, a_in, first), (b, b_in, outcome)], true);
            }
        }
    }
    let first = a.wait_line("", Instant::now() + HANG);
    let second = b.wait_line("", Instant::now() + HANG);
    ([(a, a_in, first), (b, b_in, second)], false)
}

/// A racer's line: the span of its `create` call and its outcome.
fn parse_outcome(line: &str) -> (u64, u64, String) {
    let mut parts = line.splitn(3, ' ');
    let mut time = || parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let (began, ended) = (time(), time());
    (began, ended, parts.next().unwrap_or_default().to_owned())
}

/// One round: a stale segment, two racers resuming or replacing it.
fn race_round(name: &str, racers: [Racer; 2], start: Start, rng: &mut Rng, f: &mut RaceFigures) {
    make_stale(name);
    let ([(a, a_in, first), (b, b_in, second)], caught) = race(name, racers, start, rng);
    let [(a_began, a_ended, first), (b_began, b_ended, second)] =
        [first, second].map(|o| parse_outcome(&o.unwrap_or_default()));
    if matches!(start, Start::Together(_)) && a_began.max(b_began) < a_ended.min(b_ended) {
        f.overlapping += 1;
    }
    if caught {
        f.caught += 1;
    } else if let Start::Together(_) = start {
        f.spans.push(a_ended.saturating_sub(a_began));
    }
    let outcomes = [first, second];
    let won: Vec<usize> = (0..2).filter(|&i| outcomes[i] == crash_line::OK).collect();
    // What the name holds while the racers still hold what they made: `Ok(true)` the
    // replacement's declaration, `Ok(false)` the stale segment's.
    let under_name = Segment::open(name).map(|s| s.channel_names().contains(&"extra"));
    match won[..] {
        [w] => {
            match racers[w] {
                Racer::Resume => f.resumed += 1,
                Racer::Replace => f.replaced += 1,
            }
            let lost = &outcomes[1 - w];
            if lost.starts_with("err Replacing") {
                f.replacing += 1;
            } else if lost.starts_with("err AlreadyExists") {
                f.already_exists += 1;
            } else {
                f.unclear += 1;
                f.note(format!("{racers:?}: the loser said `{lost}`"));
            }
            if under_name.as_ref().ok() != Some(&(racers[w] == Racer::Replace)) {
                f.wrong_segment += 1;
                f.note(format!(
                    "{racers:?}: {:?} won, the name holds {under_name:?}",
                    racers[w]
                ));
            }
        }
        [_, _] => {
            f.two_winners += 1;
            let holds = match &under_name {
                Ok(true) => "the replacement".to_owned(),
                Ok(false) => "the resumed segment".to_owned(),
                Err(e) => format!("nothing that opens: {e:?}"),
            };
            f.note(format!(
                "{racers:?} ({start:?}): both racers' create succeeded; the name holds {holds}"
            ));
        }
        _ => {
            f.no_winner += 1;
            f.note(format!("{racers:?}: nobody won: {outcomes:?}"));
        }
    }
    // Closing stdin lets a racer drop what it made and exit.
    drop((a_in, b_in));
    for v in [a, b] {
        let ended = v.finish(Instant::now() + HANG);
        if !ended.status.success() {
            f.unclear += 1;
            f.note(format!("a racer ended with {}", ended.status));
        }
    }
    f.rounds += 1;
    let _ = Segment::remove_stale(name);
}

#[test]
fn two_successors_race_for_one_stale_segment() {
    let _serial = serial();
    let test = "racing successors";
    let name = seg_name("racing-successors");
    let mut rng = Rng::new(test);
    let mut f = RaceFigures::default();
    let start = Instant::now();
    for round in 0..creator_kills() {
        let racers = match (round / 2) % 4 {
            0 => [Racer::Resume, Racer::Replace],
            1 => [Racer::Resume, Racer::Resume],
            2 => [Racer::Replace, Racer::Resume],
            _ => [Racer::Replace, Racer::Replace],
        };
        let start = if round % 2 == 0 {
            Start::Together(rng.delay(Duration::from_micros(50)))
        } else {
            Start::Caught
        };
        race_round(&name, racers, start, &mut rng, &mut f);
    }
    f.spans.sort_unstable();
    println!(
        "{test}: {:.1} s; a create takes {:.0} µs (median)",
        start.elapsed().as_secs_f64(),
        f.spans.get(f.spans.len() / 2).copied().unwrap_or(0) as f64 / 1e3
    );
    println!(
        "{test}: {} rounds (half started together: {} with the two creates overlapping; half \
         with the first stepped: {} caught between opening the stale segment and locking it), \
         won by resuming {} and by replacing {}, losers told Replacing {} \
         and AlreadyExists {}; {} rounds with two winners, {} with none, {} unclear errors, {} \
         names holding another segment than the winner's",
        f.rounds,
        f.overlapping,
        f.caught,
        f.resumed,
        f.replaced,
        f.replacing,
        f.already_exists,
        f.two_winners,
        f.no_winner,
        f.unclear,
        f.wrong_segment
    );
    assert!(
        f.two_winners + f.no_winner + f.unclear + f.wrong_segment == 0,
        "{test}: first problems: {:#?}",
        f.notes
    );
}

//! What `rtipc echo` costs a producer: the cost of one publish of a 64-byte update at 1 MHz,
//! with no echo running, with `rtipc echo` at its defaults (a look every 10 ms), with
//! `--interval 1` (a look every millisecond) and with `--interval 0` (following every update),
//! in blocks that rotate in each round.
//! The echo runs in its own process, pinned to the other core, and runs the `rtipc` command's
//! own code (`rtipc_cli::run`); its output goes to a pipe whose lines are counted, to show
//! that it followed the channel.
//!
//! `rtipc-benchmarks --echo-cost [--quick]`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtipc::{Direction, Segment, StateProducer};

use crate::payload::{fill, Line64};
use crate::stats::{median, median_f, Dist};
use crate::sys::{now_ns, pin_to, Ctx, Res};

/// The echo process's role argument.
pub const ROLE: &str = "--echo-child";
/// One publish every microsecond: 1 MHz.
const PERIOD_NS: u64 = 1_000;

/// The modes: no echo, echo at its defaults, echo following every update.
const MODES: [(&str, Option<&str>); 5] = [
    ("no echo", None),
    ("control: a process waking every 10 ms", Some(CONTROL)),
    ("rtipc echo (default: --interval 10)", Some("10")),
    ("rtipc echo --interval 1", Some("1")),
    ("rtipc echo --interval 0", Some("0")),
];

/// The control mode's interval: a process on CPU 1 that wakes every 10 ms and prints a line,
/// like the default echo, but never reads the channel. What it costs the producer is the
/// machine's (another vCPU waking), not rtipc's.
const CONTROL: &str = "control";

/// The echo process: pins itself to CPU 1 and runs `rtipc echo NAME CHANNEL --interval MS`
/// (or, in the control mode, only wakes and prints).
pub fn child(args: &[String]) -> std::process::ExitCode {
    let _ = pin_to(1);
    if args.get(3).is_some_and(|a| a == CONTROL) {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            println!("tick");
        }
    }
    let mut argv = vec!["rtipc".to_owned(), "echo".to_owned()];
    argv.extend(args.iter().cloned());
    rtipc_cli::run(argv)
}

/// An echo process on `name`, its printed lines counted by a thread.
struct Echo {
    child: Child,
    lines: std::thread::JoinHandle<u64>,
}

impl Echo {
    fn start(name: &str, interval: &str) -> Res<Echo> {
        let exe = std::env::current_exe().ctx("finding the harness binary")?;
        let mut child = Command::new(exe)
            .args([ROLE, name, "pulse", "--interval", interval])
            .stdout(Stdio::piped())
            .spawn()
            .ctx("starting the echo process")?;
        let out = child
            .stdout
            .take()
            .ok_or("the echo process has no stdout")?;
        // On the echo's core: the harness's own core is the producer's alone.
        let lines = std::thread::spawn(move || {
            let _ = pin_to(1);
            BufReader::new(out).lines().count() as u64
        });
        // Let it start and attach before the block; it writes nothing that says so.
        std::thread::sleep(Duration::from_millis(150));
        if let Some(s) = child.try_wait().ctx("looking at the echo process")? {
            return Err(format!("the echo process exited early: {s}"));
        }
        Ok(Echo { child, lines })
    }

    /// Stops it; returns how many values it printed.
    fn stop(mut self) -> Res<u64> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .join()
            .map_err(|_| "the echo line counter panicked".to_owned())
    }
}

/// `n` publishes, one per microsecond; the cost of each.
fn block(tx: &mut StateProducer<Line64>, next: &mut u64, n: u64, out: &mut Vec<u64>) -> Res<()> {
    let mut due = now_ns();
    for _ in 0..n {
        *next += 1;
        let mut g = tx.write().ctx("echo-cost write")?;
        fill(&mut g.w, *next);
        let t0 = now_ns();
        g.publish().ctx("echo-cost publish")?;
        out.push(now_ns() - t0);
        due += PERIOD_NS;
        while now_ns() < due {}
    }
    Ok(())
}

/// Runs the benchmark and prints its figures.
pub fn run(quick: bool) -> Res<()> {
    if let Err(e) = pin_to(0) {
        eprintln!("warning: could not pin to CPU 0 ({e}); figures will be noisier");
    }
    let (rounds, per_block) = if quick { (3, 100_000) } else { (11, 300_000) };
    let name = format!("rtipc-bench-echo-{}", std::process::id());
    let seg = Segment::builder()
        .state::<Line64>("pulse", Direction::CreatorToPeer)
        .create(&name)
        .ctx("creating the segment")?;
    let mut tx = StateProducer::<Line64>::new(&seg, "pulse").ctx("the producer")?;
    let mut next = 0;
    let mut all: Vec<Vec<u64>> = vec![Vec::new(); MODES.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    let mut printed = vec![0u64; MODES.len()];
    for round in 0..rounds {
        let mut medians = vec![0u64; MODES.len()];
        for i in 0..MODES.len() {
            let mode = (i + round) % MODES.len();
            let echo = match MODES[mode].1 {
                Some(interval) => Some(Echo::start(&name, interval)?),
                None => None,
            };
            let mut v = Vec::with_capacity(per_block as usize);
            block(&mut tx, &mut next, per_block, &mut v)?;
            if let Some(e) = echo {
                printed[mode] += e.stop()?;
            }
            medians[mode] = median(&mut v);
            all[mode].extend_from_slice(&v);
        }
        for mode in 0..MODES.len() {
            ratios[mode].push(medians[mode] as f64 / medians[0].max(1) as f64);
        }
    }
    report(&mut all, &mut ratios, &printed, rounds, per_block);
    Ok(())
}

fn report(all: &mut [Vec<u64>], ratios: &mut [Vec<f64>], printed: &[u64], rounds: usize, n: u64) {
    println!(
        "publish cost of a 64-byte state update at 1 MHz, {rounds} rounds of {n} publishes per mode \
         (ratio: the median over the same round's no-echo median, median over rounds)"
    );
    println!(
        "{:<38} {:>8} {:>8} {:>8} {:>9} {:>8} {:>14}",
        "mode", "median", "p99", "p99.9", "max", "ratio", "echo printed"
    );
    for (mode, (label, _)) in MODES.iter().enumerate() {
        let d = Dist::of(&mut all[mode]);
        let r = median_f(&mut ratios[mode]);
        println!(
            "{label:<38} {:>6} ns {:>5} ns {:>5} ns {:>6} ns {r:>7.2}x {:>14}",
            d.median, d.p99, d.p999, d.max, printed[mode]
        );
    }
}

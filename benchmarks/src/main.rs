//! rtipc's latency and throughput harness.
//!
//! `cargo run --release -p rtipc-benchmarks -- [--quick] [--json] [--plots]`
//!
//! Two processes (this binary spawns itself as the child), pinned to CPU 0 and CPU 1, both
//! busy-polling, measure round trips of rtipc's channels against the physical floor (`raw`:
//! one atomic word per direction in shared memory) and against iceoryx2 and a unix socketpair,
//! in rounds bracketed by the floor as MEASURING.md describes. Then: the payload sweep of state
//! channels from 8 B to 4 MiB, the determinism of the producer's publish cost, and an
//! in-process comparison with the `triple_buffer` crate. Every message is checked; a data error
//! makes the run fail.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod child;
mod det;
mod inproc;
mod payload;
mod peer;
mod plot;
mod report;
mod rounds;
mod rt;
mod stats;
mod sweep;
mod sys;
mod tput;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rtipc::StateProducer;

use crate::payload::Line64;
use crate::report::{ratio, Json};
use crate::rt::{Ends, Method};
use crate::sys::{Ctx, Res};

/// How much to measure.
pub struct Cfg {
    pub quick: bool,
    /// Print progress to stderr.
    pub progress: bool,
    /// Round-trip rounds, recorded round trips per method and round (`uds`: fewer), warm-up
    /// round trips per block, and per method before the first round.
    pub rounds: usize,
    pub per_round: u64,
    pub uds_per_round: u64,
    pub warm_block: u64,
    pub warmup: u64,
    /// Payload sweep: rounds, and updates per size and round (for 512 KiB and more: fewer).
    pub sweep_rounds: usize,
    pub sweep_per_round: u64,
    pub sweep_per_round_big: u64,
    /// Determinism: rounds of one idle and one busy block, publishes per block.
    pub det_rounds: usize,
    pub det_per_block: u64,
    /// In-process: batches of each, iterations per batch.
    pub inproc_batches: usize,
    pub inproc_iters: u64,
    /// Queue throughput: runs per size, messages per run.
    pub tput_runs: usize,
    pub tput_count_8: u64,
    pub tput_count_1k: u64,
}

impl Cfg {
    fn new(quick: bool, progress: bool) -> Cfg {
        if quick {
            Cfg {
                quick,
                progress,
                rounds: 100,
                per_round: 1000,
                uds_per_round: 100,
                warm_block: 200,
                warmup: 1000,
                sweep_rounds: 10,
                sweep_per_round: 100,
                sweep_per_round_big: 20,
                det_rounds: 20,
                det_per_block: 5000,
                inproc_batches: 100,
                inproc_iters: 20_000,
                tput_runs: 3,
                tput_count_8: 2_000_000,
                tput_count_1k: 300_000,
            }
        } else {
            Cfg {
                quick,
                progress,
                rounds: 1000,
                per_round: 1000,
                uds_per_round: 250,
                warm_block: 1000,
                warmup: 10_000,
                sweep_rounds: 50,
                sweep_per_round: 400,
                sweep_per_round_big: 100,
                det_rounds: 100,
                det_per_block: 10_000,
                inproc_batches: 500,
                inproc_iters: 20_000,
                tput_runs: 9,
                tput_count_8: 10_000_000,
                tput_count_1k: 1_000_000,
            }
        }
    }
}

struct Opts {
    quick: bool,
    json: bool,
    plots: bool,
}

const USAGE: &str = "usage: rtipc-benchmarks [--quick] [--json] [--plots]

  --quick   fewer samples (about 20 s); no plots unless --plots
  --json    one JSON object per line on stdout (the table goes to stderr)
  --plots   write docs/round_trip.png and docs/payload_sweep.png (default without --quick)

  rtipc-benchmarks --inproc-loop rtipc|triple_buffer N
            run only one in-process loop N times, for valgrind --tool=callgrind";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(child::ROLE) => {
            // The child prints its own error and flags it in the control block.
            return match child::main(&args[2..]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Some("--inproc-loop") => {
            let n = args
                .get(3)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000);
            return match inproc::loop_only(args.get(2).map_or("", String::as_str), n) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let mut opts = Opts {
        quick: false,
        json: false,
        plots: false,
    };
    for a in &args[1..] {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => opts.json = true,
            "--plots" => opts.plots = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    opts.plots |= !opts.quick;
    match run(&opts) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("FAILED: {errors} data errors (wrong sequence numbers or payload words)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything measured in one run.
struct Results {
    rt: Vec<rounds::MethodResult>,
    sweep: Vec<sweep::SweepResult>,
    sweep_errors: u64,
    det: det::DetResult,
    tput: Vec<tput::TputResult>,
    inproc: inproc::InprocResult,
    seconds: f64,
}

fn run(opts: &Opts) -> Res<u64> {
    let started = Instant::now();
    let cfg = Cfg::new(opts.quick, true);
    if let Err(e) = sys::pin_to(0) {
        eprintln!("warning: could not pin to CPU 0 ({e}); figures will be noisier");
    }
    let seg = payload::declare()
        .create_anonymous()
        .ctx("creating the segment")?;
    let (uds_parent, uds_child) = UnixStream::pair().ctx("creating the socketpair")?;
    let prefix = format!("rtipc-bench-{}", std::process::id());
    // Our ends exist before the child starts, so that its iceoryx2 publisher finds our
    // subscriber.
    let mut ends = Ends::parent(&seg, &prefix, OwnedFd::from(uds_parent))?;
    let mut sweep_tx = sweep::producers(&seg)?;
    let mut det_tx =
        StateProducer::<Line64>::new(&seg, "determinism").ctx("determinism producer")?;
    let mut tput_tx = tput::Producers::new(&seg)?;
    let mut peer = peer::Peer::spawn(&seg, OwnedFd::from(uds_child), &prefix)?;

    eprintln!("round trips ({} rounds)...", cfg.rounds);
    let methods = [
        Method::State8,
        Method::State4k,
        Method::Queue8,
        Method::Iceoryx2,
        Method::Uds,
        Method::UdsBlocking,
    ];
    let rt = rounds::run(&mut peer, &mut ends, &methods, &cfg)?;
    eprintln!("payload sweep...");
    let before = peer.errors();
    let sweep = sweep::run(&mut peer, &mut sweep_tx, &cfg)?;
    let sweep_errors = peer.errors() - before;
    eprintln!("determinism...");
    let det = det::run(&mut peer, &mut ends, &mut det_tx, &cfg)?;
    eprintln!("queue throughput...");
    let tput = tput::run(&mut peer, &mut tput_tx, &cfg)?;
    peer.quit()?;
    eprintln!("in-process...");
    let inproc = inproc::run(&cfg)?;
    let res = Results {
        rt,
        sweep,
        sweep_errors,
        det,
        tput,
        inproc,
        seconds: started.elapsed().as_secs_f64(),
    };

    let table = table(&res, &cfg);
    if opts.json {
        eprint!("{table}");
        for line in json(&res) {
            println!("{line}");
        }
    } else {
        print!("{table}");
    }
    if opts.plots {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).ctx("creating docs/")?;
        let rt_path = docs.join("round_trip.png");
        let sweep_path = docs.join("payload_sweep.png");
        plot::round_trips(
            &rt_path,
            &res.rt,
            "Round trip between two processes on two cores, by percentile",
        )?;
        plot::sweep(
            &sweep_path,
            &res.sweep,
            "State channel: publish to seen by the other process, by payload size",
        )?;
        eprintln!("wrote {} and {}", rt_path.display(), sweep_path.display());
    }
    Ok(total_errors(&res))
}

fn total_errors(r: &Results) -> u64 {
    r.rt.iter().map(|m| m.errors).sum::<u64>()
        + r.sweep_errors
        + r.det.errors
        + r.tput.iter().map(|t| t.errors).sum::<u64>()
        + r.inproc.errors
}

/// The targets of the issue: (name, value, limit).
fn targets(r: &Results) -> Vec<(&'static str, f64, f64)> {
    let get = |m: Method| r.rt.iter().find(|x| x.method == m);
    let mut t = Vec::new();
    if let Some(s8) = get(Method::State8) {
        t.push(("state_8 / raw (paired median ratio)", s8.paired.ratio, 2.0));
        if let Some(iox) = get(Method::Iceoryx2) {
            t.push((
                "state_8 / iceoryx2 (ratio of their paired ratios)",
                s8.paired.ratio / iox.paired.ratio,
                1.0,
            ));
        }
    }
    t.push((
        "publish p99.9: busy / idle consumer (paired rounds)",
        r.det.paired.ratio,
        2.0,
    ));
    t.push((
        "in-process publish+fetch: rtipc / triple_buffer",
        r.inproc.ratio,
        1.2,
    ));
    t
}

fn table(r: &Results, cfg: &Cfg) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nrtipc benchmarks ({}), {:.1} s; machine: {}",
        if cfg.quick { "--quick" } else { "full run" },
        r.seconds,
        machine()
    );
    let _ = writeln!(
        s,
        "\nRound trips, two processes pinned to CPU 0 and 1, busy-polling (ns; ratio = median of \
         per-round paired ratios to raw, stable rounds only)"
    );
    let _ = writeln!(
        s,
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>14} {:>14} {:>14} {:>6}",
        "method",
        "samples",
        "median",
        "p99",
        "p99.9",
        "max",
        "ratio",
        "stable",
        "raw<100",
        "raw100-250",
        "raw>250",
        "errors"
    );
    for m in &r.rt {
        let band = |i: usize| {
            let (_, n, ratio_v, _) = m.paired.bands[i];
            if n == 0 {
                "-".to_string()
            } else {
                format!("{} ({n})", ratio(ratio_v))
            }
        };
        let _ = writeln!(
            s,
            "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>14} {:>14} {:>14} {:>6}",
            m.method.name(),
            m.dist.samples,
            m.dist.median,
            m.dist.p99,
            m.dist.p999,
            m.dist.max,
            ratio(m.paired.ratio),
            format!("{}/{}", m.paired.stable, m.paired.rounds),
            band(0),
            band(1),
            band(2),
            m.errors
        );
    }
    let _ = writeln!(
        s,
        "({} recorded round trips per method and round after {} unrecorded, uds {} and uds_block \
         {} as they are far slower; bands: paired ratio (stable rounds) by the round's mean raw \
         median, with the number of rounds)",
        cfg.per_round,
        cfg.warm_block,
        cfg.uds_per_round,
        cfg.uds_per_round / 5
    );

    let _ = writeln!(
        s,
        "\nPayload sweep: publish to seen by the other process, payload written before the \
         clock starts (ns)"
    );
    let _ = writeln!(
        s,
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "payload", "samples", "median", "p99", "p99.9", "max"
    );
    for w in &r.sweep {
        let _ = writeln!(
            s,
            "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9}",
            w.label, w.dist.samples, w.dist.median, w.dist.p99, w.dist.p999, w.dist.max
        );
    }
    let _ = writeln!(s, "(data errors: {})", r.sweep_errors);

    let d = &r.det;
    let _ = writeln!(
        s,
        "\nDeterminism: cost of one publish (64-byte object, one every {} ns) (ns)",
        det::GAP_NS
    );
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "consumer", "samples", "median", "p99", "p99.9", "max"
    );
    for (name, x) in [("idle", &d.idle), ("fetching in a loop", &d.busy)] {
        let _ = writeln!(
            s,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9}",
            name, x.samples, x.median, x.p99, x.p999, x.max
        );
    }
    let bands: Vec<String> = d
        .paired
        .bands
        .iter()
        .map(|&(name, n, v, _)| format!("raw {name}: {} ({n})", ratio(v)))
        .collect();
    let _ = writeln!(
        s,
        "(p99.9 busy / idle: pooled {}; paired per round {} over {}/{} stable rounds, by raw band \
         {}; the busy consumer saw {} of {} updates; data errors: {})",
        ratio(d.busy.p999 as f64 / d.idle.p999 as f64),
        ratio(d.paired.ratio),
        d.paired.stable,
        d.paired.rounds,
        bands.join(", "),
        d.seen,
        d.published_busy,
        d.errors
    );

    let _ = writeln!(
        s,
        "\nQueue throughput, producer pushing as fast as possible, consumer (other process) \
         popping as fast as it can (medians of {} runs; try_push is retried while full)",
        cfg.tput_runs
    );
    let _ = writeln!(
        s,
        "{:<10} {:<11} {:>10} {:>14} {:>16} {:>10} {:>6}",
        "message", "push", "pushed", "pushes/s", "delivered msg/s", "lost", "errors"
    );
    for t in &r.tput {
        let _ = writeln!(
            s,
            "{:<10} {:<11} {:>10} {:>14.0} {:>16.0} {:>9.3}% {:>6}",
            t.name,
            t.mode,
            t.pushed,
            t.push_rate,
            t.delivered_rate,
            100.0 * t.lost as f64 / t.pushed as f64,
            t.errors
        );
    }

    let i = &r.inproc;
    let _ = writeln!(
        s,
        "\nIn-process publish + fetch, same thread, 8 bytes ({} batches of {}; medians of batch \
         ns/op)\n  rtipc {:.2} ns, triple_buffer {:.2} ns, paired ratio {} (errors: {})",
        i.batches,
        i.iters,
        i.rtipc_ns,
        i.tb_ns,
        ratio(i.ratio),
        i.errors
    );

    let _ = writeln!(s, "\nTargets");
    for (name, v, limit) in targets(r) {
        let verdict = if !v.is_finite() {
            "n/a"
        } else if v <= limit {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(s, "  {name:<50} {:>6} <= {limit:<4} {verdict}", ratio(v));
    }
    let _ = writeln!(s, "\nData errors in total: {}", total_errors(r));
    s
}

fn json(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let raw_median = r.rt.first().map_or(f64::NAN, |m| m.dist.median as f64);
    for m in &r.rt {
        let mut j = Json::new("round_trip", m.method.name());
        j.int("samples", m.dist.samples as u64)
            .int("median_ns", m.dist.median)
            .int("p99_ns", m.dist.p99)
            .int("p999_ns", m.dist.p999)
            .int("max_ns", m.dist.max)
            .num("ratio_to_raw", m.paired.ratio)
            .num(
                "pooled_median_ratio_to_raw",
                m.dist.median as f64 / raw_median,
            )
            .int("rounds", m.paired.rounds as u64)
            .int("stable_rounds", m.paired.stable as u64)
            .int("per_round", m.per_round);
        for &(band, n, v, raw) in &m.paired.bands {
            j.num(&format!("ratio_raw_{band}"), v)
                .int(&format!("rounds_raw_{band}"), n as u64)
                .num(&format!("raw_median_{band}_ns"), raw);
        }
        out.push(j.int("errors", m.errors).finish());
    }
    for w in &r.sweep {
        out.push(
            Json::new("payload_sweep", &format!("state_{}", w.bytes))
                .int("bytes", w.bytes as u64)
                .int("samples", w.dist.samples as u64)
                .int("median_ns", w.dist.median)
                .int("p99_ns", w.dist.p99)
                .int("p999_ns", w.dist.p999)
                .int("max_ns", w.dist.max)
                .finish(),
        );
    }
    let d = &r.det;
    for (name, x) in [
        ("publish_idle_consumer", &d.idle),
        ("publish_busy_consumer", &d.busy),
    ] {
        out.push(
            Json::new("determinism", name)
                .int("samples", x.samples as u64)
                .int("median_ns", x.median)
                .int("p99_ns", x.p99)
                .int("p999_ns", x.p999)
                .int("max_ns", x.max)
                .finish(),
        );
    }
    for t in &r.tput {
        out.push(
            Json::new("throughput", &format!("{}_{}", t.name, t.mode))
                .str("push", t.mode)
                .int("bytes", t.bytes as u64)
                .num("push_per_s", t.push_rate)
                .num("delivered_per_s", t.delivered_rate)
                .int("pushed", t.pushed)
                .int("received", t.received)
                .int("lost", t.lost)
                .num("loss_rate", t.lost as f64 / t.pushed as f64)
                .int("runs", t.runs as u64)
                .int("errors", t.errors)
                .finish(),
        );
    }
    let i = &r.inproc;
    out.push(
        Json::new("in_process", "publish_fetch_8")
            .num("rtipc_ns", i.rtipc_ns)
            .num("triple_buffer_ns", i.tb_ns)
            .num("ratio_to_triple_buffer", i.ratio)
            .int("batches", i.batches as u64)
            .int("iterations", i.iters)
            .finish(),
    );
    for (name, v, limit) in targets(r) {
        out.push(
            Json::new("target", name)
                .num("value", v)
                .num("limit", limit)
                .bool("met", v.is_finite() && v <= limit)
                .finish(),
        );
    }
    out.push(
        Json::new("summary", "run")
            .str("machine", &machine())
            .num("seconds", r.seconds)
            .int("errors", total_errors(r))
            .finish(),
    );
    out
}

/// The CPU model, the number of CPUs and the kernel release.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    // Not available_parallelism: that counts the CPUs this (pinned) process may use.
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    format!("{cpu}, {n} CPUs, Linux {kernel}")
}

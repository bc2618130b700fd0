//! rtipc's latency and throughput harness.
//!
//! `cargo run --release -p rtipc-benchmarks -- [--records | --open-loop] [--quick] [--json]
//! [--plots]`
//!
//! Two processes (this binary spawns itself as the child), pinned to CPU 0 and CPU 1, both
//! busy-polling, measure round trips of rtipc's channels against the physical floor (`raw`:
//! one atomic word per direction in shared memory) and against iceoryx2 and a unix socketpair,
//! in rounds bracketed by the floor as "How the figures are measured" in BENCHMARKS.md
//! describes. Then: the payload sweep of state channels from 8 B to 4 MiB, the determinism of
//! the producer's publish cost, queue and record channel throughput, and an in-process
//! comparison with the `triple_buffer` crate. `--records` runs only what concerns record
//! channels: their round trips (with the floor, `state_8` and `queue_8`) and their throughput.
//! Last, the open-loop latency of a state channel (a publisher at a fixed rate, a consumer in
//! the other process busy-polling or blocked on a futex or an eventfd, idle and under load, at
//! `SCHED_OTHER` and `SCHED_FIFO`), a few seconds of it; `--open-loop` runs only that, with a
//! million samples per configuration at 10 kHz, and draws its histograms.
//! Every message is checked; a data error makes the run fail.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod child;
mod det;
mod echo;
mod fanpub;
mod inproc;
mod openloop;
mod payload;
mod peer;
mod plot;
mod records;
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

use rtipc::{RecordProducer, StateProducer};

use crate::payload::Line64;
use crate::report::{OpenLoopResults, RecordsResults, Results};
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
    /// Record throughput (runs: `tput_runs`): records per run of 8 B, 4 KiB and 1 MiB.
    pub rec_count_8: u64,
    pub rec_count_4k: u64,
    pub rec_count_1m: u64,
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
                rec_count_8: 1_000_000,
                rec_count_4k: 100_000,
                rec_count_1m: 500,
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
                rec_count_8: 4_000_000,
                rec_count_4k: 200_000,
                rec_count_1m: 1_500,
            }
        }
    }
}

struct Opts {
    quick: bool,
    json: bool,
    plots: bool,
    records: bool,
    open_loop: bool,
}

const USAGE: &str = "usage: rtipc-benchmarks [--records | --open-loop] [--quick] [--json] [--plots]

  --records   only the record channels: their round trips against the floor, state_8 and
              queue_8, and their throughput (no plots)
  --open-loop only the open-loop latency: a publisher at 10 kHz and 1 kHz on absolute
              deadlines, the consumer in another process busy-polling or blocked on a futex
              or an eventfd, idle and under load, SCHED_OTHER and SCHED_FIFO (if permitted);
              10^6 samples per configuration at 10 kHz, 20,000 at 1 kHz, in 10 rotating
              rounds (about 25 minutes; --quick: 15 s); writes docs/open_loop_10khz.png and
              docs/open_loop_1khz.png (without --quick, or with --plots)
  --quick     fewer samples (20-40 s); no plots unless --plots
  --json      one JSON object per line on stdout (the table goes to stderr)
  --plots     write docs/round_trip.png and docs/payload_sweep.png (default without --quick)

  rtipc-benchmarks --echo-cost [--quick]
            the producer's publish cost at 1 MHz with and without `rtipc echo` running

  rtipc-benchmarks --inproc [--quick]
            only the in-process comparison with triple_buffer (pinned to CPU 0)

  rtipc-benchmarks --inproc-loop rtipc|triple_buffer|queue N
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
        Some(echo::ROLE) => return echo::child(&args[2..]),
        Some(openloop::ROLE) => return openloop::consumer_main(&args[2..]),
        Some(openloop::LOAD_ROLE) => return openloop::load_main(&args[2..]),
        Some("--echo-cost") => {
            let quick = args.get(2).is_some_and(|a| a == "--quick");
            return match echo::run(quick) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("--inproc") => {
            let quick = args.get(2).is_some_and(|a| a == "--quick");
            return match inproc_only(quick) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
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
        records: false,
        open_loop: false,
    };
    for a in &args[1..] {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => opts.json = true,
            "--plots" => opts.plots = true,
            "--records" => opts.records = true,
            "--open-loop" => opts.open_loop = true,
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
    if opts.records && opts.open_loop {
        eprintln!("--records and --open-loop are separate runs: give one\n{USAGE}");
        return ExitCode::from(2);
    }
    let result = if opts.records {
        run_records(&opts)
    } else if opts.open_loop {
        run_open_loop(&opts)
    } else {
        run(&opts)
    };
    match result {
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

/// `--inproc`: the in-process comparison alone, as in the full run (pinned to CPU 0).
fn inproc_only(quick: bool) -> Res<()> {
    if let Err(e) = sys::pin_to(0) {
        eprintln!("warning: could not pin to CPU 0 ({e}); figures will be noisier");
    }
    let cfg = Cfg::new(quick, false);
    let r = inproc::run(&cfg)?;
    println!(
        "in-process publish + fetch, 8 bytes ({} batches of {}): rtipc {:.2} ns, triple_buffer \
         {:.2} ns, paired ratio {:.3} (errors: {})",
        r.batches, r.iters, r.rtipc_ns, r.tb_ns, r.ratio, r.errors
    );
    if r.errors != 0 {
        return Err(format!("{} data errors", r.errors));
    }
    Ok(())
}

/// What every two-process run starts with: this process pinned to CPU 0, the harness's
/// segment, and this side's ends of every round-trip method. Our ends exist before the child
/// starts, so that its iceoryx2 publisher finds our subscriber; the caller spawns the child
/// (with `uds_child` and `prefix`) once our other producers exist.
struct Setup {
    seg: rtipc::Segment,
    ends: Ends,
    uds_child: UnixStream,
    prefix: String,
}

fn setup() -> Res<Setup> {
    if let Err(e) = sys::pin_to(0) {
        eprintln!("warning: could not pin to CPU 0 ({e}); figures will be noisier");
    }
    let seg = payload::declare()
        .create_anonymous()
        .ctx("creating the segment")?;
    let (uds_parent, uds_child) = UnixStream::pair().ctx("creating the socketpair")?;
    let prefix = format!("rtipc-bench-{}", std::process::id());
    let ends = Ends::parent(&seg, &prefix, OwnedFd::from(uds_parent))?;
    Ok(Setup {
        seg,
        ends,
        uds_child,
        prefix,
    })
}

/// Prints the table, or with `--json` the JSON lines (and the table on stderr).
fn print(table: &str, json: Option<Vec<String>>) {
    match json {
        Some(lines) => {
            eprint!("{table}");
            for line in lines {
                println!("{line}");
            }
        }
        None => print!("{table}"),
    }
}

fn run(opts: &Opts) -> Res<u64> {
    let started = Instant::now();
    let cfg = Cfg::new(opts.quick, true);
    let Setup {
        seg,
        mut ends,
        uds_child,
        prefix,
    } = setup()?;
    let mut sweep_tx = sweep::producers(&seg)?;
    let mut det_tx =
        StateProducer::<Line64>::new(&seg, "determinism").ctx("determinism producer")?;
    let mut tput_tx = tput::Producers::new(&seg)?;
    let mut fan_tx =
        StateProducer::<Line64>::new(&seg, "fanout_publish").ctx("fan-out publish producer")?;
    let mut rec_tx = RecordProducer::new(&seg, records::CHANNEL).ctx("record producer")?;
    let mut peer = peer::Peer::spawn(&seg, OwnedFd::from(uds_child), &prefix)?;

    eprintln!("round trips ({} rounds)...", cfg.rounds);
    let methods = [
        Method::State8,
        Method::State8Observed,
        Method::Fanout2,
        Method::Fanout4,
        Method::State4k,
        Method::Queue8,
        Method::Record8,
        Method::Record4k,
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
    eprintln!("fan-out publish cost...");
    let fanpub = fanpub::run(&mut peer, &mut ends, &mut fan_tx, &cfg)?;
    eprintln!("queue throughput...");
    let tput = tput::run(&mut peer, &mut tput_tx, &cfg)?;
    eprintln!("record throughput...");
    let rec_tput = records::run(&mut peer, &mut rec_tx, &cfg)?;
    peer.quit()?;
    eprintln!("in-process...");
    let inproc = inproc::run(&cfg)?;
    eprintln!("open loop (small: --open-loop runs it in full)...");
    let ol = openloop::run(&openloop::Plan::small())?;
    let res = Results {
        rt,
        sweep,
        sweep_errors,
        det,
        fanpub,
        tput,
        rec_tput,
        inproc,
        ol,
        seconds: started.elapsed().as_secs_f64(),
    };

    print(
        &report::table(&res, &cfg),
        opts.json.then(|| report::json(&res)),
    );
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
    Ok(report::total_errors(&res))
}

/// `--records`: the record channels' round trips, in rounds bracketed by the floor with
/// `state_8` and `queue_8` beside them, then their throughput; the same processes, pinning and
/// checks as the full run.
fn run_records(opts: &Opts) -> Res<u64> {
    let started = Instant::now();
    let cfg = Cfg::new(opts.quick, true);
    // The child attaches every end of the full run; ours exist before it starts, as there.
    let Setup {
        seg,
        mut ends,
        uds_child,
        prefix,
    } = setup()?;
    let mut rec_tx = RecordProducer::new(&seg, records::CHANNEL).ctx("record producer")?;
    let mut peer = peer::Peer::spawn(&seg, OwnedFd::from(uds_child), &prefix)?;

    eprintln!("round trips ({} rounds)...", cfg.rounds);
    let methods = [
        Method::State8,
        Method::Queue8,
        Method::Record8,
        Method::Record4k,
    ];
    let rt = rounds::run(&mut peer, &mut ends, &methods, &cfg)?;
    eprintln!("record throughput...");
    let rec_tput = records::run(&mut peer, &mut rec_tx, &cfg)?;
    peer.quit()?;
    let res = RecordsResults {
        rt,
        rec_tput,
        seconds: started.elapsed().as_secs_f64(),
    };
    print(
        &report::records_table(&res, &cfg),
        opts.json.then(|| report::records_json(&res)),
    );
    Ok(report::records_errors(&res))
}

/// `--open-loop`: the open-loop latency alone, in full (or, with `--quick`, the small version of
/// the other runs); draws its histograms into docs/ unless `--quick` without `--plots`.
fn run_open_loop(opts: &Opts) -> Res<u64> {
    let started = Instant::now();
    if let Err(e) = sys::pin_to(0) {
        eprintln!("warning: could not pin to CPU 0 ({e}); figures will be noisier");
    }
    let plan = if opts.quick {
        openloop::Plan::small()
    } else {
        openloop::Plan::full()
    };
    let ol = openloop::run(&plan)?;
    let res = OpenLoopResults {
        ol,
        seconds: started.elapsed().as_secs_f64(),
    };
    let table = report::open_loop_table(&res, opts.quick);
    if opts.json {
        eprint!("{table}");
        for line in report::open_loop_run_json(&res) {
            println!("{line}");
        }
    } else {
        print!("{table}");
    }
    if opts.plots {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).ctx("creating docs/")?;
        for path in report::open_loop_plots(&res.ol, &docs)? {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(res.ol.errors())
}

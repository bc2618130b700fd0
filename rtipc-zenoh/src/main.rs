//! `rtipc-bridge`: carries rtipc channels between machines over Zenoh.
//!
//! ```text
//! # on the robot: export segment `robot` (all its channels), listen for peers
//! rtipc-bridge --listen tcp/0.0.0.0:7447 --export robot
//! # on the dashboard host: import its `pose` channel into a local segment `robot`
//! rtipc-bridge --connect tcp/robot.local:7447 --import robot:pose
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rtipc_zenoh::{Bridge, Config};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Carry rtipc channels between machines over Zenoh: export local channels, import remote
/// ones into local segments. Logs go to standard error; SIGINT or SIGTERM stops the bridge
/// cleanly and prints each channel's counters.
#[derive(Parser, Debug)]
#[command(name = "rtipc-bridge", version)]
struct Args {
    /// A JSON5 configuration file (the same settings as the flags; flags add to its lists and
    /// replace its values).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A Zenoh endpoint to connect to (repeatable), e.g. tcp/192.168.1.20:7447.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// A Zenoh endpoint to listen on (repeatable), e.g. tcp/0.0.0.0:7447.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// The key prefix: channels are published as `rtipc/<PREFIX>/<segment>/<channel>`
    /// [default: default].
    #[arg(long)]
    prefix: Option<String>,
    /// Export a local segment's channels (SEGMENT) or one of them (SEGMENT:CHANNEL);
    /// repeatable.
    #[arg(long, value_name = "SEGMENT[:CHANNEL]")]
    export: Vec<String>,
    /// Import a remote channel into a local segment of the same name, or of the name after
    /// `=`; repeatable.
    #[arg(long, value_name = "SEGMENT:CHANNEL[=LOCAL]")]
    import: Vec<String>,
    /// Consumer ends of each imported state channel (more than 1: a fan-out channel)
    /// [default: 1].
    #[arg(long)]
    consumers: Option<u32>,
    /// How long an idle exporter sleeps between looks, in microseconds; 0 polls without
    /// sleeping (lowest latency, one busy core) [default: 100].
    #[arg(long, value_name = "MICROSECONDS")]
    poll_us: Option<u64>,
    /// Find peers by multicast scouting too (off by default: give endpoints).
    #[arg(long)]
    scouting: bool,
    /// How queues meet congestion: drop (a message the network cannot take is lost and
    /// counted; a full imported queue overwrites its oldest message) or block (the bridges
    /// wait, nothing is lost; the queue's producer never waits either way) [default: drop].
    #[arg(long, value_name = "drop|block")]
    queue_congestion: Option<String>,
    /// Log each channel's counters this often, in milliseconds.
    #[arg(long, value_name = "MILLISECONDS")]
    stats_every_ms: Option<u64>,
}

fn main() -> ExitCode {
    zenoh::try_init_log_from_env();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtipc-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let file = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let flags = Config {
        connect: args.connect,
        listen: args.listen,
        prefix: args.prefix,
        export: args.export,
        import: args.import,
        consumers: args.consumers,
        poll_us: args.poll_us,
        scouting: args.scouting.then_some(true),
        stats_every_ms: args.stats_every_ms,
        queue_congestion: args.queue_congestion,
        ..Config::default()
    };
    let settings = file.merged(flags).settings()?;
    // The signals are caught before anything starts: a SIGTERM during start-up is a clean
    // shutdown too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signals = {
        let _entered = runtime.enter();
        Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        }
    };
    let bridge = Bridge::start(&settings)?;
    let signal = runtime.block_on(wait_for_signal(signals, &bridge, settings.stats_every));
    eprintln!("rtipc-bridge: {signal}: shutting down");
    for s in bridge.shutdown() {
        eprintln!("rtipc-bridge: stats {s}");
    }
    Ok(())
}

/// The signals that stop the bridge.
struct Signals {
    int: Signal,
    term: Signal,
}

/// Waits for SIGINT or SIGTERM, logging the counters every `every` meanwhile.
async fn wait_for_signal(
    mut signals: Signals,
    bridge: &Bridge,
    every: Option<std::time::Duration>,
) -> &'static str {
    let period = every.unwrap_or(std::time::Duration::from_secs(3600));
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = signals.int.recv() => return "SIGINT",
            _ = signals.term.recv() => return "SIGTERM",
            _ = tick.tick() => {
                if every.is_some() {
                    for s in bridge.stats() {
                        eprintln!("rtipc-bridge: stats {s}");
                    }
                }
            }
        }
    }
}

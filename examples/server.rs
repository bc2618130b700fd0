//! rtipc handshake demo, server side: `cargo run --release --example server`, then
//! `cargo run --release --example client` in another terminal.
//!
//! The server listens on a unix socket (`--socket PATH`, default
//! `$XDG_RUNTIME_DIR/rtipc-demo.sock` or `/tmp/rtipc-demo.sock`), looks at the client's request
//! (its pid and uid, its channels and their user metadata) and accepts it if it asks for the
//! demo's channels. It then simulates a motor that follows the client's commands, publishes
//! its state every 10 ms and a log line (on a queue) for each new command, and exits when the
//! client has gone.

use std::time::{Duration, Instant};

use rtipc::handshake::Listener;
use rtipc::{Error, QueueProducer, Stage, StateConsumer, StateProducer, StateRef};

#[path = "demo/types.rs"]
mod types;
use types::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = socket_path();
    let listener = Listener::bind(&path)?.accept_timeout(Some(Duration::from_secs(60)));
    println!("[server] listening on {}", path.display());

    // Accept the first client that asks for the demo's channels; log and skip the others.
    let conn = loop {
        let result = listener.accept(|req| {
            let names: Vec<&str> = req.channels().iter().map(|c| c.name()).collect();
            println!(
                "[server] request from pid {} uid {}: channels {names:?}",
                req.peer().pid,
                req.peer().uid
            );
            for want in ["command", "state", "log"] {
                if !names.contains(&want) {
                    return Err(format!("this server needs a `{want}` channel"));
                }
            }
            Ok(())
        });
        match result {
            Ok(conn) => break conn,
            Err(
                e @ Error::Timeout {
                    stage: Stage::WaitingForClient,
                },
            ) => return Err(e.into()),
            Err(e) => println!("[server] handshake failed: {e}"),
        }
    };
    let seg = conn.segment();
    println!(
        "[server] client attached; its metadata for `command`: {:?}",
        String::from_utf8_lossy(seg.user_meta("command")?)
    );
    let mut commands = StateConsumer::<Command>::new(seg, "command")?;
    let mut state = StateProducer::<MotorState>::new(seg, "state")?;
    let mut log = QueueProducer::<LogLine>::new(seg, "log")?;

    let start = Instant::now();
    let (mut speed, mut target, mut command_seq, mut lines) = (0.0f64, 0.0f64, 0u64, 0u64);
    let period = Duration::from_millis(10);
    let mut next = Instant::now() + period;
    loop {
        if !conn.peer_alive() {
            println!(
                "[server] the client has gone; {} states published",
                state.published()
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the client did not finish within 60 s".into());
        }
        // Sleep until the next tick, but wake at once for a new command.
        let woken = match commands.wait(Some(next.saturating_duration_since(Instant::now()))) {
            Ok(woken) => woken,
            // The client drops its command producer as it leaves, a moment before it closes
            // the connection.
            Err(rtipc::Error::NoProducer { .. }) => {
                let deadline = Instant::now() + Duration::from_secs(5);
                while conn.peer_alive() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if conn.peer_alive() {
                    return Err("the client released its commands but stayed connected".into());
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if woken {
            if let Some(c) = commands.fetch()? {
                if StateRef::is_new(&c) {
                    target = c.target;
                    command_seq = c.seq;
                    lines += 1;
                    log.force_push(&LogLine::new(
                        lines,
                        &format!("command #{} received: target {:+.2} rad/s", c.seq, c.target),
                    ))?;
                }
            }
        }
        if Instant::now() >= next {
            next += period;
            // A first-order motor: 5 % of the way to the target per tick.
            speed += (target - speed) * 0.05;
            let mut s = state.write()?;
            s.speed = speed;
            s.target = target;
            s.time_ms = start.elapsed().as_millis() as u64;
            s.command_seq = command_seq;
            s.publish()?;
        }
    }
}

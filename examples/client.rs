//! rtipc handshake demo, client side: start `cargo run --release --example server` first, then
//! `cargo run --release --example client` (both take `--socket PATH`).
//!
//! The client asks the server for three channels (commands up; motor state and a queue of
//! log lines down, all with wake-ups), sends a new target speed every half second for three seconds,
//! prints the motor's state four times a second and every log line, then exits; the server
//! sees it go and exits too.

use std::time::{Duration, Instant};

use rtipc::handshake;
use rtipc::{MessageRef, QueueConsumer, Segment, StateConsumer, StateProducer, StateRef};

#[path = "demo/types.rs"]
mod types;
use types::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = socket_path();
    // The server may still be starting: retry for a few seconds.
    let start = Instant::now();
    let conn = loop {
        match handshake::connect(&path, &channels(Segment::builder())) {
            Ok(conn) => break conn,
            Err(e @ rtipc::Error::Io { .. }) if start.elapsed() < Duration::from_secs(30) => {
                if start.elapsed() < Duration::from_millis(20) {
                    println!("[client] waiting for the server at {}: {e}", path.display());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    };
    println!(
        "[client] attached to a segment of server pid {} with channels {:?}",
        conn.peer().pid,
        conn.segment().channel_names()
    );
    let seg = conn.segment();
    let mut commands = StateProducer::<Command>::new(seg, "command")?;
    let mut state = StateConsumer::<MotorState>::new(seg, "state")?;
    let mut log = QueueConsumer::<LogLine>::new(seg, "log")?;

    let targets = [1.0, 2.5, -1.0, 0.5, 3.0, 0.0];
    let begin = Instant::now();
    let mut next_print = begin;
    let mut sent = 0usize;
    let mut last_line = 0;
    while begin.elapsed() < Duration::from_secs(3) {
        if sent < targets.len() && begin.elapsed() >= Duration::from_millis(500) * sent as u32 {
            commands.publish_copy(&Command {
                target: targets[sent],
                seq: sent as u64 + 1,
            })?;
            sent += 1;
        }
        // Block until the server publishes its next state (every 10 ms).
        if !state.wait(Some(Duration::from_secs(1)))? {
            return Err("no state from the server for 1 s".into());
        }
        if let Some(s) = state.fetch()? {
            if Instant::now() >= next_print {
                next_print += Duration::from_millis(250);
                println!(
                    "[client] t={:5} ms  speed {:+.3} -> target {:+.2}  (after command #{}, \
                     {} states missed)",
                    s.time_ms,
                    s.speed,
                    s.target,
                    s.command_seq,
                    StateRef::missed(&s)
                );
            }
        }
        while let Some(l) = log.pop()? {
            if MessageRef::missed(&l) > 0 {
                println!("[client] log: ({} lines missed)", MessageRef::missed(&l));
            }
            last_line = l.seq;
            println!("[client] log: {}", l.text());
        }
        if !conn.peer_alive() {
            return Err("the server has gone".into());
        }
    }
    println!("[client] done: {sent} commands sent, {last_line} log lines received");
    Ok(())
}

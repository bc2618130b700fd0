//! The objects and channels shared by `examples/server.rs` and `examples/client.rs`.
#![allow(dead_code)]

use std::path::PathBuf;

use rtipc::{ChannelSpec, Direction, Object, SegmentBuilder};

/// What the client wants the motor to do.
#[derive(Object, Debug)]
#[repr(C)]
pub struct Command {
    /// Target speed, rad/s.
    pub target: f64,
    /// Increases with every command.
    pub seq: u64,
}

/// The motor's state, published by the server every 10 ms.
#[derive(Object, Debug)]
#[repr(C)]
pub struct MotorState {
    /// Current speed, rad/s.
    pub speed: f64,
    /// The target it follows.
    pub target: f64,
    /// Milliseconds since the server accepted the client.
    pub time_ms: u64,
    /// The last command the server has seen.
    pub command_seq: u64,
}

/// A line of text from the server's log, carried in order by a queue.
#[derive(Object)]
#[repr(C)]
pub struct LogLine {
    pub seq: u64,
    pub len: u32,
    pub _reserved: u32,
    pub text: [u8; 112],
}

impl LogLine {
    pub fn new(seq: u64, text: &str) -> LogLine {
        let mut line = LogLine {
            seq,
            len: 0,
            _reserved: 0,
            text: [0; 112],
        };
        let n = text.len().min(line.text.len());
        line.text[..n].copy_from_slice(&text.as_bytes()[..n]);
        line.len = n as u32;
        line
    }

    pub fn text(&self) -> String {
        let n = (self.len as usize).min(self.text.len());
        String::from_utf8_lossy(&self.text[..n]).into_owned()
    }
}

/// The client's request: commands up (latest value), motor state down (latest value), log
/// lines down (a queue of 16: every line, in order). All three can be waited on. The server
/// creates the segment and the client is its peer, so "up" is `PeerToCreator`.
pub fn channels(builder: SegmentBuilder) -> SegmentBuilder {
    builder
        .channel(
            ChannelSpec::state("command", Direction::PeerToCreator)
                .object::<Command>()
                .notify(true)
                .user_meta(*b"demo-client v1"),
        )
        .channel(
            ChannelSpec::state("state", Direction::CreatorToPeer)
                .object::<MotorState>()
                .notify(true),
        )
        .channel(
            ChannelSpec::queue("log", Direction::CreatorToPeer, 16)
                .object::<LogLine>()
                .notify(true),
        )
}

/// `--socket PATH`, else `$XDG_RUNTIME_DIR/rtipc-demo.sock`, else `/tmp/rtipc-demo.sock`.
pub fn socket_path() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--socket") {
        if let Some(p) = args.get(i + 1) {
            return PathBuf::from(p);
        }
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("rtipc-demo.sock")
}

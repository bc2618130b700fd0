//! Handing a segment to another process over a unix socket: a [`Listener`] (the server) and
//! [`connect`] (the client).
//!
//! ```no_run
//! use rtipc::handshake::{self, Listener};
//! use rtipc::{ChannelSpec, Direction, Object, Segment, StateConsumer, StateProducer};
//!
//! #[derive(Object)]
//! #[repr(C)]
//! struct Command { speed: f64 }
//! #[derive(Object)]
//! #[repr(C)]
//! struct Status { speed: f64, time_ms: u64 }
//!
//! // Server: accept clients, looking at what each asks for.
//! let listener = Listener::bind("/tmp/robot.sock")?;
//! let conn = listener.accept(|request| {
//!     if request.peer().uid != 1000 {
//!         return Err(format!("uid {} may not drive the robot", request.peer().uid));
//!     }
//!     Ok(())
//! })?;
//! let mut commands = StateConsumer::<Command>::new(conn.segment(), "command")?;
//!
//! // Client (another process): describe the channels, connect, attach typed handles.
//! let conn = handshake::connect(
//!     "/tmp/robot.sock",
//!     &Segment::builder()
//!         .channel(ChannelSpec::state("command", Direction::PeerToCreator).object::<Command>().notify(true))
//!         .channel(ChannelSpec::state("status", Direction::CreatorToPeer).object::<Status>()),
//! )?;
//! let mut commands = StateProducer::<Command>::new(conn.segment(), "command")?;
//! # Ok::<(), rtipc::Error>(())
//! ```
//!
//! # The flow
//!
//! 1. The client connects and sends a **request**: the channels it wants, declared with the
//!    same [`SegmentBuilder`](crate::SegmentBuilder) a creator uses (names, kinds, directions, slots, notification,
//!    per-channel user metadata, and every object's id, size, alignment, fingerprint and full
//!    schema in [`schema::encode`](crate::schema::encode)'s format).
//! 2. The listener decodes the request as untrusted input, shows it with the client's
//!    credentials (`SO_PEERCRED`: pid, uid, gid) to the filter passed to
//!    [`Listener::accept`], and either sends the filter's rejection reason (the client gets
//!    [`Error::Rejected`](crate::Error::Rejected)) or creates the segment: a sealed memfd plus one eventfd per
//!    notify-enabled channel, sent in one message with `SCM_RIGHTS`.
//! 3. The client attaches ([`Segment::from_fds`](crate::Segment::from_fds): seals, size, every byte of the layout, the
//!    eventfds) and reports back whether that worked; only then does `accept` return the
//!    [`Connection`]. Both sides then take typed handles, which check each object's schema as
//!    always. The segment's creator is the server; the client is its peer, so a channel from
//!    client to server is [`Direction::PeerToCreator`] and one
//!    from server to client [`Direction::CreatorToPeer`].
//!
//! # Which side creates the memory, and why the server
//!
//! The server creates the memfd, from the client's request. File descriptors only ever travel
//! from the server to the client, so the server, typically a long-running process serving
//! many clients, never maps memory that a client prepared, never receives a descriptor, and
//! decides every size itself (bounded by [`Listener::max_segment_size`]) before it allocates
//! anything. The client, which attaches, checks the segment as any peer does. The memory is
//! charged to the server, which can refuse a request that is too large.
//!
//! # The socket
//!
//! `SOCK_SEQPACKET`: connection-oriented (the peer's death closes the connection, which
//! [`Connection::peer_alive`] and the [`AsFd`](std::os::fd::AsFd) of a [`Connection`] report, `POLLHUP`), with
//! message boundaries, so every message is read whole by one `recvmsg` and its descriptors
//! arrive with it; an oversized message is detected (`MSG_TRUNC`), not split. Nothing is read
//! with `MSG_PEEK`. Every received descriptor is close-on-exec (`MSG_CMSG_CLOEXEC`) and owned
//! (`OwnedFd`) from the moment it arrives, so every error path closes it.
//!
//! # Wire format, version 1
//!
//! All integers little-endian. Every message starts with an 8-byte preamble: `magic: [u8; 4]
//! = "RTHS"`, `version: u16 = 1`, `kind: u16`.
//!
//! **Request** (kind 1, client to server, no descriptors, at most [`MAX_REQUEST_LEN`] bytes):
//!
//! | field | |
//! |---|---|
//! | `cache_line: u32` | the layout's cache-line size (power of two, 16 to 4096) |
//! | `channel_count: u32` | at most [`MAX_CHANNELS`](crate::layout::MAX_CHANNELS) |
//! | then per channel: | |
//! | `name_len: u16`, `name` | 1 to 255 bytes of UTF-8 |
//! | `kind: u8` | 1 state, 2 queue, 3 region, 4 record |
//! | `direction: u8` | 1 server to client, 2 client to server |
//! | `notify: u8` | 0 or 1 (at most [`MAX_NOTIFY_CHANNELS`] channels with 1) |
//! | `reserved: u8` | 0 |
//! | `slots: u32` | N + 2 for a state channel of N consumers, 3 to 2^20 + 2 for a queue, 1 for a region; for a record channel, its ring's size in bytes |
//! | `user_meta_len: u32`, `user_meta` | at most 64 KiB, opaque |
//! | `object_count: u32` | 1 to 64 |
//! | then per object: `id: u64`, `fingerprint: u64`, `size: u64`, `align: u64`, `schema_len: u32`, `schema` | the schema must decode and match the fingerprint, size and alignment |
//!
//! Nothing may follow the last channel.
//!
//! **Accept** (kind 2, server to client): `fd_count: u32`, with exactly `fd_count`
//! descriptors attached: the memfd, then the eventfds of the notify-enabled channels in
//! table order. **Reject** (kind 3, server to client): `reason_len: u32` (at most 4096),
//! `reason` (UTF-8). **Attached** (kind 4, client to server): `status: u32` (0 attached, 1
//! failed), `message_len: u32` (at most 4096), `message`.
//!
//! A listener answers a request of another version with a Reject, so a client of any version
//! learns why. Every blocking step on both sides has a deadline ([`DEFAULT_TIMEOUT`] unless
//! set); a request that is malformed, oversized, carries descriptors, or arrives late is
//! rejected and `accept` returns an error for that connection only: the listener stays usable.
//!
//! # Many clients at once
//!
//! A listener runs the handshakes of up to [`Listener::max_pending`] clients at once
//! ([`DEFAULT_MAX_PENDING`] unless set), each with its own deadline, so a client that is slow
//! or silent delays nobody else: [`Listener::accept`] returns whichever client attaches first.
//! A connection beyond the limit is rejected at once as busy, and its client may retry.
//!
//! # Where the code is
//!
//! `wire.rs` encodes and decodes the messages, `listener.rs` is the server, `client.rs` the
//! client and the [`Connection`] both sides end with; the socket calls are in `sys/socket.rs`.

mod client;
mod listener;
mod wire;

use std::time::Duration;

pub use client::{connect, connect_timeout, Connection};
pub use listener::Listener;

use crate::layout::{ChannelKind, Direction};
use crate::schema::Schema;

/// The wire format's version.
pub const VERSION: u16 = 1;
/// The longest request, in bytes (it must fit in a unix socket's send buffer).
pub const MAX_REQUEST_LEN: usize = 128 * 1024;
/// The most notify-enabled channels a handshake can carry: one eventfd each plus the memfd
/// must fit in one message (the kernel's `SCM_MAX_FD` is 253).
pub const MAX_NOTIFY_CHANNELS: usize = 252;
/// How long each side waits for the other by default, for the whole handshake.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on the segment a listener creates for one client.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 256 << 20;
/// How many handshakes a listener runs at once by default ([`Listener::max_pending`]): a
/// connection that arrives while this many are under way is rejected at once as busy.
pub const DEFAULT_MAX_PENDING: usize = 64;

pub(crate) const MAGIC: [u8; 4] = *b"RTHS";
pub(crate) const KIND_REQUEST: u16 = 1;
pub(crate) const KIND_ACCEPT: u16 = 2;
pub(crate) const KIND_REJECT: u16 = 3;
pub(crate) const KIND_ATTACHED: u16 = 4;
pub(crate) const MAX_TEXT: usize = 4096;

/// Descriptors a listener makes room for in a request (which must carry none), so that a few
/// are received and closed and more are reported as truncated.
pub(crate) const REQUEST_FD_ROOM: usize = 4;

/// The credentials of the process at the other end of the socket, from `SO_PEERCRED` (as
/// they were when it connected or, for the client, when the listener was bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A client's request, decoded and checked, as a listener's filter sees it.
#[derive(Debug)]
pub struct Request {
    peer: PeerCred,
    cache_line: u32,
    channels: Vec<RequestedChannel>,
}

impl Request {
    /// Who is asking.
    pub fn peer(&self) -> PeerCred {
        self.peer
    }

    /// The cache-line size the client asked the layout to use.
    pub fn cache_line(&self) -> u32 {
        self.cache_line
    }

    /// The channels asked for, in the order they will have in the segment.
    pub fn channels(&self) -> &[RequestedChannel] {
        &self.channels
    }
}

/// One channel of a [`Request`].
#[derive(Debug)]
pub struct RequestedChannel {
    name: String,
    kind: ChannelKind,
    direction: Direction,
    slots: u32,
    notify: bool,
    user_meta: Vec<u8>,
    objects: Vec<RequestedObject>,
}

impl RequestedChannel {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }
    /// Its direction, in the segment's terms: the server is the creator.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Its number of slots (for a record channel: its ring's size in bytes).
    pub fn slots(&self) -> u32 {
        self.slots
    }
    /// Whether its consumer may wait for data.
    pub fn notify(&self) -> bool {
        self.notify
    }
    /// The client's opaque metadata for it.
    pub fn user_meta(&self) -> &[u8] {
        &self.user_meta
    }
    /// The objects it carries, in slot order.
    pub fn objects(&self) -> &[RequestedObject] {
        &self.objects
    }
}

/// One object of a [`RequestedChannel`].
#[derive(Debug)]
pub struct RequestedObject {
    /// The object's id.
    pub id: u64,
    /// Its fingerprint (checked against `schema`).
    pub fingerprint: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its alignment in bytes.
    pub align: u64,
    /// Its full schema, decoded.
    pub schema: Schema,
}

//! Handing a segment to another process over a unix socket: a [`Listener`] (the server) and
//! [`connect`] (the client).
//!
//! ```no_run
//! use rtipc::handshake::{self, Listener, CLIENT_TO_SERVER, SERVER_TO_CLIENT};
//! use rtipc::{ChannelSpec, Object, Segment, StateConsumer, StateProducer};
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
//!         .channel(ChannelSpec::state("command", CLIENT_TO_SERVER).object::<Command>().notify(true))
//!         .channel(ChannelSpec::state("status", SERVER_TO_CLIENT).object::<Status>()),
//! )?;
//! let mut commands = StateProducer::<Command>::new(conn.segment(), "command")?;
//! # Ok::<(), rtipc::Error>(())
//! ```
//!
//! # The flow
//!
//! 1. The client connects and sends a **request**: the channels it wants, declared with the
//!    same [`SegmentBuilder`] a creator uses (names, kinds, directions, slots, notification,
//!    per-channel user metadata, and every object's id, size, alignment, fingerprint and full
//!    schema in [`schema::encode`]'s format).
//! 2. The listener decodes the request as untrusted input, shows it with the client's
//!    credentials (`SO_PEERCRED`: pid, uid, gid) to the filter passed to
//!    [`Listener::accept`], and either sends the filter's rejection reason (the client gets
//!    [`Error::Rejected`]) or creates the segment: a sealed memfd plus one eventfd per
//!    notify-enabled channel, sent in one message with `SCM_RIGHTS`.
//! 3. The client attaches ([`Segment::from_fds`]: seals, size, every byte of the layout, the
//!    eventfds) and reports back whether that worked; only then does `accept` return the
//!    [`Connection`]. Both sides then take typed handles, which check each object's schema as
//!    always. The segment's creator is the server; the client is its peer, so a channel from
//!    client to server is [`Direction::PeerToCreator`] ([`CLIENT_TO_SERVER`]).
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
//! [`Connection::peer_alive`] and the [`AsFd`] of a [`Connection`] report, `POLLHUP`), with
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
//! | `channel_count: u32` | at most [`MAX_CHANNELS`] |
//! | then per channel: | |
//! | `name_len: u16`, `name` | 1 to 255 bytes of UTF-8 |
//! | `kind: u8` | 1 state, 2 queue |
//! | `direction: u8` | 1 server to client, 2 client to server |
//! | `notify: u8` | 0 or 1 (at most [`MAX_NOTIFY_CHANNELS`] channels with 1) |
//! | `reserved: u8` | 0 |
//! | `slots: u32` | 3 for a state channel, 2 to 2^20 for a queue |
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

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{align_up, Direction, Kind, MAX_CHANNELS, MAX_OBJECTS, MAX_USER_META};
use crate::schema::{self, Schema};
use crate::segment::{ChannelSpec, ObjectSpec, Segment, SegmentBuilder};

/// A channel from the client to the server: the server is the segment's creator.
pub const CLIENT_TO_SERVER: Direction = Direction::PeerToCreator;
/// A channel from the server to the client.
pub const SERVER_TO_CLIENT: Direction = Direction::CreatorToPeer;

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

const MAGIC: [u8; 4] = *b"RTHS";
const KIND_REQUEST: u16 = 1;
const KIND_ACCEPT: u16 = 2;
const KIND_REJECT: u16 = 3;
const KIND_ATTACHED: u16 = 4;
const MAX_TEXT: usize = 4096;
/// The most descriptors a message may carry: `SCM_MAX_FD`.
const MAX_FDS: usize = 1 + MAX_NOTIFY_CHANNELS;
/// Descriptors a listener makes room for in a request (which must carry none), so that a few
/// are received and closed and more are reported as truncated.
const REQUEST_FD_ROOM: usize = 4;

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
    kind: Kind,
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
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Its direction, in the segment's terms: [`SERVER_TO_CLIENT`] or [`CLIENT_TO_SERVER`].
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Its number of slots.
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

// ---------------------------------------------------------------------------------------------
// Encoding and decoding.

fn preamble(kind: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v
}

/// A bounds-checked cursor over an untrusted message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!(
                "{what} at byte {} needs {n} bytes, but the message ends at byte {}",
                self.pos,
                self.buf.len()
            ));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn text(&mut self, what: &str) -> std::result::Result<String, String> {
        let len = self.u32(what)? as usize;
        if len > MAX_TEXT {
            return Err(format!("{what} is {len} bytes, more than {MAX_TEXT}"));
        }
        Ok(String::from_utf8_lossy(self.take(len, what)?).into_owned())
    }
    fn end(&self) -> std::result::Result<(), String> {
        if self.pos != self.buf.len() {
            return Err(format!(
                "{} unexpected bytes after the message's end at byte {}",
                self.buf.len() - self.pos,
                self.pos
            ));
        }
        Ok(())
    }
    /// Reads the preamble; returns the kind.
    fn preamble(&mut self) -> std::result::Result<u16, String> {
        let magic = self.take(4, "the magic")?;
        if magic != MAGIC {
            return Err(format!("bad magic {magic:02x?}: not an rtipc handshake"));
        }
        let version = self.u16("the version")?;
        if version != VERSION {
            return Err(format!(
                "handshake version {version} is not supported (this side speaks version \
                 {VERSION}); use the same rtipc version on both sides"
            ));
        }
        self.u16("the message kind")
    }
}

fn encode_request(b: &SegmentBuilder) -> Result<Vec<u8>> {
    b.validate()?;
    let notify = b.channels.iter().filter(|c| c.notify).count();
    if notify > MAX_NOTIFY_CHANNELS {
        return Err(Error::InvalidArgument(format!(
            "{notify} notify-enabled channels; a handshake carries at most \
             {MAX_NOTIFY_CHANNELS}"
        )));
    }
    let mut v = preamble(KIND_REQUEST);
    v.extend_from_slice(&b.cache_line.to_le_bytes());
    v.extend_from_slice(&(b.channels.len() as u32).to_le_bytes());
    for c in &b.channels {
        // `validate` bounded the name (255), the objects (64) and the metadata (64 KiB).
        v.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
        v.extend_from_slice(c.name.as_bytes());
        v.push(c.kind.code() as u8);
        v.push(c.direction.code() as u8);
        v.push(u8::from(c.notify));
        v.push(0);
        v.extend_from_slice(&c.slots.to_le_bytes());
        v.extend_from_slice(&(c.user_meta.len() as u32).to_le_bytes());
        v.extend_from_slice(&c.user_meta);
        v.extend_from_slice(&(c.objects.len() as u32).to_le_bytes());
        for o in &c.objects {
            let encoded = schema::encode(&o.schema);
            for w in [o.id, o.fingerprint, o.size, o.align] {
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            v.extend_from_slice(&encoded);
        }
        if v.len() > MAX_REQUEST_LEN {
            break;
        }
    }
    if v.len() > MAX_REQUEST_LEN {
        return Err(Error::InvalidArgument(format!(
            "the request is longer than the {MAX_REQUEST_LEN} bytes a handshake allows; use \
             fewer channels or less user metadata"
        )));
    }
    Ok(v)
}

/// Decodes a request; the error says what is wrong, for the client and the listener's log.
fn decode_request(buf: &[u8], peer: PeerCred) -> std::result::Result<Request, String> {
    let mut r = Reader { buf, pos: 0 };
    let kind = r.preamble()?;
    if kind != KIND_REQUEST {
        return Err(format!("expected a request (kind 1), got kind {kind}"));
    }
    let cache_line = r.u32("cache_line")?;
    let count = r.u32("channel_count")?;
    if count > MAX_CHANNELS {
        return Err(format!("{count} channels, more than {MAX_CHANNELS}"));
    }
    let mut channels: Vec<RequestedChannel> = Vec::new();
    let mut notify_count = 0;
    for i in 0..count {
        let name_len = usize::from(r.u16("a channel's name_len")?);
        if !(1..=255).contains(&name_len) {
            return Err(format!(
                "channel {i}: name length {name_len} is not 1 to 255"
            ));
        }
        let name = std::str::from_utf8(r.take(name_len, "a channel name")?)
            .map_err(|_| format!("channel {i}: the name is not UTF-8"))?
            .to_owned();
        let kind = match r.u8("kind")? {
            1 => Kind::State,
            2 => Kind::Queue,
            k => return Err(format!("channel `{name}`: unknown kind {k}")),
        };
        let direction = match r.u8("direction")? {
            1 => Direction::CreatorToPeer,
            2 => Direction::PeerToCreator,
            d => return Err(format!("channel `{name}`: unknown direction {d}")),
        };
        let notify = match r.u8("notify")? {
            0 => false,
            1 => true,
            n => return Err(format!("channel `{name}`: notify flag {n} is not 0 or 1")),
        };
        if r.u8("reserved")? != 0 {
            return Err(format!("channel `{name}`: reserved byte is not 0"));
        }
        notify_count += usize::from(notify);
        if notify_count > MAX_NOTIFY_CHANNELS {
            return Err(format!(
                "more than {MAX_NOTIFY_CHANNELS} notify-enabled channels"
            ));
        }
        let slots = r.u32("slots")?;
        let meta_len = r.u32("user_meta_len")?;
        if u64::from(meta_len) > MAX_USER_META {
            return Err(format!(
                "channel `{name}`: {meta_len} bytes of user metadata, more than 64 KiB"
            ));
        }
        let user_meta = r.take(meta_len as usize, "user metadata")?.to_vec();
        let object_count = r.u32("object_count")?;
        if object_count == 0 || object_count > MAX_OBJECTS {
            return Err(format!(
                "channel `{name}`: {object_count} objects, not 1 to {MAX_OBJECTS}"
            ));
        }
        let mut objects = Vec::new();
        for j in 0..object_count {
            let id = r.u64("an object id")?;
            let fingerprint = r.u64("a fingerprint")?;
            let size = r.u64("an object size")?;
            let align = r.u64("an object alignment")?;
            let schema_len = r.u32("schema_len")? as usize;
            let raw = r.take(schema_len, "a schema")?;
            let schema = schema::decode(raw)
                .map_err(|e| format!("channel `{name}` object {j}: malformed schema: {e}"))?;
            if schema::fingerprint(&schema) != fingerprint
                || schema.size != size
                || schema.align != align
            {
                return Err(format!(
                    "channel `{name}` object {j}: the fingerprint, size or alignment does not \
                     match the schema"
                ));
            }
            objects.push(RequestedObject {
                id,
                fingerprint,
                size,
                align,
                schema,
            });
        }
        channels.push(RequestedChannel {
            name,
            kind,
            direction,
            slots,
            notify,
            user_meta,
            objects,
        });
    }
    r.end()?;
    Ok(Request {
        peer,
        cache_line,
        channels,
    })
}

/// An upper bound of the segment a request would create, or `None` on overflow.
fn segment_size_bound(req: &Request) -> Option<u64> {
    let cl = u64::from(req.cache_line);
    if !req.cache_line.is_power_of_two() {
        return None;
    }
    let mut total: u64 = 4096 + 256 * (req.channels.len() as u64 + 1);
    for c in &req.channels {
        let mut slot = 0u64;
        for o in &c.objects {
            if !o.align.is_power_of_two() {
                return None;
            }
            slot = align_up(slot, o.align)?.checked_add(o.size)?;
            let meta = 64 + 16 * (o.schema.fields().len() as u64 + 1) + 512;
            total = total.checked_add(meta)?;
        }
        let stride = align_up(slot, cl)?;
        let buffers = stride
            .checked_mul(u64::from(c.slots))?
            .checked_add(c.kind.ctrl_len(c.slots, cl))?;
        total = total
            .checked_add(buffers)?
            .checked_add(c.user_meta.len() as u64 + 256)?;
    }
    Some(total)
}

fn builder_from(req: &Request) -> SegmentBuilder {
    let mut b = Segment::builder().cache_line(req.cache_line);
    for c in &req.channels {
        b = b.channel(ChannelSpec {
            name: c.name.clone(),
            kind: c.kind,
            direction: c.direction,
            slots: c.slots,
            notify: c.notify,
            user_meta: c.user_meta.clone(),
            objects: (c.objects.iter())
                .map(|o| ObjectSpec {
                    id: o.id,
                    fingerprint: o.fingerprint,
                    size: o.size,
                    align: o.align,
                    schema: std::borrow::Cow::Owned(o.schema.clone()),
                })
                .collect(),
        });
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Sockets.

fn cvt(r: libc::c_int, op: &'static str) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os(op))
    } else {
        Ok(r)
    }
}

fn new_socket() -> Result<OwnedFd> {
    // SAFETY: socket with valid constants returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    let fd = cvt(fd, "creating a unix socket")?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(path: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(Error::InvalidArgument(format!(
            "socket path `{}` must be 1 to {} bytes without NUL",
            path.display(),
            addr.sun_path.len() - 1
        )));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn os_err(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Waits until `fd` has one of `events`, or fails with [`Error::Timeout`] at `deadline`.
fn wait_for(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
    op: &'static str,
) -> Result<libc::c_short> {
    loop {
        // Poll at least once, even with a deadline in the past (a readiness check).
        let ms = match deadline {
            None => -1,
            // Round up so that a wait never ends before the deadline.
            Some(d) => (d.saturating_duration_since(Instant::now()))
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as libc::c_int,
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("polling a unix socket", e));
        }
        if r > 0 {
            return Ok(pfd.revents);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout { op });
        }
    }
}

/// Sends one message with `fds` attached, waiting at most until `deadline`.
fn send_msg(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
    op: &'static str,
) -> Result<()> {
    if fds.len() > MAX_FDS {
        return Err(Error::InvalidArgument(format!(
            "{} descriptors, more than {MAX_FDS} fit in one message",
            fds.len()
        )));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = size_of::<RawFd>() * raw.len();
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    loop {
        wait_for(fd, libc::POLLOUT, deadline, op)?;
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: msghdr is plain data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !raw.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            // SAFETY: the control buffer is `space` bytes, 8-aligned, and holds one header
            // with `payload` bytes of data, as CMSG_SPACE computed; `raw` has `payload` bytes.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
                std::ptr::copy_nonoverlapping(
                    raw.as_ptr().cast::<u8>(),
                    libc::CMSG_DATA(c),
                    payload,
                );
            }
        }
        // SAFETY: `msg` points to live buffers described by their lengths.
        let r = unsafe {
            libc::sendmsg(
                fd.as_raw_fd(),
                &msg,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            Some(libc::EPIPE) | Some(libc::ECONNRESET) => {
                return Err(Error::Handshake {
                    reason: "the other side closed the connection".into(),
                })
            }
            _ => return Err(Error::io(op, e)),
        }
    }
}

/// Receives one whole message of at most `max_len` bytes with at most `max_fds` descriptors,
/// waiting at most until `deadline`. Every descriptor received is owned (and so closed on any
/// error) before anything is checked.
fn recv_msg(
    fd: BorrowedFd<'_>,
    max_len: usize,
    max_fds: usize,
    deadline: Option<Instant>,
    op: &'static str,
) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; max_len.max(1)];
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((size_of::<RawFd>() * max_fds) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    loop {
        wait_for(fd, libc::POLLIN, deadline, op)?;
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg` describes live, writable buffers of the given lengths.
        let n = unsafe {
            libc::recvmsg(
                fd.as_raw_fd(),
                &mut msg,
                libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                Some(libc::ECONNRESET) => {
                    return Err(Error::Handshake {
                        reason: "the other side closed the connection".into(),
                    })
                }
                _ => return Err(Error::io(op, e)),
            }
        }
        let fds = take_fds(&msg);
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(Error::Handshake {
                reason: format!(
                    "a message carried more than the {max_fds} file descriptors expected"
                ),
            });
        }
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(Error::Handshake {
                reason: format!("a message was longer than the {max_len} bytes allowed"),
            });
        }
        if n == 0 && fds.is_empty() {
            return Err(Error::Handshake {
                reason: "the other side closed the connection (or sent an empty message)".into(),
            });
        }
        buf.truncate(n as usize);
        return Ok((buf, fds));
    }
}

/// Takes ownership of every descriptor in `msg`'s `SCM_RIGHTS` control messages.
fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled in by recvmsg; CMSG_FIRSTHDR/NXTHDR stay within the
    // `msg_controllen` bytes the kernel reported, and each SCM_RIGHTS header's data holds
    // `(cmsg_len - CMSG_LEN(0)) / 4` descriptors that the kernel installed for us.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for k in 0..len / size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.add(k * size_of::<RawFd>()).cast());
                    if raw >= 0 {
                        fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    fds
}

fn peer_cred(fd: BorrowedFd<'_>) -> Result<PeerCred> {
    let mut cred = MaybeUninit::<libc::ucred>::zeroed();
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            cred.as_mut_ptr().cast(),
            &mut len,
        )
    };
    cvt(r, "reading the peer's credentials (SO_PEERCRED)")?;
    // SAFETY: zero-initialised and filled in by the kernel; ucred is plain integers.
    let cred = unsafe { cred.assume_init() };
    Ok(PeerCred {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

fn reject_msg(reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_TEXT);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut v = preamble(KIND_REJECT);
    v.extend_from_slice(&(cut as u32).to_le_bytes());
    v.extend_from_slice(&reason.as_bytes()[..cut]);
    v
}

fn attached_msg(result: std::result::Result<(), &str>) -> Vec<u8> {
    let (status, text) = match result {
        Ok(()) => (0u32, ""),
        Err(e) => (1, e),
    };
    let mut v = preamble(KIND_ATTACHED);
    v.extend_from_slice(&status.to_le_bytes());
    let mut cut = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    v.extend_from_slice(&(cut as u32).to_le_bytes());
    v.extend_from_slice(&text.as_bytes()[..cut]);
    v
}

// ---------------------------------------------------------------------------------------------
// The listener.

/// A server on a unix socket that creates a segment for each client it accepts.
///
/// Bound with [`Listener::bind`]; every [`Listener::accept`] handles one client from request
/// to attached segment. `accept` takes `&self`, so several threads may accept on one listener.
/// The socket file is removed when the listener is dropped (if it is still the one this
/// listener bound).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
    inode: (u64, u64),
    timeout: Duration,
    accept_timeout: Option<Duration>,
    max_segment_size: u64,
}

impl Listener {
    /// Binds a listener to the socket file `path`.
    ///
    /// If `path` is a socket left behind by a listener that is gone (connecting to it is
    /// refused), it is removed and bound again; if a listener is running there, this fails
    /// with [`Error::InUse`]; anything that is not a socket is left alone (an error).
    pub fn bind(path: impl AsRef<Path>) -> Result<Listener> {
        let path = path.as_ref().to_path_buf();
        let (addr, len) = sockaddr(&path)?;
        let bind = |fd: &OwnedFd| {
            // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_un).cast(),
                    len,
                )
            };
            cvt(r, "binding the unix socket")
        };
        let fd = new_socket()?;
        if let Err(e) = bind(&fd) {
            if os_err(&e) != Some(libc::EADDRINUSE) {
                return Err(e);
            }
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| Error::io("looking at the existing socket file", e))?;
            if !meta.file_type().is_socket() {
                return Err(Error::InvalidArgument(format!(
                    "`{}` exists and is not a socket; remove it or choose another path",
                    path.display()
                )));
            }
            // Is anyone listening? A non-blocking connect answers at once.
            let probe = new_socket()?;
            // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
            let r = unsafe {
                libc::connect(
                    probe.as_raw_fd(),
                    (&addr as *const libc::sockaddr_un).cast(),
                    len,
                )
            };
            let errno = (r < 0).then(|| io::Error::last_os_error().raw_os_error());
            match errno {
                // Connected, or its backlog is full: a live listener.
                None | Some(Some(libc::EAGAIN)) => return Err(Error::InUse { path }),
                Some(Some(libc::ECONNREFUSED)) | Some(Some(libc::ENOENT)) => {
                    // Stale: nobody listens. Remove it and bind again; if another process
                    // raced us to it, the second bind reports that.
                    let _ = std::fs::remove_file(&path);
                    bind(&fd).map_err(|e| {
                        if os_err(&e) == Some(libc::EADDRINUSE) {
                            Error::InUse { path: path.clone() }
                        } else {
                            e
                        }
                    })?;
                }
                _ => return Err(Error::last_os("probing the existing socket file")),
            }
        }
        // SAFETY: listen on a bound socket.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) }, "listening")?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io("looking at the bound socket file", e))?;
        Ok(Listener {
            fd,
            path,
            inode: (meta.dev(), meta.ino()),
            timeout: DEFAULT_TIMEOUT,
            accept_timeout: None,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        })
    }

    /// Sets how long one client's handshake may take, from its connection to its report that
    /// it attached (default [`DEFAULT_TIMEOUT`]). A client that is slower gets no segment and
    /// `accept` returns [`Error::Timeout`] for it.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Listener {
        self.timeout = timeout;
        self
    }

    /// Sets how long `accept` waits for a client to connect (default: no limit); past it,
    /// `accept` returns [`Error::Timeout`].
    pub fn accept_timeout(mut self, timeout: Option<Duration>) -> Listener {
        self.accept_timeout = timeout;
        self
    }

    /// Sets the largest segment the listener creates for one client (default
    /// [`DEFAULT_MAX_SEGMENT_SIZE`]); a larger request is rejected.
    pub fn max_segment_size(mut self, bytes: u64) -> Listener {
        self.max_segment_size = bytes;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one client: waits for a connection, reads and checks its request, asks
    /// `filter`, creates the segment, sends it and waits until the client has attached.
    ///
    /// `filter` sees the decoded [`Request`] (with the client's credentials) and returns
    /// `Ok(())` to accept or `Err(reason)` to reject; the reason reaches the client as
    /// [`Error::Rejected`], and `accept` returns the same error.
    ///
    /// Every error concerns this one connection (a malformed request, [`Error::Timeout`],
    /// a client that went away, a rejection), which is closed; the listener stays usable, so
    /// a server calls `accept` in a loop and logs the errors.
    pub fn accept<F>(&self, filter: F) -> Result<Connection>
    where
        F: FnOnce(&Request) -> std::result::Result<(), String>,
    {
        let accept_deadline = self
            .accept_timeout
            .and_then(|t| Instant::now().checked_add(t));
        let conn = loop {
            wait_for(
                self.fd.as_fd(),
                libc::POLLIN,
                accept_deadline,
                "waiting for a client to connect",
            )?;
            // SAFETY: accept4 on a listening socket; the address is not wanted.
            let r = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if r >= 0 {
                // SAFETY: `r` is a new descriptor that nothing else owns.
                break unsafe { OwnedFd::from_raw_fd(r) };
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // Another thread took it, a signal, or the client gave up already.
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
                _ => return Err(Error::io("accepting a connection", e)),
            }
        };
        let deadline = Instant::now().checked_add(self.timeout);
        let peer = peer_cred(conn.as_fd())?;
        let refuse = |reason: String| {
            // Best effort: the client may be gone or not reading.
            let _ = send_msg(
                conn.as_fd(),
                &reject_msg(&reason),
                &[],
                deadline,
                "sending a rejection",
            );
        };
        let (msg, fds) = match recv_msg(
            conn.as_fd(),
            MAX_REQUEST_LEN,
            REQUEST_FD_ROOM,
            deadline,
            "waiting for the client's request",
        ) {
            Ok(m) => m,
            Err(e) => {
                if !matches!(e, Error::Timeout { .. }) {
                    refuse(format!("malformed request: {e}"));
                }
                return Err(e);
            }
        };
        if !fds.is_empty() {
            let reason = format!(
                "malformed request: it carries {} file descriptors, a request carries none",
                fds.len()
            );
            drop(fds);
            refuse(reason.clone());
            return Err(Error::Handshake { reason });
        }
        let request = match decode_request(&msg, peer) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("malformed request: {e}");
                refuse(reason.clone());
                return Err(Error::Handshake { reason });
            }
        };
        let builder = builder_from(&request);
        if let Err(e) = builder.validate() {
            let reason = format!("invalid request: {e}");
            refuse(reason.clone());
            return Err(Error::Handshake { reason });
        }
        match segment_size_bound(&request) {
            Some(n) if n <= self.max_segment_size => {}
            _ => {
                let reason = format!(
                    "the segment asked for would be larger than the listener's limit of {} \
                     bytes",
                    self.max_segment_size
                );
                refuse(reason.clone());
                return Err(Error::Rejected { reason });
            }
        }
        if let Err(reason) = filter(&request) {
            refuse(reason.clone());
            return Err(Error::Rejected { reason });
        }
        let segment = match builder.create_anonymous() {
            Ok(s) => s,
            Err(e) => {
                refuse(format!("the listener cannot create this segment: {e}"));
                return Err(e);
            }
        };
        let mut fds = vec![segment.as_fd()];
        fds.extend(segment.event_fds());
        let mut accept = preamble(KIND_ACCEPT);
        accept.extend_from_slice(&(fds.len() as u32).to_le_bytes());
        send_msg(
            conn.as_fd(),
            &accept,
            &fds,
            deadline,
            "sending the segment to the client",
        )?;
        drop(fds);
        let (msg, fds) = recv_msg(
            conn.as_fd(),
            16 + MAX_TEXT,
            REQUEST_FD_ROOM,
            deadline,
            "waiting for the client to attach",
        )?;
        let attached = (|| {
            if !fds.is_empty() {
                return Err("the report carries file descriptors".to_owned());
            }
            let mut r = Reader { buf: &msg, pos: 0 };
            if r.preamble()? != KIND_ATTACHED {
                return Err("expected the client's report (kind 4)".to_owned());
            }
            let status = r.u32("status")?;
            let text = r.text("the message")?;
            r.end()?;
            match status {
                0 => Ok(Ok(())),
                _ => Ok(Err(text)),
            }
        })();
        match attached {
            Ok(Ok(())) => Ok(Connection {
                segment,
                socket: conn,
                peer,
            }),
            Ok(Err(text)) => Err(Error::Handshake {
                reason: format!("the client could not attach: {text}"),
            }),
            Err(e) => Err(Error::Handshake {
                reason: format!("malformed report from the client: {e}"),
            }),
        }
    }
}

impl AsFd for Listener {
    /// The listening socket: readable when a client is waiting to be accepted.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Remove the socket file only if it is still ours, not one that replaced it.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.inode {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and the client.

/// One end of an established handshake: the segment, and the socket that tells whether the
/// other side is still there.
///
/// After the handshake nothing more is sent on the socket; it stays open as long as the
/// `Connection` lives, so the other side sees it close when this process drops it or dies.
/// Its [`AsFd`] becomes readable (`POLLHUP`) when the other side goes, so it can be watched
/// with poll, epoll or tokio next to the channels' own fds.
#[derive(Debug)]
pub struct Connection {
    segment: Segment,
    socket: OwnedFd,
    peer: PeerCred,
}

impl Connection {
    /// The shared segment: take typed handles from it.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The other side's credentials.
    pub fn peer(&self) -> PeerCred {
        self.peer
    }

    /// Whether the other side still holds its end of the connection: false once it has
    /// dropped its [`Connection`] or exited. Does not block.
    pub fn peer_alive(&self) -> bool {
        loop {
            match wait_for(
                self.socket.as_fd(),
                libc::POLLIN | libc::POLLRDHUP,
                Some(Instant::now()),
                "",
            ) {
                Err(Error::Timeout { .. }) => return true,
                Err(_) => return false,
                Ok(ev) if ev & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0 => {
                    return false
                }
                Ok(_) => {
                    // A message nobody expects: consume it (and close any descriptors in
                    // it) so it does not keep the socket readable, and look again.
                    if recv_msg(self.socket.as_fd(), 64, 4, None, "").is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// The segment, dropping the connection (the other side then sees this side as gone).
    pub fn into_segment(self) -> Segment {
        self.segment
    }
}

impl AsFd for Connection {
    /// The connection's socket: readable, with `POLLHUP`, once the other side has gone.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Connects to the listener at `path` and asks for the channels declared in `request`, with
/// [`DEFAULT_TIMEOUT`]. See [`connect_timeout`].
pub fn connect(path: impl AsRef<Path>, request: &SegmentBuilder) -> Result<Connection> {
    connect_timeout(path, request, DEFAULT_TIMEOUT)
}

/// Connects to the listener at `path`, asks for the channels declared in `request` (the server
/// is the creator: see [`CLIENT_TO_SERVER`]), receives and attaches the segment, and reports
/// back. The whole handshake takes at most `timeout` ([`Error::Timeout`]).
///
/// Errors: [`Error::Rejected`] with the listener's reason; [`Error::Handshake`] if the
/// listener broke the protocol (wrong descriptors, malformed reply); any attach error of
/// [`Segment::from_fds`] for a bad memfd or eventfd.
pub fn connect_timeout(
    path: impl AsRef<Path>,
    request: &SegmentBuilder,
    timeout: Duration,
) -> Result<Connection> {
    let path = path.as_ref();
    let deadline = Instant::now().checked_add(timeout);
    let msg = encode_request(request)?;
    let (addr, len) = sockaddr(path)?;
    let fd = new_socket()?;
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // The listener's backlog is full: retry until the deadline.
            Some(libc::EAGAIN) | Some(libc::EINTR) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout {
                        op: "connecting to the listener",
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return Err(Error::io("connecting to the listener", e)),
        }
    }
    let peer = peer_cred(fd.as_fd())?;
    send_msg(fd.as_fd(), &msg, &[], deadline, "sending the request")?;
    let (reply, fds) = recv_msg(
        fd.as_fd(),
        16 + MAX_TEXT,
        MAX_FDS,
        deadline,
        "waiting for the listener's reply",
    )?;
    let mut r = Reader {
        buf: &reply,
        pos: 0,
    };
    let bad = |reason: String| Error::Handshake {
        reason: format!("malformed reply from the listener: {reason}"),
    };
    match r.preamble().map_err(bad)? {
        KIND_REJECT => {
            let reason = r.text("the reason").map_err(bad)?;
            r.end().map_err(bad)?;
            return Err(Error::Rejected { reason });
        }
        KIND_ACCEPT => {}
        k => return Err(bad(format!("unexpected message kind {k}"))),
    }
    let count = r.u32("fd_count").map_err(bad)?;
    r.end().map_err(bad)?;
    if count as usize != fds.len() || fds.is_empty() {
        return Err(Error::Handshake {
            reason: format!(
                "the listener announced {count} file descriptors and sent {}; a segment \
                 needs its memfd and one eventfd per notify-enabled channel",
                fds.len()
            ),
        });
    }
    let mut fds = fds.into_iter();
    let memfd = fds.next().expect("checked: not empty");
    let attached = Segment::from_fds(memfd, fds.collect()).and_then(|segment| {
        let wanted: Vec<&str> = request.channels.iter().map(|c| c.name.as_str()).collect();
        if segment.channel_names() != wanted {
            return Err(Error::Handshake {
                reason: format!(
                    "the listener created channels {:?}, not the {:?} asked for",
                    segment.channel_names(),
                    wanted
                ),
            });
        }
        Ok(segment)
    });
    let report = match &attached {
        Ok(_) => attached_msg(Ok(())),
        Err(e) => attached_msg(Err(&e.to_string())),
    };
    match attached {
        Ok(segment) => {
            send_msg(
                fd.as_fd(),
                &report,
                &[],
                deadline,
                "reporting to the listener",
            )?;
            Ok(Connection {
                segment,
                socket: fd,
                peer,
            })
        }
        Err(e) => {
            let _ = send_msg(
                fd.as_fd(),
                &report,
                &[],
                deadline,
                "reporting to the listener",
            );
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Object;

    #[derive(Object)]
    #[repr(C)]
    struct Probe {
        a: u64,
        b: [f32; 4],
    }

    fn builder() -> SegmentBuilder {
        Segment::builder()
            .channel(
                ChannelSpec::state("up", CLIENT_TO_SERVER)
                    .object::<Probe>()
                    .notify(true)
                    .user_meta(*b"hello"),
            )
            .channel(ChannelSpec::state("down", SERVER_TO_CLIENT).object::<Probe>())
    }

    const PEER: PeerCred = PeerCred {
        pid: 1,
        uid: 2,
        gid: 3,
    };

    #[test]
    fn request_round_trip() {
        let bytes = encode_request(&builder()).unwrap();
        let req = decode_request(&bytes, PEER).unwrap();
        assert_eq!(req.peer(), PEER);
        assert_eq!(req.channels().len(), 2);
        let up = &req.channels()[0];
        assert_eq!(
            (
                up.name(),
                up.kind(),
                up.direction(),
                up.notify(),
                up.user_meta()
            ),
            ("up", Kind::State, CLIENT_TO_SERVER, true, &b"hello"[..])
        );
        assert_eq!(up.objects()[0].fingerprint, <Probe as Object>::FINGERPRINT);
        assert_eq!(&up.objects()[0].schema, <Probe as Object>::SCHEMA);
        // And the server can build it.
        builder_from(&req).create_anonymous().unwrap();
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_an_error() {
        let bytes = encode_request(&builder()).unwrap();
        for n in 0..bytes.len() {
            assert!(
                decode_request(&bytes[..n], PEER).is_err(),
                "truncated to {n}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_request(&long, PEER).is_err());
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let bytes = encode_request(&builder()).unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = bytes.clone();
            let at = (x % b.len() as u64) as usize;
            b[at] ^= (x >> 32) as u8 | 1;
            if let Ok(req) = decode_request(&b, PEER) {
                // A flip in a name or in user metadata still decodes; building must then
                // either work or fail cleanly.
                let _ = builder_from(&req).validate();
            }
        }
    }
}

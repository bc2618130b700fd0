//! rtipc's two error types: [`Error`] for setup and attach, [`DataError`] for the data path.

use std::fmt;
use std::io;

use crate::layout::{End, FormatError};
use crate::schema::{DecodeError, SchemaDiff};
use crate::sync::{BadWord, CorruptWord};

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of the data path: `publish`, `fetch`, `push`, `pop` and their views.
///
/// Small and `Copy` (16 bytes), so that returning it costs the data path nothing. Converts into
/// [`Error`] with `?`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataError {
    /// A word in the channel's control block breaks the protocol: the peer is buggy or
    /// something else wrote into the segment. The handle refuses further use.
    Corrupt {
        /// The word as read.
        word: u64,
        /// What is wrong with it.
        what: CorruptWord,
    },
    /// An earlier operation of this handle found a corrupt word; the handle refuses further
    /// use.
    Poisoned,
    /// An observer's copies were all overwritten by the producer while it made them: it
    /// returns nothing this time. Call again; nothing is wrong with the channel.
    Lapped,
    /// A record channel's lossless reservation found too little room: `needed` bytes (the
    /// record with its header, and the padding to the end of the ring if it wraps) but only
    /// `free` are free until the consumer takes records. Nothing was reserved.
    NoRoom {
        /// Bytes the record needs (at most half of a ring of at most 1 GiB).
        needed: u32,
        /// Bytes free now.
        free: u32,
    },
    /// A record longer than the channel's maximum was asked for.
    TooLong {
        /// Elements asked for.
        len: u64,
        /// The channel's maximum, in elements (at most half of a ring of at most 1 GiB).
        max: u32,
    },
    /// A record channel's overwrite-oldest reservation found the record the consumer holds in
    /// the way: it is never overwritten. Try again once the consumer releases it.
    Held,
}

impl From<BadWord> for DataError {
    fn from(b: BadWord) -> DataError {
        DataError::Corrupt {
            word: b.word,
            what: b.reason,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Corrupt { word, what } => write!(
                f,
                "corrupt control word {word:#x}: {}; the handle refuses further use: drop it \
                 and claim the end again",
                what.text()
            ),
            DataError::Poisoned => f.write_str(
                "this handle found a corrupt word in shared memory earlier and refuses further \
                 use; drop it and claim the end again",
            ),
            DataError::Lapped => f.write_str(
                "the producer rewrote the slot during each of the observer's copies; nothing \
                 was returned this time: call again",
            ),
            DataError::NoRoom { needed, free } => write!(
                f,
                "the record needs {needed} bytes of the ring but only {free} are free; nothing \
                 was reserved: wait for the consumer, make the ring larger, or use \
                 `reserve_overwrite` to drop the oldest records"
            ),
            DataError::TooLong { len, max } => write!(
                f,
                "a record of {len} elements is longer than the channel's maximum of {max}; a \
                 ring of R bytes holds records of up to about R/2 bytes"
            ),
            DataError::Held => f.write_str(
                "the record the consumer holds is in the way and is never overwritten; nothing \
                 was reserved: try again once the consumer releases it",
            ),
        }
    }
}

impl fmt::Debug for DataError {
    /// The variant's name and the `Display` text, as for [`Error`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            DataError::Corrupt { .. } => "Corrupt",
            DataError::Poisoned => "Poisoned",
            DataError::Lapped => "Lapped",
            DataError::NoRoom { .. } => "NoRoom",
            DataError::TooLong { .. } => "TooLong",
            DataError::Held => "Held",
        };
        write!(f, "{variant}: {self}")
    }
}

impl std::error::Error for DataError {}

/// A blocking step that can time out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// A listener waiting for a client to connect (`Listener::accept_timeout`).
    WaitingForClient,
    /// A listener waiting for a connected client's request.
    ReadingRequest,
    /// A listener sending the segment to its client.
    SendingSegment,
    /// A listener waiting for its client to report that it attached.
    WaitingForAttach,
    /// A client connecting to a listener whose backlog is full.
    Connecting,
    /// A client sending its request.
    SendingRequest,
    /// A client waiting for the listener's reply.
    WaitingForReply,
    /// A client reporting back to the listener.
    Reporting,
}

impl Stage {
    fn text(self) -> &'static str {
        match self {
            Stage::WaitingForClient => "waiting for a client to connect",
            Stage::ReadingRequest => "waiting for the client's request",
            Stage::SendingSegment => "sending the segment to the client",
            Stage::WaitingForAttach => "waiting for the client to attach",
            Stage::Connecting => "connecting to the listener",
            Stage::SendingRequest => "sending the request",
            Stage::WaitingForReply => "waiting for the listener's reply",
            Stage::Reporting => "reporting to the listener",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Everything that can go wrong in setting up and attaching.
///
/// Each variant's `Display` says what happened and, where it can, what to do about it; it
/// includes the underlying cause, so [`source`](std::error::Error::source) returns `None`.
/// `Debug` shows the variant and the same text, so `fn main() -> Result<(), Box<dyn Error>>`
/// prints the helpful message. Nothing a peer writes into a segment or sends over a socket
/// makes rtipc panic: it becomes one of these errors.
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Io {
        /// What rtipc was doing, such as `"creating memfd"`.
        op: &'static str,
        /// The operating system's error.
        error: io::Error,
    },
    /// An encoded schema in a segment or a request could not be decoded.
    MalformedSchema {
        /// Where the schema came from, such as the channel and object it describes.
        context: String,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// The segment's bytes break the layout's rules: a field has a value that is not allowed.
    Corrupt {
        /// The field, such as `"header.segment_size"` or `"channel[2].slot_size"`.
        field: String,
        /// The value found in the segment.
        value: u64,
        /// Why it is not allowed.
        reason: String,
    },
    /// A word on the data path broke the protocol (see [`DataError`]).
    Data(DataError),
    /// The segment uses a layout version this build does not understand.
    UnsupportedVersion {
        /// The version found in the segment.
        found: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// No channel with this name exists in the segment.
    ChannelNotFound {
        /// The name asked for.
        name: String,
        /// The names of the channels that exist.
        available: Vec<String>,
    },
    /// The channel exists but does not carry an object with this id.
    ObjectNotFound {
        /// The channel searched.
        channel: String,
        /// The object's type name.
        object: String,
        /// The object's id.
        id: u64,
    },
    /// The channel carries an object of this type name, but under another id.
    IdMismatch {
        /// The channel.
        channel: String,
        /// The object's type name.
        object: String,
        /// Our id for it.
        ours: u64,
        /// The id in the segment.
        theirs: u64,
    },
    /// The peer's schema of an object differs from ours.
    SchemaMismatch {
        /// The channel carrying the object.
        channel: String,
        /// The object's type name.
        object: String,
        /// What differs: id, size, alignment, fingerprint and field by field.
        diff: SchemaDiff,
    },
    /// A channel was asked for with the wrong kind or direction.
    WrongChannel {
        /// The channel.
        channel: String,
        /// What was asked for, such as `"a state consumer for the peer"`.
        wanted: String,
        /// What the channel is, such as `"a queue channel from creator to peer"`.
        found: String,
    },
    /// The end of the channel is held by another handle, in this or another process, which
    /// is running (a claim ends with its holder's handle or process, and the end can then be
    /// claimed at once).
    AlreadyClaimed {
        /// The channel.
        channel: String,
        /// Which end.
        end: End,
        /// The holder's process id as the holder wrote it: in the holder's own pid namespace,
        /// which may not be this process's.
        holder: Option<u32>,
    },
    /// Every consumer end of a fan-out state channel is held.
    AllConsumersClaimed {
        /// The channel.
        channel: String,
        /// How many consumer ends it has.
        consumers: u32,
    },
    /// A named segment exists and its creator is alive.
    AlreadyExists {
        /// The segment's name.
        name: String,
    },
    /// A named segment was left behind by a creator that is no longer running.
    Stale {
        /// The segment's name.
        name: String,
        /// The dead creator's process id, as its header records it.
        pid: u32,
    },
    /// Another process is resuming, replacing or removing this stale segment right now.
    Replacing {
        /// The segment's name.
        name: String,
    },
    /// The segment's creator is gone (see [`Segment::check`](crate::Segment::check)); a
    /// creator restarted with the same declaration resumes this very segment.
    CreatorGone {
        /// The segment's name, or `(anonymous)`.
        segment: String,
    },
    /// The segment was replaced under its name by a creator with another declaration: attach
    /// again with [`Segment::open`](crate::Segment::open).
    Replaced {
        /// The segment's name.
        name: String,
    },
    /// No process holds the producer end of the channel: it exited or has not started yet.
    NoProducer {
        /// The channel.
        channel: String,
    },
    /// The segment's creator has not finished initialising it yet; retry shortly.
    NotReady,
    /// A named segment does not exist.
    NotFound {
        /// The segment's name.
        name: String,
    },
    /// An argument given to rtipc is not valid.
    InvalidArgument(String),
    /// The channel was created without notification, so its consumer cannot wait.
    NotifyDisabled {
        /// The channel.
        channel: String,
    },
    /// The channel has no eventfd to poll (it is in a named segment, which wakes with a futex
    /// only); `wait` works, polling does not.
    NoEventFd {
        /// The channel.
        channel: String,
    },
    /// The listener refused the handshake; `reason` is the listener's explanation.
    Rejected {
        /// Why, as the listener's filter put it.
        reason: String,
    },
    /// A blocking step took longer than its timeout.
    Timeout {
        /// The step.
        stage: Stage,
    },
    /// The other side of a handshake broke the protocol: a malformed or oversized message,
    /// wrong file descriptors, or a closed connection.
    Handshake {
        /// What was wrong.
        reason: String,
    },
    /// A listener is already running on this socket path.
    InUse {
        /// The socket path.
        path: std::path::PathBuf,
    },
    /// Locking memory was refused because the process may lock less than it needs
    /// (`RLIMIT_MEMLOCK`) and has no `CAP_IPC_LOCK`.
    MemoryLockLimit {
        /// Bytes the lock needed.
        needed: u64,
        /// The process's limit, in bytes (`None`: unlimited, so the kernel ran out).
        limit: Option<u64>,
    },
    /// Huge pages were asked for and the system has too few free ones reserved.
    NoHugePages {
        /// Bytes the segment needs, rounded up to whole huge pages.
        needed: u64,
        /// The huge page size, in bytes; 0 when the kernel offers no huge pages at all.
        page: u64,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, error: io::Error) -> Error {
        Error::Io { op, error }
    }

    pub(crate) fn corrupt(
        field: impl Into<String>,
        value: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            field: field.into(),
            value,
            reason: reason.into(),
        }
    }
}

impl Error {
    /// Whether trying the same call again later can succeed without anything else changing:
    /// a segment not created yet ([`Error::NotFound`]), still being built
    /// ([`Error::NotReady`]), left by a creator that may restart ([`Error::Stale`],
    /// [`Error::CreatorGone`]), being taken over ([`Error::Replacing`]), an end held by a
    /// process that may exit ([`Error::AlreadyClaimed`]), a channel without a producer yet
    /// ([`Error::NoProducer`]), or a timeout. Everything else (corrupt or mismatching segments,
    /// invalid arguments, a refusing listener) needs a change first.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. }
                | Error::NotReady
                | Error::Stale { .. }
                | Error::CreatorGone { .. }
                | Error::Replacing { .. }
                | Error::AlreadyClaimed { .. }
                | Error::AllConsumersClaimed { .. }
                | Error::NoProducer { .. }
                | Error::Timeout { .. }
        )
    }
}

impl From<DataError> for Error {
    fn from(e: DataError) -> Error {
        Error::Data(e)
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Error {
        match e {
            FormatError::Corrupt {
                field,
                value,
                reason,
            } => Error::Corrupt {
                field,
                value,
                reason,
            },
            FormatError::Version { found, supported } => {
                Error::UnsupportedVersion { found, supported }
            }
            FormatError::Schema { context, error } => Error::MalformedSchema { context, error },
            FormatError::Invalid(msg) => Error::InvalidArgument(msg),
        }
    }
}

fn names(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "`{n}`")?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, error } => write!(f, "{op}: {error}"),
            Error::MalformedSchema { context, error } => {
                write!(f, "malformed schema for {context}: {error}")
            }
            Error::Corrupt {
                field,
                value,
                reason,
            } => write!(f, "corrupt segment: `{field}` is {value}: {reason}"),
            Error::Data(e) => e.fmt(f),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "segment layout version {found} is not supported (this build reads version \
                 {supported}); build both sides with the same rtipc layout version"
            ),
            Error::ChannelNotFound { name, available } => {
                write!(f, "no channel named `{name}` in the segment; ")?;
                if available.is_empty() {
                    f.write_str("it has no channels")
                } else {
                    f.write_str("channels: ")?;
                    names(f, available)
                }
            }
            Error::ObjectNotFound {
                channel,
                object,
                id,
            } => write!(
                f,
                "channel `{channel}` carries no object `{object}` (id {id:#018x}); check that \
                 both sides declare it in this channel"
            ),
            Error::IdMismatch {
                channel,
                object,
                ours,
                theirs,
            } => write!(
                f,
                "channel `{channel}` carries `{object}` with id {theirs:#018x}, but this build \
                 gives it id {ours:#018x}; make both sides use the same `#[rtipc(id = ...)]`"
            ),
            Error::SchemaMismatch {
                channel,
                object,
                diff,
            } => write!(
                f,
                "schema mismatch for `{object}` in channel `{channel}`: {diff}"
            ),
            Error::WrongChannel {
                channel,
                wanted,
                found,
            } => write!(f, "channel `{channel}` is {found}, not {wanted}"),
            Error::AlreadyClaimed { .. }
            | Error::AllConsumersClaimed { .. }
            | Error::AlreadyExists { .. }
            | Error::Stale { .. }
            | Error::Replacing { .. }
            | Error::CreatorGone { .. }
            | Error::Replaced { .. }
            | Error::NoProducer { .. } => self.fmt_lifecycle(f),
            Error::NotReady => {
                f.write_str("the segment is still being initialised by its creator; retry shortly")
            }
            Error::NotFound { name } => write!(f, "no segment named `{name}`"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::NotifyDisabled { channel } => write!(
                f,
                "channel `{channel}` was created without notification, so its consumer cannot \
                 wait; declare it with `ChannelSpec::notify(true)`"
            ),
            Error::NoEventFd { channel } => write!(
                f,
                "channel `{channel}` has no eventfd to poll: it is in a named segment, which \
                 wakes with a futex; use `wait`, or an anonymous segment to poll"
            ),
            Error::Rejected { reason } => {
                write!(f, "the listener rejected the handshake: {reason}")
            }
            Error::Timeout { stage } => write!(f, "timed out {stage}"),
            Error::Handshake { reason } => write!(f, "handshake failed: {reason}"),
            Error::InUse { path } => write!(
                f,
                "a listener is already running on `{}`; stop it or choose another path",
                path.display()
            ),
            Error::MemoryLockLimit { .. } | Error::NoHugePages { .. } => self.fmt_memory(f),
        }
    }
}

impl Error {
    /// The messages of the errors about keeping memory resident.
    fn fmt_memory(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MemoryLockLimit { needed, limit } => match limit {
                Some(limit) => write!(
                    f,
                    "locking {needed} bytes of memory needs RLIMIT_MEMLOCK of at least that, \
                     but this process may lock {limit}: raise it (`ulimit -l`, \
                     `LimitMEMLOCK=` in a systemd unit, `memlock` in limits.conf) or give the \
                     process CAP_IPC_LOCK"
                ),
                None => write!(
                    f,
                    "locking {needed} bytes of memory failed although RLIMIT_MEMLOCK is \
                     unlimited: the system is short of lockable memory"
                ),
            },
            Error::NoHugePages { needed, page: 0 } => write!(
                f,
                "the segment needs {needed} bytes of huge pages but this system offers none \
                 (no `Hugepagesize` in /proc/meminfo: a kernel without hugetlbfs); create it \
                 without huge pages"
            ),
            Error::NoHugePages { needed, page } => write!(
                f,
                "the segment needs {} huge pages of {} KiB and the system has fewer free: \
                 reserve some (`echo N > /proc/sys/vm/nr_hugepages`, or `hugepages=N` on the \
                 kernel command line), or create it without huge pages",
                needed.div_ceil(*page),
                page / 1024
            ),
            _ => unreachable!("only the memory errors"),
        }
    }
}

impl Error {
    /// The messages of the errors about who holds what: claims, creators, producers.
    fn fmt_lifecycle(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyClaimed {
                channel,
                end,
                holder,
            } => {
                write!(f, "the {end} end of channel `{channel}` is held by ")?;
                match holder {
                    Some(pid) if *pid == std::process::id() => {
                        f.write_str("another handle in this process")?
                    }
                    Some(pid) => write!(f, "process {pid}, which is running")?,
                    None => f.write_str("a running process")?,
                }
                f.write_str(
                    "; drop that handle, or let that process exit: the end can be claimed as \
                     soon as it has",
                )
            }
            Error::AllConsumersClaimed { channel, consumers } => write!(
                f,
                "all {consumers} consumer ends of channel `{channel}` are held by running \
                 handles; drop one, declare more with `.consumers(n)`, or read the channel \
                 with an observer (`StateObserver`), which needs no end"
            ),
            Error::AlreadyExists { name } => write!(
                f,
                "segment `{name}` already exists and its creator is running"
            ),
            Error::Stale { name, pid } => write!(
                f,
                "segment `{name}` was left by process {pid}, which is no longer running; a peer \
                 can wait for its creator to restart and resume it (`Segment::wait_open`); a \
                 creator with another declaration can replace it (`replace_stale(true)`) or \
                 remove it (`Segment::remove_stale`)"
            ),
            Error::Replacing { name } => write!(
                f,
                "another process is resuming, replacing or removing stale segment `{name}` \
                 right now; retry"
            ),
            Error::CreatorGone { segment } => write!(
                f,
                "the creator of segment `{segment}` is no longer running; a creator restarted \
                 with the same declaration resumes it, and this handle carries on"
            ),
            Error::Replaced { name } => write!(
                f,
                "segment `{name}` was replaced by a creator with another declaration; attach \
                 again with `Segment::open`"
            ),
            Error::NoProducer { channel } => write!(
                f,
                "no process holds the producer end of channel `{channel}`: it has exited or \
                 not started yet; wait for it with `wait_for_producer`, or retry"
            ),
            _ => unreachable!("called for lifecycle errors only"),
        }
    }
}

impl fmt::Debug for Error {
    /// The variant's name and the `Display` text, so that a `main` returning
    /// `Result<(), Box<dyn Error>>` prints something a person can act on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Error::Io { .. } => "Io",
            Error::MalformedSchema { .. } => "MalformedSchema",
            Error::Corrupt { .. } => "Corrupt",
            Error::Data(_) => "Data",
            Error::UnsupportedVersion { .. } => "UnsupportedVersion",
            Error::ChannelNotFound { .. } => "ChannelNotFound",
            Error::ObjectNotFound { .. } => "ObjectNotFound",
            Error::IdMismatch { .. } => "IdMismatch",
            Error::SchemaMismatch { .. } => "SchemaMismatch",
            Error::WrongChannel { .. } => "WrongChannel",
            Error::AlreadyClaimed { .. } => "AlreadyClaimed",
            Error::AllConsumersClaimed { .. } => "AllConsumersClaimed",
            Error::AlreadyExists { .. } => "AlreadyExists",
            Error::Stale { .. } => "Stale",
            Error::Replacing { .. } => "Replacing",
            Error::CreatorGone { .. } => "CreatorGone",
            Error::Replaced { .. } => "Replaced",
            Error::NoProducer { .. } => "NoProducer",
            Error::NotReady => "NotReady",
            Error::NotFound { .. } => "NotFound",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::NotifyDisabled { .. } => "NotifyDisabled",
            Error::NoEventFd { .. } => "NoEventFd",
            Error::Rejected { .. } => "Rejected",
            Error::Timeout { .. } => "Timeout",
            Error::Handshake { .. } => "Handshake",
            Error::InUse { .. } => "InUse",
            Error::MemoryLockLimit { .. } => "MemoryLockLimit",
            Error::NoHugePages { .. } => "NoHugePages",
        };
        write!(f, "{variant}: {self}")
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_path_error_is_small_and_copy() {
        fn copy<T: Copy>() {}
        copy::<DataError>();
        assert!(size_of::<DataError>() <= 16, "{}", size_of::<DataError>());
        assert!(size_of::<std::result::Result<u64, DataError>>() <= 24);
    }

    #[test]
    fn debug_shows_the_display_text() {
        let e = Error::Stale {
            name: "robot".into(),
            pid: 7,
        };
        let debug = format!("{e:?}");
        assert!(debug.starts_with("Stale: "), "{debug}");
        assert!(debug.contains("(`Segment::wait_open`)"), "{debug}");
        assert!(e.is_retryable(), "a creator may restart");
    }

    #[test]
    fn display_does_not_repeat_a_source() {
        let e = Error::io("creating memfd", io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.to_string().starts_with("creating memfd: "), "{e}");
    }

    #[test]
    fn the_poisoned_message_says_what_to_do() {
        let text = DataError::Poisoned.to_string();
        assert!(text.contains("drop it and claim the end again"), "{text}");
        let e: Error = DataError::Poisoned.into();
        assert_eq!(e.to_string(), text);
    }
}

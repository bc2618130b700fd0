//! The one error type of rtipc.

use std::fmt;
use std::io;

use crate::schema::{DecodeError, SchemaDiff};

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rtipc.
///
/// Each variant's `Display` says what happened and, where it can, what to do about it. Nothing
/// a peer writes into a segment or sends over a socket makes rtipc panic: it becomes one of
/// these errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Io {
        /// What rtipc was doing, such as `"creating memfd"`.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// An encoded schema could not be decoded.
    MalformedSchema {
        /// Where the schema came from, such as the channel and object it describes.
        context: String,
        /// What is wrong with it.
        source: DecodeError,
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
        /// What was asked for, such as `"a state consumer"`.
        wanted: String,
        /// What the channel is, such as `"a queue channel from creator to peer"`.
        found: String,
    },
    /// The end of the channel is already held by another handle, in this or another process.
    AlreadyClaimed {
        /// The channel.
        channel: String,
        /// `"producer"` or `"consumer"`.
        end: &'static str,
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
        /// The dead creator's process id.
        pid: u32,
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
    // Wake-ups and the handshake.
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
    /// A blocking step of a handshake took longer than its timeout.
    Timeout {
        /// The step, such as `"waiting for the client's request"`.
        op: &'static str,
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
}

impl Error {
    pub(crate) fn io(op: &'static str, source: io::Error) -> Error {
        Error::Io { op, source }
    }

    pub(crate) fn last_os(op: &'static str) -> Error {
        Error::io(op, io::Error::last_os_error())
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "{op}: {source}"),
            Error::MalformedSchema { context, source } => {
                write!(f, "malformed schema for {context}: {source}")
            }
            Error::Corrupt {
                field,
                value,
                reason,
            } => write!(f, "corrupt segment: `{field}` is {value}: {reason}"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "segment layout version {found} is not supported (this build reads version \
                 {supported}); build both sides with the same rtipc layout version"
            ),
            Error::ChannelNotFound { name, available } => {
                write!(f, "no channel named `{name}` in the segment; ")?;
                if available.is_empty() {
                    write!(f, "it has no channels")
                } else {
                    write!(f, "channels: ")?;
                    for (i, n) in available.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "`{n}`")?;
                    }
                    Ok(())
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
            Error::AlreadyClaimed { channel, end } => write!(
                f,
                "the {end} end of channel `{channel}` is already held by another handle; drop \
                 that handle first"
            ),
            Error::AlreadyExists { name } => write!(
                f,
                "segment `{name}` already exists and its creator is running"
            ),
            Error::Stale { name, pid } => write!(
                f,
                "segment `{name}` was left by process {pid}, which is no longer running; \
                 remove it with `Segment::remove_stale` or create with `replace_stale(true)`"
            ),
            Error::NotReady => write!(
                f,
                "the segment is still being initialised by its creator; retry shortly"
            ),
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
            Error::Timeout { op } => write!(f, "timed out {op}"),
            Error::Handshake { reason } => write!(f, "handshake failed: {reason}"),
            Error::InUse { path } => write!(
                f,
                "a listener is already running on `{}`; stop it or choose another path",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::MalformedSchema { source, .. } => Some(source),
            _ => None,
        }
    }
}

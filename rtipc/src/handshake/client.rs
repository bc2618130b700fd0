//! The client side, and the [`Connection`] both sides end with.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::wire::{self, sock_error, Reader};
use super::{PeerCred, DEFAULT_TIMEOUT, KIND_ACCEPT, KIND_REJECT, MAX_TEXT};
use crate::error::{Error, Result, Stage};
use crate::segment::{Segment, SegmentBuilder};
use crate::sys::socket::{self, Addr, MAX_FDS};

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
    pub(super) fn new(segment: Segment, socket: OwnedFd, peer: PeerCred) -> Connection {
        Connection {
            segment,
            socket,
            peer,
        }
    }

    /// The shared segment: take typed handles from it.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The other side's credentials.
    pub fn peer(&self) -> PeerCred {
        self.peer
    }

    /// Whether the other side still holds its end of the connection: false once it has
    /// dropped its [`Connection`] or exited. Does not block. Anything the other side sent
    /// after the handshake (nothing is expected) is read and discarded, descriptors closed.
    pub fn peer_alive(&self) -> bool {
        let fd = self.socket.as_fd();
        match socket::wait_for(fd, libc::POLLIN | libc::POLLRDHUP, Some(Instant::now())) {
            Err(socket::SockError::TimedOut) => true,
            Err(_) => false,
            Ok(ev) if ev & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0 => false,
            Ok(_) => socket::discard_pending(fd),
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
/// is the creator, so a channel from client to server is
/// [`Direction::PeerToCreator`](crate::Direction::PeerToCreator)), receives and attaches the
/// segment, and reports back. The whole handshake takes at most `timeout`
/// ([`Error::Timeout`]).
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
    let msg = wire::encode_request(request)?;
    let addr = Addr::new(path).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "socket path `{}` must be 1 to {} bytes without NUL",
            path.display(),
            socket::MAX_PATH
        ))
    })?;
    let fd = socket::new_socket().map_err(|e| Error::io("creating a unix socket", e))?;
    loop {
        match socket::connect(fd.as_fd(), &addr) {
            Ok(()) => break,
            // The listener's backlog is full: retry until the deadline.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout {
                        stage: Stage::Connecting,
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(Error::io("connecting to the listener", e)),
        }
    }
    let (pid, uid, gid) = socket::peer_cred(fd.as_fd())
        .map_err(|e| Error::io("reading the peer's credentials (SO_PEERCRED)", e))?;
    let peer = PeerCred { pid, uid, gid };
    socket::send(fd.as_fd(), &msg, &[], deadline)
        .map_err(|e| sock_error(e, Stage::SendingRequest))?;
    let (memfd, eventfds) = read_reply(fd.as_fd(), deadline)?;
    let attached = Segment::from_fds(memfd, eventfds).and_then(|segment| {
        let wanted: Vec<&str> = request.channels().iter().map(|c| c.name()).collect();
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
        Ok(_) => wire::attached_msg(Ok(())),
        Err(e) => wire::attached_msg(Err(&e.to_string())),
    };
    let sent = socket::send(fd.as_fd(), &report, &[], deadline);
    let segment = attached?;
    sent.map_err(|e| sock_error(e, Stage::Reporting))?;
    Ok(Connection::new(segment, fd, peer))
}

/// Receives the listener's reply: the memfd and the eventfds, or its rejection.
fn read_reply(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<(OwnedFd, Vec<OwnedFd>)> {
    let (reply, fds) = socket::recv(fd, 16 + MAX_TEXT, MAX_FDS, deadline)
        .map_err(|e| sock_error(e, Stage::WaitingForReply))?;
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
                "the listener announced {count} file descriptors and sent {}; a segment needs \
                 its memfd and one eventfd per notify-enabled channel",
                fds.len()
            ),
        });
    }
    let mut fds = fds.into_iter();
    let memfd = fds.next().ok_or_else(|| bad("no descriptors".into()))?;
    Ok((memfd, fds.collect()))
}

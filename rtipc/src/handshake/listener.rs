//! The server side: a [`Listener`] creates a segment for each client it accepts.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::client::Connection;
use super::wire::{self, sock_error, Reader};
use super::{
    PeerCred, Request, DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_TIMEOUT, KIND_ACCEPT, KIND_ATTACHED,
    MAX_REQUEST_LEN, MAX_TEXT, REQUEST_FD_ROOM,
};
use crate::error::{Error, Result, Stage};
use crate::segment::Segment;
use crate::sys::socket::{self, Addr};

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

fn bad_path(path: &Path) -> Error {
    Error::InvalidArgument(format!(
        "socket path `{}` must be 1 to {} bytes without NUL",
        path.display(),
        socket::MAX_PATH
    ))
}

impl Listener {
    /// Binds a listener to the socket file `path`.
    ///
    /// If `path` is a socket left behind by a listener that is gone (connecting to it is
    /// refused), it is removed and bound again; if a listener is running there, this fails
    /// with [`Error::InUse`]; anything that is not a socket is left alone (an error).
    pub fn bind(path: impl AsRef<Path>) -> Result<Listener> {
        let path = path.as_ref().to_path_buf();
        let addr = Addr::new(&path).ok_or_else(|| bad_path(&path))?;
        let fd = socket::new_socket().map_err(|e| Error::io("creating a unix socket", e))?;
        if let Err(e) = socket::bind(fd.as_fd(), &addr) {
            if e.raw_os_error() != Some(libc::EADDRINUSE) {
                return Err(Error::io("binding the unix socket", e));
            }
            replace_stale_socket(&path, &addr)?;
            socket::bind(fd.as_fd(), &addr).map_err(|e| {
                if e.raw_os_error() == Some(libc::EADDRINUSE) {
                    // Another process raced us to it.
                    Error::InUse { path: path.clone() }
                } else {
                    Error::io("binding the unix socket", e)
                }
            })?;
        }
        socket::listen(fd.as_fd()).map_err(|e| Error::io("listening", e))?;
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
    /// `accept` returns [`Error::Timeout`] with [`Stage::WaitingForClient`].
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
        let conn = self.next_connection()?;
        let deadline = Instant::now().checked_add(self.timeout);
        let (pid, uid, gid) = socket::peer_cred(conn.as_fd())
            .map_err(|e| Error::io("reading the peer's credentials (SO_PEERCRED)", e))?;
        let peer = PeerCred { pid, uid, gid };
        let refuse = |reason: &str| {
            // Best effort: the client may be gone or not reading.
            let _ = socket::send(conn.as_fd(), &wire::reject_msg(reason), &[], deadline);
        };
        let request = match read_request(conn.as_fd(), peer, deadline) {
            Ok(r) => r,
            Err(e) => {
                if !matches!(e, Error::Timeout { .. }) {
                    refuse(&e.to_string());
                }
                return Err(e);
            }
        };
        let segment = match self.make_segment(&request, filter) {
            Ok(s) => s,
            Err((reason, e)) => {
                refuse(&reason);
                return Err(e);
            }
        };
        let mut fds = vec![segment.as_fd()];
        fds.extend(segment.event_fds());
        let mut accept = wire::preamble(KIND_ACCEPT);
        accept.extend_from_slice(&(fds.len() as u32).to_le_bytes());
        socket::send(conn.as_fd(), &accept, &fds, deadline)
            .map_err(|e| sock_error(e, Stage::SendingSegment))?;
        drop(fds);
        await_attached(conn.as_fd(), deadline)?;
        Ok(Connection::new(segment, conn, peer))
    }

    /// Waits for the next connection, up to the accept timeout.
    fn next_connection(&self) -> Result<OwnedFd> {
        let deadline = self
            .accept_timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            socket::wait_for(self.fd.as_fd(), libc::POLLIN, deadline)
                .map_err(|e| sock_error(e, Stage::WaitingForClient))?;
            if let Some(conn) = socket::accept(self.fd.as_fd())
                .map_err(|e| Error::io("accepting a connection", e))?
            {
                return Ok(conn);
            }
        }
    }

    /// Checks a decoded request against the listener's limits and its filter, and creates the
    /// segment. On refusal: the reason to send, and the error to return.
    fn make_segment<F>(
        &self,
        request: &Request,
        filter: F,
    ) -> std::result::Result<Segment, (String, Error)>
    where
        F: FnOnce(&Request) -> std::result::Result<(), String>,
    {
        let builder = wire::builder_from(request);
        let size = match builder.plan(0, 0) {
            Ok(plan) => plan.size(),
            Err(e) => {
                let reason = format!("invalid request: {e}");
                return Err((reason.clone(), Error::Handshake { reason }));
            }
        };
        if size > self.max_segment_size {
            let reason = format!(
                "the segment asked for would be {size} bytes, larger than the listener's limit \
                 of {} bytes",
                self.max_segment_size
            );
            return Err((reason.clone(), Error::Rejected { reason }));
        }
        if let Err(reason) = filter(request) {
            return Err((reason.clone(), Error::Rejected { reason }));
        }
        builder
            .create_anonymous()
            .map_err(|e| (format!("the listener cannot create this segment: {e}"), e))
    }
}

/// Whether `path` holds a socket nobody listens on; if so, removes it. A live listener is
/// [`Error::InUse`]; anything that is not a socket is left alone (an error).
fn replace_stale_socket(path: &Path, addr: &Addr) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::io("looking at the existing socket file", e))?;
    if !meta.file_type().is_socket() {
        return Err(Error::InvalidArgument(format!(
            "`{}` exists and is not a socket; remove it or choose another path",
            path.display()
        )));
    }
    // Is anyone listening? A non-blocking connect answers at once.
    let probe = socket::new_socket().map_err(|e| Error::io("creating a unix socket", e))?;
    match socket::connect(probe.as_fd(), addr).map_err(|e| e.raw_os_error()) {
        // Connected, or its backlog is full: a live listener.
        Ok(()) | Err(Some(libc::EAGAIN)) => Err(Error::InUse {
            path: path.to_path_buf(),
        }),
        Err(Some(libc::ECONNREFUSED)) | Err(Some(libc::ENOENT)) => {
            // Stale: nobody listens.
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(errno) => Err(Error::io(
            "probing the existing socket file",
            std::io::Error::from_raw_os_error(errno.unwrap_or(libc::EIO)),
        )),
    }
}

/// Receives and decodes a client's request.
fn read_request(
    conn: BorrowedFd<'_>,
    peer: PeerCred,
    deadline: Option<Instant>,
) -> Result<Request> {
    let (msg, fds) = socket::recv(conn, MAX_REQUEST_LEN, REQUEST_FD_ROOM, deadline).map_err(
        |e| match sock_error(e, Stage::ReadingRequest) {
            Error::Handshake { reason } => Error::Handshake {
                reason: format!("malformed request: {reason}"),
            },
            e => e,
        },
    )?;
    if !fds.is_empty() {
        return Err(Error::Handshake {
            reason: format!(
                "malformed request: it carries {} file descriptors, a request carries none",
                fds.len()
            ),
        });
    }
    wire::decode_request(&msg, peer).map_err(|e| Error::Handshake {
        reason: format!("malformed request: {e}"),
    })
}

/// Waits for the client's report that it attached.
fn await_attached(conn: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<()> {
    let (msg, fds) = socket::recv(conn, 16 + MAX_TEXT, REQUEST_FD_ROOM, deadline)
        .map_err(|e| sock_error(e, Stage::WaitingForAttach))?;
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
        Ok((status, text))
    })();
    match attached {
        Ok((0, _)) => Ok(()),
        Ok((_, text)) => Err(Error::Handshake {
            reason: format!("the client could not attach: {text}"),
        }),
        Err(e) => Err(Error::Handshake {
            reason: format!("malformed report from the client: {e}"),
        }),
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

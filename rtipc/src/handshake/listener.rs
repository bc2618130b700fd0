//! The server side: a [`Listener`] creates a segment for each client it accepts, running the
//! handshakes of several clients at once so that a slow one holds up nobody else.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::client::Connection;
use super::wire::{self, sock_error, Reader};
use super::{
    PeerCred, Request, DEFAULT_MAX_PENDING, DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_TIMEOUT, KIND_ACCEPT,
    KIND_ATTACHED, MAX_REQUEST_LEN, MAX_TEXT, REQUEST_FD_ROOM,
};
use crate::error::{Error, Result, Stage};
use crate::segment::Segment;
use crate::sys::socket::{self, Addr, SockError};

/// What a listener asks about each request: `Ok(())` to accept, `Err(reason)` to reject.
type Filter<'a> = dyn FnMut(&Request) -> std::result::Result<(), String> + 'a;

/// A server on a unix socket that creates a segment for each client it accepts.
///
/// Bound with [`Listener::bind`]; each [`Listener::accept`] returns one client, from request
/// to attached segment, or the error of one connection.
///
/// # Many clients at once
///
/// The listener runs the handshakes of several clients at once, each with its own deadline
/// ([`Listener::handshake_timeout`], counted from when the listener takes the connection), so
/// a client that is slow or sends nothing holds up nobody else: while its handshake is
/// pending, the listener takes new connections, answers the requests that arrive and returns
/// the clients that attach. Handshakes under way are kept from one `accept` to the next (their
/// deadlines keep running), and advance only while a thread is in `accept`.
///
/// At most [`Listener::max_pending`] handshakes are under way at once
/// ([`DEFAULT_MAX_PENDING`] unless set). A connection beyond them is answered at once with a
/// rejection, "the listener is busy: N handshakes are pending; retry", and closed, so that a
/// flood of silent connections cannot use up the server's descriptors.
///
/// `accept` takes `&self`, so several threads may accept on one listener: one of them at a
/// time runs the handshakes (reading requests, calling its filter, creating segments), and
/// the others wait for their turn within their accept timeout.
///
/// The socket file is removed when the listener is dropped (if it is still the one this
/// listener bound); the handshakes still pending are then closed.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
    inode: (u64, u64),
    timeout: Duration,
    accept_timeout: Option<Duration>,
    max_segment_size: u64,
    max_pending: usize,
    /// The handshakes under way, oldest first; `None` while a thread is running them.
    pending: Mutex<Option<Vec<Pending>>>,
    /// Signalled when the thread that ran the handshakes puts them back.
    turn_over: Condvar,
    /// How many handshakes are under way, for [`Listener::pending`].
    pending_count: AtomicUsize,
}

/// One connection whose handshake is under way.
#[derive(Debug)]
struct Pending {
    conn: OwnedFd,
    peer: PeerCred,
    /// When the listener gives up on it: when it was taken, plus the handshake timeout.
    deadline: Option<Instant>,
    /// `None` while waiting for the request; once the segment is sent, the segment, while
    /// waiting for the client's report that it attached.
    segment: Option<Segment>,
}

impl Pending {
    /// The step the handshake is waiting in.
    fn stage(&self) -> Stage {
        if self.segment.is_some() {
            Stage::WaitingForAttach
        } else {
            Stage::ReadingRequest
        }
    }
}

/// The handshakes under way, held by the one thread running them, and put back when dropped
/// (also if a filter panics).
struct Turn<'a> {
    listener: &'a Listener,
    pending: Vec<Pending>,
}

impl Turn<'_> {
    fn push(&mut self, p: Pending) {
        self.pending.push(p);
        self.count();
    }

    fn remove(&mut self, i: usize) -> Pending {
        let p = self.pending.remove(i);
        self.count();
        p
    }

    /// Closes the oldest handshake whose deadline has passed, if any: its timeout error.
    /// (Each gets the same timeout from when it was taken, so the oldest deadline is first.)
    fn expire(&mut self, now: Instant) -> Option<Error> {
        let i = self
            .pending
            .iter()
            .position(|p| p.deadline.is_some_and(|d| now >= d))?;
        let stage = self.remove(i).stage();
        Some(Error::Timeout { stage })
    }

    fn count(&self) {
        self.listener
            .pending_count
            .store(self.pending.len(), Ordering::Relaxed);
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.listener.pending) = Some(std::mem::take(&mut self.pending));
        // Every waiting thread rechecks; one of them takes the next turn.
        self.listener.turn_over.notify_all();
    }
}

/// Locks `m`; a panic elsewhere while it was held leaves nothing half-done in it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
            max_pending: DEFAULT_MAX_PENDING,
            pending: Mutex::new(Some(Vec::new())),
            turn_over: Condvar::new(),
            pending_count: AtomicUsize::new(0),
        })
    }

    /// Sets how long one client's handshake may take, from when the listener takes its
    /// connection to its report that it attached (default [`DEFAULT_TIMEOUT`]). A client that
    /// is slower gets no segment: its connection is closed and `accept` returns
    /// [`Error::Timeout`] for it, with the stage it was waiting in. Every handshake has its
    /// own deadline; the others go on meanwhile.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Listener {
        self.timeout = timeout;
        self
    }

    /// Sets how long `accept` waits for some handshake to complete (default: no limit); past
    /// it, `accept` returns [`Error::Timeout`] with [`Stage::WaitingForClient`], and the
    /// handshakes under way stay pending for the next call. `Some(Duration::ZERO)` advances
    /// what is ready without waiting.
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

    /// Sets how many handshakes may be under way at once (default [`DEFAULT_MAX_PENDING`]; at
    /// least 1). A connection that arrives while that many are pending is rejected at once
    /// with the reason "the listener is busy: N handshakes are pending; retry", which reaches
    /// the client as [`Error::Rejected`], and `accept` returns the same error for it.
    ///
    /// Each pending handshake holds its socket and, once its segment is sent, the segment
    /// (its memfd, mapping and eventfds) until the client reports or its deadline passes; the
    /// limit bounds how many of those a listener holds.
    pub fn max_pending(mut self, n: usize) -> Listener {
        self.max_pending = n.max(1);
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many handshakes are under way: connections taken whose client has not yet
    /// attached, been refused or timed out. They advance only inside [`Listener::accept`], so
    /// a server that waits for the listener's descriptor to be readable also calls `accept`
    /// while this is not zero.
    pub fn pending(&self) -> usize {
        self.pending_count.load(Ordering::Relaxed)
    }

    /// Returns the next client whose handshake completes, with its segment attached; in the
    /// meantime, takes new connections and runs every pending handshake: reads and checks
    /// each request, asks `filter`, creates and sends the segment, and waits for the client's
    /// report that it attached.
    ///
    /// `filter` sees each decoded [`Request`] (with the client's credentials) and returns
    /// `Ok(())` to accept or `Err(reason)` to reject; the reason reaches the client as
    /// [`Error::Rejected`], and `accept` returns the same error. It may be called for several
    /// requests during one `accept`: a client it accepted may complete in a later call.
    ///
    /// Every error concerns one connection (a malformed request, [`Error::Timeout`] with the
    /// stage its handshake was waiting in, a client that went away, a rejection, a busy
    /// listener), which is closed; the other handshakes stay pending and the listener stays
    /// usable, so a server calls `accept` in a loop and logs the errors. [`Error::Timeout`]
    /// with [`Stage::WaitingForClient`] means that no handshake completed within the accept
    /// timeout.
    pub fn accept<F>(&self, mut filter: F) -> Result<Connection>
    where
        F: FnMut(&Request) -> std::result::Result<(), String>,
    {
        let deadline = self
            .accept_timeout
            .and_then(|t| Instant::now().checked_add(t));
        let mut turn = self.take_turn(deadline)?;
        self.run(&mut turn, &mut filter, deadline)
    }

    /// Waits until no other thread runs the handshakes, up to `deadline`, and takes them.
    fn take_turn(&self, deadline: Option<Instant>) -> Result<Turn<'_>> {
        let mut slot = lock(&self.pending);
        loop {
            if let Some(pending) = slot.take() {
                return Ok(Turn {
                    listener: self,
                    pending,
                });
            }
            slot = match deadline {
                None => self
                    .turn_over
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d
                        .checked_duration_since(Instant::now())
                        .filter(|left| !left.is_zero())
                        .ok_or(Error::Timeout {
                            stage: Stage::WaitingForClient,
                        })?;
                    self.turn_over
                        .wait_timeout(slot, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Runs the handshakes until one completes or fails, or `deadline` passes. Each pass
    /// closes a handshake past its deadline, waits for the listening socket or a pending
    /// connection, advances the ready handshakes oldest first, then takes new connections.
    fn run(
        &self,
        turn: &mut Turn<'_>,
        filter: &mut Filter<'_>,
        deadline: Option<Instant>,
    ) -> Result<Connection> {
        let mut polled = false;
        loop {
            let now = Instant::now();
            if let Some(e) = turn.expire(now) {
                return Err(e);
            }
            if polled && deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout {
                    stage: Stage::WaitingForClient,
                });
            }
            let ready = self.wait(turn, deadline)?;
            polled = true;
            let Some(ready) = ready else { continue };
            // `ready[0]` is the listening socket, `ready[i + 1]` pending handshake `i`.
            for i in 0..ready.len() - 1 {
                if ready[i + 1] == 0 {
                    continue;
                }
                if let Some(done) = self.advance(&mut turn.pending[i], filter) {
                    let p = turn.remove(i);
                    return done.map(|segment| Connection::new(segment, p.conn, p.peer));
                }
            }
            if ready[0] != 0 {
                if let Some(e) = self.take_new(turn) {
                    return Err(e);
                }
            }
        }
    }

    /// Waits until the listening socket or a pending connection is readable, or until the
    /// first of `deadline` and the handshakes' deadlines: each one's `revents`, the listening
    /// socket's first, or `None` at the deadline.
    fn wait(
        &self,
        turn: &Turn<'_>,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<libc::c_short>>> {
        let wake = turn
            .pending
            .iter()
            .filter_map(|p| p.deadline)
            .chain(deadline)
            .min();
        let mut fds = Vec::with_capacity(turn.pending.len() + 1);
        fds.push((self.fd.as_fd(), libc::POLLIN));
        fds.extend(turn.pending.iter().map(|p| (p.conn.as_fd(), libc::POLLIN)));
        socket::poll(&fds, wake).map_err(|e| Error::io("waiting for clients", e))
    }

    /// Takes the connections waiting in the backlog as pending handshakes, refusing at once
    /// one beyond the limit. Returns the error of a connection that could not be taken.
    fn take_new(&self, turn: &mut Turn<'_>) -> Option<Error> {
        loop {
            let conn = match socket::accept(self.fd.as_fd()) {
                Ok(Some(conn)) => conn,
                Ok(None) => return None,
                Err(e) => return Some(Error::io("accepting a connection", e)),
            };
            if turn.pending.len() >= self.max_pending {
                let reason = format!(
                    "the listener is busy: {} handshakes are pending; retry",
                    turn.pending.len()
                );
                // Best effort and without waiting: the first message on a new connection
                // fits in its empty buffer, unless the client is gone already.
                let reject = wire::reject_msg(&reason);
                let _ = socket::send(conn.as_fd(), &reject, &[], Some(Instant::now()));
                return Some(Error::Rejected { reason });
            }
            let peer = match socket::peer_cred(conn.as_fd()) {
                Ok((pid, uid, gid)) => PeerCred { pid, uid, gid },
                Err(e) => {
                    return Some(Error::io("reading the peer's credentials (SO_PEERCRED)", e))
                }
            };
            turn.push(Pending {
                conn,
                peer,
                deadline: Instant::now().checked_add(self.timeout),
                segment: None,
            });
        }
    }

    /// Advances a pending handshake whose socket is readable: `None` while it is still under
    /// way, its attached segment or its error once it is done.
    fn advance(&self, p: &mut Pending, filter: &mut Filter<'_>) -> Option<Result<Segment>> {
        let Some(segment) = p.segment.take() else {
            return self.answer_request(p, filter).err().map(Err);
        };
        match read_report(p.conn.as_fd()) {
            Ok(false) => {
                p.segment = Some(segment);
                None
            }
            Ok(true) => Some(Ok(segment)),
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads the request if it has arrived, checks it, asks `filter`, creates the segment and
    /// sends it. An error ends the handshake; the client is told why, if it still listens.
    fn answer_request(&self, p: &mut Pending, filter: &mut Filter<'_>) -> Result<()> {
        let request = match read_request(p.conn.as_fd(), p.peer) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => {
                refuse(p, &e.to_string());
                return Err(e);
            }
        };
        let segment = self.make_segment(&request, filter).map_err(|(reason, e)| {
            refuse(p, &reason);
            e
        })?;
        send_segment(p, &segment)?;
        p.segment = Some(segment);
        Ok(())
    }

    /// Checks a decoded request against the listener's limits and its filter, and creates the
    /// segment. On refusal: the reason to send, and the error to return.
    fn make_segment(
        &self,
        request: &Request,
        filter: &mut Filter<'_>,
    ) -> std::result::Result<Segment, (String, Error)> {
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

/// Sends the client a rejection with `reason`, best effort: it may be gone or not reading.
/// It is the first and only message on the connection, so it fits in the socket's empty
/// buffer and the send does not wait.
fn refuse(p: &Pending, reason: &str) {
    let _ = socket::send(p.conn.as_fd(), &wire::reject_msg(reason), &[], p.deadline);
}

/// Sends the client its segment: the Accept message with the memfd and the eventfds. It is
/// the first and only message on the connection, so the send does not wait.
fn send_segment(p: &Pending, segment: &Segment) -> Result<()> {
    let mut fds = vec![segment.as_fd()];
    fds.extend(segment.event_fds());
    let mut accept = wire::preamble(KIND_ACCEPT);
    accept.extend_from_slice(&(fds.len() as u32).to_le_bytes());
    socket::send(p.conn.as_fd(), &accept, &fds, p.deadline)
        .map_err(|e| sock_error(e, Stage::SendingSegment))
}

/// A message received: its bytes and the descriptors it carried.
type Message = (Vec<u8>, Vec<OwnedFd>);

/// Receives one message if one is there, without waiting: `Ok(None)` if there is none yet.
fn try_recv(
    conn: BorrowedFd<'_>,
    max_len: usize,
) -> std::result::Result<Option<Message>, SockError> {
    match socket::recv(conn, max_len, REQUEST_FD_ROOM, Some(Instant::now())) {
        Ok(message) => Ok(Some(message)),
        Err(SockError::TimedOut) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Receives and decodes a client's request, if it has arrived.
fn read_request(conn: BorrowedFd<'_>, peer: PeerCred) -> Result<Option<Request>> {
    let received = try_recv(conn, MAX_REQUEST_LEN).map_err(|e| {
        match sock_error(e, Stage::ReadingRequest) {
            Error::Handshake { reason } => Error::Handshake {
                reason: format!("malformed request: {reason}"),
            },
            e => e,
        }
    })?;
    let Some((msg, fds)) = received else {
        return Ok(None);
    };
    if !fds.is_empty() {
        return Err(Error::Handshake {
            reason: format!(
                "malformed request: it carries {} file descriptors, a request carries none",
                fds.len()
            ),
        });
    }
    wire::decode_request(&msg, peer)
        .map(Some)
        .map_err(|e| Error::Handshake {
            reason: format!("malformed request: {e}"),
        })
}

/// Receives the client's report that it attached, if it has arrived: `Ok(true)` once it has.
fn read_report(conn: BorrowedFd<'_>) -> Result<bool> {
    let received =
        try_recv(conn, 16 + MAX_TEXT).map_err(|e| sock_error(e, Stage::WaitingForAttach))?;
    let Some((msg, fds)) = received else {
        return Ok(false);
    };
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
        Ok((0, _)) => Ok(true),
        Ok((_, text)) => Err(Error::Handshake {
            reason: format!("the client could not attach: {text}"),
        }),
        Err(e) => Err(Error::Handshake {
            reason: format!("malformed report from the client: {e}"),
        }),
    }
}

impl AsFd for Listener {
    /// The listening socket: readable when a new client waits to be taken. Handshakes already
    /// taken advance only inside [`Listener::accept`]; see [`Listener::pending`].
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

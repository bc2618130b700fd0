//! Unix `SOCK_SEQPACKET` sockets: connecting, listening, whole messages with descriptors
//! (`SCM_RIGHTS`), peer credentials, and waiting with a deadline.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use zerocopy::IntoBytes;

/// The most descriptors one message carries: the kernel's `SCM_MAX_FD`.
pub(crate) const MAX_FDS: usize = 253;

/// Why a socket operation did not complete.
#[derive(Debug)]
pub(crate) enum SockError {
    /// The deadline passed.
    TimedOut,
    /// The other side closed the connection (or sent an empty message).
    Closed,
    /// A message was longer than the buffer (`MSG_TRUNC`).
    TooLong,
    /// A message carried more descriptors than room was made for (`MSG_CTRUNC`).
    TooManyFds,
    /// Any other failure of a system call.
    Io(io::Error),
}

impl From<io::Error> for SockError {
    fn from(e: io::Error) -> SockError {
        SockError::Io(e)
    }
}

/// The credentials `SO_PEERCRED` reports: pid, uid, gid.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, u32)> {
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
    cvt(r)?;
    // SAFETY: zero-initialised and filled in by the kernel; ucred is plain integers.
    let cred = unsafe { cred.assume_init() };
    Ok((cred.pid as u32, cred.uid, cred.gid))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new non-blocking, close-on-exec `SOCK_SEQPACKET` unix socket.
pub(crate) fn new_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket with valid constants returns a new descriptor or -1.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A unix socket address; `None` if `path` is empty, contains NUL or is too long.
pub(crate) struct Addr {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

/// The longest socket path, in bytes.
pub(crate) const MAX_PATH: usize = 107;

impl Addr {
    pub(crate) fn new(path: &Path) -> Option<Addr> {
        // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
            return None;
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
        Some(Addr {
            addr,
            len: len as libc::socklen_t,
        })
    }

    fn raw(&self) -> *const libc::sockaddr {
        (&self.addr as *const libc::sockaddr_un).cast()
    }
}

/// `bind` then nothing else: the caller decides what to do with `EADDRINUSE`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &Addr) -> io::Result<()> {
    // SAFETY: `addr` is a valid sockaddr_un of `addr.len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), addr.raw(), addr.len) }).map(drop)
}

/// `listen` with a backlog of 128.
pub(crate) fn listen(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: listen on a bound socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) }).map(drop)
}

/// One non-blocking `connect` attempt.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &Addr) -> io::Result<()> {
    // SAFETY: `addr` is a valid sockaddr_un of `addr.len` bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), addr.raw(), addr.len) }).map(drop)
}

/// One non-blocking `accept4`: a new close-on-exec, non-blocking connection, or `Ok(None)`
/// when there is none to take right now.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    // SAFETY: accept4 on a listening socket; the address is not wanted.
    let r = unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if r >= 0 {
        // SAFETY: `r` is a new descriptor that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(r) }));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Another thread took it, a signal, or the client gave up already.
        Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ECONNABORTED) => Ok(None),
        _ => Err(e),
    }
}

/// Milliseconds until `deadline`, rounded up so that a wait never ends early; -1 for none.
fn poll_ms(deadline: Option<Instant>) -> libc::c_int {
    match deadline {
        None => -1,
        Some(d) => (d.saturating_duration_since(Instant::now()))
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as libc::c_int,
    }
}

/// Waits until one of `fds` has one of its events; returns each one's `revents`, or `Ok(None)`
/// once `deadline` passes. Polls at least once, so a deadline in the past is a readiness check.
pub(crate) fn poll(
    fds: &[(BorrowedFd<'_>, libc::c_short)],
    deadline: Option<Instant>,
) -> io::Result<Option<Vec<libc::c_short>>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, events)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: *events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a live array of `pfds.len()` pollfds.
        let r = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                poll_ms(deadline),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if r > 0 {
            return Ok(Some(pfds.iter().map(|p| p.revents).collect()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// Waits until `fd` has one of `events`; `SockError::TimedOut` at `deadline`.
pub(crate) fn wait_for(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
) -> Result<libc::c_short, SockError> {
    match poll(&[(fd, events)], deadline)? {
        Some(r) => Ok(r[0]),
        None => Err(SockError::TimedOut),
    }
}

/// Sends one message with `fds` attached, waiting at most until `deadline`.
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
) -> Result<(), SockError> {
    if fds.len() > MAX_FDS {
        return Err(SockError::TooManyFds);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut cbuf = control_with_fds(&raw);
    loop {
        wait_for(fd, libc::POLLOUT, deadline)?;
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
            msg.msg_controllen = (cbuf.len() * 8) as _;
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
            Some(libc::EPIPE) | Some(libc::ECONNRESET) => return Err(SockError::Closed),
            _ => return Err(SockError::Io(e)),
        }
    }
}

/// What one `recvmsg` got: the bytes received, the descriptors (owned), and whether the
/// message or its descriptors were cut short.
struct Received {
    len: usize,
    fds: Vec<OwnedFd>,
    truncated: bool,
    fds_truncated: bool,
}

/// One non-blocking `recvmsg` into `buf`, with room for the descriptors `cbuf` holds. Every
/// descriptor received is owned (and so closed on any error) before anything is checked.
fn recv_once(fd: BorrowedFd<'_>, buf: &mut [u8], cbuf: &mut [u64]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(cbuf) as _;
    // SAFETY: `msg` describes live, writable buffers of the given lengths.
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Received {
        len: n as usize,
        fds: take_fds(cbuf, msg.msg_controllen as usize),
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// Receives one whole message of at most `max_len` bytes with at most `max_fds` descriptors,
/// waiting at most until `deadline`. Every descriptor received is owned (and so closed on any
/// error) before anything is checked. Zero bytes without descriptors is the end of the
/// connection ([`SockError::Closed`]).
pub(crate) fn recv(
    fd: BorrowedFd<'_>,
    max_len: usize,
    max_fds: usize,
    deadline: Option<Instant>,
) -> Result<(Vec<u8>, Vec<OwnedFd>), SockError> {
    let mut buf = vec![0u8; max_len.max(1)];
    let mut cbuf = vec![0u64; cmsg_space(size_of::<RawFd>() * max_fds).div_ceil(8)];
    loop {
        wait_for(fd, libc::POLLIN, deadline)?;
        let r = match recv_once(fd, &mut buf, &mut cbuf) {
            Ok(r) => r,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                Some(libc::ECONNRESET) => return Err(SockError::Closed),
                _ => return Err(SockError::Io(e)),
            },
        };
        if r.fds_truncated {
            return Err(SockError::TooManyFds);
        }
        if r.truncated {
            return Err(SockError::TooLong);
        }
        if r.len == 0 && r.fds.is_empty() {
            return Err(SockError::Closed);
        }
        buf.truncate(r.len);
        return Ok((buf, r.fds));
    }
}

/// `CMSG_LEN(len)`: a control message header followed by `len` bytes of data.
fn cmsg_len(len: usize) -> usize {
    // SAFETY: CMSG_LEN is arithmetic on its argument.
    unsafe { libc::CMSG_LEN(len as u32) as usize }
}

/// `CMSG_SPACE(len)`: the same, padded for the next header.
fn cmsg_space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
}

/// A control buffer holding one `SCM_RIGHTS` message with `fds`, written field by field into
/// 8-aligned words (the `cmsghdr` layout: `cmsg_len: usize`, `cmsg_level: i32`,
/// `cmsg_type: i32`, then the data at `CMSG_LEN(0)`).
fn control_with_fds(fds: &[RawFd]) -> Vec<u64> {
    let payload = std::mem::size_of_val(fds);
    let mut cbuf = vec![0u64; cmsg_space(payload).div_ceil(8)];
    let bytes = cbuf.as_mut_bytes();
    let word = size_of::<usize>();
    bytes[..word].copy_from_slice(&cmsg_len(payload).to_ne_bytes());
    bytes[word..word + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
    bytes[word + 4..word + 8].copy_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
    let data = cmsg_len(0);
    for (i, fd) in fds.iter().enumerate() {
        let at = data + i * size_of::<RawFd>();
        bytes[at..at + size_of::<RawFd>()].copy_from_slice(&fd.to_ne_bytes());
    }
    cbuf
}

/// Takes ownership of every descriptor in the first `len` bytes of the control buffer `cbuf`
/// that `recvmsg` filled in, walking its headers with bounds-checked reads.
fn take_fds(cbuf: &[u64], len: usize) -> Vec<OwnedFd> {
    let bytes = &cbuf.as_bytes()[..len.min(cbuf.len() * 8)];
    let word = size_of::<usize>();
    let header = cmsg_len(0);
    let mut fds = Vec::new();
    let mut at = 0;
    while at + header <= bytes.len() {
        let read = |o: usize, n: usize| &bytes[at + o..at + o + n];
        let cmsg_len = usize::from_ne_bytes(read(0, word).try_into().expect("word"));
        let level = i32::from_ne_bytes(read(word, 4).try_into().expect("4 bytes"));
        let kind = i32::from_ne_bytes(read(word + 4, 4).try_into().expect("4 bytes"));
        if cmsg_len < header || at + cmsg_len > bytes.len() {
            break;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for raw in bytes[at + header..at + cmsg_len].chunks_exact(size_of::<RawFd>()) {
                let raw = RawFd::from_ne_bytes(raw.try_into().expect("fd bytes"));
                if raw >= 0 {
                    // SAFETY: the kernel installed this descriptor for us with SCM_RIGHTS;
                    // nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        // CMSG_NXTHDR: the next header starts at the aligned end of this one.
        at += cmsg_len.div_ceil(word) * word;
    }
    fds
}

/// Reads and discards whatever is pending on a connected socket, closing any descriptors it
/// carried, without blocking. Returns `false` once the other side has closed the connection.
pub(crate) fn discard_pending(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 256];
    let mut cbuf = [0u64; 16];
    loop {
        match recv_once(fd, &mut buf, &mut cbuf) {
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => true,
                    _ => false,
                }
            }
            // A SOCK_SEQPACKET socket reads 0 bytes at end of file, and also for an empty
            // message: only POLLHUP/POLLRDHUP (checked by the caller) tell the two apart.
            Ok(r) if r.len == 0 => return true,
            Ok(_) => {}
        }
    }
}

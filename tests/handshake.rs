//! The handshake against hostile and broken peers: thousands of malformed requests against
//! one listener in another process, which then serves a real client; rejections, stale socket
//! files, silent clients, and a fake listener that hands the client bad descriptors.
//!
//! Requests are built here by hand from the wire format documented in `rtipc::handshake`, so
//! these tests also check that the documentation and the code agree.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use rtipc::handshake::{self, Listener};
use rtipc::{Error, Object, Segment, Stage, StateConsumer, StateProducer};

// --- The wire format, by hand. ---------------------------------------------------------------

fn preamble(kind: u16) -> Vec<u8> {
    let mut v = b"RTHS".to_vec();
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v
}

/// One channel of `Small` objects: `(name, direction 1 server->client / 2 client->server,
/// notify, user metadata)`.
fn request(channels: &[(&str, u8, bool, &[u8])]) -> Vec<u8> {
    let mut v = preamble(1);
    v.extend_from_slice(&128u32.to_le_bytes());
    v.extend_from_slice(&(channels.len() as u32).to_le_bytes());
    for (name, dir, notify, meta) in channels {
        v.extend_from_slice(&(name.len() as u16).to_le_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&[1, *dir, u8::from(*notify), 0]);
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        v.extend_from_slice(meta);
        v.extend_from_slice(&1u32.to_le_bytes());
        let schema = rtipc::schema::encode(<Small as Object>::SCHEMA);
        for w in [
            <Small as Object>::ID,
            <Small as Object>::FINGERPRINT,
            size_of::<Small>() as u64,
            align_of::<Small>() as u64,
        ] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(&(schema.len() as u32).to_le_bytes());
        v.extend_from_slice(&schema);
    }
    v
}

/// The request `echo_channels` makes.
fn echo_request() -> Vec<u8> {
    request(&[("cmd", 2, true, b"commands"), ("echo", 1, true, b"")])
}

// --- Raw sockets. -----------------------------------------------------------------------------

fn raw_socket() -> OwnedFd {
    // SAFETY: socket with valid constants.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 10,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a live timeval.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as u32,
        )
    };
    fd
}

fn addr(path: &Path) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: plain data; zero is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_encoded_bytes();
    for (d, s) in a.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + b.len() + 1;
    (a, len as libc::socklen_t)
}

fn raw_connect(path: &Path) -> OwnedFd {
    let fd = raw_socket();
    let (a, len) = addr(path);
    // SAFETY: a valid address of `len` bytes.
    let r = unsafe { libc::connect(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len) };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
    fd
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

/// A control buffer (8-aligned words) holding one `SCM_RIGHTS` message with `fds`, written
/// byte by byte in the `cmsghdr` layout: `cmsg_len: usize`, `cmsg_level: i32`,
/// `cmsg_type: i32`, then the data at `CMSG_LEN(0)`.
fn control_with_fds(fds: &[RawFd]) -> Vec<u64> {
    let payload = std::mem::size_of_val(fds);
    let word = size_of::<usize>();
    let mut b = vec![0u8; cmsg_space(payload).next_multiple_of(8)];
    b[..word].copy_from_slice(&cmsg_len(payload).to_ne_bytes());
    b[word..word + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
    b[word + 4..word + 8].copy_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
    for (i, fd) in fds.iter().enumerate() {
        let at = cmsg_len(0) + i * size_of::<RawFd>();
        b[at..at + size_of::<RawFd>()].copy_from_slice(&fd.to_ne_bytes());
    }
    b.chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
        .collect()
}

/// Closes every descriptor in the first `len` bytes of the control buffer `cbuf` that
/// `recvmsg` filled in, walking its headers with bounds-checked reads; returns how many.
fn close_fds(cbuf: &[u64], len: usize) -> usize {
    let bytes: Vec<u8> = cbuf.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let bytes = &bytes[..len.min(bytes.len())];
    let (word, header) = (size_of::<usize>(), cmsg_len(0));
    let mut count = 0;
    let mut at = 0;
    while at + header <= bytes.len() {
        let field = |o: usize, n: usize| &bytes[at + o..at + o + n];
        let len = usize::from_ne_bytes(field(0, word).try_into().unwrap());
        let level = i32::from_ne_bytes(field(word, 4).try_into().unwrap());
        let kind = i32::from_ne_bytes(field(word + 4, 4).try_into().unwrap());
        if len < header || at + len > bytes.len() {
            break;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for raw in bytes[at + header..at + len].chunks_exact(size_of::<RawFd>()) {
                let raw = RawFd::from_ne_bytes(raw.try_into().unwrap());
                // SAFETY: the kernel installed this descriptor for us; nothing else owns it.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                count += 1;
            }
        }
        // CMSG_NXTHDR: the next header starts at the aligned end of this one.
        at += len.next_multiple_of(word);
    }
    count
}

fn raw_send(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> bool {
    let mut cbuf = control_with_fds(fds);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: plain data; zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.len() * 8;
    }
    // SAFETY: `msg` describes live buffers.
    unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0 }
}

/// Receives one message (closing any descriptors in it): its bytes, its descriptor count, or
/// `None` at end of stream.
fn raw_recv(fd: BorrowedFd<'_>) -> Option<(Vec<u8>, usize)> {
    let mut buf = vec![0u8; 8192];
    let mut cbuf = vec![0u64; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: plain data; zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.len() * 8;
    // SAFETY: `msg` describes live buffers.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let count = close_fds(&cbuf, msg.msg_controllen);
    if n <= 0 && count == 0 {
        return None;
    }
    buf.truncate(n.max(0) as usize);
    Some((buf, count))
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// --- The tests. -------------------------------------------------------------------------------

/// What the robustness test does with one connection.
enum Abuse {
    /// Send these bytes with these descriptors, then read the reply.
    Send(Vec<u8>, Vec<OwnedFd>),
    /// Connect and close at once.
    Hangup,
    /// Connect and say nothing until the listener gives up.
    Silent,
}

fn abuse(rng: &mut Rng, i: usize, valid: &[u8]) -> Abuse {
    let mut v = valid.to_vec();
    match i % 12 {
        // Random bytes, with or without a valid preamble.
        0 => {
            let n = rng.below(700);
            let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            if rng.below(2) == 0 && b.len() >= 8 {
                b[..8].copy_from_slice(&preamble(1));
            }
            Abuse::Send(b, vec![])
        }
        // Truncated.
        1 => {
            v.truncate(rng.below(valid.len()));
            Abuse::Send(v, vec![])
        }
        // One byte changed (a change in a name or in user metadata may still be valid).
        2 | 3 => {
            let at = rng.below(v.len());
            v[at] ^= (rng.next() as u8) | 1;
            Abuse::Send(v, vec![])
        }
        // A huge or wrong count or length somewhere.
        4 => {
            let at = 8 + rng.below(v.len() - 12);
            let value = [u32::MAX, 0, 65, 1 << 20, 0x8000_0000, rng.next() as u32][rng.below(6)];
            v[at..at + 4].copy_from_slice(&value.to_le_bytes());
            Abuse::Send(v, vec![])
        }
        // Trailing garbage.
        5 => {
            v.extend((0..1 + rng.below(64)).map(|_| rng.next() as u8));
            Abuse::Send(v, vec![])
        }
        // A valid request carrying descriptors, which requests never carry: a pipe, an
        // unsealed memfd, and more descriptors than the listener makes room for.
        6 => Abuse::Send(v, vec![pipe().0]),
        7 => Abuse::Send(v, vec![memfd(&[0; 4096], false)]),
        8 => Abuse::Send(v, (0..8).map(|_| pipe().1).collect()),
        // Wrong version, wrong kind, another side's message.
        9 => {
            let b = match rng.below(4) {
                0 => {
                    v[4] = 2;
                    v
                }
                1 => {
                    v[6] = 3;
                    v
                }
                2 => {
                    let mut a = preamble(4);
                    a.extend_from_slice(&[0; 8]);
                    a
                }
                _ => Vec::new(), // an empty message
            };
            Abuse::Send(b, vec![])
        }
        // An oversized message.
        10 if i % 120 == 10 => Abuse::Send(vec![7u8; 200 * 1024], vec![]),
        10 => Abuse::Hangup,
        // A few silent clients: the listener must time out and go on.
        _ if i % 3000 == 11 => Abuse::Silent,
        _ => Abuse::Send(v[..v.len() / 2].to_vec(), vec![]),
    }
}

#[test]
fn listener_survives_ten_thousand_malformed_requests_then_serves_a_client() {
    const MALFORMED: usize = 10_000;
    const ROUNDS: u64 = 1_000;
    let path = sock_path("robust");
    let mut server = peer_command(Role::Server, path.to_str().unwrap(), ROUNDS)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let valid = echo_request();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut rejected, mut accepted) = (0, 0);
    let start = Instant::now();
    for i in 0..MALFORMED {
        let fd = raw_connect(&path);
        match abuse(&mut rng, i, &valid) {
            Abuse::Hangup => drop(fd),
            Abuse::Silent => assert!(raw_recv(fd.as_fd()).is_none(), "closed after the timeout"),
            Abuse::Send(bytes, fds) => {
                let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                if !raw_send(fd.as_fd(), &bytes, &raw) {
                    continue; // the kernel refused it (too large): still a connection
                }
                drop(fds);
                // The reply: a rejection, or (for a changed byte that kept the request
                // valid) the segment, which we never attach to.
                if let Some((reply, n)) = raw_recv(fd.as_fd()) {
                    match reply.get(6..8) {
                        Some([3, 0]) => rejected += 1,
                        Some([2, 0]) => {
                            // A memfd and an eventfd per notify channel; a changed slot count
                            // can make a state channel fan-out, whose consumers use futexes.
                            assert!(
                                (1..=3).contains(&n),
                                "a memfd and at most two eventfds: {n}"
                            );
                            accepted += 1;
                        }
                        other => panic!("unexpected reply kind {other:?}"),
                    }
                }
            }
        }
    }
    eprintln!(
        "{MALFORMED} malformed connections in {:?}: {rejected} rejected with a reason, {accepted} \
         still valid but abandoned",
        start.elapsed()
    );
    assert!(rejected > MALFORMED / 2);

    // The listener is still up: a real client attaches and exchanges data with it.
    let conn = handshake::connect(&path, &echo_channels(rtipc::Segment::builder())).unwrap();
    assert_eq!(
        conn.peer().pid,
        server.id(),
        "SO_PEERCRED names the listener"
    );
    let mut cmd = StateProducer::<Small>::new(conn.segment(), "cmd").unwrap();
    let mut echo = StateConsumer::<Small>::new(conn.segment(), "echo").unwrap();
    for k in 1..=ROUNDS {
        cmd.publish_copy(&small(k, TAG_UP)).unwrap();
        assert!(wait_for_seq(&mut echo, k, |s| s.seq), "echo {k}");
        let s = echo.fetch().unwrap().unwrap();
        assert!(
            small_ok(&s, 3 * k as u32),
            "echo {k} carries the server's tag"
        );
    }
    assert!(conn.peer_alive());
    drop((cmd, echo, conn));

    let status = server.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "server: {status}");
    let counts: Vec<usize> = rest
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    eprintln!("server reports: {}", rest.trim());
    assert_eq!(
        counts.iter().sum::<usize>(),
        MALFORMED,
        "every malformed connection failed on its own"
    );
    assert!(counts[1] >= 3, "the silent clients timed out");
}

#[test]
fn the_filter_sees_the_request_and_its_rejection_reaches_the_client() {
    let path = sock_path("reject");
    let listener = Listener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let mut seen = None;
        let err = listener
            .accept(|req| {
                seen = Some((
                    req.peer(),
                    req.channels()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect::<Vec<_>>(),
                    req.channels()[0].user_meta().to_vec(),
                    req.channels()[0].objects()[0].schema.name().to_owned(),
                ));
                Err("robots from this uid are not allowed".into())
            })
            .unwrap_err();
        (seen.unwrap(), err)
    });
    let err = handshake::connect(&path, &echo_channels(Segment::builder())).unwrap_err();
    match &err {
        Error::Rejected { reason } => assert_eq!(reason, "robots from this uid are not allowed"),
        e => panic!("expected a rejection, got {e}"),
    }
    assert!(err.to_string().contains("rejected"), "{err}");
    let ((peer, names, meta, object), server_err) = server.join().unwrap();
    assert!(matches!(server_err, Error::Rejected { .. }));
    assert_eq!(peer.pid, std::process::id());
    // SAFETY: getuid cannot fail.
    assert_eq!(peer.uid, unsafe { libc::getuid() });
    assert_eq!(names, ["cmd", "echo"]);
    assert_eq!(meta, b"commands");
    assert_eq!(object, "Small");
}

#[test]
fn requests_the_listener_cannot_honour_are_refused_with_the_reason() {
    let path = sock_path("invalid");
    let listener = Listener::bind(&path).unwrap().max_segment_size(1 << 20);
    let server = std::thread::spawn(move || {
        (0..3)
            .map(|_| listener.accept(|_| Ok(())).unwrap_err().to_string())
            .collect::<Vec<_>>()
    });
    let ask = |bytes: Vec<u8>| {
        let fd = raw_connect(&path);
        assert!(raw_send(fd.as_fd(), &bytes, &[]));
        let (reply, _) = raw_recv(fd.as_fd()).expect("a reply");
        assert_eq!(&reply[6..8], &[3, 0], "a rejection");
        String::from_utf8_lossy(&reply[12..]).into_owned()
    };
    // A cache line that is not a power of two.
    let mut bad_line = echo_request();
    bad_line[8..12].copy_from_slice(&100u32.to_le_bytes());
    assert!(ask(bad_line).contains("cache line 100"));
    // The same channel name twice.
    let twice = request(&[("cmd", 2, false, b""), ("cmd", 1, false, b"")]);
    assert!(ask(twice).contains("declared twice"));
    // More memory than the listener allows: a queue of a million slots.
    let mut huge = request(&[("q", 1, false, b"")]);
    huge[8 + 8 + 2 + 1] = 2; // kind: queue
    huge[8 + 8 + 2 + 1 + 4..8 + 8 + 2 + 1 + 8].copy_from_slice(&(1u32 << 20).to_le_bytes());
    assert!(ask(huge).contains("larger than the listener's limit"));
    let errors = server.join().unwrap();
    assert!(errors[0].contains("cache line"), "{errors:?}");
}

#[test]
fn stale_socket_files_are_replaced_and_live_listeners_are_not() {
    let path = sock_path("stale");
    // A socket file left by a listener that died: bound, never unlinked.
    {
        let fd = raw_socket();
        let (a, len) = addr(&path);
        // SAFETY: a valid address.
        let r = unsafe { libc::bind(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len) };
        assert_eq!(r, 0);
    }
    assert!(path.exists(), "the stale file is there");
    let listener = Listener::bind(&path).unwrap();
    // A second listener on a live one is refused, and the live one keeps its file.
    let err = Listener::bind(&path).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(path.exists());
    // Dropping the listener removes its file.
    drop(listener);
    assert!(!path.exists());
    // Something that is not a socket is left alone.
    std::fs::write(&path, b"not a socket").unwrap();
    let err = Listener::bind(&path).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_silent_client_times_out_and_the_listener_goes_on() {
    let path = sock_path("silent");
    let listener = Listener::bind(&path)
        .unwrap()
        .handshake_timeout(Duration::from_secs(1))
        .accept_timeout(Some(Duration::from_secs(10)));
    let silent = raw_connect(&path);
    let err = listener.accept(|_| Ok(())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                stage: Stage::ReadingRequest
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("request"), "{err}");
    // The stage tells the handshake's deadline (1 s) from accept's (10 s).
    assert!(raw_recv(silent.as_fd()).is_none(), "the listener closed it");
    // Nobody else comes: accept's own timeout.
    let quiet = Listener::bind(sock_path("quiet"))
        .unwrap()
        .accept_timeout(Some(Duration::from_millis(50)));
    assert!(matches!(
        quiet.accept(|_| Ok(())),
        Err(Error::Timeout {
            stage: Stage::WaitingForClient
        })
    ));
    // And the first listener still serves a client.
    let client = std::thread::spawn({
        let path = path.clone();
        move || handshake::connect(&path, &echo_channels(Segment::builder())).map(|_| ())
    });
    listener.accept(|_| Ok(())).unwrap();
    client.join().unwrap().unwrap();
}

/// A fake listener that answers one request with `reply` and `fds`; returns what the client
/// reported back (`None` if it reported nothing).
fn fake_listener(
    path: &Path,
    reply: Vec<u8>,
    fds: Vec<OwnedFd>,
) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    let _ = std::fs::remove_file(path);
    let fd = raw_socket();
    let (a, len) = addr(path);
    // SAFETY: a valid address of `len` bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len) };
    assert_eq!(r, 0);
    // SAFETY: listen on the bound socket.
    assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 1) }, 0);
    std::thread::spawn(move || {
        // SAFETY: accept on a listening socket.
        let c = unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        assert!(c >= 0);
        // SAFETY: a new descriptor.
        let c = unsafe { OwnedFd::from_raw_fd(c) };
        raw_recv(c.as_fd()).expect("the request");
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        assert!(raw_send(c.as_fd(), &reply, &raw));
        drop(fds);
        raw_recv(c.as_fd()).map(|(m, _)| m)
    })
}

fn accept_reply(count: u32) -> Vec<u8> {
    let mut v = preamble(2);
    v.extend_from_slice(&count.to_le_bytes());
    v
}

/// A fake listener's reply and descriptors: what is wrong with them, and what the client's
/// error must say.
type BadReply = (&'static str, Vec<u8>, Vec<OwnedFd>, &'static str);

/// The replies a client must refuse, made from a copy of a real segment (`image`); `with`
/// adds the real segment's eventfds after a memfd.
fn bad_replies(image: &[u8], with: &dyn Fn(OwnedFd) -> Vec<OwnedFd>) -> Vec<BadReply> {
    vec![
        (
            "an undersized memfd",
            accept_reply(3),
            with(memfd(&image[..64], true)),
            "smaller than",
        ),
        (
            "a memfd smaller than the channels it announces",
            accept_reply(3),
            with(memfd(&image[..image.len() / 2], true)),
            "segment",
        ),
        (
            "an unsealed memfd",
            accept_reply(3),
            with(memfd(image, false)),
            "not sealed",
        ),
        (
            "a pipe instead of a memfd",
            accept_reply(3),
            with(pipe().0),
            "not a sealable memfd",
        ),
        (
            "pipes instead of eventfds",
            accept_reply(3),
            vec![memfd(image, true), pipe().0, pipe().1],
            "not an eventfd",
        ),
        (
            "too few descriptors",
            accept_reply(1),
            vec![memfd(image, true)],
            "2 notify-enabled channels but 0",
        ),
        (
            "a count that does not match",
            accept_reply(3),
            vec![memfd(image, true)],
            "announced 3",
        ),
        (
            "too many descriptors",
            accept_reply(9),
            (0..9).map(|_| pipe().0).collect(),
            "memfd",
        ),
        ("no descriptors", accept_reply(0), vec![], "announced 0"),
        ("a garbage reply", vec![0xAB; 40], vec![], "malformed reply"),
        (
            "a reply with trailing bytes",
            [accept_reply(3), vec![0]].concat(),
            with(memfd(image, true)),
            "unexpected bytes",
        ),
    ]
}

#[test]
fn the_client_refuses_bad_descriptors_from_the_listener() {
    let path = sock_path("fake");
    // A real segment of the right shape, to copy and to borrow eventfds from.
    let real = echo_channels(Segment::builder())
        .create_anonymous()
        .unwrap();
    let mut image = vec![0u8; 0];
    std::fs::File::from(dup(real.as_fd()))
        .read_to_end(&mut image)
        .unwrap();
    let efds = || -> Vec<OwnedFd> { real.event_fds().into_iter().map(dup).collect() };
    let with = |memfd: OwnedFd| {
        let mut v = vec![memfd];
        v.extend(efds());
        v
    };
    for (what, reply, fds, expect) in bad_replies(&image, &with) {
        let server = fake_listener(&path, reply, fds);
        let err = handshake::connect_timeout(
            &path,
            &echo_channels(Segment::builder()),
            Duration::from_secs(5),
        )
        .expect_err(what);
        assert!(
            err.to_string().contains(expect),
            "{what}: expected `{expect}` in: {err}"
        );
        let report = server.join().unwrap();
        if let Some(report) = report {
            assert_eq!(
                &report[6..8],
                &[4, 0],
                "{what}: the client reports its failure"
            );
            assert_eq!(&report[8..12], &[1, 0, 0, 0], "{what}: status failed");
        }
    }
    // The unmodified copy attaches: the cases above fail for the reason named.
    let server = fake_listener(&path, accept_reply(3), with(memfd(&image, true)));
    let conn = handshake::connect(&path, &echo_channels(Segment::builder())).unwrap();
    assert_eq!(conn.segment().channel_names(), ["cmd", "echo"]);
    let report = server.join().unwrap().unwrap();
    assert_eq!(&report[8..12], &[0, 0, 0, 0], "attached");
    let _ = std::fs::remove_file(&path);
}

// --- Many clients at once. --------------------------------------------------------------------

/// The client's report that it attached (kind 4, status 0, no message).
fn attached_report() -> Vec<u8> {
    let mut v = preamble(4);
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

/// Answers `count` pings of a `Role::WakeClient` peer on `seg`.
fn answer_pings(seg: &Segment, count: u64) {
    let mut ping = StateConsumer::<Stamp>::new(seg, "ping").unwrap();
    let mut pong = StateProducer::<Stamp>::new(seg, "pong").unwrap();
    for k in 1..=count {
        assert!(wait_for_seq(&mut ping, k, |s| s.seq), "ping {k}");
        pong.publish_copy(&Stamp { seq: k, sent_ns: 0 }).unwrap();
    }
}

/// Whether the listener has left `fd` open: nothing to read, not even the end of the stream.
fn still_open(fd: &OwnedFd) -> bool {
    poll_in(fd.as_raw_fd(), 0).is_none()
}

#[test]
fn a_listener_with_eight_silent_connections_pending_still_serves_a_valid_client() {
    const SILENT: usize = 8;
    const PINGS: u64 = 3;
    let timeout = Duration::from_secs(10);
    let path = sock_path("silent-eight");
    let listener = Listener::bind(&path)
        .unwrap()
        .handshake_timeout(timeout)
        .accept_timeout(Some(Duration::from_secs(30)));
    // Eight clients connect and say nothing; then a valid client, in another process.
    let silent: Vec<OwnedFd> = (0..SILENT).map(|_| raw_connect(&path)).collect();
    let peer = spawn_peer(Role::WakeClient, path.to_str().unwrap(), PINGS);
    let start = Instant::now();
    let mut requests = 0;
    let conn = listener
        .accept(|_| {
            requests += 1;
            Ok(())
        })
        .expect("the valid client is served before the silent ones time out");
    // Served before any silent one timed out: all eight are still pending (checked below).
    println!(
        "served a valid client behind {SILENT} silent connections in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(requests, 1, "only the valid client sent a request");
    assert_eq!(conn.peer().pid, peer.id(), "the client is the peer process");
    assert_eq!(
        listener.pending(),
        SILENT,
        "the silent ones are still pending"
    );
    assert!(silent.iter().all(still_open));
    // The valid client's segment works across the processes.
    answer_pings(conn.segment(), PINGS);
    wait_peer(peer, Duration::from_secs(30));
    // Each silent connection then times out on its own, one error per `accept`, waiting for
    // its request; the listener closes it.
    for left in (0..SILENT).rev() {
        let err = listener.accept(|_| Ok(())).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    stage: Stage::ReadingRequest
                }
            ),
            "{err}"
        );
        assert_eq!(listener.pending(), left);
    }
    for fd in &silent {
        assert!(raw_recv(fd.as_fd()).is_none(), "the listener closed it");
    }
}

/// `accept` again while only its (short) accept timeout passes, for up to 30 s.
fn accept_next(listener: &Listener) -> Result<handshake::Connection, Error> {
    let start = Instant::now();
    loop {
        match listener.accept(|_| Ok(())) {
            Err(Error::Timeout {
                stage: Stage::WaitingForClient,
            }) if start.elapsed() < Duration::from_secs(30) => {}
            result => return result,
        }
    }
}

#[test]
fn a_listener_at_its_limit_refuses_new_connections_as_busy_and_keeps_the_pending_ones() {
    const LIMIT: usize = 4;
    let path = sock_path("busy");
    let listener = Listener::bind(&path)
        .unwrap()
        .max_pending(LIMIT)
        .handshake_timeout(Duration::from_secs(30))
        .accept_timeout(Some(Duration::from_millis(50)));
    // Four silent connections fill the listener: `accept` takes them and nothing completes.
    let silent: Vec<OwnedFd> = (0..LIMIT).map(|_| raw_connect(&path)).collect();
    assert!(matches!(
        listener.accept(|_| Ok(())),
        Err(Error::Timeout {
            stage: Stage::WaitingForClient
        })
    ));
    assert_eq!(listener.pending(), LIMIT);
    // The fifth is refused at once with the reason, and closed.
    let fifth = raw_connect(&path);
    let err = accept_next(&listener).unwrap_err();
    let busy = "the listener is busy: 4 handshakes are pending; retry";
    match &err {
        Error::Rejected { reason } => assert_eq!(reason, busy),
        e => panic!("expected a rejection, got {e}"),
    }
    let (reply, fds) = raw_recv(fifth.as_fd()).expect("a reply");
    assert_eq!((&reply[6..8], fds), (&[3u8, 0][..], 0), "a rejection");
    assert_eq!(&reply[8..12], &(busy.len() as u32).to_le_bytes());
    assert_eq!(String::from_utf8_lossy(&reply[12..]), busy);
    assert!(raw_recv(fifth.as_fd()).is_none(), "then closed");
    // The four are still pending, and still served: one sends its request, gets its segment
    // and reports that it attached.
    assert_eq!(listener.pending(), LIMIT);
    assert!(silent.iter().all(still_open));
    assert!(raw_send(silent[0].as_fd(), &echo_request(), &[]));
    let accepted = std::thread::scope(|s| {
        let server = s.spawn(|| accept_next(&listener));
        let (reply, fds) = raw_recv(silent[0].as_fd()).expect("the segment");
        assert!(raw_send(silent[0].as_fd(), &attached_report(), &[]));
        (reply, fds, server.join().unwrap())
    });
    let (reply, fds, conn) = accepted;
    assert_eq!(
        (&reply[6..8], fds),
        (&[2u8, 0][..], 3),
        "a memfd and 2 eventfds"
    );
    assert_eq!(conn.unwrap().segment().channel_names(), ["cmd", "echo"]);
    assert_eq!(listener.pending(), LIMIT - 1);
    // Below the limit again, a new client is served.
    let client = std::thread::spawn({
        let path = path.clone();
        move || handshake::connect(&path, &echo_channels(Segment::builder())).map(|_| ())
    });
    accept_next(&listener).unwrap();
    client.join().unwrap().unwrap();
    // The other three hang up: one error each, and none is left.
    drop(silent);
    for _ in 1..LIMIT {
        let err = accept_next(&listener).unwrap_err();
        assert!(err.to_string().contains("closed the connection"), "{err}");
    }
    assert_eq!(listener.pending(), 0);
}

#[test]
fn valid_clients_interleaved_with_slow_ones_all_get_their_segments() {
    const PINGS: u64 = 3;
    let path = sock_path("interleaved");
    let listener = std::sync::Arc::new(
        Listener::bind(&path)
            .unwrap()
            .handshake_timeout(Duration::from_secs(10))
            .accept_timeout(Some(Duration::from_secs(30))),
    );
    // The server: accepts three clients, counting the requests its filter sees.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn({
        let listener = listener.clone();
        move || {
            let mut requests = 0;
            for _ in 0..3 {
                let result = listener.accept(|_| {
                    requests += 1;
                    Ok(())
                });
                tx.send(result).unwrap();
            }
            requests
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    // A silent client, and one that sends its request but never reports back.
    let late = raw_connect(&path);
    let unreported = raw_connect(&path);
    assert!(raw_send(unreported.as_fd(), &echo_request(), &[]));
    // Two valid clients: another process, and a thread of this one.
    let peer = spawn_peer(Role::WakeClient, path.to_str().unwrap(), PINGS);
    let client = std::thread::spawn({
        let path = path.clone();
        move || {
            let conn = handshake::connect(&path, &echo_channels(Segment::builder()))?;
            Ok::<_, Error>(conn.segment().channel_names().len())
        }
    });
    let (reply, fds) = raw_recv(unreported.as_fd()).expect("the segment");
    assert_eq!(
        (&reply[6..8], fds),
        (&[2u8, 0][..], 3),
        "a memfd and 2 eventfds"
    );
    // Both valid clients get their segments while the slow ones are pending.
    let (a, b) = (next(), next());
    let (wake, echo) = if a.segment().channel_names() == ["ping", "pong"] {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(wake.peer().pid, peer.id());
    assert_eq!(echo.segment().channel_names(), ["cmd", "echo"]);
    assert_eq!(client.join().unwrap().unwrap(), 2);
    answer_pings(wake.segment(), PINGS);
    wait_peer(peer, Duration::from_secs(30));
    assert_eq!(listener.pending(), 2, "the slow ones are still pending");
    assert!(still_open(&late) && still_open(&unreported));
    // The silent one sends its request after all, attaches (in this test, says so) and is
    // served too.
    assert!(raw_send(late.as_fd(), &echo_request(), &[]));
    let (reply, fds) = raw_recv(late.as_fd()).expect("the segment");
    assert_eq!((&reply[6..8], fds), (&[2u8, 0][..], 3));
    assert!(raw_send(late.as_fd(), &attached_report(), &[]));
    let third = next();
    assert_eq!(third.peer().pid, std::process::id());
    assert_eq!(
        server.join().unwrap(),
        4,
        "four requests reached the filter"
    );
    // The one that never reported hangs up: its own error, and nothing is left.
    assert_eq!(listener.pending(), 1);
    drop(unreported);
    let err = listener.accept(|_| Ok(())).unwrap_err();
    assert!(
        err.to_string().contains("waiting for the client to attach"),
        "{err}"
    );
    assert_eq!(listener.pending(), 0);
}

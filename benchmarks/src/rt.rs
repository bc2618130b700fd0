//! Round trips: the parent sends sequence number `s` and waits for the child to echo it; the
//! child checks what it got and echoes it back. Both sides busy-poll. Every round trip checks
//! the data on both sides; a wrong value is counted, not hidden.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use rtipc::{
    DataError, MessageRef, Observed, QueueConsumer, QueueProducer, RecordConsumer, RecordProducer,
    Segment, StateConsumer, StateObserver, StateProducer, StateRef,
};

use crate::payload::{check, fill, record_words, record_words_mut, Page, Word, RECORD_4K_LEN};
use crate::records::send_record;
use crate::sys::{now_ns, Ctrl, Ctx, Res, Spin};

/// The methods under test, and the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One `AtomicU64` per direction, each on its own 128-byte line, in shared memory.
    Raw,
    /// rtipc state channels with an 8-byte object, one per direction.
    State8,
    /// rtipc state channels with a 4 KiB object, written whole by the sender and copied whole
    /// into the echo by the child.
    State4k,
    /// rtipc queue channels with an 8-byte message, one per direction.
    Queue8,
    /// iceoryx2 publish-subscribe with a `u64`, one service per direction.
    Iceoryx2,
    /// A unix-domain socketpair (stream), 8-byte messages, both sides polling with
    /// `MSG_DONTWAIT`.
    Uds,
    /// The same socketpair with blocking reads: how sockets are usually used, and what the
    /// reference figures quoted in BENCHMARKS.md measured (each read sleeps and is woken up).
    UdsBlocking,
    /// `state_8` while the parent, waiting for the echo, polls the `state_8/ping` channel with
    /// an observer in a tight loop (the observer's reads of the channel's lines are what it
    /// costs the consumer).
    State8Observed,
    /// A fan-out state channel of 8 bytes with 2 consumer ends, both held by the child, which
    /// fetches each update on every end before it echoes (on a plain state channel).
    Fanout2,
    /// The same with 4 consumer ends.
    Fanout4,
    /// rtipc record channels, one per direction, carrying a record of one 8-byte element:
    /// reserved, written in place and committed by the sender, popped, checked and released
    /// by the receiver.
    Record8,
    /// The same with a record of 4 KiB, written whole by the sender; the child checks the
    /// first and last word and copies all of it into its echo record, as for `state_4k`.
    Record4k,
}

impl Method {
    pub const fn name(self) -> &'static str {
        match self {
            Method::Raw => "raw",
            Method::State8 => "state_8",
            Method::State4k => "state_4k",
            Method::Queue8 => "queue_8",
            Method::Iceoryx2 => "iceoryx2",
            Method::Uds => "uds",
            Method::UdsBlocking => "uds_block",
            Method::State8Observed => "state_8+obs",
            Method::Fanout2 => "fanout_2",
            Method::Fanout4 => "fanout_4",
            Method::Record8 => "record_8",
            Method::Record4k => "record_4k",
        }
    }

    /// The command number the child knows the method by.
    pub const fn op(self) -> u64 {
        match self {
            Method::Raw => 1,
            Method::State8 => 2,
            Method::State4k => 3,
            Method::Queue8 => 4,
            Method::Iceoryx2 => 5,
            Method::Uds => 6,
            Method::UdsBlocking => 7,
            Method::State8Observed => 20,
            Method::Fanout2 => 21,
            Method::Fanout4 => 22,
            Method::Record8 => 23,
            Method::Record4k => 24,
        }
    }

    pub fn from_op(op: u64) -> Option<Method> {
        [
            Method::Raw,
            Method::State8,
            Method::State4k,
            Method::Queue8,
            Method::Iceoryx2,
            Method::Uds,
            Method::UdsBlocking,
            Method::State8Observed,
            Method::Fanout2,
            Method::Fanout4,
            Method::Record8,
            Method::Record4k,
        ]
        .into_iter()
        .find(|m| m.op() == op)
    }
}

/// One iceoryx2 publisher and one subscriber, each on its own service (history 0).
pub struct Iox {
    tx: Publisher<ipc::Service, u64, ()>,
    rx: Subscriber<ipc::Service, u64, ()>,
    _services:
        Vec<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, u64, ()>>,
    _node: Node<ipc::Service>,
}

impl Iox {
    /// Opens (or creates) services `{prefix}/{out}` to publish on and `{prefix}/{back}` to
    /// subscribe to.
    pub fn new(prefix: &str, out: &str, back: &str) -> Res<Iox> {
        // Only errors: without a config file iceoryx2 warns that it uses its defaults.
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .create::<ipc::Service>()
            .ctx("iceoryx2 node")?;
        let service = |name: &str| -> Res<_> {
            let name = format!("{prefix}/{name}");
            let name: ServiceName = name.as_str().try_into().ctx("iceoryx2 service name")?;
            node.service_builder(&name)
                .publish_subscribe::<u64>()
                .history_size(0)
                .subscriber_max_buffer_size(2)
                .max_publishers(1)
                .max_subscribers(1)
                .open_or_create()
                .ctx("iceoryx2 service")
        };
        let out_service = service(out)?;
        let back_service = service(back)?;
        let rx = back_service
            .subscriber_builder()
            .create()
            .ctx("iceoryx2 subscriber")?;
        let tx = out_service
            .publisher_builder()
            .create()
            .ctx("iceoryx2 publisher")?;
        Ok(Iox {
            tx,
            rx,
            _services: vec![out_service, back_service],
            _node: node,
        })
    }

    /// Sends `v` through a loaned sample (zero-copy: the value is written into shared memory).
    #[inline(always)]
    fn send(&self, v: u64) -> Res<()> {
        let sample = self.tx.loan_uninit().ctx("iceoryx2 loan")?;
        sample.write_payload(v).send().ctx("iceoryx2 send")?;
        Ok(())
    }

    /// Busy-polls until a sample arrives; returns its value.
    #[inline(always)]
    fn recv(&self, spin: &mut Spin) -> Res<u64> {
        loop {
            if let Some(sample) = self.rx.receive().ctx("iceoryx2 receive")? {
                return Ok(*sample);
            }
            spin.tick()?;
        }
    }
}

/// Sends 8 bytes on a stream socket (blocking; the socket buffer never fills here).
#[inline(always)]
fn uds_send(fd: &OwnedFd, v: u64) -> Res<()> {
    let b = v.to_ne_bytes();
    // SAFETY: `b` is 8 readable bytes; `fd` is an open socket.
    let n = unsafe { libc::send(fd.as_raw_fd(), b.as_ptr().cast(), 8, libc::MSG_NOSIGNAL) };
    if n != 8 {
        return Err(format!(
            "uds send: {} ({n})",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Receives 8 bytes from a stream socket: busy-polling with `MSG_DONTWAIT`, or blocking.
#[inline(always)]
fn uds_recv(fd: &OwnedFd, spin: &mut Spin, block: bool) -> Res<u64> {
    let flags = if block { 0 } else { libc::MSG_DONTWAIT };
    let mut b = [0u8; 8];
    let mut got = 0usize;
    while got < 8 {
        // SAFETY: writes at most `8 - got` bytes into `b[got..]`; `fd` is an open socket.
        let n = unsafe { libc::recv(fd.as_raw_fd(), b[got..].as_mut_ptr().cast(), 8 - got, flags) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 {
            return Err("uds recv: the other end closed".into());
        } else {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(format!("uds recv: {e}"));
            }
            spin.tick()?;
        }
    }
    Ok(u64::from_ne_bytes(b))
}

/// One side's ends of every round-trip method.
pub struct Ends {
    s8_tx: StateProducer<Word>,
    s8_rx: StateConsumer<Word>,
    s4k_tx: StateProducer<Page>,
    s4k_rx: StateConsumer<Page>,
    q8_tx: QueueProducer<Word>,
    q8_rx: QueueConsumer<Word>,
    iox: Iox,
    uds: OwnedFd,
    /// The last value seen on the incoming raw word.
    raw_last: u64,
    /// rtipc's sequence number of the last update fetched, per incoming state channel.
    s8_seq: u64,
    s4k_seq: u64,
    /// rtipc's number of the last message popped from the incoming queue.
    q8_seq: u64,
    /// The fan-out round trips' ends.
    fan: Fan,
    /// The record round trips' ends.
    rec: Recs,
}

/// One side's ends of the record round trips, and the sequence number of the last record
/// taken from each incoming channel.
struct Recs {
    r8_tx: RecordProducer<Word>,
    r8_rx: RecordConsumer<Word>,
    r4k_tx: RecordProducer<Word>,
    r4k_rx: RecordConsumer<Word>,
    r8_seq: u64,
    r4k_seq: u64,
}

impl Recs {
    fn new(seg: &Segment, out: &str, back: &str) -> Res<Recs> {
        Ok(Recs {
            r8_tx: RecordProducer::new(seg, &format!("record_8/{out}")).ctx("record_8 producer")?,
            r8_rx: RecordConsumer::new(seg, &format!("record_8/{back}"))
                .ctx("record_8 consumer")?,
            r4k_tx: RecordProducer::new(seg, &format!("record_4k/{out}"))
                .ctx("record_4k producer")?,
            r4k_rx: RecordConsumer::new(seg, &format!("record_4k/{back}"))
                .ctx("record_4k consumer")?,
            r8_seq: 0,
            r4k_seq: 0,
        })
    }

    /// The ends, last sequence number and record length of `m` (a record method).
    fn of(
        &mut self,
        m: Method,
    ) -> (
        &mut RecordProducer<Word>,
        &mut RecordConsumer<Word>,
        &mut u64,
        usize,
    ) {
        if m == Method::Record8 {
            (&mut self.r8_tx, &mut self.r8_rx, &mut self.r8_seq, 1)
        } else {
            (
                &mut self.r4k_tx,
                &mut self.r4k_rx,
                &mut self.r4k_seq,
                RECORD_4K_LEN,
            )
        }
    }
}

/// The fan-out round trips' ends: the parent publishes on `fanout_2/ping` and `fanout_4/ping`
/// and fetches `fanout/pong`; the child holds every consumer end of the two and publishes the
/// echo. The parent also observes `state_8/ping` for `state_8+obs`. (One per process, made
/// once: the size of the variants does not matter.)
#[allow(clippy::large_enum_variant)]
enum Fan {
    Parent {
        tx2: StateProducer<Word>,
        tx4: StateProducer<Word>,
        pong: StateConsumer<Word>,
        seq: u64,
        watch: StateObserver<Word>,
    },
    Child {
        rx2: Vec<StateConsumer<Word>>,
        rx4: Vec<StateConsumer<Word>>,
        pong: StateProducer<Word>,
        /// The sequence number each end last saw, per channel.
        seq2: u64,
        seq4: u64,
    },
}

impl Fan {
    fn new(seg: &Segment, parent: bool) -> Res<Fan> {
        let all = |name: &str, n: usize| -> Res<Vec<StateConsumer<Word>>> {
            (0..n)
                .map(|_| StateConsumer::new(seg, name).ctx("fan-out consumer"))
                .collect()
        };
        Ok(if parent {
            Fan::Parent {
                tx2: StateProducer::new(seg, "fanout_2/ping").ctx("fanout_2 producer")?,
                tx4: StateProducer::new(seg, "fanout_4/ping").ctx("fanout_4 producer")?,
                pong: StateConsumer::new(seg, "fanout/pong").ctx("fan-out echo consumer")?,
                seq: 0,
                watch: StateObserver::new(seg, "state_8/ping").ctx("state_8 observer")?,
            }
        } else {
            Fan::Child {
                rx2: all("fanout_2/ping", 2)?,
                rx4: all("fanout_4/ping", 4)?,
                pong: StateProducer::new(seg, "fanout/pong").ctx("fan-out echo producer")?,
                seq2: 0,
                seq4: 0,
            }
        })
    }
}

impl Ends {
    /// The parent's ends: it publishes on `*/ping` and fetches from `*/pong`.
    pub fn parent(seg: &Segment, iox_prefix: &str, uds: OwnedFd) -> Res<Ends> {
        Self::new(seg, iox_prefix, uds, "ping", "pong")
    }

    /// The child's ends: it fetches from `*/ping` and publishes on `*/pong`.
    pub fn child(seg: &Segment, iox_prefix: &str, uds: OwnedFd) -> Res<Ends> {
        Self::new(seg, iox_prefix, uds, "pong", "ping")
    }

    fn new(seg: &Segment, iox_prefix: &str, uds: OwnedFd, out: &str, back: &str) -> Res<Ends> {
        Ok(Ends {
            s8_tx: StateProducer::new(seg, &format!("state_8/{out}")).ctx("state_8 producer")?,
            s8_rx: StateConsumer::new(seg, &format!("state_8/{back}")).ctx("state_8 consumer")?,
            s4k_tx: StateProducer::new(seg, &format!("state_4k/{out}")).ctx("state_4k producer")?,
            s4k_rx: StateConsumer::new(seg, &format!("state_4k/{back}"))
                .ctx("state_4k consumer")?,
            q8_tx: QueueProducer::new(seg, &format!("queue_8/{out}")).ctx("queue_8 producer")?,
            q8_rx: QueueConsumer::new(seg, &format!("queue_8/{back}")).ctx("queue_8 consumer")?,
            iox: Iox::new(iox_prefix, out, back)?,
            uds,
            raw_last: 0,
            s8_seq: 0,
            s4k_seq: 0,
            q8_seq: 0,
            fan: Fan::new(seg, out == "ping")?,
            rec: Recs::new(seg, out, back)?,
        })
    }

    /// Parent side: `count` round trips of `m` with sequence numbers `start..`, the first
    /// `warm` of them not recorded; appends the others' round-trip times (ns) to `out`.
    /// Returns the number of wrong echoes.
    pub fn ping(
        &mut self,
        ctrl: &Ctrl,
        m: Method,
        start: u64,
        count: u64,
        warm: u64,
        out: &mut Vec<u64>,
    ) -> Res<u64> {
        match m {
            Method::Raw => {
                let last = &mut self.raw_last;
                timed(start, count, warm, out, |s| {
                    // Release/acquire: the value is the message; no other data rides on it.
                    ctrl.ping.w[0].store(s, Ordering::Release);
                    let mut spin = Spin::new("the raw echo");
                    loop {
                        let v = ctrl.pong.w[0].load(Ordering::Acquire);
                        if v != *last {
                            *last = v;
                            return Ok(v == s);
                        }
                        spin.tick()?;
                    }
                })
            }
            Method::State8 | Method::State8Observed => {
                let (tx, rx, seq) = (&mut self.s8_tx, &mut self.s8_rx, &mut self.s8_seq);
                let Fan::Parent { watch, .. } = &mut self.fan else {
                    return Err("the parent's ends".into());
                };
                let observe = m == Method::State8Observed;
                let mut watched = 0u64;
                let errors = timed(start, count, warm, out, |s| {
                    let mut g = tx.write().ctx("state_8 write")?;
                    g.w[0] = s;
                    g.publish().ctx("state_8 publish")?;
                    let mut spin = Spin::new("the state_8 echo");
                    loop {
                        if let Some(r) = rx.fetch().ctx("state_8 fetch")? {
                            if StateRef::is_new(&r) {
                                let ok = r.w[0] == s && StateRef::seq(&r) == *seq + 1;
                                *seq = StateRef::seq(&r);
                                return Ok(ok);
                            }
                        }
                        if observe {
                            // The observer polls the channel the child is fetching.
                            match watch.observe() {
                                Ok(Some(o)) => watched += u64::from(Observed::is_new(&o)),
                                Ok(None) | Err(DataError::Lapped) => {}
                                Err(e) => return Err(format!("state_8 observe: {e}")),
                            }
                        }
                        spin.tick()?;
                    }
                })?;
                if observe && watched == 0 && count > warm {
                    return Err("the observer never saw an update".into());
                }
                Ok(errors)
            }
            Method::Fanout2 | Method::Fanout4 => {
                let Fan::Parent {
                    tx2,
                    tx4,
                    pong,
                    seq,
                    ..
                } = &mut self.fan
                else {
                    return Err("the parent's ends".into());
                };
                let tx = if m == Method::Fanout2 { tx2 } else { tx4 };
                timed(start, count, warm, out, |s| {
                    let mut g = tx.write().ctx("fan-out write")?;
                    g.w[0] = s;
                    g.publish().ctx("fan-out publish")?;
                    let mut spin = Spin::new("the fan-out echo");
                    loop {
                        if let Some(r) = pong.fetch().ctx("fan-out echo fetch")? {
                            if StateRef::is_new(&r) {
                                let ok = r.w[0] == s && StateRef::seq(&r) == *seq + 1;
                                *seq = StateRef::seq(&r);
                                return Ok(ok);
                            }
                        }
                        spin.tick()?;
                    }
                })
            }
            Method::State4k => {
                let (tx, rx, seq) = (&mut self.s4k_tx, &mut self.s4k_rx, &mut self.s4k_seq);
                timed(start, count, warm, out, |s| {
                    let mut g = tx.write().ctx("state_4k write")?;
                    fill(&mut g.w, s);
                    g.publish().ctx("state_4k publish")?;
                    let mut spin = Spin::new("the state_4k echo");
                    loop {
                        if let Some(r) = rx.fetch().ctx("state_4k fetch")? {
                            if StateRef::is_new(&r) {
                                let ok = check(&r.w, s) && StateRef::seq(&r) == *seq + 1;
                                *seq = StateRef::seq(&r);
                                return Ok(ok);
                            }
                        }
                        spin.tick()?;
                    }
                })
            }
            Method::Queue8 => {
                let (tx, rx, seq) = (&mut self.q8_tx, &mut self.q8_rx, &mut self.q8_seq);
                timed(start, count, warm, out, |s| {
                    let mut slot = tx.write().ctx("queue_8 write")?;
                    slot.w[0] = s;
                    slot.force_push().ctx("queue_8 push")?;
                    let mut spin = Spin::new("the queue_8 echo");
                    loop {
                        if let Some(m) = rx.pop().ctx("queue_8 pop")? {
                            let ok = m.w[0] == s
                                && MessageRef::missed(&m) == 0
                                && MessageRef::seq(&m) == *seq + 1;
                            *seq = MessageRef::seq(&m);
                            return Ok(ok);
                        }
                        spin.tick()?;
                    }
                })
            }
            Method::Record8 | Method::Record4k => {
                let (tx, rx, seq, len) = self.rec.of(m);
                timed(start, count, warm, out, |s| {
                    // Reserve (retried while the ring is full, which one record in flight
                    // never makes it), write the whole record, commit.
                    send_record(tx, len, "room in a round-trip record ring", |r| {
                        fill(record_words_mut(r), s)
                    })?;
                    let mut spin = Spin::new("the record echo");
                    loop {
                        if let Some(r) = rx.pop().ctx("record pop")? {
                            let ok = r.len() == len
                                && check(record_words(&r), s)
                                && r.seq() == *seq + 1
                                && r.missed() == 0;
                            *seq = r.seq();
                            // Dropping `r` releases the record.
                            return Ok(ok);
                        }
                        spin.tick()?;
                    }
                })
            }
            Method::Iceoryx2 => {
                let iox = &self.iox;
                timed(start, count, warm, out, |s| {
                    iox.send(s)?;
                    let mut spin = Spin::new("the iceoryx2 echo");
                    Ok(iox.recv(&mut spin)? == s)
                })
            }
            Method::Uds | Method::UdsBlocking => {
                let (fd, block) = (&self.uds, m == Method::UdsBlocking);
                timed(start, count, warm, out, |s| {
                    uds_send(fd, s)?;
                    let mut spin = Spin::new("the uds echo");
                    Ok(uds_recv(fd, &mut spin, block)? == s)
                })
            }
        }
    }

    /// Child side: echoes `count` messages of `m`, expecting sequence numbers `start..`.
    /// Returns the number of wrong messages received.
    pub fn echo(&mut self, ctrl: &Ctrl, m: Method, start: u64, count: u64) -> Res<u64> {
        let mut errors = 0;
        match m {
            Method::Raw => {
                for s in start..start + count {
                    let mut spin = Spin::new("a raw ping");
                    let v = loop {
                        let v = ctrl.ping.w[0].load(Ordering::Acquire);
                        if v != self.raw_last {
                            self.raw_last = v;
                            break v;
                        }
                        spin.tick()?;
                    };
                    errors += u64::from(v != s);
                    ctrl.pong.w[0].store(v, Ordering::Release);
                }
            }
            Method::Fanout2 | Method::Fanout4 => {
                let Fan::Child {
                    rx2,
                    rx4,
                    pong,
                    seq2,
                    seq4,
                } = &mut self.fan
                else {
                    return Err("the child's ends".into());
                };
                let (rxs, seq) = if m == Method::Fanout2 {
                    (rx2, seq2)
                } else {
                    (rx4, seq4)
                };
                for s in start..start + count {
                    // Every consumer end takes the update, one after the other.
                    for rx in rxs.iter_mut() {
                        let mut spin = Spin::new("a fan-out ping");
                        loop {
                            if let Some(r) = rx.fetch().ctx("fan-out fetch")? {
                                if StateRef::is_new(&r) {
                                    errors +=
                                        u64::from(r.w[0] != s || StateRef::seq(&r) != *seq + 1);
                                    break;
                                }
                            }
                            spin.tick()?;
                        }
                    }
                    *seq += 1;
                    let mut g = pong.write().ctx("fan-out echo write")?;
                    g.w[0] = s;
                    g.publish().ctx("fan-out echo publish")?;
                }
            }
            Method::State8 | Method::State8Observed => {
                for s in start..start + count {
                    let mut spin = Spin::new("a state_8 ping");
                    let v = loop {
                        if let Some(r) = self.s8_rx.fetch().ctx("state_8 fetch")? {
                            if StateRef::is_new(&r) {
                                errors +=
                                    u64::from(r.w[0] != s || StateRef::seq(&r) != self.s8_seq + 1);
                                self.s8_seq = StateRef::seq(&r);
                                break r.w[0];
                            }
                        }
                        spin.tick()?;
                    };
                    let mut g = self.s8_tx.write().ctx("state_8 write")?;
                    g.w[0] = v;
                    g.publish().ctx("state_8 publish")?;
                }
            }
            Method::State4k => {
                for s in start..start + count {
                    let mut spin = Spin::new("a state_4k ping");
                    loop {
                        if let Some(r) = self.s4k_rx.fetch().ctx("state_4k fetch")? {
                            if StateRef::is_new(&r) {
                                errors += u64::from(
                                    !check(&r.w, s) || StateRef::seq(&r) != self.s4k_seq + 1,
                                );
                                self.s4k_seq = StateRef::seq(&r);
                                // Echo the whole payload: a 4 KiB copy out of the fetched
                                // slot into the slot being written.
                                let mut g = self.s4k_tx.write().ctx("state_4k write")?;
                                g.w.copy_from_slice(&r.w);
                                g.publish().ctx("state_4k publish")?;
                                break;
                            }
                        }
                        spin.tick()?;
                    }
                }
            }
            Method::Queue8 => {
                for s in start..start + count {
                    let mut spin = Spin::new("a queue_8 ping");
                    let v = loop {
                        if let Some(m) = self.q8_rx.pop().ctx("queue_8 pop")? {
                            errors += u64::from(
                                m.w[0] != s
                                    || MessageRef::missed(&m) != 0
                                    || MessageRef::seq(&m) != self.q8_seq + 1,
                            );
                            self.q8_seq = MessageRef::seq(&m);
                            break m.w[0];
                        }
                        spin.tick()?;
                    };
                    let mut slot = self.q8_tx.write().ctx("queue_8 write")?;
                    slot.w[0] = v;
                    slot.force_push().ctx("queue_8 push")?;
                }
            }
            Method::Record8 | Method::Record4k => {
                let (tx, rx, seq, len) = self.rec.of(m);
                for s in start..start + count {
                    let mut spin = Spin::new("a record ping");
                    loop {
                        if let Some(r) = rx.pop().ctx("record pop")? {
                            errors += u64::from(
                                r.len() != len
                                    || !check(record_words(&r), s)
                                    || r.seq() != *seq + 1
                                    || r.missed() != 0,
                            );
                            *seq = r.seq();
                            // Echo the whole record: a copy out of the popped record into the
                            // one reserved on the way back; the ping is released after.
                            send_record(tx, r.len(), "room in a round-trip record ring", |w| {
                                w.copy_from_slice(&r[..])
                            })?;
                            break;
                        }
                        spin.tick()?;
                    }
                }
            }
            Method::Iceoryx2 => {
                for s in start..start + count {
                    let mut spin = Spin::new("an iceoryx2 ping");
                    let v = self.iox.recv(&mut spin)?;
                    errors += u64::from(v != s);
                    self.iox.send(v)?;
                }
            }
            Method::Uds | Method::UdsBlocking => {
                for s in start..start + count {
                    let mut spin = Spin::new("a uds ping");
                    let v = uds_recv(&self.uds, &mut spin, m == Method::UdsBlocking)?;
                    errors += u64::from(v != s);
                    uds_send(&self.uds, v)?;
                }
            }
        }
        Ok(errors)
    }
}

/// Runs `count` round trips `f(s)` for `s` in `start..`, timing each with `CLOCK_MONOTONIC`
/// (the clock's own cost, about 20 ns here, is in every figure, the floor's too). Records all
/// but the first `warm`; returns how many `f` found wrong.
#[inline(always)]
fn timed(
    start: u64,
    count: u64,
    warm: u64,
    out: &mut Vec<u64>,
    mut f: impl FnMut(u64) -> Res<bool>,
) -> Res<u64> {
    let mut errors = 0;
    out.reserve(count.saturating_sub(warm) as usize);
    for i in 0..count {
        let s = start + i;
        let t0 = now_ns();
        let ok = f(s)?;
        let t1 = now_ns();
        if i >= warm {
            out.push(t1 - t0);
        }
        errors += u64::from(!ok);
    }
    Ok(errors)
}

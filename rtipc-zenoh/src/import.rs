//! The importing side: for each local segment, the descriptions of its channels are fetched,
//! the segment is created from them, and a thread per channel writes what arrives into it as
//! the channel's producer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtipc::{
    ChannelSpec, Direction, RawQueueProducer, RawRecordProducer, RawStateProducer, Segment,
};
use zenoh::handlers::FifoChannelHandler;
use zenoh::query::Reply;
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Session, Wait};

use crate::config::{ImportSpec, Settings};
use crate::key::channel_key;
use crate::wire::{Attachment, Description, Kind};
use crate::{rtipc_err, BridgeError, Counters, Shared, Way};

/// How long an import waits for a sample before it looks at the stop flag and the
/// liveliness events again.
const TICK: Duration = Duration::from_millis(10);

/// How long a query for a description waits for an answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The most messages a queue import accepts as capacity.
const MAX_CAPACITY: u32 = 1 << 24;

/// What an import may create, from the settings, and how it meets a full local queue.
#[derive(Clone, Copy)]
struct Limits {
    consumers: u32,
    max_object: u64,
    max_segment: u64,
    /// Wait for room in a full local queue rather than overwrite its oldest message.
    block: bool,
}

/// Starts the thread that imports `group`, the channels of one local segment.
pub(crate) fn spawn(
    session: Session,
    settings: &Settings,
    group: Vec<ImportSpec>,
    shared: Arc<Shared>,
) -> Result<JoinHandle<()>, BridgeError> {
    let prefix = settings.prefix.clone();
    let limits = Limits {
        consumers: settings.consumers,
        max_object: settings.max_object_bytes,
        max_segment: settings.max_segment_bytes,
        block: settings.queue_block,
    };
    let local = group.first().map(|g| g.local.clone()).unwrap_or_default();
    std::thread::Builder::new()
        .name(format!("import {local}"))
        .spawn(move || {
            if let Err(e) = run(&session, &prefix, &group, limits, &shared) {
                shared.fail(format!("import into `{local}` stopped: {e}"));
            }
        })
        .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))
}

/// Fetches the descriptions, creates the segment and carries each channel until stopped.
fn run(
    session: &Session,
    prefix: &str,
    group: &[ImportSpec],
    limits: Limits,
    shared: &Arc<Shared>,
) -> Result<(), BridgeError> {
    let local = &group[0].local;
    let mut builder = Segment::builder().replace_stale(true);
    let mut channels = Vec::new();
    for spec in group {
        let key = channel_key(prefix, &spec.segment, &spec.channel);
        let Some(description) = fetch_description(session, &key, shared) else {
            return Ok(());
        };
        let (channel_spec, fingerprint, size) = declare(spec, &description, limits)?;
        builder = builder.channel(channel_spec);
        channels.push((
            spec.channel.clone(),
            key,
            description.kind,
            fingerprint,
            size,
        ));
    }
    let seg = builder
        .create(local)
        .map_err(rtipc_err(format!("creating segment `{local}`")))?;
    shared.log(format_args!(
        "import: created segment `{local}` with {} channel(s)",
        channels.len()
    ));
    let mut threads = Vec::new();
    for (name, key, kind, fingerprint, size) in channels {
        let mut c = Import {
            seg: seg.clone(),
            counters: shared.tally(&key, Way::Import),
            name,
            key,
            kind,
            fingerprint,
            size,
            sink: None,
            block: limits.block,
            gone: false,
            last: None,
        };
        let session = session.clone();
        let shared = shared.clone();
        let t = std::thread::Builder::new()
            .name(format!("import {}", c.key))
            .spawn(move || {
                if let Err(e) = c.run(&session, &shared) {
                    shared.fail(format!("import {}: stopped: {e}", c.key));
                }
            })
            .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))?;
        threads.push(t);
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Asks for the channel's description until an exporter gives one that decodes, or the
/// bridge stops. Each kind of trouble is logged once, however often it repeats.
fn fetch_description(session: &Session, key: &str, shared: &Shared) -> Option<Description> {
    let (mut waiting, mut refused, mut errors) = (false, false, false);
    let once = |said: &mut bool, line: std::fmt::Arguments<'_>| {
        if !std::mem::replace(said, true) {
            shared.log(line);
        }
    };
    while !shared.stopping() {
        let asked = Instant::now();
        match session
            .get(format!("{key}?describe"))
            .timeout(QUERY_TIMEOUT)
            .wait()
        {
            Ok(replies) => {
                while let Ok(reply) = replies.recv() {
                    match reply.result() {
                        Ok(sample) => match Description::decode(&sample.payload().to_bytes()) {
                            Ok(d) => return Some(d),
                            Err(e) => once(
                                &mut refused,
                                format_args!("import {key}: refused a description: {e}"),
                            ),
                        },
                        Err(e) => {
                            let text = e.payload().to_bytes();
                            let text = String::from_utf8_lossy(&text[..text.len().min(200)]);
                            once(
                                &mut errors,
                                format_args!("import {key}: the exporter answered: {text}"),
                            )
                        }
                    }
                }
            }
            Err(e) => once(&mut errors, format_args!("import {key}: query: {e}")),
        }
        once(
            &mut waiting,
            format_args!("import {key}: waiting for an exporter to describe the channel"),
        );
        // Queries that found nobody return at once: do not spin.
        if let Some(rest) = Duration::from_millis(200).checked_sub(asked.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    None
}

/// The local channel for a description: its spec, its object's fingerprint and size, after
/// checking what the remote side claims against the limits.
fn declare(
    spec: &ImportSpec,
    d: &Description,
    limits: Limits,
) -> Result<(ChannelSpec, u64, usize), BridgeError> {
    let what = format!(
        "import of `{}` from segment `{}`",
        spec.channel, spec.segment
    );
    let [o] = d.objects.as_slice() else {
        return Err(BridgeError::Remote(format!(
            "{what}: the channel carries {} objects; the bridge carries channels of one object",
            d.objects.len()
        )));
    };
    let size = o.schema.size;
    if size == 0 || size > limits.max_object {
        return Err(BridgeError::Remote(format!(
            "{what}: an object of {size} bytes (the limit is {} bytes: max_object_bytes)",
            limits.max_object
        )));
    }
    let (base, slots) = match d.kind {
        Kind::State => (
            ChannelSpec::state(spec.channel.clone(), Direction::CreatorToPeer),
            u64::from(limits.consumers) + 2,
        ),
        Kind::Queue => {
            if d.capacity == 0 || d.capacity > MAX_CAPACITY {
                return Err(BridgeError::Remote(format!(
                    "{what}: a queue of {} messages (from 1 to {MAX_CAPACITY})",
                    d.capacity
                )));
            }
            (
                ChannelSpec::queue(spec.channel.clone(), Direction::CreatorToPeer, d.capacity),
                u64::from(d.capacity),
            )
        }
        // The ring's size in bytes, counted as that many one-byte slots against the limit;
        // the segment's builder checks the rest (at most 1 GiB, room for two records).
        Kind::Record => (
            ChannelSpec::record(
                spec.channel.clone(),
                Direction::CreatorToPeer,
                u64::from(d.capacity),
            ),
            u64::from(d.capacity).div_ceil(size),
        ),
    };
    if size.saturating_mul(slots) > limits.max_segment {
        return Err(BridgeError::Remote(format!(
            "{what}: {slots} slots of {size} bytes exceed the segment limit of {} bytes \
             (max_segment_bytes)",
            limits.max_segment
        )));
    }
    let mut channel = base
        .object_schema(o.id, o.schema.clone())
        .map_err(rtipc_err(what.clone()))?
        .notify(true);
    if d.kind == Kind::State {
        channel = channel.consumers(limits.consumers);
    }
    let fingerprint = rtipc::schema::fingerprint(&o.schema);
    let size = usize::try_from(size).map_err(|_| BridgeError::Remote(format!("{what}: size")))?;
    Ok((channel, fingerprint, size))
}

/// The producer end of an imported channel, while held.
enum Sink {
    State(Box<RawStateProducer>),
    Queue(Box<RawQueueProducer>),
    Record(Box<RawRecordProducer>),
}

/// One imported channel.
struct Import {
    seg: Segment,
    counters: Arc<Counters>,
    name: String,
    key: String,
    kind: Kind,
    fingerprint: u64,
    size: usize,
    /// The producer end, held while the exporting side's producer runs.
    sink: Option<Sink>,
    /// Whether a full local queue is waited on (`queue_congestion` block) or overwritten.
    block: bool,
    /// Whether the exporting side said its producer is gone (until it says it is back).
    gone: bool,
    /// The sequence number of the last sample written.
    last: Option<u64>,
}

impl Import {
    fn run(&mut self, session: &Session, shared: &Shared) -> Result<(), BridgeError> {
        let zerr = |what: &str| {
            let what = what.to_owned();
            move |e: zenoh::Error| BridgeError::Zenoh(format!("{what}: {e}"))
        };
        let live = session
            .liveliness()
            .declare_subscriber(self.key.clone())
            .history(true)
            .wait()
            .map_err(zerr("liveliness subscriber"))?;
        let data = session
            .declare_subscriber(self.key.clone())
            .wait()
            .map_err(zerr("subscriber"))?;
        let mut latest: Option<FifoChannelHandler<Reply>> = None;
        shared.log(format_args!("import {}: subscribed", self.key));
        while !shared.stopping() {
            while let Ok(Some(s)) = live.try_recv() {
                match s.kind() {
                    SampleKind::Put => {
                        self.gone = false;
                        self.claim(shared);
                        if self.kind == Kind::State {
                            latest = session
                                .get(format!("{}?latest", self.key))
                                .timeout(QUERY_TIMEOUT)
                                .wait()
                                .ok();
                        }
                    }
                    SampleKind::Delete => {
                        self.gone = true;
                        if self.sink.take().is_some() {
                            shared.log(format_args!(
                                "import {}: the exporting side's producer is gone; `{}` has no \
                                 producer here either",
                                self.key, self.name
                            ));
                        }
                    }
                }
            }
            if let Some(replies) = &latest {
                while let Ok(Some(reply)) = replies.try_recv() {
                    if let Ok(sample) = reply.result() {
                        self.take(sample, true, shared);
                    }
                }
                if replies.is_disconnected() {
                    latest = None;
                }
            }
            match data.recv_timeout(TICK) {
                Ok(Some(sample)) => {
                    self.take(&sample, false, shared);
                    // Whatever else arrived, without waiting.
                    while let Ok(Some(sample)) = data.try_recv() {
                        self.take(&sample, false, shared);
                    }
                }
                Ok(None) => {}
                // Closed with the session, when the bridge stops.
                Err(_) if shared.stopping() => break,
                Err(e) => return Err(BridgeError::Zenoh(format!("subscriber: {e}"))),
            }
        }
        Ok(())
    }

    /// Takes the producer end of the local channel, if not held.
    fn claim(&mut self, shared: &Shared) {
        if self.sink.is_some() {
            return;
        }
        let sink = match self.kind {
            Kind::State => {
                RawStateProducer::new(&self.seg, &self.name).map(|p| Sink::State(Box::new(p)))
            }
            Kind::Queue => {
                RawQueueProducer::new(&self.seg, &self.name).map(|p| Sink::Queue(Box::new(p)))
            }
            Kind::Record => {
                RawRecordProducer::new(&self.seg, &self.name).map(|p| Sink::Record(Box::new(p)))
            }
        };
        match sink {
            Ok(s) => {
                self.sink = Some(s);
                shared.log(format_args!(
                    "import {}: the exporting side's producer runs; producing `{}` here",
                    self.key, self.name
                ));
            }
            Err(e) => shared.log(format_args!(
                "import {}: cannot take the producer end of `{}`: {e}",
                self.key, self.name
            )),
        }
    }

    /// Writes one sample into the local channel, if it is one of the description's and new.
    fn take(&mut self, sample: &Sample, latest: bool, shared: &Shared) {
        let Some(att) = self.attachment(sample, shared) else {
            return;
        };
        // Checked before the bytes are gathered: nothing is copied for a sample of the wrong
        // size.
        let len = sample.payload().len();
        let fits = match self.kind {
            Kind::Record => len.is_multiple_of(self.size),
            _ => len == self.size,
        };
        if !fits {
            Counters::add(&self.counters.foreign, 1);
            return;
        }
        let payload = sample.payload().to_bytes();
        let first = self.last.is_none();
        let Some(gap) = self.account(att, latest, shared) else {
            return;
        };
        self.last = Some(att.seq);
        if self.gone {
            Counters::add(&self.counters.while_gone, 1);
            return;
        }
        self.claim(shared);
        // A state channel's numbers stay the exporting side's: the gap is counted by the
        // consumers as missed (a first sample only lines the numbers up).
        let skip = |published: u64| {
            if first {
                att.seq.saturating_sub(published.saturating_add(1))
            } else {
                gap
            }
        };
        self.write(&payload, skip, shared);
    }

    /// The sample's attachment, if it has one of the description's layout; otherwise counts
    /// the sample as foreign (and says why, for the first few).
    fn attachment(&self, sample: &Sample, shared: &Shared) -> Option<Attachment> {
        let c = &self.counters;
        let got = sample
            .attachment()
            .map(|a| Attachment::decode(&a.to_bytes()));
        if let Some(Ok(att)) = got {
            if att.fingerprint == self.fingerprint {
                return Some(att);
            }
        }
        // Relaxed: a counter read for reports; its old value says whether to log (the first
        // three drops are said, the rest only counted).
        if c.foreign.fetch_add(1, Ordering::Relaxed) < 3 {
            let why = match got {
                None => "no attachment".to_owned(),
                Some(Err(e)) => e.to_string(),
                Some(Ok(a)) => format!(
                    "fingerprint {:#018x}, not the description's {:#018x} (the exporting \
                     side's layout changed: restart this import)",
                    a.fingerprint, self.fingerprint
                ),
            };
            shared.log(format_args!("import {}: dropped a sample: {why}", self.key));
        }
        None
    }

    /// Where the sample stands against the last one written: how many came in between (the
    /// gap, counted as missed upstream or lost on the network), or `None` for a sample not
    /// to write (one already written, or a late answer to the latest-value query).
    fn account(&mut self, att: Attachment, latest: bool, shared: &Shared) -> Option<u64> {
        let c = &self.counters;
        let gap = match self.last {
            None => return Some(att.seq.saturating_sub(1)).inspect(|_| count(c, latest)),
            Some(last) if att.seq > last => att.seq - last - 1,
            Some(_) if latest => return None,
            Some(last) if att.seq == last => return None,
            Some(_) => {
                Counters::add(&c.restarts, 1);
                shared.log(format_args!(
                    "import {}: sequence numbers started again at {}",
                    self.key, att.seq
                ));
                0
            }
        };
        count(c, latest);
        let upstream = att.missed.min(gap);
        Counters::add(&c.upstream_missed, upstream);
        let lost = gap - upstream;
        if lost > 0 {
            // Relaxed: a counter read for a report.
            let before = c.network_lost.fetch_add(lost, Ordering::Relaxed);
            if before == 0 {
                shared.log(format_args!(
                    "import {}: {lost} lost on the network before number {} (the count goes \
                     on in the stats)",
                    self.key, att.seq
                ));
            }
        }
        Some(gap)
    }

    /// Writes `payload` into the local channel; `skip` gives a state update's gap from the
    /// number of the last update published.
    fn write(&mut self, payload: &[u8], skip: impl Fn(u64) -> u64, shared: &Shared) {
        let c = &*self.counters;
        let written = match &mut self.sink {
            None => {
                Counters::add(&c.while_gone, 1);
                return;
            }
            Some(Sink::State(p)) => {
                let gap = skip(p.published());
                p.publish_after(payload, gap).map(|_| ())
            }
            Some(Sink::Queue(q)) if self.block => push_waiting(q, payload, shared),
            Some(Sink::Queue(q)) => q.force_push(payload).map(|overwrote| {
                if overwrote {
                    Counters::add(&c.overwritten, 1);
                }
            }),
            Some(Sink::Record(r)) if self.block => send_waiting(r, payload, shared),
            Some(Sink::Record(r)) => {
                let before = r.dropped();
                let sent = r.send_overwrite(payload);
                Counters::add(&c.overwritten, r.dropped() - before);
                match sent {
                    // The record the consumer holds is in the way: this one is dropped.
                    Err(rtipc::Error::Data(rtipc::DataError::Held)) => {
                        Counters::add(&c.overwritten, 1);
                        return;
                    }
                    other => other.map(|_| ()),
                }
            }
        };
        match written {
            Ok(()) => Counters::add(&c.published, 1),
            // Longer than the local ring carries: not a record of this channel.
            Err(rtipc::Error::Data(rtipc::DataError::TooLong { .. })) => {
                Counters::add(&c.foreign, 1)
            }
            Err(e) => shared.log(format_args!("import {}: writing: {e}", self.key)),
        }
    }
}

/// Counts a received sample (not an answer to the latest-value query).
fn count(c: &Counters, latest: bool) {
    if !latest {
        Counters::add(&c.samples, 1);
    }
}

/// Pushes `bytes`, waiting while the local queue is full (its consumer is slow): the wait
/// holds back this channel's samples, and so, through Zenoh, the exporting bridge, whose own
/// queue then fills until its producer is refused (a producer never waits). Gives up only when
/// the bridge stops.
fn push_waiting(q: &mut RawQueueProducer, bytes: &[u8], shared: &Shared) -> rtipc::Result<()> {
    let mut pause = Duration::from_micros(10);
    while !q.try_push(bytes)? {
        if shared.stopping() {
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
    Ok(())
}

/// Sends `bytes` as a record, waiting while the local ring has no room (as `push_waiting`).
fn send_waiting(r: &mut RawRecordProducer, bytes: &[u8], shared: &Shared) -> rtipc::Result<()> {
    let mut pause = Duration::from_micros(10);
    loop {
        match r.try_send(bytes) {
            Ok(_) => return Ok(()),
            Err(rtipc::Error::Data(rtipc::DataError::NoRoom { .. })) if !shared.stopping() => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            Err(rtipc::Error::Data(rtipc::DataError::NoRoom { .. })) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

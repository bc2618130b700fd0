//! The exporting side: one thread per exported segment reads its channels (an observer for a
//! state channel, the consumer end for a queue) and puts each new update or message on the
//! network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtipc::inspect::{ChannelFacts, Inspector};
use rtipc::{
    ChannelKind, DataError, Observed, RawObserver, RawQueueConsumer, RawRecordConsumer, Segment,
};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::{Query, Queryable};
use zenoh::{Session, Wait};

use crate::config::{ExportSpec, Settings};
use crate::key::{channel_key, check_part};
use crate::wire::{Attachment, DescribedObject, Description, Kind};
use crate::{rtipc_err, BridgeError, Counters, Shared, Way};

/// How often an exporter looks at whether a channel's producer runs and its segment's creator
/// is still there.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A state channel's last update is put once more this long after it, if no newer one
/// followed: a latest value dropped on the network still arrives (the importing side drops
/// the copy it already has).
const RESEND_AFTER: Duration = Duration::from_millis(20);

/// At most this many queue messages are taken from one channel before the next channel's
/// turn.
const BATCH: usize = 256;

/// Checks an exported segment that already exists: every named channel is there and of a kind
/// the bridge carries. A segment that does not exist yet is checked when it appears.
pub(crate) fn check(spec: &ExportSpec) -> Result<(), BridgeError> {
    // A segment that is missing, or left by a creator that is gone, is waited for.
    let seg = match Segment::open(&spec.segment) {
        Ok(seg) if seg.creator_alive() => seg,
        _ => return Ok(()),
    };
    let insp = Inspector::of(&seg);
    for c in &spec.channels {
        let facts = insp.channel(c).map_err(rtipc_err(format!(
            "channel `{c}` of segment `{}`",
            spec.segment
        )))?;
        describe(&facts).map_err(BridgeError::Remote)?;
    }
    Ok(())
}

/// The channel's description, or why the bridge cannot carry it.
fn describe(facts: &ChannelFacts) -> Result<Description, String> {
    let kind = match facts.kind {
        ChannelKind::State => Kind::State,
        ChannelKind::Queue => Kind::Queue,
        ChannelKind::Record => Kind::Record,
        other => {
            return Err(format!(
                "channel `{}` is a {other} channel; the bridge carries state, queue and record \
                 channels",
                facts.name
            ))
        }
    };
    let [o] = facts.objects.as_slice() else {
        return Err(format!(
            "channel `{}` carries {} objects; the bridge carries channels of one object",
            facts.name,
            facts.objects.len()
        ));
    };
    // A record channel's capacity is its ring's size in bytes (at most 1 GiB).
    let capacity = match (facts.capacity, facts.ring_bytes) {
        (Some(c), _) => c,
        (None, Some(ring)) => u32::try_from(ring).map_err(|_| format!("a ring of {ring} bytes"))?,
        (None, None) => 1,
    };
    Ok(Description {
        kind,
        capacity,
        objects: vec![DescribedObject {
            id: o.id,
            schema: o.schema.clone(),
        }],
    })
}

/// Starts the thread that exports `spec`'s segment.
pub(crate) fn spawn(
    session: Session,
    settings: &Settings,
    spec: ExportSpec,
    shared: Arc<Shared>,
) -> Result<JoinHandle<()>, BridgeError> {
    let prefix = settings.prefix.clone();
    let poll = settings.poll;
    let queue_congestion = if settings.queue_block {
        CongestionControl::Block
    } else {
        CongestionControl::Drop
    };
    std::thread::Builder::new()
        .name(format!("export {}", spec.segment))
        .spawn(move || {
            let mut e = Exporter {
                session,
                prefix,
                poll,
                spec,
                shared,
                channels: Vec::new(),
                tokens: Vec::new(),
                queue_congestion,
            };
            e.run();
        })
        .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))
}

/// What a channel's queryable answers from: the current description and segment.
struct Served {
    channel: String,
    description: Mutex<Option<(Vec<u8>, Segment)>>,
}

/// One exported channel.
struct Channel {
    name: String,
    key: String,
    /// The reader of the current segment; none while the bridge waits for a new one.
    reader: Option<Reader>,
    fingerprint: u64,
    offset: usize,
    size: usize,
    /// The last sample's bytes: its first `len`.
    buf: Vec<u8>,
    len: usize,
    publisher: Publisher<'static>,
    /// A state channel's last update, to be put again at the instant (see `RESEND_AFTER`).
    resend: Option<(Instant, Attachment)>,
    /// Whether the last put failed (it was logged).
    put_failing: bool,
    served: Arc<Served>,
    _queryable: Queryable<()>,
    counters: Arc<Counters>,
}

enum Reader {
    State(RawObserver),
    Queue(RawQueueConsumer),
    Record(RawRecordConsumer),
}

struct Exporter {
    session: Session,
    prefix: String,
    poll: Duration,
    spec: ExportSpec,
    shared: Arc<Shared>,
    /// Every channel ever exported, by name: a channel keeps its key's declarations across a
    /// re-created segment.
    channels: Vec<Channel>,
    /// Each channel's liveliness token, declared while its producer runs.
    tokens: Vec<Option<LivelinessToken>>,
    /// How queue samples meet a full network.
    queue_congestion: CongestionControl,
}

impl Exporter {
    fn run(&mut self) {
        let name = self.spec.segment.clone();
        while !self.shared.stopping() {
            let Some(seg) = self.wait_for_segment() else {
                return;
            };
            self.shared.log(format_args!(
                "export: attached to segment `{name}` (creator pid {})",
                seg.creator_pid()
            ));
            self.attach(&seg);
            self.pump(&seg);
            // The segment's creator is gone (or the bridge stops): without a producer, no
            // token; readers stay on the old segment until a new one replaces it.
            for t in &mut self.tokens {
                *t = None;
            }
            // Each end it holds is released, to be claimed again in the new segment.
            for c in &mut self.channels {
                c.reader = None;
            }
        }
    }

    /// Opens the segment, waiting for it (and for a creator that runs) while not stopped.
    fn wait_for_segment(&self) -> Option<Segment> {
        let mut said = false;
        while !self.shared.stopping() {
            match Segment::open(&self.spec.segment) {
                Ok(seg) if seg.creator_alive() => return Some(seg),
                Ok(_) => {}
                Err(e) if !said => {
                    said = true;
                    self.shared.log(format_args!(
                        "export: waiting for segment `{}` ({e})",
                        self.spec.segment
                    ));
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Attaches a reader to each chosen channel of `seg`.
    fn attach(&mut self, seg: &Segment) {
        let insp = Inspector::of(seg);
        let names: Vec<String> = if self.spec.channels.is_empty() {
            insp.channel_names()
                .into_iter()
                .map(str::to_owned)
                .collect()
        } else {
            self.spec.channels.clone()
        };
        for name in names {
            if let Err(e) = self.attach_one(seg, &insp, &name) {
                self.shared.log(format_args!(
                    "export: channel `{name}` of segment `{}` not exported: {e}",
                    self.spec.segment
                ));
            }
        }
    }

    fn attach_one(&mut self, seg: &Segment, insp: &Inspector, name: &str) -> Result<(), String> {
        check_part("the channel", name, true).map_err(|e| e.to_string())?;
        let facts = insp.channel(name).map_err(|e| e.to_string())?;
        let description = describe(&facts)?;
        let o = &facts.objects[0];
        let reader = match description.kind {
            Kind::State => Reader::State(RawObserver::new(seg, name).map_err(|e| e.to_string())?),
            Kind::Queue => {
                Reader::Queue(RawQueueConsumer::new(seg, name).map_err(|e| e.to_string())?)
            }
            Kind::Record => {
                Reader::Record(RawRecordConsumer::new(seg, name).map_err(|e| e.to_string())?)
            }
        };
        let served = (description.encode(), seg.clone());
        let (offset, size) = (o.offset as usize, o.size as usize);
        // A record's buffer holds the longest record.
        let room = match &reader {
            Reader::Record(r) => r.max_len().saturating_mul(size),
            _ => size,
        };
        if let Some(c) = self.channels.iter_mut().find(|c| c.name == name) {
            c.reader = Some(reader);
            c.fingerprint = o.fingerprint;
            c.offset = offset;
            c.size = size;
            c.buf = vec![0; room];
            c.len = size;
            *c.served
                .description
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(served);
            Counters::add(&c.counters.restarts, 1);
            return Ok(());
        }
        let key = channel_key(&self.prefix, &self.spec.segment, name);
        let publisher = self
            .session
            .declare_publisher(key.clone())
            .congestion_control(match description.kind {
                Kind::State => CongestionControl::Drop,
                Kind::Queue | Kind::Record => self.queue_congestion,
            })
            .express(description.kind == Kind::State)
            .wait()
            .map_err(|e| format!("zenoh publisher: {e}"))?;
        let served = Arc::new(Served {
            channel: name.to_owned(),
            description: Mutex::new(Some(served)),
        });
        let answer = served.clone();
        let queryable = self
            .session
            .declare_queryable(key.clone())
            .callback(move |q| reply(&answer, &q))
            .wait()
            .map_err(|e| format!("zenoh queryable: {e}"))?;
        let counters = self.shared.tally(&key, Way::Export);
        self.shared.log(format_args!(
            "export: `{name}` ({} channel of `{}`, {size} bytes, fingerprint {:#018x}) on {key}",
            facts.kind,
            o.schema.name(),
            o.fingerprint
        ));
        self.channels.push(Channel {
            name: name.to_owned(),
            key,
            reader: Some(reader),
            fingerprint: o.fingerprint,
            offset,
            size,
            buf: vec![0; room],
            len: size,
            publisher,
            resend: None,
            put_failing: false,
            served,
            _queryable: queryable,
            counters,
        });
        self.tokens.push(None);
        Ok(())
    }

    /// Moves data, a thread per channel, until the segment's creator is gone or the bridge
    /// stops; meanwhile keeps each channel's liveliness token in step with its producer.
    fn pump(&mut self, seg: &Segment) {
        let detach = AtomicBool::new(false);
        let names: Vec<(String, String)> = self
            .channels
            .iter()
            .map(|c| (c.name.clone(), c.key.clone()))
            .collect();
        let (shared, poll) = (&*self.shared, self.poll);
        let (session, tokens) = (&self.session, &mut self.tokens);
        std::thread::scope(|scope| {
            for c in &mut self.channels {
                let detach = &detach;
                let spawned = std::thread::Builder::new()
                    .name(format!("export {}", c.key))
                    .spawn_scoped(scope, move || c.run(shared, detach, poll));
                if let Err(e) = spawned {
                    shared.log(format_args!("export: cannot start a thread: {e}"));
                }
            }
            while !shared.stopping() {
                if !seg.creator_alive() {
                    shared.log(format_args!(
                        "export: the creator of segment `{}` is gone; waiting for a new one",
                        self.spec.segment
                    ));
                    break;
                }
                for ((name, key), token) in names.iter().zip(tokens.iter_mut()) {
                    liveliness(session, seg, name, key, token, shared);
                }
                std::thread::sleep(CHECK_EVERY);
            }
            // Relaxed: a flag the channel threads poll; the scope's join orders the rest.
            detach.store(true, Ordering::Relaxed);
        });
    }
}

/// Declares a channel's liveliness token while its producer runs, and undeclares it when the
/// producer is gone.
fn liveliness(
    session: &Session,
    seg: &Segment,
    name: &str,
    key: &str,
    token: &mut Option<LivelinessToken>,
    shared: &Shared,
) {
    let held = Inspector::of(seg)
        .channel(name)
        .ok()
        .and_then(|f| f.ends.first().map(|e| e.held))
        .unwrap_or(false);
    match (held, token.is_some()) {
        (true, false) => match session.liveliness().declare_token(key.to_owned()).wait() {
            Ok(t) => {
                *token = Some(t);
                shared.log(format_args!("export: the producer of `{name}` runs"));
            }
            Err(e) => shared.log(format_args!("export: liveliness token: {e}")),
        },
        (false, true) => {
            *token = None;
            shared.log(format_args!("export: the producer of `{name}` is gone"));
        }
        _ => {}
    }
}

impl Channel {
    /// Carries the channel until `detach`.
    fn run(&mut self, shared: &Shared, detach: &AtomicBool, poll: Duration) {
        // Relaxed: a flag polled by this loop alone.
        while !detach.load(Ordering::Relaxed) && !shared.stopping() {
            if self.pump(shared) == 0 {
                if poll.is_zero() {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(poll);
                }
            }
        }
    }

    /// Puts what is new on the network; returns how many samples.
    fn pump(&mut self, shared: &Shared) -> usize {
        let mut moved = 0;
        while moved < BATCH {
            let got = match &mut self.reader {
                None => return moved,
                Some(Reader::State(o)) => match o.observe() {
                    Ok(Some(seen)) if Observed::is_new(&seen) => {
                        let end = self.offset + self.size;
                        match seen.get(self.offset..end) {
                            Some(bytes) => self.buf.copy_from_slice(bytes),
                            None => return moved,
                        }
                        Ok(Some((Observed::seq(&seen), Observed::missed(&seen))))
                    }
                    Ok(_) => Ok(None),
                    // The producer rewrote the slot during each copy: nothing is wrong, and
                    // the next call copies again (a newer update is on its way anyway).
                    Err(DataError::Lapped) => {
                        Counters::add(&self.counters.lapped, 1);
                        return moved;
                    }
                    Err(e) => Err(e.to_string()),
                },
                Some(Reader::Queue(q)) => match q.pop_into(&mut self.buf) {
                    Ok(Some(m)) => Ok(Some((m.seq, m.missed))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
                Some(Reader::Record(r)) => match r.pop_into(&mut self.buf) {
                    Ok(Some(m)) => {
                        self.len = m.len.saturating_mul(self.size).min(self.buf.len());
                        Ok(Some((m.seq, m.missed)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
            };
            let (seq, missed) = match got {
                Ok(Some(s)) => s,
                Ok(None) => {
                    if let Some((at, att)) = self.resend {
                        if Instant::now() >= at {
                            self.resend = None;
                            self.put(att, shared);
                        }
                    }
                    return moved;
                }
                Err(e) => {
                    // A handle that failed once (a corrupt segment poisons it) is not used
                    // again: the channel waits for its segment to be re-created.
                    self.reader = None;
                    shared.log(format_args!(
                        "export: reading `{}`: {e}; not exported until its segment is re-created",
                        self.name
                    ));
                    return moved;
                }
            };
            let att = Attachment {
                fingerprint: self.fingerprint,
                seq,
                missed,
            };
            self.put(att, shared);
            Counters::add(&self.counters.samples, 1);
            Counters::add(&self.counters.upstream_missed, missed);
            moved += 1;
            if matches!(self.reader, Some(Reader::State(_))) {
                self.resend = Some((Instant::now() + RESEND_AFTER, att));
                break;
            }
        }
        moved
    }

    /// Puts the buffer with `att`. Drops, never blocks, when the network cannot take it: the
    /// sample is lost and the importing side counts the gap.
    fn put(&mut self, att: Attachment, shared: &Shared) {
        let put = self
            .publisher
            .put(self.buf[..self.len].to_vec())
            .attachment(att.encode().to_vec())
            .wait();
        match put {
            // Said once until a put succeeds again; nothing to say when the bridge stops.
            Err(e) if !self.put_failing && !shared.stopping() => {
                self.put_failing = true;
                shared.log(format_args!("export: put on {}: {e}", self.key));
            }
            Err(_) => {}
            Ok(()) => self.put_failing = false,
        }
    }
}

/// Answers a query on a channel's key: its description (`?describe`, the default), or a
/// state channel's latest value (`?latest`).
fn reply(served: &Served, q: &Query) {
    let current = served
        .description
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let Some((description, seg)) = current else {
        let _ = q.reply_err("the channel is not attached").wait();
        return;
    };
    let key = q.key_expr().clone();
    if !q.parameters().contains_key("latest") {
        let _ = q.reply(key, description).wait();
        return;
    }
    let latest = RawObserver::new(&seg, &served.channel).and_then(|mut o| {
        if o.kind() != ChannelKind::State {
            return Ok(None);
        }
        let (offset, size) = o
            .objects()
            .next()
            .map(|l| (l.offset as usize, l.size as usize))
            .unwrap_or((0, 0));
        let fingerprint = o
            .objects()
            .next()
            .map(|l| rtipc::schema::fingerprint(l.schema))
            .unwrap_or(0);
        Ok(o.observe()?.and_then(|seen| {
            let bytes = seen.get(offset..offset + size)?.to_vec();
            let seq = Observed::seq(&seen);
            Some((
                bytes,
                Attachment {
                    fingerprint,
                    seq,
                    missed: 0,
                },
            ))
        }))
    });
    match latest {
        Ok(Some((bytes, att))) => {
            let _ = q.reply(key, bytes).attachment(att.encode().to_vec()).wait();
        }
        Ok(None) => {
            let _ = q.reply_err("no latest value").wait();
        }
        Err(e) => {
            let _ = q.reply_err(e.to_string()).wait();
        }
    }
}

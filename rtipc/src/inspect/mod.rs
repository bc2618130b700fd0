//! Looking inside live segments without touching them: the untyped, read-only API that the
//! `rtipc` command-line tool is built on.
//!
//! Every rtipc segment describes itself: its header, its channels, and every object's full
//! schema, field by field. An [`Inspector`] reads all of that from a named segment (whether its
//! creator runs or not) or from a [`Segment`] a program already holds, and reports, per channel,
//! its shape, who holds each end and whether that process is alive (the kernel's answer, from
//! the claim locks), and how far the producer and each consumer have come. It claims nothing and
//! writes nothing to the segment. [`Inspector::observer`] gives a [`RawObserver`] for the
//! channel's newest value as bytes, and [`Value::decode`] turns those bytes into a value tree
//! with the schema, field by field. [`list`] finds every rtipc segment on the machine.
//!
//! ```no_run
//! use rtipc::inspect::{Inspector, Value};
//!
//! let ins = Inspector::open("robot")?;
//! for ch in ins.channels()? {
//!     println!("{} ({}, {} published)", ch.name, ch.kind, ch.published);
//! }
//! let mut obs = ins.observer("pose")?;
//! let schema = obs.objects().next().map(|o| o.schema.clone());
//! if let (Some(schema), Some(seen)) = (schema, obs.observe()?) {
//!     println!("{}", Value::decode(&schema, rtipc::Observed::value(&seen))?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod list;
mod value;

use crate::error::{DataError, Result};
use crate::layout::{ChannelKind, Direction, End};
use crate::observe::RawObserver;
use crate::queue::channel::Ring;
use crate::queue::protocol as queue;
use crate::schema::Schema;
use crate::segment::{ChannelRef, Claim, Segment};
use crate::state::channel::{Slots, Words};
use crate::state::protocol::{self as state, fanout};

pub use self::list::{list, Found, Listing};
pub use self::value::{bytes_of, Value, ValueError, MAX_VALUE_NODES};
pub use crate::segment::Removed;

/// A read-only view of a segment's description and progress, for tools.
#[derive(Clone, Debug)]
pub struct Inspector {
    seg: Segment,
}

/// The facts of a segment's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFacts {
    /// The segment's name (named segments).
    pub name: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The layout version it was written in.
    pub version: u32,
    /// The cache-line size its control blocks are laid out with.
    pub cache_line: u32,
    /// The pid its header records for its creator.
    pub creator_pid: u32,
    /// Whether that creator still runs (the kernel's answer, from the creator's lock).
    pub creator_alive: bool,
    /// How many channels it has.
    pub channels: u32,
}

/// One object of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Its id (by default a hash of the type's name).
    pub id: u64,
    /// The fingerprint of its layout.
    pub fingerprint: u64,
    /// Its offset in the channel's slot.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// Its alignment.
    pub align: u64,
    /// Its full schema, decoded from the segment.
    pub schema: Schema,
}

/// One end of a channel: whether a process holds it, and how far it has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndFacts {
    /// Which end.
    pub end: End,
    /// Which consumer end (0 unless the channel is a fan-out one; 0 for the producer).
    pub index: u32,
    /// Whether a live process holds it: the kernel's answer, from the claim's lock.
    pub held: bool,
    /// The pid the claim word records: the holder's, or a dead holder's left behind (then
    /// `held` is false). `None` if none was ever recorded.
    pub pid: Option<u32>,
    /// For a consumer end: the sequence number of the last update it took (state), or the
    /// number of messages it has popped or passed over (queue). `None` for the producer, and
    /// for a state consumer that never fetched.
    pub taken: Option<u64>,
    /// For a consumer end: updates or messages published that it has not taken yet.
    pub pending: Option<u64>,
    /// For a consumer end: of those, how many it can no longer get, which its next fetch or
    /// pop will report as missed (a state consumer gets only the newest update; a queue holds
    /// only its capacity).
    pub missed: Option<u64>,
}

/// A channel: its shape, its objects, its ends and its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelFacts {
    /// The channel's name.
    pub name: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// Which side produces.
    pub direction: Direction,
    /// Its consumer ends (more than one: a fan-out state channel).
    pub consumers: u32,
    /// Its slots.
    pub slots: u32,
    /// A queue's capacity in messages (`None` for other kinds).
    pub capacity: Option<u32>,
    /// A record channel's ring, in bytes (`None` for other kinds).
    pub ring_bytes: Option<u64>,
    /// Whether its consumers may wait for data.
    pub notify: bool,
    /// Its objects, in the slot's order.
    pub objects: Vec<ObjectFacts>,
    /// The producer end, then each consumer end.
    pub ends: Vec<EndFacts>,
    /// Updates (state: the sequence number of the newest) or messages (queue: pushed) the
    /// producer has published.
    pub published: u64,
    /// The channel's user metadata.
    pub user_meta: Vec<u8>,
    /// A control word that breaks the channel's protocol (a corrupt segment): then
    /// `published` is 0 and the consumer ends' counters are `None`; the rest is as described.
    pub fault: Option<DataError>,
}

impl Inspector {
    /// Opens the named segment `name` for inspection, whether or not its creator runs; checks
    /// all of it like any attach ([`crate::Error::NotFound`], [`crate::Error::NotReady`], or a
    /// field-level error for a corrupt one).
    pub fn open(name: &str) -> Result<Inspector> {
        Ok(Inspector {
            seg: Segment::open_any(name)?,
        })
    }

    /// An inspector of a segment this process already holds (either side).
    pub fn of(seg: &Segment) -> Inspector {
        Inspector { seg: seg.clone() }
    }

    /// The segment's header facts.
    pub fn facts(&self) -> SegmentFacts {
        let h = &self.seg.layout().header;
        SegmentFacts {
            name: self.seg.name().map(str::to_owned),
            size: h.segment_size,
            version: h.version,
            cache_line: h.cache_line,
            creator_pid: h.creator_pid,
            creator_alive: self.seg.creator_alive(),
            channels: h.channel_count,
        }
    }

    /// The names of the segment's channels, in declaration order.
    pub fn channel_names(&self) -> Vec<&str> {
        self.seg.channel_names()
    }

    /// Every channel's facts, in declaration order.
    pub fn channels(&self) -> Result<Vec<ChannelFacts>> {
        self.seg
            .channel_names()
            .into_iter()
            .map(|n| self.channel(n))
            .collect()
    }

    /// Channel `name`'s facts: read now, with relaxed loads (a snapshot, consistent per word).
    /// A control word that breaks the protocol is reported in [`ChannelFacts::fault`], not as
    /// an error, so that one corrupt channel does not hide the others.
    pub fn channel(&self, name: &str) -> Result<ChannelFacts> {
        let ch = self.seg.any_channel(name)?;
        let info = &ch.info;
        let (published, taken, fault) = match progress(&ch) {
            Ok((p, t)) => (p, t, None),
            Err(e) => (0, Vec::new(), Some(e)),
        };
        let capacity = (info.kind == ChannelKind::Queue).then(|| info.slot_count - 2);
        let region = info.kind == ChannelKind::Region;
        let mut ends = Vec::new();
        if !region {
            ends.push(end_facts(&ch, End::Producer, 0)?);
        }
        for k in 0..if region { 0 } else { ch.consumers() } {
            let mut e = end_facts(&ch, End::Consumer, k)?;
            if fault.is_none() {
                let t = taken.get(k as usize).copied().flatten();
                e.taken = t;
                e.pending = Some(published.saturating_sub(t.unwrap_or(0)));
                e.missed = match (info.kind, capacity) {
                    // What the producer dropped is known to the consumer only when it pops.
                    (ChannelKind::Record, _) => None,
                    (_, Some(c)) => e.pending.map(|p| p.saturating_sub(u64::from(c))),
                    (_, None) => e.pending.map(|p| p.saturating_sub(1)),
                };
            }
            ends.push(e);
        }
        Ok(ChannelFacts {
            name: info.name.clone(),
            kind: info.kind,
            direction: info.direction,
            consumers: ch.consumers(),
            slots: info.slot_count,
            capacity,
            ring_bytes: (info.kind == ChannelKind::Record).then_some(info.slot_stride),
            notify: info.notify,
            objects: info
                .objects
                .iter()
                .map(|o| ObjectFacts {
                    id: o.id,
                    fingerprint: o.fingerprint,
                    offset: o.offset,
                    size: o.size,
                    align: o.align,
                    schema: o.schema.clone(),
                })
                .collect(),
            ends,
            published,
            user_meta: info.user_meta.clone(),
            fault,
        })
    }

    /// An observer of channel `name`: its newest value (state) or its messages (queue) as
    /// bytes, copied and checked. Claims nothing and writes nothing.
    pub fn observer(&self, name: &str) -> Result<RawObserver> {
        RawObserver::new(&self.seg, name)
    }

    /// The segment this inspector reads: for observers ([`crate::StateObserver`],
    /// [`crate::QueueObserver`]). One that [`Inspector::open`] opened is mapped read-only, and
    /// claiming a channel end on it fails with [`crate::Error::InvalidArgument`].
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

/// Removes the name of the rtipc segment `name` (`/dev/shm/NAME`): a stale one always, a live one
/// only if `force` ([`Removed::Refused`] otherwise). A file under that name that is not an rtipc
/// segment is left alone (an error); a corrupt rtipc segment can be removed. Processes that have
/// the segment mapped keep their mapping; new ones no longer find it.
pub fn remove(name: &str, force: bool) -> Result<Removed> {
    crate::segment::remove(name, force)
}

fn end_facts(ch: &ChannelRef, end: End, index: u32) -> Result<EndFacts> {
    let (held, pid) = Claim::holder(ch, end, index)?;
    Ok(EndFacts {
        end,
        index,
        held,
        pid: u32::try_from(pid).ok().filter(|&p| p != 0),
        taken: None,
        pending: None,
        missed: None,
    })
}

/// What the producer has published, and what each consumer end has taken.
fn progress(ch: &ChannelRef) -> std::result::Result<(u64, Vec<Option<u64>>), DataError> {
    match ch.info.kind {
        ChannelKind::State => {
            let slots = Slots::new(ch);
            match slots.words() {
                Words::Triple(w) => {
                    let (seq, taken) = state::progress(w).map_err(DataError::from)?;
                    Ok((seq, vec![taken]))
                }
                Words::Fanout(w) => {
                    let mut taken = [0u64; crate::layout::MAX_FANOUT_CONSUMERS as usize];
                    let seq = fanout::progress(w, &mut taken).map_err(DataError::from)?;
                    let n = ch.consumers() as usize;
                    Ok((
                        seq,
                        taken[..n].iter().map(|&t| (t != 0).then_some(t)).collect(),
                    ))
                }
            }
        }
        ChannelKind::Queue => {
            let ring = Ring::new(ch);
            let (head, tail) = queue::progress(ring.words());
            Ok((head, vec![Some(tail)]))
        }
        // A region has no producer, no consumer and no updates.
        ChannelKind::Region => Ok((0, Vec::new())),
        ChannelKind::Record => {
            let (committed, taken) = crate::record::progress(ch);
            Ok((committed, vec![Some(taken)]))
        }
    }
}

#[cfg(test)]
mod tests;

//! The observers: one core that copies and checks, typed and untyped faces on it.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;

use zerocopy::IntoBytes;

use super::Observed;
use crate::error::{DataError, Error, Result};
use crate::layout::ChannelKind;
use crate::queue::channel::Ring;
use crate::queue::protocol::{self as queue, Sighting};
use crate::schema::{Object, Schema};
use crate::segment::{ChannelRef, Segment};
use crate::state::channel::{Slots, Words};
use crate::state::protocol::{self as state, fanout};

/// How many copies a state observer makes before it reports [`DataError::Lapped`], and how
/// many positions a queue observer looks at in one call.
const ATTEMPTS: u32 = 64;

/// A channel's protocol words and slots, per kind.
enum Source {
    State(Box<Slots>),
    Queue(Ring),
    /// A shared region: no updates, only its bytes now (each 8-byte word loaded atomically).
    Region,
}

/// What every observer holds: the channel (no claim), where its words and slots are, the last
/// copy and what it knows of the channel's progress.
struct Core {
    ch: ChannelRef,
    src: Source,
    /// The copy: whole 8-byte words of a slot, from byte `first` of the slot.
    buf: Vec<u64>,
    first: u64,
    /// State: the sequence number of the last copy (0: none). Queue: the next position.
    last: u64,
    /// Queue: positions given up on by calls that returned nothing, counted in the next result.
    missed: u64,
}

// SAFETY: the raw pointers in `src` point into the mapping that `ch` keeps alive; an observer
// only reads through them, atomically, so moving it to another thread is sound.
unsafe impl Send for Core {}

impl Core {
    /// An observer of channel `name`, copying bytes `from..to` of each slot.
    fn new(seg: &Segment, name: &str, range: Option<(u64, u64)>) -> Result<Core> {
        let ch = seg.any_channel(name)?;
        let (from, to) = range.unwrap_or((0, slot_size(&ch)));
        let first = from / 8 * 8;
        let words = (to.div_ceil(8) * 8 - first) / 8;
        let src = match ch.info.kind {
            ChannelKind::State => Source::State(Box::new(Slots::new(&ch))),
            ChannelKind::Queue => Source::Queue(Ring::new(&ch)),
            ChannelKind::Region => Source::Region,
            ChannelKind::Record => {
                return Err(Error::WrongChannel {
                    channel: name.to_owned(),
                    wanted: "a state, queue or region channel to observe (a record channel \
                             has no observers: its consumer reads it)"
                        .into(),
                    found: "a record channel".into(),
                })
            }
        };
        let last = match &src {
            Source::State(_) | Source::Region => 0,
            // The oldest message the ring may still hold.
            Source::Queue(r) => {
                // Relaxed: only where to start; every copy is checked.
                let head = r.words().head.load(Ordering::Relaxed);
                head.saturating_sub(r.capacity)
            }
        };
        Ok(Core {
            ch,
            src,
            buf: vec![0; words as usize],
            first,
            last,
            missed: 0,
        })
    }

    /// Copies slot `slot` into `buf`, with atomic loads: the producer may be writing it.
    fn copy(&mut self, slot: u64) {
        let info = &self.ch.info;
        let slot = slot.min(u64::from(info.slot_count) - 1);
        let at = info.buffer_offset + slot * info.slot_stride + self.first;
        let words = self.ch.map.atomics_u64(at, self.buf.len() as u64);
        for (to, from) in self.buf.iter_mut().zip(words) {
            // Relaxed: the protocol's fences order the copy against the checks around it.
            *to = from.load(Ordering::Relaxed);
        }
    }

    /// Copies the newest update (state) or the next message (queue): `(seq, missed, new)`, or
    /// `None` when there is nothing (new, for a queue).
    fn next(&mut self) -> Result<Option<(u64, u64, bool)>, DataError> {
        match &self.src {
            Source::State(_) => self.next_state(),
            Source::Queue(_) => Ok(self.next_message()),
            Source::Region => {
                self.copy(0);
                Ok(Some((0, 0, true)))
            }
        }
    }

    fn next_state(&mut self) -> Result<Option<(u64, u64, bool)>, DataError> {
        for _ in 0..ATTEMPTS {
            let Source::State(slots) = &self.src else {
                unreachable!("a state source")
            };
            let seen = match slots.words() {
                Words::Triple(w) => state::observe(w)?.map(|o| (o.slot, o.seq)),
                Words::Fanout(w) => fanout::observe(w)?.map(|o| (o.slot, o.seq)),
            };
            let Some((slot, seq)) = seen else {
                return Ok(None);
            };
            if seq == self.last {
                return Ok(Some((seq, 0, false)));
            }
            self.copy(slot);
            let Source::State(slots) = &self.src else {
                unreachable!("a state source")
            };
            let whole = match slots.words() {
                Words::Triple(w) => state::observed(w, state::Observation { slot, seq }),
                Words::Fanout(w) => fanout::observed(w, fanout::Observation { slot, seq }),
            };
            if whole {
                // A producer that restarted counts from its predecessor's words, so the
                // number only goes back if something else wrote them: count nothing missed.
                let missed = seq.saturating_sub(self.last).saturating_sub(1);
                self.last = seq;
                return Ok(Some((seq, missed, true)));
            }
        }
        Err(DataError::Lapped)
    }

    fn next_message(&mut self) -> Option<(u64, u64, bool)> {
        for _ in 0..ATTEMPTS {
            let Source::Queue(ring) = &self.src else {
                unreachable!("a queue source")
            };
            match queue::observe(ring.words(), self.last) {
                Sighting::NotYet => return None,
                Sighting::Gone { pos } => {
                    self.missed = self
                        .missed
                        .saturating_add(pos.wrapping_sub(self.last).wrapping_add(1));
                    self.last = pos.wrapping_add(1);
                }
                Sighting::At { pos, slot } => {
                    self.copy(slot);
                    let Source::Queue(ring) = &self.src else {
                        unreachable!("a queue source")
                    };
                    if queue::observed(ring.words(), pos, slot) {
                        let missed = self.missed.saturating_add(pos.wrapping_sub(self.last));
                        self.missed = 0;
                        self.last = pos.wrapping_add(1);
                        return Some((pos.wrapping_add(1), missed, true));
                    }
                    // Overwritten during the copy: look again (the next look moves on).
                }
            }
        }
        None
    }

    /// The copy's bytes `from..from + len` of the slot.
    fn bytes(&self, from: u64, len: u64) -> &[u8] {
        let start = (from - self.first) as usize;
        &self.buf.as_bytes()[start..start + len as usize]
    }
}

/// Where a slot's objects end.
fn slot_size(ch: &ChannelRef) -> u64 {
    ch.info
        .objects
        .iter()
        .map(|o| o.offset + o.size)
        .max()
        .unwrap_or(0)
}

/// An untyped observer, for tools: the bytes of each slot and the channel's decoded schemas.
pub struct RawObserver {
    core: Core,
    len: u64,
}

/// One object of a channel, as a [`RawObserver`] describes it.
#[derive(Clone, Copy, Debug)]
pub struct ObjectLayout<'a> {
    /// The object's schema, decoded from the segment (field names, types and offsets).
    pub schema: &'a Schema,
    /// Its offset in the slot's bytes.
    pub offset: u64,
    /// Its size.
    pub size: u64,
}

impl RawObserver {
    /// An observer of channel `name`, of any kind and direction. Claims nothing and writes
    /// nothing to the segment.
    pub fn new(seg: &Segment, name: &str) -> Result<RawObserver> {
        let core = Core::new(seg, name, None)?;
        let len = slot_size(&core.ch);
        Ok(RawObserver { core, len })
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        self.core.ch.info.kind
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.core.ch.info.name
    }

    /// How many consumer ends the channel has.
    pub fn consumers(&self) -> u32 {
        self.core.ch.consumers()
    }

    /// The channel's objects, where they are in the bytes an observation returns.
    pub fn objects(&self) -> impl Iterator<Item = ObjectLayout<'_>> {
        self.core.ch.info.objects.iter().map(|o| ObjectLayout {
            schema: &o.schema,
            offset: o.offset,
            size: o.size,
        })
    }

    /// A copy of the newest update of a state channel, or of the next message of a queue that
    /// the observer can still get: the slot's bytes up to the end of its last object. `None`
    /// when nothing was ever published (state) or nothing new was pushed (queue).
    pub fn observe(&mut self) -> Result<Option<Observed<'_, [u8]>>, DataError> {
        let Some((seq, missed, new)) = self.core.next()? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            value: self.core.bytes(0, self.len),
            seq,
            missed,
            new,
        }))
    }
}

impl std::fmt::Debug for RawObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawObserver")
            .field("channel", &self.channel())
            .field("kind", &self.kind())
            .finish()
    }
}

/// A typed observer core: checks `T` against the channel's schema and copies only its bytes.
struct Typed<T: Object> {
    core: Core,
    offset: u64,
    value: T,
    /// How `T` relates to the segment's revision of it, when they differ.
    evolution: Option<crate::schema::Evolution>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Object> Typed<T> {
    fn new(seg: &Segment, name: &str, kind: ChannelKind) -> Result<Typed<T>> {
        let ch = seg.any_channel(name)?;
        if ch.info.kind != kind {
            return Err(Error::WrongChannel {
                channel: name.to_owned(),
                wanted: format!("a {kind} channel to observe"),
                found: format!("a {} channel", ch.info.kind),
            });
        }
        // An earlier revision of an appendable type than the segment's copies its prefix.
        let found = ch.object_for::<T>(crate::segment::claim::Use::Read)?;
        let (offset, size) = (found.offset, size_of::<T>() as u64);
        let core = Core::new(seg, name, Some((offset, offset + size)))?;
        Ok(Typed {
            core,
            offset,
            value: T::zeroed(),
            evolution: found.evolution,
            _t: PhantomData,
        })
    }

    fn next(&mut self) -> Result<Option<Observed<'_, T>>, DataError> {
        let Some((seq, missed, new)) = self.core.next()? else {
            return Ok(None);
        };
        if new {
            let bytes = self.core.bytes(self.offset, size_of::<T>() as u64);
            self.value = T::read_from_prefix(bytes).unwrap_or_else(T::zeroed);
        }
        Ok(Some(Observed {
            value: &self.value,
            seq,
            missed,
            new,
        }))
    }
}

/// A typed observer of a state channel (fan-out or not): copies the newest update of `T`.
pub struct StateObserver<T: Object> {
    t: Typed<T>,
}

impl<T: Object> StateObserver<T> {
    /// An observer of state channel `name`, with `T` checked against its schema like any
    /// handle. Claims nothing and writes nothing to the segment; either side may make one.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        Ok(StateObserver {
            t: Typed::new(seg, name, ChannelKind::State)?,
        })
    }

    /// A copy of the newest update: `None` if nothing was ever published. The same update
    /// comes back, with [`Observed::is_new`] false, until a newer one is published;
    /// [`Observed::missed`] counts the updates published between two results. Fails with
    /// [`DataError::Lapped`] only if the producer overwrote the slot during each of 64 copies.
    pub fn observe(&mut self) -> Result<Option<Observed<'_, T>>, DataError> {
        self.t.next()
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.t.core.ch.info.name
    }

    /// How `T` relates to the segment's revision of it: `None` when they are the same layout,
    /// otherwise both revisions and the fields of the segment's that this observer ignores.
    pub fn evolution(&self) -> Option<&crate::schema::Evolution> {
        self.t.evolution.as_ref()
    }
}

impl<T: Object> std::fmt::Debug for StateObserver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateObserver")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.channel())
            .field("seq", &self.t.core.last)
            .finish()
    }
}

/// A typed observer of a queue: follows its messages, in order, without taking them from the
/// consumer.
pub struct QueueObserver<T: Object> {
    t: Typed<T>,
}

impl<T: Object> QueueObserver<T> {
    /// An observer of queue `name`, with `T` checked against its schema. It starts at the
    /// oldest message the queue may still hold. Claims nothing and writes nothing to the
    /// segment.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        Ok(QueueObserver {
            t: Typed::new(seg, name, ChannelKind::Queue)?,
        })
    }

    /// A copy of the next message the observer can still get, in order: `None` if nothing
    /// newer was pushed. Messages that the producer overwrote before the observer copied them
    /// (and messages the consumer took and gave back for reuse) are counted by
    /// [`Observed::missed`] of the next result, exactly.
    pub fn observe(&mut self) -> Result<Option<Observed<'_, T>>, DataError> {
        self.t.next()
    }

    /// How `T` relates to the segment's revision of it; see [`StateObserver::evolution`].
    pub fn evolution(&self) -> Option<&crate::schema::Evolution> {
        self.t.evolution.as_ref()
    }

    /// The number of the next message the observer looks for (1 for the first message).
    pub fn position(&self) -> u64 {
        self.t.core.last.wrapping_add(1)
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.t.core.ch.info.name
    }
}

impl<T: Object> std::fmt::Debug for QueueObserver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueObserver")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.channel())
            .field("position", &self.position())
            .finish()
    }
}

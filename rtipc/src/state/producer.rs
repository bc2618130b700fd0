//! The producing end of a state channel.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::channel::{Channel, ProducerState};
use crate::error::{DataError, Result};
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::{Found, Use};
use crate::segment::Segment;
use crate::sys::mem::WriteAhead;

/// The producing end of a state channel, whatever objects it writes: claims the end and
/// publishes. [`StateProducer`] and [`MultiStateProducer`](super::MultiStateProducer) wrap it.
pub(super) struct Publisher {
    pub chan: Channel,
    pub p: ProducerState,
    /// The slot the producer writes next: `p`'s, kept here so that `write` finds it without
    /// asking which protocol `p` runs.
    pub back: u64,
    ahead: WriteAhead,
}

impl Publisher {
    pub fn new(seg: &Segment, name: &str) -> Result<Publisher> {
        let (chan, p) = Channel::producer(seg, name)?;
        let back = p.back();
        Ok(Publisher {
            chan,
            p,
            back,
            ahead: WriteAhead::new(),
        })
    }

    /// After a publish: asks for the `len` bytes at `offset` of the new back slot, to be
    /// written, so that they are this core's before the next update is written into them.
    /// No consumer reads that slot any more (the publish took it back: the triple buffer's old
    /// middle, or a fan-out slot no consumer holds), so only copies no one has a use for are
    /// invalidated, while the producer has time to wait.
    #[inline(always)]
    pub fn write_ahead(&self, offset: usize, len: usize) {
        self.ahead.lines(self.chan.at::<u8>(self.back, offset), len);
    }

    /// Publishes the back slot with one compare-and-swap (more only when the consumer's fetch
    /// races with it); returns its sequence number. For a view made by `write`, which refused
    /// a poisoned handle: nothing poisons it in between, as the view borrows it mutably.
    #[inline(always)]
    pub fn publish(&mut self) -> Result<u64, DataError> {
        let seq = match &mut self.p {
            ProducerState::Triple(p) => {
                let seq = self.chan.publish_triple(p)?;
                self.back = p.back;
                seq
            }
            _ => self.publish_other()?,
        };
        Ok(seq)
    }

    /// [`Publisher::publish`] for every producer but the common one: a call.
    #[inline(never)]
    fn publish_other(&mut self) -> Result<u64, DataError> {
        let seq = self.chan.publish_other(&mut self.p)?;
        self.back = self.p.back();
        Ok(seq)
    }

    /// Copies the last published update into the back slot, if there is one.
    pub fn copy_last(&mut self) {
        if let Some(last) = self.chan.last_published(&self.p) {
            let from = self.chan.at::<u8>(last, 0);
            let to = self.chan.at::<u8>(self.back, 0);
            let len = self.chan.slots.stride();
            // SAFETY: both are whole slots of this channel (`stride` bytes each, in bounds), and
            // distinct (`last_published` never names the back slot). The back slot is the
            // producer's alone; the last published slot is only ever read until the producer
            // publishes again, which it is not doing: it holds `&mut self`.
            unsafe { std::ptr::copy_nonoverlapping(from, to, len) };
        }
    }
}

/// The producing end of a state channel, typed to one of its objects.
///
/// ```
/// # use rtipc::{Direction, Object, Segment, StateProducer};
/// #[derive(Object)]
/// #[repr(C)]
/// struct Temperature { celsius: f32, sensor: u32 }
///
/// let seg = Segment::builder()
///     .state::<Temperature>("temp", Direction::CreatorToPeer)
///     .create_anonymous()?;
/// let mut tx = StateProducer::<Temperature>::new(&seg, "temp")?;
/// let mut t = tx.write()?;
/// t.celsius = 21.5;
/// t.sensor = 3;
/// t.publish()?;
/// # Ok::<(), rtipc::Error>(())
/// ```
pub struct StateProducer<T: Object> {
    w: Publisher,
    /// Offset of `T` in the slot, checked against the schema by `new`.
    offset: usize,
    /// The bytes of the segment's revision of the object after `T`, when `T` is an earlier
    /// revision of an appendable type: zeroed on every publish. Empty otherwise.
    tail: Tail,
    /// How `T` relates to the segment's revision of it, when they differ.
    evolution: Option<Evolution>,
    _t: PhantomData<fn() -> T>,
}

/// The bytes of a slot's object past an earlier revision's end: `(offset in the slot, len)`.
#[derive(Clone, Copy)]
struct Tail(usize, usize);

impl Tail {
    fn of<T>(found: &Found) -> Tail {
        let ours = size_of::<T>();
        // `found.size >= ours`: the prefix rule let a producer attach only with a revision no
        // longer than the segment's, whose size the parser checked against the slot.
        Tail(found.offset as usize + ours, found.tail_len(ours))
    }
}

impl<T: Object> std::fmt::Debug for StateProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateProducer")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.w.chan.ch.name())
            .field("published", &self.w.p.seq())
            .finish()
    }
}

impl<T: Object> StateProducer<T> {
    /// Claims the producing end of state channel `name` and checks `T` against its schema.
    ///
    /// `T` may be an earlier revision of an [appendable](crate::schema::Schema::appendable)
    /// type than the segment's: the producer writes its fields in place and zeroes the rest
    /// of the segment's object on every publish, so a consumer of the later revision reads
    /// zeros there, never a value left by an earlier producer ([`StateProducer::evolution`]).
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let w = Publisher::new(seg, name)?;
        let found = w.chan.ch.object_for::<T>(Use::Write)?;
        Ok(StateProducer {
            offset: found.offset as usize,
            tail: Tail::of::<T>(&found),
            evolution: found.evolution,
            w,
            _t: PhantomData,
        })
    }

    /// How `T` relates to the segment's revision of it: `None` when they are the same layout,
    /// otherwise both revisions and the fields of the segment's that this producer zeroes.
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// The back slot, in place: it holds the update published two publishes ago (or zeros),
    /// not the last one. Write every field, then [`StateMut::publish`]; or start from the last
    /// update with [`StateProducer::write_from_last`].
    #[inline]
    pub fn write(&mut self) -> Result<StateMut<'_, T>, DataError> {
        self.w.chan.ch.check()?;
        let ptr = self.w.chan.at(self.w.back, self.offset);
        Ok(StateMut {
            w: &mut self.w,
            ptr,
            offset: self.offset,
            tail: self.tail,
        })
    }

    /// The back slot, holding a copy of the last published update (zeros before the first):
    /// change some fields and [`StateMut::publish`]. Costs one copy of the slot.
    pub fn write_from_last(&mut self) -> Result<StateMut<'_, T>, DataError> {
        self.w.chan.ch.check()?;
        self.w.copy_last();
        self.write()
    }

    /// Copies `value` into the back slot and publishes it; returns its sequence number.
    #[inline]
    pub fn publish_copy(&mut self, value: &T) -> Result<u64, DataError> {
        let mut g = self.write()?;
        *g = *value;
        g.publish()
    }

    /// The number of updates published through this channel so far.
    pub fn published(&self) -> u64 {
        self.w.p.seq()
    }

    /// Whether a process holds the consumer end (of a fan-out channel: any consumer end), the
    /// kernel's answer; a system call per end.
    pub fn consumer_alive(&self) -> Result<bool> {
        self.w.chan.ch.other_end_held()
    }

    /// Waits until a process holds the consumer end (of a fan-out channel: any of them), true,
    /// or `timeout` passes, false; looks every few milliseconds.
    pub fn wait_for_consumer(&self, timeout: Option<std::time::Duration>) -> Result<bool> {
        self.w.chan.ch.wait_for_other_end(timeout)
    }
}

/// The next update of one object, written in place; derefs to `&mut T`. Nothing is published
/// unless [`StateMut::publish`] is called.
///
/// Made by [`StateProducer::write`], which hands out the back slot as it is (the update of two
/// publishes ago), or by [`StateProducer::write_from_last`], which copies the last update in.
#[must_use = "an update is only published by `publish`"]
pub struct StateMut<'a, T: Object> {
    w: &'a mut Publisher,
    /// `T` in the producer's back slot.
    ptr: *mut T,
    /// Offset of `T` in the slot.
    offset: usize,
    /// The segment's object past `T`, zeroed before the publish.
    tail: Tail,
}

impl<T: Object> StateMut<'_, T> {
    /// Publishes the update with one atomic swap; returns its sequence number (1 for the
    /// first update).
    #[inline]
    pub fn publish(self) -> Result<u64, DataError> {
        if self.tail.1 != 0 {
            zero_tail(self.w, self.tail);
        }
        let seq = self.w.publish()?;
        self.w.write_ahead(self.offset, size_of::<T>());
        Ok(seq)
    }
}

/// Zeroes the segment's object past an earlier revision's end in the back slot.
#[cold]
fn zero_tail(w: &Publisher, Tail(offset, len): Tail) {
    let p = w.chan.at::<u8>(w.back, offset);
    // SAFETY: the back slot is the producer's alone until it is published; `offset + len` is
    // the end of the segment's object, inside the slot (checked by the parser); `u8` needs no
    // alignment.
    unsafe { std::ptr::write_bytes(p, 0, len) };
}

impl<T: Object> Deref for StateMut<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the back slot is the producer's alone until it is published (the protocol
        // hands it to no one else), the pointer is aligned (slots are cache-line aligned, the
        // offset is a multiple of T's alignment, checked at attach) and in bounds; every bit
        // pattern is a valid `T` (`Object`). The guard borrows the producer mutably, so the
        // slot cannot be published while the reference lives.
        unsafe { &*self.ptr }
    }
}

impl<T: Object> DerefMut for StateMut<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.ptr }
    }
}

impl<T: Object + std::fmt::Debug> std::fmt::Debug for StateMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMut").field("value", &**self).finish()
    }
}

/// The producing end of a state channel written as bytes, for a program that has the
/// channel's schema but not its Rust type (a bridge that carries the channel from another
/// machine, a tool). The channel must carry one object; each update is its bytes, exactly the
/// object's size, which the consumers read as their type.
pub struct RawStateProducer {
    w: Publisher,
    offset: usize,
    size: usize,
}

impl RawStateProducer {
    /// Claims the producing end of state channel `name`, which must carry exactly one object.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let w = Publisher::new(seg, name)?;
        let (offset, size) = w.chan.ch.only_object()?;
        let (offset, size) = (offset as usize, size as usize);
        Ok(RawStateProducer { w, offset, size })
    }

    /// The size of an update, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Publishes `bytes`, which must be exactly [`size`](Self::size) bytes long; returns the
    /// update's sequence number.
    pub fn publish(&mut self, bytes: &[u8]) -> Result<u64> {
        self.w
            .chan
            .ch
            .check_len("an update", self.size, bytes.len())?;
        self.w.chan.ch.check()?;
        let p = self.w.chan.at::<u8>(self.w.back, self.offset);
        // SAFETY: the back slot is the producer's alone until it is published; the object's
        // `size` bytes at `offset` lie inside the slot (checked by the parser) and `bytes` has
        // exactly that many; `u8` needs no alignment.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, self.size) };
        Ok(self.w.publish()?)
    }

    /// Publishes `bytes` as the update that follows `missed` updates this channel never
    /// carried (lost before they reached it: what a bridge learns from a gap in the sequence
    /// numbers it receives). The update's sequence number is `missed + 1` past the last one
    /// (saturating), and every consumer counts those updates among the ones it missed, as if
    /// they had been published and overwritten. `publish_after(bytes, 0)` is
    /// [`publish`](Self::publish).
    pub fn publish_after(&mut self, bytes: &[u8], missed: u64) -> Result<u64> {
        self.w
            .chan
            .ch
            .check_len("an update", self.size, bytes.len())?;
        self.w.chan.ch.check()?;
        self.w.p.skip(missed);
        self.publish(bytes)
    }

    /// The sequence number of the last update published through this channel (0 before the
    /// first).
    pub fn published(&self) -> u64 {
        self.w.p.seq()
    }

    /// Whether a process holds a consumer end (the kernel's answer; a system call).
    pub fn consumer_alive(&self) -> Result<bool> {
        self.w.chan.ch.other_end_held()
    }
}

//! The producing end of a record channel.

use std::ops::{Deref, DerefMut};

use super::channel::Channel;
use super::protocol::{self, Producer, Refused, Reservation};
use crate::error::{DataError, Result};
use crate::layout::End;
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::{Found, Use};
use crate::segment::wake::Doorbell;
use crate::segment::Segment;

/// The producing end of a record channel.
///
/// ```
/// # use rtipc::{Direction, Object, RecordConsumer, RecordProducer, Segment};
/// # use std::os::fd::AsFd;
/// #[derive(Object)]
/// #[repr(C)]
/// struct Sample { t: u64, value: f64 }
///
/// let seg = Segment::builder()
///     .record::<Sample>("samples", Direction::CreatorToPeer, 64 * 1024)
///     .create_anonymous()?;
/// let mut tx = RecordProducer::<Sample>::new(&seg, "samples")?;
/// // The peer side, normally in another process that received the fd.
/// let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap())?;
/// let mut rx = RecordConsumer::<Sample>::new(&peer, "samples")?;
///
/// // Reserve three samples in place, write them, commit.
/// let mut rec = tx.try_reserve(3)?;
/// for (i, s) in rec.iter_mut().enumerate() {
///     *s = Sample { t: i as u64, value: i as f64 * 0.5 };
/// }
/// assert_eq!(rec.commit(), 1);
///
/// let r = rx.pop()?.expect("one record");
/// assert_eq!((r.len(), r.seq(), r.missed()), (3, 1, 0));
/// assert_eq!(r[2].value, 1.0);
/// drop(r); // gives the record's bytes back to the producer
/// # Ok::<(), rtipc::Error>(())
/// ```
pub struct RecordProducer<T: Object> {
    chan: Channel<T>,
    p: Producer,
    bell: Option<Doorbell>,
    /// Records this handle dropped to make room.
    dropped: u64,
}

impl<T: Object> std::fmt::Debug for RecordProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProducer")
            .field("element", &T::SCHEMA.name())
            .field("channel", &self.chan.ch.name())
            .field("committed", &self.p.seq)
            .field("ring_bytes", &self.chan.g.capacity)
            .finish()
    }
}

impl<T: Object> RecordProducer<T> {
    /// Claims the producing end of record channel `name` and checks `T` against its element
    /// type. A producer that follows one that died continues after its last commit.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        Self::claim(seg, name, Use::Elements).map(|(p, _)| p)
    }

    fn claim(seg: &Segment, name: &str, usage: Use) -> Result<(Self, Found)> {
        let (mut chan, found) = Channel::claim(seg, name, End::Producer, usage)?;
        let p = protocol::claim_producer(chan.words(), &chan.g).map_err(|b| chan.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok((
            RecordProducer {
                chan,
                p,
                bell,
                dropped: 0,
            },
            found,
        ))
    }

    /// Reserves a record of `len` elements if the ring has room, without dropping anything:
    /// [`DataError::NoRoom`] says how many bytes are free when it has not (nothing is
    /// reserved), [`DataError::TooLong`] refuses more than [`max_len`](Self::max_len)
    /// elements. The record's elements hold old bytes: write every one, then
    /// [`commit`](RecordMut::commit).
    pub fn try_reserve(&mut self, len: usize) -> Result<RecordMut<'_, T>, DataError> {
        self.reserve(len, false)
    }

    /// Reserves a record of `len` elements, dropping the oldest unread records to make room
    /// (the consumer counts them in [`RecordRef::missed`](super::RecordRef::missed); how many
    /// this reservation dropped is [`RecordMut::dropped`]). Never overwrites the record the
    /// consumer holds: fails with [`DataError::Held`] if that record is in the way. Records
    /// dropped stay dropped even if the reservation is abandoned.
    pub fn reserve_overwrite(&mut self, len: usize) -> Result<RecordMut<'_, T>, DataError> {
        self.reserve(len, true)
    }

    /// Copies `items` into a record reserved with [`try_reserve`](Self::try_reserve) and
    /// commits it; returns its sequence number.
    pub fn try_send(&mut self, items: &[T]) -> Result<u64, DataError> {
        let mut r = self.try_reserve(items.len())?;
        r.copy_from_slice(items);
        Ok(r.commit())
    }

    /// Copies `items` into a record reserved with
    /// [`reserve_overwrite`](Self::reserve_overwrite) and commits it; returns its sequence
    /// number.
    pub fn send_overwrite(&mut self, items: &[T]) -> Result<u64, DataError> {
        let mut r = self.reserve_overwrite(items.len())?;
        r.copy_from_slice(items);
        Ok(r.commit())
    }

    fn reserve(&mut self, len: usize, force: bool) -> Result<RecordMut<'_, T>, DataError> {
        self.chan.ch.check()?;
        let len = len as u64;
        match protocol::reserve(self.chan.words(), &mut self.p, &self.chan.g, len, force) {
            Ok(r) => {
                self.dropped += r.dropped;
                Ok(RecordMut { q: self, r })
            }
            Err(Refused::Held { dropped }) => {
                self.dropped += dropped;
                Err(DataError::Held)
            }
            Err(r) => Err(refusal(&mut self.chan, len, r)),
        }
    }

    /// The longest record the channel carries, in elements: its ring's half, less the
    /// record's header.
    pub fn max_len(&self) -> usize {
        self.chan.g.max_len as usize
    }

    /// The ring's size in bytes.
    pub fn ring_bytes(&self) -> u64 {
        self.chan.g.capacity
    }

    /// How many unread records this handle has dropped to make room
    /// ([`reserve_overwrite`](Self::reserve_overwrite)), including those dropped by
    /// reservations that then failed with [`DataError::Held`] or were abandoned: the records
    /// the consumer counts as missed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The number of records committed so far (the last record's sequence number).
    pub fn committed(&self) -> u64 {
        self.p.seq
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        self.chan.ch.name()
    }

    /// Whether a process holds the consumer end (the kernel's answer; a system call).
    pub fn consumer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }

    /// Waits until a process holds the consumer end (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`; `None`: no limit).
    pub fn wait_for_consumer(&self, timeout: Option<std::time::Duration>) -> Result<bool> {
        self.chan.ch.wait_for_other_end(timeout)
    }
}

/// The error for a reservation of `len` elements that the protocol refused (a refusal because
/// of the held record is [`DataError::Held`]; its drops are the caller's to count).
fn refusal<T>(chan: &mut Channel<T>, len: u64, r: Refused) -> DataError {
    match r {
        // The ring is at most 1 GiB (checked by the parser), so these fit.
        Refused::TooLong => DataError::TooLong {
            len,
            max: chan.g.max_len as u32,
        },
        Refused::NoRoom { need, free } => DataError::NoRoom {
            needed: need as u32,
            free: free as u32,
        },
        Refused::Held { .. } => DataError::Held,
        Refused::Corrupt(b) => chan.corrupt(b),
    }
}

/// A reserved record, written in place; derefs to `&mut [T]`. Publish it with
/// [`commit`](RecordMut::commit); dropping it without a commit abandons it (nothing is
/// published and its bytes are reused).
#[must_use = "a record is only sent by `commit`"]
pub struct RecordMut<'a, T: Object> {
    q: &'a mut RecordProducer<T>,
    r: Reservation,
}

impl<T: Object> RecordMut<'_, T> {
    /// Publishes the record; returns its sequence number (1 for the first record a channel
    /// carries). The consumer may take it at once.
    pub fn commit(self) -> u64 {
        let q = self.q;
        let seq = protocol::commit(q.chan.words(), &mut q.p, &q.chan.g, self.r);
        if let Some(bell) = &q.bell {
            bell.ring();
        }
        seq
    }

    /// Shortens the record to its first `len` elements (no effect if `len` is not shorter),
    /// for a record whose length is known only once it is written.
    pub fn truncate(&mut self, len: usize) {
        self.r.len = self.r.len.min(len as u64);
    }

    /// How many unread records this reservation dropped to make room (always 0 for
    /// [`try_reserve`](RecordProducer::try_reserve)).
    pub fn dropped(&self) -> u64 {
        self.r.dropped
    }
}

impl<T: Object> Deref for RecordMut<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let p = self
            .q
            .chan
            .elements(self.r.payload(&self.q.chan.g), self.r.len);
        // SAFETY: the reservation lies between the producer's tail and the oldest byte the
        // consumer may still read, in the ring, so it is the producer's alone until it is
        // committed; the payload is aligned to the record alignment (at least `T`'s); every
        // bit pattern is a valid `T`.
        unsafe { &*p }
    }
}

impl<T: Object> DerefMut for RecordMut<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let p = self
            .q
            .chan
            .elements(self.r.payload(&self.q.chan.g), self.r.len);
        // SAFETY: as for `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *p }
    }
}

impl<T: Object> std::fmt::Debug for RecordMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordMut")
            .field("len", &self.r.len)
            .field("dropped", &self.r.dropped)
            .finish()
    }
}

/// The producing end of a record channel for an earlier revision of an
/// [appendable](crate::schema::Schema::appendable) element type than the segment's (or the
/// same): each record is copied in, element by element at the segment's element size, with
/// the fields `T` does not have zeroed, so that a consumer of the segment's revision reads
/// zeros there. (`RecordProducer` writes in place and needs the segment's element type.)
pub struct RecordSender<T: Object> {
    inner: RecordProducer<T>,
    evolution: Option<Evolution>,
}

impl<T: Object> RecordSender<T> {
    /// Claims the producing end of record channel `name` and checks `T` against its element
    /// type: the same layout, or an earlier revision of the same appendable type.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (inner, found) = RecordProducer::claim(seg, name, Use::Write)?;
        Ok(RecordSender {
            inner,
            evolution: found.evolution,
        })
    }

    /// How `T` relates to the segment's revision of it; `None` when they are the same layout.
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// Copies `items` into a new record if the ring has room, as
    /// [`RecordProducer::try_send`]; returns its sequence number.
    pub fn try_send(&mut self, items: &[T]) -> Result<u64, DataError> {
        self.send(items, false)
    }

    /// Copies `items` into a new record, dropping the oldest unread records to make room, as
    /// [`RecordProducer::send_overwrite`]; returns its sequence number.
    pub fn send_overwrite(&mut self, items: &[T]) -> Result<u64, DataError> {
        self.send(items, true)
    }

    fn send(&mut self, items: &[T], force: bool) -> Result<u64, DataError> {
        let m = self.inner.reserve(items.len(), force)?;
        let g = &m.q.chan.g;
        let (payload, elem) = (m.r.payload(g), g.elem);
        let n = size_of::<T>().min(elem as usize) as u64;
        for (i, item) in items.iter().enumerate() {
            let (dst, whole) = m.q.chan.bytes(payload + i as u64 * elem, elem);
            let ours = (n as usize).min(whole);
            // SAFETY: the reservation lies between the producer's tail and the oldest byte the
            // consumer may still read, so it is the producer's alone until committed; `whole`
            // bytes from `dst` are inside the ring; `ours` of them come from `item`, which has
            // at least that many bytes, and the rest are zeroed.
            unsafe {
                std::ptr::copy_nonoverlapping((item as *const T).cast::<u8>(), dst, ours);
            }
            let rest = dst.wrapping_add(ours);
            // SAFETY: as above: the `whole - ours` bytes from `rest` are in the reservation.
            unsafe { std::ptr::write_bytes(rest, 0, whole - ours) };
        }
        Ok(m.commit())
    }

    /// The longest record the channel carries, in elements.
    pub fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    /// The number of records committed so far.
    pub fn committed(&self) -> u64 {
        self.inner.committed()
    }

    /// Whether a process holds the consumer end (the kernel's answer; a system call).
    pub fn consumer_alive(&self) -> Result<bool> {
        self.inner.consumer_alive()
    }
}

/// The producing end of a record channel written as bytes, for a program that has the
/// element's schema but not its Rust type (a bridge, a tool): each record is a whole number
/// of elements of the segment's element size.
pub struct RawRecordProducer {
    chan: Channel<u8>,
    p: Producer,
    bell: Option<Doorbell>,
    dropped: u64,
}

impl RawRecordProducer {
    /// Claims the producing end of record channel `name`. A producer that follows one that
    /// died continues after its last commit.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let mut chan = Channel::claim_raw(seg, name, End::Producer)?;
        let p = protocol::claim_producer(chan.words(), &chan.g).map_err(|b| chan.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok(RawRecordProducer {
            chan,
            p,
            bell,
            dropped: 0,
        })
    }

    /// The size of an element, in bytes.
    pub fn element_size(&self) -> usize {
        self.chan.g.elem as usize
    }

    /// The longest record the channel carries, in elements.
    pub fn max_len(&self) -> usize {
        self.chan.g.max_len as usize
    }

    /// Sends `bytes` (a whole number of elements) as a record if the ring has room, as
    /// [`RecordProducer::try_send`]; returns its sequence number.
    pub fn try_send(&mut self, bytes: &[u8]) -> Result<u64> {
        self.send(bytes, false)
    }

    /// Sends `bytes` (a whole number of elements) as a record, dropping the oldest unread
    /// records to make room, as [`RecordProducer::send_overwrite`]; returns its sequence
    /// number.
    pub fn send_overwrite(&mut self, bytes: &[u8]) -> Result<u64> {
        self.send(bytes, true)
    }

    fn send(&mut self, bytes: &[u8], force: bool) -> Result<u64> {
        let elem = self.chan.g.elem;
        if !(bytes.len() as u64).is_multiple_of(elem) {
            return Err(crate::Error::InvalidArgument(format!(
                "a record of channel `{}` is a whole number of {elem}-byte elements, not {} bytes",
                self.chan.ch.name(),
                bytes.len()
            )));
        }
        self.chan.ch.check()?;
        let len = bytes.len() as u64 / elem;
        let r = match protocol::reserve(self.chan.words(), &mut self.p, &self.chan.g, len, force) {
            Ok(r) => r,
            Err(Refused::Held { dropped }) => {
                self.dropped += dropped;
                return Err(DataError::Held.into());
            }
            Err(r) => return Err(refusal(&mut self.chan, len, r).into()),
        };
        self.dropped += r.dropped;
        let (dst, room) = self.chan.bytes(r.payload(&self.chan.g), bytes.len() as u64);
        // SAFETY: the reservation lies between the producer's tail and the oldest byte the
        // consumer may still read, so it is the producer's alone until committed; `room` bytes
        // from `dst` are inside the ring, and `bytes` has at least that many.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, room.min(bytes.len())) };
        let seq = protocol::commit(self.chan.words(), &mut self.p, &self.chan.g, r);
        if let Some(bell) = &self.bell {
            bell.ring();
        }
        Ok(seq)
    }

    /// How many unread records this handle has dropped to make room, as
    /// [`RecordProducer::dropped`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The number of records committed so far (the last record's sequence number).
    pub fn committed(&self) -> u64 {
        self.p.seq
    }

    /// Whether a process holds the consumer end (the kernel's answer; a system call).
    pub fn consumer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }
}

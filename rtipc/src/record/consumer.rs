//! The consuming end of a record channel.

use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::channel::Channel;
use super::protocol::{self, Consumer, Popped};
use crate::error::{DataError, Result};
use crate::layout::End;
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::{Found, Use};
use crate::segment::wake::Bell;
use crate::segment::Segment;

/// The consuming end of a record channel. See [`RecordProducer`](super::RecordProducer) for
/// an example.
pub struct RecordConsumer<T: Object> {
    chan: Channel<T>,
    c: Consumer,
    bell: Option<Bell>,
    /// Whether a wait saw a producer (for reporting one gone).
    producer_seen: bool,
}

impl<T: Object> std::fmt::Debug for RecordConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordConsumer")
            .field("element", &T::SCHEMA.name())
            .field("channel", &self.chan.ch.name())
            .field("taken", &self.c.last)
            .finish()
    }
}

impl<T: Object> RecordConsumer<T> {
    /// Claims the consuming end of record channel `name` and checks `T` against its element
    /// type. A consumer that follows one that died continues after the last record its
    /// predecessor took (a record it held counts as taken).
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        Self::claim(seg, name, Use::Elements).map(|(c, _)| c)
    }

    fn claim(seg: &Segment, name: &str, usage: Use) -> Result<(Self, Found)> {
        let (chan, found) = Channel::claim(seg, name, End::Consumer, usage)?;
        let c = protocol::claim_consumer(chan.words());
        let bell = Bell::new(&chan.ch, 0);
        Ok((
            RecordConsumer {
                chan,
                c,
                bell,
                producer_seen: false,
            },
            found,
        ))
    }

    /// Takes the oldest unread record: `None` if there is none. The record is read in place
    /// and stays the consumer's until its view is dropped; [`RecordRef::missed`] counts the
    /// records the producer dropped before it. A header that breaks the protocol (a length,
    /// place or sequence number no producer writes) is [`DataError::Corrupt`].
    pub fn pop(&mut self) -> Result<Option<RecordRef<'_, T>>, DataError> {
        self.chan.ch.check()?;
        match protocol::pop(self.chan.words(), &mut self.c, &self.chan.g) {
            Ok(None) => Ok(None),
            Ok(Some(p)) => Ok(Some(RecordRef { q: self, p })),
            Err(b) => Err(self.chan.corrupt(b)),
        }
    }

    /// The longest record the channel carries, in elements.
    pub fn max_len(&self) -> usize {
        self.chan.g.max_len as usize
    }

    /// The number of records taken so far, including those missed (the last record's
    /// sequence number).
    pub fn taken(&self) -> u64 {
        self.c.last
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        self.chan.ch.name()
    }

    /// Whether a process holds the producer end (the kernel's answer; a system call).
    pub fn producer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }

    /// Waits until a process holds the producer end (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`; `None`: no limit).
    pub fn wait_for_producer(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.chan.ch.wait_for_other_end(timeout)
    }

    /// Whether a pop would find a record now.
    fn has_data(&self) -> impl Fn() -> bool + '_ {
        let w = self.chan.words();
        move || protocol::has_record(w)
    }

    /// Blocks until there is a record to pop (`Ok(true)`) or `timeout` passes (`Ok(false)`;
    /// `None`: no limit). Needs a channel created with
    /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); see [`notify`](crate::notify).
    ///
    /// Fails with [`Error::NoProducer`](crate::Error::NoProducer) when the producer it saw is gone and no record is
    /// left, as [`QueueConsumer::wait`](crate::QueueConsumer::wait) does.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let w = self.chan.words();
        let has_data = move || protocol::has_record(w);
        (self.chan.ch).wait(
            self.bell.as_ref(),
            has_data,
            timeout,
            &mut self.producer_seen,
        )
    }

    /// Prepares a wait on the channel's eventfd; see [`Wait::arm`](crate::notify::Wait::arm).
    pub fn arm(&mut self) -> Result<bool> {
        self.chan.ch.arm(self.bell.as_ref(), self.has_data())
    }

    /// The channel's eventfd, if it has one.
    pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.bell.as_ref().and_then(Bell::fd)
    }
}

/// A popped record, read in place; derefs to `&[T]`. Dropping it gives its bytes back to the
/// producer.
pub struct RecordRef<'a, T: Object> {
    q: &'a mut RecordConsumer<T>,
    p: Popped,
}

impl<T: Object> RecordRef<'_, T> {
    /// The record's sequence number: 1 for the first record the channel carried.
    pub fn seq(&self) -> u64 {
        self.p.seq
    }

    /// How many records the producer dropped (with
    /// [`reserve_overwrite`](super::RecordProducer::reserve_overwrite)) between the previous
    /// record taken and this one.
    pub fn missed(&self) -> u64 {
        self.p.missed
    }
}

impl<T: Object> Deref for RecordRef<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let p = self
            .q
            .chan
            .elements(self.p.payload(&self.q.chan.g), self.p.len);
        // SAFETY: the popped record lies in the ring (its header was checked against the ring
        // and the tail), and the producer never writes over the record the consumer holds
        // (`reading`) until it is released, which happens when this view is dropped; aligned
        // to the record alignment; every bit pattern is a valid `T`.
        unsafe { &*p }
    }
}

impl<T: Object> Drop for RecordRef<'_, T> {
    fn drop(&mut self) {
        protocol::release(self.q.chan.words());
    }
}

impl<T: Object + std::fmt::Debug> std::fmt::Debug for RecordRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRef")
            .field("seq", &self.p.seq)
            .field("missed", &self.p.missed)
            .field("elements", &&**self)
            .finish()
    }
}

/// The consuming end of a record channel whose element type is another revision of an
/// [appendable](crate::schema::Schema::appendable) type than the segment's (or the same): each
/// record is copied out, element by element, into a buffer of the caller's. An element's
/// fields that the segment's revision does not have are zero; fields that `T` does not have
/// are left out. (`RecordConsumer` reads in place and needs the segment's element type.)
pub struct RecordCopier<T: Object> {
    inner: RecordConsumer<T>,
    revision: u32,
    evolution: Option<Evolution>,
}

/// What [`RecordCopier::pop_into`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopiedRecord {
    /// The record's length, in elements.
    pub len: usize,
    /// How many of its elements were copied: `len`, or the buffer's length if that is shorter
    /// (the rest of the record is skipped).
    pub copied: usize,
    /// The record's sequence number.
    pub seq: u64,
    /// How many records the producer dropped before this one.
    pub missed: u64,
    /// The element type's revision in the segment, so the one received.
    pub revision: u32,
}

impl<T: Object> RecordCopier<T> {
    /// Claims the consuming end of record channel `name` and checks `T` against its element
    /// type: the same layout, or a revision of the same appendable type.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (inner, found) = RecordConsumer::claim(seg, name, Use::Copy)?;
        Ok(RecordCopier {
            inner,
            revision: found.received_revision(T::SCHEMA),
            evolution: found.evolution,
        })
    }

    /// How `T` relates to the segment's revision of it; `None` when they are the same layout.
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// The longest record the channel carries, in elements.
    pub fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    /// Takes the oldest unread record and copies its elements into `out`, as many as fit:
    /// `None` if there is no record. The record is released before this returns.
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<Option<CopiedRecord>, DataError> {
        let revision = self.revision;
        let Some(r) = self.inner.pop()? else {
            return Ok(None);
        };
        let g = &r.q.chan.g;
        let (payload, elem) = (r.p.payload(g), g.elem);
        let len = r.p.len as usize;
        let copied = len.min(out.len());
        let n = size_of::<T>().min(elem as usize);
        for (i, slot) in out.iter_mut().take(copied).enumerate() {
            let (src, avail) = r.q.chan.bytes(payload + i as u64 * elem, n as u64);
            let mut value = T::zeroed();
            // SAFETY: the popped record lies in the ring (its header was checked against the
            // ring and the tail) and is the consumer's until released when `r` is dropped;
            // `avail` bytes from `src` are inside the ring and at most `size_of::<T>()`, so
            // they fit in `value`; every bit pattern is a valid `T`, its other bytes stay zero.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.cast_const(),
                    (&mut value as *mut T).cast::<u8>(),
                    avail,
                )
            };
            *slot = value;
        }
        let (seq, missed) = (r.p.seq, r.p.missed);
        drop(r);
        Ok(Some(CopiedRecord {
            len,
            copied,
            seq,
            missed,
            revision,
        }))
    }

    /// Whether a process holds the producer end (the kernel's answer; a system call).
    pub fn producer_alive(&self) -> Result<bool> {
        self.inner.producer_alive()
    }
}

/// The consuming end of a record channel read as bytes, for a program that has the element's
/// schema but not its Rust type (a bridge, a tool): each record is copied out.
pub struct RawRecordConsumer {
    chan: Channel<u8>,
    c: Consumer,
}

/// What [`RawRecordConsumer::pop_into`] took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// The record's length in elements; its bytes are the first `len` times
    /// [`element_size`](RawRecordConsumer::element_size) of the buffer.
    pub len: usize,
    /// The record's sequence number.
    pub seq: u64,
    /// How many records the producer dropped before it.
    pub missed: u64,
}

impl RawRecordConsumer {
    /// Claims the consuming end of record channel `name`.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let chan = Channel::claim_raw(seg, name, End::Consumer)?;
        let c = protocol::claim_consumer(chan.words());
        Ok(RawRecordConsumer { chan, c })
    }

    /// The size of an element, in bytes.
    pub fn element_size(&self) -> usize {
        self.chan.g.elem as usize
    }

    /// The longest record the channel carries, in elements.
    pub fn max_len(&self) -> usize {
        self.chan.g.max_len as usize
    }

    /// Takes the oldest unread record and copies it into `out`, which must hold the longest
    /// record ([`max_len`](Self::max_len) elements): `None` if there is none. The record is
    /// released before this returns.
    pub fn pop_into(&mut self, out: &mut [u8]) -> Result<Option<RawRecord>> {
        let need = self.chan.g.max_len.saturating_mul(self.chan.g.elem);
        if (out.len() as u64) < need {
            return Err(crate::Error::InvalidArgument(format!(
                "a buffer for the records of channel `{}` holds {need} bytes, not {}",
                self.chan.ch.name(),
                out.len()
            )));
        }
        self.chan.ch.check()?;
        let words = self.chan.words();
        let p = match protocol::pop(words, &mut self.c, &self.chan.g) {
            Ok(None) => return Ok(None),
            Ok(Some(p)) => p,
            Err(b) => return Err(self.chan.corrupt(b).into()),
        };
        let bytes = p.len.saturating_mul(self.chan.g.elem);
        let (src, avail) = self.chan.bytes(p.payload(&self.chan.g), bytes);
        // SAFETY: the popped record lies in the ring (its header was checked against the ring
        // and the tail) and is the consumer's until released below; `avail` bytes from `src`
        // are inside the ring, and `out` holds at least the longest record's.
        unsafe {
            std::ptr::copy_nonoverlapping(src.cast_const(), out.as_mut_ptr(), avail.min(out.len()))
        };
        protocol::release(self.chan.words());
        Ok(Some(RawRecord {
            len: p.len as usize,
            seq: p.seq,
            missed: p.missed,
        }))
    }

    /// Whether a process holds the producer end (the kernel's answer; a system call).
    pub fn producer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }
}

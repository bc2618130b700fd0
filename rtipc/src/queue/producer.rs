//! The producing end of a queue.

use std::ops::{Deref, DerefMut};

use super::channel::Channel;
use super::protocol::{self, Producer, Pushed};
use crate::error::{DataError, Result};
use crate::layout::End;
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::Use;
use crate::segment::wake::Doorbell;
use crate::segment::Segment;
use crate::sys::mem::WriteAhead;

/// The producing end of a queue channel.
///
/// ```
/// # use rtipc::{Direction, MessageRef, Object, QueueConsumer, QueueProducer, Segment};
/// # use std::os::fd::AsFd;
/// #[derive(Object)]
/// #[repr(C)]
/// struct LogLine { level: u32, code: u32, text: [u8; 56] }
///
/// let seg = Segment::builder()
///     .queue::<LogLine>("log", Direction::CreatorToPeer, 16)
///     .create_anonymous()?;
/// let mut tx = QueueProducer::<LogLine>::new(&seg, "log")?;
/// // The peer side, normally in another process that received the fd.
/// let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap())?;
/// let mut rx = QueueConsumer::<LogLine>::new(&peer, "log")?;
///
/// let mut line = tx.write()?;
/// line.level = 2;
/// line.text[..5].copy_from_slice(b"hello");
/// assert!(!line.force_push()?, "nothing was overwritten");
///
/// let m = rx.pop()?.expect("one message");
/// assert_eq!((m.level, MessageRef::missed(&m), MessageRef::seq(&m)), (2, 0, 1));
/// assert_eq!(&m.text[..5], b"hello");
/// # Ok::<(), rtipc::Error>(())
/// ```
pub struct QueueProducer<T: Object> {
    chan: Channel<T>,
    p: Producer,
    bell: Option<Doorbell>,
    ahead: WriteAhead,
    /// The bytes of the segment's message past `T` (an earlier revision of an appendable
    /// type), zeroed on every push; 0 otherwise.
    tail: usize,
    evolution: Option<Evolution>,
}

impl<T: Object> std::fmt::Debug for QueueProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueProducer")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.chan.ch.name())
            .field("pushed", &self.p.head)
            .finish()
    }
}

impl<T: Object> QueueProducer<T> {
    /// Claims the producing end of queue `name` and checks `T` against its schema.
    ///
    /// `T` may be an earlier revision of an [appendable](crate::schema::Schema::appendable)
    /// type than the segment's: the producer writes its fields in place and zeroes the rest
    /// of every message it pushes ([`QueueProducer::evolution`]).
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (mut chan, found) = Channel::claim(seg, name, End::Producer, Use::Write)?;
        let p = protocol::claim_producer(chan.words()).map_err(|b| chan.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok(QueueProducer {
            chan,
            p,
            bell,
            ahead: WriteAhead::new(),
            tail: found.tail_len(size_of::<T>()),
            evolution: found.evolution,
        })
    }

    /// How `T` relates to the segment's revision of it: `None` when they are the same layout,
    /// otherwise both revisions and the fields this producer zeroes.
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// The slot of the next message, in place: it holds an old message (or zeros), so write
    /// every field; then push it with [`MessageMut::force_push`] or [`MessageMut::try_push`].
    #[inline]
    pub fn write(&mut self) -> Result<MessageMut<'_, T>, DataError> {
        self.chan.ch.check()?;
        let ptr = self.chan.at(self.p.slot);
        Ok(MessageMut { q: self, ptr })
    }

    /// Copies `value` into the next slot and pushes it, overwriting the oldest unread message
    /// if the queue is full; returns whether it overwrote one.
    pub fn force_push(&mut self, value: &T) -> Result<bool, DataError> {
        let mut s = self.write()?;
        *s = *value;
        s.force_push()
    }

    /// Copies `value` into the next slot and pushes it if the queue has room; returns `false`
    /// (and pushes nothing) when it is full.
    #[must_use = "`false` means the queue was full and nothing was pushed"]
    pub fn try_push(&mut self, value: &T) -> Result<bool, DataError> {
        let mut s = self.write()?;
        *s = *value;
        s.try_push()
    }

    /// The number of messages pushed so far.
    pub fn pushed(&self) -> u64 {
        self.p.head
    }

    /// Whether a process holds the consumer end (the kernel's answer; a system call).
    pub fn consumer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }

    /// How many unread messages the queue holds at most.
    pub fn capacity(&self) -> u32 {
        self.chan.capacity as u32
    }

    /// Pushes the producer's slot: `Ok(Some(overwrote))`, or `Ok(None)` when `try_push` found
    /// the queue full. For a view made by `write`, which refused a poisoned handle: nothing
    /// poisons it in between, as the view borrows it mutably.
    #[inline(always)]
    fn push(&mut self, force: bool) -> Result<Option<bool>, DataError> {
        if self.tail != 0 {
            self.zero_tail();
        }
        match protocol::push(self.chan.words(), &mut self.p, force) {
            Ok(Pushed::Full) => Ok(None),
            Ok(Pushed::Done { overwrote }) => {
                // The slot the push took (freed by the consumer, or the oldest message's):
                // asked for now, to be written next, so that it is this core's by then.
                self.ahead
                    .lines(self.chan.slot(self.p.slot), size_of::<T>());
                if let Some(bell) = &self.bell {
                    bell.ring();
                }
                Ok(Some(overwrote))
            }
            Err(b) => Err(self.chan.corrupt(b)),
        }
    }
}

impl<T: Object> QueueProducer<T> {
    /// Zeroes the segment's message past an earlier revision's end in the producer's slot.
    #[cold]
    fn zero_tail(&self) {
        let p = self.chan.slot(self.p.slot).wrapping_add(size_of::<T>());
        // SAFETY: the producer's slot is its own until pushed; the object is at offset 0 and
        // `size_of::<T>() + tail` is the segment's object size, inside the slot (checked by the
        // parser); `u8` needs no alignment.
        unsafe { std::ptr::write_bytes(p, 0, self.tail) };
    }
}

/// The next message of a queue, written in place; derefs to `&mut T`. Dropping it pushes
/// nothing (the content stays for the next [`QueueProducer::write`]).
#[must_use = "a message is only sent by `force_push` or `try_push`"]
pub struct MessageMut<'a, T: Object> {
    q: &'a mut QueueProducer<T>,
    /// `T` in the producer's slot.
    ptr: *mut T,
}

impl<T: Object> MessageMut<'_, T> {
    /// Pushes the message, overwriting the oldest unread one if the queue is full; returns
    /// whether it overwrote one (which the consumer then counts as missed).
    #[inline]
    pub fn force_push(self) -> Result<bool, DataError> {
        Ok(self.q.push(true)?.unwrap_or(false))
    }

    /// Pushes the message if the queue has room; returns `false` when it is full (the message
    /// stays in the slot, so a later `write` sees it again).
    #[must_use = "`false` means the queue was full and nothing was pushed"]
    #[inline]
    pub fn try_push(self) -> Result<bool, DataError> {
        Ok(self.q.push(false)?.is_some())
    }
}

impl<T: Object> Deref for MessageMut<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the producer's slot belongs to it alone until it is pushed (the view borrows
        // the producer mutably, so it cannot push meanwhile); the pointer is in bounds and
        // aligned (slots are cache-line aligned and the object is at offset 0); every bit
        // pattern is a valid `T`.
        unsafe { &*self.ptr }
    }
}

impl<T: Object> DerefMut for MessageMut<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.ptr }
    }
}

/// The producing end of a queue written as bytes, for a program that has the queue's schema but
/// not its Rust type (a bridge, a tool): each message is the object's bytes, exactly its size.
pub struct RawQueueProducer {
    chan: Channel<u8>,
    p: Producer,
    bell: Option<Doorbell>,
    size: usize,
}

impl RawQueueProducer {
    /// Claims the producing end of queue `name`.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (mut chan, size) = Channel::claim_raw(seg, name, End::Producer)?;
        let p = protocol::claim_producer(chan.words()).map_err(|b| chan.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok(RawQueueProducer {
            chan,
            p,
            bell,
            size,
        })
    }

    /// The size of a message, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Pushes `bytes` if the queue has room (`Ok(false)` when it is full); `bytes` must be
    /// exactly [`size`](Self::size) bytes long.
    pub fn try_push(&mut self, bytes: &[u8]) -> Result<bool> {
        self.push(bytes, false).map(|r| r.is_some())
    }

    /// Pushes `bytes`, overwriting the oldest unread message if the queue is full; returns
    /// whether it overwrote one.
    pub fn force_push(&mut self, bytes: &[u8]) -> Result<bool> {
        self.push(bytes, true).map(|r| r.unwrap_or(false))
    }

    fn push(&mut self, bytes: &[u8], force: bool) -> Result<Option<bool>> {
        self.chan
            .ch
            .check_len("a message", self.size, bytes.len())?;
        self.chan.ch.check()?;
        let dst = self.chan.slot(self.p.slot);
        // SAFETY: the producer's slot is its own until pushed; the message's `size` bytes at
        // the slot's start lie inside it (checked by the parser), and `bytes` has that many.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, self.size) };
        match protocol::push(self.chan.words(), &mut self.p, force) {
            Ok(Pushed::Full) => Ok(None),
            Ok(Pushed::Done { overwrote }) => {
                if let Some(bell) = &self.bell {
                    bell.ring();
                }
                Ok(Some(overwrote))
            }
            Err(b) => Err(self.chan.corrupt(b).into()),
        }
    }
}

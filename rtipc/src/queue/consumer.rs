//! The consuming end of a queue.

use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::channel::Channel;
use super::protocol::{self, Consumer, Popped};
use crate::error::{DataError, Result};
use crate::layout::End;
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::Use;
use crate::segment::wake::Bell;
use crate::segment::Segment;
use crate::sys::mem::prefetch_read;

/// The consuming end of a queue channel. See [`QueueProducer`](super::QueueProducer) for an
/// example.
pub struct QueueConsumer<T: Object> {
    chan: Channel<T>,
    c: Consumer,
    bell: Option<Bell>,
    /// Whether a wait saw a producer (for reporting one gone).
    producer_seen: bool,
    evolution: Option<Evolution>,
}

impl<T: Object> std::fmt::Debug for QueueConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueConsumer")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.chan.ch.name())
            .field("next", &self.c.tail)
            .finish()
    }
}

impl<T: Object> QueueConsumer<T> {
    /// Claims the consuming end of queue `name` and checks `T` against its schema. `T` may be
    /// an earlier revision of an [appendable](crate::schema::Schema::appendable) type than the
    /// segment's: it reads its fields in place ([`QueueConsumer::evolution`]).
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (mut chan, found) = Channel::claim(seg, name, End::Consumer, Use::Read)?;
        let c = protocol::claim_consumer(chan.words()).map_err(|b| chan.corrupt(b))?;
        let bell = Bell::new(&chan.ch, 0);
        Ok(QueueConsumer {
            chan,
            c,
            bell,
            producer_seen: false,
            evolution: found.evolution,
        })
    }

    /// How `T` relates to the segment's revision of it: `None` when they are the same layout,
    /// otherwise both revisions and the fields of the segment's that this consumer ignores.
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// Takes the oldest unread message: `None` if there is none. The view is valid until the
    /// next pop and tells ([`MessageRef::missed`]) how many messages were overwritten before
    /// it.
    ///
    /// The protocol names the slot it is about to take before its exchange; its first line is
    /// prefetched then, so that it travels from the producer's core while the exchange takes
    /// the cell's line.
    #[inline(always)]
    pub fn pop(&mut self) -> Result<Option<MessageRef<'_, T>>, DataError> {
        self.chan.ch.check()?;
        let chan = &self.chan;
        let r = protocol::pop_with(chan.words(), &mut self.c, |slot| {
            prefetch_read(chan.slot(slot))
        });
        self.popped(r)
    }

    /// Skips to the newest message and takes it: everything older still unread is counted as
    /// missed. `None` if there is no unread message.
    pub fn latest(&mut self) -> Result<Option<MessageRef<'_, T>>, DataError> {
        self.chan.ch.check()?;
        // Relaxed: `head` is a hint of where the newest message is; the pop's cell swap
        // carries the synchronisation, and a stale hint only makes us skip fewer messages.
        let head = self.chan.words().head.load(Ordering::Relaxed);
        let chan = &self.chan;
        let r = protocol::latest(chan.words(), &mut self.c, head, |slot| {
            prefetch_read(chan.slot(slot))
        });
        self.popped(r)
    }

    #[inline(always)]
    fn popped(
        &mut self,
        r: std::result::Result<Popped, crate::sync::BadWord>,
    ) -> Result<Option<MessageRef<'_, T>>, DataError> {
        match r {
            Ok(Popped::Empty) => Ok(None),
            Ok(Popped::Message { pos, missed }) => {
                let p = self.chan.at(self.c.slot);
                Ok(Some(MessageRef {
                    // SAFETY: the consumer's slot belongs to it until its next pop, which the
                    // view's borrow of the consumer prevents; in bounds and aligned; every bit
                    // pattern is a valid `T`.
                    value: unsafe { &*p },
                    seq: pos.wrapping_add(1),
                    missed,
                }))
            }
            Err(b) => Err(self.chan.corrupt(b)),
        }
    }

    /// How many unread messages the queue holds at most.
    pub fn capacity(&self) -> u32 {
        self.chan.capacity as u32
    }

    /// The queue's name.
    pub fn channel(&self) -> &str {
        self.chan.ch.name()
    }

    /// Whether a process holds the producer end (the kernel's answer; a system call).
    pub fn producer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }

    /// Waits until a process holds the producer end (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`; `None`: no limit).
    pub fn wait_for_producer(&mut self, timeout: Option<std::time::Duration>) -> Result<bool> {
        self.chan.ch.wait_for_other_end(timeout)
    }

    /// Whether a pop would find a message now.
    fn has_data(&self) -> impl Fn() -> bool + '_ {
        let (w, c) = (self.chan.words(), self.c);
        move || protocol::has_message(w, &c)
    }

    /// Blocks until there is a message to pop (`Ok(true)`) or `timeout` passes (`Ok(false)`;
    /// `None`: no limit). Needs a channel created with
    /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); see [`notify`](crate::notify).
    ///
    /// Fails with [`Error::NoProducer`](crate::Error::NoProducer) when the producer it saw is
    /// gone and no message is left (it looks at the start and at least every 100 ms while it
    /// sleeps); a producer that has not started yet is waited for, as in
    /// [`StateConsumer::wait`](crate::StateConsumer::wait).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let (w, c) = (self.chan.words(), self.c);
        let has_data = move || protocol::has_message(w, &c);
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

/// A popped message, read in place; derefs to `&T`. Valid until the next pop.
///
/// Its facts are associated functions, so that they never hide a field of `T` of the same
/// name: [`MessageRef::seq`], [`MessageRef::missed`].
pub struct MessageRef<'a, T: Object> {
    value: &'a T,
    seq: u64,
    missed: u64,
}

impl<T: Object> MessageRef<'_, T> {
    /// How many messages were missed (overwritten by `force_push`, or skipped by
    /// [`QueueConsumer::latest`]) between the previous pop and this message.
    #[inline]
    pub fn missed(this: &Self) -> u64 {
        this.missed
    }

    /// The message's number: 1 for the producer's first push.
    #[inline]
    pub fn seq(this: &Self) -> u64 {
        this.seq
    }
}

impl<T: Object> Deref for MessageRef<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: Object + std::fmt::Debug> std::fmt::Debug for MessageRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRef")
            .field("seq", &self.seq)
            .field("missed", &self.missed)
            .field("value", &**self)
            .finish()
    }
}

/// The consuming end of a queue that copies each message out: for a type that is a later
/// revision of an [appendable](crate::schema::Schema::appendable) type than the segment's (or
/// any revision). The fields the segment's revision does not have are zero in the copy, and
/// [`Copied::revision`](crate::Copied::revision) says which revision was received.
///
/// `QueueConsumer` refuses a later revision, since the queue's slots do not hold the fields
/// that revision adds; this handle reads the segment's revision, as many bytes of it as `T`
/// has.
pub struct QueueCopier<T: Object> {
    chan: Channel<T>,
    c: Consumer,
    /// How many bytes of each message are copied: the shorter of the two revisions.
    len: usize,
    revision: u32,
    evolution: Option<Evolution>,
}

impl<T: Object> QueueCopier<T> {
    /// Claims the consuming end of queue `name` and checks `T` against its schema: the same
    /// layout, or a revision of the same appendable type.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (mut chan, found) = Channel::claim(seg, name, End::Consumer, Use::Copy)?;
        let c = protocol::claim_consumer(chan.words()).map_err(|b| chan.corrupt(b))?;
        Ok(QueueCopier {
            chan,
            c,
            len: found.common_len(size_of::<T>()),
            revision: found.received_revision(T::SCHEMA),
            evolution: found.evolution,
        })
    }

    /// How `T` relates to the segment's revision of it; see [`QueueConsumer::evolution`].
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// Takes the oldest unread message and copies it out: `None` if there is none.
    pub fn pop(&mut self) -> Result<Option<crate::Copied<T>>, DataError> {
        self.chan.ch.check()?;
        match protocol::pop_with(self.chan.words(), &mut self.c, |_| {}) {
            Ok(Popped::Empty) => Ok(None),
            Ok(Popped::Message { pos, missed }) => {
                let p = self.chan.slot(self.c.slot);
                let mut value = T::zeroed();
                // SAFETY: the consumer's slot belongs to it until its next pop (`&mut self`);
                // `self.len` bytes from `p` lie inside the segment's message and inside
                // `value` (`len` is at most both sizes); every bit pattern is a valid `T`, and
                // its other bytes stay zero.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        p.cast_const(),
                        (&mut value as *mut T).cast::<u8>(),
                        self.len,
                    )
                };
                Ok(Some(crate::Copied {
                    value,
                    seq: pos.wrapping_add(1),
                    new: true,
                    missed,
                    revision: self.revision,
                }))
            }
            Err(b) => Err(self.chan.corrupt(b)),
        }
    }

    /// Whether a process holds the producer end (the kernel's answer; a system call).
    pub fn producer_alive(&self) -> Result<bool> {
        self.chan.ch.other_end_held()
    }
}

/// The consuming end of a queue read as bytes, for a program that has the queue's schema but
/// not its Rust type (a bridge, a tool): each message is copied out as the object's bytes.
pub struct RawQueueConsumer {
    chan: Channel<u8>,
    c: Consumer,
    size: usize,
}

/// What [`RawQueueConsumer::pop_into`] took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// The message's sequence number.
    pub seq: u64,
    /// How many messages were overwritten before it.
    pub missed: u64,
}

impl RawQueueConsumer {
    /// Claims the consuming end of queue `name`.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let (mut chan, size) = Channel::claim_raw(seg, name, End::Consumer)?;
        let c = protocol::claim_consumer(chan.words()).map_err(|b| chan.corrupt(b))?;
        Ok(RawQueueConsumer { chan, c, size })
    }

    /// The size of a message, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes the oldest unread message and copies it into `out`, which must be exactly
    /// [`size`](Self::size) bytes long: `None` if there is none.
    pub fn pop_into(&mut self, out: &mut [u8]) -> Result<Option<RawMessage>> {
        self.chan.ch.check_len("a message", self.size, out.len())?;
        self.chan.ch.check()?;
        match protocol::pop_with(self.chan.words(), &mut self.c, |_| {}) {
            Ok(Popped::Empty) => Ok(None),
            Ok(Popped::Message { pos, missed }) => {
                let src = self.chan.slot(self.c.slot);
                // SAFETY: the consumer's slot is its own until its next pop (`&mut self`); the
                // message's `size` bytes lie inside it, and `out` has that many.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.cast_const(), out.as_mut_ptr(), self.size)
                };
                Ok(Some(RawMessage {
                    seq: pos.wrapping_add(1),
                    missed,
                }))
            }
            Err(b) => Err(self.chan.corrupt(b).into()),
        }
    }
}

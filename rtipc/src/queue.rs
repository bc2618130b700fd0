//! Queue channels: fixed-size messages of one object type, in order, written and read in place.
//!
//! A queue of capacity `N` holds up to `N` unread messages. The producer writes the next
//! message in place ([`QueueProducer::write`]) and pushes it: [`QueueSlot::force_push`] never
//! fails and overwrites the oldest unread message when the queue is full;
//! [`QueueSlot::try_push`] refuses when full. The consumer's [`QueueConsumer::pop`] gives an
//! in-place view of the oldest unread message, valid until its next pop, with the number of
//! messages lost since the previous pop; [`QueueConsumer::latest`] jumps to the newest.
//!
//! Both sides are wait-free: a push is at most one load and one atomic swap, a pop at most
//! three loads and one swap. No allocation, no system call, and the producer never writes a
//! slot the consumer holds (see the protocol's description in the source of `queue/protocol.rs`).
//! Every word read from shared memory is validated on every push and pop.

pub(crate) mod protocol;

#[cfg(not(loom))]
pub use handles::*;

/// Cache lines of a queue's control block before its ring cells: claims, the producer's line,
/// the consumer's line, notification.
pub(crate) const CTRL_LINES: u64 = 4;

#[cfg(not(loom))]
pub(crate) use handles::init_ctrl;

#[cfg(not(loom))]
mod handles {
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::protocol::{self, Consumer, Popped, Producer, Pushed, Shape};
    use crate::error::{Error, Result};
    use crate::layout::{ChannelInfo, Kind};
    use crate::notify::{Notifier, Sealed, Wait, Waiter};
    use crate::segment::{End, EndHandle, Mapping, Segment};
    use crate::Object;

    const LINE_PRODUCER: u64 = 1;
    const LINE_CONSUMER: u64 = 2;
    /// The notification line: the `waiting` word at +0 (see [`crate::notify`]).
    const LINE_NOTIFY: u64 = 3;
    const LINE_CELLS: u64 = super::CTRL_LINES;

    /// Writes a fresh queue's control block: every cell free with its own slot, the producer
    /// holding slot `capacity` and the consumer slot `capacity + 1`.
    pub(crate) fn init_ctrl(map: &Mapping, c: &ChannelInfo, cache_line: u64) {
        let line = |n: u64| c.ctrl_offset + n * cache_line;
        let capacity = u64::from(c.slot_count) - 2;
        // Relaxed: the segment is not visible to any other process until the ready word is
        // stored with release after this.
        for i in 0..capacity {
            map.atomic_u64(line(LINE_CELLS) + 8 * i)
                .store(protocol::initial_cell(i), Ordering::Relaxed);
        }
        map.atomic_u64(line(LINE_PRODUCER))
            .store(0, Ordering::Relaxed);
        map.atomic_u64(line(LINE_PRODUCER) + 8)
            .store(capacity, Ordering::Relaxed);
        map.atomic_u64(line(LINE_CONSUMER))
            .store(0, Ordering::Relaxed);
        map.atomic_u64(line(LINE_CONSUMER) + 8)
            .store(capacity + 1, Ordering::Relaxed);
    }

    /// The parts of a queue handle common to both ends.
    struct Channel<T> {
        ch: EndHandle,
        cells: *const AtomicU64,
        /// The producer's `head` word (producer end) or the consumer's `tail` word.
        own_pos: *const AtomicU64,
        /// The recovery copy of this end's slot index.
        own_slot: *const AtomicU64,
        /// The other end's position word (the consumer's tail, read by `try_push`).
        other_pos: *const AtomicU64,
        slots: *mut u8,
        stride: usize,
        shape: Shape,
        _t: PhantomData<fn() -> T>,
    }

    // SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes
    // this handle the only user of its end across processes, so moving it to another thread
    // is sound.
    unsafe impl<T> Send for Channel<T> {}

    impl<T: Object> Channel<T> {
        fn new(seg: &Segment, name: &str, end: End) -> Result<(Channel<T>, u64, u64)> {
            let ch = seg.channel(name, Kind::Queue, end)?;
            let offset = ch.object::<T>()?;
            debug_assert_eq!(offset, 0, "a queue carries one object at offset 0");
            let ch = ch.claim_end(end)?;
            let map = &ch.map;
            let capacity = u64::from(ch.info.slot_count) - 2;
            let shape = Shape::new(capacity);
            let (own, other) = match end {
                End::Producer => (LINE_PRODUCER, LINE_CONSUMER),
                End::Consumer => (LINE_CONSUMER, LINE_PRODUCER),
            };
            let own_pos = map.atomic_u64(ch.ctrl_line(own));
            let own_slot = map.atomic_u64(ch.ctrl_line(own) + 8);
            let other_pos = map.atomic_u64(ch.ctrl_line(other));
            // Relaxed: the claim's acquire ordered the previous holder's stores.
            let (pos, slot) = (
                own_pos.load(Ordering::Relaxed),
                own_slot.load(Ordering::Relaxed),
            );
            let cells = map.atomic_u64(ch.ctrl_line(LINE_CELLS)) as *const AtomicU64;
            // Bounds of the whole ring (validated at attach: the control block holds it).
            let _ = map.ptr(ch.ctrl_line(LINE_CELLS), 8 * capacity);
            let slots = map.ptr(ch.info.buffer_offset, ch.info.slot_stride * shape.slots);
            let mut chan = Channel {
                cells,
                own_pos,
                own_slot,
                other_pos,
                slots,
                stride: ch.info.slot_stride as usize,
                shape,
                ch,
                _t: PhantomData,
            };
            if slot >= shape.slots {
                return Err(chan.corrupt("saved slot index", slot, "out of range"));
            }
            Ok((chan, pos, slot))
        }

        fn cells(&self) -> &[AtomicU64] {
            // SAFETY: the ring of `capacity` cells lies inside the mapping kept alive by `ch`
            // (checked in `new`), is 8-aligned, and is only accessed atomically.
            unsafe { std::slice::from_raw_parts(self.cells, self.shape.capacity as usize) }
        }

        fn word(&self, p: *const AtomicU64) -> &AtomicU64 {
            // SAFETY: `p` is one of this handle's control words, inside the mapping kept alive
            // by `ch` and 8-aligned.
            unsafe { &*p }
        }

        /// The object in slot `slot`.
        fn at(&self, slot: u64) -> *mut T {
            debug_assert!(slot < self.shape.slots);
            // SAFETY: `slot < slots` (checked by the protocol on every swap and in `new`), so
            // the pointer stays inside the channel's buffer of `slots * stride` bytes.
            unsafe { self.slots.add(slot as usize * self.stride).cast::<T>() }
        }

        fn corrupt(&mut self, what: &str, word: u64, reason: &str) -> Error {
            self.ch.corrupt(what, word, reason)
        }

        #[inline]
        fn check(&self) -> Result<()> {
            self.ch.check()
        }
    }

    /// The producing end of a queue channel.
    ///
    /// ```
    /// # use rtipc::{Direction, Object, QueueConsumer, QueueProducer, Segment};
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
    /// line.force_push()?;
    ///
    /// let m = rx.pop()?.expect("one message");
    /// assert_eq!((m.level, m.lost(), m.seq()), (2, 0, 1));
    /// assert_eq!(&m.text[..5], b"hello");
    /// # Ok::<(), rtipc::Error>(())
    /// ```
    pub struct QueueProducer<T: Object> {
        chan: Channel<T>,
        p: Producer,
        notify: Option<Notifier>,
    }

    impl<T: Object> std::fmt::Debug for QueueProducer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("QueueProducer")
                .field("channel", &self.chan.ch.info.name)
                .field("pushed", &self.p.head)
                .finish()
        }
    }

    impl<T: Object> QueueProducer<T> {
        /// Claims the producing end of queue `name` and checks `T` against its schema.
        pub fn new(seg: &Segment, name: &str) -> Result<Self> {
            let (chan, head, slot) = Channel::new(seg, name, End::Producer)?;
            let notify = Notifier::new(&chan.ch, chan.ch.ctrl_line(LINE_NOTIFY));
            Ok(QueueProducer {
                chan,
                p: Producer { head, slot },
                notify,
            })
        }

        /// The slot of the next message, to write in place; push it with
        /// [`QueueSlot::force_push`] or [`QueueSlot::try_push`]. It holds an old message (or
        /// zeros): write every field.
        pub fn write(&mut self) -> Result<QueueSlot<'_, T>> {
            self.chan.check()?;
            Ok(QueueSlot { q: self })
        }

        /// Copies `value` into the next slot and pushes it, overwriting the oldest unread
        /// message if the queue is full.
        pub fn force_push(&mut self, value: &T) -> Result<()> {
            let mut s = self.write()?;
            *s = *value;
            s.force_push()
        }

        /// Copies `value` into the next slot and pushes it if the queue has room; returns
        /// `false` (and pushes nothing) when it is full.
        pub fn try_push(&mut self, value: &T) -> Result<bool> {
            let mut s = self.write()?;
            *s = *value;
            s.try_push()
        }

        /// The number of messages pushed so far.
        pub fn pushed(&self) -> u64 {
            self.p.head
        }

        /// How many unread messages the queue holds at most.
        pub fn capacity(&self) -> u32 {
            self.chan.shape.capacity as u32
        }

        fn push(&mut self, force: bool) -> Result<bool> {
            let c = &self.chan;
            let r = protocol::push(c.cells(), c.word(c.other_pos), c.shape, &mut self.p, force);
            match r {
                Ok(Pushed::Full) => Ok(false),
                Ok(Pushed::Done { .. }) => {
                    // Relaxed: the consumer reads `head` only as a hint (in `latest`); the cell
                    // swap carries the synchronisation. The slot copy is for the next claim
                    // holder, ordered by the claim.
                    c.word(c.own_pos).store(self.p.head, Ordering::Relaxed);
                    c.word(c.own_slot).store(self.p.slot, Ordering::Relaxed);
                    if let Some(n) = &self.notify {
                        n.notify();
                    }
                    Ok(true)
                }
                Err(b) => Err(self.chan.corrupt("ring", b.word, b.reason)),
            }
        }
    }

    /// The next message of a queue, written in place. Derefs to `&mut T`. Dropping it without
    /// pushing pushes nothing (the content stays for the next [`QueueProducer::write`]).
    pub struct QueueSlot<'a, T: Object> {
        q: &'a mut QueueProducer<T>,
    }

    impl<T: Object> QueueSlot<'_, T> {
        /// Pushes the message, overwriting the oldest unread one if the queue is full.
        pub fn force_push(self) -> Result<()> {
            self.q.push(true).map(|_| ())
        }

        /// Pushes the message if the queue has room; returns `false` when it is full (the
        /// message stays in the slot, so a later `write` sees it again).
        pub fn try_push(self) -> Result<bool> {
            self.q.push(false)
        }
    }

    impl<T: Object> Deref for QueueSlot<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            let p = self.q.chan.at(self.q.p.slot);
            // SAFETY: the producer's slot belongs to it alone until it is pushed; the pointer
            // is in bounds and aligned (slots are cache-line aligned and the object is at
            // offset 0); every bit pattern is a valid `T`.
            unsafe { &*p }
        }
    }

    impl<T: Object> DerefMut for QueueSlot<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            let p = self.q.chan.at(self.q.p.slot);
            // SAFETY: as for `deref`; `&mut self` makes this the only reference.
            unsafe { &mut *p }
        }
    }

    /// The consuming end of a queue channel.
    pub struct QueueConsumer<T: Object> {
        chan: Channel<T>,
        c: Consumer,
        waiter: Option<Waiter>,
    }

    impl<T: Object> std::fmt::Debug for QueueConsumer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("QueueConsumer")
                .field("channel", &self.chan.ch.info.name)
                .field("next", &self.c.tail)
                .finish()
        }
    }

    impl<T: Object> QueueConsumer<T> {
        /// Claims the consuming end of queue `name` and checks `T` against its schema.
        pub fn new(seg: &Segment, name: &str) -> Result<Self> {
            let (chan, tail, slot) = Channel::new(seg, name, End::Consumer)?;
            let waiter = Waiter::new(&chan.ch, chan.ch.ctrl_line(LINE_NOTIFY));
            Ok(QueueConsumer {
                chan,
                c: Consumer { tail, slot },
                waiter,
            })
        }

        /// Takes the oldest unread message: `None` if there is none. The view is valid until
        /// the next pop and tells how many messages were lost (overwritten) before it.
        pub fn pop(&mut self) -> Result<Option<Message<'_, T>>> {
            self.chan.check()?;
            let c = &self.chan;
            match protocol::pop(c.cells(), c.shape, &mut self.c) {
                Ok(Popped::Empty) => Ok(None),
                Ok(Popped::Message { pos, lost }) => {
                    // Release: `try_push` compares against it; the slot handover itself is
                    // ordered by the cell swap. The slot copy is for the next claim holder.
                    c.word(c.own_pos).store(self.c.tail, Ordering::Release);
                    c.word(c.own_slot).store(self.c.slot, Ordering::Relaxed);
                    Ok(Some(Message {
                        q: self,
                        seq: pos + 1,
                        lost,
                    }))
                }
                Err(b) => Err(self.chan.corrupt("ring", b.word, b.reason)),
            }
        }

        /// Skips to the newest message and takes it: everything older still unread is counted
        /// as lost. `None` if there is no unread message.
        pub fn latest(&mut self) -> Result<Option<Message<'_, T>>> {
            self.chan.check()?;
            // Relaxed: `head` is a hint of where the newest message is; the pop's cell swap
            // carries the synchronisation, and a stale hint only makes us skip fewer messages.
            let head = self.chan.word(self.chan.other_pos).load(Ordering::Relaxed);
            if head > self.c.tail + 1 {
                if head - self.c.tail > self.chan.shape.capacity + (1 << 38) {
                    return Err(self
                        .chan
                        .corrupt("head word", head, "implausibly far ahead"));
                }
                // Pretend we read up to `head - 1`; the skipped messages count as lost.
                let skipped = head - 1 - self.c.tail;
                let saved = self.c;
                self.c.tail = head - 1;
                let c = &self.chan;
                match protocol::pop(c.cells(), c.shape, &mut self.c) {
                    Ok(Popped::Message { pos, lost }) => {
                        c.word(c.own_pos).store(self.c.tail, Ordering::Release);
                        c.word(c.own_slot).store(self.c.slot, Ordering::Relaxed);
                        return Ok(Some(Message {
                            q: self,
                            seq: pos + 1,
                            lost: lost + skipped,
                        }));
                    }
                    Ok(Popped::Empty) => self.c = saved,
                    Err(b) => return Err(self.chan.corrupt("ring", b.word, b.reason)),
                }
            }
            self.pop()
        }

        /// How many unread messages the queue holds at most.
        pub fn capacity(&self) -> u32 {
            self.chan.shape.capacity as u32
        }
    }

    /// A popped message, read in place; derefs to `&T`. Valid until the next pop.
    pub struct Message<'a, T: Object> {
        q: &'a QueueConsumer<T>,
        seq: u64,
        lost: u64,
    }

    impl<T: Object> Message<'_, T> {
        /// How many messages were lost (overwritten by `force_push`, or skipped by
        /// [`QueueConsumer::latest`]) between the previous pop and this message.
        pub fn lost(&self) -> u64 {
            self.lost
        }

        /// The message's number: 1 for the producer's first push.
        pub fn seq(&self) -> u64 {
            self.seq
        }
    }

    impl<T: Object> Deref for Message<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            let p = self.q.chan.at(self.q.c.slot);
            // SAFETY: the consumer's slot belongs to it until its next pop, which the borrow
            // of the consumer prevents while this reference lives; in bounds and aligned;
            // every bit pattern is a valid `T`.
            unsafe { &*p }
        }
    }

    impl<T: Object + std::fmt::Debug> std::fmt::Debug for Message<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Message")
                .field("seq", &self.seq)
                .field("lost", &self.lost)
                .field("value", &**self)
                .finish()
        }
    }

    // Waiting for messages (see `crate::notify`).

    impl<T: Object> QueueConsumer<T> {
        fn waiter(&self) -> Result<&Waiter> {
            self.chan.check()?;
            self.waiter.as_ref().ok_or_else(|| Error::NotifyDisabled {
                channel: self.chan.ch.info.name.clone(),
            })
        }

        /// Whether a pop would find a message now.
        fn has_data(&self) -> impl Fn() -> bool + '_ {
            let (cells, shape, c) = (self.chan.cells(), self.chan.shape, self.c);
            move || protocol::has_message(cells, shape, &c)
        }

        /// Blocks until there is a message to pop (`Ok(true)`) or `timeout` passes
        /// (`Ok(false)`; `None`: no limit). Needs a channel created with
        /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); see [`crate::notify`].
        pub fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<bool> {
            self.waiter()?.wait(self.has_data(), timeout)
        }

        /// Prepares a wait on the channel's eventfd; see [`Wait::arm`].
        pub fn arm(&mut self) -> Result<bool> {
            self.waiter()?.arm(self.has_data(), &self.chan.ch.info.name)
        }

        /// The channel's eventfd, if it has one; see [`Wait::wait_fd`].
        pub fn wait_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            self.waiter.as_ref().and_then(Waiter::fd)
        }
    }

    impl<T: Object> Sealed for QueueConsumer<T> {
        fn channel_name(&self) -> &str {
            &self.chan.ch.info.name
        }
    }

    impl<T: Object> Wait for QueueConsumer<T> {
        fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<bool> {
            QueueConsumer::wait(self, timeout)
        }
        fn arm(&mut self) -> Result<bool> {
            QueueConsumer::arm(self)
        }
        fn wait_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            QueueConsumer::wait_fd(self)
        }
    }
}

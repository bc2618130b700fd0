//! State channels: the newest value of one or more objects, triple buffered.
//!
//! The producer writes in place into its back slot and publishes with one atomic swap; the
//! consumer fetches the newest slot with one atomic swap (only when there is something new) and
//! reads it in place. Neither side waits for the other, allocates or makes a system call.
//!
//! * [`StateProducer<T>`] / [`StateConsumer<T>`]: one object per handle, the common case.
//! * [`StateWriter`] / [`StateReader`]: the whole channel, with typed [`ObjectKey`]s for any
//!   subset of its objects (the object mapper).
//!
//! Every index word read from shared memory is checked on every publish and fetch; a word that
//! breaks the protocol is an [`Error::Corrupt`](crate::Error::Corrupt) and the handle refuses further use, never an
//! out-of-bounds access.

pub(crate) mod protocol;

#[cfg(not(loom))]
pub use handles::*;

/// Slots of a state channel.
pub(crate) const SLOTS: u32 = 3;
/// Cache lines in a state channel's control block: claims, the shared middle word, the
/// producer's line, the consumer's line, and notification.
pub(crate) const CTRL_LINES: u64 = 5;

#[cfg(not(loom))]
mod handles {
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::os::fd::BorrowedFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::protocol::{self, Consumer, Fetched, Producer, IDX_MASK, SEQ_SHIFT};
    use crate::error::{Error, Result};
    use crate::layout::{ChannelInfo, Kind};
    use crate::notify::{Notifier, Sealed, Wait, Waiter};
    use crate::segment::{End, EndHandle, Mapping, Segment};
    use crate::Object;

    const LINE_MIDDLE: u64 = 1;
    const LINE_PRODUCER: u64 = 2;
    const LINE_CONSUMER: u64 = 3;
    /// The notification line: the `waiting` word at +0 (see [`crate::notify`]).
    const LINE_NOTIFY: u64 = 4;

    /// Writes a fresh state channel's control block: slot 0 is the producer's, slot 1 the
    /// middle (clean), slot 2 the consumer's.
    pub(crate) fn init_ctrl(map: &Mapping, c: &ChannelInfo, cache_line: u64) {
        let line = |n: u64| c.ctrl_offset + n * cache_line;
        // Relaxed: the segment is not visible to any other process until the ready word is
        // stored with release after this.
        map.atomic_u64(line(LINE_MIDDLE))
            .store(protocol::pack(1, 0), Ordering::Relaxed);
        map.atomic_u64(line(LINE_PRODUCER))
            .store(protocol::pack(0, 0), Ordering::Relaxed);
        map.atomic_u64(line(LINE_CONSUMER))
            .store(protocol::pack(2, 0), Ordering::Relaxed);
    }

    fn next_handle_id() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// The parts of a state handle common to both ends.
    struct Channel {
        ch: EndHandle,
        middle: *const AtomicU64,
        own: *const AtomicU64,
        /// The start of each of the three slots.
        slots: [*mut u8; 3],
        handle: u64,
    }

    // SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes
    // this handle the only user of its end across processes, so moving it to another thread
    // is sound.
    unsafe impl Send for Channel {}

    impl Channel {
        fn new(seg: &Segment, name: &str, end: End) -> Result<(Channel, u64, u64, u64)> {
            let ch = seg.channel(name, Kind::State, end)?;
            let ch = ch.claim_end(end)?;
            let map = &ch.map;
            let middle = map.atomic_u64(ch.ctrl_line(LINE_MIDDLE));
            let prod = map.atomic_u64(ch.ctrl_line(LINE_PRODUCER));
            let cons = map.atomic_u64(ch.ctrl_line(LINE_CONSUMER));
            // Relaxed loads: the claim's acquire already ordered the previous holder's stores.
            let (m, p, c) = (
                middle.load(Ordering::Acquire),
                prod.load(Ordering::Relaxed),
                cons.load(Ordering::Relaxed),
            );
            let own = if end == End::Producer { prod } else { cons };
            let stride = ch.info.slot_stride;
            let base = ch.info.buffer_offset;
            let slots = [0, 1, 2].map(|i| map.ptr(base + i * stride, stride));
            let chan = Channel {
                middle,
                own,
                slots,
                handle: next_handle_id(),
                ch,
            };
            Ok((chan, m, p, c))
        }

        #[inline]
        fn middle(&self) -> &AtomicU64 {
            // SAFETY: points into the mapping kept alive by `self.ch`; 8-aligned (checked when
            // it was created).
            unsafe { &*self.middle }
        }

        #[inline]
        fn own(&self) -> &AtomicU64 {
            // SAFETY: as for `middle`.
            unsafe { &*self.own }
        }

        fn corrupt(&mut self, what: &str, word: u64, reason: &str) -> Error {
            self.ch.corrupt(what, word, reason)
        }

        #[inline]
        fn check(&self) -> Result<()> {
            self.ch.check()
        }

        fn object<T: Object>(&self) -> Result<ObjectKey<T>> {
            let offset = self.ch.object::<T>()?;
            Ok(ObjectKey {
                handle: self.handle,
                offset: offset as usize,
                _t: PhantomData,
            })
        }

        /// A pointer to `key`'s object in slot `slot` (which is 0, 1 or 2).
        ///
        /// # Panics
        ///
        /// If `key` was made by another handle.
        #[inline]
        fn at<T: Object>(&self, slot: u64, key: &ObjectKey<T>) -> *mut T {
            assert_eq!(
                key.handle, self.handle,
                "an ObjectKey can only be used with the handle that made it"
            );
            self.at_offset(slot, key.offset)
        }

        /// A pointer to the object at `offset` in slot `slot`, for an offset that
        /// [`ChannelRef::object`] returned for this channel.
        #[inline]
        fn at_offset<T: Object>(&self, slot: u64, offset: usize) -> *mut T {
            debug_assert!(slot < 3);
            // The protocol only ever holds indices below 3: it checks every index it reads
            // from shared memory.
            let base = self.slots[slot as usize];
            // SAFETY: the object lies within the slot (`offset + size_of::<T>() <= slot_size
            // <= stride`, checked at attach), so the pointer stays inside the slot.
            unsafe { base.add(offset).cast::<T>() }
        }
    }

    /// A typed handle on one object of a channel, made by [`StateWriter::object`] or
    /// [`StateReader::object`] after checking `T` against the segment's schema.
    pub struct ObjectKey<T> {
        handle: u64,
        offset: usize,
        _t: PhantomData<fn() -> T>,
    }

    impl<T> Clone for ObjectKey<T> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<T> Copy for ObjectKey<T> {}

    impl<T> std::fmt::Debug for ObjectKey<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ObjectKey")
                .field("offset", &self.offset)
                .finish()
        }
    }

    /// The producing end of a state channel, for any of its objects.
    pub struct StateWriter {
        chan: Channel,
        p: Producer,
        notify: Option<Notifier>,
    }

    impl std::fmt::Debug for StateWriter {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("StateWriter")
                .field("channel", &self.chan.ch.info.name)
                .field("published", &self.p.seq)
                .finish()
        }
    }

    impl StateWriter {
        /// Claims the producing end of state channel `name`.
        pub fn new(seg: &Segment, name: &str) -> Result<StateWriter> {
            let (mut chan, m, p, c) = Channel::new(seg, name, End::Producer)?;
            let mut back = p & IDX_MASK;
            let mut seq = p >> SEQ_SHIFT;
            if m & protocol::DIRTY != 0 {
                seq = seq.max(m >> SEQ_SHIFT);
            }
            let mid = m & IDX_MASK;
            if back == mid {
                // A producer died between its swap and saving its state: its back slot is the
                // one that is not in the middle nor the consumer's.
                back = 3u64.wrapping_sub(mid).wrapping_sub(c & IDX_MASK);
            }
            if back >= 3 || back == mid || mid >= 3 || back == c & IDX_MASK {
                return Err(chan.corrupt("index words", m, "slot indices are not distinct"));
            }
            let notify = Notifier::new(&chan.ch, chan.ch.ctrl_line(LINE_NOTIFY));
            Ok(StateWriter {
                chan,
                p: Producer { back, seq },
                notify,
            })
        }

        /// Checks `T` against the channel's schema and returns its key.
        pub fn object<T: Object>(&self) -> Result<ObjectKey<T>> {
            self.chan.object()
        }

        /// Starts writing the next update in place. The slot holds an older update (or zeros),
        /// not the last one published: write every field you care about.
        #[inline]
        pub fn write(&mut self) -> Result<Draft<'_>> {
            self.chan.check()?;
            Ok(Draft { w: self })
        }

        /// The number of updates published through this channel so far.
        pub fn published(&self) -> u64 {
            self.p.seq
        }

        #[inline]
        fn publish(&mut self) -> Result<u64> {
            let seq = match protocol::publish(self.chan.middle(), &mut self.p) {
                Ok(seq) => seq,
                Err(b) => return Err(self.chan.corrupt("middle word", b.word, b.reason)),
            };
            // Relaxed: a recovery copy for the next holder of the claim, ordered by the
            // claim's release/acquire.
            self.chan
                .own()
                .store(protocol::pack(self.p.back, seq), Ordering::Relaxed);
            if let Some(n) = &self.notify {
                n.notify();
            }
            Ok(seq)
        }
    }

    /// An update being written in place; publish it with [`Draft::publish`]. Dropping it
    /// without publishing publishes nothing.
    pub struct Draft<'a> {
        w: &'a mut StateWriter,
    }

    impl Draft<'_> {
        /// The object `key` in the slot being written.
        ///
        /// # Panics
        ///
        /// If `key` was made by another handle.
        #[inline]
        pub fn get_mut<T: Object>(&mut self, key: ObjectKey<T>) -> &mut T {
            let p = self.w.chan.at(self.w.p.back, &key);
            // SAFETY: the back slot belongs to the producer alone until it is published (the
            // protocol hands it to no one else), the pointer is aligned (slots are cache-line
            // aligned, the offset is a multiple of T's alignment, checked at attach) and in
            // bounds; every bit pattern is a valid `T` (`Object`). The borrow of `self` keeps
            // the slot from being published while the reference lives.
            unsafe { &mut *p }
        }

        /// Publishes the update with one atomic swap; returns its sequence number (1 for the
        /// first update).
        #[inline]
        pub fn publish(self) -> Result<u64> {
            self.w.publish()
        }
    }

    /// The consuming end of a state channel, for any subset of its objects.
    pub struct StateReader {
        chan: Channel,
        c: Consumer,
        waiter: Option<Waiter>,
    }

    impl std::fmt::Debug for StateReader {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("StateReader")
                .field("channel", &self.chan.ch.info.name)
                .field("seq", &self.c.seq)
                .finish()
        }
    }

    impl StateReader {
        /// Claims the consuming end of state channel `name`.
        pub fn new(seg: &Segment, name: &str) -> Result<StateReader> {
            let (mut chan, m, p, c) = Channel::new(seg, name, End::Consumer)?;
            let mut front = c & IDX_MASK;
            let seq = c >> SEQ_SHIFT;
            let mid = m & IDX_MASK;
            if front == mid {
                // A consumer died between its swap and saving its state.
                front = 3u64.wrapping_sub(mid).wrapping_sub(p & IDX_MASK);
            }
            if front >= 3 || front == mid || mid >= 3 || front == p & IDX_MASK {
                return Err(chan.corrupt("index words", m, "slot indices are not distinct"));
            }
            let waiter = Waiter::new(&chan.ch, chan.ch.ctrl_line(LINE_NOTIFY));
            Ok(StateReader {
                chan,
                c: Consumer { front, seq },
                waiter,
            })
        }

        /// Checks `T` against the channel's schema and returns its key.
        pub fn object<T: Object>(&self) -> Result<ObjectKey<T>> {
            self.chan.object()
        }

        /// Takes the newest update: `None` if nothing was ever published, otherwise a view of
        /// the newest update, which tells whether it is new and how many updates were skipped.
        /// The view is valid until the next fetch.
        #[inline]
        pub fn fetch(&mut self) -> Result<Option<Snapshot<'_>>> {
            Ok(self.fetch_raw()?.map(|(new, skipped)| Snapshot {
                r: self,
                new,
                skipped,
            }))
        }

        /// The protocol step of a fetch: `None` if nothing was ever published, else whether
        /// the front slot is new and how many updates were skipped.
        #[inline]
        fn fetch_raw(&mut self) -> Result<Option<(bool, u64)>> {
            self.chan.check()?;
            match protocol::fetch(self.chan.middle(), &mut self.c) {
                Ok(Fetched::Empty) => Ok(None),
                Ok(Fetched::Unchanged) => Ok(Some((false, 0))),
                Ok(Fetched::New { skipped }) => {
                    // Relaxed: a recovery copy, as in the producer.
                    self.chan
                        .own()
                        .store(protocol::pack(self.c.front, self.c.seq), Ordering::Relaxed);
                    Ok(Some((true, skipped)))
                }
                Err(b) => Err(self.chan.corrupt("middle word", b.word, b.reason)),
            }
        }
    }

    /// A fetched update of a state channel, valid until the reader's next fetch.
    pub struct Snapshot<'a> {
        r: &'a StateReader,
        new: bool,
        skipped: u64,
    }

    impl Snapshot<'_> {
        /// The object `key` in this update.
        ///
        /// # Panics
        ///
        /// If `key` was made by another handle.
        #[inline]
        pub fn get<T: Object>(&self, key: ObjectKey<T>) -> &T {
            let p = self.r.chan.at(self.r.c.front, &key);
            // SAFETY: the front slot belongs to the consumer until its next fetch, which the
            // borrow of the reader prevents while this reference lives; the pointer is aligned
            // and in bounds (see `Draft::get_mut`), and every bit pattern is a valid `T`.
            unsafe { &*p }
        }

        /// Whether this update is new since the previous fetch.
        #[inline]
        pub fn is_new(&self) -> bool {
            self.new
        }

        /// How many updates were published and overwritten between the previous new update
        /// and this one (0 if not new).
        #[inline]
        pub fn skipped(&self) -> u64 {
            self.skipped
        }

        /// The update's sequence number: 1 for the producer's first publish.
        #[inline]
        pub fn seq(&self) -> u64 {
            self.r.c.seq
        }
    }

    /// The producing end of a state channel, typed to one of its objects.
    ///
    /// ```
    /// # use rtipc::{Direction, Object, Segment, StateConsumer, StateProducer};
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
        w: StateWriter,
        /// Offset of `T` in the slot, checked against the schema by `new`.
        offset: usize,
        _t: PhantomData<fn() -> T>,
    }

    impl<T: Object> std::fmt::Debug for StateProducer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.w.fmt(f)
        }
    }

    impl<T: Object> StateProducer<T> {
        /// Claims the producing end of state channel `name` and checks `T` against its schema.
        pub fn new(seg: &Segment, name: &str) -> Result<Self> {
            let w = StateWriter::new(seg, name)?;
            let offset = w.object::<T>()?.offset;
            Ok(StateProducer {
                w,
                offset,
                _t: PhantomData,
            })
        }

        /// Starts writing the next update in place; the guard derefs to `&mut T`. The slot
        /// holds an older update (or zeros), not the last one published: write every field.
        #[inline]
        pub fn write(&mut self) -> Result<WriteGuard<'_, T>> {
            self.w.chan.check()?;
            let ptr = self.w.chan.at_offset(self.w.p.back, self.offset);
            Ok(WriteGuard {
                w: &mut self.w,
                ptr,
            })
        }

        /// Copies `value` into the next slot and publishes it; returns its sequence number.
        #[inline]
        pub fn publish_copy(&mut self, value: &T) -> Result<u64> {
            let mut g = self.write()?;
            *g = *value;
            g.publish()
        }

        /// The number of updates published so far.
        pub fn published(&self) -> u64 {
            self.w.published()
        }
    }

    /// An update of one object being written in place. Derefs to `&mut T`; publish with
    /// [`WriteGuard::publish`].
    pub struct WriteGuard<'a, T: Object> {
        w: &'a mut StateWriter,
        /// `T` in the producer's back slot.
        ptr: *mut T,
    }

    impl<T: Object> WriteGuard<'_, T> {
        /// Publishes the update; returns its sequence number.
        #[inline]
        pub fn publish(self) -> Result<u64> {
            self.w.publish()
        }
    }

    impl<T: Object> Deref for WriteGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: as in `Draft::get_mut`: the back slot is the producer's alone until the
            // guard publishes it, and the guard borrows the producer; a shared reborrow.
            unsafe { &*self.ptr }
        }
    }

    impl<T: Object> DerefMut for WriteGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `Draft::get_mut`; `&mut self` makes this the only reference.
            unsafe { &mut *self.ptr }
        }
    }

    /// The consuming end of a state channel, typed to one of its objects.
    pub struct StateConsumer<T: Object> {
        r: StateReader,
        /// Offset of `T` in the slot, checked against the schema by `new`.
        offset: usize,
        _t: PhantomData<fn() -> T>,
    }

    impl<T: Object> std::fmt::Debug for StateConsumer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.r.fmt(f)
        }
    }

    impl<T: Object> StateConsumer<T> {
        /// Claims the consuming end of state channel `name` and checks `T` against its schema.
        pub fn new(seg: &Segment, name: &str) -> Result<Self> {
            let r = StateReader::new(seg, name)?;
            let offset = r.object::<T>()?.offset;
            Ok(StateConsumer {
                r,
                offset,
                _t: PhantomData,
            })
        }

        /// Takes the newest update: `None` if nothing was ever published, otherwise a view
        /// that derefs to `&T` and tells whether it is new and how many updates were skipped.
        /// The view is valid until the next fetch.
        #[inline]
        pub fn fetch(&mut self) -> Result<Option<Sample<'_, T>>> {
            let Some((new, skipped)) = self.r.fetch_raw()? else {
                return Ok(None);
            };
            let p = self.r.chan.at_offset::<T>(self.r.c.front, self.offset);
            Ok(Some(Sample {
                // SAFETY: the front slot belongs to the consumer until its next fetch, which
                // the sample's borrow of `self` prevents; aligned and in bounds (see
                // `Draft::get_mut`); every bit pattern is a valid `T`.
                value: unsafe { &*p },
                seq: self.r.c.seq,
                new,
                skipped,
            }))
        }
    }

    /// A fetched update of one object; derefs to `&T`. Valid until the next fetch.
    pub struct Sample<'a, T: Object> {
        value: &'a T,
        seq: u64,
        new: bool,
        skipped: u64,
    }

    impl<T: Object> Sample<'_, T> {
        /// Whether this update is new since the previous fetch.
        #[inline]
        pub fn is_new(&self) -> bool {
            self.new
        }

        /// How many updates were overwritten before this one could be seen (0 if not new).
        #[inline]
        pub fn skipped(&self) -> u64 {
            self.skipped
        }

        /// The update's sequence number: 1 for the producer's first publish.
        #[inline]
        pub fn seq(&self) -> u64 {
            self.seq
        }
    }

    impl<T: Object> Deref for Sample<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            self.value
        }
    }

    // Waiting for data (see `crate::notify`).

    impl StateReader {
        fn waiter(&self) -> Result<&Waiter> {
            self.chan.check()?;
            self.waiter.as_ref().ok_or_else(|| Error::NotifyDisabled {
                channel: self.chan.ch.info.name.clone(),
            })
        }

        /// Whether the producer published since the last fetch.
        fn has_data(&self) -> impl Fn() -> bool + '_ {
            let middle = self.chan.middle();
            // Relaxed: only decides whether to sleep; the fetch acquires the data.
            move || middle.load(Ordering::Relaxed) & protocol::DIRTY != 0
        }

        /// Blocks until the producer has published something not fetched yet (`Ok(true)`) or
        /// `timeout` passes (`Ok(false)`; `None`: no limit). Needs a channel created with
        /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); see [`crate::notify`].
        pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
            self.waiter()?.wait(self.has_data(), timeout)
        }

        /// Prepares a wait on the channel's eventfd; see [`Wait::arm`].
        pub fn arm(&mut self) -> Result<bool> {
            self.waiter()?.arm(self.has_data(), &self.chan.ch.info.name)
        }

        /// The channel's eventfd, if it has one; see [`Wait::wait_fd`].
        pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
            self.waiter.as_ref().and_then(Waiter::fd)
        }
    }

    impl Sealed for StateReader {
        fn channel_name(&self) -> &str {
            &self.chan.ch.info.name
        }
    }

    impl Wait for StateReader {
        fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
            StateReader::wait(self, timeout)
        }
        fn arm(&mut self) -> Result<bool> {
            StateReader::arm(self)
        }
        fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
            StateReader::wait_fd(self)
        }
    }

    impl<T: Object> StateConsumer<T> {
        /// Blocks until the producer has published something not fetched yet (`Ok(true)`) or
        /// `timeout` passes (`Ok(false)`; `None`: no limit). Needs a channel created with
        /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); see [`crate::notify`].
        pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
            self.r.wait(timeout)
        }

        /// Prepares a wait on the channel's eventfd; see [`Wait::arm`].
        pub fn arm(&mut self) -> Result<bool> {
            self.r.arm()
        }

        /// The channel's eventfd, if it has one; see [`Wait::wait_fd`].
        pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
            self.r.wait_fd()
        }
    }

    impl<T: Object> Sealed for StateConsumer<T> {
        fn channel_name(&self) -> &str {
            self.r.channel_name()
        }
    }

    impl<T: Object> Wait for StateConsumer<T> {
        fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
            self.r.wait(timeout)
        }
        fn arm(&mut self) -> Result<bool> {
            self.r.arm()
        }
        fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
            self.r.wait_fd()
        }
    }

    impl<T: Object + std::fmt::Debug> std::fmt::Debug for Sample<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Sample")
                .field("seq", &self.seq())
                .field("new", &self.is_new())
                .field("skipped", &self.skipped())
                .field("value", &**self)
                .finish()
        }
    }
}

#[cfg(not(loom))]
pub(crate) use handles::init_ctrl;

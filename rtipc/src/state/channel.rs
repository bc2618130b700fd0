//! What the handles of both ends of a state channel share: the claimed end, the middle word,
//! the end's own saved word, and a pointer to each slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::protocol::{self, Consumer, Producer};
use crate::error::{DataError, Result};
use crate::layout::{state_ctrl, ChannelKind, End};
use crate::segment::wake::{Bell, Doorbell};
use crate::segment::{EndHandle, Segment};
use crate::sync::BadWord;

/// A claimed end of a state channel.
pub(super) struct Channel {
    pub ch: EndHandle,
    middle: *const AtomicU64,
    own: *const AtomicU64,
    /// The start of each of the three slots.
    slots: [*mut u8; 3],
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl Send for Channel {}

impl Channel {
    /// Claims `end` of state channel `name` and reads the three words that its recovery needs:
    /// `(channel, middle, producer, consumer)`.
    fn claim(seg: &Segment, name: &str, end: End) -> Result<(Channel, u64, u64, u64)> {
        let ch = seg.channel(name, ChannelKind::State, end)?.claim_end(end)?;
        let ctrl = ch.ctrl();
        let middle = ctrl.word(state_ctrl::LINE_MIDDLE, 0);
        let prod = ctrl.word(state_ctrl::LINE_PRODUCER, 0);
        let cons = ctrl.word(state_ctrl::LINE_CONSUMER, 0);
        // Acquire on the middle word: the data of the slot it names; the saved words were
        // ordered by the claim's acquire.
        let (m, p, c) = (
            middle.load(Ordering::Acquire),
            prod.load(Ordering::Relaxed),
            cons.load(Ordering::Relaxed),
        );
        let own = if end == End::Producer { prod } else { cons };
        let (middle, own) = (middle as *const AtomicU64, own as *const AtomicU64);
        let slots = [0, 1, 2].map(|i| ch.slot(i));
        Ok((
            Channel {
                ch,
                middle,
                own,
                slots,
            },
            m,
            p,
            c,
        ))
    }

    /// Claims the producer end and recovers the producer's state.
    pub fn producer(seg: &Segment, name: &str) -> Result<(Channel, Producer, Option<Doorbell>)> {
        let (mut chan, m, p, c) = Self::claim(seg, name, End::Producer)?;
        let state = protocol::recover_producer(m, p, c).map_err(|b| chan.ch.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok((chan, state, bell))
    }

    /// Claims the consumer end and recovers the consumer's state.
    pub fn consumer(seg: &Segment, name: &str) -> Result<(Channel, Consumer, Option<Bell>)> {
        let (mut chan, m, p, c) = Self::claim(seg, name, End::Consumer)?;
        let state = protocol::recover_consumer(m, p, c).map_err(|b| chan.ch.corrupt(b))?;
        let bell = Bell::new(&chan.ch);
        Ok((chan, state, bell))
    }

    #[inline]
    pub fn middle(&self) -> &AtomicU64 {
        // SAFETY: points into the mapping kept alive by `self.ch`; 8-aligned (checked when it
        // was created).
        unsafe { &*self.middle }
    }

    /// Saves this end's private state for a later holder of the claim.
    #[inline]
    pub fn save(&self, index: u64, seq: u64) {
        // SAFETY: as for `middle`.
        let own = unsafe { &*self.own };
        // Relaxed: a recovery copy for the next holder of the claim, ordered by the claim's
        // release/acquire.
        own.store(protocol::pack(index, seq), Ordering::Relaxed);
    }

    /// Turns a bad word into the handle's error and poisons the handle.
    #[cold]
    pub fn corrupt(&mut self, b: BadWord) -> DataError {
        self.ch.corrupt(b)
    }

    /// A pointer to the byte at `offset` of slot `slot` (0, 1 or 2), for an offset that
    /// [`ChannelRef::object`](crate::segment::ChannelRef::object) returned for this channel.
    #[inline]
    pub fn at<T>(&self, slot: u64, offset: usize) -> *mut T {
        // The protocol only ever holds indices below 3: it checks every index it reads from
        // shared memory.
        let base = self.slots[slot as usize];
        // SAFETY: the object lies within the slot (`offset + size_of::<T>() <= slot_size <=
        // stride`, checked at attach), so the pointer stays inside the slot.
        unsafe { base.add(offset).cast::<T>() }
    }

    /// Whether the producer published since the consumer's last fetch (for waiting).
    pub fn has_data(&self) -> impl Fn() -> bool + '_ {
        let middle = self.middle();
        // Relaxed: only decides whether to sleep; the fetch acquires the data.
        move || middle.load(Ordering::Relaxed) & protocol::DIRTY != 0
    }

    /// Blocks on `bell` until the producer publishes (see `StateConsumer::wait`).
    pub fn wait(&self, bell: Option<&Bell>, timeout: Option<Duration>) -> Result<bool> {
        self.ch.check()?;
        let bell = bell.ok_or_else(|| crate::Error::NotifyDisabled {
            channel: self.ch.name().to_owned(),
        })?;
        bell.wait(self.has_data(), timeout)
    }

    /// Prepares a wait on the eventfd (see `StateConsumer::arm`).
    pub fn arm(&self, bell: Option<&Bell>) -> Result<bool> {
        self.ch.check()?;
        let bell = bell.ok_or_else(|| crate::Error::NotifyDisabled {
            channel: self.ch.name().to_owned(),
        })?;
        bell.arm(self.has_data(), self.ch.name())
    }
}

//! What the handles of both ends of a state channel share: the claimed end, the protocol's
//! words, and a pointer to each slot.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::protocol::{self, Consumer, Producer, Words};
use crate::error::{DataError, Result};
use crate::layout::{state_ctrl, ChannelKind, End};
use crate::segment::wake::{Bell, Doorbell};
use crate::segment::{EndHandle, Segment};
use crate::sync::BadWord;

/// A claimed end of a state channel.
pub(super) struct Channel {
    pub ch: EndHandle,
    /// The state word.
    state: *const AtomicU64,
    /// The three slots' sequence words.
    seqs: *const AtomicU64,
    /// The start of each of the three slots (a fourth entry, never used, lets an index masked to
    /// two bits go unchecked).
    slots: [*mut u8; 4],
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl Send for Channel {}

impl Channel {
    /// Claims `end` of state channel `name`.
    fn claim(seg: &Segment, name: &str, end: End) -> Result<Channel> {
        let ch = seg.channel(name, ChannelKind::State, end)?.claim_end(end)?;
        let state = ch.ctrl().word(state_ctrl::LINE_STATE, 0) as *const AtomicU64;
        let seqs = ch.ctrl().words_from(state_ctrl::LINE_SEQS, 3).as_ptr();
        let slots = [ch.slot(0), ch.slot(1), ch.slot(2), std::ptr::null_mut()];
        Ok(Channel {
            ch,
            state,
            seqs,
            slots,
        })
    }

    /// Claims the producer end and takes over the producer's state from the shared word.
    pub fn producer(seg: &Segment, name: &str) -> Result<(Channel, Producer, Option<Doorbell>)> {
        let mut chan = Self::claim(seg, name, End::Producer)?;
        let state = protocol::claim_producer(chan.words()).map_err(|b| chan.ch.corrupt(b))?;
        let bell = Doorbell::new(&chan.ch);
        Ok((chan, state, bell))
    }

    /// Claims the consumer end and takes over the consumer's state from the shared word.
    pub fn consumer(seg: &Segment, name: &str) -> Result<(Channel, Consumer, Option<Bell>)> {
        let mut chan = Self::claim(seg, name, End::Consumer)?;
        let state = protocol::claim_consumer(chan.words()).map_err(|b| chan.ch.corrupt(b))?;
        let bell = Bell::new(&chan.ch);
        Ok((chan, state, bell))
    }

    /// The protocol's words.
    #[inline]
    pub fn words(&self) -> Words<'_> {
        // SAFETY: an 8-aligned word of the control block (checked by `word` when the pointer
        // was made), inside the mapping kept alive by `self.ch`, only accessed atomically.
        let state = unsafe { &*self.state };
        // SAFETY: as above, three words (checked by `words_from`).
        let seqs = unsafe { std::slice::from_raw_parts(self.seqs, 3) };
        Words { state, seqs }
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
        // shared memory. The mask only spares the bounds check.
        let base = self.slots[(slot & 3) as usize];
        // SAFETY: the object lies within the slot (`offset + size_of::<T>() <= slot_size <=
        // stride`, checked at attach), so the pointer stays inside the slot.
        unsafe { base.add(offset).cast::<T>() }
    }

    /// Blocks on `bell` until the producer publishes (see `StateConsumer::wait`); `seen`
    /// remembers whether a producer was there.
    pub fn wait(
        &self,
        bell: Option<&Bell>,
        timeout: Option<Duration>,
        seen: &mut bool,
    ) -> Result<bool> {
        self.ch.check()?;
        let bell = bell.ok_or_else(|| crate::Error::NotifyDisabled {
            channel: self.ch.name().to_owned(),
        })?;
        bell.wait(
            || protocol::has_data(self.words()),
            timeout,
            || self.ch.other_end_held(),
            seen,
            self.ch.name(),
        )
    }

    /// Prepares a wait on the eventfd (see `StateConsumer::arm`).
    pub fn arm(&self, bell: Option<&Bell>) -> Result<bool> {
        self.ch.check()?;
        let bell = bell.ok_or_else(|| crate::Error::NotifyDisabled {
            channel: self.ch.name().to_owned(),
        })?;
        bell.arm(|| protocol::has_data(self.words()), self.ch.name())
    }
}

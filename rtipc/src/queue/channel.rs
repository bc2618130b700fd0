//! What the handles of both ends of a queue share: the claimed end, the ring, this end's words,
//! the other end's position, and the slots.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use super::protocol::{self, Shape};
use crate::error::{DataError, Result};
use crate::layout::{queue_ctrl, ChannelKind, End};
use crate::schema::Object;
use crate::segment::{EndHandle, Segment};
use crate::sync::BadWord;

/// A claimed end of a queue.
pub(super) struct Channel<T> {
    pub ch: EndHandle,
    cells: *const AtomicU64,
    /// The producer's `head` word (producer end) or the consumer's `tail` word.
    own_pos: *const AtomicU64,
    /// The recovery copy of this end's slot index.
    own_slot: *const AtomicU64,
    /// The other end's position word (the consumer's tail, read by `try_push`; the producer's
    /// head, read by `latest`).
    other_pos: *const AtomicU64,
    slots: *mut u8,
    stride: usize,
    pub shape: Shape,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl<T> Send for Channel<T> {}

impl<T: Object> Channel<T> {
    /// Claims `end` of queue `name`, checks `T`, and returns the saved `(position, slot)`.
    pub fn claim(seg: &Segment, name: &str, end: End) -> Result<(Channel<T>, u64, u64)> {
        let ch = seg.channel(name, ChannelKind::Queue, end)?;
        // The layout allows exactly one object in a queue: it is at offset 0.
        ch.object::<T>()?;
        let mut ch = ch.claim_end(end)?;
        let capacity = u64::from(ch.info.slot_count) - 2;
        let shape = Shape::new(capacity);
        let (own, other) = match end {
            End::Producer => (queue_ctrl::LINE_PRODUCER, queue_ctrl::LINE_CONSUMER),
            End::Consumer => (queue_ctrl::LINE_CONSUMER, queue_ctrl::LINE_PRODUCER),
        };
        let ctrl = ch.ctrl();
        let (own_pos, own_slot) = (ctrl.word(own, 0), ctrl.word(own, 1));
        let other_pos = ctrl.word(other, 0) as *const AtomicU64;
        let cells = ctrl.words_from(queue_ctrl::LINE_CELLS, capacity).as_ptr();
        // Relaxed: the claim's acquire ordered the previous holder's stores.
        let saved = protocol::recover(
            own_pos.load(Ordering::Relaxed),
            own_slot.load(Ordering::Relaxed),
            shape,
        );
        let (own_pos, own_slot) = (own_pos as *const AtomicU64, own_slot as *const AtomicU64);
        let (pos, slot) = saved.map_err(|b| crate::Error::from(ch.corrupt(b)))?;
        let slots = ch.slot(0);
        let stride = ch.info.slot_stride as usize;
        let chan = Channel {
            ch,
            cells,
            own_pos,
            own_slot,
            other_pos,
            slots,
            stride,
            shape,
            _t: PhantomData,
        };
        Ok((chan, pos, slot))
    }

    pub fn cells(&self) -> &[AtomicU64] {
        // SAFETY: the ring of `capacity` cells lies inside the control block, inside the
        // mapping kept alive by `ch`, is 8-aligned, and is only accessed atomically.
        unsafe { std::slice::from_raw_parts(self.cells, self.shape.capacity as usize) }
    }

    /// The other end's position word.
    pub fn other_pos(&self) -> &AtomicU64 {
        // SAFETY: one of this channel's control words, inside the mapping kept alive by `ch`
        // and 8-aligned.
        unsafe { &*self.other_pos }
    }

    /// Saves this end's position and slot for the other end and for a later holder.
    pub fn save(&self, pos: u64, slot: u64, pos_order: Ordering) {
        // SAFETY: as for `other_pos`.
        let own_pos = unsafe { &*self.own_pos };
        // SAFETY: as for `other_pos`.
        let own_slot = unsafe { &*self.own_slot };
        own_pos.store(pos, pos_order);
        // Relaxed: a recovery copy for the next holder of the claim, ordered by the claim.
        own_slot.store(slot, Ordering::Relaxed);
    }

    /// The object in slot `slot`.
    pub fn at(&self, slot: u64) -> *mut T {
        debug_assert!(slot < self.shape.slots);
        // SAFETY: `slot < slots` (checked by the protocol on every swap and at the claim), so
        // the pointer stays inside the channel's buffer of `slots * stride` bytes.
        unsafe { self.slots.add(slot as usize * self.stride).cast::<T>() }
    }

    /// Turns a bad word into the handle's error and poisons the handle.
    #[cold]
    pub fn corrupt(&mut self, b: BadWord) -> DataError {
        self.ch.corrupt(b)
    }
}

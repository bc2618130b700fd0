//! What the handles of both ends of a queue, and its observers, share: the protocol's words
//! and the slots ([`Ring`]), and for the ends, the claim.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::AtomicU64;

use super::protocol::Words;
use crate::error::{DataError, Result};
use crate::layout::{queue_ctrl, ChannelKind, End};
use crate::schema::Object;
use crate::segment::claim::{Found, Use};
use crate::segment::{ChannelRef, EndHandle, Segment};
use crate::sync::BadWord;

/// The protocol's words and the slots of a queue, without a claim.
pub(crate) struct Ring {
    /// The protocol's words, made once: the ring (per cell, a position word and a state
    /// word), one header word per slot, the producer's line (head, record), the consumer's
    /// (pending, record) and its tail. Never handed out with this lifetime: see
    /// [`Ring::words`].
    words: Words<'static>,
    slots: *mut u8,
    stride: usize,
    /// How many messages the ring holds.
    pub capacity: u64,
}

impl Ring {
    /// The words and slots of queue `ch`.
    pub fn new(ch: &ChannelRef) -> Ring {
        let slot_count = u64::from(ch.info.slot_count);
        let capacity = slot_count - 2;
        let ctrl = ch.ctrl();
        let first_header = queue_ctrl::line_headers(capacity, ch.cache_line);
        let mapped = |words: &[AtomicU64]| -> &'static [AtomicU64] {
            // SAFETY: the words lie in the mapping (checked by `words_from`), which the owner
            // of the ring keeps alive as long as the ring: every handle and observer holds the
            // channel, and with it the mapping, beside its ring. The `'static` never leaves
            // the ring: `words` hands the words out borrowed from it.
            unsafe { &*std::ptr::from_ref(words) }
        };
        let cells = mapped(ctrl.words_from(queue_ctrl::LINE_CELLS, 2 * capacity));
        let headers = mapped(ctrl.words_from(first_header, slot_count));
        let producer = mapped(ctrl.words_from(queue_ctrl::LINE_PRODUCER, 2));
        let consumer = mapped(ctrl.words_from(queue_ctrl::LINE_CONSUMER, 2));
        let tail = mapped(std::slice::from_ref(ctrl.word(queue_ctrl::LINE_TAIL, 0)));
        Ring {
            words: Words {
                cells,
                headers,
                head: &producer[0],
                producer: &producer[1],
                tail: &tail[0],
                pending: &consumer[0],
                consumer: &consumer[1],
            },
            slots: ch.slot(0),
            stride: ch.info.slot_stride as usize,
            capacity,
        }
    }

    /// The protocol's words, borrowed from the ring (so never longer than its owner keeps the
    /// mapping).
    #[inline]
    pub fn words(&self) -> &Words<'_> {
        &self.words
    }

    /// The start of slot `slot`.
    #[inline]
    pub fn slot(&self, slot: u64) -> *mut u8 {
        // The protocol checks every index it reads; the `min` spares a panic path.
        let slot = slot.min(self.capacity + 1) as usize;
        // SAFETY: `slot < slots`, so the pointer stays inside the channel's buffer of
        // `slots * stride` bytes.
        unsafe { self.slots.add(slot * self.stride) }
    }
}

/// A claimed end of a queue.
pub(super) struct Channel<T> {
    pub ch: EndHandle,
    ring: Ring,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl<T> Send for Channel<T> {}

impl<T> Deref for Channel<T> {
    type Target = Ring;
    fn deref(&self) -> &Ring {
        &self.ring
    }
}

impl Channel<u8> {
    /// Claims `end` of queue `name` for a handle that moves its message as bytes; returns the
    /// message's size (the queue carries exactly one object, at offset 0).
    pub fn claim_raw(seg: &Segment, name: &str, end: End) -> Result<(Channel<u8>, usize)> {
        let ch = seg.channel(name, ChannelKind::Queue, end)?;
        let (_, size) = ch.only_object()?;
        Ok((Channel::of(ch.claim_end(end)?), size as usize))
    }
}

impl<T: Object> Channel<T> {
    /// Claims `end` of queue `name` and checks `T` for `usage` (see [`Use`]); returns the
    /// object as found.
    pub fn claim(seg: &Segment, name: &str, end: End, usage: Use) -> Result<(Channel<T>, Found)> {
        let ch = seg.channel(name, ChannelKind::Queue, end)?;
        // The layout allows exactly one object in a queue, at offset 0.
        let found = ch.object_for::<T>(usage)?;
        Ok((Channel::of(ch.claim_end(end)?), found))
    }

    /// The object in slot `slot`.
    #[inline]
    pub fn at(&self, slot: u64) -> *mut T {
        self.ring.slot(slot).cast::<T>()
    }
}

impl<T> Channel<T> {
    /// The claimed end `ch` of a queue, with its ring.
    fn of(ch: EndHandle) -> Channel<T> {
        Channel {
            ring: Ring::new(&ch),
            ch,
            _t: PhantomData,
        }
    }

    /// Turns a bad word into the handle's error and poisons the handle.
    #[cold]
    pub fn corrupt(&mut self, b: BadWord) -> DataError {
        self.ch.corrupt(b)
    }
}

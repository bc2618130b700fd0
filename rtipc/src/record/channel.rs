//! What both ends of a record channel share: the protocol's words, the ring, its geometry and
//! the claim.

use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;

use super::protocol::{Geometry, Words};
use crate::error::{DataError, Result};
use crate::layout::{record_align, record_ctrl, ChannelKind, End};
use crate::schema::Object;
use crate::segment::claim::{Found, Use};
use crate::segment::{EndHandle, Segment};
use crate::sync::BadWord;

/// A claimed end of a record channel.
pub(super) struct Channel<T> {
    pub ch: EndHandle,
    /// The ring: `capacity` bytes, cache-line aligned.
    ring: *mut u8,
    /// The producer's line (tail, seq, next) and the consumer's (head, reading, taken).
    producer: *const AtomicU64,
    consumer: *const AtomicU64,
    pub g: Geometry,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl<T> Send for Channel<T> {}

impl<T: Object> Channel<T> {
    /// Claims `end` of record channel `name` and checks `T` for `usage`. The ring's geometry
    /// is the segment's element's: `T`'s own for the handles that work in place (which need
    /// the exact layout), another revision's for the copying ones.
    pub fn claim(seg: &Segment, name: &str, end: End, usage: Use) -> Result<(Channel<T>, Found)> {
        let ch = seg.channel(name, ChannelKind::Record, end)?;
        // The layout allows exactly one element type, at offset 0.
        let found = ch.object_for::<T>(usage)?;
        let ch = ch.claim_end(end)?;
        Ok((Channel::with(ch, found.size, found.align), found))
    }
}

impl Channel<u8> {
    /// Claims `end` of record channel `name` for a raw handle, which moves the segment's
    /// elements as bytes whatever their type: the geometry is the segment's element's.
    pub fn claim_raw(seg: &Segment, name: &str, end: End) -> Result<Channel<u8>> {
        let ch = seg.channel(name, ChannelKind::Record, end)?;
        ch.only_object()?;
        let (size, align) = match ch.info.objects.first() {
            Some(o) => (o.size, o.align),
            None => (1, 1),
        };
        Ok(Channel::with(ch.claim_end(end)?, size, align))
    }
}

impl<T> Channel<T> {
    /// The claimed end `ch` of a record channel whose element has `elem` bytes aligned to
    /// `elem_align`, with its ring's geometry.
    fn with(ch: EndHandle, elem: u64, elem_align: u64) -> Channel<T> {
        // The parser checked the ring against the segment's element: a multiple of the cache
        // line and of two record blocks, room for two records of one element.
        let capacity = ch.info.slot_stride;
        let align = record_align(elem_align);
        let g = Geometry {
            capacity,
            align,
            elem,
            max_len: (capacity / 2 - align) / elem,
        };
        let ctrl = ch.ctrl();
        let producer = ctrl.words_from(record_ctrl::LINE_PRODUCER, 3).as_ptr();
        let consumer = ctrl.words_from(record_ctrl::LINE_CONSUMER, 3).as_ptr();
        Channel {
            ring: ch.slot(0),
            producer,
            consumer,
            g,
            ch,
            _t: PhantomData,
        }
    }

    /// The `len` bytes at byte `offset` of the ring, for a copying handle: an element of the
    /// segment's revision. Bounded to the ring whatever is asked.
    #[inline]
    pub fn bytes(&self, offset: u64, len: u64) -> (*mut u8, usize) {
        let offset = offset.min(self.g.capacity);
        let len = len.min(self.g.capacity - offset);
        // SAFETY: `offset <= capacity`, so the pointer stays inside (or one past) the ring.
        (unsafe { self.ring.add(offset as usize) }, len as usize)
    }

    /// The protocol's words.
    #[inline]
    pub fn words(&self) -> Words<'_> {
        let n = |ptr: *const AtomicU64, len: u64| {
            // SAFETY: each pointer starts `len` 8-aligned words inside the mapping that `ch`
            // keeps alive (the control block's lines, checked by `words_from`, or the ring of
            // `capacity` bytes, a multiple of the cache line), only accessed atomically here.
            unsafe { std::slice::from_raw_parts(ptr, len as usize) }
        };
        let (p, c) = (n(self.producer, 3), n(self.consumer, 3));
        Words {
            ring: n(self.ring.cast::<AtomicU64>(), self.g.capacity / 8),
            tail: &p[0],
            seq: &p[1],
            next: &p[2],
            head: &c[0],
            reading: &c[1],
            taken: &c[2],
        }
    }

    /// The `len` elements whose payload starts at byte `offset` of the ring.
    ///
    /// The caller passes an offset and length that the protocol produced: `offset` a multiple
    /// of the record alignment, and `offset + len * size_of::<T>()` within the ring.
    #[inline]
    pub fn elements(&self, offset: u64, len: u64) -> *mut [T] {
        // The protocol bounds both; the `min`s spare a panic path and keep the slice in the
        // ring whatever happens.
        let offset = offset.min(self.g.capacity);
        let len = len.min((self.g.capacity - offset) / self.g.elem);
        // SAFETY: `offset <= capacity`, so the pointer stays inside (or one past) the ring.
        let start = unsafe { self.ring.add(offset as usize) };
        std::ptr::slice_from_raw_parts_mut(start.cast::<T>(), len as usize)
    }

    /// Turns a bad word into the handle's error and poisons the handle.
    #[cold]
    pub fn corrupt(&mut self, b: BadWord) -> DataError {
        self.ch.corrupt(b)
    }
}

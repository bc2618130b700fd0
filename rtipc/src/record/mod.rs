//! Record channels: variable-size records `[T]` of one element type, allocated in place in a
//! byte ring that belongs to the channel.
//!
//! The producer reserves a record of `n` elements ([`RecordProducer::try_reserve`], or
//! [`RecordProducer::reserve_overwrite`], which drops the oldest records to make room), writes
//! it in place and commits it ([`RecordMut::commit`]); dropping the reservation without a
//! commit abandons it. The consumer pops records in order ([`RecordConsumer::pop`]), reads
//! each in place and gives it back by dropping its view ([`RecordRef`]); it learns from
//! [`RecordRef::missed`] how many records the producer dropped before it.
//!
//! A ring of `R` bytes holds records of up to `R / 2` bytes, each with a header block of 16
//! bytes (or the element's alignment, if larger) and its payload rounded up to it; a record
//! that would cross the end of the ring is preceded by a padding record up to the end. Both
//! sides are wait-free: no lock, no system call (except a wake-up for a waiting consumer), a
//! bounded number of steps. Every header the consumer reads is checked (length, place in the
//! ring, sequence number) before use; see `record/protocol.rs` for the protocol.

pub(crate) mod protocol;

#[cfg(not(loom))]
mod channel;
#[cfg(not(loom))]
mod consumer;
#[cfg(not(loom))]
mod producer;

#[cfg(not(loom))]
pub use self::{
    consumer::{
        CopiedRecord, RawRecord, RawRecordConsumer, RecordConsumer, RecordCopier, RecordRef,
    },
    producer::{RawRecordProducer, RecordMut, RecordProducer, RecordSender},
};

/// What the producer has committed (the last sequence number) and what the consumer has
/// taken, read now with relaxed loads, for the inspector: a snapshot, consistent per word.
#[cfg(not(loom))]
pub(crate) fn progress(ch: &crate::segment::ChannelRef) -> (u64, u64) {
    use crate::layout::record_ctrl;
    use std::sync::atomic::Ordering;
    let ctrl = ch.ctrl();
    // Relaxed: a report, not a decision.
    (
        ctrl.word(record_ctrl::LINE_PRODUCER, 1)
            .load(Ordering::Relaxed)
            & !protocol::COMMITTING,
        ctrl.word(record_ctrl::LINE_CONSUMER, 2)
            .load(Ordering::Relaxed),
    )
}

#[cfg(not(loom))]
mod declare {
    use std::sync::atomic::Ordering;

    use super::protocol::NONE;
    use crate::layout::{record_ctrl, ChannelKind, ChannelSpec, Ctrl, Direction};
    use crate::schema::Object;
    use crate::segment::SegmentBuilder;

    /// A fresh record channel: positions and sequence numbers at zero (the common lines start
    /// zeroed), and no record held.
    fn init(ctrl: Ctrl<'_>, _: u32) {
        // Relaxed: the segment is not visible to any other process until it is published (the
        // ready word, stored with release after this).
        ctrl.word(record_ctrl::LINE_CONSUMER, 1)
            .store(NONE, Ordering::Relaxed);
    }

    impl ChannelSpec {
        /// A record channel called `name` whose ring holds `ring_bytes` bytes (rounded up to a
        /// whole number of pairs of cache lines, at most
        /// [`MAX_RECORD_RING`](crate::layout::MAX_RECORD_RING)), carrying records of one
        /// element type added with [`ChannelSpec::object`]. The longest record takes half the
        /// ring, less its 16-byte header: a 4 MiB ring carries records of up to 2 MiB.
        pub fn record(
            name: impl Into<String>,
            direction: Direction,
            ring_bytes: u64,
        ) -> ChannelSpec {
            let mut spec = ChannelSpec::new(name.into(), ChannelKind::Record, direction, 1, init);
            spec.ring = ring_bytes;
            spec
        }
    }

    impl SegmentBuilder {
        /// Declares a record channel of elements `T` with a ring of `ring_bytes` bytes (see
        /// [`ChannelSpec::record`]); follow it with [`notify(true)`](SegmentBuilder::notify)
        /// to let its consumer wait.
        pub fn record<T: Object>(
            self,
            name: impl Into<String>,
            direction: Direction,
            ring_bytes: u64,
        ) -> Self {
            self.channel(ChannelSpec::record(name, direction, ring_bytes).object::<T>())
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

//! Queue channels: fixed-size messages of one object type, in order, written and read in place.
//!
//! A queue of capacity `N` holds up to `N` unread messages. The producer writes the next
//! message in place ([`QueueProducer::write`]) and pushes it: [`MessageMut::force_push`] never
//! fails and overwrites the oldest unread message when the queue is full;
//! [`MessageMut::try_push`] refuses when full. The consumer's [`QueueConsumer::pop`] gives an
//! in-place view of the oldest unread message, valid until its next pop, with the number of
//! messages missed since the previous pop; [`QueueConsumer::latest`] jumps to the newest.
//!
//! Both sides are wait-free: a push is at most one load and one atomic swap, a pop at most
//! three loads and one swap. No allocation, no system call, and the producer never writes a
//! slot the consumer holds (see the protocol's description in `queue/protocol.rs`). Every word
//! read from shared memory is validated on every push and pop.

pub(crate) mod protocol;

#[cfg(not(loom))]
pub(crate) mod channel;
#[cfg(not(loom))]
mod consumer;
#[cfg(not(loom))]
mod producer;

#[cfg(not(loom))]
pub use self::{
    consumer::{MessageRef, QueueConsumer, QueueCopier, RawMessage, RawQueueConsumer},
    producer::{MessageMut, QueueProducer, RawQueueProducer},
};

#[cfg(not(loom))]
mod declare {
    use std::sync::atomic::Ordering;

    use super::protocol;
    use crate::layout::{queue_ctrl, ChannelKind, ChannelSpec, Ctrl, Direction};
    use crate::schema::Object;
    use crate::segment::SegmentBuilder;

    /// Writes a fresh queue's words (see [`protocol::initial_cell`] and
    /// [`protocol::initial_records`]); positions and headers start at zero.
    fn init(ctrl: Ctrl<'_>, slots: u32) {
        let capacity = u64::from(slots) - 2;
        // Relaxed: the segment is not visible to any other process until it is published (the
        // ready word, stored with release after this).
        let cells = ctrl.words_from(queue_ctrl::LINE_CELLS, 2 * capacity);
        for (i, cell) in cells.chunks_exact(2).enumerate() {
            let (pos, state) = protocol::initial_cell(i as u64, capacity);
            cell[0].store(pos, Ordering::Relaxed);
            cell[1].store(state, Ordering::Relaxed);
        }
        let (producer, consumer) = protocol::initial_records(capacity);
        ctrl.word(queue_ctrl::LINE_PRODUCER, 1)
            .store(producer, Ordering::Relaxed);
        ctrl.word(queue_ctrl::LINE_CONSUMER, 1)
            .store(consumer, Ordering::Relaxed);
        let first = queue_ctrl::line_headers(capacity, ctrl.cache_line());
        for header in ctrl.words_from(first, capacity + 2) {
            header.store(protocol::NO_MESSAGE, Ordering::Relaxed);
        }
    }

    impl ChannelSpec {
        /// A queue channel called `name` holding up to `capacity` unread messages (1 to 2^20)
        /// of one object type, added with [`ChannelSpec::object`].
        pub fn queue(name: impl Into<String>, direction: Direction, capacity: u32) -> ChannelSpec {
            // Two more slots than the capacity: the producer's and the consumer's.
            ChannelSpec::new(
                name.into(),
                ChannelKind::Queue,
                direction,
                capacity.saturating_add(2),
                init,
            )
        }
    }

    impl SegmentBuilder {
        /// Declares a queue channel of `capacity` messages of type `T`; follow it with
        /// [`notify(true)`](SegmentBuilder::notify) to let its consumer wait.
        pub fn queue<T: Object>(
            self,
            name: impl Into<String>,
            direction: Direction,
            capacity: u32,
        ) -> Self {
            self.channel(ChannelSpec::queue(name, direction, capacity).object::<T>())
        }
    }
}

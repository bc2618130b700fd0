//! State channels: the newest value of one or more objects, triple buffered.
//!
//! The producer writes in place into its back slot and publishes with one atomic swap; the
//! consumer fetches the newest slot with one atomic swap (only when there is something new)
//! and reads it in place. Neither side waits for the other, allocates or makes a system call.
//!
//! * [`StateProducer<T>`] / [`StateConsumer<T>`]: one object per handle, the common case.
//! * [`MultiStateProducer`] / [`MultiStateConsumer`]: the whole channel, with typed
//!   [`ObjectKey`]s for any subset of its objects (the object mapper).
//!
//! Every index word read from shared memory is checked on every publish and fetch; a word that
//! breaks the protocol is a [`DataError`](crate::DataError) and the handle refuses further use,
//! never an out-of-bounds access. The protocol, its recovery and its model check are in
//! `protocol.rs`; this folder's other files map memory and call it.

pub(crate) mod protocol;

#[cfg(not(loom))]
mod channel;
#[cfg(not(loom))]
mod consumer;
#[cfg(not(loom))]
mod multi;
#[cfg(not(loom))]
mod producer;

#[cfg(not(loom))]
pub use self::{
    consumer::{StateConsumer, StateRef},
    multi::{MultiStateConsumer, MultiStateMut, MultiStateProducer, MultiStateRef, ObjectKey},
    producer::{StateMut, StateProducer},
};

#[cfg(not(loom))]
mod declare {
    use std::sync::atomic::Ordering;

    use super::protocol;
    use crate::layout::{state_ctrl, ChannelKind, ChannelSpec, Ctrl, Direction};
    use crate::schema::Object;
    use crate::segment::SegmentBuilder;

    /// Writes a fresh state channel's state word (see [`protocol::initial_word`]); the slots'
    /// sequence words start at zero.
    fn init(ctrl: Ctrl<'_>, _slots: u32) {
        // Relaxed: the segment is not visible to any other process until it is published (the
        // ready word, stored with release after this).
        ctrl.word(state_ctrl::LINE_STATE, 0)
            .store(protocol::initial_word(), Ordering::Relaxed);
    }

    impl ChannelSpec {
        /// A state channel (latest value, triple buffered) called `name`. Add its objects with
        /// [`ChannelSpec::object`].
        pub fn state(name: impl Into<String>, direction: Direction) -> ChannelSpec {
            ChannelSpec::new(
                name.into(),
                ChannelKind::State,
                direction,
                state_ctrl::SLOTS,
                init,
            )
        }
    }

    impl SegmentBuilder {
        /// Declares a state channel carrying one object of type `T`; follow it with
        /// [`notify(true)`](SegmentBuilder::notify) to let its consumer wait.
        pub fn state<T: Object>(self, name: impl Into<String>, direction: Direction) -> Self {
            self.channel(ChannelSpec::state(name, direction).object::<T>())
        }
    }
}

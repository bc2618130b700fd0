//! State channels: the newest value of one or more objects, triple buffered, or with `N`
//! consumers in `N + 2` slots (fan-out).
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
pub(crate) mod channel;
#[cfg(not(loom))]
mod consumer;
#[cfg(not(loom))]
mod multi;
#[cfg(not(loom))]
mod producer;

#[cfg(not(loom))]
pub use self::{
    consumer::{Copied, StateConsumer, StateCopier, StateRef},
    multi::{MultiStateConsumer, MultiStateMut, MultiStateProducer, MultiStateRef, ObjectKey},
    producer::{RawStateProducer, StateMut, StateProducer},
};

#[cfg(not(loom))]
mod declare {
    use std::sync::atomic::Ordering;

    use super::protocol;
    use crate::layout::{fanout_ctrl, state_ctrl, ChannelKind, ChannelSpec, Ctrl, Direction};
    use crate::schema::Object;
    use crate::segment::SegmentBuilder;

    /// Writes a fresh state channel's initial words: the triple buffer's state word (see
    /// [`protocol::initial_word`]), or the fan-out latest word and an empty table; sequence
    /// words start at zero.
    fn init(ctrl: Ctrl<'_>, slots: u32) {
        // Relaxed: the segment is not visible to any other process until it is published (the
        // ready word, stored with release after this).
        if slots == state_ctrl::SLOTS {
            ctrl.word(state_ctrl::LINE_STATE, 0)
                .store(protocol::initial_word(), Ordering::Relaxed);
            return;
        }
        let n = u64::from(slots) - 2;
        ctrl.word(fanout_ctrl::LINE_LATEST, 0)
            .store(protocol::fanout::initial_latest(), Ordering::Relaxed);
        let words = ctrl.words_from(fanout_ctrl::LINE_WORDS, 2 * n + 2);
        for entry in &words[(n + 2) as usize..] {
            entry.store(protocol::fanout::NONE, Ordering::Relaxed);
        }
    }

    impl ChannelSpec {
        /// A state channel (latest value) called `name`, with one consumer end (triple
        /// buffered); [`ChannelSpec::consumers`] gives it more. Add its objects with
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

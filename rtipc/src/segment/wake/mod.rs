//! Each notify-enabled channel's wake-up mechanism: the `waiting` word in its control block and,
//! in anonymous segments, its eventfd. The producer rings a [`Doorbell`] after each publish (a
//! fence and a load unless the consumer waits); the consumer sleeps on a [`Bell`].
//!
//! The handshake on the `waiting` word is in `protocol.rs` (loom-checked); the public face of
//! waiting, the [`Wait`](crate::notify::Wait) trait and `Pollable`, is in
//! [`notify`](crate::notify).

pub(crate) mod protocol;

#[cfg(not(loom))]
mod bell;

#[cfg(not(loom))]
pub(crate) use bell::{Bell, Doorbell};

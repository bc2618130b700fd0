//! Wake-ups: a consumer that blocks until data arrives, without a system call on the
//! producer's fast path.
//!
//! Notification is chosen per channel when the segment is created, with
//! [`ChannelSpec::notify`](crate::ChannelSpec::notify). A consumer of such a channel can then
//!
//! * block in `wait(timeout)` (on [`StateConsumer`](crate::StateConsumer),
//!   [`MultiStateConsumer`](crate::MultiStateConsumer), [`QueueConsumer`](crate::QueueConsumer),
//!   or through the [`Wait`] trait) until there is something to fetch or pop, or
//! * plug the channel into an event loop (poll, epoll, mio, tokio's `AsyncFd`): call
//!   [`Wait::arm`] before each wait and wait for the fd of a [`Pollable`] to become readable.
//!
//! The producer makes a wake-up system call only when the consumer has announced that it is
//! waiting: a publish with nobody waiting costs one fence and one load of a word that stays in
//! the producer's cache. The protocol and the reason no wake-up is ever lost are in
//! `segment/wake/protocol.rs`; it is model-checked with loom, alone and together with each
//! channel kind's protocol (`notify/models.rs`).
//!
//! # Mechanisms
//!
//! * **Named segments** wake with a futex on a word in the segment (`FUTEX_WAIT` /
//!   `FUTEX_WAKE`, not process-private, so it works across processes). There is no file
//!   descriptor to poll: [`Pollable::new`] and [`Wait::arm`] fail with
//!   [`Error::NoEventFd`](crate::Error::NoEventFd), `wait` works.
//! * **Anonymous segments** wake with an eventfd per notify-enabled channel, created with the
//!   segment (`EFD_CLOEXEC | EFD_NONBLOCK`) and handed to the peer together with the memfd
//!   ([`Segment::event_fds`](crate::Segment::event_fds) on the creator,
//!   [`Segment::from_fds`](crate::Segment::from_fds) on the peer, or the
//!   [`handshake`](crate::handshake), which does both). Both `wait` and polling work.
//!
//! # Layout
//!
//! A notify-enabled channel's table entry has bit 0 of `notify` set. The control block
//! reserves a line for notification (line 1 of every kind's): the
//! 32-bit `waiting` word at offset 0 of that line (0: nobody waits, 1: the consumer sleeps on the futex, 2: the consumer polls
//! the eventfd). The consumer writes it to announce, the producer swaps it back to 0 when it
//! wakes the consumer; both only on the slow path.
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! use rtipc::{ChannelSpec, Direction, Object, Segment, StateConsumer, StateProducer};
//!
//! #[derive(Object)]
//! #[repr(C)]
//! struct Tick { n: u64 }
//!
//! let seg = Segment::builder()
//!     .channel(ChannelSpec::state("tick", Direction::CreatorToPeer).object::<Tick>().notify(true))
//!     .create_anonymous()?;
//! let mut tx = StateProducer::<Tick>::new(&seg, "tick")?;
//!
//! // The peer (normally another process) attaches with the memfd and the eventfds.
//! let dup = |fd: std::os::fd::BorrowedFd| fd.try_clone_to_owned().unwrap();
//! let peer = Segment::from_fds(dup(seg.as_fd()), seg.event_fds().into_iter().map(dup).collect())?;
//! let mut rx = StateConsumer::<Tick>::new(&peer, "tick")?;
//! assert!(!rx.wait(Some(Duration::from_millis(1)))?, "nothing yet: times out");
//! tx.publish_copy(&Tick { n: 1 })?;
//! assert!(rx.wait(Some(Duration::from_secs(1)))?, "data: returns at once");
//! assert_eq!(rx.fetch()?.unwrap().n, 1);
//! # Ok::<(), rtipc::Error>(())
//! ```

#[cfg(all(test, loom))]
mod models;

#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use wait::{Pollable, Wait};

//! Wake-ups: a consumer that blocks until data arrives, without a system call on the
//! producer's fast path.
//!
//! Notification is chosen per channel when the segment is created, with
//! [`ChannelSpec::notify`](crate::ChannelSpec::notify). A consumer of such a channel can then
//!
//! * block in `wait(timeout)` (on [`StateConsumer`](crate::StateConsumer),
//!   [`StateReader`](crate::StateReader), [`QueueConsumer`](crate::QueueConsumer), or through
//!   the [`Wait`] trait) until there is something to fetch or pop, or
//! * plug the channel into an event loop (poll, epoll, mio, tokio's `AsyncFd`): call
//!   [`Wait::arm`] before each wait and wait for the fd of a [`Pollable`] to become readable.
//!
//! The producer makes a wake-up system call only when the consumer has announced that it is
//! waiting: a publish with nobody waiting costs one fence and one load of a word that stays in
//! the producer's cache. The protocol and the reason no wake-up is ever lost are in
//! `notify/protocol.rs`; it is model-checked with loom.
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
//! reserves a line for notification (line 4 of a state channel's, line 3 of a queue's): the
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

pub(crate) mod protocol;

#[cfg(not(loom))]
pub(crate) use imp::{check_eventfd, new_eventfd, Notifier, Sealed, Waiter};
#[cfg(not(loom))]
pub use imp::{Pollable, Wait};

#[cfg(not(loom))]
mod imp {
    use std::io;
    use std::ops::{Deref, DerefMut};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::protocol::{self, Slept, EVENTFD, FUTEX};
    use crate::error::{Error, Result};
    use crate::segment::{ChannelRef, Mapping};

    /// Creates the eventfd of one notify-enabled channel.
    pub(crate) fn new_eventfd() -> Result<OwnedFd> {
        // SAFETY: eventfd with valid flags returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::last_os("creating eventfd"));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// Checks that `fd`, received from a peer, really is an eventfd, and makes it
    /// non-blocking (a blocking one would hang the drain before each wait).
    pub(crate) fn check_eventfd(fd: &OwnedFd, index: usize) -> Result<()> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| Error::io("checking an eventfd in /proc/self/fd", e))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(Error::InvalidArgument(format!(
                "file descriptor {index} of the notify-enabled channels is not an eventfd \
                 ({})",
                link.display()
            )));
        }
        // SAFETY: fcntl on a valid descriptor with integer arguments.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 {
            return Err(Error::last_os("reading an eventfd's flags"));
        }
        // SAFETY: as above.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
        if r < 0 {
            return Err(Error::last_os("making an eventfd non-blocking"));
        }
        Ok(())
    }

    /// Adds 1 to an eventfd's counter. Cannot block (the fd is non-blocking); a full counter
    /// (`EAGAIN`, after 2^64 - 2 unread wake-ups) is already readable, so the error is moot.
    fn eventfd_write(fd: &OwnedFd) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to a valid descriptor.
        unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Empties an eventfd so that it is readable again only after a new write.
    fn eventfd_drain(fd: &OwnedFd) -> Result<()> {
        let mut buf = [0u8; 8];
        // One read empties a normal eventfd; a semaphore-mode one (which a peer could have
        // sent) needs one per count: bounded, since a leftover count only costs a spurious
        // wake-up.
        for _ in 0..64 {
            // SAFETY: reads at most 8 bytes into a live buffer from a valid descriptor.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    Some(libc::EINTR) => continue,
                    _ => Err(Error::io("reading eventfd", e)),
                };
            }
        }
        Ok(())
    }

    fn timespec(d: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    }

    /// Sleeps until `fd` is readable, `deadline` passes, or a signal arrives.
    fn poll_readable(fd: &OwnedFd, deadline: Option<Instant>) -> Result<Slept> {
        let ts = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                None => return Ok(Slept::TimedOut),
                Some(left) if left.is_zero() => return Ok(Slept::TimedOut),
                Some(left) => Some(timespec(left)),
            },
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: one valid pollfd; `tsp` is null or points to a live timespec.
        let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(Slept::Woken);
            }
            return Err(Error::io("polling eventfd", e));
        }
        Ok(if r == 0 {
            Slept::TimedOut
        } else {
            Slept::Woken
        })
    }

    /// `FUTEX_WAIT` on `word` while it holds `expected`, until woken or `deadline`.
    fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Result<Slept> {
        let ts = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                None => return Ok(Slept::TimedOut),
                Some(left) if left.is_zero() => return Ok(Slept::TimedOut),
                Some(left) => Some(timespec(left)),
            },
        };
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `word` is a live, 4-aligned 32-bit word (in a shared mapping, hence no
        // FUTEX_PRIVATE_FLAG); the timeout is null or a live relative timespec.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                tsp,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ETIMEDOUT) => Ok(Slept::TimedOut),
                // EAGAIN: the word changed before we slept (the producer took the
                // announcement); EINTR: a signal. Both: look again.
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(Slept::Woken),
                _ => Err(Error::io("waiting on futex", e)),
            };
        }
        Ok(Slept::Woken)
    }

    fn futex_wake(word: &AtomicU32) {
        // SAFETY: `word` is a live, 4-aligned 32-bit word in a shared mapping. The result is
        // the number of waiters woken; no error is possible for a valid address.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            )
        };
    }

    /// The notification state of one end of a channel: the `waiting` word and, for anonymous
    /// segments, the channel's eventfd.
    struct Shared {
        map: Arc<Mapping>,
        word: u64,
        eventfd: Option<Arc<OwnedFd>>,
    }

    impl Shared {
        fn new(ch: &ChannelRef, word: u64) -> Option<Shared> {
            ch.info.notify.then(|| Shared {
                map: Arc::clone(&ch.map),
                word,
                eventfd: ch.eventfd.clone(),
            })
        }

        fn waiting(&self) -> &AtomicU32 {
            self.map.atomic_u32(self.word)
        }
    }

    /// The producer's side: wakes the consumer after a publish, if it waits.
    pub(crate) struct Notifier {
        shared: Shared,
    }

    impl Notifier {
        /// The notifier of channel `ch`, whose `waiting` word is at offset `word`; `None` if
        /// the channel was created without notification.
        pub(crate) fn new(ch: &ChannelRef, word: u64) -> Option<Notifier> {
            Shared::new(ch, word).map(|shared| Notifier { shared })
        }

        /// Call after every publish: one fence and one load unless the consumer waits.
        #[inline]
        pub(crate) fn notify(&self) {
            let how = protocol::after_publish(self.shared.waiting());
            if how != 0 {
                self.wake(how);
            }
        }

        #[cold]
        fn wake(&self, how: u32) {
            if how & FUTEX != 0 {
                futex_wake(self.shared.waiting());
            }
            if how & EVENTFD != 0 {
                if let Some(fd) = &self.shared.eventfd {
                    eventfd_write(fd);
                }
            }
        }
    }

    /// The consumer's side: announces, sleeps, and exposes the eventfd.
    pub(crate) struct Waiter {
        shared: Shared,
    }

    impl Waiter {
        /// The waiter of channel `ch`, whose `waiting` word is at offset `word`; `None` if the
        /// channel was created without notification.
        pub(crate) fn new(ch: &ChannelRef, word: u64) -> Option<Waiter> {
            Shared::new(ch, word).map(|shared| Waiter { shared })
        }

        /// Blocks until `has_data` holds (true) or `timeout` passes (false).
        pub(crate) fn wait(
            &self,
            has_data: impl Fn() -> bool,
            timeout: Option<Duration>,
        ) -> Result<bool> {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            if timeout.is_some() && deadline.is_none() {
                // A timeout too far in the future to represent: wait without one.
                return self.wait(has_data, None);
            }
            let word = self.shared.waiting();
            match &self.shared.eventfd {
                Some(fd) => protocol::wait(
                    word,
                    EVENTFD,
                    has_data,
                    || eventfd_drain(fd),
                    |_| poll_readable(fd, deadline),
                ),
                None => protocol::wait(
                    word,
                    FUTEX,
                    has_data,
                    || Ok(()),
                    |how| futex_wait(word, how, deadline),
                ),
            }
        }

        /// Drains the eventfd and announces that the consumer waits on it; true (and no
        /// announcement) if `has_data` already holds.
        pub(crate) fn arm(&self, has_data: impl Fn() -> bool, channel: &str) -> Result<bool> {
            let Some(fd) = &self.shared.eventfd else {
                return Err(Error::NoEventFd {
                    channel: channel.to_owned(),
                });
            };
            if has_data() {
                return Ok(true);
            }
            eventfd_drain(fd)?;
            Ok(protocol::announce(self.shared.waiting(), EVENTFD, has_data))
        }

        pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
            self.shared.eventfd.as_deref().map(AsFd::as_fd)
        }
    }

    mod sealed {
        pub trait Sealed {
            /// The channel's name, for errors.
            fn channel_name(&self) -> &str;
        }
    }
    pub(crate) use sealed::Sealed;

    /// A consumer that can wait for data: implemented by the consuming handles of every
    /// channel kind. Sealed: only rtipc implements it.
    ///
    /// Waiting needs a channel created with
    /// [`ChannelSpec::notify`](crate::ChannelSpec::notify); on any other channel these
    /// methods fail with [`Error::NotifyDisabled`].
    pub trait Wait: Sealed {
        /// Blocks until there is data the consumer has not fetched yet (`Ok(true)`) or
        /// `timeout` has passed (`Ok(false)`; `None` waits without limit). Returns at once if
        /// there already is data. Uses the channel's eventfd in an anonymous segment and a
        /// futex in a named one.
        fn wait(&mut self, timeout: Option<Duration>) -> Result<bool>;

        /// Prepares an external wait on the fd of a [`Pollable`]: returns `Ok(true)` if there
        /// is data to fetch now; otherwise drains the eventfd, announces the wait to the
        /// producer and returns `Ok(false)`: the fd becomes readable when the producer
        /// publishes next. Call it before every wait, after fetching; a readable fd without
        /// data (a wake-up left over from an earlier announcement) is harmless.
        ///
        /// Fails with [`Error::NoEventFd`] in a named segment.
        fn arm(&mut self) -> Result<bool>;

        /// The channel's eventfd, if it has one (anonymous segments).
        fn wait_fd(&self) -> Option<BorrowedFd<'_>>;
    }

    /// A consumer with a file descriptor for event loops: readable once the producer publishes
    /// after [`Wait::arm`]. Implements [`AsFd`] and [`AsRawFd`], so it goes straight into
    /// `poll`, epoll, mio or tokio's `AsyncFd`, and derefs to the consumer.
    ///
    /// The descriptor is a duplicate of the channel's eventfd that the `Pollable` owns: it
    /// stays open, and [`AsRawFd::as_raw_fd`] returns the same number, for as long as the
    /// `Pollable` lives (what tokio's `AsyncFd::register` asks of its caller).
    ///
    /// ```
    /// use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    /// use rtipc::notify::Pollable;
    /// use rtipc::{ChannelSpec, Direction, Object, Segment, StateConsumer, StateProducer};
    ///
    /// #[derive(Object)]
    /// #[repr(C)]
    /// struct Tick { n: u64 }
    ///
    /// let seg = Segment::builder()
    ///     .channel(ChannelSpec::state("tick", Direction::PeerToCreator).object::<Tick>().notify(true))
    ///     .create_anonymous()?;
    /// let mut rx = Pollable::new(StateConsumer::<Tick>::new(&seg, "tick")?)?;
    ///
    /// // The producing peer, normally another process.
    /// let dup = |fd: BorrowedFd| fd.try_clone_to_owned().unwrap();
    /// let peer = Segment::from_fds(dup(seg.as_fd()), seg.event_fds().into_iter().map(dup).collect())?;
    /// let mut tx = StateProducer::<Tick>::new(&peer, "tick")?;
    ///
    /// assert!(!rx.arm()?, "nothing to fetch: armed");
    /// tx.publish_copy(&Tick { n: 7 })?;
    /// let mut pfd = libc::pollfd { fd: rx.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    /// // SAFETY: one valid pollfd.
    /// assert_eq!(unsafe { libc::poll(&mut pfd, 1, 1000) }, 1, "readable");
    /// assert_eq!(rx.fetch()?.unwrap().n, 7);
    /// # Ok::<(), rtipc::Error>(())
    /// ```
    pub struct Pollable<C> {
        inner: C,
        fd: OwnedFd,
    }

    impl<C: Wait> Pollable<C> {
        /// Wraps `consumer`; fails with [`Error::NoEventFd`] if its channel has no eventfd
        /// (named segments, or a channel without notification), dropping the consumer.
        pub fn new(consumer: C) -> Result<Pollable<C>> {
            let fd = match consumer.wait_fd() {
                Some(fd) => fd
                    .try_clone_to_owned()
                    .map_err(|e| Error::io("duplicating the eventfd", e))?,
                None => {
                    return Err(Error::NoEventFd {
                        channel: consumer.channel_name().to_owned(),
                    })
                }
            };
            Ok(Pollable {
                inner: consumer,
                fd,
            })
        }

        /// The consumer.
        pub fn into_inner(self) -> C {
            self.inner
        }
    }

    impl<C> Deref for Pollable<C> {
        type Target = C;
        fn deref(&self) -> &C {
            &self.inner
        }
    }

    impl<C> DerefMut for Pollable<C> {
        fn deref_mut(&mut self) -> &mut C {
            &mut self.inner
        }
    }

    impl<C> AsFd for Pollable<C> {
        /// The channel's eventfd (a duplicate made by [`Pollable::new`], so the same open file
        /// as the consumer's).
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }

    impl<C> AsRawFd for Pollable<C> {
        fn as_raw_fd(&self) -> RawFd {
            self.fd.as_raw_fd()
        }
    }

    impl<C: std::fmt::Debug> std::fmt::Debug for Pollable<C> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Pollable")
                .field("consumer", &self.inner)
                .field("fd", &self.fd)
                .finish()
        }
    }
}

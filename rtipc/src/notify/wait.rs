//! The [`Wait`] trait over every consuming handle, and [`Pollable`] for event loops.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::queue::QueueConsumer;
use crate::schema::Object;
use crate::state::{MultiStateConsumer, StateConsumer};

mod sealed {
    pub trait Sealed {
        /// The channel's name, for errors.
        fn channel_name(&self) -> &str;
    }
}

/// A consumer that can wait for data: implemented by the consuming handles of every channel
/// kind. Sealed: only rtipc implements it.
///
/// Waiting needs a channel created with [`ChannelSpec::notify`](crate::ChannelSpec::notify);
/// on any other channel these methods fail with [`Error::NotifyDisabled`].
pub trait Wait: sealed::Sealed {
    /// Blocks until there is data the consumer has not fetched yet (`Ok(true)`) or `timeout`
    /// has passed (`Ok(false)`; `None` waits without limit). Returns at once if there already
    /// is data. Uses the channel's eventfd in an anonymous segment and a futex in a named one.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool>;

    /// Prepares an external wait on the fd of a [`Pollable`]: returns `Ok(true)` if there is
    /// data to fetch now; otherwise drains the eventfd, announces the wait to the producer and
    /// returns `Ok(false)`: the fd becomes readable when the producer publishes next. Call it
    /// before every wait, after fetching; a readable fd without data (a wake-up left over from
    /// an earlier announcement) is harmless.
    ///
    /// Fails with [`Error::NoEventFd`] in a named segment.
    fn arm(&mut self) -> Result<bool>;

    /// The channel's eventfd, if it has one (anonymous segments).
    fn wait_fd(&self) -> Option<BorrowedFd<'_>>;
}

macro_rules! impl_wait {
    ($($ty:ty => [$($gen:tt)*]),* $(,)?) => {$(
        impl<$($gen)*> sealed::Sealed for $ty {
            fn channel_name(&self) -> &str {
                self.channel()
            }
        }

        impl<$($gen)*> Wait for $ty {
            fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
                <$ty>::wait(self, timeout)
            }
            fn arm(&mut self) -> Result<bool> {
                <$ty>::arm(self)
            }
            fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
                <$ty>::wait_fd(self)
            }
        }
    )*};
}

impl_wait! {
    StateConsumer<T> => [T: Object],
    MultiStateConsumer => [],
    QueueConsumer<T> => [T: Object],
}

/// A consumer with a file descriptor for event loops: readable once the producer publishes
/// after [`Wait::arm`]. Implements [`AsFd`] and [`AsRawFd`], so it goes straight into `poll`,
/// epoll, mio or tokio's `AsyncFd`, and derefs to the consumer.
///
/// The descriptor is a duplicate of the channel's eventfd that the `Pollable` owns: it stays
/// open, and [`AsRawFd::as_raw_fd`] returns the same number, for as long as the `Pollable`
/// lives (what tokio's `AsyncFd::register` asks of its caller).
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
/// use rtipc::notify::{Pollable, Wait};
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
    /// Wraps `consumer`; fails with [`Error::NoEventFd`] if its channel has no eventfd (named
    /// segments, or a channel without notification), dropping the consumer.
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
    /// The channel's eventfd (a duplicate made by [`Pollable::new`], so the same open file as
    /// the consumer's).
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

//! The consuming end of a state channel.

use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::channel::{Channel, ConsumerState, Got};
use crate::error::{DataError, Result};
use crate::schema::Evolution;
use crate::schema::Object;
use crate::segment::claim::Use;
use crate::segment::wake::Bell;
use crate::segment::Segment;

/// The consuming end of a state channel, whatever objects it reads: claims the end and
/// fetches. [`StateConsumer`] and [`MultiStateConsumer`](super::MultiStateConsumer) wrap it.
pub(super) struct Fetcher {
    pub chan: Channel,
    pub c: ConsumerState,
    pub bell: Option<Bell>,
    /// Whether a wait saw a producer (for reporting one gone).
    producer_seen: bool,
}

impl Fetcher {
    pub fn new(seg: &Segment, name: &str, index: Option<u32>) -> Result<Fetcher> {
        let (chan, c, bell) = Channel::consumer(seg, name, index)?;
        Ok(Fetcher {
            chan,
            c,
            bell,
            producer_seen: false,
        })
    }

    /// The protocol step of a fetch: `None` if nothing was ever published.
    #[inline(always)]
    pub fn fetch(&mut self) -> Result<Option<Got>, DataError> {
        self.chan.ch.check()?;
        self.chan.fetch(&mut self.c)
    }

    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.chan
            .wait(self.bell.as_ref(), timeout, &mut self.producer_seen)
    }

    pub fn arm(&mut self) -> Result<bool> {
        self.chan.arm(self.bell.as_ref())
    }

    pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.bell.as_ref().and_then(Bell::fd)
    }
}

/// The waiting methods and the channel's name: the same on every state consumer, whose
/// `Fetcher` is in its field `r`.
macro_rules! waiting {
    ($ty:ident $(<$g:ident: $bound:path>)?) => {
        impl$(<$g: $bound>)? $ty$(<$g>)? {
            /// Blocks until the producer has published something not fetched yet (`Ok(true)`)
            /// or `timeout` passes (`Ok(false)`; `None`: no limit). Needs a channel created
            /// with [`ChannelSpec::notify`](crate::ChannelSpec::notify); see
            /// [`notify`](crate::notify).
            ///
            /// Fails with [`Error::NoProducer`](crate::Error::NoProducer) when the producer it
            /// saw is gone (it looks at the start and at least every 100 ms while it sleeps): a
            /// consumer never sleeps forever on a producer that died. A producer that has not
            /// started yet is waited for; after reporting one gone, the next `wait` waits for
            /// a new one, so a loop of waits carries on across producer restarts.
            pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
                self.r.wait(timeout)
            }

            /// Prepares a wait on the channel's eventfd; see
            /// [`Wait::arm`](crate::notify::Wait::arm).
            pub fn arm(&mut self) -> Result<bool> {
                self.r.arm()
            }

            /// The channel's eventfd, if it has one; see
            /// [`Wait::wait_fd`](crate::notify::Wait::wait_fd).
            pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
                self.r.wait_fd()
            }

            /// The channel's name.
            pub fn channel(&self) -> &str {
                self.r.chan.ch.name()
            }

            /// Whether a process holds the producer end: the kernel's answer (a claim is a
            /// lock it releases when its holder dies), so a dead, zombie or foreign-namespace
            /// process is never mistaken for a live one. A system call: not for the data path.
            pub fn producer_alive(&self) -> Result<bool> {
                self.r.chan.ch.other_end_held()
            }

            /// Waits until a process holds the producer end (`Ok(true)`) or `timeout` passes
            /// (`Ok(false)`; `None`: no limit): for a consumer started before its producer, or
            /// whose producer is restarting.
            pub fn wait_for_producer(&mut self, timeout: Option<Duration>) -> Result<bool> {
                self.r.chan.ch.wait_for_other_end(timeout)
            }
        }
    };
}
pub(super) use waiting;

/// The consuming end of a state channel, typed to one of its objects.
///
/// ```
/// # use std::os::fd::AsFd;
/// # use rtipc::{Direction, Object, Segment, StateConsumer, StateProducer, StateRef};
/// #[derive(Object)]
/// #[repr(C)]
/// struct Temperature { celsius: f32, sensor: u32 }
///
/// let seg = Segment::builder()
///     .state::<Temperature>("temp", Direction::CreatorToPeer)
///     .create_anonymous()?;
/// let mut tx = StateProducer::<Temperature>::new(&seg, "temp")?;
/// let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap())?;
/// let mut rx = StateConsumer::<Temperature>::new(&peer, "temp")?;
///
/// tx.publish_copy(&Temperature { celsius: 21.5, sensor: 3 })?;
/// let t = rx.fetch()?.expect("published");
/// assert_eq!((t.celsius, StateRef::seq(&t), StateRef::missed(&t)), (21.5, 1, 0));
/// # Ok::<(), rtipc::Error>(())
/// ```
pub struct StateConsumer<T: Object> {
    r: Fetcher,
    /// Offset of `T` in the slot, checked against the schema by `new`.
    offset: usize,
    /// How `T` relates to the segment's revision of it, when they differ.
    evolution: Option<Evolution>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Object> std::fmt::Debug for StateConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateConsumer")
            .field("object", &T::SCHEMA.name())
            .field("channel", &self.r.chan.ch.name())
            .field("seq", &self.r.c.seq())
            .finish()
    }
}

impl<T: Object> StateConsumer<T> {
    /// Claims a consuming end of state channel `name` and checks `T` against its schema. A
    /// fan-out channel's first free consumer end is taken; when all are held the error is
    /// [`Error::AllConsumersClaimed`](crate::Error::AllConsumersClaimed).
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        Self::with(Fetcher::new(seg, name, None)?)
    }

    /// Claims consumer end `index` (from 0; below the channel's number of consumers) of state
    /// channel `name`: for a process that must always be the same reader of a fan-out channel,
    /// such as a replacement for one that died.
    pub fn new_at(seg: &Segment, name: &str, index: u32) -> Result<Self> {
        Self::with(Fetcher::new(seg, name, Some(index))?)
    }

    fn with(r: Fetcher) -> Result<Self> {
        let found = r.chan.ch.object_for::<T>(Use::Read)?;
        Ok(StateConsumer {
            r,
            offset: found.offset as usize,
            evolution: found.evolution,
            _t: PhantomData,
        })
    }

    /// How `T` relates to the segment's revision of it: `None` when they are the same layout,
    /// otherwise both revisions and the fields of the segment's that this consumer ignores.
    /// (`T` may be an earlier revision of an [appendable](crate::schema::Schema::appendable)
    /// type than the segment's; a later one is refused, and read by
    /// [`StateCopier`] instead.)
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// Which consumer end this handle holds (0 unless the channel is fan-out).
    pub fn index(&self) -> u32 {
        self.r.chan.ch.consumer()
    }

    /// Takes the newest update: `None` if nothing was ever published, otherwise a view that
    /// derefs to `&T` and tells ([`StateRef::is_new`], [`StateRef::missed`]) whether it is new
    /// and how many updates were missed. The view is valid until the next fetch.
    #[inline]
    pub fn fetch(&mut self) -> Result<Option<StateRef<'_, T>>, DataError> {
        let Some(got) = self.r.fetch()? else {
            return Ok(None);
        };
        let p = self.r.chan.at::<T>(got.front, self.offset);
        Ok(Some(StateRef {
            // SAFETY: the front slot belongs to the consumer until its next fetch, which the
            // view's borrow of `self` prevents; aligned and in bounds (see `StateMut`); every
            // bit pattern is a valid `T`.
            value: unsafe { &*p },
            seq: got.seq,
            new: got.new,
            missed: got.missed,
        }))
    }
}

waiting!(StateConsumer<T: Object>);

/// A consuming end of a state channel that copies each update out: for a type that is a later
/// revision of an [appendable](crate::schema::Schema::appendable) type than the segment's (or
/// any revision). The fields the segment's revision does not have are zero in the copy, and
/// [`Copied::revision`] says which revision was received.
///
/// `StateConsumer` refuses a later revision, since its slots do not hold the fields that
/// revision adds; this handle reads the segment's revision, as many bytes of it as `T` has.
pub struct StateCopier<T: Object> {
    r: Fetcher,
    offset: usize,
    /// How many bytes of the slot's object are copied: the shorter of the two revisions.
    len: usize,
    /// The segment's revision.
    revision: u32,
    evolution: Option<Evolution>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Object> StateCopier<T> {
    /// Claims a consuming end of state channel `name` (the first free one of a fan-out
    /// channel) and checks `T` against its schema: the same layout, or a revision of the same
    /// appendable type.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let r = Fetcher::new(seg, name, None)?;
        let found = r.chan.ch.object_for::<T>(Use::Copy)?;
        Ok(StateCopier {
            offset: found.offset as usize,
            len: found.common_len(size_of::<T>()),
            revision: found.received_revision(T::SCHEMA),
            evolution: found.evolution,
            r,
            _t: PhantomData,
        })
    }

    /// How `T` relates to the segment's revision of it; see [`StateConsumer::evolution`].
    pub fn evolution(&self) -> Option<&Evolution> {
        self.evolution.as_ref()
    }

    /// Takes the newest update and copies it out: `None` if nothing was ever published.
    pub fn fetch(&mut self) -> Result<Option<Copied<T>>, DataError> {
        let Some(got) = self.r.fetch()? else {
            return Ok(None);
        };
        let p = self.r.chan.at::<u8>(got.front, self.offset);
        let mut value = T::zeroed();
        // SAFETY: the front slot belongs to the consumer until its next fetch (`&mut self`);
        // `self.len` bytes from `p` lie inside the segment's object, and inside `value`
        // (`len` is at most both sizes); every bit pattern is a valid `T` and its other bytes
        // stay zero.
        unsafe { std::ptr::copy_nonoverlapping(p, (&mut value as *mut T).cast::<u8>(), self.len) };
        Ok(Some(Copied {
            value,
            seq: got.seq,
            new: got.new,
            missed: got.missed,
            revision: self.revision,
        }))
    }
}

waiting!(StateCopier<T: Object>);

/// An update copied out by [`StateCopier`].
#[derive(Clone, Copy, Debug)]
pub struct Copied<T> {
    /// The object, the fields the received revision lacks zero.
    pub value: T,
    /// The update's sequence number.
    pub seq: u64,
    /// Whether it is new since the previous fetch.
    pub new: bool,
    /// How many updates were overwritten before this one (0 if not new).
    pub missed: u64,
    /// The revision of the type that the segment holds, so the one received; fields added
    /// after it are zero. (A producer of an earlier revision than the segment's zeroes the
    /// fields it does not have as well.)
    pub revision: u32,
}

/// A fetched update of one object, read in place; derefs to `&T`. Valid until the next fetch.
///
/// Its facts are associated functions, so that they never hide a field of `T` of the same
/// name: [`StateRef::seq`], [`StateRef::missed`], [`StateRef::is_new`].
pub struct StateRef<'a, T: Object> {
    value: &'a T,
    seq: u64,
    new: bool,
    missed: u64,
}

impl<'a, T: Object> StateRef<'a, T> {
    /// Whether this update is new since the previous fetch.
    #[inline]
    pub fn is_new(this: &Self) -> bool {
        this.new
    }

    /// How many updates were published and overwritten between the previous new update and
    /// this one (0 if not new).
    #[inline]
    pub fn missed(this: &Self) -> u64 {
        this.missed
    }

    /// The update's sequence number: 1 for the producer's first publish.
    #[inline]
    pub fn seq(this: &Self) -> u64 {
        this.seq
    }

    /// The object, with the view's lifetime.
    #[inline]
    pub fn value(this: &Self) -> &'a T {
        this.value
    }
}

impl<T: Object> Deref for StateRef<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: Object + std::fmt::Debug> std::fmt::Debug for StateRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRef")
            .field("seq", &self.seq)
            .field("new", &self.new)
            .field("missed", &self.missed)
            .field("value", self.value)
            .finish()
    }
}

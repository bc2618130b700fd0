//! Both ends of a state channel for any subset of its objects (the object mapper): a handle
//! for the whole channel, and typed keys for its objects.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::consumer::Fetcher;
use super::producer::Publisher;
use crate::error::{DataError, Result};
use crate::schema::Object;
use crate::segment::Segment;

fn next_handle_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A typed handle on one object of a channel, made by [`MultiStateProducer::object`] or
/// [`MultiStateConsumer::object`] after checking `T` against the segment's schema. Only the
/// handle that made it accepts it.
pub struct ObjectKey<T> {
    handle: u64,
    offset: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ObjectKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ObjectKey<T> {}

impl<T> std::fmt::Debug for ObjectKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectKey")
            .field("offset", &self.offset)
            .finish()
    }
}

fn key<T: Object>(
    ch: &crate::segment::EndHandle,
    handle: u64,
    usage: crate::segment::claim::Use,
) -> Result<ObjectKey<T>> {
    Ok(ObjectKey {
        handle,
        offset: ch.object_for::<T>(usage)?.offset as usize,
        _t: PhantomData,
    })
}

fn check_key<T>(key: &ObjectKey<T>, handle: u64) {
    assert_eq!(
        key.handle, handle,
        "an ObjectKey can only be used with the handle that made it"
    );
}

/// The producing end of a state channel that carries several objects: write any of them
/// through [`ObjectKey`]s, then publish them together.
///
/// ```
/// # use rtipc::{ChannelSpec, Direction, MultiStateProducer, Object, Segment};
/// #[derive(Object)]
/// #[repr(C)]
/// struct Pose { x: f64, y: f64 }
/// #[derive(Object)]
/// #[repr(C)]
/// struct Battery { volts: f32, amps: f32 }
///
/// let seg = Segment::builder()
///     .channel(ChannelSpec::state("robot", Direction::CreatorToPeer).object::<Pose>().object::<Battery>())
///     .create_anonymous()?;
/// let mut tx = MultiStateProducer::new(&seg, "robot")?;
/// let (pose, battery) = (tx.object::<Pose>()?, tx.object::<Battery>()?);
/// let mut update = tx.write()?;
/// update.get_mut(pose).x = 1.0;
/// update.get_mut(battery).volts = 24.0;
/// update.publish()?;
/// # Ok::<(), rtipc::Error>(())
/// ```
pub struct MultiStateProducer {
    w: Publisher,
    handle: u64,
}

impl std::fmt::Debug for MultiStateProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiStateProducer")
            .field("channel", &self.w.chan.ch.name())
            .field("published", &self.w.p.seq())
            .finish()
    }
}

impl MultiStateProducer {
    /// Claims the producing end of state channel `name`.
    pub fn new(seg: &Segment, name: &str) -> Result<MultiStateProducer> {
        Ok(MultiStateProducer {
            w: Publisher::new(seg, name)?,
            handle: next_handle_id(),
        })
    }

    /// Checks `T` against the channel's schema and returns its key. `T` must have the
    /// segment's layout exactly (a producer of an earlier revision of an appendable type
    /// would have to zero the rest: use [`StateProducer`](crate::StateProducer)).
    pub fn object<T: Object>(&self) -> Result<ObjectKey<T>> {
        key(
            &self.w.chan.ch,
            self.handle,
            crate::segment::claim::Use::Exact,
        )
    }

    /// The back slot, in place: it holds the update published two publishes ago (or zeros),
    /// not the last one. Write every field you care about, then publish; or start from the
    /// last update with [`MultiStateProducer::write_from_last`].
    #[inline]
    pub fn write(&mut self) -> Result<MultiStateMut<'_>, DataError> {
        self.w.chan.ch.check()?;
        Ok(MultiStateMut { w: self })
    }

    /// The back slot, holding a copy of the last published update (zeros before the first).
    pub fn write_from_last(&mut self) -> Result<MultiStateMut<'_>, DataError> {
        self.w.chan.ch.check()?;
        self.w.copy_last();
        Ok(MultiStateMut { w: self })
    }

    /// The number of updates published through this channel so far.
    pub fn published(&self) -> u64 {
        self.w.p.seq()
    }
}

/// An update of several objects being written in place; publish it with
/// [`MultiStateMut::publish`]. Dropping it publishes nothing.
#[must_use = "an update is only published by `publish`"]
pub struct MultiStateMut<'a> {
    w: &'a mut MultiStateProducer,
}

impl MultiStateMut<'_> {
    /// The object `key` in the slot being written.
    ///
    /// # Panics
    ///
    /// If `key` was made by another handle.
    #[inline]
    pub fn get_mut<T: Object>(&mut self, key: ObjectKey<T>) -> &mut T {
        check_key(&key, self.w.handle);
        let p = self.w.w.chan.at::<T>(self.w.w.back, key.offset);
        // SAFETY: the back slot belongs to the producer alone until it is published, the
        // pointer is aligned (slots are cache-line aligned, the key's offset is a multiple of
        // T's alignment, checked at attach) and in bounds; every bit pattern is a valid `T`.
        // The borrow of `self` keeps the slot from being published while the reference lives.
        unsafe { &mut *p }
    }

    /// Publishes the update with one atomic swap; returns its sequence number (1 for the
    /// first update).
    #[inline]
    pub fn publish(self) -> Result<u64, DataError> {
        let seq = self.w.w.publish()?;
        self.w.w.write_ahead(0, self.w.w.chan.slots.stride());
        Ok(seq)
    }
}

/// The consuming end of a state channel that carries several objects: read any subset of them
/// through [`ObjectKey`]s.
pub struct MultiStateConsumer {
    r: Fetcher,
    handle: u64,
}

impl std::fmt::Debug for MultiStateConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiStateConsumer")
            .field("channel", &self.r.chan.ch.name())
            .field("seq", &self.r.c.seq())
            .finish()
    }
}

impl MultiStateConsumer {
    /// Claims a consuming end of state channel `name` (the first free one of a fan-out
    /// channel).
    pub fn new(seg: &Segment, name: &str) -> Result<MultiStateConsumer> {
        Self::with(Fetcher::new(seg, name, None)?)
    }

    /// Claims consumer end `index` of state channel `name` (see
    /// [`StateConsumer::new_at`](super::StateConsumer::new_at)).
    pub fn new_at(seg: &Segment, name: &str, index: u32) -> Result<MultiStateConsumer> {
        Self::with(Fetcher::new(seg, name, Some(index))?)
    }

    fn with(r: Fetcher) -> Result<MultiStateConsumer> {
        Ok(MultiStateConsumer {
            r,
            handle: next_handle_id(),
        })
    }

    /// Checks `T` against the channel's schema and returns its key. `T` may be an earlier
    /// revision of an [appendable](crate::schema::Schema::appendable) type than the
    /// segment's: its fields are read in place.
    pub fn object<T: Object>(&self) -> Result<ObjectKey<T>> {
        key(
            &self.r.chan.ch,
            self.handle,
            crate::segment::claim::Use::Read,
        )
    }

    /// Takes the newest update: `None` if nothing was ever published, otherwise a view of the
    /// newest update, which tells whether it is new and how many updates were missed. The
    /// view is valid until the next fetch.
    #[inline]
    pub fn fetch(&mut self) -> Result<Option<MultiStateRef<'_>>, DataError> {
        Ok(self.r.fetch()?.map(|got| MultiStateRef {
            r: self,
            new: got.new,
            missed: got.missed,
        }))
    }
}

super::consumer::waiting!(MultiStateConsumer);

/// A fetched update of several objects, read in place; valid until the consumer's next fetch.
pub struct MultiStateRef<'a> {
    r: &'a MultiStateConsumer,
    new: bool,
    missed: u64,
}

impl MultiStateRef<'_> {
    /// The object `key` in this update.
    ///
    /// # Panics
    ///
    /// If `key` was made by another handle.
    #[inline]
    pub fn get<T: Object>(&self, key: ObjectKey<T>) -> &T {
        check_key(&key, self.r.handle);
        let p = self.r.r.chan.at::<T>(self.r.r.c.front(), key.offset);
        // SAFETY: the front slot belongs to the consumer until its next fetch, which the
        // borrow of the consumer prevents while this reference lives; the pointer is aligned
        // and in bounds (see `MultiStateMut::get_mut`), and every bit pattern is a valid `T`.
        unsafe { &*p }
    }

    /// Whether this update is new since the previous fetch.
    #[inline]
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// How many updates were published and overwritten between the previous new update and
    /// this one (0 if not new).
    #[inline]
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The update's sequence number: 1 for the producer's first publish.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.r.r.c.seq()
    }
}

impl std::fmt::Debug for MultiStateRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiStateRef")
            .field("seq", &self.seq())
            .field("new", &self.new)
            .field("missed", &self.missed)
            .finish()
    }
}

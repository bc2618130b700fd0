//! [`SharedRegion<T>`]: a handle on a region, from either side.

use std::marker::PhantomData;

use crate::error::Result;
use crate::schema::Region;
use crate::segment::{ChannelRef, Segment};

/// A handle on a shared region holding one `T`: dereferences to `&T`, in place in the segment.
///
/// Either side may hold any number of them; nothing is claimed. `T` is checked against the
/// region's schema like any handle's type.
pub struct SharedRegion<T: Region> {
    ch: ChannelRef,
    ptr: *const T,
    _t: PhantomData<T>,
}

// SAFETY: `T: Region` is `Sync` (its interior mutability is atomics only) and the pointer is
// into the mapping that `ch` keeps alive; the handle gives out only `&T`.
unsafe impl<T: Region> Send for SharedRegion<T> {}
// SAFETY: as above.
unsafe impl<T: Region> Sync for SharedRegion<T> {}

impl<T: Region> SharedRegion<T> {
    /// A handle on region `name` of `seg`, with `T` checked against its schema.
    pub fn new(seg: &Segment, name: &str) -> Result<Self> {
        let ch = seg.region_channel(name)?;
        let offset = ch
            .object_like(
                T::ID,
                T::SCHEMA,
                size_of::<T>() as u64,
                align_of::<T>() as u64,
                T::FINGERPRINT,
                crate::segment::claim::Use::Exact,
            )?
            .offset;
        // The object lies in slot 0 (`object_like` checked its size against ours, and the
        // parser its offset, size and alignment against the slot).
        let ptr = ch
            .slot(0)
            .wrapping_add(offset as usize)
            .cast::<T>()
            .cast_const();
        Ok(SharedRegion {
            ch,
            ptr,
            _t: PhantomData,
        })
    }

    /// The region's name.
    pub fn name(&self) -> &str {
        &self.ch.info.name
    }
}

impl<T: Region> std::ops::Deref for SharedRegion<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` points at a `T` inside the mapping that `self.ch` keeps alive, aligned
        // (its offset and the slot's are multiples of `align_of::<T>()`, checked at attach),
        // valid for every bit pattern (`Region`), and mutated by anyone only through its
        // atomics, which `&T` allows.
        unsafe { &*self.ptr }
    }
}

impl<T: Region> std::fmt::Debug for SharedRegion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegion")
            .field("object", &T::SCHEMA.name())
            .field("name", &self.name())
            .finish()
    }
}

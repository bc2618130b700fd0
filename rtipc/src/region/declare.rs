//! How a creator declares a region: [`ChannelSpec::region`] and [`SegmentBuilder::region`].

use std::borrow::Cow;
use std::sync::Arc;

use crate::layout::{ChannelKind, ChannelSpec, Ctrl, Direction};
use crate::schema::object::{region_bytes, zeroed_region};
use crate::schema::Region;
use crate::segment::SegmentBuilder;

/// A region's control block holds only the common lines, which start zeroed.
fn init(_: Ctrl<'_>, _: u32) {}

impl ChannelSpec {
    /// A shared region called `name` holding one `T`, all zeros until
    /// [`ChannelSpec::init_region`] says otherwise.
    pub fn region<T: Region>(name: impl Into<String>) -> ChannelSpec {
        let mut spec = ChannelSpec::new(
            name.into(),
            ChannelKind::Region,
            Direction::CreatorToPeer,
            1,
            init,
        );
        spec.objects.push(crate::layout::spec::ObjectSpec {
            id: T::ID,
            fingerprint: T::FINGERPRINT,
            size: size_of::<T>() as u64,
            align: align_of::<T>() as u64,
            schema: Cow::Borrowed(T::SCHEMA),
        });
        spec
    }

    /// A region of no type yet, all zeros (its object comes from a handshake request).
    pub(crate) fn region_untyped(name: String) -> ChannelSpec {
        ChannelSpec::new(name, ChannelKind::Region, Direction::CreatorToPeer, 1, init)
    }

    /// Sets the initial value of a region declared with [`ChannelSpec::region::<T>`]: `f`
    /// gets a zeroed `T` to fill in, which the creator copies into the segment before any peer
    /// can attach (when the segment is created; a creator that resumes a stale segment keeps
    /// the region as it was).
    pub fn init_region<T: Region>(
        mut self,
        f: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> ChannelSpec {
        self.data = Some(Arc::new(move || {
            let mut value = zeroed_region::<T>();
            f(&mut value);
            region_bytes(&*value).to_vec()
        }));
        self
    }
}

impl SegmentBuilder {
    /// Declares a shared region holding one `T`, initialised by `f` (which gets a zeroed `T`)
    /// before any peer can attach.
    pub fn region<T: Region>(
        self,
        name: impl Into<String>,
        f: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> Self {
        self.channel(ChannelSpec::region::<T>(name).init_region(f))
    }
}

//! Declaring a segment: [`SegmentBuilder`].

use crate::error::Result;
use crate::layout::{ChannelSpec, Plan, DEFAULT_CACHE_LINE};

/// Builds and creates a segment. Obtain one with [`Segment::builder`](crate::Segment::builder).
///
/// Declare channels with the short forms [`SegmentBuilder::state`] and
/// [`SegmentBuilder::queue`] (one object, optionally followed by [`SegmentBuilder::notify`]) or
/// with [`SegmentBuilder::channel`] and a [`ChannelSpec`]; then create the segment with
/// [`SegmentBuilder::create`] (named) or [`SegmentBuilder::create_anonymous`] (memfd).
#[derive(Clone, Debug)]
pub struct SegmentBuilder {
    pub(crate) channels: Vec<ChannelSpec>,
    pub(crate) cache_line: u32,
    pub(crate) keep: bool,
    pub(crate) replace_stale: bool,
    /// `notify` was called before any channel was declared.
    notify_without_channel: bool,
    /// Prefaulting, locking and huge pages of the creator's mapping.
    pub(crate) residency: super::memory::Residency,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        SegmentBuilder {
            channels: Vec::new(),
            cache_line: DEFAULT_CACHE_LINE,
            keep: false,
            replace_stale: false,
            notify_without_channel: false,
            residency: super::memory::Residency::default(),
        }
    }
}

impl SegmentBuilder {
    /// Declares a channel.
    pub fn channel(mut self, spec: ChannelSpec) -> Self {
        self.channels.push(spec);
        self
    }

    /// Lets the consumer of the channel declared last wait for data (see
    /// [`ChannelSpec::notify`]): `.state::<Tick>("tick", dir).notify(true)`.
    pub fn notify(mut self, on: bool) -> Self {
        match self.channels.last_mut() {
            Some(c) => c.notify = on,
            None => self.notify_without_channel = true,
        }
        self
    }

    /// Gives the state channel declared last `n` consumer ends (see
    /// [`ChannelSpec::consumers`]): `.state::<Pose>("pose", dir).consumers(4)`.
    pub fn consumers(mut self, n: u32) -> Self {
        if let Some(c) = self.channels.pop() {
            self.channels.push(c.consumers(n));
        }
        self
    }

    /// Sets the cache-line size that the layout aligns to (a power of two from 32 to 4096;
    /// default [`DEFAULT_CACHE_LINE`](crate::layout::DEFAULT_CACHE_LINE)).
    pub fn cache_line(mut self, bytes: u32) -> Self {
        self.cache_line = bytes;
        self
    }

    /// Keeps a named segment in `/dev/shm` after the creator drops it (default: unlink it).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Replaces a named segment left behind by a creator that is no longer running, instead of
    /// failing with [`Error::Stale`](crate::Error::Stale) (default: fail).
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }

    /// The declared channels.
    pub fn channels(&self) -> &[ChannelSpec] {
        &self.channels
    }

    /// Lays the declaration out, for a creator with this pid and start time.
    pub(crate) fn plan(&self, creator_pid: u32, creation_token: u64) -> Result<Plan> {
        if self.notify_without_channel {
            return Err(crate::Error::InvalidArgument(
                "`SegmentBuilder::notify` was called before any channel was declared; call it \
                 right after the channel it is for"
                    .into(),
            ));
        }
        Ok(Plan::new(
            &self.channels,
            self.cache_line,
            creator_pid,
            creation_token,
        )?)
    }
}

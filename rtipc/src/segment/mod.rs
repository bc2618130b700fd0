//! The shared-memory segment: creating it, attaching to it, and claiming its channels.
//!
//! A segment is created by one process, the **creator**, with a [`SegmentBuilder`] that declares
//! its channels, and attached by others, the **peers**, which check everything in it before
//! use (see [`layout`](crate::layout) for what is checked). Two backends, both real shared
//! memory:
//!
//! * **Named** ([`SegmentBuilder::create`], [`Segment::open`]): POSIX shared memory, mode
//!   `0600`, built in a nameless file and linked under its name only when complete. The creator
//!   unlinks the name when its last handle on the segment is dropped, unless
//!   [`SegmentBuilder::keep`] was set. A segment whose creator has died is reported as
//!   [`Error::Stale`]; a creator restarted with the same declaration resumes it, one with
//!   another replaces it with [`SegmentBuilder::replace_stale`], and [`Segment::remove_stale`]
//!   removes it (`named.rs` says how).
//! * **Anonymous** ([`SegmentBuilder::create_anonymous`], [`Segment::from_fd`]): a memfd sealed
//!   against growing and shrinking, handed to the peer as a file descriptor (inherited, or
//!   passed over a unix socket). The peer checks the seals and the size. Each notify-enabled
//!   channel has an eventfd, which travels with the memfd ([`Segment::event_fds`],
//!   [`Segment::from_fds`]); the [`handshake`](crate::handshake) module does all of it over a
//!   unix socket.
//!
//! Whether a creator runs, and who holds each channel end, is the kernel's answer: a lock on
//! the segment file that it releases when the holder dies (see `sys/lock.rs`), not a pid.

mod anonymous;
mod builder;
pub(crate) mod claim;
pub(crate) mod memory;
mod named;
mod sysv;
pub(crate) mod wake;

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use builder::SegmentBuilder;
pub(crate) use claim::{ChannelRef, Claim, EndHandle};
pub use memory::lock_all_memory;
pub use named::Removed;
pub(crate) use named::{peek, remove};
pub use sysv::SysvKey;

use crate::error::{Error, Result};
use crate::layout::{
    self, ChannelKind, End, Header, Layout, Plan, Side, HEADER_SIZE, READY, READY_OFFSET,
};
use crate::sys::mem::Mapping;

struct Inner {
    map: Arc<Mapping>,
    layout: Layout,
    side: Side,
    /// The name of a named segment.
    name: Option<String>,
    /// Per channel, in table order: its eventfd (notify-enabled channels of anonymous
    /// segments).
    eventfds: Vec<Option<Arc<OwnedFd>>>,
}

/// A shared-memory segment, on either side. Cheap to clone; handles taken from it keep the
/// mapping alive.
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("side", &self.inner.side)
            .field("size", &self.inner.map.len())
            .field("channels", &self.channel_names())
            .finish()
    }
}

/// Reads `len` bytes at `offset` of a segment file; a short file is a corrupt segment.
fn read_at(file: &File, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corrupt(what, offset, "lies past the end of the segment file")
        } else {
            Error::io("reading the segment", e)
        }
    })?;
    Ok(buf)
}

/// Copies `len` bytes at `offset` out of the mapping.
fn copy_out(map: &Mapping, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    map.copy_out(offset, &mut buf)
        .map_err(|()| Error::corrupt(what, offset, "lies outside the segment"))?;
    Ok(buf)
}

/// Copies the table and the metadata of a segment with a validated `header` out of the mapping
/// and parses them.
fn read_layout(map: &Mapping, header: Header) -> Result<Layout> {
    let table_len = u64::from(header.channel_count) * u64::from(header.entry_size);
    let table = copy_out(map, header.table_offset, table_len, "channel table")?;
    let metadata = copy_out(map, header.metadata_offset, header.metadata_len, "metadata")?;
    Ok(layout::parse::channels(header, &table, &metadata)?)
}

impl Segment {
    /// Starts declaring a new segment.
    pub fn builder() -> SegmentBuilder {
        SegmentBuilder::default()
    }

    /// Checks and maps a segment file written by another process. Copies only the header, the
    /// table and the metadata out of it (all bounded by the layout's limits, never by the
    /// file's size), and maps only the segment's declared size.
    fn attach(file: File) -> Result<Segment> {
        Self::attach_with(file, true)
    }

    /// [`Segment::attach`], mapping the segment read-write or, for tools, read-only.
    fn attach_with(file: File, writable: bool) -> Result<Segment> {
        let meta = file
            .metadata()
            .map_err(|e| Error::io("reading the segment's size", e))?;
        if !meta.is_file() {
            return Err(Error::corrupt("segment file", 0, "is not a regular file"));
        }
        let len = meta.len();
        let mut magic = [0u8; 8];
        let got = file.read_at(&mut magic, 0).unwrap_or(0);
        if got < 8 || u64::from_le_bytes(magic) != layout::MAGIC {
            return Err(Error::corrupt(
                "header.magic",
                u64::from_le_bytes(magic),
                "not an rtipc segment",
            ));
        }
        if len < HEADER_SIZE {
            return Err(Error::corrupt(
                "segment size",
                len,
                format!("smaller than the {HEADER_SIZE}-byte header"),
            ));
        }
        let raw = read_at(&file, 0, HEADER_SIZE, "header")?;
        let header = layout::parse::header(&raw, len).map_err(|e| match e {
            layout::FormatError::Corrupt { ref field, .. } if field == "header.ready" => {
                Error::NotReady
            }
            e => e.into(),
        })?;
        let size = usize::try_from(header.segment_size).map_err(|_| {
            Error::corrupt(
                "header.segment_size",
                header.segment_size,
                "too large to map",
            )
        })?;
        let map = if writable {
            Mapping::new(file, size)
        } else {
            Mapping::read_only(file, size)
        }
        .map_err(|e| Error::io("mapping the segment", e))?;
        Self::attach_mapped(map, Side::Peer)
    }

    /// Checks a mapped segment written by another process (or by a creator this one resumes):
    /// the header again, now ordered after the creator's ready word, then the table and the
    /// metadata.
    fn attach_mapped(map: Mapping, side: Side) -> Result<Segment> {
        // Relaxed, then an acquire fence that pairs with the creator's release store of
        // `READY`: everything it wrote before is visible to the reads below. (Not an acquire
        // load: tools map segments read-only, where only relaxed atomic loads are allowed.)
        let ready = map.atomic_u32(READY_OFFSET).load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if ready != READY {
            return Err(Error::NotReady);
        }
        let raw = copy_out(&map, 0, HEADER_SIZE, "header")?;
        let header = layout::parse::header(&raw, map.len() as u64)?;
        let layout = read_layout(&map, header)?;
        Ok(Segment::new(map, layout, side, Vec::new()))
    }

    /// The segment that a creator has just written from `plan` into `map`: parsing what was
    /// written doubles as a self-check of the layout.
    fn from_plan(
        map: Mapping,
        plan: Plan,
        side: Side,
        eventfds: Vec<Option<Arc<OwnedFd>>>,
    ) -> Result<Segment> {
        let layout = read_layout(&map, plan.header_ready())?;
        Ok(Segment::new(map, layout, side, eventfds))
    }

    fn new(
        map: Mapping,
        layout: Layout,
        side: Side,
        eventfds: Vec<Option<Arc<OwnedFd>>>,
    ) -> Segment {
        let mut eventfds = eventfds;
        eventfds.resize(layout.channels.len(), None);
        Segment {
            inner: Arc::new(Inner {
                map: Arc::new(map),
                layout,
                side,
                name: None,
                eventfds,
            }),
        }
    }

    /// Which side of the segment this process is on.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// The names of the segment's channels, in declaration order.
    pub fn channel_names(&self) -> Vec<&str> {
        self.inner
            .layout
            .channels
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }

    fn find(&self, name: &str) -> Result<(usize, &layout::ChannelInfo)> {
        self.inner
            .layout
            .channel(name)
            .ok_or_else(|| Error::ChannelNotFound {
                name: name.to_owned(),
                available: self
                    .channel_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            })
    }

    /// The user metadata of channel `name` (empty if none was given).
    pub fn user_meta(&self, name: &str) -> Result<&[u8]> {
        Ok(&self.find(name)?.1.user_meta)
    }

    /// The process id of the segment's creator, as recorded in its header.
    pub fn creator_pid(&self) -> u32 {
        self.inner.layout.header.creator_pid
    }

    /// Whether the creator process is still running (always true on the creator's side): the
    /// kernel's answer, from the creator's lock on the segment.
    pub fn creator_alive(&self) -> bool {
        self.inner.side == Side::Creator
            || named::creator_alive(self.inner.map.as_fd()).unwrap_or(false)
    }

    /// Whether this segment is still served by a creator: `Ok` if so; [`Error::CreatorGone`]
    /// if its creator is gone (a creator restarted with the same declaration resumes this very
    /// segment, and this handle carries on); [`Error::Replaced`] if a creator with another
    /// declaration replaced it under its name (attach again with [`Segment::open`]).
    pub fn check(&self) -> Result<()> {
        if self.creator_alive() {
            return Ok(());
        }
        if let Some(name) = &self.inner.name {
            let cname = named::shm_name(name)?;
            let ours = crate::sys::shm::identity(self.inner.map.as_fd())
                .map_err(|e| Error::io("reading the segment's identity", e))?;
            if crate::sys::shm::identity_of_name(&cname).is_some_and(|id| id != ours) {
                return Err(Error::Replaced { name: name.clone() });
            }
        }
        Err(Error::CreatorGone {
            segment: self
                .inner
                .name
                .clone()
                .unwrap_or_else(|| "(anonymous)".into()),
        })
    }

    /// Records the name of a named segment (before any clone exists).
    fn set_name(&mut self, name: &str) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.name = Some(name.trim_start_matches('/').to_owned());
        }
    }

    /// The name of a named segment.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The validated description of the segment: for tools.
    pub(crate) fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The validated channel `name`, of any kind and direction: for observers, which claim no
    /// end.
    pub(crate) fn any_channel(&self, name: &str) -> Result<ChannelRef> {
        let (index, c) = self.find(name)?;
        Ok(ChannelRef {
            map: Arc::clone(&self.inner.map),
            index,
            info: Arc::new(c.clone()),
            cache_line: u64::from(self.inner.layout.header.cache_line),
            eventfd: None,
        })
    }

    /// The validated region `name`, for a handle that writes: either side may hold any number.
    pub(crate) fn region_channel(&self, name: &str) -> Result<ChannelRef> {
        let ch = self.any_channel(name)?;
        if ch.info.kind != ChannelKind::Region {
            return Err(Error::WrongChannel {
                channel: name.to_owned(),
                wanted: "a region".into(),
                found: format!("a {} channel", ch.info.kind),
            });
        }
        if !self.inner.map.writable() {
            return Err(Error::InvalidArgument(format!(
                "the segment was opened read-only, for inspection: open region `{name}` from a segment opened with `Segment::open`"
            )));
        }
        Ok(ch)
    }

    /// The validated channel `name`, checked to be of `kind` and to be produced (or consumed)
    /// by this side.
    pub(crate) fn channel(&self, name: &str, kind: ChannelKind, end: End) -> Result<ChannelRef> {
        let (index, c) = self.find(name)?;
        if !self.inner.map.writable() {
            return Err(Error::InvalidArgument(format!(
                "the segment was opened read-only, for inspection: claim `{name}`'s {end} from a segment opened with `Segment::open`"
            )));
        }
        let producer_side = c.direction.producer();
        let ours = (end == End::Producer) == (producer_side == self.inner.side);
        if c.kind != kind || !ours {
            return Err(Error::WrongChannel {
                channel: name.to_owned(),
                wanted: format!("a {kind} {end} for {}", self.inner.side),
                found: format!("a {} channel {}", c.kind, c.direction),
            });
        }
        Ok(ChannelRef {
            map: Arc::clone(&self.inner.map),
            index,
            info: Arc::new(c.clone()),
            cache_line: u64::from(self.inner.layout.header.cache_line),
            eventfd: self.inner.eventfds[index].clone(),
        })
    }
}

impl AsFd for Segment {
    /// The segment's file descriptor: pass it to the peer of an anonymous segment.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.map.as_fd()
    }
}

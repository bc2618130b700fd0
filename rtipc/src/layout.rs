//! The segment's on-memory layout, version 1, and its validation.
//!
//! ```text
//! | Header | Channel table | Buffers (control blocks + slots) | Metadata |
//! ```
//!
//! Everything the peer needs to check compatibility is inside the segment, so a third program
//! can read it too. All integers are little-endian fixed-width `u32`/`u64`, every struct is
//! `#[repr(C)]` without padding; offsets below are in bytes.
//!
//! **Header** (128 bytes at offset 0):
//!
//! | offset | field | |
//! |---|---|---|
//! | 0 | `magic: u64` | `b"RTIPCSG1"` |
//! | 8 | `version: u32` | 1 |
//! | 12 | `header_size: u32` | 128 |
//! | 16 | `ready: u32` | `0x52454459` once the creator has finished (stored last, release) |
//! | 20 | `cache_line: u32` | the line size the layout aligns to; the peer follows it |
//! | 24 | `segment_size: u64` | at most the mapped size |
//! | 32 | `channel_count: u32` | at most [`MAX_CHANNELS`] |
//! | 36 | `entry_size: u32` | stride of table entries, a multiple of the cache line |
//! | 40 | `table_offset: u64` | |
//! | 48 | `buffers_offset: u64`, 56 `buffers_len: u64` | |
//! | 64 | `metadata_offset: u64`, 72 `metadata_len: u64` | |
//! | 80 | `creator_pid: u32`, 84 `flags: u32` (0) | |
//! | 88 | `creation_token: u64` | the creator's start time, so a reused pid is not mistaken for it |
//! | 96 | `reserved: [u64; 4]` | zero |
//!
//! **Channel table entry** (128 bytes, padded to `entry_size`):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `kind: u32` (1 state, 2 queue), 4 `direction: u32` (1 creator to peer, 2 peer to creator) |
//! | 8 | `slot_count: u32`, 12 `object_count: u32` |
//! | 16 | `slot_size: u64` (where the last object ends), 24 `slot_stride: u64` (rounded up to the cache line) |
//! | 32 | `buffer_offset: u64`, 40 `buffer_len: u64` (= stride × count) |
//! | 48 | `ctrl_offset: u64`, 56 `ctrl_len: u64` (control block: whole cache lines, followed directly by the slots) |
//! | 64 | `objects_offset: u64` (the channel's object descriptors) |
//! | 72 | `name_offset: u64`, 80 `name_len: u32`, 84 `notify: u32` |
//! | 88 | `user_meta_offset: u64`, 96 `user_meta_len: u64` |
//! | 104 | `reserved: [u64; 3]` (zero) |
//!
//! **Object descriptor** (64 bytes): `id: u64`, `fingerprint: u64`, `offset: u64` (in the
//! slot), `size: u64`, `align: u64`, `schema_offset: u64`, `schema_len: u64` (the schema in
//! [`schema::encode`]'s format), `reserved: u64`.
//!
//! **Control blocks** are whole cache lines; line 0 holds the claim words (the pid of the
//! process holding the producer end at +0, of the consumer end at +8). The other lines belong to
//! the channel kind's protocol, producer-written and consumer-written words on lines of their
//! own:
//!
//! * state (5 lines, 3 slots): line 1 the shared middle word of the triple buffer (slot index,
//!   dirty bit, sequence number); line 2 the producer's saved state; line 3 the consumer's saved
//!   state; line 4 notification.
//! * queue (capacity `N`, `N + 2` slots): line 1 the producer's `head` and slot; line 2 the
//!   consumer's `tail` and slot; line 3 notification; then `N` 8-byte ring cells (free bit, 39-bit
//!   position, 24-bit slot index).
//!
//! Everything outside control blocks and slots is immutable once `ready` is set.
//!
//! A peer validates a copy of the header, the table and the metadata with checked arithmetic
//! (every range inside the segment, slots and control blocks pairwise disjoint, counts and
//! lengths bounded, alignments powers of two, schemas decodable and matching their
//! fingerprints), and from then on uses only that validated copy, so nothing in the table is
//! read twice from shared memory.

use std::collections::HashSet;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{Error, Result};
use crate::schema::{self, Schema};

/// `b"RTIPCSG1"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RTIPCSG1");
/// The layout version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Value of [`Header::ready`] once the creator has finished writing the segment.
pub(crate) const READY: u32 = 0x5245_4459;

/// Most channels in one segment.
pub const MAX_CHANNELS: u32 = 1024;
/// Most objects in one channel.
pub const MAX_OBJECTS: u32 = 64;
/// Largest capacity of one queue channel.
pub const MAX_SLOTS: u32 = 1 << 20;
/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME: u32 = 255;
/// Most bytes of user metadata per channel.
pub const MAX_USER_META: u64 = 64 * 1024;
/// Largest supported cache-line size (and object alignment).
pub const MAX_CACHE_LINE: u32 = 4096;

/// Kinds of channel, as recorded in a channel table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Latest-value triple buffer.
    State,
    /// Ring of message slots.
    Queue,
}

impl Kind {
    pub(crate) const fn code(self) -> u32 {
        match self {
            Kind::State => 1,
            Kind::Queue => 2,
        }
    }

    fn from_code(code: u32) -> Option<Kind> {
        match code {
            1 => Some(Kind::State),
            2 => Some(Kind::Queue),
            _ => None,
        }
    }

    /// The length of this kind's control block for `slot_count` slots.
    pub(crate) fn ctrl_len(self, slot_count: u32, cache_line: u64) -> u64 {
        match self {
            Kind::State => crate::state::CTRL_LINES * cache_line,
            Kind::Queue => {
                // The fixed lines, then the ring of `slot_count - 2` cells of 8 bytes.
                let cells = 8 * u64::from(slot_count.saturating_sub(2));
                crate::queue::CTRL_LINES * cache_line + cells.div_ceil(cache_line) * cache_line
            }
        }
    }
}

/// Which side of a segment produces a channel's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The creator of the segment produces, the peer consumes.
    CreatorToPeer,
    /// The peer produces, the creator consumes.
    PeerToCreator,
}

impl Direction {
    pub(crate) const fn code(self) -> u32 {
        match self {
            Direction::CreatorToPeer => 1,
            Direction::PeerToCreator => 2,
        }
    }

    fn from_code(code: u32) -> Option<Direction> {
        match code {
            1 => Some(Direction::CreatorToPeer),
            2 => Some(Direction::PeerToCreator),
            _ => None,
        }
    }
}

/// The segment header, at offset 0.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct Header {
    pub magic: u64,
    pub version: u32,
    pub header_size: u32,
    /// [`READY`] once the creator has written everything else; stored last, with release.
    pub ready: u32,
    pub cache_line: u32,
    pub segment_size: u64,
    pub channel_count: u32,
    pub entry_size: u32,
    pub table_offset: u64,
    pub buffers_offset: u64,
    pub buffers_len: u64,
    pub metadata_offset: u64,
    pub metadata_len: u64,
    pub creator_pid: u32,
    pub flags: u32,
    /// The creator process's start time in clock ticks since boot, so that a reused pid is not
    /// mistaken for the creator.
    pub creation_token: u64,
    pub reserved: [u64; 4],
}

/// Offset of [`Header::ready`] in the header.
pub(crate) const READY_OFFSET: usize = 16;
/// Size of [`Header`].
pub(crate) const HEADER_SIZE: u64 = size_of::<Header>() as u64;

/// One entry of the channel table.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct ChannelEntry {
    pub kind: u32,
    pub direction: u32,
    pub slot_count: u32,
    pub object_count: u32,
    /// Bytes of the slot used by objects.
    pub slot_size: u64,
    /// Distance between slots: `slot_size` rounded up to the cache line.
    pub slot_stride: u64,
    pub buffer_offset: u64,
    pub buffer_len: u64,
    pub ctrl_offset: u64,
    pub ctrl_len: u64,
    /// Absolute offset of the channel's `object_count` [`ObjectDesc`]s.
    pub objects_offset: u64,
    pub name_offset: u64,
    pub name_len: u32,
    /// Notification flags (bit 0: the consumer may wait for data).
    pub notify: u32,
    pub user_meta_offset: u64,
    pub user_meta_len: u64,
    pub reserved: [u64; 3],
}

/// Describes one object in a channel's slot.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct ObjectDesc {
    pub id: u64,
    pub fingerprint: u64,
    /// Offset of the object in the slot.
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    /// Absolute offset of the object's encoded schema.
    pub schema_offset: u64,
    pub schema_len: u64,
    pub reserved: u64,
}

const _: () = assert!(size_of::<Header>() == 128);
const _: () = assert!(size_of::<ChannelEntry>() == 128);
const _: () = assert!(size_of::<ObjectDesc>() == 64);

/// One object of a channel, as validated from the segment.
#[derive(Clone, Debug)]
pub(crate) struct ObjectInfo {
    pub id: u64,
    pub fingerprint: u64,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    pub schema: Schema,
}

/// One channel, as validated from the segment.
#[derive(Clone, Debug)]
pub(crate) struct ChannelInfo {
    pub name: String,
    pub kind: Kind,
    pub direction: Direction,
    pub slot_stride: u64,
    pub buffer_offset: u64,
    pub ctrl_offset: u64,
    pub slot_count: u32,
    pub objects: Vec<ObjectInfo>,
    pub user_meta: Vec<u8>,
    /// Whether the consumer may wait for data (bit 0 of the entry's `notify`).
    pub notify: bool,
}

/// The validated description of a segment.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub header: Header,
    pub channels: Vec<ChannelInfo>,
}

impl Layout {
    /// The channel called `name`, or an error listing the channels that exist.
    pub fn channel(&self, name: &str) -> Result<&ChannelInfo> {
        self.channels
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::ChannelNotFound {
                name: name.to_owned(),
                available: self.channels.iter().map(|c| c.name.clone()).collect(),
            })
    }
}

/// Rounds `v` up to a multiple of `align` (a power of two), or `None` on overflow.
pub(crate) const fn align_up(v: u64, align: u64) -> Option<u64> {
    match v.checked_add(align - 1) {
        Some(x) => Some(x & !(align - 1)),
        None => None,
    }
}

/// A bounds-checked view of a copy of the segment's bytes.
struct Bytes<'a> {
    bytes: &'a [u8],
}

impl Bytes<'_> {
    /// The range `offset..offset + len`, or an error naming `field`.
    fn range(&self, field: &str, offset: u64, len: u64) -> Result<&[u8]> {
        let end = offset.checked_add(len).ok_or_else(|| {
            Error::corrupt(field, offset, format!("offset + length {len} overflows"))
        })?;
        if end > self.bytes.len() as u64 {
            return Err(Error::corrupt(
                field,
                offset,
                format!(
                    "range {offset}..{end} lies outside the segment's {} bytes",
                    self.bytes.len()
                ),
            ));
        }
        Ok(&self.bytes[offset as usize..end as usize])
    }

    fn read<T: FromBytes + KnownLayout + Immutable>(&self, field: &str, offset: u64) -> Result<T> {
        let raw = self.range(field, offset, size_of::<T>() as u64)?;
        T::read_from_bytes(raw).map_err(|_| Error::corrupt(field, offset, "cannot be read"))
    }
}

fn check(cond: bool, field: impl FnOnce() -> String, value: u64, reason: &str) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::corrupt(field(), value, reason))
    }
}

/// Checks that `[offset, offset + len)` lies inside `[region_start, region_start + region_len)`.
fn check_within(
    field: impl Fn() -> String,
    offset: u64,
    len: u64,
    region: &str,
    region_start: u64,
    region_len: u64,
) -> Result<()> {
    let end = offset.checked_add(len).ok_or_else(|| {
        Error::corrupt(field(), offset, format!("offset + length {len} overflows"))
    })?;
    let region_end = region_start + region_len; // checked when the header was validated
    if offset < region_start || end > region_end {
        return Err(Error::corrupt(
            field(),
            offset,
            format!(
                "range {offset}..{end} is not inside the {region} ({region_start}..{region_end})"
            ),
        ));
    }
    Ok(())
}

impl Layout {
    /// Validates a copy of a whole segment and describes it.
    ///
    /// `bytes` holds the segment as mapped: its length is the mapped length. Every offset and
    /// length is checked with checked arithmetic against it.
    pub fn parse(bytes: &[u8]) -> Result<Layout> {
        let b = Bytes { bytes };
        let mapped = bytes.len() as u64;
        if mapped < HEADER_SIZE {
            return Err(Error::corrupt(
                "segment size",
                mapped,
                format!("smaller than the {HEADER_SIZE}-byte header"),
            ));
        }
        let h: Header = b.read("header", 0)?;
        let hf = |name: &str| format!("header.{name}");
        check(
            h.magic == MAGIC,
            || hf("magic"),
            h.magic,
            "not an rtipc segment",
        )?;
        if h.version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: h.version,
                supported: VERSION,
            });
        }
        check(
            u64::from(h.header_size) == HEADER_SIZE,
            || hf("header_size"),
            h.header_size.into(),
            "must be 128 for layout version 1",
        )?;
        check(
            h.ready == READY,
            || hf("ready"),
            h.ready.into(),
            "the creator has not finished initialising the segment",
        )?;
        check(
            h.cache_line.is_power_of_two() && (16..=MAX_CACHE_LINE).contains(&h.cache_line),
            || hf("cache_line"),
            h.cache_line.into(),
            "must be a power of two between 16 and 4096",
        )?;
        let cl = u64::from(h.cache_line);
        check(
            h.segment_size <= mapped,
            || hf("segment_size"),
            h.segment_size,
            &format!("larger than the {mapped} bytes mapped"),
        )?;
        check(
            h.segment_size >= HEADER_SIZE,
            || hf("segment_size"),
            h.segment_size,
            "smaller than the header",
        )?;
        let size = h.segment_size;
        check(
            h.flags == 0,
            || hf("flags"),
            h.flags.into(),
            "unknown flags",
        )?;
        check(
            h.reserved == [0; 4],
            || hf("reserved"),
            h.reserved.iter().fold(0, |a, r| a | r),
            "reserved words must be zero",
        )?;
        check(
            h.channel_count <= MAX_CHANNELS,
            || hf("channel_count"),
            h.channel_count.into(),
            &format!("more than {MAX_CHANNELS} channels"),
        )?;
        check(
            u64::from(h.entry_size) >= size_of::<ChannelEntry>() as u64
                && u64::from(h.entry_size) % cl == 0,
            || hf("entry_size"),
            h.entry_size.into(),
            "must be at least 128 and a multiple of the cache line",
        )?;
        let table_len = u64::from(h.channel_count) * u64::from(h.entry_size);
        // The four parts must follow one another in order and stay inside the segment.
        let parts = [
            (
                "table_offset",
                h.table_offset,
                "channel_count",
                table_len,
                u64::from(h.channel_count),
            ),
            (
                "buffers_offset",
                h.buffers_offset,
                "buffers_len",
                h.buffers_len,
                h.buffers_len,
            ),
            (
                "metadata_offset",
                h.metadata_offset,
                "metadata_len",
                h.metadata_len,
                h.metadata_len,
            ),
        ];
        let mut prev_end = HEADER_SIZE;
        for (name, off, len_name, len, shown) in parts {
            check(
                off % cl == 0,
                || hf(name),
                off,
                "not aligned to the cache line",
            )?;
            check(
                off >= prev_end,
                || hf(name),
                off,
                "overlaps the previous part",
            )?;
            check(off <= size, || hf(name), off, "lies past segment_size")?;
            let end = off.checked_add(len).filter(|&end| end <= size);
            prev_end = end.ok_or_else(|| {
                Error::corrupt(hf(len_name), shown, "the part extends past segment_size")
            })?;
        }

        let mut channels = Vec::with_capacity(h.channel_count as usize);
        let mut names = HashSet::new();
        let mut ranges: Vec<(u64, u64, String)> = Vec::new();
        for i in 0..h.channel_count {
            let ef = |name: &str| format!("channel[{i}].{name}");
            let e: ChannelEntry = b.read(
                &ef("entry"),
                h.table_offset + u64::from(i) * u64::from(h.entry_size),
            )?;
            let kind = Kind::from_code(e.kind)
                .ok_or_else(|| Error::corrupt(ef("kind"), e.kind.into(), "unknown channel kind"))?;
            let direction = Direction::from_code(e.direction).ok_or_else(|| {
                Error::corrupt(ef("direction"), e.direction.into(), "unknown direction")
            })?;
            // Name.
            check(
                e.name_len >= 1 && e.name_len <= MAX_CHANNEL_NAME,
                || ef("name_len"),
                e.name_len.into(),
                "must be between 1 and 255",
            )?;
            check_within(
                || ef("name_offset"),
                e.name_offset,
                e.name_len.into(),
                "metadata",
                h.metadata_offset,
                h.metadata_len,
            )?;
            let name =
                std::str::from_utf8(b.range(&ef("name"), e.name_offset, e.name_len.into())?)
                    .map_err(|_| Error::corrupt(ef("name"), e.name_offset, "not valid UTF-8"))?
                    .to_owned();
            let cf = |field: &str| format!("channel[{i}] `{name}`.{field}");
            if !names.insert(name.clone()) {
                return Err(Error::corrupt(
                    cf("name"),
                    e.name_offset,
                    "duplicate channel name",
                ));
            }
            // Slots.
            match kind {
                Kind::State => check(
                    e.slot_count == crate::state::SLOTS,
                    || cf("slot_count"),
                    e.slot_count.into(),
                    "a state channel has exactly 3 slots",
                )?,
                Kind::Queue => {
                    check(
                        e.slot_count >= 3 && e.slot_count <= MAX_SLOTS + 2,
                        || cf("slot_count"),
                        e.slot_count.into(),
                        "a queue of capacity N has N + 2 slots, N from 1 to 1048576",
                    )?;
                    check(
                        e.object_count == 1,
                        || cf("object_count"),
                        e.object_count.into(),
                        "a queue carries exactly one object type",
                    )?;
                }
            }
            check(
                e.slot_size >= 1,
                || cf("slot_size"),
                e.slot_size,
                "must not be 0",
            )?;
            check(
                Some(e.slot_stride) == align_up(e.slot_size, cl),
                || cf("slot_stride"),
                e.slot_stride,
                "must be slot_size rounded up to the cache line",
            )?;
            check(
                e.reserved == [0; 3],
                || cf("reserved"),
                e.reserved.iter().fold(0, |a, r| a | r),
                "reserved words must be zero",
            )?;
            let buffer_len = e
                .slot_stride
                .checked_mul(e.slot_count.into())
                .ok_or_else(|| Error::corrupt(cf("slot_stride"), e.slot_stride, "overflows"))?;
            check(
                e.buffer_len == buffer_len,
                || cf("buffer_len"),
                e.buffer_len,
                &format!("must be slot_stride * slot_count = {buffer_len}"),
            )?;
            check(
                e.buffer_offset.is_multiple_of(cl),
                || cf("buffer_offset"),
                e.buffer_offset,
                "not aligned to the cache line",
            )?;
            check_within(
                || cf("buffer_offset"),
                e.buffer_offset,
                e.buffer_len,
                "buffers",
                h.buffers_offset,
                h.buffers_len,
            )?;
            let ctrl_len = kind.ctrl_len(e.slot_count, cl);
            check(
                e.ctrl_len == ctrl_len,
                || cf("ctrl_len"),
                e.ctrl_len,
                &format!("must be {ctrl_len} for this kind and cache line"),
            )?;
            check(
                e.ctrl_offset.is_multiple_of(cl),
                || cf("ctrl_offset"),
                e.ctrl_offset,
                "not aligned to the cache line",
            )?;
            check_within(
                || cf("ctrl_offset"),
                e.ctrl_offset,
                e.ctrl_len,
                "buffers",
                h.buffers_offset,
                h.buffers_len,
            )?;
            check(
                e.ctrl_offset.checked_add(e.ctrl_len) == Some(e.buffer_offset),
                || cf("buffer_offset"),
                e.buffer_offset,
                "slots must follow the control block",
            )?;
            ranges.push((e.buffer_offset, e.buffer_len, cf("buffer_offset")));
            ranges.push((e.ctrl_offset, e.ctrl_len, cf("ctrl_offset")));
            check(
                e.notify <= 1,
                || cf("notify"),
                e.notify.into(),
                "unknown flags",
            )?;
            // User metadata.
            check(
                e.user_meta_len <= MAX_USER_META,
                || cf("user_meta_len"),
                e.user_meta_len,
                "more than 64 KiB of user metadata",
            )?;
            let user_meta = if e.user_meta_len == 0 {
                check(
                    e.user_meta_offset == 0,
                    || cf("user_meta_offset"),
                    e.user_meta_offset,
                    "must be 0 when there is no user metadata",
                )?;
                Vec::new()
            } else {
                check_within(
                    || cf("user_meta_offset"),
                    e.user_meta_offset,
                    e.user_meta_len,
                    "metadata",
                    h.metadata_offset,
                    h.metadata_len,
                )?;
                b.range(&cf("user_meta"), e.user_meta_offset, e.user_meta_len)?
                    .to_vec()
            };
            // Objects.
            check(
                e.object_count >= 1 && e.object_count <= MAX_OBJECTS,
                || cf("object_count"),
                e.object_count.into(),
                "must be between 1 and 64",
            )?;
            let descs_len = u64::from(e.object_count) * size_of::<ObjectDesc>() as u64;
            check_within(
                || cf("objects_offset"),
                e.objects_offset,
                descs_len,
                "metadata",
                h.metadata_offset,
                h.metadata_len,
            )?;
            let mut objects: Vec<ObjectInfo> = Vec::with_capacity(e.object_count as usize);
            for j in 0..e.object_count {
                let of = |field: &str| format!("channel[{i}] `{name}`.object[{j}].{field}");
                let d: ObjectDesc = b.read(
                    &of("descriptor"),
                    e.objects_offset + u64::from(j) * size_of::<ObjectDesc>() as u64,
                )?;
                check(
                    d.align.is_power_of_two() && d.align <= u64::from(MAX_CACHE_LINE),
                    || of("align"),
                    d.align,
                    "must be a power of two no larger than 4096",
                )?;
                check(
                    d.align <= cl,
                    || of("align"),
                    d.align,
                    "larger than the segment's cache line, so slots cannot honour it",
                )?;
                check(d.size >= 1, || of("size"), d.size, "must not be 0")?;
                check(
                    d.reserved == 0,
                    || of("reserved"),
                    d.reserved,
                    "must be zero",
                )?;
                check(
                    d.offset.is_multiple_of(d.align),
                    || of("offset"),
                    d.offset,
                    "not a multiple of the object's alignment",
                )?;
                let end = d
                    .offset
                    .checked_add(d.size)
                    .ok_or_else(|| Error::corrupt(of("offset"), d.offset, "overflows"))?;
                check(
                    end <= e.slot_size,
                    || of("offset"),
                    d.offset,
                    &format!(
                        "object ends at {end}, past the slot's {} bytes",
                        e.slot_size
                    ),
                )?;
                for (k, other) in objects.iter().enumerate() {
                    let disjoint = end <= other.offset || other.offset + other.size <= d.offset;
                    check(
                        disjoint,
                        || of("offset"),
                        d.offset,
                        &format!("overlaps object[{k}] of the same channel"),
                    )?;
                    check(
                        other.id != d.id,
                        || of("id"),
                        d.id,
                        &format!("same id as object[{k}]"),
                    )?;
                }
                check(
                    d.schema_len <= schema::MAX_ENCODED_LEN as u64,
                    || of("schema_len"),
                    d.schema_len,
                    "encoded schema too long",
                )?;
                check_within(
                    || of("schema_offset"),
                    d.schema_offset,
                    d.schema_len,
                    "metadata",
                    h.metadata_offset,
                    h.metadata_len,
                )?;
                let raw = b.range(&of("schema"), d.schema_offset, d.schema_len)?;
                let schema = schema::decode(raw).map_err(|source| Error::MalformedSchema {
                    context: format!("object[{j}] of channel `{name}`"),
                    source,
                })?;
                check(
                    schema.size == d.size && schema.align == d.align,
                    || of("size"),
                    d.size,
                    "differs from the size or alignment in the object's schema",
                )?;
                check(
                    schema::fingerprint(&schema) == d.fingerprint,
                    || of("fingerprint"),
                    d.fingerprint,
                    "does not match the object's schema",
                )?;
                objects.push(ObjectInfo {
                    id: d.id,
                    fingerprint: d.fingerprint,
                    offset: d.offset,
                    size: d.size,
                    align: d.align,
                    schema,
                });
            }
            let objects_end = objects.iter().map(|o| o.offset + o.size).max().unwrap_or(0);
            check(
                e.slot_size == objects_end,
                || cf("slot_size"),
                e.slot_size,
                &format!("must be where the last object ends ({objects_end})"),
            )?;
            channels.push(ChannelInfo {
                name,
                kind,
                direction,
                slot_stride: e.slot_stride,
                buffer_offset: e.buffer_offset,
                ctrl_offset: e.ctrl_offset,
                slot_count: e.slot_count,
                objects,
                user_meta,
                notify: e.notify & 1 != 0,
            });
        }
        // Buffers and control blocks of all channels must be pairwise disjoint.
        ranges.sort_by_key(|r| r.0);
        for w in ranges.windows(2) {
            let (a_off, a_len, _) = &w[0];
            let (b_off, _, b_name) = &w[1];
            if a_off + a_len > *b_off {
                return Err(Error::corrupt(
                    b_name.clone(),
                    *b_off,
                    format!("overlaps the range {a_off}..{}", a_off + a_len),
                ));
            }
        }
        Ok(Layout {
            header: h,
            channels,
        })
    }
}

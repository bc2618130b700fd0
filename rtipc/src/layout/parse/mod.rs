//! Reading a segment written by another process, which is untrusted: the header
//! (`header.rs`), then each table entry (`entry.rs`), then each entry's objects (`object.rs`),
//! every value checked before it is used.

use std::collections::HashSet;

use zerocopy::{FromBytes, Immutable, KnownLayout};

use super::format::{ChannelEntry, Header};
use super::{ChannelKind, Direction, FormatError};
use crate::schema::Schema;

mod entry;
mod header;
mod object;

pub(crate) use header::header;

type Result<T> = std::result::Result<T, FormatError>;

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
    pub kind: ChannelKind,
    pub direction: Direction,
    pub slot_count: u32,
    pub slot_stride: u64,
    pub buffer_offset: u64,
    pub ctrl_offset: u64,
    pub ctrl_len: u64,
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
    /// The channel called `name`, with its index in the table.
    pub(crate) fn channel(&self, name: &str) -> Option<(usize, &ChannelInfo)> {
        self.channels
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }
}

fn check(cond: bool, field: impl FnOnce() -> String, value: u64, reason: &str) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(FormatError::corrupt(field(), value, reason))
    }
}

fn read<T: FromBytes + KnownLayout + Immutable>(bytes: &[u8], at: u64, field: &str) -> Result<T> {
    let start = usize::try_from(at).ok();
    let raw = start.and_then(|s| bytes.get(s..s.checked_add(size_of::<T>())?));
    let raw = raw.ok_or_else(|| FormatError::corrupt(field, at, "lies outside the copied part"))?;
    T::read_from_bytes(raw).map_err(|_| FormatError::corrupt(field, at, "cannot be read"))
}

/// The metadata, copied out of the segment, with the absolute offset it was copied from.
struct Metadata<'a> {
    bytes: &'a [u8],
    offset: u64,
    /// Bytes handed out so far: at most the metadata's length, so that what is decoded from it
    /// is bounded by its size even if a peer points many descriptors at the same bytes.
    used: u64,
}

impl Metadata<'_> {
    /// The range `offset..offset + len` (absolute), checked to lie inside the metadata.
    fn range(&mut self, field: impl Fn() -> String, offset: u64, len: u64) -> Result<&[u8]> {
        let end = offset.checked_add(len).ok_or_else(|| {
            FormatError::corrupt(field(), offset, format!("offset + length {len} overflows"))
        })?;
        let region_end = self.offset + self.bytes.len() as u64;
        if offset < self.offset || end > region_end {
            return Err(FormatError::corrupt(
                field(),
                offset,
                format!(
                    "range {offset}..{end} is not inside the metadata ({}..{region_end})",
                    self.offset
                ),
            ));
        }
        self.used += len;
        if self.used > self.bytes.len() as u64 {
            return Err(FormatError::corrupt(
                field(),
                offset,
                "the metadata's parts overlap: together they are longer than the metadata",
            ));
        }
        let start = (offset - self.offset) as usize;
        Ok(&self.bytes[start..start + len as usize])
    }
}

/// Checks `[offset, offset + len)` against the buffers part of the segment.
fn check_in_buffers(field: impl Fn() -> String, offset: u64, len: u64, h: &Header) -> Result<()> {
    let end = offset.checked_add(len).ok_or_else(|| {
        FormatError::corrupt(field(), offset, format!("offset + length {len} overflows"))
    })?;
    let region_end = h.buffers_offset + h.buffers_len; // checked with the header
    if offset < h.buffers_offset || end > region_end {
        return Err(FormatError::corrupt(
            field(),
            offset,
            format!(
                "range {offset}..{end} is not inside the buffers ({}..{region_end})",
                h.buffers_offset
            ),
        ));
    }
    Ok(())
}

/// Parses the channel table and the metadata of a segment whose header `h` was validated.
/// `table` holds the table's bytes (from `h.table_offset`), `metadata` the metadata's (from
/// `h.metadata_offset`), both copied out of the segment.
pub(crate) fn channels(h: Header, table: &[u8], metadata: &[u8]) -> Result<Layout> {
    let mut meta = Metadata {
        bytes: metadata,
        offset: h.metadata_offset,
        used: 0,
    };
    let mut channels = Vec::with_capacity(h.channel_count as usize);
    let mut names = HashSet::new();
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    for i in 0..h.channel_count {
        let e: ChannelEntry = read(
            table,
            u64::from(i) * u64::from(h.entry_size),
            &format!("channel[{i}].entry"),
        )?;
        let c = entry::parse_entry(&h, i, &e, &mut meta)?;
        if !names.insert(c.name.clone()) {
            return Err(FormatError::corrupt(
                format!("channel[{i}] `{}`.name", c.name),
                e.name_offset,
                "duplicate channel name",
            ));
        }
        ranges.push((
            e.buffer_offset,
            e.buffer_len,
            format!("channel[{i}] `{}`.buffer_offset", c.name),
        ));
        ranges.push((
            e.ctrl_offset,
            e.ctrl_len,
            format!("channel[{i}] `{}`.ctrl_offset", c.name),
        ));
        channels.push(c);
    }
    // Buffers and control blocks of all channels must be pairwise disjoint.
    ranges.sort_by_key(|r| r.0);
    for w in ranges.windows(2) {
        let (a_off, a_len, _) = &w[0];
        let (b_off, _, b_name) = &w[1];
        if a_off + a_len > *b_off {
            return Err(FormatError::corrupt(
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

impl Layout {
    /// Validates a whole segment image of `bytes` (tests and tools that already hold a copy).
    #[cfg(test)]
    pub(crate) fn parse(bytes: &[u8]) -> Result<Layout> {
        let h = header(bytes, bytes.len() as u64)?;
        let table_len = u64::from(h.channel_count) * u64::from(h.entry_size);
        let t = h.table_offset as usize;
        let m = h.metadata_offset as usize;
        channels(
            h,
            &bytes[t..t + table_len as usize],
            &bytes[m..m + h.metadata_len as usize],
        )
    }
}

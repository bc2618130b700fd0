//! Reading a segment written by another process, which is untrusted: the header, then each
//! table entry, then each entry's objects, every value checked before it is used.

use std::collections::HashSet;

use zerocopy::{FromBytes, Immutable, KnownLayout};

use super::format::{
    ChannelEntry, Header, ObjectDesc, DESC_SIZE, ENTRY_SIZE, HEADER_SIZE, MAGIC, READY, VERSION,
};
use super::{
    align_up, ChannelKind, Direction, FormatError, ShapeError, MAX_CACHE_LINE, MAX_CHANNELS,
    MAX_CHANNEL_NAME, MAX_METADATA, MAX_OBJECTS, MAX_USER_META, MIN_CACHE_LINE,
};
use crate::schema::{self, Schema};

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

/// Validates a header read from a segment of `mapped` bytes.
pub(crate) fn header(raw: &[u8], mapped: u64) -> Result<Header> {
    if mapped < HEADER_SIZE {
        return Err(FormatError::corrupt(
            "segment size",
            mapped,
            format!("smaller than the {HEADER_SIZE}-byte header"),
        ));
    }
    let h: Header = read(raw, 0, "header")?;
    let hf = |name: &str| format!("header.{name}");
    check(
        h.magic == MAGIC,
        || hf("magic"),
        h.magic,
        "not an rtipc segment",
    )?;
    if h.version != VERSION {
        return Err(FormatError::Version {
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
        h.cache_line.is_power_of_two() && (MIN_CACHE_LINE..=MAX_CACHE_LINE).contains(&h.cache_line),
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
        Some(u64::from(h.entry_size)) == align_up(ENTRY_SIZE, cl),
        || hf("entry_size"),
        h.entry_size.into(),
        "must be 128 rounded up to the cache line",
    )?;
    check(
        h.metadata_len <= MAX_METADATA,
        || hf("metadata_len"),
        h.metadata_len,
        &format!("more than {MAX_METADATA} bytes of metadata"),
    )?;
    check_parts(&h)?;
    Ok(h)
}

/// The table, the buffers and the metadata follow one another in order, aligned to the cache
/// line, inside the segment.
fn check_parts(h: &Header) -> Result<()> {
    let cl = u64::from(h.cache_line);
    let hf = |name: &str| format!("header.{name}");
    let table_len = u64::from(h.channel_count) * u64::from(h.entry_size);
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
        check(
            off <= h.segment_size,
            || hf(name),
            off,
            "lies past segment_size",
        )?;
        let end = off.checked_add(len).filter(|&end| end <= h.segment_size);
        prev_end = end.ok_or_else(|| {
            FormatError::corrupt(hf(len_name), shown, "the part extends past segment_size")
        })?;
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
        let c = parse_entry(&h, i, &e, &mut meta)?;
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

/// Parses and checks table entry `i`.
fn parse_entry(
    h: &Header,
    i: u32,
    e: &ChannelEntry,
    meta: &mut Metadata<'_>,
) -> Result<ChannelInfo> {
    let cl = u64::from(h.cache_line);
    let ef = |name: &str| format!("channel[{i}].{name}");
    let kind = ChannelKind::from_code(e.kind)
        .ok_or_else(|| FormatError::corrupt(ef("kind"), e.kind.into(), "unknown channel kind"))?;
    let direction = Direction::from_code(e.direction).ok_or_else(|| {
        FormatError::corrupt(ef("direction"), e.direction.into(), "unknown direction")
    })?;
    check(
        e.name_len >= 1 && e.name_len <= MAX_CHANNEL_NAME,
        || ef("name_len"),
        e.name_len.into(),
        "must be between 1 and 255",
    )?;
    let raw = meta.range(|| ef("name_offset"), e.name_offset, e.name_len.into())?;
    let name = std::str::from_utf8(raw)
        .map_err(|_| FormatError::corrupt(ef("name"), e.name_offset, "not valid UTF-8"))?
        .to_owned();
    let cf = |field: &str| format!("channel[{i}] `{name}`.{field}");
    match kind.check_shape(e.slot_count, e.object_count) {
        Ok(()) => {}
        Err(ShapeError::Slots(rule)) => {
            return Err(FormatError::corrupt(
                cf("slot_count"),
                e.slot_count.into(),
                rule,
            ))
        }
        Err(ShapeError::Objects(rule)) => {
            return Err(FormatError::corrupt(
                cf("object_count"),
                e.object_count.into(),
                rule,
            ))
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
    check_buffers(h, e, &cf)?;
    check(
        e.notify <= 1,
        || cf("notify"),
        e.notify.into(),
        "unknown flags",
    )?;
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
        meta.range(
            || cf("user_meta_offset"),
            e.user_meta_offset,
            e.user_meta_len,
        )?
        .to_vec()
    };
    let objects = parse_objects(i, &name, e, cl, meta)?;
    Ok(ChannelInfo {
        name,
        kind,
        direction,
        slot_count: e.slot_count,
        slot_stride: e.slot_stride,
        buffer_offset: e.buffer_offset,
        ctrl_offset: e.ctrl_offset,
        ctrl_len: e.ctrl_len,
        objects,
        user_meta,
        notify: e.notify & 1 != 0,
    })
}

/// The control block and the slots: sizes, alignment, position inside the buffers.
fn check_buffers(h: &Header, e: &ChannelEntry, cf: &dyn Fn(&str) -> String) -> Result<()> {
    let cl = u64::from(h.cache_line);
    let kind = ChannelKind::from_code(e.kind).expect("checked by the caller");
    let buffer_len = e
        .slot_stride
        .checked_mul(e.slot_count.into())
        .ok_or_else(|| FormatError::corrupt(cf("slot_stride"), e.slot_stride, "overflows"))?;
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
    check_in_buffers(|| cf("buffer_offset"), e.buffer_offset, e.buffer_len, h)?;
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
    check_in_buffers(|| cf("ctrl_offset"), e.ctrl_offset, e.ctrl_len, h)?;
    check(
        e.ctrl_offset.checked_add(e.ctrl_len) == Some(e.buffer_offset),
        || cf("buffer_offset"),
        e.buffer_offset,
        "slots must follow the control block",
    )
}

/// Parses and checks the objects of table entry `i` (called `name`).
fn parse_objects(
    i: u32,
    name: &str,
    e: &ChannelEntry,
    cl: u64,
    meta: &mut Metadata<'_>,
) -> Result<Vec<ObjectInfo>> {
    let cf = |field: &str| format!("channel[{i}] `{name}`.{field}");
    check(
        e.object_count >= 1 && e.object_count <= MAX_OBJECTS,
        || cf("object_count"),
        e.object_count.into(),
        "must be between 1 and 64",
    )?;
    let descs_len = u64::from(e.object_count) * DESC_SIZE;
    let descs = meta
        .range(|| cf("objects_offset"), e.objects_offset, descs_len)?
        .to_vec();
    let mut objects: Vec<ObjectInfo> = Vec::with_capacity(e.object_count as usize);
    for j in 0..e.object_count {
        let of = |field: &str| format!("channel[{i}] `{name}`.object[{j}].{field}");
        let d: ObjectDesc = read(&descs, u64::from(j) * DESC_SIZE, &of("descriptor"))?;
        let o = parse_object(
            &d,
            e.slot_size,
            cl,
            &of,
            meta,
            &format!("object[{j}] of channel `{name}`"),
        )?;
        for (k, other) in objects.iter().enumerate() {
            let disjoint =
                o.offset + o.size <= other.offset || other.offset + other.size <= o.offset;
            check(
                disjoint,
                || of("offset"),
                o.offset,
                &format!("overlaps object[{k}] of the same channel"),
            )?;
            check(
                other.id != o.id,
                || of("id"),
                o.id,
                &format!("same id as object[{k}]"),
            )?;
        }
        objects.push(o);
    }
    let objects_end = objects.iter().map(|o| o.offset + o.size).max().unwrap_or(0);
    check(
        e.slot_size == objects_end,
        || cf("slot_size"),
        e.slot_size,
        &format!("must be where the last object ends ({objects_end})"),
    )?;
    Ok(objects)
}

/// Parses and checks one object descriptor and decodes its schema.
fn parse_object(
    d: &ObjectDesc,
    slot_size: u64,
    cl: u64,
    of: &dyn Fn(&str) -> String,
    meta: &mut Metadata<'_>,
    context: &str,
) -> Result<ObjectInfo> {
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
        .ok_or_else(|| FormatError::corrupt(of("offset"), d.offset, "overflows"))?;
    check(
        end <= slot_size,
        || of("offset"),
        d.offset,
        &format!("object ends at {end}, past the slot's {slot_size} bytes"),
    )?;
    check(
        d.schema_len <= schema::MAX_ENCODED_LEN as u64,
        || of("schema_len"),
        d.schema_len,
        "encoded schema too long",
    )?;
    let raw = meta.range(|| of("schema_offset"), d.schema_offset, d.schema_len)?;
    let schema = schema::decode(raw).map_err(|error| FormatError::Schema {
        context: context.to_owned(),
        error,
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
    Ok(ObjectInfo {
        id: d.id,
        fingerprint: d.fingerprint,
        offset: d.offset,
        size: d.size,
        align: d.align,
        schema,
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

//! The header: magic, version, sizes, and the order of the segment's parts.

use super::super::format::{
    Header, ENTRY_SIZE, HEADER_SIZE, MAGIC, READY, RECORD_VERSION, VERSION,
};
use super::super::{
    align_up, FormatError, MAX_CACHE_LINE, MAX_CHANNELS, MAX_METADATA, MIN_CACHE_LINE,
};
use super::{check, read, Result};

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
    if !(VERSION..=RECORD_VERSION).contains(&h.version) {
        return Err(FormatError::Version {
            found: h.version,
            supported: RECORD_VERSION,
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
        "must be a power of two between 32 and 4096",
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

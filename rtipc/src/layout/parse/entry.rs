//! One channel table entry: kind, direction, name, control block, slots, user metadata.

use super::super::format::{ChannelEntry, Header};
use super::super::{
    align_up, ChannelKind, Direction, FormatError, ShapeError, MAX_CHANNEL_NAME, MAX_USER_META,
};
use super::{check, check_in_buffers, object, ChannelInfo, Metadata, Result};

/// Parses and checks table entry `i`.
pub(super) fn parse_entry(
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
    let objects = object::parse_objects(i, &name, e, cl, meta)?;
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

//! The object descriptors of a table entry, and their schemas.

use super::super::format::{ChannelEntry, ObjectDesc, DESC_SIZE};
use super::super::spec::record_min_ring;
use super::super::{
    record_align, ChannelKind, FormatError, MAX_CACHE_LINE, MAX_OBJECTS, MAX_RECORD_RING,
};
use super::{check, read, Metadata, ObjectInfo, Result};
use crate::schema;

/// Parses and checks the objects of table entry `i` (called `name`).
pub(super) fn parse_objects(
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
        // A queue's one object fills its slot from the start, and a record channel's element
        // type is described at offset 0: their handles rely on it.
        check(
            (e.kind != ChannelKind::Queue.code() && e.kind != ChannelKind::Record.code())
                || o.offset == 0,
            || of("offset"),
            o.offset,
            "a queue's object or a record channel's element must be at offset 0",
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
    if e.kind == ChannelKind::Record.code() {
        return record_ring(e, cl, &objects, &cf).map(|()| objects);
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

/// Checks a record channel's ring (its one slot of `slot_size` bytes) against its element
/// type: a whole number of cache lines, of pairs of record blocks, room for two records of
/// one element, and at most [`MAX_RECORD_RING`] bytes.
fn record_ring(
    e: &ChannelEntry,
    cl: u64,
    objects: &[ObjectInfo],
    cf: &dyn Fn(&str) -> String,
) -> Result<()> {
    let [o] = objects else {
        return Err(FormatError::corrupt(
            cf("object_count"),
            objects.len() as u64,
            "a record channel carries exactly one element type",
        ));
    };
    let a = record_align(o.align);
    let min = record_min_ring(o.size, o.align);
    check(
        e.slot_size.is_multiple_of(cl)
            && e.slot_size.is_multiple_of(2 * a)
            && (min..=MAX_RECORD_RING).contains(&e.slot_size),
        || cf("slot_size"),
        e.slot_size,
        &format!(
            "a record channel's ring must be a multiple of the cache line and of {} bytes, \
             from {min} to {MAX_RECORD_RING} bytes",
            2 * a
        ),
    )
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

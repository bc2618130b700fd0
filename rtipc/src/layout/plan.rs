//! The plan of a segment: every offset and length, computed from the channel specs before any
//! memory is touched. The segment's size comes from here.

use super::format::{
    ChannelEntry, Header, ObjectDesc, DESC_SIZE, ENTRY_SIZE, FANOUT_VERSION, HEADER_SIZE, MAGIC,
    RECORD_VERSION, REGION_VERSION, VERSION,
};
use super::spec::{validate, ChannelSpec, InitCtrl};
use super::{align_up, FormatError, MAX_METADATA};
use crate::schema;

/// One channel of a plan.
pub(crate) struct ChannelPlan {
    /// The channel's table entry, complete.
    pub entry: ChannelEntry,
    /// Its object descriptors, complete.
    pub descs: Vec<ObjectDesc>,
    /// Its objects' encoded schemas, in the order of `descs`.
    pub schemas: Vec<Vec<u8>>,
    /// The kind's protocol's initial words.
    pub init: InitCtrl,
    /// The initial bytes of slot 0 (a region's object), if not zeros.
    pub data: Option<super::spec::InitData>,
}

/// A segment laid out: the header (with `ready` still 0) and every channel.
pub(crate) struct Plan {
    pub header: Header,
    pub channels: Vec<ChannelPlan>,
    /// The channels' names and user metadata, in order (the plan's entries point at them).
    pub texts: Vec<(Vec<u8>, Vec<u8>)>,
}

fn pad8(v: u64) -> u64 {
    v.div_ceil(8) * 8
}

impl Plan {
    /// Lays out `channels` for cache lines of `cache_line` bytes.
    pub(crate) fn new(
        channels: &[ChannelSpec],
        cache_line: u32,
        creator_pid: u32,
        creation_token: u64,
    ) -> Result<Plan, FormatError> {
        validate(channels, cache_line)?;
        let cl = u64::from(cache_line);
        let up = |v: u64| align_up(v, cl).ok_or_else(too_big);
        let entry_size = up(ENTRY_SIZE)?;
        let table_offset = up(HEADER_SIZE)?;
        let table_len = entry_size * channels.len() as u64;

        // Buffers: per channel its control block, then its slots.
        let buffers_offset = up(table_offset + table_len)?;
        let mut cursor = buffers_offset;
        let mut planned = Vec::with_capacity(channels.len());
        for c in channels {
            let p = channel_plan(c, cl, cursor)?;
            cursor = (p.entry.buffer_offset)
                .checked_add(p.entry.buffer_len)
                .ok_or_else(too_big)?;
            planned.push(p);
        }
        let buffers_len = cursor - buffers_offset;

        // Metadata, per channel: object descriptors, their schemas, the name, user metadata,
        // each part starting on 8 bytes.
        let metadata_offset = up(cursor)?;
        let (texts, at) = place_metadata(channels, &mut planned, metadata_offset)?;
        let metadata_len = at - metadata_offset;
        if metadata_len > MAX_METADATA {
            return Err(FormatError::Invalid(format!(
                "the channels' schemas, names and user metadata take {metadata_len} bytes, more \
                 than the {MAX_METADATA} a segment holds"
            )));
        }
        let segment_size = align_up(at, 4096).ok_or_else(too_big)?;
        let header = Header {
            magic: MAGIC,
            version: if channels
                .iter()
                .any(|c| c.kind == super::ChannelKind::Record)
            {
                RECORD_VERSION
            } else if channels
                .iter()
                .any(|c| c.kind == super::ChannelKind::Region)
            {
                REGION_VERSION
            } else if channels
                .iter()
                .any(|c| c.kind == super::ChannelKind::State && c.slots > 3)
            {
                FANOUT_VERSION
            } else {
                VERSION
            },
            header_size: HEADER_SIZE as u32,
            ready: 0,
            cache_line,
            segment_size,
            channel_count: channels.len() as u32,
            entry_size: entry_size as u32,
            table_offset,
            buffers_offset,
            buffers_len,
            metadata_offset,
            metadata_len,
            creator_pid,
            flags: 0,
            creation_token,
            reserved: [0; 4],
        };
        Ok(Plan {
            header,
            channels: planned,
            texts,
        })
    }

    /// The header as it reads once the segment is written (with `ready` set).
    pub(crate) fn header_ready(&self) -> Header {
        Header {
            ready: super::format::READY,
            ..self.header
        }
    }

    /// The segment's size in bytes: a multiple of 4096.
    pub(crate) fn size(&self) -> u64 {
        self.header.segment_size
    }
}

fn too_big() -> FormatError {
    FormatError::Invalid("the segment's size overflows".into())
}

/// The control block, slots and object descriptors of channel `c`, whose control block starts
/// at `ctrl_offset`; its metadata offsets are filled in by [`place_metadata`].
fn channel_plan(c: &ChannelSpec, cl: u64, ctrl_offset: u64) -> Result<ChannelPlan, FormatError> {
    let ctrl_len = c.kind.ctrl_len(c.slots, cl);
    let mut slot_size = 0u64;
    let mut descs = Vec::with_capacity(c.objects.len());
    let mut schemas = Vec::with_capacity(c.objects.len());
    for o in &c.objects {
        let offset = align_up(slot_size, o.align).ok_or_else(too_big)?;
        slot_size = offset.checked_add(o.size).ok_or_else(too_big)?;
        schemas.push(schema::encode(&o.schema));
        descs.push(ObjectDesc {
            id: o.id,
            fingerprint: o.fingerprint,
            offset,
            size: o.size,
            align: o.align,
            ..ObjectDesc::default()
        });
    }
    if c.kind == super::ChannelKind::Record {
        // The ring: a whole number of pairs of cache lines (the object's alignment is at most a
        // line), so that half of it is a whole number of record blocks.
        slot_size = align_up(c.ring, 2 * cl).ok_or_else(too_big)?;
        if slot_size > super::MAX_RECORD_RING {
            return Err(FormatError::Invalid(format!(
                "record channel `{}`: a ring of {} bytes rounds up to {slot_size}, more than {}",
                c.name,
                c.ring,
                super::MAX_RECORD_RING
            )));
        }
    }
    let slot_stride = align_up(slot_size, cl).ok_or_else(too_big)?;
    let buffer_offset = ctrl_offset.checked_add(ctrl_len).ok_or_else(too_big)?;
    let buffer_len = slot_stride
        .checked_mul(c.slots.into())
        .ok_or_else(too_big)?;
    Ok(ChannelPlan {
        entry: ChannelEntry {
            kind: c.kind.code(),
            direction: c.direction.code(),
            slot_count: c.slots,
            object_count: c.objects.len() as u32,
            slot_size,
            slot_stride,
            buffer_offset,
            buffer_len,
            ctrl_offset,
            ctrl_len,
            notify: u32::from(c.notify),
            ..ChannelEntry::default()
        },
        descs,
        schemas,
        init: c.init,
        data: c.data.clone(),
    })
}

/// Places each channel's metadata from `metadata_offset` on: object descriptors, their
/// schemas, the name, user metadata, each part starting on 8 bytes. Returns the names and user
/// metadata in order, and where the metadata ends.
#[allow(clippy::type_complexity)]
fn place_metadata(
    channels: &[ChannelSpec],
    planned: &mut [ChannelPlan],
    metadata_offset: u64,
) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, u64), FormatError> {
    let mut at = metadata_offset;
    let mut texts = Vec::with_capacity(channels.len());
    for (c, p) in channels.iter().zip(planned) {
        p.entry.objects_offset = at;
        at += DESC_SIZE * p.descs.len() as u64;
        for (d, s) in p.descs.iter_mut().zip(&p.schemas) {
            d.schema_offset = at;
            d.schema_len = s.len() as u64;
            at = at.checked_add(pad8(s.len() as u64)).ok_or_else(too_big)?;
        }
        p.entry.name_offset = at;
        p.entry.name_len = c.name.len() as u32;
        at += pad8(c.name.len() as u64);
        if !c.user_meta.is_empty() {
            p.entry.user_meta_offset = at;
            p.entry.user_meta_len = c.user_meta.len() as u64;
            at += pad8(c.user_meta.len() as u64);
        }
        texts.push((c.name.as_bytes().to_vec(), c.user_meta.clone()));
    }
    Ok((texts, at))
}

//! The fixed-size records of the format, as `#[repr(C)]` structs read and written with
//! zerocopy. Their fields are documented byte by byte in the [module documentation](super).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"RTIPCSG1"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RTIPCSG1");
/// The layout version this build writes for segments without fan-out channels, and the oldest
/// it reads.
pub(crate) const VERSION: u32 = 2;
/// The layout version of a segment with a fan-out state channel, and the newest this build
/// reads: a build that knows only version 2 refuses such a segment.
pub(crate) const FANOUT_VERSION: u32 = 3;
/// The layout version of a segment with a shared region (whatever else it has): a build from
/// before regions reads at most [`FANOUT_VERSION`] and refuses it.
pub(crate) const REGION_VERSION: u32 = 4;
/// The layout version of a segment with a record channel (whatever else it has), and the
/// newest this build reads: a build from before record channels refuses it.
pub(crate) const RECORD_VERSION: u32 = 5;
/// Value of [`Header::ready`] once the creator has finished writing the segment.
pub(crate) const READY: u32 = 0x5245_4459;
/// Offset of [`Header::ready`] in the header.
pub(crate) const READY_OFFSET: u64 = 16;
/// Size of [`Header`].
pub(crate) const HEADER_SIZE: u64 = size_of::<Header>() as u64;
/// Size of [`ChannelEntry`].
pub(crate) const ENTRY_SIZE: u64 = size_of::<ChannelEntry>() as u64;
/// Size of [`ObjectDesc`].
pub(crate) const DESC_SIZE: u64 = size_of::<ObjectDesc>() as u64;

/// The segment header, at offset 0.
#[derive(
    FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
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

/// One entry of the channel table.
#[derive(
    FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
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
#[derive(
    FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
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

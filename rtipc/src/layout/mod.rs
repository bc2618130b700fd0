//! The segment's on-memory format, version 2 (3 with fan-out channels, 4 with a shared region,
//! 5 with a record channel): planned, written and parsed in this module only.
//!
//! ```text
//! | Header | Channel table | Buffers (control blocks + slots) | Metadata |
//! ```
//!
//! Everything a peer needs to check compatibility is inside the segment, so a third program
//! can read it too. All integers are little-endian fixed-width `u32`/`u64`, every struct is
//! `#[repr(C)]` without padding; offsets below are in bytes.
//!
//! **Header** (128 bytes at offset 0):
//!
//! | offset | field | |
//! |---|---|---|
//! | 0 | `magic: u64` | `b"RTIPCSG1"` |
//! | 8 | `version: u32` | 5 if the segment has a record channel, else 4 if it has a shared region, else 3 if it has a fan-out state channel, else 2 (1: before the crash-safe protocols; refused). A build that reads older versions only thus refuses a channel it does not know instead of misreading it |
//! | 12 | `header_size: u32` | 128 |
//! | 16 | `ready: u32` | `0x52454459` once the creator has finished (stored last, release) |
//! | 20 | `cache_line: u32` | the line size the layout aligns to; the peer follows it |
//! | 24 | `segment_size: u64` | at most the mapped size |
//! | 32 | `channel_count: u32` | at most [`MAX_CHANNELS`] |
//! | 36 | `entry_size: u32` | stride of table entries: 128 rounded up to the cache line |
//! | 40 | `table_offset: u64` | |
//! | 48 | `buffers_offset: u64`, 56 `buffers_len: u64` | |
//! | 64 | `metadata_offset: u64`, 72 `metadata_len: u64` | at most [`MAX_METADATA`] |
//! | 80 | `creator_pid: u32`, 84 `flags: u32` (0) | |
//! | 88 | `creation_token: u64` | the creator's start time, so a reused pid is not mistaken for it |
//! | 96 | `reserved: [u64; 4]` | zero |
//!
//! **Channel table entry** (128 bytes, padded to `entry_size`):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `kind: u32` (1 state, 2 queue, 3 region, 4 record), 4 `direction: u32` (1 creator to peer, 2 peer to creator) |
//! | 8 | `slot_count: u32`, 12 `object_count: u32` |
//! | 16 | `slot_size: u64` (where the last object ends; a record channel's ring size), 24 `slot_stride: u64` (rounded up to the cache line) |
//! | 32 | `buffer_offset: u64`, 40 `buffer_len: u64` (= stride × count) |
//! | 48 | `ctrl_offset: u64`, 56 `ctrl_len: u64` (control block: whole cache lines, followed directly by the slots) |
//! | 64 | `objects_offset: u64` (the channel's object descriptors) |
//! | 72 | `name_offset: u64`, 80 `name_len: u32`, 84 `notify: u32` |
//! | 88 | `user_meta_offset: u64`, 96 `user_meta_len: u64` |
//! | 104 | `reserved: [u64; 3]` (zero) |
//!
//! **Object descriptor** (64 bytes): `id: u64`, `fingerprint: u64`, `offset: u64` (in the
//! slot), `size: u64`, `align: u64`, `schema_offset: u64`, `schema_len: u64` (the schema in
//! [`schema::encode`](crate::schema::encode)'s format), `reserved: u64`.
//!
//! **Control blocks** are whole cache lines, the same first two for every kind:
//!
//! * line 0: the claim words, the pid of the process holding the producer end at +0 and of the
//!   one holding the consumer end at +8 (0: free);
//! * line 1: notification, the 32-bit `waiting` word at +0 (see
//!   [`notify`](crate::notify)).
//!
//! Then each kind's own lines, producer-written and consumer-written words on lines of their
//! own:
//!
//! * state (4 lines, 3 slots): line 2 the triple buffer's state word (the middle slot, the
//!   consumer's slot, a dirty bit, a request bit and the newest sequence number; the producer's
//!   slot is the third); line 3 the sequence number of each slot's data. Every change of the
//!   slots' assignment is one compare-and-swap of the state word.
//! * queue (capacity `N`, `N + 2` slots): line 2 the producer's `head` and record (the slot it
//!   holds, or the exchange it is making); line 3 the position of a pop the consumer is making,
//!   and its record; line 4 the consumer's `tail` alone (the one consumer word `try_push`
//!   reads); then `N` ring cells of 16 bytes (the message's full position,
//!   then a state word: free bit, the position's low 39 bits, 24-bit slot index), as many lines as
//!   they fill; then one 8-byte header per slot (the position of the last message written into
//!   it), as many lines as they fill.
//! * fan-out state (`N` consumers, 2 to [`MAX_FANOUT_CONSUMERS`], `N + 2` slots): line 2 the
//!   latest word (the newest slot, the slot before it, and which consumers took each); line 3
//!   on: the sequence number of each slot's data (`N + 2` words), then the producer's table
//!   (`N` words: the slot each consumer holds as the producer last learned it, `u64::MAX` for
//!   none), as many lines as they fill; then one line per consumer, written by that consumer:
//!   the pid of the process holding that consumer end at +0 (consumer 0's is also on line 0),
//!   the sequence number of the last update it took at +8, its 32-bit `waiting` word at +16.
//! * shared region (1 slot, 1 object): the two common lines only, unused. Its slot holds the
//!   object, which the creator initialises before `ready` and both sides then change in place
//!   through its atomics.
//!
//! * record (1 slot: the ring, 1 object: the element type, at offset 0): line 2 the
//!   producer's `tail` (the next free byte position) at +0, the last committed sequence number
//!   at +8 (bit 63 while a commit of it is under way), the tail that commit stores at +16;
//!   line 3 the consumer's `head` (the oldest record not taken) at +0, `reading` (the position
//!   of the record it holds, `u64::MAX` for none) at +8, the number of the last record taken at
//!   +16. The ring's size (`slot_size`) is a multiple of the cache line and of twice the record
//!   alignment (16 bytes, or the element's alignment if larger), holds two records of one
//!   element at least, and at most [`MAX_RECORD_RING`] bytes; a record takes a header block of
//!   one record alignment (its length in elements, or bit 63 and the bytes of a padding record
//!   up to the ring's end, then its sequence number) and its payload rounded up to it, and at
//!   most half the ring. Positions are monotonic byte counts, taken modulo the ring's size.
//!
//! Everything outside control blocks and slots is immutable once `ready` is set.
//!
//! A peer copies the header, the table and the metadata out of the segment (no more: the
//! copies are bounded by [`MAX_CHANNELS`] and [`MAX_METADATA`], never by the segment's size),
//! validates them with checked arithmetic (every range inside the segment, slots and control
//! blocks pairwise disjoint, the metadata's parts disjoint, counts and lengths bounded,
//! alignments powers of two, schemas decodable and matching their fingerprints), and from then
//! on uses only those validated copies, so nothing in the table is read twice from shared
//! memory.
//!
//! The code follows the format's three steps: [`ChannelSpec`]s (what a creator declares) become
//! a plan (`plan.rs`: every offset and the segment's size), the plan is written into a zeroed
//! mapping (`write.rs`), and a peer parses what it finds (`parse.rs`: header, table entries and
//! objects). A channel kind plugs in through [`ChannelKind`]: its control block's size and slot
//! rule are here; its protocol's initial words come with its [`ChannelSpec`].

mod format;
pub(crate) mod names;
pub(crate) mod parse;
mod plan;
pub(crate) mod spec;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use write::record_creator;

use std::sync::atomic::AtomicU64;

pub(crate) use format::{Header, HEADER_SIZE, MAGIC, READY, READY_OFFSET};
pub(crate) use names::{ChannelKind, Direction, End, ShapeError, Side};
pub(crate) use parse::{ChannelInfo, Layout};
pub(crate) use plan::Plan;
pub(crate) use spec::ChannelSpec;
pub(crate) use spec::ObjectSpec;

use crate::schema::DecodeError;

/// Most channels in one segment.
pub const MAX_CHANNELS: u32 = 1024;
/// Most objects in one channel.
pub const MAX_OBJECTS: u32 = 64;
/// Largest capacity of one queue channel.
pub const MAX_QUEUE_CAPACITY: u32 = 1 << 20;
/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME: u32 = 255;
/// Most bytes of user metadata per channel.
pub const MAX_USER_META: u64 = 64 * 1024;
/// Most bytes of metadata (descriptors, schemas, names, user metadata) in one segment.
pub const MAX_METADATA: u64 = 16 << 20;
/// Largest supported cache-line size (and object alignment).
pub const MAX_CACHE_LINE: u32 = 4096;
/// Smallest supported cache-line size.
pub const MIN_CACHE_LINE: u32 = 32;
/// The cache-line size this build lays segments out with by default.
///
/// 128 bytes on x86-64 and aarch64: modern x86 prefetches cache lines in pairs, and Apple
/// and some Arm cores have 128-byte lines, so 128 keeps producer-written and consumer-written
/// words from false sharing on every supported machine. A peer never uses its own value: it
/// follows the one recorded in the segment's header.
pub const DEFAULT_CACHE_LINE: u32 = 128;

/// The lines of every control block that the segment layer uses: claims and notification.
pub(crate) mod common_ctrl {
    /// Line of the claim words: producer at +0, consumer at +8.
    pub const LINE_CLAIMS: u64 = 0;
    /// Line of the 32-bit `waiting` word, at +0.
    pub const LINE_NOTIFY: u64 = 1;
}

/// Most consumers of one fan-out state channel.
pub const MAX_FANOUT_CONSUMERS: u32 = 16;

/// The control block of a fan-out state channel (`consumers` from 2 to
/// [`MAX_FANOUT_CONSUMERS`], `consumers + 2` slots).
pub(crate) mod fanout_ctrl {
    /// The latest word, at +0.
    pub const LINE_LATEST: u64 = 2;
    /// The slots' sequence words, then the producer's table.
    pub const LINE_WORDS: u64 = 3;
    /// Offsets in a consumer's line: the claim (pid), the last sequence number taken, the
    /// 32-bit `waiting` word.
    pub const CONSUMER_PID: u64 = 0;
    pub const CONSUMER_SEEN: u64 = 8;
    pub const CONSUMER_WAITING: u64 = 16;

    /// The first consumer line.
    pub const fn line_consumers(consumers: u64, cache_line: u64) -> u64 {
        LINE_WORDS + (8 * (2 * consumers + 2)).div_ceil(cache_line)
    }

    /// Lines in the control block.
    pub const fn lines(consumers: u64, cache_line: u64) -> u64 {
        line_consumers(consumers, cache_line) + consumers
    }
}

/// The control block of a state channel.
pub(crate) mod state_ctrl {
    /// The state word, at +0: the line both sides exchange.
    pub const LINE_STATE: u64 = 2;
    /// The sequence number of each slot's data at +0, +8, +16: written by the producer only,
    /// on a line of its own so that the consumer polling the state word never takes it away
    /// between the producer's store and its exchange.
    pub const LINE_SEQS: u64 = 3;
    /// Lines in the control block.
    pub const LINES: u64 = 4;
    /// Slots of a state channel.
    pub const SLOTS: u32 = 3;
}

/// The control block of a record channel.
pub(crate) mod record_ctrl {
    /// The producer's line: `tail` at +0, the last committed sequence number at +8 (bit 63:
    /// a commit of that number is under way), the tail that commit stores at +16.
    pub const LINE_PRODUCER: u64 = 2;
    /// The consumer's line: `head` at +0, `reading` at +8, the sequence number of the last
    /// record taken at +16.
    pub const LINE_CONSUMER: u64 = 3;
    /// Lines in the control block.
    pub const LINES: u64 = 4;
}

/// Largest ring of one record channel, in bytes (1 GiB).
pub const MAX_RECORD_RING: u64 = 1 << 30;

/// The record alignment of a record channel whose elements are aligned to `align`: the size
/// of a record's header block (at least 16 bytes: two words).
pub(crate) const fn record_align(align: u64) -> u64 {
    if align > 16 {
        align
    } else {
        16
    }
}

/// The control block of a queue channel of capacity `N`.
pub(crate) mod queue_ctrl {
    /// The producer's `head` at +0 and its record at +8.
    pub const LINE_PRODUCER: u64 = 2;
    /// The position of the consumer's pending pop at +0, its record at +8: read only by a
    /// successor.
    pub const LINE_CONSUMER: u64 = 3;
    /// The consumer's `tail` at +0, alone on its line: `try_push` reads it, and the
    /// consumer's record stores of every pop would otherwise take the line away each time.
    pub const LINE_TAIL: u64 = 4;
    /// The first line of the ring: per cell, its position word and its state word.
    pub const LINE_CELLS: u64 = 5;

    /// The first line of the slots' header words, after the ring.
    pub const fn line_headers(capacity: u64, cache_line: u64) -> u64 {
        LINE_CELLS + (16 * capacity).div_ceil(cache_line)
    }
}

/// Why the layout refuses a plan or a segment; becomes an [`Error`](crate::Error).
#[derive(Debug)]
pub(crate) enum FormatError {
    /// A field of the segment has a value that is not allowed.
    Corrupt {
        field: String,
        value: u64,
        reason: String,
    },
    /// The segment's layout version is not this build's.
    Version { found: u32, supported: u32 },
    /// An encoded schema does not decode.
    Schema { context: String, error: DecodeError },
    /// A declaration cannot be laid out.
    Invalid(String),
}

impl FormatError {
    pub(crate) fn corrupt(field: impl Into<String>, value: u64, reason: impl Into<String>) -> Self {
        FormatError::Corrupt {
            field: field.into(),
            value,
            reason: reason.into(),
        }
    }
}

/// Rounds `v` up to a multiple of `align` (a power of two), or `None` on overflow.
pub(crate) const fn align_up(v: u64, align: u64) -> Option<u64> {
    match v.checked_add(align - 1) {
        Some(x) => Some(x & !(align - 1)),
        None => None,
    }
}

/// A channel's control block in a mapping: whole cache lines of 8-byte atomic words.
#[derive(Clone, Copy)]
pub(crate) struct Ctrl<'a> {
    words: &'a [AtomicU64],
    /// Words per cache line.
    per_line: usize,
}

impl<'a> Ctrl<'a> {
    /// The control block `words`, laid out in lines of `cache_line` bytes.
    pub(crate) fn new(words: &'a [AtomicU64], cache_line: u64) -> Ctrl<'a> {
        Ctrl {
            words,
            per_line: (cache_line / 8) as usize,
        }
    }

    /// Word `index` (0-based, 8 bytes each) of line `line`.
    ///
    /// # Panics
    ///
    /// If the word lies outside the control block: the kinds ask only for words that their
    /// [`ChannelKind::ctrl_len`] contains, which the parser checked.
    pub(crate) fn word(&self, line: u64, index: usize) -> &'a AtomicU64 {
        &self.words[line as usize * self.per_line + index]
    }

    /// `count` words from the start of line `line`.
    /// The cache-line size the control block is laid out with, in bytes.
    pub(crate) fn cache_line(&self) -> u64 {
        self.per_line as u64 * 8
    }

    pub(crate) fn words_from(&self, line: u64, count: u64) -> &'a [AtomicU64] {
        let start = line as usize * self.per_line;
        &self.words[start..start + count as usize]
    }
}

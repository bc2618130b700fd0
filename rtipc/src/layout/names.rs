//! The words of the format that users see too: channel kinds, directions, sides and ends.

use std::fmt;

use super::{
    fanout_ctrl, queue_ctrl, record_ctrl, state_ctrl, MAX_FANOUT_CONSUMERS, MAX_QUEUE_CAPACITY,
};

/// The kind of a channel, as recorded in its table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelKind {
    /// Latest value: triple buffered with one consumer, `N + 2` slots with `N` consumers.
    State,
    /// A ring of message slots.
    Queue,
    /// One object that both sides read and write in place (a shared region): its fields may
    /// be atomics, events and semaphores.
    Region,
    /// Variable-size records of one element type, in one byte ring.
    Record,
}

impl ChannelKind {
    /// How many consumers a channel of this kind with `slot_count` slots has.
    pub(crate) fn consumers(self, slot_count: u32) -> u32 {
        match self {
            ChannelKind::State => slot_count.saturating_sub(2).max(1),
            ChannelKind::Queue | ChannelKind::Region | ChannelKind::Record => 1,
        }
    }

    pub(crate) const fn code(self) -> u32 {
        match self {
            ChannelKind::State => 1,
            ChannelKind::Queue => 2,
            ChannelKind::Region => 3,
            ChannelKind::Record => 4,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<ChannelKind> {
        match code {
            1 => Some(ChannelKind::State),
            2 => Some(ChannelKind::Queue),
            3 => Some(ChannelKind::Region),
            4 => Some(ChannelKind::Record),
            _ => None,
        }
    }

    /// The kind's name, as in "a state channel".
    pub const fn name(self) -> &'static str {
        match self {
            ChannelKind::State => "state",
            ChannelKind::Queue => "queue",
            ChannelKind::Region => "region",
            ChannelKind::Record => "record",
        }
    }

    /// The length of this kind's control block for `slot_count` slots.
    pub(crate) fn ctrl_len(self, slot_count: u32, cache_line: u64) -> u64 {
        match self {
            ChannelKind::State if slot_count == state_ctrl::SLOTS => state_ctrl::LINES * cache_line,
            ChannelKind::State => {
                let consumers = u64::from(slot_count.saturating_sub(2));
                fanout_ctrl::lines(consumers, cache_line) * cache_line
            }
            ChannelKind::Queue => {
                // The fixed lines, the ring of `slot_count - 2` cells of 16 bytes, then one
                // header of 8 bytes per slot.
                let capacity = u64::from(slot_count.saturating_sub(2));
                let headers = (8 * u64::from(slot_count)).div_ceil(cache_line) * cache_line;
                queue_ctrl::line_headers(capacity, cache_line) * cache_line + headers
            }
            // The common lines only: nothing claims a region, and nobody waits on one.
            ChannelKind::Region => 2 * cache_line,
            ChannelKind::Record => record_ctrl::LINES * cache_line,
        }
    }

    /// Whether `slot_count` slots and `object_count` objects make a channel of this kind;
    /// `Err` says what the rule is.
    pub(crate) fn check_shape(self, slot_count: u32, object_count: u32) -> Result<(), ShapeError> {
        match self {
            ChannelKind::State
                if !(state_ctrl::SLOTS..=MAX_FANOUT_CONSUMERS + 2).contains(&slot_count) =>
            {
                Err(ShapeError::Slots(
                    "a state channel of N consumers has N + 2 slots, N from 1 to 16",
                ))
            }
            ChannelKind::State => Ok(()),
            ChannelKind::Queue if !(3..=MAX_QUEUE_CAPACITY + 2).contains(&slot_count) => Err(
                ShapeError::Slots("a queue of capacity N has N + 2 slots, N from 1 to 1048576"),
            ),
            ChannelKind::Queue if object_count != 1 => Err(ShapeError::Objects(
                "a queue carries exactly one object type",
            )),
            ChannelKind::Queue => Ok(()),
            ChannelKind::Region if slot_count != 1 => {
                Err(ShapeError::Slots("a region has one slot"))
            }
            ChannelKind::Region if object_count != 1 => {
                Err(ShapeError::Objects("a region holds exactly one object"))
            }
            ChannelKind::Region => Ok(()),
            ChannelKind::Record if slot_count != 1 => {
                Err(ShapeError::Slots("a record channel has one slot: its ring"))
            }
            ChannelKind::Record if object_count != 1 => Err(ShapeError::Objects(
                "a record channel carries exactly one element type",
            )),
            ChannelKind::Record => Ok(()),
        }
    }
}

/// Why a channel's slot or object count does not fit its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShapeError {
    Slots(&'static str),
    Objects(&'static str),
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

    pub(crate) fn from_code(code: u32) -> Option<Direction> {
        match code {
            1 => Some(Direction::CreatorToPeer),
            2 => Some(Direction::PeerToCreator),
            _ => None,
        }
    }

    /// The side that produces.
    pub const fn producer(self) -> Side {
        match self {
            Direction::CreatorToPeer => Side::Creator,
            Direction::PeerToCreator => Side::Peer,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::CreatorToPeer => "from creator to peer",
            Direction::PeerToCreator => "from peer to creator",
        })
    }
}

/// Which side of a segment a process is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The process that created the segment.
    Creator,
    /// A process that attached to it.
    Peer,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Creator => "the creator",
            Side::Peer => "the peer",
        })
    }
}

/// One of the two ends of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The end that writes.
    Producer,
    /// The end that reads.
    Consumer,
}

impl End {
    /// `"producer"` or `"consumer"`.
    pub const fn name(self) -> &'static str {
        match self {
            End::Producer => "producer",
            End::Consumer => "consumer",
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

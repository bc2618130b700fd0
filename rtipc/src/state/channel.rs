//! What the handles of both ends of a state channel share: the claimed end, the protocol's
//! words, and a pointer to each slot. A state channel with one consumer runs the triple
//! buffer (`protocol.rs`); with more, the fan-out protocol (`protocol/fanout.rs`). The handles
//! see one interface: [`Channel`], [`ProducerState`] and [`ConsumerState`] pick the protocol.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::protocol::{self, fanout, Fetched};
use crate::error::{DataError, Error, Result};
use crate::layout::{fanout_ctrl, state_ctrl, ChannelKind, End, MAX_FANOUT_CONSUMERS};
use crate::segment::wake::{Bell, Doorbell};
use crate::segment::{ChannelRef, EndHandle, Segment};
use crate::sync::BadWord;

const _: () = assert!(MAX_FANOUT_CONSUMERS == fanout::MAX_CONSUMERS);

/// Where a fan-out channel's protocol words are: the latest word, `consumers + 2` sequence
/// words then the table, and the consumers' `seen` words (`seen_stride` words apart,
/// `seen_len` words in all).
#[derive(Clone, Copy)]
struct FanoutPtrs {
    latest: *const AtomicU64,
    words: *const AtomicU64,
    seen: *const AtomicU64,
    seen_len: usize,
    seen_stride: usize,
    consumers: u32,
}

/// The protocol's words, borrowed from the mapping.
#[derive(Clone, Copy)]
pub(crate) enum Words<'a> {
    Triple(protocol::Words<'a>),
    Fanout(fanout::Words<'a>),
}

/// Most slots of a state channel, a power of two (for the mask in [`Slots::at`]).
const MAX_SLOTS: usize = 32;
const _: () = assert!(MAX_SLOTS >= MAX_FANOUT_CONSUMERS as usize + 2);

/// The slots and protocol words of a state channel, without a claim: what handles and
/// observers share.
pub(crate) struct Slots {
    /// The triple buffer's state word and three sequence words (for a fan-out channel, words
    /// of its control block that are never used this way).
    state: *const AtomicU64,
    seqs: *const AtomicU64,
    /// The fan-out words, for a fan-out channel.
    fanout: Option<FanoutPtrs>,
    /// The start of each slot; entries past the slot count repeat slot 0.
    table: [*mut u8; MAX_SLOTS],
    stride: usize,
}

impl Slots {
    /// The slots and words of state channel `ch`.
    pub fn new(ch: &ChannelRef) -> Slots {
        let ctrl = ch.ctrl();
        let consumers = ch.consumers();
        let (state, seqs, fanout) = if consumers == 1 {
            let state: *const AtomicU64 = ctrl.word(state_ctrl::LINE_STATE, 0);
            (
                state,
                ctrl.words_from(state_ctrl::LINE_SEQS, 3).as_ptr(),
                None,
            )
        } else {
            let n = u64::from(consumers);
            let stride = (ch.cache_line / 8) as usize;
            let first = fanout_ctrl::line_consumers(n, ch.cache_line);
            // From consumer 0's `seen` word to consumer `n - 1`'s (`words_from` checks that
            // they lie in the control block).
            let skip = (fanout_ctrl::CONSUMER_SEEN / 8) as usize;
            let seen_len = (consumers as usize - 1) * stride + 1;
            let seen = ctrl.words_from(first, (skip + seen_len) as u64);
            let latest: *const AtomicU64 = ctrl.word(fanout_ctrl::LINE_LATEST, 0);
            let words = ctrl.words_from(fanout_ctrl::LINE_WORDS, 2 * n + 2).as_ptr();
            let ptrs = FanoutPtrs {
                latest,
                words,
                seen: seen[skip..].as_ptr(),
                seen_len,
                seen_stride: stride,
                consumers,
            };
            (latest, words, Some(ptrs))
        };
        let count = u64::from(ch.info.slot_count).min(MAX_SLOTS as u64);
        let first = ch.slot(0);
        let mut table = [first; MAX_SLOTS];
        for (i, entry) in table.iter_mut().enumerate().take(count as usize) {
            *entry = ch.slot(i as u64);
        }
        Slots {
            state,
            seqs,
            fanout,
            table,
            stride: ch.info.slot_stride as usize,
        }
    }

    /// The triple buffer's words (of a channel with one consumer).
    #[inline]
    pub fn triple(&self) -> protocol::Words<'_> {
        // SAFETY: an 8-aligned word of the control block (checked by `word` when the pointer
        // was made), inside the mapping that the owner of `self` keeps alive, only accessed
        // atomically.
        let state = unsafe { &*self.state };
        // SAFETY: as above, three words (checked by `words_from`; a fan-out channel has at
        // least four there), which have the layout of an array of three.
        let seqs = unsafe { &*self.seqs.cast::<[AtomicU64; 3]>() };
        protocol::Words { state, seqs }
    }

    /// The fan-out protocol's words, for a fan-out channel.
    #[inline]
    pub fn fanout(&self) -> Option<fanout::Words<'_>> {
        let f = self.fanout.as_ref()?;
        let n = f.consumers as usize;
        // The latest word, `2n + 2` words and `seen_len` words of the control block (each range
        // checked by `word` or `words_from` when the pointers were made), inside the mapping
        // that the owner of `self` keeps alive, only accessed atomically.
        // SAFETY: the latest word, as above.
        let latest = unsafe { &*f.latest };
        // SAFETY: see above.
        let words = unsafe { std::slice::from_raw_parts(f.words, 2 * n + 2) };
        // SAFETY: see above.
        let seen = unsafe { std::slice::from_raw_parts(f.seen, f.seen_len) };
        let (seqs, table) = words.split_at(n + 2);
        Some(fanout::Words {
            latest,
            seqs,
            table,
            seen,
            seen_stride: f.seen_stride,
        })
    }

    /// The protocol's words, whichever the channel runs.
    #[inline]
    pub fn words(&self) -> Words<'_> {
        match self.fanout() {
            Some(w) => Words::Fanout(w),
            None => Words::Triple(self.triple()),
        }
    }

    /// A pointer to the byte at `offset` of slot `slot`, for an offset that
    /// [`ChannelRef::object_for`] returned for this channel.
    #[inline]
    pub fn at<T>(&self, slot: u64, offset: usize) -> *mut T {
        // The protocols only ever hold indices below the slot count: they check every index
        // they read from shared memory. The mask only spares the bounds check.
        let base = self.table[(slot as usize) & (MAX_SLOTS - 1)];
        // SAFETY: the object lies within the slot (`offset + size_of::<T>() <= slot_size <=
        // stride`, checked at attach), so the pointer stays inside the slot.
        unsafe { base.add(offset).cast::<T>() }
    }

    /// The length of a slot.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// A claimed end of a state channel.
pub(super) struct Channel {
    pub ch: EndHandle,
    pub slots: Slots,
}

// SAFETY: the raw pointers point into the mapping that `ch` keeps alive; the claim makes this
// handle the only user of its end across processes, so moving it to another thread is sound.
unsafe impl Send for Channel {}

/// The producer's private state, per protocol, with its doorbell: both decided at the claim,
/// so that the common case (one consumer, no notification) costs one test on the data path.
pub(super) enum ProducerState {
    /// One consumer, no notification.
    Triple(protocol::Producer),
    /// One consumer, with notification.
    TripleNotify(protocol::Producer, Doorbell),
    /// Fan-out, with its doorbell if notification is on.
    Fanout(Box<fanout::Producer>, Option<Doorbell>),
}

impl ProducerState {
    /// The slot the producer writes next.
    #[inline]
    pub fn back(&self) -> u64 {
        match self {
            ProducerState::Triple(p) | ProducerState::TripleNotify(p, _) => p.back,
            ProducerState::Fanout(p, _) => p.back,
        }
    }

    /// Raises the sequence number of the last publish by `n` (saturating below the largest
    /// number the protocol holds), so that the next publish's number says `n` updates were
    /// never carried. Producer-private: nothing in the segment changes until that publish.
    pub fn skip(&mut self, n: u64) {
        match self {
            ProducerState::Triple(p) | ProducerState::TripleNotify(p, _) => {
                p.seq = p
                    .seq
                    .saturating_add(n)
                    .min(protocol::MAX_SEQ - 1)
                    .max(p.seq);
            }
            ProducerState::Fanout(p, _) => {
                p.seq = p.seq.saturating_add(n).min(fanout::MAX_SEQ - 1).max(p.seq);
            }
        }
    }

    /// The sequence number of the last publish.
    pub fn seq(&self) -> u64 {
        match self {
            ProducerState::Triple(p) | ProducerState::TripleNotify(p, _) => p.seq,
            ProducerState::Fanout(p, _) => p.seq,
        }
    }
}

/// What a fetch found: the slot the consumer now reads, the sequence number of its data,
/// whether it is new since the last fetch and how many updates were missed before it.
#[derive(Clone, Copy)]
pub(super) struct Got {
    pub front: u64,
    pub seq: u64,
    pub new: bool,
    pub missed: u64,
}

/// The consumer's private state, per protocol.
pub(super) enum ConsumerState {
    Triple(protocol::Consumer),
    Fanout(fanout::Consumer),
}

impl ConsumerState {
    /// The slot the consumer reads (after a fetch that found data).
    #[inline]
    pub fn front(&self) -> u64 {
        match self {
            ConsumerState::Triple(c) => c.front,
            ConsumerState::Fanout(c) => c.front.unwrap_or(0),
        }
    }

    /// The sequence number of the data in the front slot.
    #[inline]
    pub fn seq(&self) -> u64 {
        match self {
            ConsumerState::Triple(c) => c.seq,
            ConsumerState::Fanout(c) => c.seq,
        }
    }
}

impl Channel {
    /// Claims the producer end and takes over the producer's state from the shared words.
    pub fn producer(seg: &Segment, name: &str) -> Result<(Channel, ProducerState)> {
        let ch = seg
            .channel(name, ChannelKind::State, End::Producer)?
            .claim_end(End::Producer)?;
        let mut chan = Channel {
            slots: Slots::new(&ch),
            ch,
        };
        let bell = Doorbell::new(&chan.ch);
        let state = match (chan.slots.words(), bell) {
            (Words::Triple(w), None) => protocol::claim_producer(w).map(ProducerState::Triple),
            (Words::Triple(w), Some(bell)) => {
                protocol::claim_producer(w).map(|p| ProducerState::TripleNotify(p, bell))
            }
            (Words::Fanout(w), bell) => {
                fanout::claim_producer(w).map(|p| ProducerState::Fanout(Box::new(p), bell))
            }
        }
        .map_err(|b| chan.ch.corrupt(b))?;
        Ok((chan, state))
    }

    /// Claims consumer end `index`, or the first free one (`None`), and takes over the
    /// consumer's state from the shared words.
    pub fn consumer(
        seg: &Segment,
        name: &str,
        index: Option<u32>,
    ) -> Result<(Channel, ConsumerState, Option<Bell>)> {
        let ch = seg.channel(name, ChannelKind::State, End::Consumer)?;
        let ch = match index {
            Some(k) => ch.claim_end_at(End::Consumer, k)?,
            None => Self::first_free(ch)?,
        };
        let mut chan = Channel {
            slots: Slots::new(&ch),
            ch,
        };
        let k = chan.ch.consumer();
        let state = match chan.slots.words() {
            Words::Triple(w) => protocol::claim_consumer(w).map(ConsumerState::Triple),
            Words::Fanout(w) => fanout::claim_consumer(w, k).map(ConsumerState::Fanout),
        }
        .map_err(|b| chan.ch.corrupt(b))?;
        let bell = Bell::new(&chan.ch, k);
        Ok((chan, state, bell))
    }

    /// Claims the first consumer end no one holds.
    fn first_free(ch: ChannelRef) -> Result<EndHandle> {
        let consumers = ch.consumers();
        for k in 0..consumers {
            match ch.clone().claim_end_at(End::Consumer, k) {
                Err(Error::AlreadyClaimed { .. }) if consumers > 1 => continue,
                r => return r,
            }
        }
        Err(Error::AllConsumersClaimed {
            channel: ch.info.name.clone(),
            consumers,
        })
    }

    /// Publishes the back slot of a triple-buffer producer without notification: the common
    /// case, inline.
    #[inline(always)]
    pub fn publish_triple(&mut self, p: &mut protocol::Producer) -> Result<u64, DataError> {
        match protocol::publish(self.slots.triple(), p) {
            Ok(seq) => Ok(seq),
            Err(b) => Err(self.corrupt(b)),
        }
    }

    /// Publishes the back slot of any producer and rings the doorbell, if the channel has one:
    /// for every producer but the common one, behind the test that sends them here.
    #[inline]
    pub fn publish_other(&mut self, p: &mut ProducerState) -> Result<u64, DataError> {
        let (r, bell) = match p {
            ProducerState::Triple(p) => (protocol::publish(self.slots.triple(), p), None),
            ProducerState::TripleNotify(p, bell) => {
                (protocol::publish(self.slots.triple(), p), Some(&*bell))
            }
            ProducerState::Fanout(p, bell) => {
                let r = match self.slots.fanout() {
                    Some(w) => fanout::publish(w, p),
                    None => unreachable!("the state matches the channel's protocol"),
                };
                (r, bell.as_ref())
            }
        };
        let seq = r.map_err(|b| self.ch.corrupt(b))?;
        if let Some(bell) = bell {
            bell.ring();
        }
        Ok(seq)
    }

    /// Takes the newest update for consumer state `c`: `None` if nothing was ever published.
    #[inline(always)]
    pub fn fetch(&mut self, c: &mut ConsumerState) -> Result<Option<Got>, DataError> {
        let (r, front, seq) = match c {
            ConsumerState::Triple(c) => {
                let r = protocol::fetch(self.slots.triple(), c);
                (r, c.front, c.seq)
            }
            ConsumerState::Fanout(c) => return self.fetch_fanout(c),
        };
        match r {
            Ok(Fetched::New { missed }) => Ok(Some(Got {
                front,
                seq,
                new: true,
                missed,
            })),
            Ok(Fetched::Unchanged) => Ok(Some(Got {
                front,
                seq,
                new: false,
                missed: 0,
            })),
            Ok(Fetched::Empty) => Ok(None),
            Err(b) => Err(self.corrupt(b)),
        }
    }

    #[inline(never)]
    fn fetch_fanout(&mut self, c: &mut fanout::Consumer) -> Result<Option<Got>, DataError> {
        let r = match self.slots.fanout() {
            Some(w) => fanout::fetch(w, c),
            None => unreachable!("the state matches the channel's protocol"),
        };
        let (front, seq) = (c.front.unwrap_or(0), c.seq);
        match r {
            Ok(Fetched::New { missed }) => Ok(Some(Got {
                front,
                seq,
                new: true,
                missed,
            })),
            Ok(Fetched::Unchanged) => Ok(Some(Got {
                front,
                seq,
                new: false,
                missed: 0,
            })),
            Ok(Fetched::Empty) => Ok(None),
            Err(b) => Err(self.corrupt(b)),
        }
    }

    /// The slot of the newest publish, for `write_from_last`.
    pub fn last_published(&self, p: &ProducerState) -> Option<u64> {
        match p {
            ProducerState::Triple(p) | ProducerState::TripleNotify(p, _) => {
                protocol::last_published(self.slots.triple(), p)
            }
            ProducerState::Fanout(p, _) => fanout::last_published(p),
        }
    }

    /// Whether there is an update this consumer end has not taken (for waiting).
    fn has_data(&self) -> bool {
        match self.slots.words() {
            Words::Triple(w) => protocol::has_data(w),
            Words::Fanout(w) => fanout::has_data(w, self.ch.consumer()),
        }
    }

    /// Turns a bad word into the handle's error and poisons the handle.
    #[cold]
    pub fn corrupt(&mut self, b: BadWord) -> DataError {
        self.ch.corrupt(b)
    }

    /// A pointer to the byte at `offset` of slot `slot`.
    #[inline]
    pub fn at<T>(&self, slot: u64, offset: usize) -> *mut T {
        self.slots.at(slot, offset)
    }

    /// Blocks on `bell` until the producer publishes (see `StateConsumer::wait`); `seen`
    /// remembers whether a producer was there.
    pub fn wait(
        &self,
        bell: Option<&Bell>,
        timeout: Option<Duration>,
        seen: &mut bool,
    ) -> Result<bool> {
        self.ch.wait(bell, || self.has_data(), timeout, seen)
    }

    /// Prepares a wait on the eventfd (see `StateConsumer::arm`).
    pub fn arm(&self, bell: Option<&Bell>) -> Result<bool> {
        self.ch.arm(bell, || self.has_data())
    }
}

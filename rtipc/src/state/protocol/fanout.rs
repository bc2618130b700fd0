//! The fan-out protocol: one producer, `N` consumers (2 to [`MAX_CONSUMERS`]) and `N + 2`
//! slots, crash recovery included, free of any memory mapping so that loom can model-check it.
//!
//! The **latest word** names the slot of the newest publish and, beside it, which consumers
//! have taken that slot (one bit each). A consumer takes the newest update with one
//! `fetch_or` of its bit: the word it gets back names the slot it now holds, until its next
//! take. Only the producer changes the slot, with a compare-and-swap that also moves the
//! consumers' bits into the word's *previous* half: so the producer learns, from the word
//! itself, exactly which consumers hold the slot it replaced, and no consumer is ever asked or
//! waited for.
//!
//! * **publish**: the producer writes its back slot and the slot's sequence word, then swaps the
//!   back slot in: `(back, previous = latest, bits 0, previous bits = the latest's bits)`. A
//!   consumer's take between its load and its exchange changes the word, so the exchange may
//!   fail, at most once per consumer: at most `N + 1` attempts, wait-free. Then it records, in
//!   its **table** (one word per consumer, written by the producer only), the slot each
//!   consumer of the previous bits now holds, and picks its next back slot: one that is not the
//!   latest and not in the table. `N` consumers hold at most `N` slots, the latest is one more,
//!   so of `N + 2` one is always free.
//! * **fetch**: a consumer loads the word; if its bit is set it already holds the newest. If
//!   not, one `fetch_or` of its bit takes the slot named by the word it returns. Two atomic
//!   operations at most: wait-free.
//! * **claim**: a new producer loads the word, writes the previous bits into the table (again,
//!   if its predecessor did: the same values) and picks a free back slot; it needs nothing
//!   else. A new consumer holds the latest slot if its bit is set (its predecessor took it),
//!   and nothing otherwise: its first fetch takes the newest. A consumer that dies holding a
//!   slot keeps that one slot out of the producer's way until its successor's next fetch.
//!
//! Latest word: bits 0-4 the latest slot, 5-9 the previous latest slot, 10-25 the consumers that
//! took the latest (bit `10 + k` for consumer `k`), 26-41 the consumers that had taken the
//! previous latest when it was replaced; bits 42-63 are zero.
//!
//! **Observers** read without writing: they copy the latest slot and check afterwards that the
//! word still names it and that the slot's sequence word is unchanged (see [`observe`] and
//! [`observed`]). The producer's fence after its exchange, before it writes its next back slot,
//! makes any write an observer's copy sees visible to that check.

use crate::sync::step;
use crate::sync::{fence, AtomicU64, BadWord, CorruptWord, Ordering, Run, Steps};

/// Most consumers of one fan-out channel.
pub(crate) const MAX_CONSUMERS: u32 = 16;
const SLOT_BITS: u32 = 5;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const PREV_SHIFT: u32 = 5;
const TOOK_SHIFT: u32 = 10;
const PREV_TOOK_SHIFT: u32 = 26;
const CONSUMER_MASK: u64 = (1 << MAX_CONSUMERS) - 1;
const USED_BITS: u32 = 42;
/// A table entry of a consumer that holds no slot.
pub(crate) const NONE: u64 = u64::MAX;
/// The largest sequence number; a channel saturates there.
pub(crate) const MAX_SEQ: u64 = u64::MAX >> 1;

/// The words of a fan-out channel's control block that the protocol uses.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a> {
    /// The latest word.
    pub latest: &'a AtomicU64,
    /// Per slot, the sequence number of its data (written by the producer before it publishes
    /// the slot).
    pub seqs: &'a [AtomicU64],
    /// Per consumer, the slot it holds as the producer last learned it, or [`NONE`]: written
    /// by the producer only, read by its successors.
    pub table: &'a [AtomicU64],
    /// Per consumer, the sequence number of the last update it took: written by that consumer
    /// only, read by its successors (for their missed counts) and by tools. Consumer `k`'s is
    /// `seen[k * seen_stride]` (each on a line of its own in a segment).
    pub seen: &'a [AtomicU64],
    pub seen_stride: usize,
}

impl Words<'_> {
    fn consumers(&self) -> u32 {
        self.table.len() as u32
    }

    fn slots(&self) -> u64 {
        self.seqs.len() as u64
    }

    fn seen(&self, k: u32) -> &AtomicU64 {
        &self.seen[k as usize * self.seen_stride]
    }
}

/// A decoded latest word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Latest {
    slot: u64,
    prev: u64,
    took: u64,
    prev_took: u64,
}

impl Latest {
    fn decode(w: &Words<'_>, word: u64, reason: CorruptWord) -> Result<Latest, BadWord> {
        let d = Latest {
            slot: word & SLOT_MASK,
            prev: (word >> PREV_SHIFT) & SLOT_MASK,
            took: (word >> TOOK_SHIFT) & CONSUMER_MASK,
            prev_took: (word >> PREV_TOOK_SHIFT) & CONSUMER_MASK,
        };
        let consumers = (1u64 << w.consumers()) - 1;
        if word >> USED_BITS != 0
            || d.slot >= w.slots()
            || d.prev >= w.slots()
            || d.slot == d.prev
            || d.took & !consumers != 0
            || d.prev_took & !consumers != 0
        {
            return Err(BadWord { word, reason });
        }
        Ok(d)
    }

    fn encode(self) -> u64 {
        self.slot
            | self.prev << PREV_SHIFT
            | self.took << TOOK_SHIFT
            | self.prev_took << PREV_TOOK_SHIFT
    }
}

/// The latest word of a fresh channel: slot 0 (holding nothing yet, sequence 0), slot 1 as the
/// previous one, no consumer bits.
pub(crate) const fn initial_latest() -> u64 {
    1 << PREV_SHIFT
}

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// The slot the producer writes next.
    pub back: u64,
    /// Sequence number of the last publish (0: none yet).
    pub seq: u64,
    /// The latest slot (only the producer changes it).
    latest: u64,
    /// The producer's copy of the table: the slot each consumer holds, or [`NONE`].
    table: [u64; MAX_CONSUMERS as usize],
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Which consumer this is.
    pub index: u32,
    /// The slot the consumer reads, if it holds one.
    pub front: Option<u64>,
    /// Sequence number of the data in `front`, or of the last update a predecessor took (0:
    /// nothing yet).
    pub seq: u64,
}

/// What a fetch found.
pub(crate) use super::Fetched;

/// Writes the previous bits of `d` into the table: those consumers hold `d.prev`.
fn record_prev(w: Words<'_>, table: &mut [u64; MAX_CONSUMERS as usize], d: Latest) {
    let mut bits = d.prev_took;
    while bits != 0 {
        let k = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        table[k] = d.prev;
        // Relaxed: read only by a successor of this producer, which re-applies the previous
        // bits of the word it acquires, so it never depends on these stores.
        w.table[k].store(d.prev, Ordering::Relaxed);
    }
}

/// A slot that is neither `latest` nor held by a consumer per `table`.
fn free_slot(w: Words<'_>, latest: u64, table: &[u64; MAX_CONSUMERS as usize]) -> u64 {
    let mut used = 1u64 << latest;
    for &s in &table[..w.consumers() as usize] {
        if s < w.slots() {
            used |= 1 << s;
        }
    }
    // `consumers + 2` slots, at most `consumers + 1` of them used.
    u64::from((!used).trailing_zeros()).min(w.slots() - 1)
}

/// The state of a new holder of the producer end, from the latest word and the table.
pub(crate) fn claim_producer(w: Words<'_>) -> Result<Producer, BadWord> {
    // Acquire: the consumers' reads of slots we may write (released by their takes, which
    // precede the exchange that made this word) happen before our writes.
    let word = w.latest.load(Ordering::Acquire);
    let d = Latest::decode(&w, word, CorruptWord::StateIndices)?;
    let mut table = [NONE; MAX_CONSUMERS as usize];
    for (k, entry) in w.table.iter().enumerate() {
        // Relaxed: our predecessor's stores, ordered before ours by the claim's lock.
        let s = entry.load(Ordering::Relaxed);
        if s != NONE && s >= w.slots() {
            return Err(BadWord {
                word: s,
                reason: CorruptWord::StateIndices,
            });
        }
        table[k] = s;
    }
    // The predecessor may have died between its exchange and its table stores.
    record_prev(w, &mut table, d);
    let back = free_slot(w, d.slot, &table);
    // Relaxed: the producer's own word.
    let seq = w.seqs[d.slot as usize].load(Ordering::Relaxed);
    // Release: our first writes into the back slot come after this (for observers).
    fence(Ordering::Release);
    Ok(Producer {
        back,
        seq: seq.min(MAX_SEQ),
        latest: d.slot,
        table,
    })
}

/// Publishes the producer's back slot: returns its sequence number, and the producer owns a new
/// back slot.
#[inline]
pub(crate) fn publish(w: Words<'_>, p: &mut Producer) -> Result<u64, BadWord> {
    match publish_steps(w, p, &mut Run)? {
        Ok(seq) => Ok(seq),
        Err(never) => match never {},
    }
}

/// [`publish`], stoppable at each atomic step.
pub(crate) fn publish_steps<S: Steps>(
    w: Words<'_>,
    p: &mut Producer,
    steps: &mut S,
) -> Result<Result<u64, S::Stop>, BadWord> {
    let seq = (p.seq + 1).min(MAX_SEQ);
    step!(steps);
    // Release: for consumers, the exchange below publishes the slot's data and this word
    // together; an observer may read this word before that exchange (naming the slot from an
    // older word), and then the release here makes the data it goes with visible to it.
    w.seqs[p.back as usize].store(seq, Ordering::Release);
    step!(steps);
    // Relaxed: only decides what to exchange against; the exchange acquires.
    let mut cur = w.latest.load(Ordering::Relaxed);
    for _ in 0..=w.consumers() {
        let d = Latest::decode(&w, cur, CorruptWord::StateMiddleOnPublish)?;
        if d.slot != p.latest || d.slot == p.back {
            return Err(BadWord {
                word: cur,
                reason: CorruptWord::StateMiddleOnPublish,
            });
        }
        let new = Latest {
            slot: p.back,
            prev: d.slot,
            took: 0,
            prev_took: d.took,
        };
        step!(steps);
        // AcqRel. Release: our writes into the back slot and its sequence word happen before
        // any consumer that takes it reads them. Acquire: the reads of every consumer whose
        // bit we find (each released the slot it held before with its take) happen before our
        // next writes into those slots. Relaxed on failure: the next attempt decides on it, and
        // only a success hands anything over.
        match w
            .latest
            .compare_exchange(cur, new.encode(), Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => {
                step!(steps);
                record_prev(w, &mut p.table, new);
                p.latest = p.back;
                p.back = free_slot(w, p.latest, &p.table);
                p.seq = seq;
                // Release: our writes into the new back slot come after this fence, so an
                // observer whose copy sees one of them also sees the exchange (see
                // `observed`).
                fence(Ordering::Release);
                return Ok(Ok(seq));
            }
            // A consumer took the latest in between: only consumers' bits may have changed.
            Err(actual) => cur = actual,
        }
    }
    Err(BadWord {
        word: cur,
        reason: CorruptWord::StateContention,
    })
}

/// The state of a new holder of consumer end `index`: the latest slot if its predecessor took
/// it, nothing otherwise.
pub(crate) fn claim_consumer(w: Words<'_>, index: u32) -> Result<Consumer, BadWord> {
    // Acquire: the data of the latest slot, if we hold it.
    let word = w.latest.load(Ordering::Acquire);
    let d = Latest::decode(&w, word, CorruptWord::StateIndices)?;
    // Relaxed: our predecessor's word, ordered by the claim's lock; only a count comes of it.
    let seen = w.seen(index).load(Ordering::Relaxed).min(MAX_SEQ);
    if d.took & 1 << index != 0 {
        // Relaxed: ordered after the producer's store by the acquire above; the slot is ours,
        // so the producer does not write its sequence word.
        let seq = w.seqs[d.slot as usize].load(Ordering::Relaxed);
        return Ok(Consumer {
            index,
            front: Some(d.slot),
            seq,
        });
    }
    Ok(Consumer {
        index,
        front: None,
        seq: seen,
    })
}

/// Takes the newest update, if the consumer does not hold it already.
#[inline]
pub(crate) fn fetch(w: Words<'_>, c: &mut Consumer) -> Result<Fetched, BadWord> {
    match fetch_steps(w, c, &mut Run)? {
        Ok(f) => Ok(f),
        Err(never) => match never {},
    }
}

/// [`fetch`], stoppable at each atomic step.
pub(crate) fn fetch_steps<S: Steps>(
    w: Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
) -> Result<Result<Fetched, S::Stop>, BadWord> {
    let bit = 1u64 << (TOOK_SHIFT + c.index);
    step!(steps);
    // Relaxed: this load only decides whether to take; the take acquires.
    let cur = w.latest.load(Ordering::Relaxed);
    if cur & bit != 0 && c.front.is_some() {
        return Ok(Ok(if c.seq == 0 {
            Fetched::Empty
        } else {
            Fetched::Unchanged
        }));
    }
    step!(steps);
    // AcqRel. Acquire pairs with the producer's release exchange: the slot's data and sequence
    // word are visible. Release: our reads of the slot we held before happen before the
    // producer's next writes into it (it learns that we let it go from this very bit).
    let took = w.latest.fetch_or(bit, Ordering::AcqRel);
    let d = Latest::decode(&w, took, CorruptWord::StateMiddleOnFetch)?;
    // Relaxed: ordered after the producer's store by the acquire above; we hold the slot now.
    let seq = w.seqs[d.slot as usize].load(Ordering::Relaxed);
    let had = c.front.is_some();
    c.front = Some(d.slot);
    if seq == 0 {
        return Ok(Ok(Fetched::Empty));
    }
    if had && seq <= c.seq && seq != MAX_SEQ {
        return Err(BadWord {
            word: seq,
            reason: CorruptWord::StateSeqBackwards,
        });
    }
    let missed = seq.saturating_sub(c.seq).saturating_sub(1);
    if had && seq == c.seq {
        return Ok(Ok(Fetched::Unchanged));
    }
    c.seq = seq;
    step!(steps);
    // Relaxed: for successors and tools, which only count with it.
    w.seen(c.index).store(seq, Ordering::Relaxed);
    Ok(Ok(Fetched::New { missed }))
}

/// Whether the producer published since consumer `index` last took the latest (for waiting).
pub(crate) fn has_data(w: Words<'_>, index: u32) -> bool {
    // Relaxed: only decides whether to sleep; the fetch acquires the data.
    let word = w.latest.load(Ordering::Relaxed);
    word & 1 << (TOOK_SHIFT + index) == 0
        && w.seqs[(word & SLOT_MASK) as usize % w.seqs.len()].load(Ordering::Relaxed) != 0
}

/// The slot of the newest publish, for the producer's `write_from_last`, which only reads it.
pub(crate) fn last_published(p: &Producer) -> Option<u64> {
    (p.seq != 0).then_some(p.latest)
}

/// What an observer notes before copying: the slot to copy and what must not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    /// The slot holding the newest update.
    pub slot: u64,
    /// Its sequence number.
    pub seq: u64,
}

/// How far the channel and its consumers have come, for tools: the sequence number of the
/// newest update (0: none), and per consumer the number of the last update it took (0: none).
/// Writes nothing.
pub(crate) fn progress(w: Words<'_>, taken: &mut [u64]) -> Result<u64, BadWord> {
    // Relaxed: a snapshot for people and tools, never used to read a slot.
    let word = w.latest.load(Ordering::Relaxed);
    let d = Latest::decode(&w, word, CorruptWord::StateIndices)?;
    // Relaxed: as above.
    let newest = w.seqs[d.slot as usize].load(Ordering::Relaxed);
    for (k, t) in taken.iter_mut().enumerate().take(w.consumers() as usize) {
        // Relaxed: as above.
        *t = w
            .seen
            .get(k * w.seen_stride)
            .map_or(0, |s| s.load(Ordering::Relaxed));
    }
    Ok(newest)
}

/// An observer's first step: the newest slot and its sequence number (`None`: nothing
/// published). Writes nothing.
pub(crate) fn observe(w: Words<'_>) -> Result<Option<Observation>, BadWord> {
    // Relaxed loads, each followed by an acquire fence (tools map segments read-only, where
    // only relaxed atomic loads are allowed; the fence orders as an acquire load would).
    // The first fence pairs with the exchange that published the slot: its data is visible.
    let word = w.latest.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    let d = Latest::decode(&w, word, CorruptWord::StateIndices)?;
    // The word may name the slot from an older publish while the producer has since written
    // the slot again and stored a newer sequence number here (before publishing it): the
    // number read is the one the copy must match, and the fence (pairing with the producer's
    // release store) makes that update's data visible to the copy.
    let seq = w.seqs[d.slot as usize].load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    Ok((seq != 0).then_some(Observation { slot: d.slot, seq }))
}

/// An observer's last step, after copying `o.slot`: whether the copy is the update `o.seq`
/// whole. The copy saw at least that update's data (see [`observe`]). The producer writes a
/// slot only after an exchange that replaced it as the latest; if the copy saw any such write,
/// the acquire fence here makes that exchange visible to the load below (the producer's release
/// fence after its exchange, before the write, pairs with it), and the slot is no longer the
/// latest or, named again, has a newer sequence number.
pub(crate) fn observed(w: Words<'_>, o: Observation) -> bool {
    fence(Ordering::Acquire);
    // Relaxed, then an acquire fence (read-only mappings allow only relaxed loads): if the
    // word names the slot again after a newer publish of it, that publish's store of the
    // slot's sequence word is visible to the load below.
    let word = w.latest.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    word & SLOT_MASK == o.slot && w.seqs[o.slot as usize].load(Ordering::Relaxed) == o.seq
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests;

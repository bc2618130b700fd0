//! The triple-buffer protocol, crash recovery included, over one shared word; free of any memory
//! mapping so that loom can model-check it (`RUSTFLAGS="--cfg loom" cargo test -p rtipc --lib
//! --release loom`).
//!
//! Three slots; at any time one is the producer's *back* slot, one the consumer's *front* slot,
//! and one sits in the *middle*. The **state word** records the whole assignment: which slot is
//! in the middle, which is the consumer's (the producer's is the third), whether the middle holds
//! a publish the consumer has not taken (`DIRTY`), whether the consumer asks to be handed the next
//! publish directly (`REQ`), and the sequence number of the newest publish. Every change of the
//! assignment is one compare-and-swap of that word, so there is no moment at which the word and
//! the slots disagree: a process killed at any instruction leaves a word from which a successor
//! reads its slot at once, without asking the other side or waiting for it.
//!
//! State word: bits 0-1 the middle slot, bits 2-3 the consumer's slot, bit 4 `DIRTY`, bit 5
//! `REQ`, bits 6-63 the sequence number of the newest publish (0: none yet). Beside it, on the
//! same cache line, one word per slot holds the sequence number of the data in that slot,
//! written by the producer before it publishes the slot.
//!
//! * **publish**: the producer writes its back slot and the slot's sequence word, then swaps the
//!   back slot into the middle with `DIRTY` (compare-and-swap against the word it last saw). The
//!   consumer changes the word at most twice while the producer is not publishing, so a publish
//!   takes at most three attempts: wait-free. If the consumer asked (`REQ`), the producer hands
//!   the new slot to the consumer directly and takes the consumer's old slot into the middle.
//! * **fetch**: when the word is `DIRTY`, the consumer swaps the middle and its own slot with one
//!   compare-and-swap. If a publish lands in between, it sets `REQ` (one `fetch_or`) and tries
//!   once more; if a publish lands again, that publish handed it the newest slot. At most four
//!   atomic operations: wait-free.
//! * **claim**: a new producer reads the word (its slot is the third); a new consumer clears any
//!   `REQ` its predecessor left (one `fetch_and`) and takes the consumer's slot from the word.
//!
//! The producer writes only its back slot; the consumer reads only its front slot; the word says
//! which is which at every instant, so neither side, nor a successor, can ever touch a slot the
//! other holds.

use crate::sync::step;
use crate::sync::{fence, AtomicU64, BadWord, CorruptWord, Ordering, Run, Steps};

pub(crate) mod fanout;

/// Number of slots.
pub(crate) const SLOTS: u64 = 3;
const MID_MASK: u64 = 0b11;
const CONS_SHIFT: u32 = 2;
/// Set while the middle holds a publish the consumer has not taken.
pub(crate) const DIRTY: u64 = 1 << 4;
/// Set by a consumer whose fetch lost a race with a publish: hand me the next one.
const REQ: u64 = 1 << 5;
const SEQ_SHIFT: u32 = 6;
/// The largest sequence number the word holds; a channel saturates there.
pub(crate) const MAX_SEQ: u64 = u64::MAX >> SEQ_SHIFT;
/// How many compare-and-swaps a publish may need with a consumer that follows the protocol;
/// more means the word is being written by something else.
const PUBLISH_ATTEMPTS: u32 = 4;

/// The words of a state channel's control block that the protocol uses.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a> {
    /// The state word.
    pub state: &'a AtomicU64,
    /// The sequence number of the data in each slot.
    pub seqs: &'a [AtomicU64],
}

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// The slot the producer writes next.
    pub back: u64,
    /// Sequence number of the last publish (0: none yet).
    pub seq: u64,
    /// The state word as the producer last saw it: what its next publish expects.
    pub expect: u64,
    /// Whether the consumer took the last publish before the next one: what the next publish
    /// expects first.
    pub predict_fetched: bool,
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// The slot the consumer reads.
    pub front: u64,
    /// Sequence number of the data in `front` (0: nothing published yet).
    pub seq: u64,
}

/// What a fetch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// Nothing has ever been published.
    Empty,
    /// Nothing new since the last fetch; `front` still holds the last data.
    Unchanged,
    /// `front` now holds new data; `missed` updates were overwritten before we saw them.
    New { missed: u64 },
}

/// A decoded state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word {
    mid: u64,
    cons: u64,
    dirty: bool,
    req: bool,
    seq: u64,
}

impl Word {
    fn decode(w: u64, reason: CorruptWord) -> Result<Word, BadWord> {
        let (mid, cons) = (w & MID_MASK, (w >> CONS_SHIFT) & MID_MASK);
        if mid >= SLOTS || cons >= SLOTS || mid == cons {
            return Err(BadWord { word: w, reason });
        }
        Ok(Word {
            mid,
            cons,
            dirty: w & DIRTY != 0,
            req: w & REQ != 0,
            seq: w >> SEQ_SHIFT,
        })
    }

    /// The producer's slot: the one that is neither in the middle nor the consumer's.
    fn back(self) -> u64 {
        SLOTS - self.mid - self.cons
    }
}

/// The state word of a fresh channel: slot 1 in the middle, slot 2 the consumer's, slot 0 the
/// producer's, nothing published.
pub(crate) const fn initial_word() -> u64 {
    1 | 2 << CONS_SHIFT
}

/// The state of a new holder of the producer end, read from the word alone.
pub(crate) fn claim_producer(w: Words<'_>) -> Result<Producer, BadWord> {
    // Acquire: the consumer's reads of the slot we are about to own (its former front, which it
    // released with its fetch) happen before our writes.
    let word = w.state.load(Ordering::Acquire);
    let d = Word::decode(word, CorruptWord::StateIndices)?;
    // Release: our first writes into the back slot come after this (for observers, see
    // `observed`).
    fence(Ordering::Release);
    Ok(Producer {
        back: d.back(),
        seq: d.seq,
        expect: word,
        predict_fetched: false,
    })
}

/// The state of a new holder of the consumer end: clears a request its predecessor may have left
/// (so that no publish hands a slot to a consumer that is not there) and takes the consumer's
/// slot from the word.
pub(crate) fn claim_consumer(w: Words<'_>) -> Result<Consumer, BadWord> {
    // AcqRel. Acquire: the data of the slot we take (published, or handed over, with release).
    // Release: nothing of ours yet; the read-modify-write orders us after every earlier change.
    let word = w.state.fetch_and(!REQ, Ordering::AcqRel);
    let d = Word::decode(word, CorruptWord::StateIndices)?;
    Ok(Consumer {
        front: d.cons,
        // Relaxed: ordered by the acquire above, after the producer's store of it.
        seq: w.seqs[d.cons as usize].load(Ordering::Relaxed),
    })
}

/// The producer's slot for each value of a word's low four bits (middle, consumer), or 3 when
/// the two are not two distinct slots.
const BACK: [u64; 16] = {
    let mut t = [3; 16];
    let mut i = 0;
    while i < 16 {
        let (mid, cons) = (i as u64 & MID_MASK, (i as u64) >> CONS_SHIFT);
        if mid < SLOTS && cons < SLOTS && mid != cons {
            t[i] = SLOTS - mid - cons;
        }
        i += 1;
    }
    t
};

/// The low four bits (middle, consumer) after the consumer takes the middle: swapped.
const SWAPPED: [u64; 16] = {
    let mut t = [0; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = (i as u64 >> CONS_SHIFT) | (i as u64 & MID_MASK) << CONS_SHIFT;
        i += 1;
    }
    t
};

/// The bits of a word that hold the sequence number.
const SEQ_BITS: u64 = !(u64::MAX >> (64 - SEQ_SHIFT));

/// The word after the consumer takes the middle of the dirty word `w`: the middle and the
/// consumer's slot swap places, clean, same sequence number.
#[inline(always)]
fn fetched(w: u64) -> u64 {
    SWAPPED[(w & 0xF) as usize] | w & SEQ_BITS
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
#[inline]
pub(crate) fn publish_steps<S: Steps>(
    w: Words<'_>,
    p: &mut Producer,
    steps: &mut S,
) -> Result<Result<u64, S::Stop>, BadWord> {
    let seq = (p.seq + 1).min(MAX_SEQ);
    step!(steps);
    // Relaxed: made visible with the slot's data by the release of the exchange below.
    w.seqs[p.back as usize].store(seq, Ordering::Relaxed);
    // The word as we expect it: as we left it, or with our last publish taken by the consumer,
    // whichever the last publish found.
    let mut cur = if p.predict_fetched {
        fetched(p.expect)
    } else {
        p.expect
    };
    for attempt in 0..PUBLISH_ATTEMPTS {
        if BACK[(cur & 0xF) as usize] != p.back {
            return Err(BadWord {
                word: cur,
                reason: CorruptWord::StateMiddleOnPublish,
            });
        }
        let new = if cur & REQ == 0 {
            p.back | cur & (MID_MASK << CONS_SHIFT) | DIRTY | seq << SEQ_SHIFT
        } else {
            // The consumer asked: hand it this publish, take its old slot into the middle.
            (cur >> CONS_SHIFT) & MID_MASK | p.back << CONS_SHIFT | seq << SEQ_SHIFT
        };
        step!(steps);
        // AcqRel. Release: our writes into the back slot and its sequence word happen before
        // any consumer that acquires this word reads them. Acquire: the consumer's reads of the
        // slot we receive (its former front, released by its fetch) happen before our next
        // writes into it. Acquire on failure: the next attempt decides on what it read.
        match w
            .state
            .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // Either way the producer's new slot is the old middle.
                p.back = cur & MID_MASK;
                p.seq = seq;
                p.expect = new;
                // Release: our writes into the new back slot come after this fence, so an
                // observer whose copy sees one of them also sees this exchange (see
                // `observed`). A compiler barrier on x86.
                fence(Ordering::Release);
                return Ok(Ok(seq));
            }
            Err(actual) => {
                if attempt == 0 {
                    p.predict_fetched = actual == fetched(p.expect);
                }
                cur = actual;
            }
        }
    }
    Err(BadWord {
        word: cur,
        reason: CorruptWord::StateContention,
    })
}

/// Takes the newest published slot, if there is one the consumer has not seen.
#[inline]
pub(crate) fn fetch(w: Words<'_>, c: &mut Consumer) -> Result<Fetched, BadWord> {
    match fetch_steps(w, c, &mut Run)? {
        Ok(f) => Ok(f),
        Err(never) => match never {},
    }
}

/// [`fetch`], stoppable at each atomic step.
#[inline]
pub(crate) fn fetch_steps<S: Steps>(
    w: Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
) -> Result<Result<Fetched, S::Stop>, BadWord> {
    step!(steps);
    // Relaxed: this load only decides whether to exchange; no slot data is read on its account.
    let cur = w.state.load(Ordering::Relaxed);
    if BACK[(cur & 0xF) as usize] == 3 || (cur >> CONS_SHIFT) & MID_MASK != c.front {
        return Err(BadWord {
            word: cur,
            reason: CorruptWord::StateMiddleOnFetch,
        });
    }
    if cur & DIRTY == 0 {
        return Ok(Ok(if c.seq == 0 {
            Fetched::Empty
        } else {
            Fetched::Unchanged
        }));
    }
    step!(steps);
    // AcqRel. Acquire pairs with the producer's release: the slot's data is visible. Release:
    // our reads of the front slot we hand back happen before the producer's next writes to it.
    if w.state
        .compare_exchange(cur, fetched(cur), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        // A dirty word's sequence number is that of the data in its middle.
        return took(c, cur & MID_MASK, cur >> SEQ_SHIFT).map(Ok);
    }
    fetch_contended(w, c, steps)
}

/// The rest of a fetch whose exchange lost a race with a publish: ask for the next publish to
/// be handed over, and try once more; if a publish lands again, it handed us its slot.
#[cold]
#[inline(never)]
fn fetch_contended<S: Steps>(
    w: Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
) -> Result<Result<Fetched, S::Stop>, BadWord> {
    step!(steps);
    // Relaxed: the request carries no data; the exchange below or the producer's hand-over
    // (acquired on failure) does.
    let asked = w.state.fetch_or(REQ, Ordering::Relaxed);
    let d = Word::decode(asked, CorruptWord::StateMiddleOnFetch)?;
    if d.cons != c.front || !d.dirty {
        return Err(BadWord {
            word: asked,
            reason: CorruptWord::StateMiddleOnFetch,
        });
    }
    step!(steps);
    // As in `fetch_steps`; Acquire on failure: the producer handed us a slot with release.
    match w.state.compare_exchange(
        asked | REQ,
        fetched(asked),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => took(c, d.mid, d.seq).map(Ok),
        Err(handed) => {
            // Only a publish that saw our request changes the word now: it gave us its slot.
            let h = Word::decode(handed, CorruptWord::StateMiddleOnFetch)?;
            if h.cons == c.front || h.req {
                return Err(BadWord {
                    word: handed,
                    reason: CorruptWord::StateMiddleOnFetch,
                });
            }
            // Relaxed: ordered after the producer's store by the acquire that gave us the slot.
            let seq = w.seqs[h.cons as usize].load(Ordering::Relaxed);
            took(c, h.cons, seq).map(Ok)
        }
    }
}

/// The consumer now holds `slot`, whose data has sequence number `seq`: tells how many updates
/// were missed.
#[inline]
fn took(c: &mut Consumer, slot: u64, seq: u64) -> Result<Fetched, BadWord> {
    if seq <= c.seq && seq != MAX_SEQ {
        return Err(BadWord {
            word: seq,
            reason: CorruptWord::StateSeqBackwards,
        });
    }
    let missed = seq.saturating_sub(c.seq).saturating_sub(1);
    c.front = slot;
    c.seq = seq;
    Ok(Fetched::New { missed })
}

/// Whether the producer published since the consumer's last fetch (for waiting).
pub(crate) fn has_data(w: Words<'_>) -> bool {
    // Relaxed: only decides whether to sleep; the fetch acquires the data.
    w.state.load(Ordering::Relaxed) & DIRTY != 0
}

/// The slot of the newest publish, if any: the middle while the consumer has not taken it,
/// otherwise the consumer's. For the producer's `write_from_last`, which only reads it.
pub(crate) fn last_published(w: Words<'_>, p: &Producer) -> Option<u64> {
    // Relaxed: the producer reads data it wrote itself; the consumer only ever reads slots.
    let d = Word::decode(w.state.load(Ordering::Relaxed), CorruptWord::StateIndices).ok()?;
    if d.back() != p.back || d.seq == 0 {
        return None;
    }
    Some(if d.dirty { d.mid } else { d.cons })
}

/// What an observer notes before copying: the slot holding the newest update and its sequence
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    /// The slot holding the newest update.
    pub slot: u64,
    /// Its sequence number.
    pub seq: u64,
}

/// An observer's first step: the slot of the newest update (the middle while the consumer has
/// not taken it, otherwise the consumer's) and its sequence number; `None` if nothing was
/// published. Writes nothing.
pub(crate) fn observe(w: Words<'_>) -> Result<Option<Observation>, BadWord> {
    // Relaxed, then an acquire fence: the fence pairs with the exchange that published the slot
    // (directly, or through the consumer's read-modify-writes, which continue its release
    // sequence), so its data is visible. (Not an acquire load: tools map segments read-only,
    // where only relaxed atomic loads are allowed.)
    let word = w.state.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    let d = Word::decode(word, CorruptWord::StateIndices)?;
    if d.seq == 0 {
        return Ok(None);
    }
    let slot = if d.dirty { d.mid } else { d.cons };
    Ok(Some(Observation { slot, seq: d.seq }))
}

/// An observer's last step, after copying `o.slot`: whether the copy is the update `o.seq`
/// whole. The producer writes a slot only as its back slot, which it becomes only through a
/// publish, and every publish raises the word's sequence number. If the copy saw any write the
/// producer made after that publish, the acquire fence here pairs with the producer's release
/// fence after its exchange and the load below sees the raised number. (At [`MAX_SEQ`] the
/// number stops rising and no copy is accepted: after 2^58 publishes.)
pub(crate) fn observed(w: Words<'_>, o: Observation) -> bool {
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    let seq = w.state.load(Ordering::Relaxed) >> SEQ_SHIFT;
    seq == o.seq && seq != MAX_SEQ
}

/// How far the channel and its consumer have come, for tools: the sequence number of the newest
/// update (0: none), and of the update the consumer holds (`None` if it never fetched one).
/// Writes nothing.
pub(crate) fn progress(w: Words<'_>) -> Result<(u64, Option<u64>), BadWord> {
    // Relaxed: a snapshot for people and tools, never used to read a slot.
    let d = Word::decode(w.state.load(Ordering::Relaxed), CorruptWord::StateIndices)?;
    // Relaxed: as above. The consumer's slot holds the update it took last, or nothing (0).
    let held = w.seqs[d.cons as usize].load(Ordering::Relaxed);
    let taken = if d.seq != 0 && !d.dirty { d.seq } else { held };
    Ok((d.seq, (taken != 0).then_some(taken)))
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests;

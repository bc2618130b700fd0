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
    pub seqs: &'a [AtomicU64; 3],
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
    /// The word one publish after the word this consumer last left (or found, at its claim):
    /// its producer's back slot in the middle, dirty, the next sequence number. What a fetch
    /// finds when the producer published once since; `next_taken` is the word it leaves then.
    next: u64,
    next_taken: u64,
}

impl Consumer {
    /// A consumer holding `front`, with data `seq`, that last left or found the clean word
    /// `word`, which names `front` as the consumer's slot and a valid middle besides it.
    fn new(front: u64, seq: u64, word: u64) -> Consumer {
        // Wrapping: `word` is valid, so these never wrap; a saturated sequence number makes
        // a `next` that no word equals.
        let back = SLOTS.wrapping_sub(word & MID_MASK).wrapping_sub(front) & MID_MASK;
        let next =
            back | front << CONS_SHIFT | DIRTY | (word >> SEQ_SHIFT).wrapping_add(1) << SEQ_SHIFT;
        Consumer {
            front,
            seq,
            next,
            next_taken: fetched(next),
        }
    }
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
        // Without a request a consumer may have left: a publish's first exchange never
        // expects one (see `publish_steps`), so a word with one goes to the checked path.
        expect: word & !REQ,
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
    // Relaxed: ordered by the acquire above, after the producer's store of it.
    let seq = w.seqs[d.cons as usize].load(Ordering::Relaxed);
    Ok(Consumer::new(d.cons, seq, word & !(DIRTY | REQ)))
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

/// The bits of a word below the sequence number.
const FLAG_BITS: u64 = (1 << SEQ_SHIFT) - 1;

/// For each value of a word's six low bits: what to XOR into the word for the consumer's take
/// of the middle (the two slots swapped, `DIRTY` and `REQ` cleared).
const TAKEN: [u8; 64] = {
    let mut t = [0; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (i as u64 ^ SWAPPED[i & 0xF]) as u8;
        i += 1;
    }
    t
};

/// The word after the consumer takes the middle of the dirty word `w`: the middle and the
/// consumer's slot swap places, clean, same sequence number.
#[inline(always)]
fn fetched(w: u64) -> u64 {
    w ^ TAKEN[(w & FLAG_BITS) as usize] as u64
}

/// The word that publishes slot `back` with sequence number `seq` over the word `cur`: `back`
/// goes into the middle, dirty; or, if the consumer asked (`REQ`), straight to the consumer,
/// whose old slot goes into the middle, clean.
#[inline(always)]
fn published(cur: u64, back: u64, seq: u64) -> u64 {
    if cur & REQ == 0 {
        into_middle(cur, back, seq)
    } else {
        (cur >> CONS_SHIFT) & MID_MASK | back << CONS_SHIFT | seq << SEQ_SHIFT
    }
}

/// [`published`] for a word without a request: `back` goes into the middle, dirty.
#[inline(always)]
fn into_middle(cur: u64, back: u64, seq: u64) -> u64 {
    back | cur & (MID_MASK << CONS_SHIFT) | DIRTY | seq << SEQ_SHIFT
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
///
/// The first exchange expects a word computed from what this side last wrote: the word its last
/// publish (or its claim) left, or that word after the consumer took the publish, which only
/// swaps the middle and the consumer's slot. Its producer slot is `p.back` by construction, so
/// it is not checked, and it holds no request (a publish leaves none, a fetch clears it, a claim
/// leaves it out of `expect`): a word with one fails the exchange. Every word read back from
/// shared memory (a failed exchange) is checked, in [`publish_contended`].
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
    let cur = if p.predict_fetched {
        fetched(p.expect)
    } else {
        p.expect
    };
    let new = into_middle(cur, p.back, seq);
    step!(steps);
    // AcqRel. Release: our writes into the back slot and its sequence word happen before any
    // consumer that acquires this word reads them. Acquire: the consumer's reads of the slot we
    // receive (its former front, released by its fetch) happen before our next writes into it.
    // Acquire on failure: the next attempt decides on what it read.
    match w
        .state
        .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            published_as(p, cur, new, seq);
            Ok(Ok(seq))
        }
        Err(actual) => {
            p.predict_fetched = actual == fetched(p.expect);
            publish_contended(w, p, actual, seq, steps)
        }
    }
}

/// The producer's state after its exchange of `cur` for `new` succeeded.
#[inline(always)]
fn published_as(p: &mut Producer, cur: u64, new: u64, seq: u64) {
    // Either way the producer's new slot is the old middle.
    p.back = cur & MID_MASK;
    p.seq = seq;
    p.expect = new;
    // Release: our writes into the new back slot come after this fence, so an observer whose
    // copy sees one of them also sees this exchange (see `observed`). A compiler barrier on
    // x86.
    fence(Ordering::Release);
}

/// The rest of a publish whose first exchange found `cur` instead of the word it expected:
/// each word read back is checked before it is exchanged, at most `PUBLISH_ATTEMPTS` in all.
#[cold]
#[inline(never)]
fn publish_contended<S: Steps>(
    w: Words<'_>,
    p: &mut Producer,
    mut cur: u64,
    seq: u64,
    steps: &mut S,
) -> Result<Result<u64, S::Stop>, BadWord> {
    for _ in 1..PUBLISH_ATTEMPTS {
        if BACK[(cur & 0xF) as usize] != p.back {
            return Err(BadWord {
                word: cur,
                reason: CorruptWord::StateMiddleOnPublish,
            });
        }
        let new = published(cur, p.back, seq);
        step!(steps);
        // AcqRel / Acquire: as in `publish_steps`.
        match w
            .state
            .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                published_as(p, cur, new, seq);
                return Ok(Ok(seq));
            }
            Err(actual) => cur = actual,
        }
    }
    Err(BadWord {
        word: cur,
        reason: CorruptWord::StateContention,
    })
}

/// The words a fetch acts on, by their low five bits `b` (middle, consumer's slot, `DIRTY`):
/// bit `b` of `mask[f]` is set when `b` names slot `f` as the consumer's and a valid middle
/// besides it, dirty (`TAKE`) or clean (`IDLE`). Entry 3 is empty: no consumer holds slot 3.
const fn fetch_masks(dirty: bool) -> [u32; 4] {
    let mut t = [0u32; 4];
    let mut front = 0;
    while front < SLOTS {
        let mut mid = 0;
        while mid < SLOTS {
            if mid != front {
                let b = mid | front << CONS_SHIFT | if dirty { DIRTY } else { 0 };
                t[front as usize] |= 1 << b;
            }
            mid += 1;
        }
        front += 1;
    }
    t
}
const TAKE: [u32; 4] = fetch_masks(true);
const IDLE: [u32; 4] = fetch_masks(false);
const LOW_BITS: u64 = MID_MASK | MID_MASK << CONS_SHIFT | DIRTY;

/// Takes the newest published slot, if there is one the consumer has not seen.
#[inline]
pub(crate) fn fetch(w: Words<'_>, c: &mut Consumer) -> Result<Fetched, BadWord> {
    match fetch_steps(w, c, &mut Run)? {
        Ok(f) => Ok(f),
        Err(never) => match never {},
    }
}

/// [`fetch`], stoppable at each atomic step.
///
/// The common case, a word one publish after the one the consumer left, is the word the
/// consumer predicted (`c.next`): equal to a word computed from checked ones, so checked, and
/// the exchange's operands were computed before the load, so that it waits for nothing but the
/// comparison. Any other word is checked before anything is done with it: its low five bits
/// must be one of the two dirty words that name the consumer's own slot as the consumer's and
/// a valid middle besides it (`TAKE`), or one of the two clean ones (`IDLE`: nothing new), or
/// the word is refused.
#[inline]
pub(crate) fn fetch_steps<S: Steps>(
    w: Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
) -> Result<Result<Fetched, S::Stop>, BadWord> {
    step!(steps);
    // Relaxed: this load only decides whether to exchange; no slot data is read on its account.
    let cur = w.state.load(Ordering::Relaxed);
    let (next, next_taken) = (c.next, c.next_taken);
    if cur == next {
        step!(steps);
        // AcqRel, as below.
        if w.state
            .compare_exchange(next, next_taken, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return took(c, next & MID_MASK, next >> SEQ_SHIFT, next_taken).map(Ok);
        }
        return fetch_contended(w, c, steps);
    }
    let low = (cur & LOW_BITS) as u32;
    // The mask spares a bounds check: `front` is below 3.
    let front = (c.front & 3) as usize;
    if TAKE[front] >> low & 1 == 0 {
        if IDLE[front] >> low & 1 == 0 {
            return Err(BadWord {
                word: cur,
                reason: CorruptWord::StateMiddleOnFetch,
            });
        }
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
        return took(c, cur & MID_MASK, cur >> SEQ_SHIFT, fetched(cur)).map(Ok);
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
        Ok(_) => took(c, d.mid, d.seq, fetched(asked)).map(Ok),
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
            took(c, h.cons, seq, handed).map(Ok)
        }
    }
}

/// The consumer now holds `slot`, whose data has sequence number `seq`, and left the word
/// `left`: tells how many updates were missed. A number that did not rise is refused, unless
/// the channel saturated.
#[inline(always)]
fn took(c: &mut Consumer, slot: u64, seq: u64, left: u64) -> Result<Fetched, BadWord> {
    let missed = if seq > c.seq {
        seq - c.seq - 1
    } else if seq == MAX_SEQ {
        0
    } else {
        return Err(BadWord {
            word: seq,
            reason: CorruptWord::StateSeqBackwards,
        });
    };
    *c = Consumer::new(slot, seq, left);
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

//! The queue protocol, crash recovery included: a ring of cells over a pool of `capacity + 2`
//! slots, free of any memory mapping so that loom can model-check it.
//!
//! Every slot is owned by exactly one party at any time: the producer (the slot it writes
//! next), the consumer (the slot of the message it is reading), or one of the `capacity` ring
//! cells. Both sides move slots only with one compare-and-swap on a cell, which exchanges the
//! slot they hold for the slot in the cell, so ownership is never duplicated and the producer
//! never writes a slot the consumer holds.
//!
//! * **push** (position `h`): the producer reads cell `h % capacity`, which holds the message of
//!   position `h - capacity` or the slot freed when the consumer took it, and exchanges it for
//!   `(h, its slot)`. It takes either a free slot or, when the queue was full, the oldest unread
//!   message's slot: that message is lost, and the consumer will count it. A push that races
//!   with the consumer taking that very cell retries once: wait-free. `try_push` first compares
//!   `h` with the consumer's published tail and refuses when full, so it never overwrites.
//! * **pop** (position `t`): the consumer reads cell `t % capacity`; if it holds a message at
//!   position `t` or later, it exchanges it for `(FREE, that position, its slot)`. A message at a
//!   later position means the producer lapped the consumer: the positions in between were
//!   overwritten and are counted as missed. A pop that races with the producer overwriting that
//!   very cell looks again; it gives up (an empty pop) only if the producer overwrites the cell
//!   it is taking [`POP_ATTEMPTS`] times in a row.
//!
//! **Positions** are full 64-bit counts: each cell has a position word beside its state word,
//! written by the producer before the exchange, so a consumer lapped any number of times still
//! reads the exact position of what it takes; the state word keeps the position's low 39 bits
//! so that an exchange never succeeds on a cell that changed in between.
//!
//! **Crash recovery.** Before each exchange a side records what it is about to do in its own
//! state word (`PENDING`, the slot it gives and the slot it takes; the producer also the low bits
//! of the position, the consumer the position in a word of its own), and after it, what it holds.
//! A successor reads that record and the one cell it names:
//!
//! * a producer whose exchange at `h` happened left position `h` in that cell's state word (a
//!   consumer that took the message since keeps the position): it holds the slot it took, else
//!   the one it gave. No later push can hide it: the producer is gone.
//! * a consumer whose exchange at `p` happened left `(FREE, p, the slot it gave)`; one that did
//!   not left the message. When the producer has pushed into that cell since, the slot the
//!   producer took is either still the producer's (its own record says so) or has carried a
//!   newer message: each slot's header word records the position last written into it, and the
//!   consumer's slot never holds one newer than `p`.
//!
//! So a successor claims at once, from the words, without waiting for the other side or asking
//! it, and whatever instruction a side was killed at, no slot is ever owned twice.
//!
//! **Observers** read without writing ([`observe`], [`observed`]). A slot's header names the
//! message it holds *from the moment the producer takes the slot*: the producer stores the
//! position it will write into the slot's header right after the exchange that gave it the
//! slot (a new producer at its claim), then a release fence, and only then writes the slot.
//! An observer that wants position `q` first acquires `head` (past `q`: the message is
//! complete), finds a slot whose header is `q` (the cell's slot, or the consumer's), copies it,
//! and accepts the copy only if the header still says `q` after an acquire fence: a copy that
//! saw any write of a newer message also sees that message's header.

use crate::sync::step;
use crate::sync::{fence, AtomicU64, BadWord, CorruptWord, Ordering, Run, Steps};

/// The header of a slot that has never held a message: a position no producer reaches, so an
/// observer never takes the slot for one.
pub(crate) const NO_MESSAGE: u64 = u64::MAX;
/// Set in a cell's state word whose slot holds no unread message.
pub(crate) const FREE: u64 = 1 << 63;
/// Bits of a state word holding a slot index.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Bits of a cell's state word holding the low bits of the message's position.
const POS_BITS: u32 = 39;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
/// Set in a side's record while an exchange is under way.
const PENDING: u64 = 1 << 63;
/// The low bits of the producer's position in its record.
const HEAD_BITS: u32 = 15;
const HEAD_SHIFT: u32 = 48;
const HEAD_MASK: u64 = (1 << HEAD_BITS) - 1;
/// How many times a pop looks again when the producer overwrites the cell it is taking.
pub(crate) const POP_ATTEMPTS: u32 = 16;
/// How many times a lapped consumer moves forward to the oldest message still in the ring
/// before it takes whatever message it finds.
const RESYNCS: u32 = 2;

/// The words of a queue's control block that the protocol uses.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a> {
    /// Per cell, its position word then its state word.
    pub cells: &'a [AtomicU64],
    /// Per slot, the position of the last message the producer wrote into it.
    pub headers: &'a [AtomicU64],
    /// The producer's `head` (its next position) and its record.
    pub head: &'a AtomicU64,
    pub producer: &'a AtomicU64,
    /// The consumer's `tail` (its next position), the position of a pending pop, and its
    /// record.
    pub tail: &'a AtomicU64,
    pub pending: &'a AtomicU64,
    pub consumer: &'a AtomicU64,
}

impl Words<'_> {
    fn capacity(&self) -> u64 {
        (self.cells.len() / 2) as u64
    }

    /// Slots in the pool: `capacity + 2`, one header word each.
    fn slots(&self) -> u64 {
        self.headers.len() as u64
    }

    /// The cell of position `at`.
    fn cell_of(&self, at: u64) -> u64 {
        at % self.capacity()
    }

    /// The cell of position `at`, the position after the one whose cell is `i`: the next cell,
    /// except where positions wrap to 0 past 2^64, whose cell is 0 whatever the capacity (a
    /// capacity that does not divide 2^64 puts 2^64 - 1 and 0 in the same cell).
    #[inline(always)]
    fn next_cell(&self, i: u64, at: u64) -> u64 {
        if i + 1 == self.capacity() || at == 0 {
            0
        } else {
            i + 1
        }
    }

    /// Cell `i`'s position word and state word.
    #[inline(always)]
    fn cell(&self, i: u64) -> (&AtomicU64, &AtomicU64) {
        let i = 2 * i as usize;
        let pair = &self.cells[i..i + 2];
        (&pair[0], &pair[1])
    }

    fn pos_word(&self, at: u64) -> &AtomicU64 {
        self.cell(self.cell_of(at)).0
    }

    fn state_word(&self, at: u64) -> &AtomicU64 {
        self.cell(self.cell_of(at)).1
    }
}

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// Position of the next message.
    pub head: u64,
    /// The slot the producer writes next.
    pub slot: u64,
    /// The consumer's `tail` as `try_push` last read it. The tail only moves forward, so while
    /// this one leaves room, there is room, and `try_push` reads the consumer's line again only
    /// when it looks full.
    pub tail_seen: u64,
    /// The cell of `head` (`head % capacity`, kept so that a push divides nothing).
    cell: u64,
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Position of the next message to read.
    pub tail: u64,
    /// The slot of the message last popped (or a spare slot before the first pop).
    pub slot: u64,
    /// The cell of `tail` (`tail % capacity`, kept so that a pop divides nothing).
    cell: u64,
}

impl Consumer {
    /// Moves the consumer's position to `tail`.
    fn seek(&mut self, w: &Words<'_>, tail: u64) {
        self.tail = tail;
        self.cell = w.cell_of(tail);
    }
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The message is in the queue; `overwrote` tells whether an unread message was dropped.
    Done { overwrote: bool },
    /// `try_push` found the queue full; nothing changed.
    Full,
}

/// What a pop found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// No message at the consumer's position yet.
    Empty,
    /// The consumer now holds the message at position `pos` in its slot; `missed` messages
    /// before it were overwritten (or skipped) since the previous pop.
    Message { pos: u64, missed: u64 },
}

fn bad(word: u64, reason: CorruptWord) -> BadWord {
    BadWord { word, reason }
}

/// The signed distance `a - b` between two positions.
fn distance(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

/// The full position of the message a cell's state word describes: the latest position not
/// after the cell's position word whose low bits match (the position word is written first, so
/// it is never behind the state word it goes with).
fn position(pos_word: u64, state: u64) -> u64 {
    pos_word.wrapping_sub(pos_word.wrapping_sub(state >> SLOT_BITS) & POS_MASK)
}

fn cell(free: bool, pos: u64, slot: u64) -> u64 {
    (if free { FREE } else { 0 }) | (pos & POS_MASK) << SLOT_BITS | slot
}

/// The initial position word, state word and slot header of a fresh queue of `capacity`:
/// cell `i` free with slot `i`, as if the message `capacity` positions before `i` had been
/// taken; the producer holds slot `capacity`, the consumer slot `capacity + 1`.
pub(crate) fn initial_cell(i: u64, capacity: u64) -> (u64, u64) {
    let pos = i.wrapping_sub(capacity);
    (pos, cell(true, pos, i))
}

/// The initial records: `(producer, consumer)`.
pub(crate) fn initial_records(capacity: u64) -> (u64, u64) {
    (capacity, capacity + 1)
}

fn slot_of(record: u64) -> u64 {
    record & SLOT_MASK
}

fn take_of(record: u64) -> u64 {
    (record >> SLOT_BITS) & SLOT_MASK
}

/// The state of a new holder of the producer end: its record, and the cell it names if it was
/// killed in the middle of a push.
pub(crate) fn claim_producer(w: &Words<'_>) -> Result<Producer, BadWord> {
    // Acquire: the consumer's reads of the slots we may take over happen before our writes.
    let head = w.head.load(Ordering::Acquire);
    let rec = w.producer.load(Ordering::Acquire);
    let (give, take) = (slot_of(rec), take_of(rec));
    let mut p = if rec & PENDING == 0 {
        Producer {
            head,
            slot: give,
            // As if full: the first `try_push` reads the tail.
            tail_seen: head.wrapping_sub(w.capacity()),
            cell: 0,
        }
    } else {
        // The push was at `head`, or at `head - 1` if the head was already moved on.
        let low = (rec >> HEAD_SHIFT) & HEAD_MASK;
        let h = if head & HEAD_MASK == low {
            head
        } else if head.wrapping_sub(1) & HEAD_MASK == low {
            head.wrapping_sub(1)
        } else {
            return Err(bad(rec, CorruptWord::QueueSaved));
        };
        // Acquire: pairs with the exchange, if it happened, and with a consumer's pop since.
        let st = w.state_word(h).load(Ordering::Acquire);
        if (st >> SLOT_BITS) & POS_MASK == h & POS_MASK {
            Producer {
                head: h.wrapping_add(1),
                slot: take,
                tail_seen: h.wrapping_sub(w.capacity()),
                cell: 0,
            }
        } else {
            Producer {
                head: h,
                slot: give,
                tail_seen: h.wrapping_sub(w.capacity()),
                cell: 0,
            }
        }
    };
    p.cell = w.cell_of(p.head);
    if p.slot >= w.slots() || take >= w.slots() {
        return Err(bad(rec, CorruptWord::QueueSaved));
    }
    // Relaxed: our own words, read again only by a successor of ours (ordered by its claim).
    w.head.store(p.head, Ordering::Relaxed);
    w.producer.store(p.slot, Ordering::Release);
    // Relaxed, then a release fence: the header names the message we write into the slot
    // next before any of our writes into it (for observers).
    w.headers[p.slot as usize].store(p.head, Ordering::Relaxed);
    fence(Ordering::Release);
    Ok(p)
}

/// Pushes the producer's slot as the message at position `head`. With `force == false`,
/// refuses when the consumer's published tail says the queue is full.
#[inline(always)]
pub(crate) fn push(w: &Words<'_>, p: &mut Producer, force: bool) -> Result<Pushed, BadWord> {
    match push_steps(w, p, force, &mut Run)? {
        Ok(pushed) => Ok(pushed),
        Err(never) => match never {},
    }
}

/// [`push`], stoppable at each atomic step.
#[inline(always)]
pub(crate) fn push_steps<S: Steps>(
    w: &Words<'_>,
    p: &mut Producer,
    force: bool,
    steps: &mut S,
) -> Result<Result<Pushed, S::Stop>, BadWord> {
    let h = p.head;
    if !force {
        let used = distance(h, p.tail_seen);
        if used < 0 || used as u64 >= w.capacity() {
            // Full as far as we know (or a new claim, which starts at `head`): read the tail.
            match push_reads_tail(w, p, steps)? {
                Ok(true) => {}
                Ok(false) => return Ok(Ok(Pushed::Full)),
                Err(stop) => return Ok(Err(stop)),
            }
        }
    }
    step!(steps);
    // Relaxed: the header is read by a consumer's successor only, after acquiring the record
    // that names this slot (stored with release below).
    w.headers[p.slot as usize].store(h, Ordering::Relaxed);
    let (pos_word, state_word) = w.cell(p.cell);
    step!(steps);
    // Relaxed: published with the state word's exchange (release) below.
    pos_word.store(h, Ordering::Relaxed);
    // Relaxed: only decides what to exchange against; the exchange acquires.
    let st = state_word.load(Ordering::Relaxed);
    match push_exchange(w, p, state_word, st, steps)? {
        Ok(Ok(pushed)) => Ok(Ok(pushed)),
        Ok(Err(actual)) => push_again(w, p, state_word, actual, steps),
        Err(stop) => Ok(Err(stop)),
    }
}

/// `try_push` on a queue that looked full: reads the consumer's tail; whether there is room.
#[cold]
#[inline(never)]
fn push_reads_tail<S: Steps>(
    w: &Words<'_>,
    p: &mut Producer,
    steps: &mut S,
) -> Result<Result<bool, S::Stop>, BadWord> {
    step!(steps);
    // Relaxed: the tail only decides whether to push; the cell exchange synchronises the slot
    // handover. A stale tail can only make the queue look fuller than it is.
    let t = w.tail.load(Ordering::Relaxed);
    p.tail_seen = t;
    let used = distance(p.head, t);
    if used < 0 {
        return Err(bad(t, CorruptWord::QueueTail));
    }
    Ok(Ok((used as u64) < w.capacity()))
}

/// One attempt at the exchange of a push at `p.head`, over the state word `st` read from the
/// cell: checks it, records the push, exchanges. `Ok(Err(actual))`: the cell changed in
/// between (to `actual`).
#[inline(always)]
fn push_exchange<S: Steps>(
    w: &Words<'_>,
    p: &mut Producer,
    state_word: &AtomicU64,
    st: u64,
    steps: &mut S,
) -> Result<Result<Result<Pushed, u64>, S::Stop>, BadWord> {
    let h = p.head;
    let x = slot_of(st);
    let behind = h.wrapping_sub(w.capacity()) & POS_MASK;
    if x >= w.slots() || x == p.slot || (st >> SLOT_BITS) & POS_MASK != behind {
        return Err(bad(st, CorruptWord::QueueCellOnPush));
    }
    step!(steps);
    // Relaxed: the record is read by a successor only, after the claim orders it.
    let record = PENDING | (h & HEAD_MASK) << HEAD_SHIFT | x << SLOT_BITS | p.slot;
    w.producer.store(record, Ordering::Relaxed);
    step!(steps);
    // AcqRel. Release: our writes into the slot (and its position and header words) happen
    // before the consumer's reads after its acquiring load of this cell. Acquire: the
    // consumer's reads of the slot we take (it released it with its exchange) happen before
    // our next writes into it.
    if let Err(actual) = state_word.compare_exchange(
        st,
        cell(false, h, p.slot),
        Ordering::AcqRel,
        Ordering::Relaxed,
    ) {
        return Ok(Ok(Err(actual)));
    }
    // Relaxed: the slot we took will carry the next message; ordered before our writes into
    // it by the fence below (for observers).
    w.headers[x as usize].store(h.wrapping_add(1), Ordering::Relaxed);
    step!(steps);
    // Release: an observer that acquires the head sees every message below it whole. The
    // consumer reads it only as a hint (in `latest`).
    w.head.store(h.wrapping_add(1), Ordering::Release);
    step!(steps);
    // Release: a successor that reads this record sees the header written above.
    w.producer.store(x, Ordering::Release);
    // Release: the header above comes before our writes into the slot.
    fence(Ordering::Release);
    p.slot = x;
    p.head = h.wrapping_add(1);
    p.cell = w.next_cell(p.cell, p.head);
    Ok(Ok(Ok(Pushed::Done {
        overwrote: st & FREE == 0,
    })))
}

/// The second and last attempt of a push whose exchange failed: the consumer took the message
/// at `head - capacity` in between, and its freed slot is in the cell now (`actual`). It cannot
/// touch this cell again before we fill it.
#[cold]
#[inline(never)]
fn push_again<S: Steps>(
    w: &Words<'_>,
    p: &mut Producer,
    state_word: &AtomicU64,
    actual: u64,
    steps: &mut S,
) -> Result<Result<Pushed, S::Stop>, BadWord> {
    match push_exchange(w, p, state_word, actual, steps)? {
        Ok(Ok(pushed)) => Ok(Ok(pushed)),
        Ok(Err(st)) => Err(bad(st, CorruptWord::QueueCellOnPush)),
        Err(stop) => Ok(Err(stop)),
    }
}

/// The state of a new holder of the consumer end: its record, the cell a pending pop names,
/// and, when the producer has pushed into that cell since, the producer's record and the slots'
/// headers.
pub(crate) fn claim_consumer(w: &Words<'_>) -> Result<Consumer, BadWord> {
    let tail = w.tail.load(Ordering::Acquire);
    let rec = w.consumer.load(Ordering::Acquire);
    let (give, take) = (slot_of(rec), take_of(rec));
    if give >= w.slots() || take >= w.slots() {
        return Err(bad(rec, CorruptWord::QueueSaved));
    }
    let (tail, slot) = if rec & PENDING == 0 {
        (tail, give)
    } else {
        let p = w.pending.load(Ordering::Acquire);
        let popped = pending_pop_happened(w, p, give, take)?;
        if popped {
            (p.wrapping_add(1), take)
        } else {
            (tail, give)
        }
    };
    // A saved position that no producer has reached (more than one past its published head,
    // which a message taken before the head moved on allows) is not one a consumer left: start
    // from the producer's. A position far behind is a consumer that left long ago: its first
    // pop counts what was overwritten since.
    // Acquire: the producer's head, as a bound only.
    let head = w.head.load(Ordering::Acquire);
    let tail = if distance(head, tail) < -1 {
        head
    } else {
        tail
    };
    let mut c = Consumer {
        tail,
        slot,
        cell: 0,
    };
    c.seek(w, tail);
    // Relaxed / release: as the producer's claim.
    w.tail.store(c.tail, Ordering::Release);
    w.consumer.store(c.slot, Ordering::Release);
    Ok(c)
}

/// Whether a consumer killed while taking the message at `p` (giving slot `give`, taking slot
/// `take`) completed its exchange.
fn pending_pop_happened(w: &Words<'_>, p: u64, give: u64, take: u64) -> Result<bool, BadWord> {
    // Acquire: pairs with the producer's exchange of this cell, and its position word.
    let st = w.state_word(p).load(Ordering::Acquire);
    let pos = position(w.pos_word(p).load(Ordering::Relaxed), st);
    match distance(pos, p) {
        0 if st & FREE == 0 && slot_of(st) == take => return Ok(false),
        0 if st & FREE != 0 && slot_of(st) == give => return Ok(true),
        d if d > 0 => {}
        _ => return Err(bad(st, CorruptWord::QueueSaved)),
    }
    // The producer pushed into the cell since: it took `give` (our exchange happened) or
    // `take` (it overwrote the message first). That slot is the producer's now, or has carried
    // a message after `p`; ours never has.
    // Acquire: the headers the producer wrote before its record happen before our reads.
    let rec = w.producer.load(Ordering::Acquire);
    let held = |s: u64| {
        slot_of(rec) == s || (rec & PENDING != 0 && take_of(rec) == s) || {
            // Relaxed: ordered by the acquire above.
            distance(w.headers[s as usize].load(Ordering::Relaxed), p) > 0
        }
    };
    match (held(give), held(take)) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        _ => Err(bad(st, CorruptWord::QueueSaved)),
    }
}

/// Takes the oldest unread message, if any.
#[cfg(test)]
pub(crate) fn pop(w: &Words<'_>, c: &mut Consumer) -> Result<Popped, BadWord> {
    pop_with(w, c, |_| {})
}

/// [`pop`], calling `taking` with the slot it is about to take before each exchange, so that
/// the caller can start reading the slot while the exchange is under way (a prefetch: nothing
/// may be read from the slot before the exchange succeeds).
#[inline(always)]
pub(crate) fn pop_with(
    w: &Words<'_>,
    c: &mut Consumer,
    taking: impl FnMut(u64),
) -> Result<Popped, BadWord> {
    match pop_steps_with(w, c, &mut Run, taking)? {
        Ok(popped) => Ok(popped),
        Err(never) => match never {},
    }
}

/// [`pop`], stoppable at each atomic step.
#[cfg(all(test, loom))]
pub(crate) fn pop_steps<S: Steps>(
    w: &Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
) -> Result<Result<Popped, S::Stop>, BadWord> {
    pop_steps_with(w, c, steps, |_| {})
}

/// [`pop_with`], stoppable at each atomic step.
///
/// The cell at the consumer's position holds, in the common cases, the message at that very
/// position (taken here, inline) or the slot this consumer freed there one lap ago (nothing
/// new). Everything else (a message from a lap ahead, a cell taken by a predecessor, a word
/// that breaks the protocol, an exchange that lost a race) goes through [`pop_rounds`], which
/// decides on every case as the first round did not.
#[inline(always)]
pub(crate) fn pop_steps_with<S: Steps>(
    w: &Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
    mut taking: impl FnMut(u64),
) -> Result<Result<Popped, S::Stop>, BadWord> {
    let t = c.tail;
    step!(steps);
    let (pos_word, state_word) = w.cell(c.cell);
    // Acquire: pairs with the producer's exchange, so the position word read next is at least
    // the one written with it. The message's data is acquired by our exchange.
    let st = state_word.load(Ordering::Acquire);
    let pos = position(pos_word.load(Ordering::Relaxed), st);
    if st & FREE == 0 && pos == t {
        let s = slot_of(st);
        if s >= w.slots() || s == c.slot {
            return Err(bad(st, CorruptWord::QueueCellOnPop));
        }
        taking(s);
        return match pop_exchange(w, c, state_word, st, pos, steps)? {
            Ok(true) => {
                c.cell = w.next_cell(c.cell, c.tail);
                Ok(Ok(Popped::Message { pos, missed: 0 }))
            }
            // The producer overwrote this cell in between: look again.
            Ok(false) => pop_rounds(w, c, steps, taking, Rounds::after_lost_race(t)),
            Err(stop) => Ok(Err(stop)),
        };
    }
    if st & FREE != 0 && pos == t.wrapping_sub(w.capacity()) {
        return Ok(Ok(Popped::Empty));
    }
    pop_rounds(w, c, steps, taking, Rounds::first(t, st, pos))
}

/// Where [`pop_rounds`] starts.
struct Rounds {
    /// The position the consumer started from (what it missed is counted from there).
    start: u64,
    /// The position it looks at.
    t: u64,
    /// The words its first round has read already, if any.
    seen: Option<(u64, u64)>,
    /// Whether its record says it is taking a slot.
    announced: bool,
    /// Rounds left.
    left: u32,
}

impl Rounds {
    fn first(t: u64, st: u64, pos: u64) -> Rounds {
        Rounds {
            start: t,
            t,
            seen: Some((st, pos)),
            announced: false,
            left: POP_ATTEMPTS,
        }
    }

    fn after_lost_race(t: u64) -> Rounds {
        Rounds {
            start: t,
            t,
            seen: None,
            announced: true,
            left: POP_ATTEMPTS - 1,
        }
    }
}

/// The records, the exchange and the records again of a pop that takes the message at `pos`
/// (slot `slot_of(st)`) from the cell whose state word is `state_word` and read `st`: whether
/// the exchange succeeded (the consumer then holds the slot and has moved past `pos`).
#[inline(always)]
fn pop_exchange<S: Steps>(
    w: &Words<'_>,
    c: &mut Consumer,
    state_word: &AtomicU64,
    st: u64,
    pos: u64,
    steps: &mut S,
) -> Result<Result<bool, S::Stop>, BadWord> {
    let s = slot_of(st);
    step!(steps);
    // Relaxed: read by a successor only, after the record below orders it.
    w.pending.store(pos, Ordering::Relaxed);
    step!(steps);
    // Release: a successor that sees the pending record sees the position above.
    w.consumer
        .store(PENDING | s << SLOT_BITS | c.slot, Ordering::Release);
    step!(steps);
    // AcqRel. Acquire pairs with the producer's release exchange: the message is visible.
    // Release: our reads of the slot we hand back happen before the producer reuses it.
    if state_word
        .compare_exchange(
            st,
            cell(true, pos, c.slot),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return Ok(Ok(false));
    }
    step!(steps);
    // Release: `try_push` compares against it; ordered after the exchange for successors.
    w.tail.store(pos.wrapping_add(1), Ordering::Release);
    step!(steps);
    w.consumer.store(s, Ordering::Release);
    c.slot = s;
    c.tail = pos.wrapping_add(1);
    Ok(Ok(true))
}

/// A pop's rounds, each deciding on what the cell at the position holds: a message at the
/// position or later (taken; a later one means the producer lapped the consumer, and the
/// positions in between count as missed), the slot of a message taken there already (moved
/// past), nothing yet, or a word that breaks the protocol.
#[cold]
#[inline(never)]
fn pop_rounds<S: Steps>(
    w: &Words<'_>,
    c: &mut Consumer,
    steps: &mut S,
    mut taking: impl FnMut(u64),
    from: Rounds,
) -> Result<Result<Popped, S::Stop>, BadWord> {
    let Rounds {
        mut start,
        mut t,
        mut seen,
        mut announced,
        left,
    } = from;
    let mut resyncs = 0;
    for _ in 0..left {
        let (st, pos) = match seen.take() {
            Some(words) => words,
            None => {
                step!(steps);
                // Acquire: as in `pop_steps_with`.
                let st = w.state_word(t).load(Ordering::Acquire);
                (st, position(w.pos_word(t).load(Ordering::Relaxed), st))
            }
        };
        let d = distance(pos, t);
        if st & FREE != 0 && d == 0 {
            // Taken already, by a consumer before us that was killed before it moved on: not
            // ours to deliver, nor missed.
            t = t.wrapping_add(1);
            start = t;
            continue;
        }
        if d < -(w.capacity() as i64) {
            // Nothing in the ring is that old: the position is not one the producer reached.
            return Err(bad(t, CorruptWord::QueueTail));
        }
        if st & FREE != 0 || d < 0 {
            // Free, or a message from an earlier lap that we took: nothing at `t` yet.
            break;
        }
        if d as u64 >= w.capacity() && resyncs < RESYNCS {
            // The producer lapped us: every position up to `pos` was written, and the oldest
            // that may still be unread is `pos - capacity + 1`.
            t = pos.wrapping_sub(w.capacity()).wrapping_add(1);
            resyncs += 1;
            continue;
        }
        let s = slot_of(st);
        if s >= w.slots() || s == c.slot {
            return Err(bad(st, CorruptWord::QueueCellOnPop));
        }
        taking(s);
        announced = true;
        match pop_exchange(w, c, w.state_word(t), st, pos, steps)? {
            Ok(true) => {
                c.cell = w.cell_of(c.tail);
                return Ok(Ok(Popped::Message {
                    pos,
                    missed: pos.wrapping_sub(start),
                }));
            }
            // The producer overwrote this cell in between: look again.
            Ok(false) => continue,
            Err(stop) => return Ok(Err(stop)),
        }
    }
    if announced {
        // Nothing taken after all: the record says again what the consumer holds.
        step!(steps);
        w.consumer.store(c.slot, Ordering::Release);
    }
    Ok(Ok(Popped::Empty))
}

/// Skips to the newest message and takes it: `head` is the producer's published position of
/// its next message (a hint: a stale one only makes the consumer skip fewer messages).
/// Everything older that was still unread counts as missed.
pub(crate) fn latest(
    w: &Words<'_>,
    c: &mut Consumer,
    head: u64,
    mut taking: impl FnMut(u64),
) -> Result<Popped, BadWord> {
    let behind = distance(head, c.tail);
    if behind > 1 {
        let start = c.tail;
        // Pretend we read up to `head - 1`; the skipped messages count as missed.
        c.seek(w, head.wrapping_sub(1));
        match pop_with(w, c, &mut taking)? {
            Popped::Message { pos, .. } => {
                return Ok(Popped::Message {
                    pos,
                    missed: pos.wrapping_sub(start),
                })
            }
            Popped::Empty => c.seek(w, start),
        }
    }
    pop_with(w, c, taking)
}

/// Whether a pop would find a message now: the first step of [`pop`], without the exchange.
/// The wake-up protocol's check: it reads the cell that the producer's push exchanges before
/// its fence.
pub(crate) fn has_message(w: &Words<'_>, c: &Consumer) -> bool {
    let (pos_word, state_word) = w.cell(c.cell);
    // Relaxed: only decides whether to sleep; the pop's exchange acquires the message.
    let st = state_word.load(Ordering::Relaxed);
    let pos = position(pos_word.load(Ordering::Relaxed), st);
    st & FREE == 0 && distance(pos, c.tail) >= 0
}

/// Where an observer finds the message at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sighting {
    /// The producer has not pushed position `pos` yet.
    NotYet,
    /// The message at `pos` is in slot `slot`: copy it, then ask [`observed`].
    At { pos: u64, slot: u64 },
    /// The message at `pos` is gone (overwritten, or in no slot the observer can name): look
    /// for `pos + 1`.
    Gone { pos: u64 },
}

/// How far the queue has come, for tools: the producer's `head` (messages pushed) and the
/// consumer's `tail` (messages popped or passed over as missed). Writes nothing.
pub(crate) fn progress(w: &Words<'_>) -> (u64, u64) {
    // Relaxed: a snapshot for people and tools, never used to read a slot.
    (
        w.head.load(Ordering::Relaxed),
        w.tail.load(Ordering::Relaxed),
    )
}

/// An observer's first step for the message at position `q`, or for the oldest one that may
/// still be in the ring if `q` is older. Writes nothing.
pub(crate) fn observe(w: &Words<'_>, q: u64) -> Sighting {
    // Relaxed, then an acquire fence (tools map segments read-only, where only relaxed atomic
    // loads are allowed): pairs with the producer's release store of `head` after the
    // exchange of every position below it: those messages' writes are visible.
    let head = w.head.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    let ahead = distance(head, q);
    if ahead <= 0 {
        return Sighting::NotYet;
    }
    let q = if ahead as u64 > w.capacity() {
        head.wrapping_sub(w.capacity())
    } else {
        q
    };
    // The candidates: the slot in the cell, if the cell holds the message; the slot the
    // consumer is taking; the consumer's slot. They are read at different moments and may
    // disagree; the header decides (a slot that never held a message has `NO_MESSAGE`).
    // Relaxed: the header decides, and the acquire above already made the message's data
    // visible.
    let st = w.state_word(q).load(Ordering::Relaxed);
    let pos = position(w.pos_word(q).load(Ordering::Relaxed), st);
    let rec = w.consumer.load(Ordering::Relaxed);
    let in_cell = (st & FREE == 0 && pos == q).then_some(slot_of(st));
    let pending = (rec & PENDING != 0).then_some(take_of(rec));
    for s in [in_cell, pending, Some(slot_of(rec))].into_iter().flatten() {
        // Relaxed, then an acquire fence (as above): a header naming `q` was stored when the
        // producer took the slot for `q`.
        if s < w.slots() && w.headers[s as usize].load(Ordering::Relaxed) == q {
            fence(Ordering::Acquire);
            return Sighting::At { pos: q, slot: s };
        }
    }
    Sighting::Gone { pos: q }
}

/// An observer's last step, after copying `slot`: whether the copy is the message at `pos`
/// whole. The producer writes a slot only after storing the position it is writing in the
/// slot's header and a release fence; if the copy saw any such write, the acquire fence here
/// pairs with that fence and the load below sees the newer position.
pub(crate) fn observed(w: &Words<'_>, pos: u64, slot: u64) -> bool {
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    slot < w.slots() && w.headers[slot as usize].load(Ordering::Relaxed) == pos
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests;

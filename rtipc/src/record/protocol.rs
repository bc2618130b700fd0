//! The record channel's protocol: variable-size records in one contiguous byte ring, free of
//! any mapping so that loom can model-check it.
//!
//! Positions are monotonic byte counts; a position's place in the ring is `pos % capacity`.
//! A record at position `p` starts with a header block of `align` bytes whose first two words
//! are its length in elements (bit 63: a padding record that fills the ring up to its end)
//! and its sequence number (1, 2, ...); its payload follows at `p + align`, rounded up to
//! `align`. The capacity holds at least two records of the largest size, so a record always
//! fits after a padding record at the wrap.
//!
//! Shared words: the producer's `tail` (the next free position, stored with release after the
//! record's header: a consumer that sees it sees the record), `seq` (the last committed
//! sequence number; while a commit is under way, the new number with [`COMMITTING`] set) and
//! `next` (the tail that commit will store); the consumer's `head` (the oldest record not taken), `reading` (the
//! position of the record the consumer holds, or [`NONE`]) and `taken` (the sequence number of
//! the last record it took).
//!
//! * **reserve** (producer): the free space is `capacity - (tail - oldest)`, `oldest` the
//!   smaller of `head` and `reading`, loaded in that order with acquire: a consumer stores
//!   `reading` before its compare-and-swap of `head` (release), so a producer that sees the
//!   new `head` also sees what it holds. The lossless form refuses when there is no room; the
//!   overwrite form first drops the oldest records, each by one compare-and-swap of `head` past
//!   it, never past the record the consumer holds. The producer keeps the oldest position it
//!   last loaded (a lower bound: both words only move forward) and loads the consumer's words
//!   again only when a record does not fit below it. The producer writes only between `tail`
//!   and `oldest + capacity`: never over a record the consumer may read.
//! * **commit**: the padding header (if the record wraps), the record's header, `next`,
//!   `seq` with [`COMMITTING`], `tail` (release), then `seq` plain. A reservation dropped
//!   without a commit published nothing. A consumer bounds a header's sequence number by the
//!   number in `seq`.
//! * **pop** (consumer): `head` and `tail` (acquire), the header at `head`, checked before use
//!   (length, range, sequence), then `reading = head` and one compare-and-swap of `head` past
//!   the record. If the producer dropped it meanwhile the swap fails and the consumer looks
//!   again (at most [`POP_ATTEMPTS`] times). The record stays the consumer's until
//!   **release** clears `reading` (release: its reads come before the producer's next writes
//!   there).
//!
//! Both sides take a bounded number of steps: wait-free. Crash recovery: a producer killed
//! anywhere leaves `tail` at its last commit (what it wrote beyond is never read); a successor
//! continues from `tail` and from `seq`: if `seq` says a commit was under way, that record was
//! published exactly when `tail` equals `next`, so no number is skipped or given twice. A consumer killed while holding a record leaves `reading`
//! set; its successor clears it and continues after `taken` (a record the predecessor was
//! taking when it died, before it stored `taken`, counts as missed).

use crate::sync::{fence, step, AtomicU64, BadWord, CorruptWord, Ordering, Run, Steps};

/// `reading` when the consumer holds no record.
pub(crate) const NONE: u64 = u64::MAX;
/// Bit 63 of a header's first word: a padding record up to the end of the ring.
pub(crate) const PAD: u64 = 1 << 63;
/// Bit 63 of `seq`: a commit of that number is under way (see [`claim_producer`]).
pub(crate) const COMMITTING: u64 = 1 << 63;
/// How many times a pop looks again after the producer dropped the record it was taking.
pub(crate) const POP_ATTEMPTS: u32 = 16;

/// The channel's fixed shape, from its validated table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Bytes in the ring: a multiple of `align`, at least `2 * bytes(max_len)`.
    pub capacity: u64,
    /// Record alignment: the header block's size, a power of two, at least 16.
    pub align: u64,
    /// Size of one element.
    pub elem: u64,
    /// Most elements in one record.
    pub max_len: u64,
}

impl Geometry {
    /// Bytes of a record of `len` elements: its header block and its payload, rounded up.
    pub(crate) fn bytes(&self, len: u64) -> u64 {
        let payload = len.saturating_mul(self.elem);
        self.align
            .saturating_add(payload.div_ceil(self.align).saturating_mul(self.align))
    }
}

/// The words of a record channel that the protocol uses.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a> {
    /// The ring, as 8-byte words (`capacity / 8` of them).
    pub ring: &'a [AtomicU64],
    pub tail: &'a AtomicU64,
    pub seq: &'a AtomicU64,
    /// The tail that the commit under way stores: for a successor.
    pub next: &'a AtomicU64,
    pub head: &'a AtomicU64,
    pub reading: &'a AtomicU64,
    /// The sequence number of the last record the consumer took: written by the consumer,
    /// read by its successor (for its missed counts).
    pub taken: &'a AtomicU64,
}

impl Words<'_> {
    /// The two header words of the record at position `pos`.
    /// `pos` is on a record boundary (a multiple of the record alignment): callers check
    /// every position they read from shared memory; the rounding down keeps both words inside
    /// the ring whatever `pos` is.
    fn header(&self, g: &Geometry, pos: u64) -> (&AtomicU64, &AtomicU64) {
        let at = (((pos % g.capacity) & !(g.align - 1)) / 8) as usize;
        (&self.ring[at], &self.ring[at + 1])
    }
}

fn bad(word: u64, reason: CorruptWord) -> BadWord {
    BadWord { word, reason }
}

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// The next free position.
    pub tail: u64,
    /// The last committed sequence number.
    pub seq: u64,
    /// The oldest byte the consumer may still read, as last loaded: a lower bound, since the
    /// consumer's `head` and `reading` only move forward. A reservation that fits below it
    /// needs no load of the consumer's line.
    pub oldest: u64,
}

/// A reservation: where the record goes and what it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Where the record starts (after the padding, if any).
    pub pos: u64,
    /// Its length in elements.
    pub len: u64,
    /// Bytes of padding before it (to the end of the ring), or 0.
    pub pad: u64,
    /// Records the overwrite form dropped to make room.
    pub dropped: u64,
}

impl Reservation {
    /// The byte offset of the payload in the ring.
    pub(crate) fn payload(&self, g: &Geometry) -> u64 {
        (self.pos % g.capacity) + g.align
    }
}

/// Why a reservation was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// More elements than the channel's maximum.
    TooLong,
    /// Lossless form: not enough room: the record takes `need` bytes (with the padding to
    /// the end of the ring if it wraps) and `free` bytes are free.
    NoRoom { need: u64, free: u64 },
    /// Overwrite form: the record the consumer holds is in the way; `dropped` records were
    /// dropped before that showed (they stay dropped).
    Held { dropped: u64 },
    /// A word that breaks the protocol.
    Corrupt(BadWord),
}

impl Producer {
    /// A producer at `tail` after record `seq`, which knows nothing of the consumer yet (its
    /// first reservation loads the consumer's words).
    fn at(tail: u64, seq: u64, g: &Geometry) -> Producer {
        Producer {
            tail,
            seq,
            oldest: tail.saturating_sub(g.capacity),
        }
    }
}

/// A new producer's state, from the words its predecessor left (or the initial zeros).
pub(crate) fn claim_producer(w: Words<'_>, g: &Geometry) -> Result<Producer, BadWord> {
    // Acquire: pairs with the consumer's release of `head` (its reads of the ring are over).
    let head = w.head.load(Ordering::Acquire);
    // Relaxed: the predecessor's own words; nothing else writes them, and the claim ordered
    // its stores before these loads.
    let tail = w.tail.load(Ordering::Relaxed);
    let word = w.seq.load(Ordering::Relaxed);
    let next = w.next.load(Ordering::Relaxed);
    if tail < head || tail - head > g.capacity || !tail.is_multiple_of(g.align) {
        return Err(bad(tail, CorruptWord::RecordPositions));
    }
    let seq = word & !COMMITTING;
    if word & COMMITTING == 0 {
        return Ok(Producer::at(tail, seq, g));
    }
    // The predecessor died in a commit of record `seq`: it was published if and only if the
    // tail it was storing is there.
    match (tail == next, seq.checked_sub(1)) {
        (true, _) => Ok(Producer::at(tail, seq, g)),
        (false, Some(before)) => Ok(Producer::at(tail, before, g)),
        (false, None) => Err(bad(word, CorruptWord::RecordPositions)),
    }
}

/// The oldest position the producer must not write over, and the position the consumer
/// holds (or [`NONE`]).
fn oldest(w: Words<'_>, p: &Producer, g: &Geometry) -> Result<(u64, u64, u64), BadWord> {
    // Acquire, head first, then reading: see the module documentation.
    let head = w.head.load(Ordering::Acquire);
    let reading = w.reading.load(Ordering::Acquire);
    if head > p.tail || p.tail - head > g.capacity || !head.is_multiple_of(g.align) {
        return Err(bad(head, CorruptWord::RecordPositions));
    }
    // A `reading` more than a ring below the tail, and below `head`, is stale: a consumer
    // stored a head it had loaded before the producer dropped past it and wrote a whole ring
    // on. Its compare-and-swap of `head` fails (`head` has moved on), so it holds nothing
    // there and will clear the word. A record the consumer does hold is never a ring below the
    // tail: the producer drops past it only by moving `head`, which makes that swap fail.
    let reading = if reading != NONE
        && reading < head
        && p.tail - reading > g.capacity
        && reading.is_multiple_of(g.align)
    {
        NONE
    } else {
        reading
    };
    // The head read may be older than `reading` (the consumer moved on since): both are below
    // the tail and within a ring of it, and the smaller is a safe bound.
    if reading != NONE
        && (reading > p.tail || p.tail - reading > g.capacity || !reading.is_multiple_of(g.align))
    {
        return Err(bad(reading, CorruptWord::RecordPositions));
    }
    let oldest = if reading == NONE {
        head
    } else {
        head.min(reading)
    };
    Ok((oldest, head, reading))
}

/// Reserves a record of `len` elements; the overwrite form (`force`) drops the oldest records
/// to make room.
#[inline]
pub(crate) fn reserve(
    w: Words<'_>,
    p: &mut Producer,
    g: &Geometry,
    len: u64,
    force: bool,
) -> Result<Reservation, Refused> {
    match reserve_steps(w, p, g, len, force, &mut Run) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(never)) => match never {},
        Err(e) => Err(e),
    }
}

/// [`reserve`], stoppable before each drop (the only shared write a reservation makes).
pub(crate) fn reserve_steps<S: Steps>(
    w: Words<'_>,
    p: &mut Producer,
    g: &Geometry,
    len: u64,
    force: bool,
    steps: &mut S,
) -> Result<Result<Reservation, S::Stop>, Refused> {
    if len > g.max_len {
        return Err(Refused::TooLong);
    }
    let need = g.bytes(len);
    let off = p.tail % g.capacity;
    let pad = if off + need > g.capacity {
        g.capacity - off
    } else {
        0
    };
    let total = pad + need;
    // The fast path: room below the oldest byte last seen (the tail never passes it by more
    // than the ring, which every reservation keeps).
    if g.capacity - (p.tail - p.oldest) >= total {
        return Ok(Ok(Reservation {
            pos: p.tail + pad,
            len,
            pad,
            dropped: 0,
        }));
    }
    let mut dropped = 0;
    // Each round either finds room, fails, or drops one record (of at most `capacity` in the
    // ring) or sees the consumer take one: bounded.
    for _ in 0..=2 * (g.capacity / g.align) + 2 {
        let (oldest, head, reading) = oldest(w, p, g).map_err(Refused::Corrupt)?;
        p.oldest = oldest;
        let free = g.capacity - (p.tail - oldest);
        if free >= total {
            return Ok(Ok(Reservation {
                pos: p.tail + pad,
                len,
                pad,
                dropped,
            }));
        }
        if !force {
            return Err(Refused::NoRoom { need: total, free });
        }
        if head == p.tail || (reading != NONE && g.capacity - (p.tail - reading) < total) {
            return Err(Refused::Held { dropped });
        }
        let (bytes, record) = match record_at(w, g, head, p.tail, p.seq) {
            Ok(r) => r,
            Err(e) => return Err(Refused::Corrupt(e)),
        };
        step!(steps);
        // AcqRel: acquire pairs with the consumer's release of its reads of this record;
        // release orders nothing of ours but keeps the swap symmetric with the consumer's.
        // A failed swap (the consumer took it) just looks again; only a record this swap
        // moved past counts as dropped.
        if w.head
            .compare_exchange(head, head + bytes, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && record.is_some()
        {
            dropped += 1;
        }
    }
    Err(Refused::Held { dropped })
}

/// The record at `pos` (below `tail`): its bytes, and its sequence number and length (`None`:
/// padding). Every value is checked before use: the header is in shared memory.
fn record_at(
    w: Words<'_>,
    g: &Geometry,
    pos: u64,
    tail: u64,
    last_seq: u64,
) -> Result<(u64, Option<(u64, u64)>), BadWord> {
    let (w0, w1) = w.header(g, pos);
    // Relaxed: the acquire of `tail` (or of `head`, for the producer) ordered the header's
    // writes before this load.
    let word = w0.load(Ordering::Relaxed);
    let seq = w1.load(Ordering::Relaxed);
    let off = pos % g.capacity;
    let room = tail - pos;
    if word & PAD != 0 {
        let bytes = g.capacity - off;
        if word != PAD | bytes || bytes > room {
            return Err(bad(word, CorruptWord::RecordHeader));
        }
        return Ok((bytes, None));
    }
    if word == 0 || word > g.max_len {
        return Err(bad(word, CorruptWord::RecordHeader));
    }
    let bytes = g.bytes(word);
    if bytes > room || off + bytes > g.capacity || seq == 0 || seq > last_seq {
        return Err(bad(
            if seq > last_seq { seq } else { word },
            CorruptWord::RecordHeader,
        ));
    }
    Ok((bytes, Some((seq, word))))
}

/// Publishes reservation `r` (its payload written): the padding header if any, the record's
/// header, `next` and `seq` (marked [`COMMITTING`]), `tail`, then `seq` plain. Returns the
/// record's sequence number.
#[inline]
pub(crate) fn commit(w: Words<'_>, p: &mut Producer, g: &Geometry, r: Reservation) -> u64 {
    match commit_steps(w, p, g, r, &mut Run) {
        Ok(seq) => seq,
        Err(never) => match never {},
    }
}

/// [`commit`], stoppable before each store.
pub(crate) fn commit_steps<S: Steps>(
    w: Words<'_>,
    p: &mut Producer,
    g: &Geometry,
    r: Reservation,
    steps: &mut S,
) -> Result<u64, S::Stop> {
    // The header words are stored with release: a consumer that reads one of them while it
    // still looks at an older record here (dropped since) then also sees the drop (see `pop`).
    if r.pad > 0 {
        steps.next()?;
        let (w0, _) = w.header(g, p.tail);
        w0.store(PAD | r.pad, Ordering::Release);
    }
    let seq = p.seq + 1;
    let (w0, w1) = w.header(g, r.pos);
    steps.next()?;
    w0.store(r.len, Ordering::Release);
    steps.next()?;
    w1.store(seq, Ordering::Release);
    let tail = r.pos + g.bytes(r.len);
    steps.next()?;
    // Relaxed: read by a successor only, ordered by its claim.
    w.next.store(tail, Ordering::Relaxed);
    steps.next()?;
    // Relaxed: for a successor, as `next`; the consumer bounds numbers by it (a number that
    // is not published yet is a bound too).
    w.seq.store(seq | COMMITTING, Ordering::Relaxed);
    steps.next()?;
    // Release: a consumer that sees the new tail sees the header, the payload and `seq`.
    w.tail.store(tail, Ordering::Release);
    p.tail = tail;
    p.seq = seq;
    steps.next()?;
    // Relaxed: the commit is over; nobody needs this before the next tail.
    w.seq.store(seq, Ordering::Relaxed);
    Ok(seq)
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// The sequence number of the last record taken (0: none yet).
    pub last: u64,
}

/// A new consumer: it continues from its predecessor's last record, and a record its
/// predecessor held counts as taken.
pub(crate) fn claim_consumer(w: Words<'_>) -> Consumer {
    // Release: the predecessor's reads (in a dead process) are over; nothing of ours to
    // publish, but the clear must not come before the claim.
    w.reading.store(NONE, Ordering::Release);
    // Relaxed: the predecessor's own word.
    Consumer {
        last: w.taken.load(Ordering::Relaxed),
    }
}

/// A record the consumer now holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Popped {
    pub pos: u64,
    pub len: u64,
    pub seq: u64,
    /// Records between the last one taken and this one that the producer dropped.
    pub missed: u64,
}

impl Popped {
    /// The byte offset of the payload in the ring.
    pub(crate) fn payload(&self, g: &Geometry) -> u64 {
        (self.pos % g.capacity) + g.align
    }
}

/// Takes the oldest record, if any; the consumer holds it until [`release`].
#[inline]
pub(crate) fn pop(w: Words<'_>, c: &mut Consumer, g: &Geometry) -> Result<Option<Popped>, BadWord> {
    match pop_steps(w, c, g, &mut Run)? {
        Ok(r) => Ok(r),
        Err(never) => match never {},
    }
}

/// [`pop`], stoppable before each shared write.
pub(crate) fn pop_steps<S: Steps>(
    w: Words<'_>,
    c: &mut Consumer,
    g: &Geometry,
    steps: &mut S,
) -> Result<Result<Option<Popped>, S::Stop>, BadWord> {
    for _ in 0..POP_ATTEMPTS {
        // Acquire both: the producer's tail publishes the records below it; the head may have
        // been moved by the producer's drops.
        let head = w.head.load(Ordering::Acquire);
        let tail = w.tail.load(Ordering::Acquire);
        if head == tail {
            return Ok(Ok(None));
        }
        if head > tail
            || tail - head > g.capacity
            || !head.is_multiple_of(g.align)
            || !tail.is_multiple_of(g.align)
        {
            // A head read before the producer dropped records and wrote past them: look again.
            if moved(w, head) {
                continue;
            }
            return Err(bad(tail, CorruptWord::RecordPositions));
        }
        // Relaxed: stored before the tail that the acquire above read, so at least the number
        // of the newest record below that tail (it may be newer still).
        let last_seq = w.seq.load(Ordering::Relaxed) & !COMMITTING;
        let (bytes, record) = match record_at(w, g, head, tail, last_seq) {
            Ok(r) => r,
            // The producer may have dropped this record and written over it since we read
            // `head`: only a header that is still at the head is corrupt.
            // Acquire: as above.
            // The fence pairs with the release stores of a newer header: if we read one, the
            // drop that made room for it is visible to the load of `head`.
            Err(_) if moved(w, head) => continue,
            Err(e) => return Err(e),
        };
        let Some((seq, len)) = record else {
            // Padding: step over it (the producer may have stepped over it too).
            step!(steps);
            let _ =
                w.head
                    .compare_exchange(head, head + bytes, Ordering::AcqRel, Ordering::Relaxed);
            continue;
        };
        if seq <= c.last {
            if moved(w, head) {
                continue;
            }
            return Err(bad(seq, CorruptWord::RecordHeader));
        }
        step!(steps);
        // Relaxed: published to the producer by the release of the swap below.
        w.reading.store(head, Ordering::Relaxed);
        step!(steps);
        // AcqRel: release publishes `reading` to a producer that sees the new head; acquire
        // pairs with the producer's drops.
        if w.head
            .compare_exchange(head, head + bytes, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let missed = seq - c.last - 1;
            c.last = seq;
            step!(steps);
            // Relaxed: for a successor only.
            w.taken.store(seq, Ordering::Relaxed);
            return Ok(Ok(Some(Popped {
                pos: head,
                len,
                seq,
                missed,
            })));
        }
        // The producer dropped it: look again.
        step!(steps);
        // Relaxed: we hold nothing.
        w.reading.store(NONE, Ordering::Relaxed);
    }
    Ok(Ok(None))
}

/// Whether `head` moved on since it read `was` (the producer dropped the record there): an
/// acquire fence (pairing with the release stores of the header just read), then the load.
fn moved(w: Words<'_>, was: u64) -> bool {
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence.
    w.head.load(Ordering::Relaxed) != was
}

/// Whether a pop would find a record (or padding to step over) now.
pub(crate) fn has_record(w: Words<'_>) -> bool {
    // Acquire: a consumer woken by this answer pops with its own loads; acquire keeps a
    // positive answer from coming before the words it summarises.
    w.head.load(Ordering::Acquire) != w.tail.load(Ordering::Acquire)
}

/// Gives the held record back to the producer.
pub(crate) fn release(w: Words<'_>) {
    // Release: every read of the record comes before the producer's next writes there.
    w.reading.store(NONE, Ordering::Release);
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(test)]
mod test_ring;
#[cfg(all(test, not(loom)))]
mod tests;

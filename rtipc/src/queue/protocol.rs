//! The queue protocol: a ring of index cells over a pool of `capacity + 2` slots, free of any
//! memory mapping so that loom can model-check it.
//!
//! Every slot is owned by exactly one party at any time: the producer (the slot it writes
//! next), the consumer (the slot of the message it is reading), or one of the `capacity` ring
//! cells. Both sides move slots only with one atomic `swap` on a cell, which exchanges the
//! slot they hold for the slot in the cell, so ownership is never duplicated and the producer
//! never writes a slot the consumer holds.
//!
//! * **push** (position `head`): the producer swaps `(head, its slot)` into cell
//!   `head % capacity`. It gets back either a free slot (the message that was there was
//!   consumed) or, when the queue was full, the oldest unread message's slot, which it reuses:
//!   that message is lost, and the consumer will count it. `try_push` first compares `head` with
//!   the consumer's published `tail` and refuses when full, so it never overwrites.
//! * **pop** (position `tail`): the consumer loads cell `tail % capacity`; if it holds a message
//!   at position `tail` or later it swaps `(FREE, its slot)` in and takes the message. A message
//!   at a later position means the producer lapped the consumer: the positions in between were
//!   overwritten and are reported as lost; order is preserved.
//!
//! Cell word: bit 63 FREE, bits 24..63 the message's position modulo 2^39, bits 0..24 the slot.
//! Positions are compared with wrapping arithmetic, which is exact as long as the consumer is
//! never lapped by 2^38 messages within one pop.

use crate::sync::{AtomicU64, BadWord, CorruptWord, Ordering};

/// Set in a cell whose slot holds no unread message.
pub(crate) const FREE: u64 = 1 << 63;
/// Bits of a cell holding the slot index.
pub(crate) const SLOT_BITS: u32 = 24;
pub(crate) const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Bits of a cell holding the position.
pub(crate) const POS_BITS: u32 = 39;
pub(crate) const POS_MASK: u64 = (1 << POS_BITS) - 1;

/// The producer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    /// Position of the next message.
    pub head: u64,
    /// The slot the producer writes next.
    pub slot: u64,
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Position of the next message to read.
    pub tail: u64,
    /// The slot of the message last popped (or a spare slot before the first pop).
    pub slot: u64,
}

/// The shape of a queue: ring cells and slot count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub capacity: u64,
    pub slots: u64,
}

impl Shape {
    pub(crate) const fn new(capacity: u64) -> Shape {
        Shape {
            capacity,
            slots: capacity + 2,
        }
    }
}

/// The initial value of cell `i`, and of the producer's and consumer's slots.
pub(crate) const fn initial_cell(i: u64) -> u64 {
    FREE | i
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The message is in the queue; `overwrote` tells whether an unread message was dropped.
    Done { overwrote: bool },
    /// `try_push` found the queue full; nothing changed.
    Full,
}

/// Position in a cell, compared with `tail`: the signed distance `cell_pos - tail`.
fn distance(cell: u64, tail: u64) -> i64 {
    let d = ((cell >> SLOT_BITS) & POS_MASK).wrapping_sub(tail & POS_MASK) & POS_MASK;
    if d >= 1 << (POS_BITS - 1) {
        d as i64 - (1i64 << POS_BITS)
    } else {
        d as i64
    }
}

/// Pushes the producer's slot as the message at position `head`.
///
/// With `force == false`, refuses when the consumer's published `tail` says the queue is full.
pub(crate) fn push(
    cells: &[AtomicU64],
    tail: &AtomicU64,
    shape: Shape,
    p: &mut Producer,
    force: bool,
) -> Result<Pushed, BadWord> {
    if !force {
        // Relaxed: the tail only decides whether to push; the cell swap below synchronises the
        // slot handover. A stale tail can only make the queue look fuller than it is.
        let t = tail.load(Ordering::Relaxed);
        let used = p.head.wrapping_sub(t);
        if used > shape.capacity {
            return Err(BadWord {
                word: t,
                reason: CorruptWord::QueueTail,
            });
        }
        if used == shape.capacity {
            return Ok(Pushed::Full);
        }
    }
    let cell = &cells[(p.head % shape.capacity) as usize];
    let entry = ((p.head & POS_MASK) << SLOT_BITS) | p.slot;
    // AcqRel. Release: our writes into the slot happen-before the consumer's reads after its
    // acquiring swap of this cell. Acquire: the consumer's reads of the slot we get back (it
    // released it with its swap) happen-before our next writes into it.
    let old = cell.swap(entry, Ordering::AcqRel);
    let slot = old & SLOT_MASK;
    if slot >= shape.slots || slot == p.slot {
        return Err(BadWord {
            word: old,
            reason: CorruptWord::QueueCellOnPush,
        });
    }
    p.slot = slot;
    p.head += 1;
    Ok(Pushed::Done {
        overwrote: old & FREE == 0,
    })
}

/// What a pop found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// No message at the consumer's position yet.
    Empty,
    /// The consumer now holds the message at position `pos` in its slot; `lost` messages
    /// before it were overwritten since the previous pop.
    Message { pos: u64, lost: u64 },
}

/// How many times a lapped consumer moves forward to the oldest message still in the ring
/// before it takes whatever message it finds (which keeps `pop` wait-free).
const RESYNCS: u32 = 2;

/// Takes the oldest unread message, if any.
pub(crate) fn pop(cells: &[AtomicU64], shape: Shape, c: &mut Consumer) -> Result<Popped, BadWord> {
    let mut t = c.tail;
    let mut attempt = 0;
    loop {
        let cell = &cells[(t % shape.capacity) as usize];
        // Relaxed: this load only decides whether to swap; no slot data is read on its account.
        let cur = cell.load(Ordering::Relaxed);
        let d = distance(cur, t);
        if cur & FREE != 0 || d < 0 {
            // Free, or a message from an earlier lap that we skipped: nothing at `t` yet.
            return Ok(Popped::Empty);
        }
        if d >= shape.capacity as i64 && attempt < RESYNCS {
            // The producer lapped us: the message here is at `t + d`, so every position up to
            // it was written, and the oldest that may still be unread is `t + d - capacity + 1`.
            t += d as u64 - shape.capacity + 1;
            attempt += 1;
            continue;
        }
        // AcqRel. Acquire pairs with the producer's release swap: the message is visible.
        // Release: our reads of the slot we hand back happen-before the producer reuses it.
        let old = cell.swap(FREE | c.slot, Ordering::AcqRel);
        let slot = old & SLOT_MASK;
        let ahead = distance(old, t);
        // Between our load and swap the producer can only have replaced the message with a
        // newer one; it never writes FREE.
        if old & FREE != 0 || slot >= shape.slots || slot == c.slot || ahead < d {
            return Err(BadWord {
                word: old,
                reason: CorruptWord::QueueCellOnPop,
            });
        }
        let pos = t + ahead as u64;
        let lost = pos - c.tail;
        c.slot = slot;
        c.tail = pos + 1;
        return Ok(Popped::Message { pos, lost });
    }
}

/// Skips to the newest message and takes it: `head` is the producer's published position of
/// its next message (a hint: a stale one only makes the consumer skip fewer messages).
/// Everything older that was still unread counts as lost.
pub(crate) fn latest(
    cells: &[AtomicU64],
    shape: Shape,
    c: &mut Consumer,
    head: u64,
) -> Result<Popped, BadWord> {
    let behind = head.wrapping_sub(c.tail);
    if head > c.tail && behind > 1 {
        if behind > shape.capacity + (1 << (POS_BITS - 1)) {
            return Err(BadWord {
                word: head,
                reason: CorruptWord::QueueSaved,
            });
        }
        // Pretend we read up to `head - 1`; the skipped messages count as lost.
        let saved = *c;
        c.tail = head - 1;
        match pop(cells, shape, c)? {
            Popped::Message { pos, .. } => {
                return Ok(Popped::Message {
                    pos,
                    lost: pos - saved.tail,
                })
            }
            Popped::Empty => *c = saved,
        }
    }
    pop(cells, shape, c)
}

/// The saved state of a new holder of an end: its position and its slot, checked.
pub(crate) fn recover(pos: u64, slot: u64, shape: Shape) -> Result<(u64, u64), BadWord> {
    if slot >= shape.slots {
        return Err(BadWord {
            word: slot,
            reason: CorruptWord::QueueSaved,
        });
    }
    Ok((pos, slot))
}

/// Whether a pop would find a message now: the first step of [`pop`], without the swap. The
/// wake-up protocol's check (see `notify/protocol.rs`): it reads the cell that the producer's
/// push swaps before its fence.
pub(crate) fn has_message(cells: &[AtomicU64], shape: Shape, c: &Consumer) -> bool {
    let cell = &cells[(c.tail % shape.capacity) as usize];
    // Relaxed: only decides whether to sleep; the pop's swap acquires the message.
    let cur = cell.load(Ordering::Relaxed);
    cur & FREE == 0 && distance(cur, c.tail) >= 0
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Shared {
        cells: Vec<AtomicU64>,
        tail: AtomicU64,
        // Each slot holds (position + 1, check) so that a torn read is detectable; loom's
        // UnsafeCell also fails the model on any unsynchronised concurrent access.
        slots: Vec<UnsafeCell<(u64, u64)>>,
    }

    fn shared(shape: Shape) -> Arc<Shared> {
        Arc::new(Shared {
            cells: (0..shape.capacity)
                .map(|i| AtomicU64::new(initial_cell(i)))
                .collect(),
            tail: AtomicU64::new(0),
            slots: (0..shape.slots).map(|_| UnsafeCell::new((0, 0))).collect(),
        })
    }

    /// A producer pushing `messages` (forced, or tried once each) against a consumer making
    /// `pops` pops, then draining.
    fn model(capacity: u64, messages: u64, pops: usize, force: bool) {
        loom::model(move || {
            let shape = Shape::new(capacity);
            let s = shared(shape);
            let ps = s.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer {
                    head: 0,
                    slot: capacity,
                };
                let mut refused = 0;
                for n in 0..messages {
                    let number = p.head + 1;
                    ps.slots[p.slot as usize].with_mut(|v| {
                        // SAFETY: the producer owns its slot exclusively.
                        unsafe { *v = (number, number * 7) }
                    });
                    match push(&ps.cells, &ps.tail, shape, &mut p, force).unwrap() {
                        Pushed::Done { .. } => assert_eq!(p.head, number, "message {n}"),
                        Pushed::Full => {
                            assert!(!force);
                            refused += 1;
                        }
                    }
                }
                (p.head, refused)
            });
            let mut c = Consumer {
                tail: 0,
                slot: capacity + 1,
            };
            let (mut seen, mut lost, mut last) = (0u64, 0u64, 0u64);
            let mut check = |c: &mut Consumer, r: Popped| {
                if let Popped::Message { pos, lost: l } = r {
                    let (n, chk) = s.slots[c.slot as usize].with(|v| {
                        // SAFETY: the consumer owns the slot of its last message.
                        unsafe { *v }
                    });
                    assert_eq!(n, pos + 1, "the slot holds the popped message");
                    assert_eq!(chk, n * 7, "torn read");
                    assert!(n > last, "order preserved");
                    assert_eq!(n - last - 1, l, "lost counts the gap");
                    last = n;
                    seen += 1;
                    lost += l;
                }
            };
            for _ in 0..pops {
                let r = pop(&s.cells, shape, &mut c).unwrap();
                check(&mut c, r);
                s.tail.store(c.tail, Ordering::Release);
            }
            let (sent, refused) = producer.join().unwrap();
            // Drain what is left.
            loop {
                let r = pop(&s.cells, shape, &mut c).unwrap();
                if r == Popped::Empty {
                    break;
                }
                check(&mut c, r);
            }
            assert_eq!(sent + refused, messages);
            assert_eq!(last, sent, "the newest message always arrives");
            assert_eq!(seen + lost, sent, "seen plus lost is every message sent");
            if !force {
                assert_eq!(lost, 0, "try_push never loses");
            }
        });
    }

    #[test]
    fn loom_queue_force_push_overwrites_and_wraps() {
        // Capacity 2, 4 messages: the ring wraps twice and overwrites when the consumer lags.
        model(2, 4, 2, true);
    }

    #[test]
    fn loom_queue_try_push_full_and_empty() {
        // Capacity 2, 4 messages, 2 pops: the producer may meet a full queue, or an empty
        // one, depending on the interleaving.
        model(2, 4, 2, false);
    }

    #[test]
    fn loom_queue_capacity_one_slot_handover() {
        model(1, 3, 2, true);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn setup(capacity: u64) -> (Vec<AtomicU64>, AtomicU64, Shape, Producer, Consumer) {
        let shape = Shape::new(capacity);
        (
            (0..capacity)
                .map(|i| AtomicU64::new(initial_cell(i)))
                .collect(),
            AtomicU64::new(0),
            shape,
            Producer {
                head: 0,
                slot: capacity,
            },
            Consumer {
                tail: 0,
                slot: capacity + 1,
            },
        )
    }

    #[test]
    fn empty_full_overwrite_and_wrap() {
        let (cells, tail, shape, mut p, mut c) = setup(4);
        assert_eq!(pop(&cells, shape, &mut c), Ok(Popped::Empty));
        for _ in 0..4 {
            assert_eq!(
                push(&cells, &tail, shape, &mut p, false),
                Ok(Pushed::Done { overwrote: false })
            );
        }
        assert_eq!(push(&cells, &tail, shape, &mut p, false), Ok(Pushed::Full));
        // Forced: overwrites messages 0 and 1.
        for _ in 0..2 {
            assert_eq!(
                push(&cells, &tail, shape, &mut p, true),
                Ok(Pushed::Done { overwrote: true })
            );
        }
        // Messages 0 and 1 were overwritten; 2 to 5 arrive in order.
        for (pos, lost) in [(2, 2), (3, 0), (4, 0), (5, 0)] {
            assert_eq!(
                pop(&cells, shape, &mut c),
                Ok(Popped::Message { pos, lost }),
                "pop of message {pos}"
            );
        }
        assert_eq!(pop(&cells, shape, &mut c), Ok(Popped::Empty));
        // Wrap around many times without loss.
        for i in 6..1000 {
            tail.store(c.tail, Ordering::Relaxed);
            assert!(matches!(
                push(&cells, &tail, shape, &mut p, false),
                Ok(Pushed::Done { overwrote: false })
            ));
            assert_eq!(
                pop(&cells, shape, &mut c),
                Ok(Popped::Message { pos: i, lost: 0 })
            );
        }
        // All slots stay distinct.
        let mut owned: Vec<u64> = cells
            .iter()
            .map(|x| x.load(Ordering::Relaxed) & SLOT_MASK)
            .collect();
        owned.push(p.slot);
        owned.push(c.slot);
        owned.sort();
        assert_eq!(owned, (0..shape.slots).collect::<Vec<_>>());
    }

    #[test]
    fn bad_words_are_errors() {
        let (cells, tail, shape, mut p, mut c) = setup(2);
        cells[0].store(7, Ordering::Relaxed);
        assert!(
            push(&cells, &tail, shape, &mut p, true).is_err(),
            "slot out of range"
        );
        let (cells, tail, shape, mut p, _) = setup(2);
        tail.store(100, Ordering::Relaxed);
        assert!(
            push(&cells, &tail, shape, &mut p, false).is_err(),
            "tail ahead of head"
        );
        cells[0].store(c.slot, Ordering::Relaxed);
        assert!(
            pop(&cells, shape, &mut c).is_err(),
            "cell holds the consumer's slot"
        );
    }
}

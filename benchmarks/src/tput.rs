//! Queue throughput: the parent pushes as fast as it can with `force_push` (overwriting the
//! oldest message when the queue is full), the child pops as fast as it can, checks every
//! message and counts the ones it lost. Then the same with `try_push`, retried while the queue
//! is full: what the queue carries without losing anything.

use std::sync::atomic::Ordering;

use rtipc::{MessageRef, Object, QueueConsumer, QueueProducer, Segment};

use crate::child::op;
use crate::payload::{check, fill, Kib, Word, Words};
use crate::peer::Peer;
use crate::stats::median_f;
use crate::sys::{now_ns, st, Ctrl, Ctx, Res, Spin};
use crate::Cfg;

/// The word of the stamp line where the child acknowledges that it is popping.
const ACK: usize = 2;
/// The word of the stamp line where the child leaves the time it accounted for the last message.
const END: usize = 3;

/// What one message size measured.
pub struct TputResult {
    pub name: &'static str,
    /// `force_push` or `try_push`.
    pub mode: &'static str,
    pub bytes: usize,
    /// Medians over the runs: pushes per second, and messages delivered per second (from the
    /// first push until the consumer has accounted for the last message).
    pub push_rate: f64,
    pub delivered_rate: f64,
    /// Over all runs: messages pushed, received, lost.
    pub pushed: u64,
    pub received: u64,
    pub lost: u64,
    pub runs: usize,
    pub errors: u64,
}

pub struct Producers {
    q8: QueueProducer<Word>,
    q1k: QueueProducer<Kib>,
}

impl Producers {
    pub fn new(seg: &Segment) -> Res<Producers> {
        Ok(Producers {
            q8: QueueProducer::new(seg, "throughput_8").ctx("throughput_8 producer")?,
            q1k: QueueProducer::new(seg, "throughput_1k").ctx("throughput_1k producer")?,
        })
    }
}

pub struct Consumers {
    q8: QueueConsumer<Word>,
    q1k: QueueConsumer<Kib>,
}

impl Consumers {
    pub fn new(seg: &Segment) -> Res<Consumers> {
        Ok(Consumers {
            q8: QueueConsumer::new(seg, "throughput_8").ctx("throughput_8 consumer")?,
            q1k: QueueConsumer::new(seg, "throughput_1k").ctx("throughput_1k consumer")?,
        })
    }

    /// Child side of command `seq`: accounts for `count` messages numbered `start..` on queue
    /// `which` (0: 8 bytes, 1: 1 KiB). Returns the data errors.
    pub fn drain(&mut self, ctrl: &Ctrl, seq: u64, which: u64, start: u64, count: u64) -> Res<u64> {
        // Release: tells the parent we are polling.
        ctrl.stamp.w[ACK].store(seq, Ordering::Release);
        let (received, lost, errors) = match which {
            0 => drain(&mut self.q8, start, count)?,
            _ => drain(&mut self.q1k, start, count)?,
        };
        ctrl.stamp.w[END].store(now_ns(), Ordering::Relaxed);
        ctrl.status.w[st::RESULT].store(received, Ordering::Relaxed);
        ctrl.status.w[st::RESULT2].store(lost, Ordering::Relaxed);
        Ok(errors)
    }
}

/// Pops until `received + lost == count`; checks that every message is the next one after the
/// lost ones and that its first and last words agree. Returns (received, lost, errors).
fn drain<T: Object + Words>(
    q: &mut QueueConsumer<T>,
    start: u64,
    count: u64,
) -> Res<(u64, u64, u64)> {
    let (mut received, mut lost, mut errors, mut last) = (0u64, 0u64, 0u64, start - 1);
    let mut spin = Spin::new("throughput messages");
    while received + lost < count {
        if let Some(m) = q.pop().ctx("throughput pop")? {
            let v = m.words()[0];
            received += 1;
            lost += MessageRef::missed(&m);
            errors += u64::from(
                !check(m.words(), v) || v.wrapping_sub(last) != MessageRef::missed(&m) + 1,
            );
            last = v;
        } else {
            spin.tick()?;
        }
    }
    Ok((received, lost, errors))
}

/// Pushes `count` messages numbered `start..`, each filled whole, with `force_push` or with
/// `try_push` retried until the queue has room; returns the clock after the last push.
fn push_all<T: Object + Words>(
    q: &mut QueueProducer<T>,
    start: u64,
    count: u64,
    force: bool,
) -> Res<u64> {
    for s in start..start + count {
        let mut slot = q.write().ctx("throughput write")?;
        fill(slot.words_mut(), s);
        if force {
            slot.force_push().ctx("throughput push")?;
        } else if !slot.try_push().ctx("throughput push")? {
            // A refused message stays in the slot: push it again until there is room.
            let mut spin = Spin::new("room in the queue");
            while !q
                .write()
                .ctx("throughput write")?
                .try_push()
                .ctx("throughput push")?
            {
                spin.tick()?;
            }
        }
    }
    Ok(now_ns())
}

pub fn run(peer: &mut Peer, p: &mut Producers, cfg: &Cfg) -> Res<Vec<TputResult>> {
    let mut out = Vec::new();
    for (which, name, bytes, count, force) in [
        (0u64, "queue_8", 8usize, cfg.tput_count_8, true),
        (1, "queue_1k", 1024, cfg.tput_count_1k, true),
        (0, "queue_8", 8, cfg.tput_count_8, false),
        (1, "queue_1k", 1024, cfg.tput_count_1k, false),
    ] {
        let (mut push_rates, mut rates) = (Vec::new(), Vec::new());
        let (mut pushed, mut received, mut lost) = (0, 0, 0);
        let errors_before = peer.errors();
        for _ in 0..cfg.tput_runs {
            let start = peer.next_s;
            peer.next_s += count;
            let seq = peer.issue(op::THROUGHPUT, count, start, which);
            let mut spin = Spin::new("the consumer to start");
            while peer.ctrl().stamp.w[ACK].load(Ordering::Acquire) != seq {
                spin.tick()?;
            }
            let t0 = now_ns();
            let t_pushed = match which {
                0 => push_all(&mut p.q8, start, count, force)?,
                _ => push_all(&mut p.q1k, start, count, force)?,
            };
            peer.wait_done(seq)?;
            let t_end = peer.ctrl().stamp.w[END].load(Ordering::Relaxed);
            let got = peer.result();
            push_rates.push(count as f64 * 1e9 / (t_pushed - t0) as f64);
            rates.push(got as f64 * 1e9 / t_end.saturating_sub(t0).max(1) as f64);
            pushed += count;
            received += got;
            lost += peer.ctrl().status.w[st::RESULT2].load(Ordering::Relaxed);
        }
        out.push(TputResult {
            name,
            mode: if force { "force_push" } else { "try_push" },
            bytes,
            push_rate: median_f(&mut push_rates),
            delivered_rate: median_f(&mut rates),
            pushed,
            received,
            lost,
            runs: cfg.tput_runs,
            errors: peer.errors() - errors_before + u64::from(received + lost != pushed),
        });
    }
    Ok(out)
}

//! Record channel throughput: the parent reserves records of 8 B, 4 KiB or 1 MiB in a 4 MiB
//! ring with `try_reserve` (retried while the ring is full: nothing is lost), writes every word
//! and commits; the child pops as fast as it can, checks every record (its sequence number,
//! that none was missed, its length and every word of its payload) and releases it. The
//! reservation and the release are in the figure, as they are in any use of the channel.

use std::sync::atomic::Ordering;

use rtipc::{DataError, RecordConsumer, RecordProducer, Segment};

use crate::child::op;
use crate::payload::{check_all, fill, record_words, record_words_mut, Word};
use crate::peer::Peer;
use crate::stats::median_f;
use crate::sys::{now_ns, st, Ctrl, Ctx, Res, Spin};
use crate::Cfg;

/// The word of the stamp line where the child acknowledges that it is popping.
const ACK: usize = 2;
/// The word of the stamp line where the child leaves the time it released the last record.
const END: usize = 3;

/// The record channel of the throughput test.
pub const CHANNEL: &str = "record_throughput";

/// The record sizes measured: (name, payload bytes). A record is `bytes / 8` elements.
pub const SIZES: [(&str, usize); 3] = [
    ("record_8", 8),
    ("record_4k", 4 << 10),
    ("record_1m", 1 << 20),
];

/// Reserves a record of `len` elements on `tx` with `try_reserve`, retried while the ring has
/// no room (`what`: what a refusal waits for, for the error if it never comes), lets `write`
/// fill it and commits it. Returns its sequence number.
#[inline(always)]
pub fn send_record(
    tx: &mut RecordProducer<Word>,
    len: usize,
    what: &'static str,
    write: impl FnOnce(&mut [Word]),
) -> Res<u64> {
    let mut spin = Spin::new(what);
    let mut r = loop {
        match tx.try_reserve(len) {
            Ok(r) => break r,
            Err(DataError::NoRoom { .. }) => spin.tick()?,
            Err(e) => return Err(format!("record reserve: {e}")),
        }
    };
    write(&mut r[..]);
    Ok(r.commit())
}

/// What one record size measured.
pub struct RecTputResult {
    /// `record_8`, `record_4k` or `record_1m`.
    pub name: &'static str,
    /// Payload bytes of each record.
    pub bytes: usize,
    /// Medians over the runs: records committed per second (until the last commit), and
    /// records delivered per second (from the first reservation until the consumer has
    /// released the last record).
    pub commit_rate: f64,
    pub delivered_rate: f64,
    /// Over all runs: records sent, and records the consumer took.
    pub sent: u64,
    pub received: u64,
    /// Runs of this size.
    pub runs: usize,
    /// Records the consumer found wrong, plus one if a count of records disagreed.
    pub errors: u64,
}

impl RecTputResult {
    /// Payload bytes delivered per second (the median run's).
    pub fn bytes_rate(&self) -> f64 {
        self.delivered_rate * self.bytes as f64
    }
}

/// The child's end of the throughput channel.
pub struct Consumer {
    rx: RecordConsumer<Word>,
    /// The sequence number of the last record taken.
    seq: u64,
}

impl Consumer {
    /// Claims the consuming end of [`CHANNEL`].
    pub fn new(seg: &Segment) -> Res<Consumer> {
        Ok(Consumer {
            rx: RecordConsumer::new(seg, CHANNEL).ctx("record throughput consumer")?,
            seq: 0,
        })
    }

    /// Child side of command `seq`: takes `count` records numbered `start..` of size `which`
    /// (an index into [`SIZES`]), checking each. Returns the data errors.
    pub fn drain(&mut self, ctrl: &Ctrl, seq: u64, which: u64, start: u64, count: u64) -> Res<u64> {
        let len = SIZES
            .get(which as usize)
            .ok_or_else(|| format!("no record size {which}"))?
            .1
            / 8;
        // Release: tells the parent we are polling.
        ctrl.stamp.w[ACK].store(seq, Ordering::Release);
        let mut errors = 0u64;
        for s in start..start + count {
            let mut spin = Spin::new("a throughput record");
            loop {
                if let Some(r) = self.rx.pop().ctx("record throughput pop")? {
                    errors += u64::from(
                        r.seq() != self.seq + 1
                            || r.missed() != 0
                            || r.len() != len
                            || !check_all(record_words(&r), s),
                    );
                    self.seq = r.seq();
                    // Dropping `r` releases the record.
                    break;
                }
                spin.tick()?;
            }
        }
        ctrl.stamp.w[END].store(now_ns(), Ordering::Relaxed);
        ctrl.status.w[st::RESULT].store(count, Ordering::Relaxed);
        Ok(errors)
    }
}

/// Sends `count` records of `len` elements numbered `start..`, each written whole; returns
/// the clock after the last commit.
fn send_all(tx: &mut RecordProducer<Word>, start: u64, count: u64, len: usize) -> Res<u64> {
    for s in start..start + count {
        send_record(tx, len, "room in the record ring", |r| {
            fill(record_words_mut(r), s)
        })?;
    }
    Ok(now_ns())
}

/// Parent side: `cfg.tput_runs` runs of each size of [`SIZES`] (the counts of `cfg`) through
/// `tx`, the child consuming.
pub fn run(peer: &mut Peer, tx: &mut RecordProducer<Word>, cfg: &Cfg) -> Res<Vec<RecTputResult>> {
    let mut out = Vec::new();
    let counts = [cfg.rec_count_8, cfg.rec_count_4k, cfg.rec_count_1m];
    for (which, (&(name, bytes), &count)) in SIZES.iter().zip(&counts).enumerate() {
        let (mut commit_rates, mut rates) = (Vec::new(), Vec::new());
        let (mut sent, mut received) = (0, 0);
        let errors_before = peer.errors();
        let committed_before = tx.committed();
        for _ in 0..cfg.tput_runs {
            let start = peer.next_s;
            peer.next_s += count;
            let seq = peer.issue(op::RECORD_THROUGHPUT, count, start, which as u64);
            let mut spin = Spin::new("the consumer to start");
            while peer.ctrl().stamp.w[ACK].load(Ordering::Acquire) != seq {
                spin.tick()?;
            }
            let t0 = now_ns();
            let t_sent = send_all(tx, start, count, bytes / 8)?;
            peer.wait_done(seq)?;
            let t_end = peer.ctrl().stamp.w[END].load(Ordering::Relaxed);
            commit_rates.push(count as f64 * 1e9 / (t_sent - t0).max(1) as f64);
            rates.push(count as f64 * 1e9 / t_end.saturating_sub(t0).max(1) as f64);
            sent += count;
            received += peer.result();
        }
        // The channel's own count of commits must agree with ours.
        let committed = tx.committed() - committed_before;
        out.push(RecTputResult {
            name,
            bytes,
            commit_rate: median_f(&mut commit_rates),
            delivered_rate: median_f(&mut rates),
            sent,
            received,
            runs: cfg.tput_runs,
            errors: peer.errors() - errors_before
                + u64::from(received != sent)
                + u64::from(committed != sent),
        });
    }
    Ok(out)
}

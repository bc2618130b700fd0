//! The payload sweep: how long after a publish the peer sees the update, for state channels
//! from 8 B to 4 MiB. The writer fills the whole payload first and stamps `CLOCK_MONOTONIC`
//! just before the publish; the peer stamps when `fetch` returns the new update. The time spent
//! writing the payload is not in the figure: a triple buffer hands over a slot by swapping an
//! index, so the figure should not grow with the payload.

use std::sync::atomic::Ordering;

use rtipc::{Object, Segment, StateConsumer, StateProducer, StateRef};

use crate::payload::*;
use crate::sys::{now_ns, Ctrl, Ctx, Res, Spin};

/// The writing end of one sweep channel.
pub trait SweepTx {
    fn bytes(&self) -> usize;
    fn label(&self) -> &'static str;
    /// Fills the whole payload for `s`, waits for its stores to drain, then stamps the clock
    /// and publishes; returns the stamp.
    fn send(&mut self, s: u64) -> Res<u64>;
}

/// The reading end of one sweep channel.
pub trait SweepRx {
    /// Busy-polls until a new update arrives; returns the clock when `fetch` returned it and
    /// whether its sequence number and first and last words were right.
    fn see(&mut self, s: u64) -> Res<(u64, bool)>;
}

struct Tx<T: Object> {
    p: StateProducer<T>,
    label: &'static str,
}

impl<T: Object + Words> SweepTx for Tx<T> {
    fn bytes(&self) -> usize {
        size_of::<T>()
    }

    fn label(&self) -> &'static str {
        self.label
    }

    fn send(&mut self, s: u64) -> Res<u64> {
        let mut g = self.p.write().ctx("sweep write")?;
        fill(g.words_mut(), s);
        // Drain the payload's stores before stamping: the publish swap would wait for them
        // otherwise, and that wait is part of writing the payload, not of handing it over.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        let t = now_ns();
        g.publish().ctx("sweep publish")?;
        Ok(t)
    }
}

struct Rx<T: Object> {
    c: StateConsumer<T>,
    seq: u64,
}

impl<T: Object + Words> SweepRx for Rx<T> {
    fn see(&mut self, s: u64) -> Res<(u64, bool)> {
        let mut spin = Spin::new("a sweep update");
        loop {
            if let Some(r) = self.c.fetch().ctx("sweep fetch")? {
                if StateRef::is_new(&r) {
                    let t = now_ns();
                    let ok = check(r.words(), s) && StateRef::seq(&r) == self.seq + 1;
                    self.seq = StateRef::seq(&r);
                    return Ok((t, ok));
                }
            }
            spin.tick()?;
        }
    }
}

/// The writing ends of all sweep channels, smallest first.
pub fn producers(seg: &Segment) -> Res<Vec<Box<dyn SweepTx>>> {
    let mut v: Vec<Box<dyn SweepTx>> = Vec::new();
    macro_rules! make {
        ($(($t:ident, $label:expr)),*) => {
            $(
                v.push(Box::new(Tx::<$t> {
                    p: StateProducer::new(seg, &sweep_channel(size_of::<$t>()))
                        .ctx("sweep producer")?,
                    label: $label,
                }));
            )*
        };
    }
    crate::for_each_sweep!(make);
    Ok(v)
}

/// The reading ends of all sweep channels, smallest first.
pub fn consumers(seg: &Segment) -> Res<Vec<Box<dyn SweepRx>>> {
    let mut v: Vec<Box<dyn SweepRx>> = Vec::new();
    macro_rules! make {
        ($(($t:ident, $label:expr)),*) => {
            $(
                v.push(Box::new(Rx::<$t> {
                    c: StateConsumer::new(seg, &sweep_channel(size_of::<$t>()))
                        .ctx("sweep consumer")?,
                    seq: 0,
                }));
                let _ = $label;
            )*
        };
    }
    crate::for_each_sweep!(make);
    Ok(v)
}

/// Parent side: `count` updates on `tx` for sequence numbers `start..`; appends each
/// publish-to-seen time (ns) but the first `warm` ones to `out`.
pub fn send_block(
    ctrl: &Ctrl,
    tx: &mut dyn SweepTx,
    start: u64,
    count: u64,
    warm: u64,
    out: &mut Vec<u64>,
) -> Res<()> {
    for s in start..start + count {
        let t_pub = tx.send(s)?;
        let mut spin = Spin::new("the sweep stamp");
        // Acquire: pairs with the child's release store of the sequence number, after its
        // stamp.
        while ctrl.stamp.w[0].load(Ordering::Acquire) != s {
            spin.tick()?;
        }
        let t_seen = ctrl.stamp.w[1].load(Ordering::Relaxed);
        if s >= start + warm {
            out.push(t_seen.saturating_sub(t_pub));
        }
    }
    Ok(())
}

/// Child side: sees `count` updates on `rx` and stamps each into the control block. Returns
/// the number of wrong updates.
pub fn see_block(ctrl: &Ctrl, rx: &mut dyn SweepRx, start: u64, count: u64) -> Res<u64> {
    let mut errors = 0;
    for s in start..start + count {
        let (t, ok) = rx.see(s)?;
        errors += u64::from(!ok);
        ctrl.stamp.w[1].store(t, Ordering::Relaxed);
        // Release: the stamp above is visible to the parent once it sees `s`.
        ctrl.stamp.w[0].store(s, Ordering::Release);
    }
    Ok(errors)
}

/// What the sweep measured for one payload size.
pub struct SweepResult {
    pub bytes: usize,
    pub label: &'static str,
    pub dist: crate::stats::Dist,
}

/// Runs the sweep in rounds over all sizes (in alternating order), so that every size sees
/// the same machine.
pub fn run(
    peer: &mut crate::peer::Peer,
    txs: &mut [Box<dyn SweepTx>],
    cfg: &crate::Cfg,
) -> Res<Vec<SweepResult>> {
    let mut out: Vec<Vec<u64>> = vec![Vec::new(); txs.len()];
    let per_round = |bytes: usize| {
        if bytes >= 512 << 10 {
            cfg.sweep_per_round_big
        } else {
            cfg.sweep_per_round
        }
    };
    let mut order: Vec<usize> = (0..txs.len()).collect();
    // Round 0 is the warm-up: it faults in every slot and is not recorded.
    for round in 0..=cfg.sweep_rounds {
        for &i in &order {
            let tx = txs[i].as_mut();
            let (n, warm) = if round == 0 {
                (0, 8)
            } else {
                (per_round(tx.bytes()), 2)
            };
            let start = peer.next_s;
            peer.next_s += n + warm;
            let seq = peer.issue(crate::child::op::SWEEP, n + warm, start, i as u64);
            send_block(peer.ctrl(), tx, start, n + warm, warm, &mut out[i])?;
            peer.wait_done(seq)?;
        }
        order.reverse();
    }
    Ok(txs
        .iter()
        .zip(out)
        .map(|(tx, mut samples)| SweepResult {
            bytes: tx.bytes(),
            label: tx.label(),
            dist: crate::stats::Dist::of(&mut samples),
        })
        .collect())
}

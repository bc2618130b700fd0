//! The cost of one publish on a fan-out channel of 4 consumer ends, with 0, 1 or 4 of them
//! fetching in a tight loop in the other process (one process polls the busy ends in turn:
//! the machine has one core for all the readers). Blocks of the three modes rotate in each
//! round, and each round is bracketed by the raw floor, as for the determinism test.

use std::sync::atomic::Ordering;

use rtipc::{StateConsumer, StateProducer, StateRef};

use crate::child::op;
use crate::det::GAP_NS;
use crate::payload::{check, fill, Line64};
use crate::peer::Peer;
use crate::rounds;
use crate::rt::{Ends, Method};
use crate::stats::{median, Dist, Paired, RoundFigure, STABLE};
use crate::sys::{now_ns, Ctrl, Ctx, Res, Spin};
use crate::Cfg;

/// How many consumer ends fetch, per mode.
pub const BUSY: [u64; 3] = [0, 1, 4];

pub struct FanPubResult {
    /// Per mode of [`BUSY`]: the publish cost.
    pub dists: Vec<Dist>,
    /// Per mode: the median publish cost over the median of the 0-busy block, per round
    /// (paired; the 0-busy mode's is 1).
    pub paired: Vec<Paired>,
    /// Per mode: the median publish cost over the round's raw round-trip median.
    pub vs_raw: Vec<f64>,
    /// Updates the busy consumers saw, and how many publishes they could have seen.
    pub seen: u64,
    pub published_busy: u64,
    pub errors: u64,
}

/// One block of `warm + n` publishes on `tx`; records the cost of the last `n`.
fn block(
    tx: &mut StateProducer<Line64>,
    next: &mut u64,
    n: u64,
    warm: u64,
    out: &mut Vec<u64>,
) -> Res<()> {
    for i in 0..warm + n {
        *next += 1;
        let mut g = tx.write().ctx("fan-out publish write")?;
        fill(&mut g.w, *next);
        let t0 = now_ns();
        g.publish().ctx("fan-out publish")?;
        let t1 = now_ns();
        if i >= warm {
            out.push(t1 - t0);
        }
        while now_ns() < t0 + GAP_NS {}
    }
    Ok(())
}

const RAW_BLOCK: u64 = 300;

pub fn run(
    peer: &mut Peer,
    ends: &mut Ends,
    tx: &mut StateProducer<Line64>,
    cfg: &Cfg,
) -> Res<FanPubResult> {
    let modes = BUSY.len();
    let mut all: Vec<Vec<u64>> = vec![Vec::new(); modes];
    let mut figures: Vec<Vec<RoundFigure>> = vec![Vec::new(); modes];
    let mut raw_ratio: Vec<Vec<f64>> = vec![Vec::new(); modes];
    let (mut seen, mut published_busy) = (0, 0);
    let errors_before = peer.errors();
    let mut next = 0u64;
    let warm = cfg.det_per_block / 10;
    let mut raw_errors = 0;
    let mut scratch = Vec::new();
    for round in 0..cfg.det_rounds {
        let (raw_a, e) = rounds::block(peer, ends, Method::Raw, RAW_BLOCK, 100, &mut scratch)?;
        raw_errors += e;
        let mut medians = vec![0u64; modes];
        for i in 0..modes {
            let mode = (i + round) % modes;
            let busy = BUSY[mode];
            let mut v = Vec::new();
            if busy > 0 {
                let seq = peer.issue(op::FAN_BUSY, 0, 0, busy);
                block(tx, &mut next, cfg.det_per_block, warm, &mut v)?;
                published_busy += (cfg.det_per_block + warm) * busy;
                // Relaxed: only a signal to stop; the child's results come with DONE.
                peer.ctrl().stop.w[0].store(seq, Ordering::Relaxed);
                peer.wait_done(seq)?;
                seen += peer.result();
            } else {
                block(tx, &mut next, cfg.det_per_block, warm, &mut v)?;
            }
            all[mode].extend_from_slice(&v);
            medians[mode] = median(&mut v);
        }
        let (raw_b, e) = rounds::block(peer, ends, Method::Raw, RAW_BLOCK, 100, &mut scratch)?;
        raw_errors += e;
        let (lo, hi) = (raw_a.min(raw_b).max(1) as f64, raw_a.max(raw_b) as f64);
        let raw = (raw_a + raw_b) as f64 / 2.0;
        for mode in 0..modes {
            figures[mode].push(RoundFigure {
                raw,
                stable: hi / lo <= STABLE,
                ratio: medians[mode] as f64 / medians[0].max(1) as f64,
            });
            raw_ratio[mode].push(medians[mode] as f64 / raw.max(1.0));
        }
    }
    let mid = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Ok(FanPubResult {
        dists: all.iter_mut().map(|v| Dist::of(v)).collect(),
        paired: figures.iter().map(|f| Paired::of(f)).collect(),
        vs_raw: raw_ratio.iter_mut().map(mid).collect(),
        seen,
        published_busy,
        errors: peer.errors() - errors_before + raw_errors,
    })
}

/// The child's side: `busy` of its consumer ends fetch, in turn, as fast as they can until
/// told to stop, checking every new update. Returns (updates seen, wrong updates).
pub fn busy_loop(
    ctrl: &Ctrl,
    rxs: &mut [StateConsumer<Line64>],
    busy: u64,
    seq: u64,
) -> Res<(u64, u64)> {
    let (mut seen, mut errors) = (0u64, 0u64);
    let mut last = vec![0u64; rxs.len()];
    let n = (busy as usize).min(rxs.len());
    let mut spin = Spin::new("the end of the fan-out publish block");
    while ctrl.stop.w[0].load(Ordering::Relaxed) != seq {
        for (rx, last) in rxs[..n].iter_mut().zip(&mut last) {
            if let Some(r) = rx.fetch().ctx("fan-out busy fetch")? {
                if StateRef::is_new(&r) {
                    seen += 1;
                    let s = r.w[0];
                    errors += u64::from(!check(&r.w, s) || s <= *last);
                    *last = s;
                }
            }
        }
        spin.tick()?;
    }
    Ok((seen, errors))
}

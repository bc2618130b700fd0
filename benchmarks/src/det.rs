//! Determinism: the distribution of the producer's publish cost with the consumer idle, and
//! with the consumer fetching the same channel in a tight loop in the other process. Blocks of
//! the two modes alternate (in alternating order) so that both see the same machine.

use std::sync::atomic::Ordering;

use rtipc::StateProducer;

use crate::child::op;
use crate::payload::{fill, Line64};
use crate::peer::Peer;
use crate::rounds;
use crate::rt::{Ends, Method};
use crate::stats::{quantile, Dist, Paired, RoundFigure, STABLE};
use crate::sys::{now_ns, Ctx, Res};
use crate::Cfg;

/// Time between the starts of two publishes: a fast control loop (500 kHz), slow enough for
/// the busy consumer to take every update.
pub const GAP_NS: u64 = 2_000;

pub struct DetResult {
    pub idle: Dist,
    pub busy: Dist,
    /// Per round, busy p99.9 / idle p99.9 from that round's two blocks, paired like the round
    /// trips: bracketed by two short raw blocks, kept if they agree within 20%, summarised
    /// overall and per raw band (the ratio depends on where the two vCPUs sit).
    pub paired: Paired,
    /// Per stable round, (busy p99.9 - idle p99.9) / the round's raw one-way time (half its
    /// raw round-trip median): the target is at most 1, one cross-core cache-line transfer
    /// more with a busy consumer. The median over stable rounds, and how many met it.
    pub excess: f64,
    pub excess_met: usize,
    pub excess_rounds: usize,
    /// Updates the busy consumer saw, and how many publishes it could have seen.
    pub seen: u64,
    pub published_busy: u64,
    pub errors: u64,
}

/// One block of `warm + n` publishes; records the cost of the last `n`.
fn block(
    tx: &mut StateProducer<Line64>,
    next: &mut u64,
    n: u64,
    warm: u64,
    out: &mut Vec<u64>,
) -> Res<()> {
    for i in 0..warm + n {
        *next += 1;
        let mut g = tx.write().ctx("determinism write")?;
        fill(&mut g.w, *next);
        let t0 = now_ns();
        g.publish().ctx("determinism publish")?;
        let t1 = now_ns();
        if i >= warm {
            out.push(t1 - t0);
        }
        while now_ns() < t0 + GAP_NS {}
    }
    Ok(())
}

/// Round trips in the short raw blocks that bracket each round.
const RAW_BLOCK: u64 = 300;

pub fn run(
    peer: &mut Peer,
    ends: &mut Ends,
    tx: &mut StateProducer<Line64>,
    cfg: &Cfg,
) -> Res<DetResult> {
    let (mut idle, mut busy) = (Vec::new(), Vec::new());
    let (mut seen, mut published_busy) = (0, 0);
    let errors_before = peer.errors();
    let mut next = 0u64;
    let warm = cfg.det_per_block / 10;
    let mut figures = Vec::new();
    let mut raw_errors = 0;
    let mut scratch = Vec::new();
    let mut excess = Vec::new();
    for round in 0..cfg.det_rounds {
        let (raw_a, e) = rounds::block(peer, ends, Method::Raw, RAW_BLOCK, 100, &mut scratch)?;
        raw_errors += e;
        let (idle_from, busy_from) = (idle.len(), busy.len());
        for busy_first in [round % 2 == 1, round % 2 == 0] {
            if busy_first {
                let seq = peer.issue(op::FETCH_LOOP, 0, 0, 0);
                block(tx, &mut next, cfg.det_per_block, warm, &mut busy)?;
                published_busy += cfg.det_per_block + warm;
                // Relaxed: only a signal to stop; the child's results come with DONE.
                peer.ctrl().stop.w[0].store(seq, Ordering::Relaxed);
                peer.wait_done(seq)?;
                seen += peer.result();
            } else {
                block(tx, &mut next, cfg.det_per_block, warm, &mut idle)?;
            }
        }
        let p999 = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            quantile(&v, 0.999) as f64
        };
        let (raw_b, e) = rounds::block(peer, ends, Method::Raw, RAW_BLOCK, 100, &mut scratch)?;
        raw_errors += e;
        let (lo, hi) = (raw_a.min(raw_b).max(1) as f64, raw_a.max(raw_b) as f64);
        let (b, i) = (p999(&busy[busy_from..]), p999(&idle[idle_from..]));
        let raw = (raw_a + raw_b) as f64 / 2.0;
        let stable = hi / lo <= STABLE;
        if stable {
            excess.push((b - i) / (raw / 2.0));
        }
        figures.push(RoundFigure {
            raw,
            stable,
            ratio: b / i,
        });
    }
    excess.sort_by(f64::total_cmp);
    Ok(DetResult {
        excess: excess.get(excess.len() / 2).copied().unwrap_or(f64::NAN),
        excess_met: excess.iter().filter(|&&x| x <= 1.0).count(),
        excess_rounds: excess.len(),
        idle: Dist::of(&mut idle),
        busy: Dist::of(&mut busy),
        paired: Paired::of(&figures),
        seen,
        published_busy,
        errors: peer.errors() - errors_before + raw_errors,
    })
}

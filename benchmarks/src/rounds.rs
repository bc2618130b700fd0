//! Round trips in rounds bracketed by the floor ("How the figures are measured" in
//! BENCHMARKS.md): in each round, `raw` just before and just after the methods under test,
//! whose order alternates between rounds.

use crate::peer::Peer;
use crate::rt::{Ends, Method};
use crate::stats::{median, Dist, Paired, RoundFigure, STABLE};
use crate::sys::Res;
use crate::Cfg;

/// What one method measured over all rounds.
pub struct MethodResult {
    pub method: Method,
    /// Every recorded round trip (ns), sorted.
    pub samples: Vec<u64>,
    pub dist: Dist,
    pub paired: Paired,
    /// Recorded round trips per round.
    pub per_round: u64,
    /// Wrong echoes seen by the parent plus wrong pings seen by the child.
    pub errors: u64,
}

/// One block: `warm + n` round trips of `m`, the last `n` recorded into `out`. Returns the
/// block's median (0 if `n` is 0) and its data errors on both sides.
pub fn block(
    peer: &mut Peer,
    ends: &mut Ends,
    m: Method,
    n: u64,
    warm: u64,
    out: &mut Vec<u64>,
) -> Res<(u64, u64)> {
    let start = peer.next_s;
    let count = warm + n;
    peer.next_s += count;
    let child_before = peer.errors();
    let seq = peer.issue(m.op(), count, start, 0);
    let mut v = Vec::with_capacity(n as usize);
    let ours = ends.ping(peer.ctrl(), m, start, count, warm, &mut v)?;
    peer.wait_done(seq)?;
    let errors = ours + (peer.errors() - child_before);
    out.extend_from_slice(&v);
    let med = if v.is_empty() { 0 } else { median(&mut v) };
    Ok((med, errors))
}

/// Runs the warm-up and all rounds for `methods` (the floor is measured in every round
/// anyway); returns the floor's result first, then one per method, in the given order.
pub fn run(
    peer: &mut Peer,
    ends: &mut Ends,
    methods: &[Method],
    cfg: &Cfg,
) -> Res<Vec<MethodResult>> {
    let per_round = |m: Method| match m {
        Method::Uds => cfg.uds_per_round,
        Method::UdsBlocking => cfg.uds_per_round / 5,
        _ => cfg.per_round,
    };
    let mut all: Vec<Method> = vec![Method::Raw];
    all.extend_from_slice(methods);
    let mut results: Vec<MethodResult> = all
        .iter()
        .map(|&method| MethodResult {
            method,
            samples: Vec::new(),
            dist: Dist::default(),
            paired: Paired::default(),
            per_round: per_round(method) * if method == Method::Raw { 2 } else { 1 },
            errors: 0,
        })
        .collect();
    let mut figures: Vec<Vec<RoundFigure>> = vec![Vec::new(); all.len()];

    // Warm-up: page faults, caches, branch predictors, iceoryx2's connections.
    let mut scratch = Vec::new();
    for (i, &m) in all.iter().enumerate() {
        let warm = match m {
            Method::Uds => cfg.warmup / 10,
            Method::UdsBlocking => cfg.warmup / 50,
            _ => cfg.warmup,
        };
        results[i].errors += block(peer, ends, m, 0, warm, &mut scratch)?.1;
    }

    let mut order: Vec<usize> = (1..all.len()).collect();
    for round in 0..cfg.rounds {
        let (raw_a, e) = block(
            peer,
            ends,
            Method::Raw,
            cfg.per_round,
            cfg.warm_block,
            &mut results[0].samples,
        )?;
        results[0].errors += e;
        let mut medians = vec![0u64; all.len()];
        for &i in &order {
            let m = all[i];
            let warm = match m {
                Method::Uds | Method::UdsBlocking => cfg.warm_block / 10,
                _ => cfg.warm_block,
            };
            let (med, e) = block(peer, ends, m, per_round(m), warm, &mut results[i].samples)?;
            medians[i] = med;
            results[i].errors += e;
        }
        let (raw_b, e) = block(
            peer,
            ends,
            Method::Raw,
            cfg.per_round,
            cfg.warm_block,
            &mut results[0].samples,
        )?;
        results[0].errors += e;
        let (lo, hi) = (raw_a.min(raw_b).max(1) as f64, raw_a.max(raw_b) as f64);
        let raw = (raw_a + raw_b) as f64 / 2.0;
        let stable = hi / lo <= STABLE;
        figures[0].push(RoundFigure {
            raw,
            stable,
            ratio: 1.0,
        });
        for &i in &order {
            figures[i].push(RoundFigure {
                raw,
                stable,
                ratio: medians[i] as f64 / raw,
            });
        }
        order.reverse();
        if cfg.progress && (round + 1) % 50 == 0 {
            eprintln!("  round trips: {} of {} rounds", round + 1, cfg.rounds);
        }
    }
    for (r, f) in results.iter_mut().zip(&figures) {
        r.dist = Dist::of(&mut r.samples);
        r.paired = Paired::of(f);
    }
    Ok(results)
}

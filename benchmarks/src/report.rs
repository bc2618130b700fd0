//! Output: a human-readable table, or one JSON object per line.

use std::fmt::Write;

use crate::openloop::{self, policy_label, rate_label, OlRun};
use crate::rt::Method;
use crate::{det, fanpub, inproc, records, rounds, sweep, tput, Cfg};

/// One JSON object, written by hand: keys are fixed identifiers and values numbers, booleans
/// or plain strings.
pub struct Json(String);

impl Json {
    pub fn new(kind: &str, name: &str) -> Json {
        let mut j = Json(String::from("{"));
        j.str("kind", kind).str("name", name);
        j
    }

    fn key(&mut self, k: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
        &mut self.0
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Json {
        let s = self.key(k);
        s.push('"');
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
        }
        s.push('"');
        self
    }

    pub fn int(&mut self, k: &str, v: u64) -> &mut Json {
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A float with 3 decimals; `null` if it is not finite (no stable round, say).
    pub fn num(&mut self, k: &str, v: f64) -> &mut Json {
        let s = self.key(k);
        if v.is_finite() {
            let _ = write!(s, "{v:.3}");
        } else {
            s.push_str("null");
        }
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Json {
        let _ = write!(self.key(k), "{v}");
        self
    }

    pub fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

/// A ratio for the table: `-` when there is none.
pub fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

/// Everything measured in one run.
pub struct Results {
    pub rt: Vec<rounds::MethodResult>,
    pub sweep: Vec<sweep::SweepResult>,
    pub sweep_errors: u64,
    pub det: det::DetResult,
    pub fanpub: fanpub::FanPubResult,
    pub tput: Vec<tput::TputResult>,
    pub rec_tput: Vec<records::RecTputResult>,
    pub inproc: inproc::InprocResult,
    /// The small open-loop run.
    pub ol: OlRun,
    pub seconds: f64,
}

/// What a `--records` run measured: the round trips (the floor, `state_8` and `queue_8` for
/// comparison, and the record methods) and the record throughput.
pub struct RecordsResults {
    /// The floor first, then `state_8`, `queue_8`, `record_8` and `record_4k`.
    pub rt: Vec<rounds::MethodResult>,
    /// One per size of [`records::SIZES`].
    pub rec_tput: Vec<records::RecTputResult>,
    /// The run's duration.
    pub seconds: f64,
}

/// Data errors over all measurements.
pub fn total_errors(r: &Results) -> u64 {
    rt_errors(&r.rt)
        + r.sweep_errors
        + r.det.errors
        + r.fanpub.errors
        + r.tput.iter().map(|t| t.errors).sum::<u64>()
        + rec_errors(&r.rec_tput)
        + r.inproc.errors
        + r.ol.errors()
}

/// Data errors over a `--records` run.
pub fn records_errors(r: &RecordsResults) -> u64 {
    rt_errors(&r.rt) + rec_errors(&r.rec_tput)
}

fn rt_errors(rt: &[rounds::MethodResult]) -> u64 {
    rt.iter().map(|m| m.errors).sum()
}

fn rec_errors(rec: &[records::RecTputResult]) -> u64 {
    rec.iter().map(|t| t.errors).sum()
}

/// The targets: (name, value, limit). Each round-trip target is given over all stable rounds
/// and again in every raw band that had stable rounds, since the ratio depends on where the
/// two vCPUs sit.
fn targets(r: &Results) -> Vec<(String, f64, f64)> {
    let get = |m: Method| r.rt.iter().find(|x| x.method == m);
    let mut t = Vec::new();
    for (method, name, limit) in [
        (Method::State8, "state_8", 1.5),
        (Method::Queue8, "queue_8", 1.5),
        (Method::State4k, "state_4k", 4.0),
    ] {
        let Some(m) = get(method) else { continue };
        t.push((
            format!("{name} / raw (paired median ratio)"),
            m.paired.ratio,
            limit,
        ));
        for &(band, rounds, ratio, _) in &m.paired.bands {
            if rounds > 0 {
                t.push((
                    format!("{name} / raw, band {band} ({rounds} rounds)"),
                    ratio,
                    limit,
                ));
            }
        }
    }
    if let (Some(s8), Some(iox)) = (get(Method::State8), get(Method::Iceoryx2)) {
        t.push((
            "state_8 / iceoryx2 (ratio of their paired ratios)".to_string(),
            s8.paired.ratio / iox.paired.ratio,
            1.0,
        ));
    }
    t.push((
        "publish p99.9 busy - idle, in raw one-way times".to_string(),
        r.det.excess,
        1.0,
    ));
    t.push((
        "in-process publish+fetch: rtipc / triple_buffer".to_string(),
        r.inproc.ratio,
        1.0,
    ));
    t
}

/// The report's first line: what ran, how long, on which machine.
fn header(s: &mut String, what: &str, seconds: f64) {
    let _ = writeln!(
        s,
        "\nrtipc benchmarks ({what}), {seconds:.1} s; machine: {}",
        machine()
    );
}

/// The human-readable report.
pub fn table(r: &Results, cfg: &Cfg) -> String {
    let mut s = String::new();
    header(
        &mut s,
        if cfg.quick { "--quick" } else { "full run" },
        r.seconds,
    );
    rt_section(&mut s, &r.rt, cfg);
    sections_after_rt(&mut s, r, cfg);
    s
}

/// The human-readable report of a `--records` run.
pub fn records_table(r: &RecordsResults, cfg: &Cfg) -> String {
    let mut s = String::new();
    header(
        &mut s,
        if cfg.quick {
            "--records --quick"
        } else {
            "--records"
        },
        r.seconds,
    );
    rt_section(&mut s, &r.rt, cfg);
    records_section(&mut s, &r.rt, &r.rec_tput, cfg);
    let _ = writeln!(s, "\nData errors in total: {}", records_errors(r));
    s
}

/// The round-trip table.
fn rt_section(s: &mut String, rt: &[rounds::MethodResult], cfg: &Cfg) {
    let _ = writeln!(
        s,
        "\nRound trips, two processes pinned to CPU 0 and 1, busy-polling (ns; ratio = median of \
         per-round paired ratios to raw, stable rounds only)"
    );
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>14} {:>14} {:>14} {:>6}",
        "method",
        "samples",
        "median",
        "p99",
        "p99.9",
        "max",
        "ratio",
        "stable",
        "raw<100",
        "raw100-250",
        "raw>250",
        "errors"
    );
    for m in rt {
        let band = |i: usize| {
            let (_, n, ratio_v, _) = m.paired.bands[i];
            if n == 0 {
                "-".to_string()
            } else {
                format!("{} ({n})", ratio(ratio_v))
            }
        };
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>14} {:>14} {:>14} {:>6}",
            m.method.name(),
            m.dist.samples,
            m.dist.median,
            m.dist.p99,
            m.dist.p999,
            m.dist.max,
            ratio(m.paired.ratio),
            format!("{}/{}", m.paired.stable, m.paired.rounds),
            band(0),
            band(1),
            band(2),
            m.errors
        );
    }
    let _ = writeln!(
        s,
        "({} recorded round trips per method and round after {} unrecorded, uds {} and uds_block \
         {} as they are far slower; bands: paired ratio (stable rounds) by the round's mean raw \
         median, with the number of rounds)",
        cfg.per_round,
        cfg.warm_block,
        cfg.uds_per_round,
        cfg.uds_per_round / 5
    );
}

/// The record channels: one-way latency from the round trips, and throughput.
fn records_section(
    s: &mut String,
    rt: &[rounds::MethodResult],
    rec: &[records::RecTputResult],
    cfg: &Cfg,
) {
    let get = |m: Method| rt.iter().find(|x| x.method == m);
    let _ = writeln!(
        s,
        "\nRecord channels, one way: half the round-trip median (each way a reservation, the \
         record written, commit, pop, check and release; ratio: the paired ratio to raw, as \
         above)"
    );
    for m in [
        Method::Raw,
        Method::State8,
        Method::Queue8,
        Method::Record8,
        Method::Record4k,
    ] {
        if let Some(x) = get(m) {
            let _ = writeln!(
                s,
                "  {:<12} {:>8.1} ns   ratio {:>6}",
                m.name(),
                x.dist.median as f64 / 2.0,
                ratio(x.paired.ratio)
            );
        }
    }
    let _ = writeln!(
        s,
        "\nRecord throughput, two processes, lossless: try_reserve retried while the {} MiB ring \
         is full, every word written and committed; the consumer pops, checks every word and \
         releases (medians of {} runs)",
        crate::payload::RECORD_TPUT_RING >> 20,
        cfg.tput_runs
    );
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>10} {:>14} {:>16} {:>16} {:>6}",
        "record", "payload", "records", "commits/s", "delivered rec/s", "delivered MiB/s", "errors"
    );
    for t in rec {
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>10} {:>14.0} {:>16.0} {:>16.1} {:>6}",
            t.name,
            t.bytes,
            t.sent,
            t.commit_rate,
            t.delivered_rate,
            t.bytes_rate() / f64::from(1u32 << 20),
            t.errors
        );
    }
}

/// Every section of the full report after the round trips.
fn sections_after_rt(s: &mut String, r: &Results, cfg: &Cfg) {
    let _ = writeln!(
        s,
        "\nPayload sweep: publish to seen by the other process, payload written before the \
         clock starts (ns)"
    );
    let _ = writeln!(
        s,
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "payload", "samples", "median", "p99", "p99.9", "max"
    );
    for w in &r.sweep {
        let _ = writeln!(
            s,
            "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9}",
            w.label, w.dist.samples, w.dist.median, w.dist.p99, w.dist.p999, w.dist.max
        );
    }
    let _ = writeln!(s, "(data errors: {})", r.sweep_errors);

    let d = &r.det;
    let _ = writeln!(
        s,
        "\nDeterminism: cost of one publish (64-byte object, one every {} ns) (ns)",
        det::GAP_NS
    );
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "consumer", "samples", "median", "p99", "p99.9", "max"
    );
    for (name, x) in [("idle", &d.idle), ("fetching in a loop", &d.busy)] {
        let _ = writeln!(
            s,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9}",
            name, x.samples, x.median, x.p99, x.p999, x.max
        );
    }
    let bands: Vec<String> = d
        .paired
        .bands
        .iter()
        .map(|&(name, n, v, _)| format!("raw {name}: {} ({n})", ratio(v)))
        .collect();
    let _ = writeln!(
        s,
        "(p99.9 busy / idle: pooled {}; paired per round {} over {}/{} stable rounds, by raw band \
         {}; the busy consumer saw {} of {} updates; data errors: {})",
        ratio(d.busy.p999 as f64 / d.idle.p999 as f64),
        ratio(d.paired.ratio),
        d.paired.stable,
        d.paired.rounds,
        bands.join(", "),
        d.seen,
        d.published_busy,
        d.errors
    );
    let _ = writeln!(
        s,
        "(busy p99.9 - idle p99.9, in raw one-way times of the same round: median {:.2} over \
         {} stable rounds, {} of them at most 1, the target)",
        d.excess, d.excess_rounds, d.excess_met
    );

    let f = &r.fanpub;
    let _ = writeln!(
        s,
        "\nFan-out: cost of one publish on a channel of 4 consumer ends (64-byte object, one \
         every {} ns), by how many ends fetch in a tight loop in the other process (ns)",
        det::GAP_NS
    );
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}",
        "busy consumer ends", "samples", "median", "p99", "p99.9", "max", "vs 0 busy", "vs raw"
    );
    for (i, busy) in fanpub::BUSY.iter().enumerate() {
        let x = &f.dists[i];
        let _ = writeln!(
            s,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}",
            busy,
            x.samples,
            x.median,
            x.p99,
            x.p999,
            x.max,
            ratio(f.paired[i].ratio),
            ratio(f.vs_raw[i])
        );
    }
    let _ = writeln!(
        s,
        "(vs 0 busy: median of per-round paired ratios of medians, stable rounds; vs raw: median \
         of per-round publish median / raw round-trip median; the busy ends saw {} of {} \
         updates; data errors: {})",
        f.seen, f.published_busy, f.errors
    );

    let _ = writeln!(
        s,
        "\nQueue throughput, producer pushing as fast as possible, consumer (other process) \
         popping as fast as it can (medians of {} runs; try_push is retried while full)",
        cfg.tput_runs
    );
    let _ = writeln!(
        s,
        "{:<10} {:<11} {:>10} {:>14} {:>16} {:>10} {:>6}",
        "message", "push", "pushed", "pushes/s", "delivered msg/s", "lost", "errors"
    );
    for t in &r.tput {
        let _ = writeln!(
            s,
            "{:<10} {:<11} {:>10} {:>14.0} {:>16.0} {:>9.3}% {:>6}",
            t.name,
            t.mode,
            t.pushed,
            t.push_rate,
            t.delivered_rate,
            100.0 * t.lost as f64 / t.pushed as f64,
            t.errors
        );
    }

    records_section(s, &r.rt, &r.rec_tput, cfg);

    let i = &r.inproc;
    let _ = writeln!(
        s,
        "\nIn-process publish + fetch, same thread, 8 bytes ({} batches of {}; medians of batch \
         ns/op)\n  rtipc {:.2} ns, triple_buffer {:.2} ns, paired ratio {} (errors: {})",
        i.batches,
        i.iters,
        i.rtipc_ns,
        i.tb_ns,
        ratio(i.ratio),
        i.errors
    );

    open_loop_section(s, &r.ol);

    let _ = writeln!(s, "\nTargets");
    for (name, v, limit) in targets(r) {
        let verdict = if !v.is_finite() {
            "n/a"
        } else if v <= limit {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(s, "  {name:<52} {:>6} <= {limit:<4} {verdict}", ratio(v));
    }
    let _ = writeln!(s, "\nData errors in total: {}", total_errors(r));
}

/// The report as JSON lines: one object per measurement, target and the run's summary.
pub fn json(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    rt_json(&mut out, &r.rt);
    sections_json(&mut out, r);
    out
}

/// A `--records` run as JSON lines.
pub fn records_json(r: &RecordsResults) -> Vec<String> {
    let mut out = Vec::new();
    rt_json(&mut out, &r.rt);
    rec_json(&mut out, &r.rec_tput);
    out.push(
        Json::new("summary", "records")
            .str("machine", &machine())
            .num("seconds", r.seconds)
            .int("errors", records_errors(r))
            .finish(),
    );
    out
}

fn rt_json(out: &mut Vec<String>, rt: &[rounds::MethodResult]) {
    let raw_median = rt.first().map_or(f64::NAN, |m| m.dist.median as f64);
    for m in rt {
        let mut j = Json::new("round_trip", m.method.name());
        j.int("samples", m.dist.samples as u64)
            .int("median_ns", m.dist.median)
            .int("p99_ns", m.dist.p99)
            .int("p999_ns", m.dist.p999)
            .int("max_ns", m.dist.max)
            .num("ratio_to_raw", m.paired.ratio)
            .num(
                "pooled_median_ratio_to_raw",
                m.dist.median as f64 / raw_median,
            )
            .int("rounds", m.paired.rounds as u64)
            .int("stable_rounds", m.paired.stable as u64)
            .int("per_round", m.per_round);
        for &(band, n, v, raw) in &m.paired.bands {
            j.num(&format!("ratio_raw_{band}"), v)
                .int(&format!("rounds_raw_{band}"), n as u64)
                .num(&format!("raw_median_{band}_ns"), raw);
        }
        out.push(j.int("errors", m.errors).finish());
    }
}

fn rec_json(out: &mut Vec<String>, rec: &[records::RecTputResult]) {
    for t in rec {
        out.push(
            Json::new("record_throughput", t.name)
                .int("bytes", t.bytes as u64)
                .num("commit_per_s", t.commit_rate)
                .num("delivered_per_s", t.delivered_rate)
                .num("delivered_bytes_per_s", t.bytes_rate())
                .int("sent", t.sent)
                .int("received", t.received)
                .int("runs", t.runs as u64)
                .int("errors", t.errors)
                .finish(),
        );
    }
}

fn sections_json(out: &mut Vec<String>, r: &Results) {
    for w in &r.sweep {
        out.push(
            Json::new("payload_sweep", &format!("state_{}", w.bytes))
                .int("bytes", w.bytes as u64)
                .int("samples", w.dist.samples as u64)
                .int("median_ns", w.dist.median)
                .int("p99_ns", w.dist.p99)
                .int("p999_ns", w.dist.p999)
                .int("max_ns", w.dist.max)
                .finish(),
        );
    }
    let d = &r.det;
    for (name, x) in [
        ("publish_idle_consumer", &d.idle),
        ("publish_busy_consumer", &d.busy),
    ] {
        out.push(
            Json::new("determinism", name)
                .int("samples", x.samples as u64)
                .int("median_ns", x.median)
                .int("p99_ns", x.p99)
                .int("p999_ns", x.p999)
                .int("max_ns", x.max)
                .finish(),
        );
    }
    out.push(
        Json::new("determinism", "busy_minus_idle_p999")
            .num("raw_one_way_times", d.excess)
            .int("stable_rounds", d.excess_rounds as u64)
            .int("at_most_one", d.excess_met as u64)
            .finish(),
    );
    for (i, busy) in fanpub::BUSY.iter().enumerate() {
        let x = &r.fanpub.dists[i];
        out.push(
            Json::new("fanout_publish", &format!("busy_{busy}"))
                .int("samples", x.samples as u64)
                .int("median_ns", x.median)
                .int("p99_ns", x.p99)
                .int("p999_ns", x.p999)
                .int("max_ns", x.max)
                .num("ratio_vs_idle", r.fanpub.paired[i].ratio)
                .num("ratio_vs_raw", r.fanpub.vs_raw[i])
                .finish(),
        );
    }
    for t in &r.tput {
        out.push(
            Json::new("throughput", &format!("{}_{}", t.name, t.mode))
                .str("push", t.mode)
                .int("bytes", t.bytes as u64)
                .num("push_per_s", t.push_rate)
                .num("delivered_per_s", t.delivered_rate)
                .int("pushed", t.pushed)
                .int("received", t.received)
                .int("lost", t.lost)
                .num("loss_rate", t.lost as f64 / t.pushed as f64)
                .int("runs", t.runs as u64)
                .int("errors", t.errors)
                .finish(),
        );
    }
    rec_json(out, &r.rec_tput);
    let i = &r.inproc;
    out.push(
        Json::new("in_process", "publish_fetch_8")
            .num("rtipc_ns", i.rtipc_ns)
            .num("triple_buffer_ns", i.tb_ns)
            .num("ratio_to_triple_buffer", i.ratio)
            .int("batches", i.batches as u64)
            .int("iterations", i.iters)
            .finish(),
    );
    open_loop_json(out, &r.ol);
    for (name, v, limit) in targets(r) {
        out.push(
            Json::new("target", &name)
                .num("value", v)
                .num("limit", limit)
                .bool("met", v.is_finite() && v <= limit)
                .finish(),
        );
    }
    out.push(
        Json::new("summary", "run")
            .str("machine", &machine())
            .num("seconds", r.seconds)
            .int("errors", total_errors(r))
            .finish(),
    );
}

/// A count with thousands separators: 1,234,567.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The open-loop tables: publish to seen; then the blocked consumers' wake-up, the publisher's
/// lateness and the page faults.
fn open_loop_section(s: &mut String, ol: &OlRun) {
    let _ = writeln!(
        s,
        "\nOpen loop: the publisher (CPU 0) wakes at a fixed rate on absolute deadlines, stamps \
         CLOCK_MONOTONIC into an 8-byte state update and publishes it; the consumer (CPU 1, \
         another process) busy-polls or blocks in wait (futex: named segment; eventfd: \
         anonymous segment). Publish to seen = the consumer's clock when it has the update \
         minus the publisher's stamp (ns; percentiles to 3 significant digits, min and max \
         exact)"
    );
    let _ = writeln!(
        s,
        "SCHED_FIFO: {}; load: {} processes (one per CPU, SCHED_OTHER), each streaming through \
         {} MiB; {} samples per configuration at 10 kHz, {} at 1 kHz, in {} block(s) (one per \
         round, rotating order) each after {} ms unrecorded",
        match &ol.fifo {
            Ok(()) => format!("permitted, priority {}", crate::sys::FIFO_PRIORITY),
            Err(e) => format!("not permitted ({e}), SCHED_OTHER only"),
        },
        ol.load_procs,
        ol.load_bytes >> 20,
        thousands(ol.plan.samples_10k),
        thousands(ol.plan.samples_1k),
        ol.plan.rounds,
        openloop::WARM_MS
    );
    let _ = writeln!(
        s,
        "{:<7} {:<15} {:<5} {:<11} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10} {:>6}",
        "rate",
        "consumer",
        "load",
        "policy",
        "samples",
        "missed",
        "min",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "errors"
    );
    for r in &ol.results {
        let c = &r.cfg;
        let _ = writeln!(
            s,
            "{:<7} {:<15} {:<5} {:<11} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10} {:>6}",
            rate_label(c.rate_hz),
            c.mode.label(),
            if c.load { "load" } else { "idle" },
            policy_label(c.fifo),
            r.seen.count(),
            r.missed,
            r.seen.min(),
            r.seen.q(0.5),
            r.seen.q(0.99),
            r.seen.q(0.999),
            r.seen.q(0.9999),
            r.seen.max(),
            r.errors
        );
    }
    let _ = writeln!(
        s,
        "\nOpen loop, continued: the blocked consumer's wake-up (the publisher's stamp to wait \
         returning), the publisher's lateness (its stamp minus the deadline it slept until) \
         (ns); page faults while recording (minor/major; publisher, consumer); the CPU time of \
         everything else (over the configuration, and in its busiest block) and the \
         hypervisor's steal, in % of both CPUs"
    );
    let _ = writeln!(
        s,
        "{:<7} {:<15} {:<5} {:<11} {:>8} {:>9} {:>10} {:>8} {:>9} {:>10} {:>8} {:>8} {:>7} {:>8} \
         {:>6}",
        "rate",
        "consumer",
        "load",
        "policy",
        "wake p50",
        "p99.9",
        "max",
        "late p50",
        "p99.9",
        "max",
        "pub flt",
        "con flt",
        "others",
        "max blk",
        "steal"
    );
    for r in &ol.results {
        let c = &r.cfg;
        let wake = |v: u64| {
            if c.mode.blocks() {
                v.to_string()
            } else {
                "-".into()
            }
        };
        let _ = writeln!(
            s,
            "{:<7} {:<15} {:<5} {:<11} {:>8} {:>9} {:>10} {:>8} {:>9} {:>10} {:>8} {:>8} {:>6}% \
             {:>7}% {:>5}%",
            rate_label(c.rate_hz),
            c.mode.label(),
            if c.load { "load" } else { "idle" },
            policy_label(c.fifo),
            wake(r.wake.q(0.5)),
            wake(r.wake.q(0.999)),
            wake(r.wake.max()),
            r.late.q(0.5),
            r.late.q(0.999),
            r.late.max(),
            format!("{}/{}", r.pub_faults.0, r.pub_faults.1),
            format!("{}/{}", r.con_faults.0, r.con_faults.1),
            format!("{:.1}", r.others_pct()),
            format!("{:.1}", r.others_max_pct),
            format!("{:.2}", r.steal_pct())
        );
    }
    let _ = writeln!(
        s,
        "\nOpen loop, quiet blocks only (everything else took at most {}% of the CPUs' time \
         while the block ran): publish to seen (ns)",
        openloop::QUIET_PCT
    );
    let _ = writeln!(
        s,
        "{:<7} {:<15} {:<5} {:<11} {:>6} {:>9} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10}",
        "rate",
        "consumer",
        "load",
        "policy",
        "blocks",
        "samples",
        "missed",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max"
    );
    for r in &ol.results {
        let c = &r.cfg;
        let q = &r.quiet_seen;
        let v = |x: u64| {
            if q.count() == 0 {
                "-".to_string()
            } else {
                x.to_string()
            }
        };
        let _ = writeln!(
            s,
            "{:<7} {:<15} {:<5} {:<11} {:>6} {:>9} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10}",
            rate_label(c.rate_hz),
            c.mode.label(),
            if c.load { "load" } else { "idle" },
            policy_label(c.fifo),
            format!("{}/{}", r.quiet_blocks, r.blocks),
            q.count(),
            r.quiet_missed,
            v(q.q(0.5)),
            v(q.q(0.99)),
            v(q.q(0.999)),
            v(q.q(0.9999)),
            v(q.max())
        );
    }
    let spurious: u64 = ol.results.iter().map(|r| r.spurious).sum();
    let replaced: u64 = ol.results.iter().map(|r| r.wake_replaced).sum();
    let _ = writeln!(
        s,
        "(missed: recorded updates that a newer one replaced before the consumer looked; \
         updates published between a wake-up and the fetch, so without a wake-up time: \
         {replaced}; waits that returned with nothing new: {spurious}; data errors: {})",
        ol.errors()
    );
}

fn open_loop_json(out: &mut Vec<String>, ol: &OlRun) {
    for r in &ol.results {
        let c = &r.cfg;
        let mut j = Json::new("open_loop", &c.name());
        j.int("rate_hz", c.rate_hz)
            .str("mode", c.mode.name())
            .str("load", if c.load { "load" } else { "idle" })
            .str("sched", if c.fifo { "fifo" } else { "other" })
            .int("samples", r.seen.count())
            .int("published", r.published)
            .int("missed", r.missed)
            .int("min_ns", r.seen.min())
            .int("p50_ns", r.seen.q(0.5))
            .int("p99_ns", r.seen.q(0.99))
            .int("p999_ns", r.seen.q(0.999))
            .int("p9999_ns", r.seen.q(0.9999))
            .int("max_ns", r.seen.max());
        if c.mode.blocks() {
            j.int("wake_p50_ns", r.wake.q(0.5))
                .int("wake_p99_ns", r.wake.q(0.99))
                .int("wake_p999_ns", r.wake.q(0.999))
                .int("wake_p9999_ns", r.wake.q(0.9999))
                .int("wake_max_ns", r.wake.max())
                .int("wake_samples", r.wake.count())
                .int("wake_replaced", r.wake_replaced)
                .int("spurious_wakeups", r.spurious);
        }
        j.int("pub_late_p50_ns", r.late.q(0.5))
            .int("pub_late_p99_ns", r.late.q(0.99))
            .int("pub_late_p999_ns", r.late.q(0.999))
            .int("pub_late_max_ns", r.late.max())
            .int("pub_minflt", r.pub_faults.0)
            .int("pub_majflt", r.pub_faults.1)
            .int("con_minflt", r.con_faults.0)
            .int("con_majflt", r.con_faults.1)
            .num("others_cpu_pct", r.others_pct())
            .num("others_cpu_max_block_pct", r.others_max_pct)
            .num("steal_pct", r.steal_pct())
            .int("blocks", r.blocks)
            .int("quiet_blocks", r.quiet_blocks)
            .int("quiet_samples", r.quiet_seen.count())
            .int("quiet_published", r.quiet_published)
            .int("quiet_missed", r.quiet_missed);
        if r.quiet_seen.count() > 0 {
            j.int("quiet_p50_ns", r.quiet_seen.q(0.5))
                .int("quiet_p99_ns", r.quiet_seen.q(0.99))
                .int("quiet_p999_ns", r.quiet_seen.q(0.999))
                .int("quiet_p9999_ns", r.quiet_seen.q(0.9999))
                .int("quiet_max_ns", r.quiet_seen.max());
        }
        j.int("errors", r.errors);
        out.push(j.finish());
    }
}

/// What an `--open-loop` run measured.
pub struct OpenLoopResults {
    /// Every configuration's figures.
    pub ol: OlRun,
    /// The run's duration.
    pub seconds: f64,
}

/// The human-readable report of an `--open-loop` run.
pub fn open_loop_table(r: &OpenLoopResults, quick: bool) -> String {
    let mut s = String::new();
    header(
        &mut s,
        if quick {
            "--open-loop --quick"
        } else {
            "--open-loop"
        },
        r.seconds,
    );
    open_loop_section(&mut s, &r.ol);
    let _ = writeln!(s, "\nData errors in total: {}", r.ol.errors());
    s
}

/// An `--open-loop` run as JSON lines.
pub fn open_loop_run_json(r: &OpenLoopResults) -> Vec<String> {
    let mut out = Vec::new();
    open_loop_json(&mut out, &r.ol);
    out.push(
        Json::new("summary", "open_loop")
            .str("machine", &machine())
            .num("seconds", r.seconds)
            .bool("fifo_permitted", r.ol.fifo.is_ok())
            .int("load_bytes", r.ol.load_bytes as u64)
            .int("errors", r.ol.errors())
            .finish(),
    );
    out
}

/// Open-loop histogram plots, one file per rate: a grid of panels, a row per scheduling
/// policy and a column per consumer mode, each with the idle and the loaded curve. Returns the
/// files written.
pub fn open_loop_plots(
    ol: &OlRun,
    dir: &std::path::Path,
) -> crate::sys::Res<Vec<std::path::PathBuf>> {
    use crate::plot::{human_us, latency_histograms, HistLine, HistPanel};
    let mut written = Vec::new();
    for hz in openloop::RATES {
        let mut panels = Vec::new();
        let policies: &[bool] = if ol.fifo.is_ok() {
            &[false, true]
        } else {
            &[false]
        };
        for &fifo in policies {
            for mode in openloop::Mode::ALL {
                let lines = ol
                    .results
                    .iter()
                    .filter(|r| r.cfg.rate_hz == hz && r.cfg.fifo == fifo && r.cfg.mode == mode)
                    .map(|r| HistLine {
                        label: format!(
                            "{}: p50 {}, p99.99 {}, max {}",
                            if r.cfg.load { "load" } else { "idle" },
                            human_us(r.seen.q(0.5)),
                            human_us(r.seen.q(0.9999)),
                            human_us(r.seen.max())
                        ),
                        hist: &r.seen.hist,
                        max_ns: r.seen.max(),
                    })
                    .collect::<Vec<_>>();
                if lines.is_empty() {
                    continue;
                }
                let samples = ol
                    .results
                    .iter()
                    .find(|r| r.cfg.rate_hz == hz)
                    .map_or(0, |r| r.cfg.samples);
                panels.push(HistPanel {
                    title: format!(
                        "{}, {}, {} samples each",
                        mode.label(),
                        policy_label(fifo),
                        thousands(samples)
                    ),
                    lines,
                });
            }
        }
        if panels.is_empty() {
            continue;
        }
        let label = rate_label(hz);
        let path = dir.join(format!(
            "open_loop_{}.png",
            label.replace(' ', "").to_lowercase()
        ));
        latency_histograms(
            &path,
            &format!(
                "Open loop at {label}: publish to seen by the other process ({})",
                machine()
            ),
            &panels,
            openloop::Mode::ALL.len(),
        )?;
        written.push(path);
    }
    Ok(written)
}

/// The CPU model, the number of CPUs and the kernel release.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    // Not available_parallelism: that counts the CPUs this (pinned) process may use.
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    format!("{cpu}, {n} CPUs, Linux {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_nulls() {
        let line = Json::new("k", "a\"b")
            .int("n", 3)
            .num("r", f64::NAN)
            .num("x", 1.5)
            .bool("ok", true)
            .finish();
        assert_eq!(
            line,
            r#"{"kind":"k","name":"a\"b","n":3,"r":null,"x":1.500,"ok":true}"#
        );
    }
}

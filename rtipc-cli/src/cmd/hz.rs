//! `rtipc hz NAME [CHANNEL]`: update and message rates, from the channels' sequence counters,
//! refreshed in place like `top`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rtipc::inspect::{ChannelFacts, Inspector};
use rtipc::End;
use serde_json::json;

use crate::out::{self, opt, Failure, Outcome, Table};

/// Arguments of `rtipc hz`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name.
    name: String,
    /// Only this channel.
    channel: Option<String>,
    /// Seconds over which each rate is measured.
    #[arg(long, default_value_t = 1.0)]
    window: f64,
    /// Stop after N windows.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// One JSON object per window.
    #[arg(long)]
    json: bool,
}

/// One channel over one window.
struct Rate {
    name: String,
    kind: String,
    rate: f64,
    published: u64,
    /// Of the held consumer ends: the most updates or messages one has not taken yet, and the
    /// most it can no longer get.
    behind: Option<u64>,
    missed: Option<u64>,
    held: usize,
    consumers: usize,
    /// A control word that breaks the protocol (then there is no rate).
    fault: Option<String>,
}

fn look(ins: &Inspector, only: Option<&str>) -> Result<Vec<ChannelFacts>, Failure> {
    Ok(match only {
        Some(c) => vec![ins.channel(c)?],
        None => ins.channels()?,
    })
}

fn rates(before: &[ChannelFacts], after: &[ChannelFacts], dt: f64) -> Vec<Rate> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let held: Vec<_> = a
                .ends
                .iter()
                .filter(|e| e.end == End::Consumer && e.held)
                .collect();
            Rate {
                name: a.name.clone(),
                kind: super::kind(a.kind, a.consumers),
                rate: a.published.saturating_sub(b.published) as f64 / dt,
                published: a.published,
                behind: held.iter().filter_map(|e| e.pending).max(),
                missed: held.iter().filter_map(|e| e.missed).max(),
                held: held.len(),
                consumers: a.consumers as usize,
                fault: a.fault.or(b.fault).map(|f| f.to_string()),
            }
        })
        .collect()
}

/// Runs `rtipc hz`.
pub fn run(a: &Args) -> Outcome {
    let window = Duration::try_from_secs_f64(a.window)
        .ok()
        .filter(|w| !w.is_zero())
        .ok_or_else(|| {
            Failure::error(format!(
                "--window must be a positive number of seconds, not {}",
                a.window
            ))
        })?;
    let ins = Inspector::open(&a.name)?;
    let tty = std::io::stdout().is_terminal() && !a.json;
    let mut before = look(&ins, a.channel.as_deref())?;
    let mut t0 = Instant::now();
    let mut done = 0u64;
    while a.count.is_none_or(|n| done < n) {
        std::thread::sleep(window);
        let after = look(&ins, a.channel.as_deref())?;
        let t1 = Instant::now();
        let r = rates(&before, &after, (t1 - t0).as_secs_f64());
        (before, t0) = (after, t1);
        done += 1;
        if a.json {
            out::json(&to_json(&r, &ins))?;
        } else {
            show(&r, &a.name, a.window, tty)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(r: &[Rate], ins: &Inspector) -> serde_json::Value {
    let channels: Vec<_> = r
        .iter()
        .map(|c| {
            json!({"name": c.name, "kind": c.kind, "rate": c.rate, "published": c.published,
                   "behind": c.behind, "missed": c.missed, "consumers_held": c.held,
                   "consumers": c.consumers, "fault": c.fault})
        })
        .collect();
    json!({"creator_alive": ins.facts().creator_alive, "channels": channels})
}

fn show(r: &[Rate], name: &str, window: f64, tty: bool) -> Result<(), Failure> {
    let mut t = Table::new(&[
        "CHANNEL",
        "KIND",
        "RATE/s",
        "PUBLISHED",
        "CONSUMERS",
        "BEHIND",
        "MISSED",
    ]);
    for c in r {
        t.row(vec![
            c.name.clone(),
            c.kind.clone(),
            if c.fault.is_some() {
                "FAULT".into()
            } else {
                format!("{:.1}", c.rate)
            },
            c.published.to_string(),
            format!("{}/{}", c.held, c.consumers),
            opt(c.behind),
            opt(c.missed),
        ]);
    }
    let head = format!("rtipc hz {name}: rates over {window} s; BEHIND: not yet taken by the slowest held consumer end, MISSED: of those, what it can no longer get\n");
    let mut faults = String::new();
    for c in r {
        if let Some(f) = &c.fault {
            faults.push_str(&format!("FAULT in {}: {f}\n", c.name));
        }
    }
    if tty {
        out::print_raw("\x1b[H\x1b[2J")?;
        out::print(&format!("{head}\n{}{faults}", t.render(0)))
    } else {
        out::print(&format!("{}{faults}\n", t.render(0)))
    }
}

//! `rtipc ls`: every rtipc segment on the machine.

use std::process::ExitCode;

use rtipc::inspect::{self, Found, Listing};
use serde_json::json;

use crate::out::{self, Outcome, Table};

/// Arguments of `rtipc ls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON array, for scripts.
    #[arg(long)]
    json: bool,
    /// Also list the files in /dev/shm that are not rtipc segments.
    #[arg(long)]
    all: bool,
}

fn state(l: &Listing) -> (&'static str, Option<u32>, Option<u32>, Option<String>) {
    match &l.found {
        Found::Live(f) => ("live", Some(f.creator_pid), Some(f.channels), None),
        Found::Stale(f) => ("stale", Some(f.creator_pid), Some(f.channels), None),
        Found::NotReady => ("not-ready", None, None, None),
        Found::Invalid(e) => ("invalid", None, None, Some(e.to_string())),
        Found::Unreadable(e) => ("unreadable", None, None, Some(e.clone())),
        Found::Foreign => ("not-rtipc", None, None, None),
        _ => ("unknown", None, None, None),
    }
}

/// Runs `rtipc ls`.
pub fn run(a: &Args) -> Outcome {
    let all: Vec<Listing> = inspect::list()?
        .into_iter()
        .filter(|l| a.all || !matches!(l.found, Found::Foreign))
        .collect();
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|l| {
                let (s, pid, channels, error) = state(l);
                json!({"name": l.name, "size": l.size, "state": s, "creator_pid": pid,
                       "channels": channels, "error": error})
            })
            .collect();
        out::json(&serde_json::Value::Array(v))?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        out::println("no rtipc segments in /dev/shm")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["NAME", "SIZE", "CREATOR", "STATE", "CHANNELS"]);
    for l in &all {
        let (s, pid, channels, error) = state(l);
        let s = match error {
            Some(e) => format!("{s}: {}", e.lines().next().unwrap_or("")),
            None => s.to_owned(),
        };
        t.row(vec![
            l.name.clone(),
            l.size.to_string(),
            out::opt(pid),
            s,
            out::opt(channels),
        ]);
    }
    out::print(&t.render(0))?;
    Ok(ExitCode::SUCCESS)
}

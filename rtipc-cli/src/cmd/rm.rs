//! `rtipc rm NAME`: remove a segment's name.

use std::process::ExitCode;

use rtipc::inspect::{self, Removed};

use serde_json::json;

use crate::out::{self, Failure, Outcome};

/// Arguments of `rtipc rm`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The segment's name.
    name: String,
    /// Remove it only if its creator is gone (the default too; this makes it explicit and
    /// refuses --force).
    #[arg(long, conflicts_with = "force")]
    stale_only: bool,
    /// Remove it even if its creator runs. Processes attached keep their mapping; new ones
    /// no longer find it, and its creator is not told.
    #[arg(long)]
    force: bool,
    /// One JSON object, for scripts: {"name":..,"removed":..,"was":"stale"|"live",
    /// "creator_pid":..}.
    #[arg(long)]
    json: bool,
}

/// Runs `rtipc rm`.
pub fn run(a: &Args) -> Outcome {
    let (removed, was, pid) = match inspect::remove(&a.name, a.force)? {
        Removed::Stale => (true, "stale", None),
        Removed::Live { creator_pid } => (true, "live", Some(creator_pid)),
        Removed::Refused { creator_pid } => (false, "live", Some(creator_pid)),
        _ => return Err(Failure::error("unexpected outcome")),
    };
    if a.json {
        out::json(&json!({"name": a.name, "removed": removed, "was": was, "creator_pid": pid}))?;
    }
    match (removed, pid) {
        (true, None) if !a.json => out::println(&format!("removed stale segment {}", a.name))?,
        (true, Some(p)) if !a.json => out::println(&format!(
            "removed segment {} while its creator (pid {p}) runs",
            a.name
        ))?,
        (false, p) => {
            let how = if a.stale_only {
                ""
            } else {
                "; pass --force to remove it anyway"
            };
            return Err(Failure::no(format!(
                "segment {} is live: its creator (pid {}) runs{how}",
                a.name,
                p.unwrap_or(0)
            )));
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

//! `rtipc rm NAME`: remove a segment's name.

use std::process::ExitCode;

use rtipc::inspect::{self, Removed};

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
}

/// Runs `rtipc rm`.
pub fn run(a: &Args) -> Outcome {
    match inspect::remove(&a.name, a.force)? {
        Removed::Stale => out::println(&format!("removed stale segment {}", a.name))?,
        Removed::Live { creator_pid } => out::println(&format!(
            "removed segment {} while its creator (pid {creator_pid}) runs",
            a.name
        ))?,
        Removed::Refused { creator_pid } => {
            let how = if a.stale_only {
                ""
            } else {
                "; pass --force to remove it anyway"
            };
            return Err(Failure::no(format!(
                "segment {} is live: its creator (pid {creator_pid}) runs{how}",
                a.name
            )));
        }
        _ => return Err(Failure::error("unexpected outcome")),
    }
    Ok(ExitCode::SUCCESS)
}

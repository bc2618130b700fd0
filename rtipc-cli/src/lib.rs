//! The `rtipc` command: list the rtipc segments on this machine, show who holds each channel
//! end, print schemas and generated C or Rust declarations, follow live values field by field,
//! measure rates, check whether a build would attach, and remove stale segments.
//!
//! Everything here reads segments through [`rtipc::inspect`]: it claims no channel end and
//! writes nothing to a segment (`rm` unlinks a name, and only that). Linux only.
//!
//! The binary is `rtipc` (`cargo install --path rtipc-cli`, or `cargo run -p rtipc-cli --`);
//! [`run`] is the whole program, for embedding.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod out;

pub use out::Failure;

/// Look inside live rtipc shared-memory segments.
///
/// Reads segments without claiming any channel end and without writing to them. Every command
/// takes --json for scripts; errors are one line on stderr and a non-zero exit status.
#[derive(Parser, Debug)]
#[command(
    name = "rtipc",
    version,
    about = "Look inside live rtipc shared-memory segments (Linux)",
    long_about = None
)]
#[command(
    after_help = "Examples:\n  rtipc ls\n  rtipc show robot\n  rtipc echo robot pose --field torque[2] --count 10\n  rtipc hz robot\n  rtipc schema robot pose --format c > pose.h"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every rtipc segment on this machine (in /dev/shm).
    ///
    /// Example: rtipc ls
    #[command(after_help = "Example:\n  rtipc ls --json")]
    Ls(cmd::ls::Args),
    /// Show a segment: its header, each channel, who holds each end, and its counters.
    #[command(after_help = "Example:\n  rtipc show robot")]
    Show(cmd::show::Args),
    /// Print the schemas of a segment's objects, or declarations generated from them.
    #[command(
        after_help = "Examples:\n  rtipc schema robot\n  rtipc schema robot pose --format c > pose.h\n  rtipc schema robot pose --format json > pose.json"
    )]
    Schema(cmd::schema::Args),
    /// Follow a channel's values, decoded field by field, without disturbing it.
    #[command(
        after_help = "Examples:\n  rtipc echo robot pose\n  rtipc echo robot pose --field torque[2] --count 5\n  rtipc echo robot events --csv > events.csv"
    )]
    Echo(cmd::echo::Args),
    /// Measure update and message rates, and what consumers missed, refreshed in place.
    #[command(
        after_help = "Examples:\n  rtipc hz robot\n  rtipc hz robot pose --window 0.5 --count 4"
    )]
    Hz(cmd::hz::Args),
    /// Would a build with this schema attach? Prints the field-level differences.
    ///
    /// Exit status 0 when every object in FILE matches the segment's, 1 when one differs or is
    /// missing, 2 on error.
    #[command(
        after_help = "Example:\n  rtipc schema robot pose --format json > pose.json   # from the build that works\n  rtipc check robot --schema pose.json"
    )]
    Check(cmd::check::Args),
    /// Remove a segment's name: a stale one, or a live one with --force.
    #[command(after_help = "Examples:\n  rtipc rm robot --stale-only\n  rtipc rm robot --force")]
    Rm(cmd::rm::Args),
}

/// Runs the `rtipc` command with `args` (the program name first) and returns its exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line: clap's first, and where to look for more.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let first = first.join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!("rtipc: {} (see `rtipc --help`)", out::clean(first));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Ls(a) => cmd::ls::run(&a),
        Command::Show(a) => cmd::show::run(&a),
        Command::Schema(a) => cmd::schema::run(&a),
        Command::Echo(a) => cmd::echo::run(&a),
        Command::Hz(a) => cmd::hz::run(&a),
        Command::Check(a) => cmd::check::run(&a),
        Command::Rm(a) => cmd::rm::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            if !f.is_quiet() {
                eprintln!("rtipc: {f}");
            }
            f.code()
        }
    }
}

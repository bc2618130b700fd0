//! The `rtipc` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    rtipc_cli::run(std::env::args_os())
}

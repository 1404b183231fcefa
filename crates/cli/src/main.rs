//! The `salescast` binary: parse the command line, run it, and map the outcome
//! to an exit code (0 ok, 1 unexpected, 2 usage or config, 3 data invalid,
//! 4 lost a concurrent update). The error is printed once, with its whole
//! chain of context.

mod cli;
mod commands;
mod exit;
mod render;

use clap::Parser;

use crate::cli::Cli;
use crate::exit::code_for;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::from(exit::ExitCode::Ok as u8),
        Err(err) => {
            eprintln!("salescast: error: {err:#}");
            std::process::ExitCode::from(code_for(&err) as u8)
        }
    }
}

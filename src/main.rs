//! The `salescast` binary: parse the command line, run it, and map the outcome
//! to an exit code (0 ok, 1 unexpected, 2 usage or config, 3 data invalid,
//! 4 lost a concurrent update). The error is printed once, with its whole
//! chain of context.

use clap::Parser;
use salescast::cli::Cli;
use salescast::exit::code_for;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match salescast::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("salescast: error: {err:#}");
            std::process::ExitCode::from(code_for(&err) as u8)
        }
    }
}

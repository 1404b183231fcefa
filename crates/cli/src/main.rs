//! The `salescast` binary: parse the command line, run it, and map the outcome
//! to an exit code (0 ok, 1 unexpected, 2 usage or config, 3 data invalid,
//! 4 lost a concurrent update, 5 no champion, 6 a fan-in's shards incomplete). The error is printed once, with its whole
//! chain of context. It owns the process's one tokio runtime, whose handle
//! every store is opened with (see `salescast_core::storage`).

mod cli;
mod commands;
mod exit;
mod progress;
mod render;
mod render_shards;

use clap::Parser;

use crate::cli::Cli;
use crate::exit::code_for;

/// Worker threads of the I/O runtime: the stores' requests are light, and the
/// CPU-heavy pipelines run on the main thread and the lake's own threads.
const IO_WORKERS: usize = 2;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(IO_WORKERS)
        .thread_name("salescast-io")
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the I/O runtime: {e}"))
        .and_then(|runtime| commands::run(cli, runtime.handle()));
    match outcome {
        Ok(()) => std::process::ExitCode::from(exit::ExitCode::Ok as u8),
        Err(err) => {
            let code = code_for(&err) as u8;
            if commands::json_logs() {
                tracing::error!(exit_code = code, "{err:#}");
            } else {
                eprintln!("salescast: error: {err:#}");
            }
            std::process::ExitCode::from(code)
        }
    }
}

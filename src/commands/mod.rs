//! Runs a parsed command line: loads the configuration, sets up logging, calls
//! the command, and prints its report (human text, or JSON with `--json`).

mod check;
mod demo;
mod ingest;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::config::{self, Config, ConfigError, EnvLayer, FlagLayer};
use crate::lake::Lake;
use crate::storage;

pub use check::{CheckReport, check_window};
pub use ingest::{IngestReport, ingest_files};

/// What a command hands back to be printed.
pub trait Report: Serialize {
    /// The report for a person reading a terminal.
    fn human(&self) -> String;
}

/// Parses nothing, prints once: the whole run of one command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env = EnvLayer::from_vars(std::env::vars())?;
    init_logging(cli.global.verbose, cli.global.quiet, env.log.as_deref())?;
    let flags = FlagLayer {
        config: cli.global.config.clone(),
        lake: cli.global.lake.clone(),
        registry: cli.global.registry.clone(),
    };
    let json = cli.global.json;
    match cli.command {
        Command::Demo(args) => emit(&demo::run(&args)?, json),
        Command::Ingest(args) => {
            let config = config::load(&env, &flags)?;
            let lake = open_lake(&config)?;
            emit(
                &ingest_files(&config, &lake, &args.input, &args.attributes, args.replace)?,
                json,
            )
        }
        Command::Check(args) => {
            let config = config::load(&env, &flags)?;
            let lake = open_lake(&config)?;
            let day = args.date.unwrap_or_else(yesterday_utc);
            emit(&check_window(&config, &lake, day)?, json)
        }
    }
}

fn emit(report: &impl Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", report.human());
    }
    Ok(())
}

pub fn open_lake(config: &Config) -> anyhow::Result<Lake> {
    let store = storage::open(&config.lake).with_context(|| format!("opening the lake {}", config.lake))?;
    Ok(Lake::new(store))
}

/// The default data day of a run: yesterday in UTC.
pub fn yesterday_utc() -> NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Days::new(1)
}

fn init_logging(verbose: u8, quiet: bool, from_env: Option<&str>) -> anyhow::Result<()> {
    use tracing::Level;
    let level = match (quiet, verbose, from_env) {
        (true, _, _) => Level::WARN,
        (false, 0, None) => Level::INFO,
        (false, 0, Some(text)) => text.parse().map_err(|_| ConfigError::Invalid {
            key: config::ENV_LOG.into(),
            problem: format!("{text:?} is not one of error, warn, info, debug, trace"),
        })?,
        (false, 1, _) => Level::DEBUG,
        (false, _, _) => Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
    Ok(())
}

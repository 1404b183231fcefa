//! Runs a parsed command line: loads the configuration, sets up logging, calls
//! the command, and prints its report (human text, or JSON with `--json`).

use salescast_core::config::{self, Config, ConfigError, EnvLayer, FlagLayer};
use salescast_core::pipeline::{
    RetrainOptions, backtest, check_window, demo, ingest_files, models, open_lake, open_registry, retrain,
    rollback, yesterday_utc,
};
use salescast_core::storage::Handle;

use crate::cli::{Cli, Command, ModelsCommand};
use crate::render::Report;

/// Parses nothing, prints once: the whole run of one command line, its stores
/// on the runtime behind `handle`.
pub fn run(cli: Cli, handle: &Handle) -> anyhow::Result<()> {
    let env = EnvLayer::from_vars(std::env::vars())?;
    init_logging(cli.global.verbose, cli.global.quiet, env.log.as_deref())?;
    let flags = FlagLayer {
        config: cli.global.config.clone(),
        lake: cli.global.lake.clone(),
        registry: cli.global.registry.clone(),
        s3_endpoint: cli.global.s3_endpoint.clone(),
    };
    let json = cli.global.json;
    match cli.command {
        Command::Demo(args) => emit(&demo::run(&args.dir, handle)?, json),
        command => {
            let config = config::load(&env, &flags)?;
            run_configured(command, &config, handle, json)
        }
    }
}

fn run_configured(command: Command, config: &Config, handle: &Handle, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Ingest(args) => {
            let lake = open_lake(config, handle)?;
            emit(
                &ingest_files(config, &lake, &args.input, &args.attributes, args.replace)?,
                json,
            )
        }
        Command::Check(args) => {
            let lake = open_lake(config, handle)?;
            let day = args.date.unwrap_or_else(yesterday_utc);
            emit(&check_window(config, &lake, day)?, json)
        }
        Command::Retrain(args) => {
            let options = RetrainOptions {
                run_date: args.date.unwrap_or_else(yesterday_utc),
                dry_run: args.dry_run,
                hold: args.hold_before_commit,
            };
            let report = retrain(
                config,
                &open_lake(config, handle)?,
                &open_registry(config, handle)?,
                &options,
            )?;
            emit(&report, json)
        }
        Command::Backtest(args) => {
            let report = backtest(config, &open_lake(config, handle)?, args.from, args.to)?;
            emit(&report, json)
        }
        Command::Rollback(args) => emit(
            &rollback(&open_registry(config, handle)?, args.to.as_deref(), &args.reason)?,
            json,
        ),
        Command::Models(ModelsCommand::List) => emit(&models::list(&open_registry(config, handle)?)?, json),
        Command::Models(ModelsCommand::Show { version }) => {
            emit(&models::show(&open_registry(config, handle)?, &version)?, json)
        }
        Command::Models(ModelsCommand::History) => {
            emit(&models::history(&open_registry(config, handle)?)?, json)
        }
        Command::Demo(_) => unreachable!("the demo builds its own configuration"),
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

//! Runs a parsed command line: loads the configuration, sets up logging, calls
//! the command, prints its report (human text, or JSON with `--json`), and
//! writes the job's CloudWatch EMF lines on stderr when `metrics.emf` is on.

use salescast_core::accounts::{AccountsError, Role};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::ValueEnum as _;
use salescast_core::config::{self, Config, ConfigError, EnvLayer, FlagLayer};
use salescast_core::emf::{self, JobMetrics};
use salescast_core::pipeline::{
    FanIn, IngestRequest, RetrainOptions, UsersCommand, actor, backtest, check_window, demo, doctor, fan_in,
    fan_in_shards, fit_shards, ingest, metrics, models, monitor, monitor_fan_in, monitor_shard, open_lake,
    open_registry, predict, predict_from, predict_shard, prepare_shard, retrain, retrain_keeping_window,
    rollback, score_shard, users, yesterday_utc,
};
use salescast_core::storage::Handle;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::cli::{Cli, Command, LogFormat, ModelsCommand, UsersCommand as UsersArgs};
use crate::exit::code_for;
use crate::render::Report;

/// Set once the log lines are JSON, so `main` logs a failure as JSON too.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Whether this run's log lines are JSON (`--log-format json`).
pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// Parses nothing, prints once: the whole run of one command line, its stores
/// on the runtime behind `handle`.
pub fn run(cli: Cli, handle: &Handle) -> anyhow::Result<()> {
    let env = EnvLayer::from_vars(std::env::vars())?;
    let format = log_format(cli.global.log_format, env.log_format.as_deref())?;
    init_logging(cli.global.verbose, cli.global.quiet, env.log.as_deref(), format)?;
    let flags = FlagLayer {
        config: cli.global.config.clone(),
        lake: cli.global.lake.clone(),
        registry: cli.global.registry.clone(),
        s3_endpoint: cli.global.s3_endpoint.clone(),
    };
    let json = cli.global.json;
    match cli.command {
        Command::Demo(args) => {
            demo_takes_no_stores(&flags)?;
            emit(&demo::run(&args.dir, handle)?, json)
        }
        command => {
            let config = config::load(&env, &flags)?;
            let log = MetricsLog::new(&config, &command);
            let outcome = run_configured(command, &config, handle, json, &log);
            if let Err(err) = &outcome {
                log.write(Some(metrics::failed(
                    &config.metrics,
                    log.model,
                    log.command(),
                    code_for(err) as u8,
                )));
            }
            outcome
        }
    }
}

/// The EMF lines of one run of a job: written on stderr (CloudWatch Logs
/// extracts the metrics from the build's log) when `metrics.emf` is on.
struct MetricsLog<'a> {
    on: bool,
    model: &'a str,
    /// The job whose metrics come next: `retrain --predict` moves on to
    /// predict once the retrain's are written.
    command: Cell<&'static str>,
    started: Instant,
}

impl<'a> MetricsLog<'a> {
    fn new(config: &'a Config, command: &Command) -> Self {
        let command = match command {
            Command::Ingest(_) => "ingest",
            Command::Retrain(_) => "retrain",
            Command::Predict(_) => "predict",
            Command::Monitor(_) => "monitor",
            Command::Rollback(_) => "rollback",
            // Inspections and the server: no job, no metrics.
            _ => "",
        };
        Self {
            on: !command.is_empty() && config.metrics.enabled(emf::in_codebuild()),
            model: &config.training.model_name,
            command: Cell::new(command),
            started: Instant::now(),
        }
    }

    fn command(&self) -> &'static str {
        self.command.get()
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// A failure from here on is `command`'s (the jobs that time themselves
    /// through [`Self::seconds`] never move on; predict's report has its own).
    fn move_on(&self, command: &'static str) {
        self.command.set(command);
    }

    fn write(&self, set: Option<JobMetrics>) {
        use std::io::Write as _;
        let Some(set) = set.filter(|_| self.on) else {
            return;
        };
        let mut stderr = std::io::stderr().lock();
        for line in set.lines(chrono::Utc::now().timestamp_millis()) {
            // A closed stderr loses the metrics, never the run.
            let _ = writeln!(stderr, "{line}");
        }
    }
}

fn run_configured(
    command: Command,
    config: &Config,
    handle: &Handle,
    json: bool,
    log: &MetricsLog,
) -> anyhow::Result<()> {
    let settings = &config.metrics;
    match command {
        Command::Ingest(args) => {
            let lake = open_lake(config, handle)?;
            let request = IngestRequest {
                inputs: args.input,
                plans: args.plan,
                attributes: args.attributes,
                calendars: args.calendar,
                replace: args.replace,
            };
            let report = ingest(config, &lake, &request)?;
            emit(&report, json)?;
            log.write(Some(metrics::ingest(&report, log.model, log.seconds(), settings)));
            Ok(())
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
                full_search: args.full_search,
            };
            let (lake, registry) = (open_lake(config, handle)?, open_registry(config, handle)?);
            let day = options.run_date;
            // A shard's or the fit's figures are not the run's: its metrics come from the fan-in.
            if let Some(shard) = args.shard {
                return emit(&prepare_shard(config, &lake, &registry, day, shard)?, json);
            }
            if let Some(n) = args.fit {
                return emit(
                    &fit_shards(config, &lake, &registry, day, n, args.full_search)?,
                    json,
                );
            }
            if let Some(shard) = args.score {
                return emit(&score_shard(config, &lake, &registry, day, shard)?, json);
            }
            let mut window = None;
            let report = match args.fan_in {
                Some(n) => match fan_in_shards(config, &lake, &registry, day, n, options.dry_run)? {
                    FanIn::Decided(report) => *report,
                    // A retried build: that decision's report, no new metrics.
                    FanIn::AlreadyDecided(done) => return emit(&done, json),
                },
                None if args.predict => {
                    let (report, read) = retrain_keeping_window(config, &lake, &registry, &options)?;
                    window = Some(read);
                    report
                }
                None => retrain(config, &lake, &registry, &options)?,
            };
            if let Some(dir) = args.charts_dir.as_deref().filter(|_| !options.dry_run) {
                write_charts(dir, &report)?;
            }
            emit(&report, json)?;
            log.write(metrics::retrain(&report, settings));
            if args.predict {
                log.move_on("predict");
                let report = predict_from(config, &lake, &registry, day, window)?;
                emit(&report, json)?;
                log.write(Some(metrics::predict(&report, settings)));
            }
            Ok(())
        }
        Command::Predict(args) => {
            let (lake, registry) = (open_lake(config, handle)?, open_registry(config, handle)?);
            let day = args.date.unwrap_or_else(yesterday_utc);
            if let Some(shard) = args.shard {
                // A shard's rows are not the day's: its metrics come from the fan-in.
                return emit(&predict_shard(config, &lake, &registry, day, shard)?, json);
            }
            let report = match args.fan_in {
                Some(n) => fan_in(config, &lake, &registry, day, n)?,
                None => predict(config, &lake, &registry, day)?,
            };
            emit(&report, json)?;
            log.write(Some(metrics::predict(&report, settings)));
            Ok(())
        }
        Command::Monitor(args) => {
            let lake = open_lake(config, handle)?;
            let day = args.date.unwrap_or_else(yesterday_utc);
            if let Some(shard) = args.shard {
                // A shard's rows are not the day's: its metrics come from the fan-in.
                let model = &config.training.model_name;
                return emit(&monitor_shard(config, &lake, model, day, shard)?, json);
            }
            let registry = open_registry(config, handle)?;
            let report = match args.fan_in {
                Some(n) => monitor_fan_in(config, &lake, &registry, day, n)?,
                None => monitor(config, &lake, &registry, day)?,
            };
            emit(&report, json)?;
            log.write(Some(metrics::monitor(&report, settings)));
            Ok(())
        }
        Command::Backtest(args) => {
            let report = backtest(config, &open_lake(config, handle)?, args.from, args.to)?;
            emit(&report, json)
        }
        Command::Rollback(args) => {
            let report = rollback(
                &open_registry(config, handle)?,
                args.to.as_deref(),
                &args.reason,
                &actor(),
            )?;
            emit(&report, json)?;
            log.write(Some(metrics::rollback(&report, log.seconds(), settings)));
            Ok(())
        }
        Command::Doctor(args) => {
            let report = doctor(
                &open_registry(config, handle)?,
                &open_lake(config, handle)?,
                !args.dry_run,
            )?;
            emit(&report, json)?;
            match report.problems() {
                0 => Ok(()),
                problems => Err(doctor::Unhealthy { problems }.into()),
            }
        }
        Command::Models(ModelsCommand::List) => emit(&models::list(&open_registry(config, handle)?)?, json),
        Command::Models(ModelsCommand::Show { version }) => {
            emit(&models::show(&open_registry(config, handle)?, &version)?, json)
        }
        Command::Models(ModelsCommand::History) => {
            emit(&models::history(&open_registry(config, handle)?)?, json)
        }
        Command::Users(command) => {
            let registry = open_registry(config, handle)?;
            emit(&users(&registry, users_command(command)?, &actor())?, json)
        }
        Command::Serve(args) => {
            let lake = open_lake(config, handle)?;
            let registry = open_registry(config, handle)?;
            let mut config = config.clone();
            if let Some(listen) = args.listen {
                config.serve.listen = listen.to_string();
            }
            config.serve.behind_proxy |= args.behind_proxy;
            let listen = config
                .serve
                .listen
                .parse()
                .map_err(|e| anyhow::anyhow!("serve.listen {:?}: {e}", config.serve.listen))?;
            handle.block_on(salescast_server::serve(config, lake, registry, listen))
        }
        Command::Demo(_) => unreachable!("the demo builds its own configuration"),
    }
}

/// The core's users command, with the password read from stdin.
fn users_command(command: UsersArgs) -> anyhow::Result<UsersCommand> {
    let role = |text: &str| text.parse::<Role>().map_err(usage("--role"));
    Ok(match command {
        UsersArgs::Add {
            name,
            role: r,
            stores,
            ..
        } => UsersCommand::Add {
            name,
            role: role(&r)?,
            stores,
            password: password_from_stdin()?,
        },
        UsersArgs::Passwd { name, .. } => UsersCommand::Passwd {
            name,
            password: password_from_stdin()?,
        },
        UsersArgs::SetRole {
            name,
            role: r,
            stores,
        } => UsersCommand::SetRole {
            name,
            role: role(&r)?,
            stores,
        },
        UsersArgs::Disable { name } => UsersCommand::Disable { name },
        UsersArgs::List => UsersCommand::List,
        UsersArgs::TokenAdd { user, label } => UsersCommand::TokenAdd { user, label },
        UsersArgs::Tokens => UsersCommand::Tokens,
        UsersArgs::TokenRevoke { id } => UsersCommand::TokenRevoke { id },
    })
}

/// The demo makes its own configuration, lake and registry under `--dir`:
/// a flag naming others would be ignored, so it is refused, naming the flag.
fn demo_takes_no_stores(flags: &FlagLayer) -> Result<(), ConfigError> {
    let given = [
        ("--config", flags.config.is_some()),
        ("--lake", flags.lake.is_some()),
        ("--registry", flags.registry.is_some()),
        ("--s3-endpoint", flags.s3_endpoint.is_some()),
    ];
    match given.into_iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(ConfigError::Argument {
            flag: flag.into(),
            problem: "demo makes its own configuration, lake and registry in a local folder; \
                      choose the folder with demo --dir"
                .into(),
        }),
        None => Ok(()),
    }
}

fn usage(flag: &'static str) -> impl Fn(AccountsError) -> ConfigError {
    move |e| ConfigError::Argument {
        flag: flag.into(),
        problem: e.to_string(),
    }
}

/// The first line of stdin, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("reading the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(ConfigError::Argument {
            flag: "--password-stdin".into(),
            problem:
                "stdin gave no password (pipe it in: printf '%s\\n' \"$PASSWORD\" | salescast users ...)"
                    .into(),
        }
        .into());
    }
    Ok(password)
}

/// Prints the report. A reader that stopped reading (`salescast ... | head`)
/// is not an error: the run's work is done, so the rest is dropped quietly.
/// Writes a committed retrain's SVG charts into `dir` (made if missing),
/// before its report is printed: the report links them by bare file name.
fn write_charts(dir: &std::path::Path, report: &salescast_core::report::RunReport) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let context = || {
        format!(
            "writing the report's charts into {} (the retrain is committed)",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).with_context(context)?;
    for chart in report.charts() {
        std::fs::write(dir.join(&chart.name), chart.svg).with_context(context)?;
    }
    Ok(())
}

fn emit(report: &impl Report, json: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let text = if json {
        serde_json::to_string_pretty(report)?
    } else {
        report.human()
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The log format: `--log-format`, else `SALESCAST_LOG_FORMAT`, else text.
/// A value the variable cannot take is a usage error naming it (clap
/// refuses a bad flag itself, naming the flag).
fn log_format(flag: Option<LogFormat>, from_env: Option<&str>) -> Result<LogFormat, ConfigError> {
    match (flag, from_env) {
        (Some(format), _) => Ok(format),
        (None, None) => Ok(LogFormat::Text),
        (None, Some(text)) => LogFormat::from_str(text.trim(), true).map_err(|_| ConfigError::Invalid {
            key: config::ENV_LOG_FORMAT.into(),
            problem: format!("{text:?}: use text or json"),
        }),
    }
}

fn init_logging(verbose: u8, quiet: bool, from_env: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    let filter = log_filter(verbose, quiet, from_env)?;
    let not_progress = tracing_subscriber::filter::filter_fn(|m| !crate::progress::is_progress(m));
    let installed = match format {
        // Text: the log lines, and the progress of long phases (bars on a
        // terminal, quiet lines elsewhere), both on stderr.
        LogFormat::Text => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let progress = crate::progress::ProgressLayer::new(terminal);
            let lines = tracing_subscriber::fmt::layer()
                .with_writer(progress.writer())
                .with_ansi(terminal)
                .with_target(false)
                .without_time()
                .with_filter(not_progress);
            tracing_subscriber::registry()
                .with(filter)
                .with(lines)
                .with(progress)
                .try_init()
        }
        // A log pipeline wants the time, and one flat object per line (and
        // no progress: the phases' durations are in the reports).
        LogFormat::Json => {
            let lines = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .with_filter(not_progress);
            tracing_subscriber::registry().with(filter).with(lines).try_init()
        }
    };
    if installed.is_ok() && format == LogFormat::Json {
        JSON_LOGS.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// What is logged: `-q` (warnings and errors), `-v`/`-vv` (debug, trace),
/// else `SALESCAST_LOG` as tracing directives on top of `info` (so
/// `salescast_core=debug` keeps everything else at info), else `info`.
/// A value tracing cannot parse, or a bare word that is not a level (a typo
/// such as `debgu` would otherwise silently mean "everything from a target
/// named debgu"), is a usage error naming the variable.
fn log_filter(verbose: u8, quiet: bool, from_env: Option<&str>) -> Result<EnvFilter, ConfigError> {
    let directives = match (quiet, verbose, from_env) {
        (true, _, _) => "warn",
        (false, 0, None) => "info",
        (false, 0, Some(text)) => text,
        (false, 1, _) => "debug",
        (false, _, _) => "trace",
    };
    let invalid = |problem: String| ConfigError::Invalid {
        key: config::ENV_LOG.into(),
        problem,
    };
    if let Some(word) = directives
        .split(',')
        .map(str::trim)
        .find(|d| !d.is_empty() && !d.contains('=') && d.parse::<LevelFilter>().is_err())
    {
        return Err(invalid(format!(
            "{word:?} is not a level: use error, warn, info, debug, trace, or TARGET=LEVEL"
        )));
    }
    EnvFilter::builder()
        .parse(format!("info,{directives}"))
        .map_err(|e| invalid(format!("{directives:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_takes_levels_and_targets() {
        let shown = |v, q, env| log_filter(v, q, env).map(|f| f.to_string());
        assert_eq!(shown(0, false, None).unwrap(), "info");
        assert_eq!(
            shown(0, true, Some("trace")).unwrap(),
            "warn",
            "-q wins over the variable"
        );
        assert_eq!(
            shown(1, false, Some("error")).unwrap(),
            "debug",
            "-v wins over the variable"
        );
        assert_eq!(shown(2, false, None).unwrap(), "trace");
        assert_eq!(
            shown(0, false, Some("debug")).unwrap(),
            "debug",
            "a later level replaces info"
        );
        let per_target = shown(0, false, Some("salescast_core=debug")).unwrap();
        assert!(
            per_target.contains("salescast_core=debug") && per_target.contains("info"),
            "{per_target}"
        );
        for bad in ["debgu", "salescast_core=loud", "info,verbose"] {
            let err = log_filter(0, false, Some(bad)).unwrap_err().to_string();
            assert!(err.contains(config::ENV_LOG), "{bad}: {err}");
        }
    }
}

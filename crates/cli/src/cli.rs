//! The command line: global options and one subcommand per job (clap derive).
//! Parsing only; `commands` runs what is parsed.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use salescast_core::shard::{Shard, ShardError, parse_count};

#[derive(Debug, Parser)]
#[command(
    name = "salescast",
    version,
    about = "Keeps a retail sales-forecast model fresh every day and ships it safely"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: salescast.toml in the working folder, if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data lake: a folder, file://PATH or s3://BUCKET/PREFIX
    #[arg(long, global = true, value_name = "URI")]
    pub lake: Option<String>,
    /// The model registry: a folder, file://PATH or s3://BUCKET/PREFIX
    #[arg(long, global = true, value_name = "URI")]
    pub registry: Option<String>,
    /// An S3-compatible endpoint for s3:// URIs (path-style); AWS_ENDPOINT_URL also works
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Print the result on stdout as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (-vv for debug traces)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only warnings and errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The log lines on stderr: text, or one JSON object per line for log
    /// pipelines [default: SALESCAST_LOG_FORMAT, else text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How log lines are written (`--log-format`, `SALESCAST_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    Text,
    /// tracing's JSON: one object per line, with a timestamp, the level and the fields.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load files into the lake: sales and plans split into daily partitions, attribute tables as they are
    Ingest(IngestArgs),
    /// Read and validate the training window ending on a day, and build its features
    Check(CheckArgs),
    /// The daily job: train, evaluate against the champion, store, promote only if better
    Retrain(RetrainArgs),
    /// Forecast the next days of every series with the champion, with intervals, into the lake
    Predict(PredictArgs),
    /// Score the stored forecasts of a day's actuals into the lake's scores table and report live accuracy
    Monitor(MonitorArgs),
    /// Score every candidate family on past days, one day ahead, against the seasonal-naive baseline
    Backtest(BacktestArgs),
    /// Put an earlier version back as champion
    Rollback(RollbackArgs),
    /// Check the registry and the lake after a crash: say what is wrong, repair what the protocol can
    Doctor(DoctorArgs),
    /// Inspect the registry: versions, one version, the decision log
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The dashboard's and API's user accounts (kept in the registry)
    #[command(subcommand)]
    Users(UsersCommand),
    /// Serve the champion's forecasts over HTTP, following the champion as it moves
    Serve(ServeArgs),
    /// Generate a sample lake in a local folder and run the daily job on it
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from stdin (never an argument: those show in ps and history)
    Add {
        name: String,
        /// store, manager, analyst or admin
        #[arg(long)]
        role: String,
        /// A store a `store` user may see (repeat for several)
        #[arg(long = "store", value_name = "STORE")]
        stores: Vec<String>,
        /// Read the password from the first line of stdin
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a new password (read from stdin); ends the user's sessions
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's role and stores; ends the user's sessions
    SetRole {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long = "store", value_name = "STORE")]
        stores: Vec<String>,
    },
    /// Disable a user; ends the user's sessions
    Disable { name: String },
    /// Every user, their role and stores (never a hash)
    List,
    /// Make an API token acting as USER (with USER's role and stores); it is printed this once
    TokenAdd {
        user: String,
        /// What the token is for (1 to 64 characters)
        #[arg(long, value_name = "TEXT")]
        label: String,
    },
    /// Every API token: id, user, label, created, revoked (never a secret)
    Tokens,
    /// Revoke an API token for good (by its id, as `tokens` lists it)
    TokenRevoke { id: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on [default: serve.listen, 127.0.0.1:8080]
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Behind a load balancer: trust its X-Forwarded-For and X-Forwarded-Proto [serve.behind_proxy]
    #[arg(long)]
    pub behind_proxy: bool,
}

#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The newest day of data to use [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    /// Do everything but write to the registry
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the report's SVG charts into DIR, so the links of the
    /// printed report resolve beside it (the daily job's report folder)
    #[arg(long, value_name = "DIR")]
    pub charts_dir: Option<std::path::PathBuf>,
    /// Search every candidate today, whatever training.full_search_every_days
    /// says (otherwise a day with no reason to search fits once from the champion)
    #[arg(long)]
    pub full_search: bool,
    /// Sharded run, step 1 of 4: read the window, keep the series of shard K
    /// of N and stage its share of the fit (then --fit N)
    #[arg(long, value_name = "K/N", value_parser = parse_shard, allow_hyphen_values = true,
          conflicts_with_all = ["fit", "score", "fan_in", "dry_run", "charts_dir"])]
    pub shard: Option<Shard>,
    /// Sharded run, step 2: fit the challenger once on the N shards' rows
    /// (then --score K/N for each shard)
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true,
          conflicts_with_all = ["score", "fan_in", "dry_run", "charts_dir"])]
    pub fit: Option<u32>,
    /// Sharded run, step 3: score the fit's challenger, the champion and the
    /// baseline on shard K's series (then --fan-in N)
    #[arg(long, value_name = "K/N", value_parser = parse_shard, allow_hyphen_values = true,
          conflicts_with_all = ["fan_in", "dry_run", "charts_dir", "full_search"])]
    pub score: Option<Shard>,
    /// Sharded run, step 4: check that all N shards scored the fit, then
    /// decide and commit as an unsharded retrain does (exit 6 naming what is
    /// missing otherwise)
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true,
          conflicts_with = "full_search")]
    pub fan_in: Option<u32>,
    /// Then forecast as `salescast predict --date D` does, with the champion
    /// the retrain left, from the window it read (not read again); prints
    /// the retrain's report, then predict's (with --json: two documents)
    #[arg(long, conflicts_with_all = ["shard", "fit", "score", "fan_in", "dry_run"])]
    pub predict: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The newest day of data (D); forecasts are for D+1 .. D+forecast.horizon_days [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    /// Forecast only the series of shard K of N (0 <= K < N) and stage them
    /// for `--fan-in N`; readers see nothing until the fan-in
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "fan_in", allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// Check that the N shards of the champion are all complete, then commit
    /// them as the day's predictions (exit 6 naming the shards otherwise)
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true)]
    pub fan_in: Option<u32>,
}

fn parse_shard(text: &str) -> Result<Shard, ShardError> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The day whose actuals just landed (its sales partition must exist); the
    /// forecasts of it and of the H-1 days before it are scored [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    /// Score only the forecasts of the series of shard K of N (0 <= K < N,
    /// the shards of `predict --shard`) and stage them for `--fan-in N`;
    /// the scores table is not written
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "fan_in", allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// Check that the N shards of the day are all complete and current, then
    /// write the scores table as an unsharded monitor does (exit 6 naming the
    /// shards otherwise)
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true)]
    pub fan_in: Option<u32>,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The first day to forecast; models train on the days before it
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: NaiveDate,
    /// The last day to forecast (its partition must exist)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: NaiveDate,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The version to restore (a unique prefix of its hash) [default: the champion's predecessor]
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Why: recorded in the decision log
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check only: list the repairs without making them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every version with its metrics; the champion is marked
    List,
    /// One version's manifest (a unique prefix of its hash is enough)
    Show { version: String },
    /// The decision log
    History,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Sales to ingest: a file, s3://BUCKET/KEY, or s3://BUCKET/PREFIX/ (every object under it);
    /// .csv, .parquet, .json/.jsonl/.ndjson (one JSON object per line), each optionally .gz
    #[arg(long, value_name = "FILE_OR_URI")]
    pub input: Vec<String>,
    /// A plan to ingest: covariates of future days (series keys, date, every data.covariates
    /// column, no target), in the same places and formats as --input
    #[arg(long, value_name = "FILE_OR_URI")]
    pub plan: Vec<String>,
    /// An attribute table to ingest, as TABLE=FILE (the table named in data.attributes)
    #[arg(long, value_name = "TABLE=FILE", value_parser = parse_table_file)]
    pub attributes: Vec<(String, PathBuf)>,
    /// A calendar table to ingest, as NAME=FILE (the calendar named in data.calendars;
    /// one file may feed several calendars)
    #[arg(long, value_name = "NAME=FILE", value_parser = parse_table_file)]
    pub calendar: Vec<(String, PathBuf)>,
    /// Replace days that the lake already holds with other rows
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The newest day of data to use [default: yesterday, UTC]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the sample lake (and registry)
    #[arg(long, value_name = "DIR", default_value = "salescast-demo")]
    pub dir: PathBuf,
}

fn parse_table_file(text: &str) -> Result<(String, PathBuf), String> {
    let (table, file) = text
        .split_once('=')
        .ok_or_else(|| format!("expected TABLE=FILE, got {text:?}"))?;
    if table.is_empty() || file.is_empty() {
        return Err(format!("expected TABLE=FILE, got {text:?}"));
    }
    Ok((table.to_string(), PathBuf::from(file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "salescast",
            "check",
            "--date",
            "2015-07-31",
            "--lake",
            "l",
            "--json",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.lake.as_deref(), Some("l"));
        assert!(Cli::try_parse_from(["salescast", "check", "--date", "2015-07-32"]).is_err());
        assert!(Cli::try_parse_from(["salescast", "ingest", "--attributes", "nofile"]).is_err());
    }

    #[test]
    fn monitor_takes_a_shard_or_a_fan_in() {
        let parsed = |args: &[&str]| {
            Cli::try_parse_from([&["salescast", "monitor"], args].concat()).map(|cli| match cli.command {
                Command::Monitor(args) => (args.shard, args.fan_in),
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            parsed(&["--shard", "2/3"]).unwrap(),
            (Some(Shard { k: 2, n: 3 }), None)
        );
        assert_eq!(parsed(&["--fan-in", "3"]).unwrap(), (None, Some(3)));
        assert_eq!(parsed(&[]).unwrap(), (None, None));
        for bad in [
            &["--shard", "3/3"][..],
            &["--shard", "-1/3"],
            &["--fan-in", "0"],
            &["--shard", "0/3", "--fan-in", "3"],
        ] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }
}

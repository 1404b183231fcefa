//! The pipelines: each job of the product (ingest, check, retrain, predict, monitor,
//! backtest, rollback, doctor, the registry views, the demo) as one function over the lake
//! and the registry, returning a serializable report. Front ends parse, call one of
//! these, and render the report; they hold no pipeline logic.

pub mod backtest;
pub mod check;
pub mod demo;
pub mod doctor;
pub mod forecaster;
pub mod ingest;
pub mod metrics;
pub mod models;
pub mod monitor;
pub mod monitor_shards;
pub mod predict;
pub mod predict_shards;
pub mod retrain;
mod retrain_commit;
pub mod retrain_fan_in;
pub mod retrain_fit;
pub mod retrain_shards;
pub mod rollback;
mod search;
pub mod serving;
pub mod users;

use anyhow::Context as _;
use chrono::NaiveDate;

use crate::config::{Config, ConfigError};
use crate::lake::Lake;
use crate::registry::Registry;
use crate::storage::{self, Handle};

pub use backtest::{BacktestReport, backtest};
pub use check::{CheckReport, check_window};
pub use doctor::{DoctorReport, doctor};
pub use ingest::{IngestReport, IngestRequest, ingest, ingest_files};
pub use monitor::{MonitorReport, monitor};
pub use monitor_shards::{MonitorShardReport, monitor_fan_in, monitor_shard};
pub use predict::{PredictReport, predict, predict_from};
pub use predict_shards::{ShardReport, fan_in, predict_shard};
pub use retrain::{RetrainOptions, retrain, retrain_keeping_window};
pub use retrain_fan_in::{DecidedAlready, FanIn, fan_in_shards};
pub use retrain_fit::{FitReport, fit_shards};
pub use retrain_shards::{ShardStepReport, prepare_shard, score_shard};
pub use rollback::{RollbackReport, rollback};
pub use users::{UsersCommand, UsersReport, users};

/// Opens the lake for sync code, its store driven by the runtime behind
/// `handle` (the front end's; see [`storage`]).
pub fn open_lake(config: &Config, handle: &Handle) -> anyhow::Result<Lake> {
    check_local_folder("lake", &config.lake)?;
    let store = storage::open(&config.lake, &config.s3, handle)
        .with_context(|| format!("opening the lake {}", config.lake))?;
    Ok(Lake::new(store))
}

/// Opens the registry for sync code, as [`open_lake`] opens the lake.
pub fn open_registry(config: &Config, handle: &Handle) -> anyhow::Result<Registry> {
    check_local_folder("registry", &config.registry)?;
    let store = storage::open(&config.registry, &config.s3, handle)
        .with_context(|| format!("opening the registry {}", config.registry))?;
    Ok(Registry::new(store, &config.training.model_name))
}

/// A local lake or registry may not exist yet (ingest and retrain create
/// it), but where it would be must not be a file: that is a usage error
/// naming the setting (`--lake`, `SALESCAST_LAKE` or the file's `lake`),
/// not an OS error halfway through a run.
fn check_local_folder(key: &str, location: &str) -> Result<(), ConfigError> {
    let Ok(storage::Location::Local(root)) = storage::locate(location) else {
        return Ok(());
    };
    match file_in_the_way(&root) {
        Some(file) => Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!("{location:?} cannot be a folder: {} is a file", file.display()),
        }),
        None => Ok(()),
    }
}

/// The file that keeps `folder` from being (or becoming) a folder: `folder`
/// itself or its nearest existing ancestor, when that is not a folder.
pub(crate) fn file_in_the_way(folder: &std::path::Path) -> Option<std::path::PathBuf> {
    folder
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .filter(|p| !p.is_dir())
        .map(std::path::Path::to_path_buf)
}

/// Who is acting, for the decision log: the CI user, or the login name.
pub fn actor() -> String {
    ["GITHUB_ACTOR", "CODEBUILD_INITIATOR", "USER", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The default data day of a run: yesterday in UTC.
pub fn yesterday_utc() -> NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Days::new(1)
}

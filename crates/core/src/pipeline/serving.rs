//! What `salescast serve` answers from: a [`Snapshot`] of the champion (the
//! pointer, its verified model, manifest and deciding entry), its forecasts
//! for the newest data day, and a [`Forecaster`] for on-demand requests; and
//! the cheap check of whether a newer snapshot is due.
//!
//! Whose forecasts: the newest committed prediction partition (data day D)
//! when the current champion wrote it (`source = stored`). When another
//! model wrote it (the champion was rolled back or promoted after the
//! partition was written), the champion forecasts the same data day itself
//! at load (`source = computed`): one model's forecasts are never labelled
//! with another's hash. With no partition at all, it forecasts from the
//! newest sales day.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{Days, NaiveDate};
use polars::prelude::*;
use serde::Serialize;

use super::forecaster::Forecaster;
use crate::config::Config;
use crate::ingest::date_from_days;
use crate::insights::Board;
use crate::lake::Lake;
use crate::predictions::{self, MANIFEST_FILE, predictions_prefix};
use crate::registry::{Champion, Decision, Manifest, Registry};
use crate::storage::{StoreError, Version};
use crate::window::Window;

/// Where the served forecasts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The prediction partition `predict` wrote for this champion.
    Stored,
    /// Forecast by the server when it loaded the champion.
    Computed,
}

pub use crate::predictions::ForecastRow;

/// Everything the server answers from, for one champion.
pub struct Snapshot {
    pub champion: Champion,
    /// The store version of the pointer this snapshot was loaded at.
    pub pointer: Version,
    pub manifest: Manifest,
    /// The decision-log entry that made it champion, when the pointer names one.
    pub decision: Option<Decision>,
    pub data_day: NaiveDate,
    pub source: Source,
    /// The store version of the partition manifest of the data day, if any.
    pub partition: Option<Version>,
    /// Forecasts by series name (keys joined with "/").
    pub forecasts: HashMap<String, Vec<ForecastRow>>,
    pub forecaster: Forecaster,
    /// Each store's sales over the window, for the dashboard.
    pub board: Board,
    pub load_seconds: f64,
}

impl Snapshot {
    /// Loads the current champion: `None` when the registry has none yet.
    /// The model's hash is verified, then a warm-up forecast of one series
    /// must give finite values, before the snapshot is returned.
    pub fn load(config: &Config, lake: &Lake, registry: &Registry) -> anyhow::Result<Option<Self>> {
        let started = Instant::now();
        let model = registry.model();
        let Some((champion, pointer)) = registry.champion().context("reading the champion pointer")? else {
            return Ok(None);
        };
        let loaded = registry
            .load_model(&champion.version)
            .with_context(|| format!("loading the champion {}", champion.version))?;
        let manifest = loaded.manifest.clone();
        let decision = match champion.decision {
            Some(sequence) => Some(
                registry
                    .decision(sequence)
                    .with_context(|| format!("reading decision {sequence}"))?,
            ),
            None => None,
        };
        let newest = predictions::list_prediction_days(lake, model)?.last().copied();
        let stored = match newest {
            Some(day) => predictions::read_predictions_manifest(lake, model, day)?.map(|m| (day, m)),
            None => None,
        };
        let data_day = match &stored {
            Some((day, _)) => *day,
            None => lake
                .partitions()?
                .keys()
                .next_back()
                .copied()
                .ok_or_else(|| anyhow::anyhow!("the lake has no sales days to forecast from"))?,
        };
        let forecaster = Forecaster::load(config, lake, loaded, &champion.version, data_day)
            .with_context(|| format!("loading the forecaster of {} for {data_day}", champion.version))?;
        let Some(first) = forecaster.active().first() else {
            anyhow::bail!("no series has sales in the 7 days up to {data_day}: nothing to forecast");
        };
        let warm_up = vec![first.clone()];
        let warm = rows_by_series(&forecaster.forecast(Some(&warm_up), None)?.frame)?;
        if let Some(bad) = warm.values().flatten().find(|r| !r.forecast.is_finite()) {
            anyhow::bail!(
                "the warm-up forecast of {} gave {} for {}",
                champion.version,
                bad.forecast,
                bad.target_date
            );
        }
        // Stored only if the partition read back is still the champion's:
        // `predict` may have rewritten it since its manifest was read above
        // (then this snapshot forecasts itself, and the next poll sees the
        // new manifest's version).
        let stored_frame = match &stored {
            Some((day, (m, _))) if m.model_sha256 == champion.version => {
                match predictions::read_predictions(lake, model, *day)? {
                    Some((manifest, frame)) if manifest.model_sha256 == champion.version => Some(frame),
                    _ => None,
                }
            }
            _ => None,
        };
        let board = board(config, lake, registry, &forecaster)?;
        let partition = stored.as_ref().map(|(_, (_, version))| version.clone());
        let (source, frame) = match stored_frame {
            Some(frame) => (Source::Stored, frame),
            None => {
                if let Some((day, (m, _))) = &stored {
                    tracing::info!(
                        "the newest forecasts ({day}) were made by {}, not the champion {}: forecasting them again",
                        m.model_sha256,
                        champion.version
                    );
                }
                (Source::Computed, forecaster.forecast(None, None)?.frame)
            }
        };
        Ok(Some(Self {
            champion,
            pointer,
            manifest,
            decision,
            data_day,
            source,
            partition,
            forecasts: rows_by_series(&frame)?,
            forecaster,
            board,
            load_seconds: started.elapsed().as_secs_f64(),
        }))
    }

    pub fn version(&self) -> &str {
        &self.champion.version
    }

    /// Is a newer snapshot due? A few small requests: a head of the
    /// champion pointer, and of the partition manifests of the data day (a
    /// new champion's forecasts of the same day), the next day, and
    /// yesterday (a daily run's data day). With `rescan`, also a listing of
    /// the partitions, for any newer day (one written after a gap).
    pub fn stale(&self, lake: &Lake, registry: &Registry, rescan: bool) -> anyhow::Result<bool> {
        if pointer_version(registry)?.as_ref() != Some(&self.pointer) {
            return Ok(true);
        }
        let model = registry.model();
        if manifest_version(lake, model, self.data_day)? != self.partition {
            return Ok(true);
        }
        // The next day, and yesterday (UTC): the data day of tomorrow's daily run.
        let yesterday = super::yesterday_utc();
        for day in self.data_day.succ_opt().into_iter().chain([yesterday]) {
            if day > self.data_day && manifest_version(lake, model, day)?.is_some() {
                return Ok(true);
            }
        }
        if rescan {
            let newest = predictions::list_prediction_days(lake, model)?.last().copied();
            return Ok(newest.is_some_and(|day| day > self.data_day));
        }
        Ok(false)
    }
}

/// The dashboard's sales board of a forecaster's window, with each store's
/// error on the newest earlier forecasts: those of a data day at least a
/// week back (a week of days scored) within the horizon, else the newest
/// earlier one. Earlier forecasts that do not read are skipped with a warning.
fn board(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    forecaster: &Forecaster,
) -> anyhow::Result<Board> {
    let mapping = forecaster.mapping();
    let store_key = match &config.serve.store_key {
        Some(key) if mapping.series_keys.contains(key) => key.clone(),
        Some(key) => anyhow::bail!(
            "serve.store_key = {key:?} is not a series key of the model (its keys: {})",
            mapping.series_keys.join(", ")
        ),
        None => mapping.series_keys.first().cloned().unwrap_or_default(),
    };
    let data_day = forecaster.data_day();
    let window = Window::ending(&config.window, data_day)?;
    // The dashboard's figures never stop a champion from being served.
    let built = Board::build(
        forecaster.sales(),
        mapping,
        &store_key,
        &forecaster.active_rows(),
        window.first_day,
        data_day,
    );
    let mut board = match built {
        Ok(board) => board,
        Err(e) => {
            tracing::warn!(
                "the dashboard has no sales figures: summing the sales window by store failed: {e}"
            );
            return Ok(Board::default());
        }
    };
    let horizon = u64::from(forecaster.horizon());
    let earliest = data_day.checked_sub_days(Days::new(horizon)).unwrap_or(data_day);
    let week_back = data_day.checked_sub_days(Days::new(7)).unwrap_or(data_day);
    let earlier: Vec<NaiveDate> = predictions::list_prediction_days(lake, registry.model())?
        .into_iter()
        .filter(|d| *d >= earliest && *d < data_day)
        .collect();
    let chosen = earlier
        .iter()
        .rev()
        .find(|d| **d <= week_back)
        .or(earlier.last())
        .copied();
    if let Some(day) = chosen {
        match predictions::read_predictions(lake, registry.model(), day) {
            Ok(Some((manifest, frame))) => match board.score(&frame, day, &manifest.model_sha256) {
                Ok(accuracy) => board.accuracy = accuracy,
                Err(e) => tracing::warn!("the forecasts of {day} are not scored: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("the forecasts of {day} do not read, so they are not scored: {e}"),
        }
    }
    Ok(board)
}

/// The store version of the champion pointer (one head request), or `None`
/// when there is no champion yet.
/// Did loading fail because the store did not answer (worth retrying at
/// the next poll), rather than because what it holds is broken (a version to
/// refuse)? A missing object is a broken version, not an outage.
pub fn is_transient(err: &anyhow::Error) -> bool {
    use crate::lake::LakeError;
    use crate::predictions::PredictionsError;
    use crate::registry::RegistryError;
    let outage = |e: &StoreError| !matches!(e, StoreError::NotFound { .. } | StoreError::InvalidKey { .. });
    err.chain().any(|cause| {
        cause.downcast_ref::<StoreError>().is_some_and(outage)
            || matches!(cause.downcast_ref::<RegistryError>(), Some(RegistryError::Store(e)) if outage(e))
            || matches!(cause.downcast_ref::<PredictionsError>(), Some(PredictionsError::Store(e)) if outage(e))
            || matches!(cause.downcast_ref::<LakeError>(), Some(LakeError::Store(e)) if outage(e))
    })
}

pub fn pointer_version(registry: &Registry) -> Result<Option<Version>, StoreError> {
    match registry.store().head(&registry.champion_key()) {
        Ok(meta) => Ok(Some(meta.version)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The store version of one partition's manifest, or `None` if uncommitted.
fn manifest_version(lake: &Lake, model: &str, day: NaiveDate) -> Result<Option<Version>, StoreError> {
    match lake
        .store()
        .head(&format!("{}{MANIFEST_FILE}", predictions_prefix(model, day)))
    {
        Ok(meta) => Ok(Some(meta.version)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A predictions frame's rows by series, in its order (by day).
pub fn rows_by_series(frame: &DataFrame) -> anyhow::Result<HashMap<String, Vec<ForecastRow>>> {
    let series = frame.column("series")?.str()?;
    let dates = frame.column("target_date")?.date()?.physical().clone();
    let horizon = frame.column("horizon")?.i32()?;
    let f64s = |name: &str| -> anyhow::Result<Float64Chunked> { Ok(frame.column(name)?.f64()?.clone()) };
    let (forecast, lower, upper) = (f64s("forecast")?, f64s("lower")?, f64s("upper")?);
    let planned = frame.column("planned")?.bool()?;
    let mut out: HashMap<String, Vec<ForecastRow>> = HashMap::new();
    for i in 0..frame.height() {
        let (Some(name), Some(day), Some(h), Some(value)) =
            (series.get(i), dates.get(i), horizon.get(i), forecast.get(i))
        else {
            anyhow::bail!("predictions row {i} has an empty series, date, horizon or forecast");
        };
        let target_date = date_from_days(day).ok_or_else(|| anyhow::anyhow!("day {day} out of range"))?;
        out.entry(name.to_string()).or_default().push(ForecastRow {
            target_date,
            horizon: u32::try_from(h).unwrap_or_default(),
            forecast: value,
            lower: lower.get(i),
            upper: upper.get(i),
            planned: planned.get(i).unwrap_or(false),
        });
    }
    Ok(out)
}

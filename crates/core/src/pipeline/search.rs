//! Whether `retrain` searches every candidate or refits the champion's
//! recipe (a warm day), from signals the run reads anyway: the champion's
//! manifest (its recipe, validation figures and calibration), the decision
//! log's newest full search, the drift of the newest data, and the live
//! accuracy of the last 7 days against the champion's holdout
//! (`train::plan` applies the rules). Also the process CPU time the report
//! gives training.

use anyhow::Context as _;
use chrono::NaiveDate;

use super::metrics::live_buckets;
use super::monitor::champion_holdout;
use crate::config::Config;
use crate::digest::sha256_hex;
use crate::evaluate::Metrics;
use crate::forecast::intervals::Calibration;
use crate::live::LiveSummary;
use crate::mapping::Aggregate;
use crate::models::Family;
use crate::registry::{Registry, RegistryState};
use crate::train::{self, Challenger, Recipe, SearchMode, SearchRecord, Signals, TrainingSet};

/// What a warm day refits, from the champion's manifest.
pub(super) struct WarmStart {
    /// The champion's version, whose trees a warm day carries on.
    pub champion: String,
    /// The day and data fingerprint of the run that stored the champion.
    pub stored_by: (NaiveDate, String),
    pub recipe: Recipe,
    /// The search's inner-validation figures, carried on with the recipe.
    pub validation: Metrics,
    /// The champion's intervals, reused: a warm day fits once, so it has no
    /// out-of-sample residuals of its own to calibrate on.
    pub calibration: Option<Calibration>,
}

pub(super) struct SearchPlan {
    pub record: SearchRecord,
    /// Some on a warm day.
    pub warm: Option<WarmStart>,
    /// The fingerprint of this run's settings, for the new version's recipe.
    pub fingerprint: String,
}

/// The fingerprint of the settings a search depends on: the mapping, the
/// window, the features, the forecast and the training settings (the
/// full-search schedule and `warm_rounds` left out: they change what a warm
/// day does, not what a search finds; so is `data.aggregate`, which only
/// tells ingest how to add up events: it is hashed as its default, so a
/// configuration without it keeps the fingerprint it always had).
pub(super) fn fingerprint(config: &Config) -> Result<String, serde_json::Error> {
    let mut data = config.data.clone();
    data.aggregate = Aggregate::default();
    hashed(config, &data)
}

/// The fingerprint as recipes stored before `data.aggregate` was left out
/// carry it: the same as [`fingerprint`] unless the configuration sums.
fn fingerprint_with_aggregate(config: &Config) -> Result<String, serde_json::Error> {
    hashed(config, &config.data)
}

fn hashed(config: &Config, data: &crate::mapping::DataMapping) -> Result<String, serde_json::Error> {
    let mut training = config.training.clone();
    training.full_search_every_days = 0;
    training.full_search_live_excess = 0.0;
    training.warm_rounds = 0;
    let value = serde_json::json!({
        "data": data,
        "window": config.window,
        "features": config.features,
        "forecast": config.forecast,
        "training": training,
    });
    Ok(sha256_hex(serde_json::to_string(&value)?.as_bytes()))
}

/// The fingerprint the champion's recipe is compared with: `fingerprint`,
/// or the older form ([`fingerprint_with_aggregate`]) when the recipe
/// carries that one: a summing configuration's recipes stored before
/// aggregate was left out must not force a full search after an upgrade.
/// For a configuration that does not sum the two forms are one.
fn compared_with(
    config: &Config,
    fingerprint: &str,
    recipe: Option<&str>,
) -> Result<String, serde_json::Error> {
    let older = fingerprint_with_aggregate(config)?;
    Ok(if recipe == Some(older.as_str()) {
        older
    } else {
        fingerprint.to_string()
    })
}

/// The search plan of a run on `day`, tied to `state`.
pub(super) fn plan_search(
    config: &Config,
    registry: &Registry,
    state: &RegistryState,
    day: NaiveDate,
    forced: bool,
    drift_alerts: &[String],
    live: Option<&LiveSummary>,
) -> anyhow::Result<SearchPlan> {
    let fingerprint = fingerprint(config)?;
    let every_days = config.training.full_search_every_days;
    let manifest = match &state.champion {
        Some(c) => Some(
            registry
                .manifest(&c.version)
                .with_context(|| format!("reading the manifest of the champion {}", c.version))?,
        ),
        None => None,
    };
    let recipe = manifest.as_ref().and_then(|m| m.recipe.as_ref());
    let wanted = compared_with(config, &fingerprint, recipe.map(|r| r.fingerprint.as_str()))?;
    // Only read what a warm day could depend on.
    let could_be_warm = !forced && every_days > 0 && recipe.is_some_and(|r| r.fingerprint == wanted);
    let last_full_search = if could_be_warm {
        newest_full_search(registry, state, 2 * u64::from(every_days) + 8)
    } else {
        None
    };
    let live_excess = match live {
        Some(live) if could_be_warm => live_excess(registry, live),
        _ => None,
    };
    let record = train::plan(&Signals {
        run_date: day,
        forced,
        every_days,
        fingerprint: &wanted,
        champion: state.champion.as_ref().map(|c| (c.version.as_str(), recipe)),
        last_full_search,
        drift_alerts,
        live_excess,
        live_limit: config.training.full_search_live_excess,
    });
    tracing::info!(mode = ?record.mode, trigger = ?record.trigger, "{}", record.reason);
    // `train::plan` gives a warm day only with the champion's recipe.
    let warm = match (record.mode, manifest, &state.champion) {
        (SearchMode::Warm, Some(m), Some(champion)) => m.recipe.map(|recipe| WarmStart {
            champion: champion.version.clone(),
            stored_by: (m.lineage.window_last_day, m.lineage.data_fingerprint),
            recipe,
            validation: m.validation_metrics,
            calibration: m.calibration,
        }),
        _ => None,
    };
    Ok(SearchPlan {
        record,
        warm,
        fingerprint,
    })
}

/// A warm day's challenger: the champion's trees carried on by
/// `training.warm_rounds` rounds when it has boosted trees fitted on the
/// same categories and settings, else its recipe refitted on every training
/// row; the champion as it is on a rerun of the day that stored it, on the
/// same data (`data_fingerprint`). `record`'s reason says which.
pub(super) fn warm_challenger(
    training_set: &TrainingSet,
    registry: &Registry,
    config: &Config,
    warm: &WarmStart,
    record: &mut SearchRecord,
    (day, data_fingerprint): (NaiveDate, &str),
) -> anyhow::Result<Challenger> {
    let rounds = config.training.warm_rounds;
    let mut how = "refitted on every training row".to_string();
    if warm.stored_by.0 == day && warm.stored_by.1 == data_fingerprint {
        // A rerun: this day's first run stored the champion from these
        // data. Carrying it on again would add trees (a new version each
        // rerun) and refitting would drop the ones it carried on.
        let bytes = registry
            .load_artifact(&warm.champion)
            .with_context(|| format!("loading the champion {}", warm.champion))?;
        record.reason = format!(
            "{}; the champion as it is, stored by a run of this day on the same data",
            record.reason
        );
        return train::stored_challenger(bytes, &warm.recipe, warm.validation.clone())
            .context("decoding the champion");
    }
    if warm.recipe.searched_on == day {
        // A rerun of the search's own day: the refit is that search's
        // model again (the same bytes), where carrying on would add trees.
        how += ", as the recipe was searched on this run's day";
    } else if rounds > 0 && warm.recipe.family == Family::Gbdt {
        let champion = registry
            .load_model(&warm.champion)
            .with_context(|| format!("loading the champion {} to carry it on", warm.champion))?
            .artifact;
        let trees = champion.model.rounds().unwrap_or_default();
        // Promoted warm challengers carried on again would grow without end:
        // past twice the recipe's rounds, the recipe is refitted instead.
        let most = 2 * warm.recipe.rounds.unwrap_or(trees);
        if trees + rounds > most {
            how += &format!(
                ", as the champion's {trees} trees and {rounds} more would pass twice the recipe's rounds"
            );
        } else {
            let carried = training_set
                .boost_on(champion, &warm.recipe, warm.validation.clone(), rounds)
                .context("carrying the champion's trees on")?;
            if let Some(challenger) = carried {
                record.reason = format!(
                    "{}; its {trees} trees carried on by {rounds} rounds on today's training rows (training.warm_rounds)",
                    record.reason
                );
                return Ok(challenger);
            }
            how += ", as the champion was fitted with other categories or settings than today's";
        }
    }
    record.reason = format!("{}; {how}", record.reason);
    training_set
        .refit(&warm.recipe, warm.validation.clone())
        .context("refitting the champion's recipe")
}

/// The run date of the newest full search among the log's newest `limit`
/// retrain decisions (entries from before warm retrains were all full
/// searches); none when there is none or the log cannot be read.
fn newest_full_search(registry: &Registry, state: &RegistryState, limit: u64) -> Option<NaiveDate> {
    let first = state.last_sequence.saturating_sub(limit);
    for sequence in (first + 1..=state.last_sequence).rev() {
        let decision = match registry.decision(sequence) {
            Ok(d) => d.what,
            Err(e) => {
                tracing::warn!("reading decision {sequence} to find the last full search failed: {e}");
                return None;
            }
        };
        let Some(run_date) = decision.run_date else {
            continue;
        };
        if decision.challenger.is_none() || decision.recovered {
            continue;
        }
        if decision
            .search
            .as_ref()
            .is_some_and(|s| s.mode == SearchMode::Warm)
        {
            continue;
        }
        return Some(run_date);
    }
    None
}

/// The largest `live WAPE / holdout WAPE - 1` over the horizon buckets of
/// the last 7 days, against the champion's holdout (as the monitor's
/// `LiveWapeExcess`); none without live scores or holdout figures.
fn live_excess(registry: &Registry, live: &LiveSummary) -> Option<f64> {
    let holdout = match champion_holdout(registry) {
        Ok(h) => h?,
        Err(e) => {
            tracing::warn!("no live-accuracy signal for the search plan: {e:#}");
            return None;
        }
    };
    live_buckets(live, Some(&holdout), 7)
        .iter()
        .filter(|b| b.holdout_wape > 0.0 && b.live_wape.is_finite() && b.holdout_wape.is_finite())
        .map(|b| b.live_wape / b.holdout_wape - 1.0)
        .reduce(f64::max)
}

/// CPU seconds of this process so far, every thread (Linux: the user and
/// system ticks of `/proc/self/stat`, 100 a second); none elsewhere.
pub(super) fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_training_settings_but_not_the_schedule() {
        let config = Config::default();
        let base = fingerprint(&config).unwrap();
        assert_eq!(base, fingerprint(&config.clone()).unwrap(), "stable");
        let mut scheduled = config.clone();
        scheduled.training.full_search_every_days = 3;
        scheduled.training.full_search_live_excess = 0.5;
        scheduled.training.warm_rounds = 0;
        assert_eq!(fingerprint(&scheduled).unwrap(), base);
        let mut summing = config.clone();
        summing.data.aggregate = Aggregate::Sum;
        assert_eq!(fingerprint(&summing).unwrap(), base, "an ingest setting");
        // Without aggregate, the fingerprint is the one hashed before it was
        // left out; a summing configuration's older recipes still match.
        assert_eq!(fingerprint_with_aggregate(&config).unwrap(), base);
        let before = fingerprint_with_aggregate(&summing).unwrap();
        assert_ne!(before, base);
        assert_eq!(compared_with(&summing, &base, Some(&before)).unwrap(), before);
        assert_eq!(compared_with(&summing, &base, Some(&base)).unwrap(), base);
        assert_eq!(compared_with(&summing, &base, None).unwrap(), base);
        assert_eq!(
            compared_with(&config, &base, Some(&before)).unwrap(),
            base,
            "only a summing one's older recipes"
        );
        let mut other = config.clone();
        other.training.gbdt.learning_rate *= 2.0;
        assert_ne!(fingerprint(&other).unwrap(), base);
        let mut features = config;
        features.features.lags.push(35);
        assert_ne!(fingerprint(&features).unwrap(), base);
    }

    #[test]
    fn process_cpu_time_is_read_and_grows() {
        let Some(before) = process_cpu_seconds() else {
            return; // not Linux
        };
        // Busy until the clock ticks (on a loaded machine that takes longer).
        let mut x = 0u64;
        let started = std::time::Instant::now();
        let mut after = before;
        while after <= before && started.elapsed().as_secs() < 20 {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            after = process_cpu_seconds().unwrap();
        }
        std::hint::black_box(x);
        assert!(after > before, "{before} -> {after} after 20 s of busy work");
    }
}

//! Warm retrains (issue 18, part 3): the recipe a full search found (the
//! family, the boosted-trees configuration, the tuned params with the rounds
//! early stopping kept), stored in each version's manifest and refitted
//! without a search on a warm day; and the rules ([`plan`]) that decide
//! whether a run searches in full or refits the champion's recipe.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::digest::Sealed;
use crate::evaluate::Metrics;
use crate::models::{Artifact, Family, ModelParams};

use super::{Challenger, TrainError, TrainingSet};

/// What a full search picked, enough to fit the same model again on a newer
/// window without searching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub family: Family,
    /// The boosted-trees configuration (`training.gbdt_configs`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbdt_config: Option<String>,
    /// The params of the final fit: the configuration applied and, for the
    /// boosted trees, `max_rounds` = the rounds early stopping kept.
    pub params: ModelParams,
    /// The boosting rounds the search kept (boosted trees only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// The fingerprint of the settings the search ran with (mapping,
    /// window, features, forecast, training): another one forces a search.
    pub fingerprint: String,
    /// The run date of the full search that found it.
    pub searched_on: NaiveDate,
}

/// Whether a run searched every candidate or refitted the champion's recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Full,
    Warm,
}

/// Why a run searched in full (or, `None`, why it did not need to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `retrain --full-search`.
    Forced,
    /// `training.full_search_every_days = 0`.
    EveryDay,
    NoChampion,
    /// The champion's manifest has no recipe (stored before warm retrains).
    NoRecipe,
    /// The settings differ from those the champion's recipe was searched with.
    SettingsChanged,
    /// `training.full_search_every_days` days or more since the last full search.
    Schedule,
    /// A drift alert on the newest data.
    Drift,
    /// Live WAPE above the champion's holdout WAPE by more than
    /// `training.full_search_live_excess` in some horizon bucket.
    LiveAccuracy,
    /// Nothing called for a search: a warm day.
    None,
}

/// The mode a run trained in, and why: in the report, the decision log and
/// the retrain JSON (absent in older entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    pub mode: SearchMode,
    pub trigger: Trigger,
    pub reason: String,
}

/// What the search rules look at.
#[derive(Debug, Clone)]
pub struct Signals<'a> {
    pub run_date: NaiveDate,
    /// `retrain --full-search`.
    pub forced: bool,
    /// `training.full_search_every_days`.
    pub every_days: u32,
    /// The fingerprint of this run's settings.
    pub fingerprint: &'a str,
    /// The champion's version and its recipe (`None`: no champion).
    pub champion: Option<(&'a str, Option<&'a Recipe>)>,
    /// The run date of the newest full search in the decision log, if found.
    pub last_full_search: Option<NaiveDate>,
    /// The features with a drift alert.
    pub drift_alerts: &'a [String],
    /// The largest `live WAPE / holdout WAPE - 1` over the horizon buckets
    /// of the last 7 days (none without live scores).
    pub live_excess: Option<f64>,
    /// `training.full_search_live_excess`.
    pub live_limit: f64,
}

fn full(trigger: Trigger, reason: String) -> SearchRecord {
    SearchRecord {
        mode: SearchMode::Full,
        trigger,
        reason,
    }
}

/// Full search or warm refit, and why; the first rule that calls for a
/// search wins, in the order of [`Trigger`].
pub fn plan(s: &Signals) -> SearchRecord {
    if s.forced {
        return full(Trigger::Forced, "full search forced (--full-search)".into());
    }
    if s.every_days == 0 {
        return full(
            Trigger::EveryDay,
            "full search every day (training.full_search_every_days = 0)".into(),
        );
    }
    let Some((version, recipe)) = s.champion else {
        return full(Trigger::NoChampion, "no champion yet".into());
    };
    let short = crate::digest::short(version);
    let Some(recipe) = recipe else {
        return full(
            Trigger::NoRecipe,
            format!("the champion {short} has no recipe (stored before warm retrains)"),
        );
    };
    if recipe.fingerprint != s.fingerprint {
        return full(
            Trigger::SettingsChanged,
            format!(
                "the data, window, feature, forecast or training settings differ from those the champion {short}'s recipe was searched with"
            ),
        );
    }
    // The newest full search: the log's, or the recipe's own when the log
    // does not show one.
    let last = s
        .last_full_search
        .map_or(recipe.searched_on, |d| d.max(recipe.searched_on));
    let days = (s.run_date - last).num_days();
    if days < 0 || days >= i64::from(s.every_days) {
        return full(
            Trigger::Schedule,
            format!(
                "{days} days since the last full search on {last} (training.full_search_every_days = {})",
                s.every_days
            ),
        );
    }
    if !s.drift_alerts.is_empty() {
        return full(
            Trigger::Drift,
            format!("the newest data drifted: {}", s.drift_alerts.join(", ")),
        );
    }
    if let Some(excess) = s.live_excess.filter(|e| *e > s.live_limit) {
        return full(
            Trigger::LiveAccuracy,
            format!(
                "live WAPE {:.1}% above the champion's holdout WAPE in some horizon bucket over the last 7 days (limit {:.1}%, training.full_search_live_excess)",
                100.0 * excess,
                100.0 * s.live_limit
            ),
        );
    }
    SearchRecord {
        mode: SearchMode::Warm,
        trigger: Trigger::None,
        reason: format!(
            "warm: the champion {short}'s recipe ({}{}), {days} days since the last full search on {last}",
            recipe.family,
            recipe.rounds.map_or(String::new(), |r| format!(", {r} rounds"))
        ),
    }
}

impl TrainingSet<'_> {
    /// The warm challenger: `recipe` fitted once on every training row, no
    /// candidate search; `validation` is the search's figure it carries on.
    pub fn refit(&self, recipe: &Recipe, validation: Metrics) -> Result<Challenger, TrainError> {
        let artifact = crate::progress::phase("refitting the champion's recipe", || {
            self.fit_final(recipe.family, &recipe.params)
        })?;
        Ok(warm_challenger(artifact, recipe, validation))
    }

    /// The warm challenger carried on: the champion's own trees plus
    /// `rounds` trees fitted on its residuals over today's training rows
    /// (sampled as a refit's), i.e. its boosting continued on the newer
    /// window. `None` when the champion cannot be carried on: not boosted
    /// trees, or fitted with other categories, mapping or features (then the
    /// recipe is refitted in full).
    pub fn boost_on(
        &self,
        champion: Artifact,
        recipe: &Recipe,
        validation: Metrics,
        rounds: usize,
    ) -> Result<Option<Challenger>, TrainError> {
        let same = champion.model.family() == Family::Gbdt
            && champion.encoder == self.encoder
            && champion.mapping.same_for_models(self.spec.mapping)
            && champion.features == *self.spec.features;
        if !same {
            return Ok(None);
        }
        let rows = &self.fit_rows;
        let design = self.design_of(rows);
        let target = super::take(&self.target, rows);
        let model = champion.model;
        let model = crate::progress::phase("carrying the champion's trees on", || {
            model.boost_on(&recipe.params, &design, &target, rounds, self.spec.training.seed)
        })?;
        let artifact = Artifact { model, ..champion };
        Ok(Some(warm_challenger(artifact, recipe, validation)))
    }
}

/// A warm day's challenger: `artifact`, with no candidates and no inner
/// fit, carrying the recipe's configuration and params and the search's
/// validation figures.
fn warm_challenger(artifact: Artifact, recipe: &Recipe, validation: Metrics) -> Challenger {
    let sealed = Sealed::new(artifact.to_bytes());
    sealed_challenger(artifact, sealed, recipe, validation)
}

/// A warm challenger that is a stored version as it is: `bytes` (the
/// version's own, so the same SHA-256) decoded, nothing refitted.
pub fn stored_challenger(
    bytes: Vec<u8>,
    recipe: &Recipe,
    validation: Metrics,
) -> Result<Challenger, TrainError> {
    let artifact = Artifact::from_bytes(&bytes)?;
    Ok(sealed_challenger(
        artifact,
        Sealed::new(bytes),
        recipe,
        validation,
    ))
}

fn sealed_challenger(artifact: Artifact, sealed: Sealed, recipe: &Recipe, validation: Metrics) -> Challenger {
    Challenger {
        artifact,
        sealed,
        candidates: Vec::new(),
        gbdt_config: recipe.gbdt_config.clone(),
        validation,
        inner: None,
        tuned: recipe.params.clone(),
    }
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;

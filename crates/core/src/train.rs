//! Training a challenger and scoring models on a window's feature rows.
//!
//! The window's rows are split by day: the newest `holdout_days` are the
//! holdout (only for comparing challenger and champion); the rows before it
//! are training rows, whose own newest `holdout_days` are the inner validation
//! window that picks the candidate family. The picked family is then fitted on
//! every training row, and that fitted artifact is what is scored, stored and
//! promoted. Closed days (open flag 0) are neither trained on nor scored.
//! Fitting and picking the candidates is `train/candidates.rs`.

mod candidates;
mod recipe;

pub use candidates::{Candidate, CandidateScore, best_candidate, score_candidates, train_challenger};
pub use recipe::{Recipe, SearchMode, SearchRecord, Signals, Trigger, plan, stored_challenger};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Sealed;
use crate::evaluate::{Metrics, metrics};
use crate::features::{FeatureLayout, FeatureSettings};
use crate::ingest::days_from_date;
use crate::mapping::DataMapping;
use crate::models::{
    self, ARTIFACT_FORMAT_VERSION, Artifact, ArtifactError, Design, ElasticNetParams, Encoder, Family,
    FittedModel, ForestParams, GbdtConfig, GbdtParams, ModelError, ModelParams,
};
use crate::setting::{Invalid, invalid};
use crate::validate::DataError;
use crate::window::Window;

/// Which models are trained and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSettings {
    /// The registry keeps this model's versions under `<registry>/<model_name>/`.
    pub model_name: String,
    /// Families tried on the inner validation window; the best is the challenger.
    pub candidates: Vec<Family>,
    /// Seed of every random choice, so a rerun gives byte-identical models.
    pub seed: u64,
    /// The most rows one fit uses: a larger training set is sampled down to
    /// this many rows (seeded, the same rows on every rerun); 0 = no limit.
    /// Scoring always uses every row.
    pub max_fit_rows: usize,
    pub elastic_net: ElasticNetParams,
    pub random_forest: ForestParams,
    pub gbdt: GbdtParams,
    /// Candidate configurations of the boosted trees, each fitted and scored
    /// on the inner validation window like a family (the best is kept);
    /// empty: `[training.gbdt]` alone.
    pub gbdt_configs: Vec<GbdtConfig>,
    /// Days between full searches: on the days between, `retrain` refits
    /// the champion's recipe (its family, configuration and rounds) once
    /// instead of searching every candidate, unless drift, live accuracy or
    /// changed settings call for a search; 0 = a full search every day.
    pub full_search_every_days: u32,
    /// A full search when the live WAPE of the last 7 days exceeds the
    /// champion's holdout WAPE by more than this share in some horizon
    /// bucket (the `LiveWapeExcess` alarm's default threshold).
    pub full_search_live_excess: f64,
    /// On a warm day, boosted trees are carried on rather than refitted:
    /// the champion's trees plus this many rounds fitted on its residuals
    /// over today's training rows (the rows a refit uses); 0 = refit the
    /// champion's recipe on every training row.
    pub warm_rounds: usize,
}

impl TrainingSettings {
    /// The hyper-parameters of every family.
    pub fn params(&self) -> ModelParams {
        ModelParams {
            elastic_net: self.elastic_net.clone(),
            random_forest: self.random_forest.clone(),
            gbdt: self.gbdt.clone(),
        }
    }
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            model_name: "sales".into(),
            candidates: vec![Family::SeasonalNaive, Family::ElasticNet, Family::Gbdt],
            seed: 42,
            max_fit_rows: 500_000,
            elastic_net: ElasticNetParams::default(),
            random_forest: ForestParams::default(),
            gbdt: GbdtParams::default(),
            gbdt_configs: models::gbdt_configs::default_configs(),
            full_search_every_days: 7,
            full_search_live_excess: 0.25,
            warm_rounds: 50,
        }
    }
}

impl TrainingSettings {
    /// Checks the training settings, and every candidate family's
    /// hyper-parameters against the features it would get (`names`).
    pub fn check(&self, names: &[String]) -> Result<(), Invalid> {
        let name = &self.model_name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid("training.model_name", "use letters, digits, '_' or '-'"));
        }
        if self.candidates.is_empty() {
            return Err(invalid("training.candidates", "name at least one model family"));
        }
        if (1..1000).contains(&self.max_fit_rows) {
            return Err(invalid(
                "training.max_fit_rows",
                "must be 0 (no limit) or at least 1000",
            ));
        }
        if !(self.full_search_live_excess.is_finite() && self.full_search_live_excess >= 0.0) {
            return Err(invalid(
                "training.full_search_live_excess",
                "must be a share of 0 or more (0.25: live WAPE 25% above the holdout's)",
            ));
        }
        if self.warm_rounds > 100_000 {
            return Err(invalid(
                "training.warm_rounds",
                "must be between 0 (refit the recipe) and 100000",
            ));
        }
        let params = self.params();
        // The seasonal-naive baseline is always scored, whatever the candidates.
        models::check(Family::SeasonalNaive, &params, names).map_err(|e| {
            invalid(
                "features.lags",
                format!("{e}: the seasonal-naive baseline needs lags 7 and 14"),
            )
        })?;
        for &family in &self.candidates {
            models::check(family, &params, names).map_err(|e| match e {
                ModelError::InvalidParam { key, problem } => {
                    invalid(&format!("training.{family}.{key}"), problem)
                }
                other => invalid("training.candidates", other.to_string()),
            })?;
        }
        // The configurations only matter when the boosted trees are fitted,
        // and are checked after `[training.gbdt]` itself, which they change.
        if self.candidates.contains(&Family::Gbdt) {
            models::gbdt_configs::check_configs(&self.gbdt_configs, &self.gbdt).map_err(|e| match e {
                ModelError::InvalidParam { key, problem } => invalid(&format!("training.{key}"), problem),
                other => invalid("training.gbdt_configs", other.to_string()),
            })?;
        }
        Ok(())
    }
}

/// What training needs to know of the configuration: the mapping, the
/// feature settings and the training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainSpec<'a> {
    pub mapping: &'a DataMapping,
    pub features: &'a FeatureSettings,
    pub training: &'a TrainingSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

/// Row indices of the feature frame, by role (open days only).
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Vec<usize>,
    pub inner_train: Vec<usize>,
    pub inner_valid: Vec<usize>,
    pub holdout: Vec<usize>,
}

/// Splits the rows of `features` by the days of `window`: rows from its
/// holdout's first day on are the holdout, the inner validation window's the
/// inner validation rows, the rows before it the inner training rows. Closed
/// days (open flag 0) are in no role.
pub fn split(features: &DataFrame, mapping: &DataMapping, window: &Window) -> Result<Split, TrainError> {
    let split = split_rows(features, mapping, window)?;
    split.check(window)?;
    Ok(split)
}

/// [`split`] without its check: a shard's rows, or a sharded fit's sample,
/// may lack a role that the whole window has.
pub fn split_rows(features: &DataFrame, mapping: &DataMapping, window: &Window) -> Result<Split, TrainError> {
    let dates = features.column(&mapping.date_column)?.date()?.physical().clone();
    let open = match &mapping.open_flag {
        Some(flag) => Some(features.column(flag)?.f64()?.clone()),
        None => None,
    };
    let holdout_start = days_from_date(window.holdout_first_day);
    let inner_start = days_from_date(window.inner_first_day);
    let mut split = Split {
        train: vec![],
        inner_train: vec![],
        inner_valid: vec![],
        holdout: vec![],
    };
    for (i, day) in dates.iter().enumerate() {
        let closed = open.as_ref().is_some_and(|o| o.get(i) == Some(0.0));
        let Some(day) = day else { continue };
        if closed {
            continue;
        }
        if day >= holdout_start {
            split.holdout.push(i);
        } else {
            split.train.push(i);
            if day >= inner_start {
                split.inner_valid.push(i);
            } else {
                split.inner_train.push(i);
            }
        }
    }
    Ok(split)
}

impl Split {
    /// Refuses a window with no open-day rows in the holdout, the inner
    /// training or the inner validation window.
    pub fn check(&self, window: &Window) -> Result<(), TrainError> {
        check_roles(
            window,
            [self.holdout.len(), self.inner_train.len(), self.inner_valid.len()],
        )
    }
}

/// [`Split::check`] on row counts (holdout, inner training, inner
/// validation): a sharded fit checks the shards' sums.
pub fn check_roles(
    window: &Window,
    [holdout, inner_train, inner_valid]: [usize; 3],
) -> Result<(), TrainError> {
    let empty = |what: &str| -> TrainError {
        DataError::file(
            format!("the window with its holdout from {}", window.holdout_first_day),
            format!(
                "no open-day rows {what}; read more history (window.history_days) or hold out fewer days"
            ),
        )
        .into()
    };
    if holdout == 0 {
        return Err(empty("in the holdout"));
    }
    if inner_train == 0 || inner_valid == 0 {
        return Err(empty("before the holdout for training and validation"));
    }
    Ok(())
}

/// The trained challenger: its artifact, bytes and content address.
#[derive(Debug)]
pub struct Challenger {
    pub artifact: Artifact,
    /// The artifact's bytes and their SHA-256, computed once.
    pub sealed: Sealed,
    pub candidates: Vec<CandidateScore>,
    /// The picked boosted-trees configuration (`training.gbdt_configs`), if
    /// the picked candidate is one.
    pub gbdt_config: Option<String>,
    pub validation: Metrics,
    /// The picked family fitted on the inner training rows only (none on a
    /// warm day: no search, no inner fit).
    pub inner: Option<Artifact>,
    /// The params of the final fit (for boosting, with the rounds kept).
    pub tuned: ModelParams,
}

pub(crate) fn take(values: &[f64], rows: &[usize]) -> Vec<f64> {
    rows.iter().map(|&i| values[i]).collect()
}

pub fn target_values(features: &DataFrame, mapping: &DataMapping) -> Result<Vec<f64>, TrainError> {
    Ok(features
        .column(&mapping.target)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

pub fn frame_rows(features: &DataFrame, rows: &[usize]) -> PolarsResult<DataFrame> {
    let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|&i| i as IdxSize).collect());
    features.take(&idx)
}

/// The rows a split's fits use, encoded once: the (sampled) inner training
/// rows, the inner validation rows and the (sampled) training rows. A large
/// window's other rows are never copied into a design matrix.
pub struct TrainingSet<'a> {
    spec: TrainSpec<'a>,
    split: &'a Split,
    pub encoder: Encoder,
    /// The inner training rows the candidates are fitted on.
    inner_fit_rows: Vec<usize>,
    /// The training rows the final fit uses.
    fit_rows: Vec<usize>,
    /// The frame rows encoded in `design`, ascending.
    rows: Vec<usize>,
    design: Design,
    /// The target of every frame row.
    target: Vec<f64>,
}

impl<'a> TrainingSet<'a> {
    pub fn new(features: &DataFrame, spec: TrainSpec<'a>, split: &'a Split) -> Result<Self, TrainError> {
        let layout = FeatureLayout::new(spec.mapping, spec.features);
        // Only the category columns of the training rows are copied to learn their values.
        let categories = features.select(layout.categorical.iter().map(String::as_str))?;
        let encoder = Encoder::fit(&frame_rows(&categories, &split.train)?, &layout)?;
        Self::with_encoder(features, spec, split, encoder)
    }

    /// As [`TrainingSet::new`], with an encoder learned elsewhere: a sharded
    /// retrain's fit learns the categories of every shard's training rows,
    /// while its frame holds only their sampled rows.
    pub fn with_encoder(
        features: &DataFrame,
        spec: TrainSpec<'a>,
        split: &'a Split,
        encoder: Encoder,
    ) -> Result<Self, TrainError> {
        let max = spec.training.max_fit_rows;
        let sampled = max > 0 && split.train.len().max(split.inner_train.len()) > max;
        let hashes = if sampled {
            crate::sampling::row_hashes(features, spec.mapping, spec.training.seed)?
        } else {
            Vec::new()
        };
        let inner_fit_rows = fit_rows(&split.inner_train, &hashes, spec.training);
        let final_fit_rows = fit_rows(&split.train, &hashes, spec.training);
        let mut rows: Vec<usize> = inner_fit_rows
            .iter()
            .chain(&split.inner_valid)
            .chain(&final_fit_rows)
            .copied()
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let design = encoder.design(&frame_rows(features, &rows)?)?;
        let target = target_values(features, spec.mapping)?;
        Ok(Self {
            spec,
            split,
            encoder,
            inner_fit_rows,
            fit_rows: final_fit_rows,
            rows,
            design,
            target,
        })
    }

    /// The rows the final fit uses (after `training.max_fit_rows`).
    pub fn fit_row_count(&self) -> usize {
        self.fit_rows.len()
    }

    /// The target of every row of the feature frame (NaN where missing).
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// The design rows of frame rows `wanted` (each one encoded in `new`).
    pub(crate) fn design_of(&self, wanted: &[usize]) -> Design {
        let positions: Vec<usize> = wanted
            .iter()
            .map(|row| {
                self.rows
                    .binary_search(row)
                    .expect("a fit uses only rows the training set encoded")
            })
            .collect();
        self.design.take(&positions)
    }

    /// Fits `family` on the split's training rows (sampled down to
    /// `training.max_fit_rows`): the artifact a run stores.
    pub fn fit_final(&self, family: Family, params: &ModelParams) -> Result<Artifact, TrainError> {
        let model = models::fit(
            family,
            params,
            &self.design_of(&self.fit_rows),
            &take(&self.target, &self.fit_rows),
            None,
            self.spec.training.seed,
        )?;
        Ok(self.artifact(model))
    }

    /// The seasonal-naive baseline's metrics and predictions on the holdout
    /// rows (it learns nothing from training rows beyond the encoder's
    /// categories, so it is fitted on the holdout's own design).
    pub fn baseline(&self, features: &DataFrame) -> Result<Artifact, TrainError> {
        seasonal_naive(self.spec, &self.encoder, features, &self.split.holdout)
    }

    pub(crate) fn artifact(&self, model: FittedModel) -> Artifact {
        Artifact {
            format: ARTIFACT_FORMAT_VERSION,
            mapping: self.spec.mapping.clone(),
            features: self.spec.features.clone(),
            encoder: self.encoder.clone(),
            model,
        }
    }
}

/// The seasonal-naive baseline for `rows` of `features`, with `encoder`
/// (it learns nothing from training rows beyond the encoder's categories,
/// so it is fitted on the scored rows' own design).
pub fn seasonal_naive(
    spec: TrainSpec,
    encoder: &Encoder,
    features: &DataFrame,
    rows: &[usize],
) -> Result<Artifact, TrainError> {
    let design = encoder.design(&frame_rows(features, rows)?)?;
    let model = models::fit(
        Family::SeasonalNaive,
        &spec.training.params(),
        &design,
        &vec![0.0; design.rows],
        None,
        0,
    )?;
    Ok(Artifact {
        format: ARTIFACT_FORMAT_VERSION,
        mapping: spec.mapping.clone(),
        features: spec.features.clone(),
        encoder: encoder.clone(),
        model,
    })
}

/// `rows`, or a seeded sample of `training.max_fit_rows` of them (in their
/// order) when there are more: the rows with the smallest
/// `hashes` (`sampling::row_hashes` with the training seed), so a row is
/// picked or not whatever other rows the frame holds.
pub fn fit_rows(rows: &[usize], hashes: &[u64], training: &TrainingSettings) -> Vec<usize> {
    let max = training.max_fit_rows;
    if max == 0 || rows.len() <= max {
        return rows.to_vec();
    }
    crate::sampling::bottom_k(rows, hashes, max)
}

/// Scores an artifact on `rows` of `features` (built with its own settings).
pub fn score(
    artifact: &Artifact,
    features: &DataFrame,
    rows: &[usize],
    target: &[f64],
) -> Result<(Metrics, Vec<f64>), TrainError> {
    let predicted = artifact.predict(&frame_rows(features, rows)?)?;
    Ok((metrics(&take(target, rows), &predicted), predicted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_rows_samples_down_to_the_limit_the_same_way_every_time() {
        let training = TrainingSettings {
            max_fit_rows: 1000,
            ..TrainingSettings::default()
        };
        let hashes_of = |seed: u64| -> Vec<u64> {
            (0..15_000)
                .map(|i: i32| crate::sampling::row_hash(&[format!("s{}", i % 50)], i / 50, seed))
                .collect()
        };
        let hashes = hashes_of(training.seed);
        let rows: Vec<usize> = (0..5000).map(|i| i * 3).collect();
        let picked = fit_rows(&rows, &hashes, &training);
        assert_eq!(picked.len(), 1000);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "in row order, no repeats");
        assert!(picked.iter().all(|r| r % 3 == 0), "only rows that were given");
        assert!(picked.last().unwrap() > &10_000, "spread over the whole range");
        assert!(picked.first().unwrap() < &5_000, "spread over the whole range");
        assert_eq!(picked, fit_rows(&rows, &hashes, &training), "seeded");
        assert_ne!(picked, fit_rows(&rows, &hashes_of(7), &training), "another seed");
        assert_eq!(
            fit_rows(&rows[..800], &hashes, &training),
            &rows[..800],
            "under the limit: every row"
        );
        let unlimited = TrainingSettings {
            max_fit_rows: 0,
            ..training
        };
        assert_eq!(fit_rows(&rows, &[], &unlimited), rows);
    }
}

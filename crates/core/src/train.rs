//! Training a challenger and scoring models on a window's feature rows.
//!
//! The window's rows are split by day: the newest `holdout_days` are the
//! holdout (only for comparing challenger and champion); the rows before it
//! are training rows, whose own newest `holdout_days` are the inner validation
//! window that picks the candidate family. The picked family is then fitted on
//! every training row, and that fitted artifact is what is scored, stored and
//! promoted. Closed days (open flag 0) are neither trained on nor scored.

use chrono::NaiveDate;
use polars::prelude::*;
use rand::SeedableRng as _;

use crate::config::{Config, TrainingSettings};
use crate::evaluate::{Metrics, metrics};
use crate::features::FeatureLayout;
use crate::ingest::days_from_date;
use crate::models::{
    self, ARTIFACT_FORMAT_VERSION, Artifact, ArtifactError, Design, Encoder, Family, FittedModel, ModelError,
    ModelParams,
};
use crate::registry::sha256_hex;
use crate::validate::DataError;

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

/// Row indices of the feature frame, by role.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Vec<usize>,
    pub inner_train: Vec<usize>,
    pub inner_valid: Vec<usize>,
    pub holdout: Vec<usize>,
    pub holdout_first_day: NaiveDate,
    pub trained_through: NaiveDate,
}

/// Splits the rows of `features` (a window ending on `last_day`) by day: the
/// newest `holdout_days` are the holdout.
pub fn split(features: &DataFrame, config: &Config, last_day: NaiveDate) -> Result<Split, TrainError> {
    let holdout_days = u64::from(config.window.holdout_days);
    split_at(features, config, last_day - chrono::Days::new(holdout_days - 1))
}

/// Splits the rows of `features` by day: rows from `holdout_first_day` on are
/// the holdout, the `holdout_days` before it the inner validation window, and
/// the rows before that the inner training rows.
pub fn split_at(
    features: &DataFrame,
    config: &Config,
    holdout_first_day: NaiveDate,
) -> Result<Split, TrainError> {
    let holdout_days = u64::from(config.window.holdout_days);
    let inner_first_day = holdout_first_day - chrono::Days::new(holdout_days);
    let dates = features
        .column(&config.data.date_column)?
        .date()?
        .physical()
        .clone();
    let open = match &config.data.open_flag {
        Some(flag) => Some(features.column(flag)?.f64()?.clone()),
        None => None,
    };
    let (holdout_start, inner_start) = (days_from_date(holdout_first_day), days_from_date(inner_first_day));
    let mut split = Split {
        train: vec![],
        inner_train: vec![],
        inner_valid: vec![],
        holdout: vec![],
        holdout_first_day,
        trained_through: holdout_first_day - chrono::Days::new(1),
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
    let empty = |what: &str| -> TrainError {
        DataError::file(
            format!("the window with its holdout from {holdout_first_day}"),
            format!(
                "no open-day rows {what}; read more history (window.history_days) or hold out fewer days"
            ),
        )
        .into()
    };
    if split.holdout.is_empty() {
        return Err(empty("in the holdout"));
    }
    if split.inner_train.is_empty() || split.inner_valid.is_empty() {
        return Err(empty("before the holdout for training and validation"));
    }
    Ok(split)
}

/// One candidate family's score on the inner validation window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CandidateScore {
    pub family: Family,
    pub validation: Metrics,
    /// The boosting rounds early stopping kept (gradient-boosted trees only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// The rows the candidate was fitted on (after `training.max_fit_rows`).
    pub fit_rows: usize,
}

/// The trained challenger: its artifact, bytes and content address.
#[derive(Debug)]
pub struct Challenger {
    pub artifact: Artifact,
    pub bytes: Vec<u8>,
    pub version: String,
    pub candidates: Vec<CandidateScore>,
    pub validation: Metrics,
}

fn take(values: &[f64], rows: &[usize]) -> Vec<f64> {
    rows.iter().map(|&i| values[i]).collect()
}

pub fn target_values(features: &DataFrame, config: &Config) -> Result<Vec<f64>, TrainError> {
    Ok(features
        .column(&config.data.target)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

pub fn frame_rows(features: &DataFrame, rows: &[usize]) -> PolarsResult<DataFrame> {
    let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|&i| i as IdxSize).collect());
    features.take(&idx)
}

/// A candidate family fitted on the inner training rows and scored on the
/// inner validation window, with the params its refit should use (for
/// boosting: the rounds early stopping kept).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub score: CandidateScore,
    pub tuned: ModelParams,
    pub seconds: f64,
}

/// The rows a split's fits use, encoded once: the (sampled) inner training
/// rows, the inner validation rows and the (sampled) training rows. A large
/// window's other rows are never copied into a design matrix.
pub struct TrainingSet<'a> {
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
    pub fn new(features: &DataFrame, config: &Config, split: &'a Split) -> Result<Self, TrainError> {
        let layout = FeatureLayout::new(&config.data, &config.features);
        // Only the category columns of the training rows are copied to learn their values.
        let categories = features.select(layout.categorical.iter().map(String::as_str))?;
        let encoder = Encoder::fit(&frame_rows(&categories, &split.train)?, &layout)?;
        let inner_fit_rows = fit_rows(&split.inner_train, &config.training);
        let final_fit_rows = fit_rows(&split.train, &config.training);
        let mut rows: Vec<usize> = inner_fit_rows
            .iter()
            .chain(&split.inner_valid)
            .chain(&final_fit_rows)
            .copied()
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let design = encoder.design(&frame_rows(features, &rows)?)?;
        let target = target_values(features, config)?;
        Ok(Self {
            split,
            encoder,
            inner_fit_rows,
            fit_rows: final_fit_rows,
            rows,
            design,
            target,
        })
    }

    /// The target of every row of the feature frame (NaN where missing).
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// The design rows of frame rows `wanted` (each one encoded in `new`).
    fn design_of(&self, wanted: &[usize]) -> Design {
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

    /// Fits every configured family on the inner training rows (early
    /// stopping on the inner validation window) and scores it there.
    pub fn candidates(&self, config: &Config) -> Result<Vec<Candidate>, TrainError> {
        let training = &config.training;
        let params = training.params();
        let inner_x = self.design_of(&self.inner_fit_rows);
        let inner_y = take(&self.target, &self.inner_fit_rows);
        let valid_x = self.design_of(&self.split.inner_valid);
        let valid_y = take(&self.target, &self.split.inner_valid);
        let mut candidates = Vec::new();
        for &family in &training.candidates {
            let started = std::time::Instant::now();
            let validation_rows = Some((&valid_x, valid_y.as_slice()));
            let model = models::fit(
                family,
                &params,
                &inner_x,
                &inner_y,
                validation_rows,
                training.seed,
            )?;
            let validation = metrics(&valid_y, &model.predict(&valid_x)?);
            let seconds = started.elapsed().as_secs_f64();
            let rounds = model.rounds();
            tracing::info!(%family, wape = validation.wape, ?rounds, "candidate scored on the inner validation window in {seconds:.1} s");
            candidates.push(Candidate {
                score: CandidateScore {
                    family,
                    validation,
                    rounds,
                    fit_rows: self.inner_fit_rows.len(),
                },
                tuned: model.tuned(&params),
                seconds,
            });
        }
        Ok(candidates)
    }

    /// Fits `family` on the split's training rows (sampled down to
    /// `training.max_fit_rows`): the artifact a run stores.
    pub fn fit_final(
        &self,
        config: &Config,
        family: Family,
        params: &ModelParams,
    ) -> Result<Artifact, TrainError> {
        let model = models::fit(
            family,
            params,
            &self.design_of(&self.fit_rows),
            &take(&self.target, &self.fit_rows),
            None,
            config.training.seed,
        )?;
        Ok(self.artifact(config, model))
    }

    /// The seasonal-naive baseline's metrics and predictions on the holdout
    /// rows (it learns nothing from training rows beyond the encoder's
    /// categories, so it is fitted on the holdout's own design).
    pub fn baseline(&self, features: &DataFrame, config: &Config) -> Result<(Metrics, Vec<f64>), TrainError> {
        let holdout = &self.split.holdout;
        let design = self.encoder.design(&frame_rows(features, holdout)?)?;
        let model = models::fit(
            Family::SeasonalNaive,
            &config.training.params(),
            &design,
            &vec![0.0; design.rows],
            None,
            0,
        )?;
        score(&self.artifact(config, model), features, holdout, &self.target)
    }

    fn artifact(&self, config: &Config, model: FittedModel) -> Artifact {
        Artifact {
            format: ARTIFACT_FORMAT_VERSION,
            mapping: config.data.clone(),
            features: config.features.clone(),
            encoder: self.encoder.clone(),
            model,
        }
    }
}

/// `rows`, or a seeded sample of `training.max_fit_rows` of them (in their
/// order) when there are more.
pub fn fit_rows(rows: &[usize], training: &TrainingSettings) -> Vec<usize> {
    let max = training.max_fit_rows;
    if max == 0 || rows.len() <= max {
        return rows.to_vec();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(training.seed);
    let mut picked = rand::seq::index::sample(&mut rng, rows.len(), max).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| rows[i]).collect()
}

/// The candidate with the lowest WAPE on the inner validation window.
pub fn best_candidate(candidates: &[Candidate]) -> &Candidate {
    candidates
        .iter()
        .min_by(|a, b| a.score.validation.wape.total_cmp(&b.score.validation.wape))
        .expect("at least one candidate (checked with the config)")
}

/// Picks the best candidate on the inner validation window and fits it on
/// every training row.
pub fn train_challenger(set: &TrainingSet, config: &Config) -> Result<Challenger, TrainError> {
    let candidates = set.candidates(config)?;
    let best = best_candidate(&candidates);
    let artifact = set.fit_final(config, best.score.family, &best.tuned)?;
    let bytes = artifact.to_bytes();
    let version = sha256_hex(&bytes);
    Ok(Challenger {
        artifact,
        bytes,
        version,
        validation: best.score.validation.clone(),
        candidates: candidates.iter().map(|c| c.score.clone()).collect(),
    })
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
        let rows: Vec<usize> = (0..5000).map(|i| i * 3).collect();
        let picked = fit_rows(&rows, &training);
        assert_eq!(picked.len(), 1000);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "in row order, no repeats");
        assert!(picked.iter().all(|r| r % 3 == 0), "only rows that were given");
        assert!(picked.last().unwrap() > &10_000, "spread over the whole range");
        assert_eq!(picked, fit_rows(&rows, &training), "seeded");
        let other_seed = TrainingSettings {
            seed: 7,
            ..training.clone()
        };
        assert_ne!(picked, fit_rows(&rows, &other_seed));
        assert_eq!(
            fit_rows(&rows[..800], &training),
            &rows[..800],
            "under the limit: every row"
        );
        let unlimited = TrainingSettings {
            max_fit_rows: 0,
            ..training
        };
        assert_eq!(fit_rows(&rows, &unlimited), rows);
    }
}

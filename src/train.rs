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

use crate::config::Config;
use crate::evaluate::{Metrics, metrics};
use crate::features::FeatureLayout;
use crate::ingest::days_from_date;
use crate::models::{
    self, ARTIFACT_FORMAT_VERSION, Artifact, ArtifactError, Design, Encoder, Family, ModelError, ModelParams,
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

/// The training rows of a split, encoded once for every fit.
pub struct TrainingSet {
    pub encoder: Encoder,
    design: Design,
    target: Vec<f64>,
}

impl TrainingSet {
    pub fn new(features: &DataFrame, config: &Config, split: &Split) -> Result<Self, TrainError> {
        let layout = FeatureLayout::new(&config.data, &config.features);
        let encoder = Encoder::fit(&frame_rows(features, &split.train)?, &layout)?;
        let design = encoder.design(features)?;
        let target = target_values(features, config)?;
        Ok(Self {
            encoder,
            design,
            target,
        })
    }

    /// Fits every configured family on the inner training rows (early
    /// stopping on the inner validation window) and scores it there.
    pub fn candidates(&self, config: &Config, split: &Split) -> Result<Vec<Candidate>, TrainError> {
        let training = &config.training;
        let params = training.params();
        let inner_x = self.design.take(&split.inner_train);
        let inner_y = take(&self.target, &split.inner_train);
        let valid_x = self.design.take(&split.inner_valid);
        let valid_y = take(&self.target, &split.inner_valid);
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
            tracing::info!(%family, wape = validation.wape, "candidate scored on the inner validation window in {seconds:.1} s");
            candidates.push(Candidate {
                score: CandidateScore { family, validation },
                tuned: model.tuned(&params),
                seconds,
            });
        }
        Ok(candidates)
    }

    /// Fits `family` on every training row of the split: the artifact a run stores.
    pub fn fit_final(
        &self,
        config: &Config,
        split: &Split,
        family: Family,
        params: &ModelParams,
    ) -> Result<Artifact, TrainError> {
        let model = models::fit(
            family,
            params,
            &self.design.take(&split.train),
            &take(&self.target, &split.train),
            None,
            config.training.seed,
        )?;
        Ok(Artifact {
            format: ARTIFACT_FORMAT_VERSION,
            mapping: config.data.clone(),
            features: config.features.clone(),
            encoder: self.encoder.clone(),
            model,
        })
    }
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
pub fn train_challenger(set: &TrainingSet, config: &Config, split: &Split) -> Result<Challenger, TrainError> {
    let candidates = set.candidates(config, split)?;
    let best = best_candidate(&candidates);
    let artifact = set.fit_final(config, split, best.score.family, &best.tuned)?;
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

/// The seasonal-naive baseline scored on the holdout (it learns nothing from
/// the training rows beyond the encoder's categories).
pub fn baseline_metrics(
    set: &TrainingSet,
    features: &DataFrame,
    config: &Config,
    split: &Split,
) -> Result<Metrics, TrainError> {
    let design = set.encoder.design(&frame_rows(features, &split.holdout)?)?;
    let model = models::fit(
        Family::SeasonalNaive,
        &config.training.params(),
        &design,
        &vec![0.0; design.rows],
        None,
        0,
    )?;
    let artifact = Artifact {
        format: ARTIFACT_FORMAT_VERSION,
        mapping: config.data.clone(),
        features: config.features.clone(),
        encoder: set.encoder.clone(),
        model,
    };
    Ok(score(&artifact, features, &split.holdout, &set.target)?.0)
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

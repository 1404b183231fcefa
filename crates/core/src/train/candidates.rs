//! The candidates of a run: every configured family (and, for the boosted
//! trees, every configuration of `training.gbdt_configs`) fitted on the
//! same inner training rows, scored on the same inner validation rows, and
//! the best kept as the challenger, refitted on every training row.

use crate::digest::Sealed;
use crate::evaluate::{Metrics, metrics};
use crate::models::{self, Design, Family, FittedModel, ModelParams};

use super::{Challenger, TrainError, TrainingSet, TrainingSettings, take};

/// One candidate's score on the inner validation window.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CandidateScore {
    pub family: Family,
    /// The boosted-trees configuration (`training.gbdt_configs`) it was
    /// fitted with; none for other families, or without configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    pub validation: Metrics,
    /// The boosting rounds early stopping kept (gradient-boosted trees only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// The rows the candidate was fitted on (after `training.max_fit_rows`).
    pub fit_rows: usize,
    /// Seconds its fit and score took.
    pub seconds: f64,
}

impl CandidateScore {
    /// `gbdt (shallow)`, or the family alone.
    pub fn label(&self) -> String {
        match &self.config {
            Some(config) => format!("{} ({config})", self.family),
            None => self.family.to_string(),
        }
    }
}

/// A candidate fitted on the inner training rows and scored on the inner
/// validation window, with the params its refit should use (its
/// configuration's, and for boosting the rounds early stopping kept).
#[derive(Debug)]
pub struct Candidate {
    pub score: CandidateScore,
    pub tuned: ModelParams,
    pub seconds: f64,
    /// The fit on the inner training rows: out of sample on the inner
    /// validation window, where the forecast intervals are calibrated.
    pub model: FittedModel,
}

/// The candidates to fit, in order: each configured family with its params;
/// the boosted trees once per configuration of `training.gbdt_configs`.
fn configurations(training: &TrainingSettings) -> Vec<(Family, Option<String>, ModelParams)> {
    let params = training.params();
    let mut out = Vec::new();
    for &family in &training.candidates {
        if family == Family::Gbdt && !training.gbdt_configs.is_empty() {
            for config in &training.gbdt_configs {
                let mut p = params.clone();
                p.gbdt = config.apply(&training.gbdt);
                out.push((family, Some(config.name.clone()), p));
            }
        } else {
            out.push((family, None, params.clone()));
        }
    }
    out
}

/// Fits every candidate of `training` on `inner` (early stopping on
/// `valid`) and scores each on the same `valid` rows.
pub fn score_candidates(
    training: &TrainingSettings,
    inner: (&Design, &[f64]),
    valid: (&Design, &[f64]),
) -> Result<Vec<Candidate>, TrainError> {
    let (inner_x, inner_y) = inner;
    let (valid_x, valid_y) = valid;
    let mut candidates = Vec::new();
    let configurations = configurations(training);
    let progress = crate::progress::Phase::start("fitting candidates", Some(configurations.len() as u64));
    for (family, config, params) in configurations {
        let started = std::time::Instant::now();
        let model = models::fit(
            family,
            &params,
            inner_x,
            inner_y,
            Some((valid_x, valid_y)),
            training.seed,
        )?;
        let validation = metrics(valid_y, &model.predict(valid_x)?);
        let seconds = started.elapsed().as_secs_f64();
        let rounds = model.rounds();
        tracing::info!(%family, ?config, wape = validation.wape, ?rounds, "candidate scored on the inner validation window in {seconds:.1} s");
        progress.advance(1, &config.clone().unwrap_or_else(|| family.to_string()));
        candidates.push(Candidate {
            score: CandidateScore {
                family,
                config,
                validation,
                rounds,
                fit_rows: inner_x.rows,
                seconds,
            },
            tuned: model.tuned(&params),
            seconds,
            model,
        });
    }
    progress.finish();
    Ok(candidates)
}

impl TrainingSet<'_> {
    /// Fits every candidate on the inner training rows (early stopping on
    /// the inner validation window) and scores it there.
    pub fn candidates(&self) -> Result<Vec<Candidate>, TrainError> {
        let inner_x = self.design_of(&self.inner_fit_rows);
        let inner_y = take(&self.target, &self.inner_fit_rows);
        let valid_x = self.design_of(&self.split.inner_valid);
        let valid_y = take(&self.target, &self.split.inner_valid);
        score_candidates(self.spec.training, (&inner_x, &inner_y), (&valid_x, &valid_y))
    }
}

/// The index of the candidate with the lowest WAPE on the inner validation
/// window (the first of equals).
fn best_index(candidates: &[Candidate]) -> usize {
    (0..candidates.len())
        .min_by(|&a, &b| {
            let (a, b) = (&candidates[a].score.validation, &candidates[b].score.validation);
            a.wape.total_cmp(&b.wape)
        })
        .expect("at least one candidate (checked with the config)")
}

/// The candidate with the lowest WAPE on the inner validation window.
pub fn best_candidate(candidates: &[Candidate]) -> &Candidate {
    &candidates[best_index(candidates)]
}

/// Picks the best candidate on the inner validation window and fits it on
/// every training row.
pub fn train_challenger(set: &TrainingSet) -> Result<Challenger, TrainError> {
    let mut candidates = set.candidates()?;
    let scores = candidates.iter().map(|c| c.score.clone()).collect();
    let best = best_index(&candidates);
    let picked = &candidates[best];
    let artifact = crate::progress::phase("fitting the challenger", || {
        set.fit_final(picked.score.family, &picked.tuned)
    })?;
    let validation = picked.score.validation.clone();
    let gbdt_config = picked.score.config.clone();
    let tuned = picked.tuned.clone();
    let inner = Some(set.artifact(candidates.swap_remove(best).model));
    let sealed = Sealed::new(artifact.to_bytes());
    Ok(Challenger {
        artifact,
        sealed,
        validation,
        candidates: scores,
        gbdt_config,
        inner,
        tuned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{GbdtConfig, GbdtParams};

    /// y = (x - 20)^2 + 50 + a small wobble, x = 0..40 repeating: a
    /// parabola no straight line fits.
    fn design(rows: usize, offset: usize) -> (Design, Vec<f64>) {
        let x: Vec<f64> = (0..rows).map(|i| ((i + offset) % 40) as f64).collect();
        let y = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - 20.0).powi(2) + 50.0 + ((i * 7) % 5) as f64)
            .collect();
        let design = Design {
            names: vec!["x".into()],
            rows,
            values: x,
        };
        (design, y)
    }

    #[test]
    fn every_configuration_is_scored_on_the_same_rows_and_the_best_is_kept() {
        let (inner_x, inner_y) = design(800, 0);
        let (valid_x, valid_y) = design(200, 13);
        let training = TrainingSettings {
            candidates: vec![Family::ElasticNet, Family::Gbdt],
            gbdt: GbdtParams {
                max_rounds: 60,
                early_stopping_rounds: 10,
                ..GbdtParams::default()
            },
            gbdt_configs: vec![
                // Barely leaves the mean in 60 rounds.
                GbdtConfig {
                    learning_rate: Some(0.001),
                    ..GbdtConfig::named("slow")
                },
                GbdtConfig {
                    learning_rate: Some(0.3),
                    max_depth: Some(6),
                    min_leaf_weight: Some(1.0),
                    ..GbdtConfig::named("fast")
                },
                // Stumps: a step function of x, coarser than "fast".
                GbdtConfig {
                    learning_rate: Some(0.3),
                    max_depth: Some(1),
                    ..GbdtConfig::named("stumps")
                },
            ],
            ..TrainingSettings::default()
        };
        let candidates = score_candidates(&training, (&inner_x, &inner_y), (&valid_x, &valid_y)).unwrap();
        let labels: Vec<String> = candidates.iter().map(|c| c.score.label()).collect();
        assert_eq!(
            labels,
            ["elastic_net", "gbdt (slow)", "gbdt (fast)", "gbdt (stumps)"]
        );
        for c in &candidates {
            assert_eq!(c.score.validation.rows, 200, "{}", c.score.label());
            assert_eq!(c.score.fit_rows, 800);
            let again = metrics(&valid_y, &c.model.predict(&valid_x).unwrap());
            assert_eq!(
                again.wape,
                c.score.validation.wape,
                "{}: scored on the validation rows given",
                c.score.label()
            );
        }
        let wape = |label: &str| {
            candidates[labels.iter().position(|l| l == label).unwrap()]
                .score
                .validation
                .wape
        };
        assert!(
            wape("gbdt (fast)") < wape("gbdt (slow)") / 2.0 && wape("gbdt (stumps)") < wape("gbdt (slow)"),
            "fast {} stumps {} slow {}",
            wape("gbdt (fast)"),
            wape("gbdt (stumps)"),
            wape("gbdt (slow)")
        );
        assert!(
            wape("gbdt (fast)") < wape("elastic_net"),
            "a line cannot fit the parabola"
        );
        let best = best_candidate(&candidates);
        let lowest = labels.iter().min_by(|a, b| wape(a).total_cmp(&wape(b))).unwrap();
        assert_eq!(&best.score.label(), lowest, "the lowest validation WAPE is kept");
        assert_eq!(best.score.family, Family::Gbdt);
        assert_ne!(best.score.config.as_deref(), Some("slow"));
        // The kept candidate's refit uses its own configuration and rounds.
        let fast = &candidates[2];
        assert_eq!(fast.tuned.gbdt.max_depth, 6);
        assert_eq!(fast.tuned.gbdt.learning_rate, 0.3);
        assert_eq!(Some(fast.tuned.gbdt.max_rounds), fast.score.rounds);
        assert_eq!(candidates[3].tuned.gbdt.max_depth, 1);

        let no_configs = TrainingSettings {
            gbdt_configs: vec![],
            ..training
        };
        let plain = score_candidates(&no_configs, (&inner_x, &inner_y), (&valid_x, &valid_y)).unwrap();
        assert_eq!(plain.len(), 2);
        assert_eq!(plain[1].score.label(), "gbdt", "[training.gbdt] alone");
        assert_eq!(plain[1].tuned.gbdt.max_depth, GbdtParams::default().max_depth);
    }
}

//! Gradient-boosted trees with forust-ml (XGBoost's algorithm, pure Rust):
//! squared loss, missing values handled by the trees themselves, early
//! stopping on the inner validation window. The trees go into the artifact as
//! forust's own JSON (its serde shape reads a missing value back as an
//! `Option`, which a non-self-describing format cannot do).

use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

use super::gbdt_predict::FlatForest;
use super::{Design, Family, ModelError, Target, invalid};

/// Hyper-parameters of the gradient-boosted trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    /// The most boosting rounds; early stopping on the inner validation
    /// window picks how many the challenger keeps.
    pub max_rounds: usize,
    /// Rounds without a better validation RMSE before the search stops.
    pub early_stopping_rounds: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Least hessian weight in a leaf (rows, with squared loss).
    pub min_leaf_weight: f32,
    pub l2: f32,
    /// Share of rows sampled at random for each tree (1 = all).
    pub subsample: f32,
    /// How rows are sampled for each tree: `none` (every row, or `subsample`
    /// of them at random), or `goss` (gradient-based one-side sampling: the
    /// 20 % of rows with the largest gradients plus a random 10 % of the rest,
    /// after `1 / learning_rate` rounds on every row).
    pub sampling: Sampling,
    /// Build histograms row by row from a tiled copy of the binned data
    /// rather than a column at a time (faster with many rows and few columns).
    pub tiled_histograms: bool,
    /// Share of features sampled for each tree (1 = all).
    pub colsample_bytree: f64,
    /// Histogram bins per feature.
    pub bins: u16,
    /// The scale the trees are fitted on: `none` (sales), `log1p` or `sqrt`
    /// (forecasts brought back to sales; see [`super::target`]).
    #[serde(skip_serializing_if = "Target::is_none")]
    pub target: Target,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            max_rounds: 1000,
            early_stopping_rounds: 50,
            learning_rate: 0.05,
            max_depth: 8,
            min_leaf_weight: 20.0,
            l2: 1.0,
            subsample: 1.0,
            sampling: Sampling::None,
            tiled_histograms: true,
            colsample_bytree: 1.0,
            bins: 255,
            target: Target::None,
        }
    }
}

impl GbdtParams {
    pub fn check(&self) -> Result<(), ModelError> {
        if self.max_rounds == 0 || self.max_rounds > 100_000 {
            return Err(invalid("max_rounds", "must be between 1 and 100000"));
        }
        if self.early_stopping_rounds == 0 {
            return Err(invalid("early_stopping_rounds", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid("learning_rate", "must be above 0 and at most 1"));
        }
        if self.max_depth == 0 || self.max_depth > 32 {
            return Err(invalid("max_depth", "must be between 1 and 32"));
        }
        if !(self.min_leaf_weight.is_finite() && self.min_leaf_weight >= 0.0) {
            return Err(invalid("min_leaf_weight", "must be a number >= 0"));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(invalid("l2", "must be a number >= 0"));
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return Err(invalid("subsample", "must be above 0 and at most 1"));
        }
        if self.sampling == Sampling::Goss && self.subsample != 1.0 {
            return Err(invalid("subsample", "must be 1 when sampling is \"goss\""));
        }
        if !(self.colsample_bytree > 0.0 && self.colsample_bytree <= 1.0) {
            return Err(invalid("colsample_bytree", "must be above 0 and at most 1"));
        }
        if self.bins < 2 {
            return Err(invalid("bins", "must be at least 2"));
        }
        Ok(())
    }

    fn sample_method(&self) -> SampleMethod {
        match self.sampling {
            Sampling::Goss => SampleMethod::Goss,
            Sampling::None if self.subsample < 1.0 => SampleMethod::Random,
            Sampling::None => SampleMethod::None,
        }
    }
}

/// Row sampling per tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    None,
    Goss,
}

/// Fitted boosted trees: the rounds kept and forust's booster.
#[derive(Serialize, Deserialize)]
pub struct GbdtModel {
    pub rounds: usize,
    #[serde(with = "booster_json")]
    pub booster: GradientBooster,
    /// The trees flattened for fast prediction, built on first use (not
    /// stored: the artifact's bytes are forust's booster only).
    #[serde(skip)]
    flat: OnceLock<Option<FlatForest>>,
}

impl std::fmt::Debug for GbdtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GbdtModel({} rounds)", self.rounds)
    }
}

fn fit_error(message: impl std::fmt::Display) -> ModelError {
    ModelError::Fit {
        family: Family::Gbdt,
        message: message.to_string(),
    }
}

impl GbdtModel {
    /// Fits up to `max_rounds` rounds; with `validation`, stops once the
    /// validation RMSE has not improved for `early_stopping_rounds` and keeps
    /// the best round count.
    pub fn fit(
        params: &GbdtParams,
        design: &Design,
        target: &[f64],
        validation: Option<(&Design, &[f64])>,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let mut booster = new_booster(params, seed).set_initialize_base_score(true);
        let x = Matrix::new(&design.values, design.rows, design.cols());
        let weights = vec![1.0; design.rows];
        let valid_weights;
        let evaluation = match validation {
            Some((valid_x, valid_y)) => {
                booster = booster
                    .set_evaluation_metric(Some(Metric::RootMeanSquaredError))
                    .set_early_stopping_rounds(Some(params.early_stopping_rounds));
                valid_weights = vec![1.0; valid_x.rows];
                Some(vec![(
                    Matrix::new(&valid_x.values, valid_x.rows, valid_x.cols()),
                    valid_y,
                    valid_weights.as_slice(),
                )])
            }
            None => None,
        };
        booster.fit(&x, target, &weights, evaluation).map_err(fit_error)?;
        let rounds = booster
            .best_iteration
            .map_or(booster.trees.len(), |best| best + 1);
        booster.trees.truncate(rounds);
        booster.best_iteration = None;
        booster.prediction_iteration = None;
        booster.evaluation_history = None;
        Ok(Self {
            rounds,
            booster,
            flat: OnceLock::new(),
        })
    }

    /// Boosting carried on: `rounds` more trees, fitted on `design`'s
    /// residuals against this model and appended to it. With squared loss
    /// the gradients are the residuals, so this is the fit going on from
    /// where it stopped, on these rows. `params` must be the ones this model
    /// was fitted with (its learning rate is in its leaves).
    pub fn boost_on(
        mut self,
        params: &GbdtParams,
        design: &Design,
        target: &[f64],
        rounds: usize,
        seed: u64,
    ) -> Result<Self, ModelError> {
        if rounds == 0 || design.rows == 0 {
            return Ok(self);
        }
        let margin = self.predict(design);
        let residuals: Vec<f64> = target.iter().zip(&margin).map(|(y, m)| y - m).collect();
        let mut delta = new_booster(params, seed)
            .set_iterations(rounds)
            .set_base_score(0.0)
            .set_initialize_base_score(false);
        let x = Matrix::new(&design.values, design.rows, design.cols());
        delta
            .fit(&x, &residuals, &vec![1.0; design.rows], None)
            .map_err(fit_error)?;
        self.booster.trees.append(&mut delta.trees);
        self.booster.iterations = self.booster.trees.len();
        self.rounds = self.booster.trees.len();
        self.flat = OnceLock::new();
        Ok(self)
    }

    /// Whether [`Self::predict`] on `cols` features takes the flat forest
    /// (else forust's own predict: same floats, slower).
    pub fn predicts_flat(&self, cols: usize) -> bool {
        self.flat_forest(cols).is_some_and(|f| f.cols() == cols)
    }

    /// The flat forest, flattened for `cols` features on first use (None
    /// when it cannot give forust's exact floats).
    fn flat_forest(&self, cols: usize) -> Option<&FlatForest> {
        self.flat
            .get_or_init(|| FlatForest::new(&self.booster, cols))
            .as_ref()
    }

    pub fn predict(&self, design: &Design) -> Vec<f64> {
        if design.rows == 0 {
            return Vec::new();
        }
        // The same floats as forust's predict (gbdt_predict's test), faster.
        match self
            .flat_forest(design.cols())
            .and_then(|forest| forest.predict(design))
        {
            Some(predictions) => predictions,
            None => self
                .booster
                .predict(&Matrix::new(&design.values, design.rows, design.cols()), true),
        }
    }
}

/// A booster with `params` (squared loss), not yet fitted.
fn new_booster(params: &GbdtParams, seed: u64) -> GradientBooster {
    GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(params.max_rounds)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(params.max_depth)
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_l2(params.l2)
        .set_subsample(params.subsample)
        .set_sample_method(params.sample_method())
        .set_tiled_histograms(params.tiled_histograms)
        .set_colsample_bytree(params.colsample_bytree)
        .set_nbins(params.bins)
        .set_seed(seed)
}

/// The booster as forust's JSON text inside the artifact.
mod booster_json {
    use forust_ml::gradientbooster::GradientBooster;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(booster: &GradientBooster, serializer: S) -> Result<S::Ok, S::Error> {
        let json = booster.json_dump().map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&json)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<GradientBooster, D::Error> {
        let json = String::deserialize(deserializer)?;
        GradientBooster::from_json(&json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 3x + noise over 600 rows, x with some values missing.
    fn noisy(rows: usize, offset: usize) -> (Design, Vec<f64>) {
        let x: Vec<f64> = (0..rows)
            .map(|i| {
                if (i + offset).is_multiple_of(11) {
                    f64::NAN
                } else {
                    ((i + offset) % 23) as f64
                }
            })
            .collect();
        let noise = |i: usize| (((i + offset) * 7919) % 13) as f64 - 6.0;
        let target = x
            .iter()
            .enumerate()
            .map(|(i, v)| if v.is_nan() { 30.0 } else { 3.0 * v } + noise(i))
            .collect();
        let design = Design {
            names: vec!["x".into()],
            rows,
            values: x,
        };
        (design, target)
    }

    #[test]
    fn early_stopping_keeps_fewer_rounds_and_the_refit_is_deterministic() {
        let (train_x, train_y) = noisy(600, 0);
        let (valid_x, valid_y) = noisy(200, 600);
        let params = GbdtParams {
            max_rounds: 400,
            early_stopping_rounds: 20,
            learning_rate: 0.3,
            ..GbdtParams::default()
        };
        let stopped = GbdtModel::fit(&params, &train_x, &train_y, Some((&valid_x, &valid_y)), 1).unwrap();
        assert!(
            stopped.rounds < 400,
            "early stopping kept {} rounds",
            stopped.rounds
        );
        assert_eq!(stopped.booster.trees.len(), stopped.rounds);

        let refit_params = GbdtParams {
            max_rounds: stopped.rounds,
            ..params
        };
        let a = GbdtModel::fit(&refit_params, &train_x, &train_y, None, 1).unwrap();
        let b = GbdtModel::fit(&refit_params, &train_x, &train_y, None, 1).unwrap();
        let bytes = |m: &GbdtModel| bincode::serde::encode_to_vec(m, bincode::config::standard()).unwrap();
        assert_eq!(
            bytes(&a),
            bytes(&b),
            "same data and seed must give the same bytes"
        );

        let (decoded, _): (GbdtModel, usize) =
            bincode::serde::decode_from_slice(&bytes(&a), bincode::config::standard()).unwrap();
        assert_eq!(
            a.predict(&valid_x),
            decoded.predict(&valid_x),
            "a round trip changes nothing"
        );
        let missing = valid_x.values.iter().position(|v| v.is_nan()).unwrap();
        let predicted = a.predict(&valid_x)[missing];
        assert!(
            (predicted - 30.0).abs() < 8.0,
            "a missing x predicts about 30, got {predicted}"
        );
    }

    #[test]
    fn boosting_on_carries_the_fit_on_from_where_it_stopped() {
        let (x, y) = noisy(600, 0);
        let params = |rounds| GbdtParams {
            max_rounds: rounds,
            learning_rate: 0.1,
            max_depth: 3,
            ..GbdtParams::default()
        };
        let rmse = |m: &GbdtModel| {
            let p = m.predict(&x);
            (p.iter().zip(&y).map(|(p, y)| (p - y).powi(2)).sum::<f64>() / y.len() as f64).sqrt()
        };
        let short = GbdtModel::fit(&params(20), &x, &y, None, 3).unwrap();
        let long = GbdtModel::fit(&params(50), &x, &y, None, 3).unwrap();
        let before = rmse(&short);
        let on = short.boost_on(&params(20), &x, &y, 30, 3).unwrap();
        assert_eq!((on.rounds, on.booster.trees.len()), (50, 50));
        // Squared loss: the residuals are the gradients, so 20 + 30 rounds
        // are the 50-round fit up to float rounding.
        let (on_p, long_p) = (on.predict(&x), long.predict(&x));
        let most = on_p
            .iter()
            .zip(&long_p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(most < 1e-6, "the continued fit is off the 50-round fit by {most}");
        assert!(rmse(&on) < 0.9 * before, "{} against {before}", rmse(&on));

        // Only other rows: the first 20 trees are kept as they were.
        let (x2, y2) = noisy(300, 7);
        let base = GbdtModel::fit(&params(20), &x, &y, None, 3).unwrap();
        let first = base.booster.trees[..20]
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect::<Vec<_>>();
        let on = base.boost_on(&params(20), &x2, &y2, 5, 3).unwrap();
        assert_eq!(on.booster.trees.len(), 25);
        let kept = on.booster.trees[..20]
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(first, kept);
        let (back, _): (GbdtModel, usize) = bincode::serde::decode_from_slice(
            &bincode::serde::encode_to_vec(&on, bincode::config::standard()).unwrap(),
            bincode::config::standard(),
        )
        .unwrap();
        assert_eq!(back.predict(&x2), on.predict(&x2), "a round trip changes nothing");
    }

    #[test]
    fn row_sampling_is_applied_and_seeded() {
        let (x, y) = noisy(600, 0);
        let fit = |params: &GbdtParams, seed| GbdtModel::fit(params, &x, &y, None, seed).unwrap().predict(&x);
        let base = GbdtParams {
            max_rounds: 30,
            learning_rate: 0.3,
            ..GbdtParams::default()
        };
        let all_rows = fit(&base, 1);
        for sampled in [
            GbdtParams {
                subsample: 0.5,
                ..base.clone()
            },
            GbdtParams {
                sampling: Sampling::Goss,
                ..base.clone()
            },
            GbdtParams {
                tiled_histograms: false,
                subsample: 0.5,
                ..base.clone()
            },
        ] {
            let first = fit(&sampled, 1);
            assert_ne!(first, all_rows, "{sampled:?} must sample rows");
            assert_eq!(
                first,
                fit(&sampled, 1),
                "{sampled:?}: the same seed, the same trees"
            );
        }
    }

    #[test]
    fn params_are_checked() {
        for (params, key) in [
            (
                GbdtParams {
                    max_rounds: 0,
                    ..Default::default()
                },
                "max_rounds",
            ),
            (
                GbdtParams {
                    learning_rate: 0.0,
                    ..Default::default()
                },
                "learning_rate",
            ),
            (
                GbdtParams {
                    subsample: 1.5,
                    ..Default::default()
                },
                "subsample",
            ),
            (
                GbdtParams {
                    bins: 1,
                    ..Default::default()
                },
                "bins",
            ),
            (
                GbdtParams {
                    sampling: Sampling::Goss,
                    subsample: 0.5,
                    ..Default::default()
                },
                "subsample",
            ),
        ] {
            let err = params.check().unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
        }
        assert!(GbdtParams::default().check().is_ok());
    }
}

//! Forecast models behind one interface: hyper-parameters checked before any
//! fit (as in linfa), and a separate fitted type that serializes into the
//! artifact. Families: a seasonal-naive baseline, an elastic net, a
//! smartcore random forest and forust-ml gradient-boosted trees; a new family
//! adds a [`Family`] variant, its params, and a [`FittedModel`] variant.

pub mod artifact;
pub mod design;
pub mod gbdt;
pub mod gbdt_configs;
mod gbdt_predict;
pub mod linear;
pub mod target;

use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;

pub use artifact::{ARTIFACT_FORMAT_VERSION, Artifact, ArtifactError};
pub use design::{Design, Encoder};
pub use gbdt::{GbdtModel, GbdtParams};
pub use gbdt_configs::GbdtConfig;
pub use linear::LinearModel;
pub use target::{Target, TransformedGbdt};

use crate::features::{lag_name, rolling_mean_name};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{key}: {problem}")]
    InvalidParam { key: String, problem: String },
    #[error("{family} needs the feature {feature} (add it to features.lags)")]
    MissingFeature { family: Family, feature: String },
    #[error("cannot fit {family}: {message}")]
    Fit { family: Family, message: String },
    #[error("cannot predict with {family}: {message}")]
    Predict { family: Family, message: String },
}

fn invalid(key: &str, problem: &str) -> ModelError {
    ModelError::InvalidParam {
        key: key.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    SeasonalNaive,
    ElasticNet,
    RandomForest,
    Gbdt,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::SeasonalNaive => "seasonal_naive",
            Family::ElasticNet => "elastic_net",
            Family::RandomForest => "random_forest",
            Family::Gbdt => "gbdt",
        })
    }
}

/// Elastic net (L1 + L2 penalised least squares) on standardised features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticNetParams {
    /// Overall penalty strength (alpha).
    pub penalty: f64,
    /// Share of the penalty that is L1 (0 = ridge, 1 = lasso).
    pub l1_ratio: f64,
    pub max_iterations: u32,
    pub tolerance: f64,
}

impl Default for ElasticNetParams {
    fn default() -> Self {
        Self {
            penalty: 0.001,
            l1_ratio: 0.1,
            max_iterations: 1000,
            tolerance: 1e-4,
        }
    }
}

impl ElasticNetParams {
    pub fn check(&self) -> Result<(), ModelError> {
        if !(self.penalty.is_finite() && self.penalty >= 0.0) {
            return Err(invalid("penalty", "must be a number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(invalid("l1_ratio", "must be between 0 and 1"));
        }
        if self.max_iterations == 0 {
            return Err(invalid("max_iterations", "must be at least 1"));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(invalid("tolerance", "must be a number > 0"));
        }
        Ok(())
    }
}

/// smartcore random forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Features tried at each split; 0 means a third of them.
    pub features_per_split: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            trees: 30,
            max_depth: 14,
            min_samples_leaf: 5,
            features_per_split: 0,
        }
    }
}

impl ForestParams {
    pub fn check(&self) -> Result<(), ModelError> {
        if self.trees == 0 || self.trees > 1000 {
            return Err(invalid("trees", "must be between 1 and 1000"));
        }
        if self.max_depth == 0 {
            return Err(invalid("max_depth", "must be at least 1"));
        }
        if self.min_samples_leaf == 0 {
            return Err(invalid("min_samples_leaf", "must be at least 1"));
        }
        Ok(())
    }
}

/// Hyper-parameters of every family, as configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelParams {
    pub elastic_net: ElasticNetParams,
    pub random_forest: ForestParams,
    pub gbdt: GbdtParams,
}

/// A trained model: what goes into the artifact. New variants go at the
/// end: bincode stores the variant's index, so stored artifacts keep theirs.
#[derive(Debug, Serialize, Deserialize)]
pub enum FittedModel {
    SeasonalNaive(SeasonalNaiveModel),
    ElasticNet(LinearModel),
    RandomForest(ForestModel),
    /// Boosted trees on sales as they are (`target = "none"`).
    Gbdt(Box<GbdtModel>),
    /// Boosted trees on a transformed target (`log1p`, `sqrt`).
    GbdtTransformed(Box<TransformedGbdt>),
}

impl FittedModel {
    pub fn family(&self) -> Family {
        match self {
            FittedModel::SeasonalNaive(_) => Family::SeasonalNaive,
            FittedModel::ElasticNet(_) => Family::ElasticNet,
            FittedModel::RandomForest(_) => Family::RandomForest,
            FittedModel::Gbdt(_) | FittedModel::GbdtTransformed(_) => Family::Gbdt,
        }
    }

    /// `params` with what this fit chose on its validation window (the
    /// boosting rounds early stopping kept), for the refit on all training
    /// rows.
    pub fn tuned(&self, params: &ModelParams) -> ModelParams {
        let mut tuned = params.clone();
        if let Some(rounds) = self.rounds() {
            tuned.gbdt.max_rounds = rounds;
        }
        tuned
    }

    /// The boosting rounds the fit kept (gradient-boosted trees only).
    pub fn rounds(&self) -> Option<usize> {
        match self {
            FittedModel::Gbdt(m) => Some(m.rounds),
            FittedModel::GbdtTransformed(m) => Some(m.model.rounds),
            _ => None,
        }
    }

    /// Boosted trees carried on by `rounds` trees fitted on `design` (see
    /// [`GbdtModel::boost_on`]); another family is refused.
    pub fn boost_on(
        self,
        params: &ModelParams,
        design: &Design,
        target: &[f64],
        rounds: usize,
        seed: u64,
    ) -> Result<Self, ModelError> {
        Ok(match self {
            FittedModel::Gbdt(m) => FittedModel::Gbdt(Box::new(m.boost_on(
                &params.gbdt,
                design,
                target,
                rounds,
                seed,
            )?)),
            FittedModel::GbdtTransformed(m) => FittedModel::GbdtTransformed(Box::new(m.boost_on(
                &params.gbdt,
                design,
                target,
                rounds,
                seed,
            )?)),
            other => {
                return Err(ModelError::Fit {
                    family: other.family(),
                    message: "only boosted trees can be carried on".into(),
                });
            }
        })
    }

    /// Predictions for every row of `design`, never negative.
    pub fn predict(&self, design: &Design) -> Result<Vec<f64>, ModelError> {
        let raw = match self {
            FittedModel::SeasonalNaive(m) => m.predict(design)?,
            FittedModel::ElasticNet(m) => m.predict(design),
            FittedModel::RandomForest(m) => m.predict(design)?,
            FittedModel::Gbdt(m) => m.predict(design),
            FittedModel::GbdtTransformed(m) => m.predict(design),
        };
        Ok(raw
            .into_iter()
            .map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 })
            .collect())
    }
}

/// Checks `family`'s hyper-parameters and that its features exist.
pub fn check(family: Family, params: &ModelParams, names: &[String]) -> Result<(), ModelError> {
    match family {
        Family::SeasonalNaive => {
            for feature in SeasonalNaiveModel::needs() {
                if !names.contains(&feature) {
                    return Err(ModelError::MissingFeature { family, feature });
                }
            }
            Ok(())
        }
        Family::ElasticNet => params.elastic_net.check(),
        Family::RandomForest => params.random_forest.check(),
        Family::Gbdt => params.gbdt.check(),
    }
}

/// Fits `family` on `design` and `target`, after checking its parameters.
/// With `validation` rows, a family that tunes itself (the boosting rounds of
/// `gbdt`) stops early on them; see [`FittedModel::tuned`].
pub fn fit(
    family: Family,
    params: &ModelParams,
    design: &Design,
    target: &[f64],
    validation: Option<(&Design, &[f64])>,
    seed: u64,
) -> Result<FittedModel, ModelError> {
    check(family, params, &design.names)?;
    if design.rows == 0 {
        return Err(ModelError::Fit {
            family,
            message: "no training rows".into(),
        });
    }
    Ok(match family {
        Family::SeasonalNaive => FittedModel::SeasonalNaive(SeasonalNaiveModel::fit(design)),
        Family::ElasticNet => FittedModel::ElasticNet(LinearModel::fit(&params.elastic_net, design, target)?),
        Family::RandomForest => {
            FittedModel::RandomForest(ForestModel::fit(&params.random_forest, design, target, seed)?)
        }
        Family::Gbdt if params.gbdt.target.is_none() => FittedModel::Gbdt(Box::new(GbdtModel::fit(
            &params.gbdt,
            design,
            target,
            validation,
            seed,
        )?)),
        Family::Gbdt => FittedModel::GbdtTransformed(Box::new(TransformedGbdt::fit(
            &params.gbdt,
            design,
            target,
            validation,
            seed,
        )?)),
    })
}

/// Same weekday one and two weeks back (their mean, or whichever exists),
/// falling back to the 28-day mean, then the series mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeasonalNaiveModel {
    pub sources: Vec<String>,
}

impl SeasonalNaiveModel {
    fn needs() -> Vec<String> {
        vec![lag_name(7), lag_name(14)]
    }

    fn fit(design: &Design) -> Self {
        let mut sources = Self::needs();
        for fallback in [rolling_mean_name(28), crate::features::SERIES_MEAN.to_string()] {
            if design.names.contains(&fallback) {
                sources.push(fallback);
            }
        }
        Self { sources }
    }

    fn predict(&self, design: &Design) -> Result<Vec<f64>, ModelError> {
        let columns: Vec<&[f64]> = self
            .sources
            .iter()
            .map(|name| {
                design.column_named(name).ok_or_else(|| ModelError::Predict {
                    family: Family::SeasonalNaive,
                    message: format!("the feature {name} is missing"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((0..design.rows)
            .map(|i| {
                let (a, b) = (columns[0][i], columns[1][i]);
                match (a.is_finite(), b.is_finite()) {
                    (true, true) => (a + b) / 2.0,
                    (true, false) => a,
                    (false, true) => b,
                    (false, false) => columns[2..]
                        .iter()
                        .map(|c| c[i])
                        .find(|v| v.is_finite())
                        .unwrap_or(0.0),
                }
            })
            .collect())
    }
}

type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A random forest over imputed features.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForestModel {
    pub fill: Vec<f64>,
    pub forest: Forest,
}

impl ForestModel {
    fn fit(params: &ForestParams, design: &Design, target: &[f64], seed: u64) -> Result<Self, ModelError> {
        let fill = design::column_means(design);
        let fit_error = |message: String| ModelError::Fit {
            family: Family::RandomForest,
            message,
        };
        let x = DenseMatrix::new(design.rows, design.cols(), design::imputed(design, &fill), true)
            .map_err(|e| fit_error(e.to_string()))?;
        let per_split = if params.features_per_split == 0 {
            design.cols().div_ceil(3)
        } else {
            params.features_per_split.min(design.cols())
        };
        let smartcore_params = RandomForestRegressorParameters::default()
            .with_n_trees(params.trees)
            .with_max_depth(params.max_depth)
            .with_min_samples_leaf(params.min_samples_leaf)
            .with_m(per_split)
            .with_seed(seed);
        let forest =
            Forest::fit(&x, &target.to_vec(), smartcore_params).map_err(|e| fit_error(e.to_string()))?;
        Ok(Self { fill, forest })
    }

    fn predict(&self, design: &Design) -> Result<Vec<f64>, ModelError> {
        let predict_error = |message: String| ModelError::Predict {
            family: Family::RandomForest,
            message,
        };
        if design.rows == 0 {
            return Ok(Vec::new());
        }
        let x = DenseMatrix::new(
            design.rows,
            design.cols(),
            design::imputed(design, &self.fill),
            true,
        )
        .map_err(|e| predict_error(e.to_string()))?;
        self.forest.predict(&x).map_err(|e| predict_error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(rows: usize) -> (Design, Vec<f64>) {
        let names = vec!["lag_7".into(), "lag_14".into(), "x".into()];
        let x: Vec<f64> = (0..rows).map(|i| (i % 17) as f64).collect();
        let mut values = x.iter().map(|v| v * 2.0).collect::<Vec<_>>();
        values.extend(x.iter().map(|v| v * 2.0 + 1.0));
        values.extend(x.iter().copied());
        let target = x.iter().map(|v| 3.0 * v + 5.0).collect();
        (Design { names, rows, values }, target)
    }

    #[test]
    fn params_are_checked_before_fit() {
        let (design, target) = toy(50);
        let mut params = ModelParams::default();
        params.elastic_net.l1_ratio = 1.5;
        let err = fit(Family::ElasticNet, &params, &design, &target, None, 1).unwrap_err();
        assert!(err.to_string().contains("l1_ratio"), "{err}");
        params = ModelParams::default();
        params.random_forest.trees = 0;
        assert!(fit(Family::RandomForest, &params, &design, &target, None, 1).is_err());
        let no_lags = Design {
            names: vec!["x".into()],
            rows: 1,
            values: vec![1.0],
        };
        assert!(matches!(
            check(Family::SeasonalNaive, &params, &no_lags.names),
            Err(ModelError::MissingFeature { .. })
        ));
    }

    #[test]
    fn models_learn_a_simple_relation() {
        let (design, target) = toy(400);
        let params = ModelParams::default();
        for family in [Family::ElasticNet, Family::RandomForest, Family::Gbdt] {
            let model = fit(family, &params, &design, &target, None, 7).unwrap();
            let predicted = model.predict(&design).unwrap();
            let mae: f64 = predicted
                .iter()
                .zip(&target)
                .map(|(p, y)| (p - y).abs())
                .sum::<f64>()
                / 400.0;
            assert!(mae < 1.0, "{family}: mean absolute error {mae}");
        }
        let naive = fit(Family::SeasonalNaive, &params, &design, &target, None, 7).unwrap();
        assert_eq!(naive.predict(&design).unwrap()[3], (6.0 + 7.0) / 2.0);
    }
}

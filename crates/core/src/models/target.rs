//! The scale the boosted trees are fitted on (`training.gbdt.target`, or a
//! `training.gbdt_configs` entry's `target`): sales as they are, or
//! ln(1 + sales) or sqrt(sales), with forecasts brought back to sales. A
//! transformed fit is its own [`super::FittedModel`] variant, so an artifact
//! stored before transforms existed reads back, and forecasts, exactly as it
//! did.

use serde::{Deserialize, Serialize};

use super::{Design, GbdtModel, GbdtParams, ModelError};

/// The scale of the boosted trees' target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Sales as they are (squared loss on sales).
    #[default]
    None,
    /// ln(1 + sales); forecasts exp(p) - 1.
    Log1p,
    /// sqrt(sales); forecasts p^2 (p clamped at 0 first).
    Sqrt,
}

/// The values `target` takes, for error messages.
pub const TARGETS: &str = "\"none\", \"log1p\" or \"sqrt\"";

impl Target {
    pub fn is_none(&self) -> bool {
        *self == Target::None
    }

    /// The target named `name` (`none`, `log1p`, `sqrt`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Target::None),
            "log1p" => Some(Target::Log1p),
            "sqrt" => Some(Target::Sqrt),
            _ => None,
        }
    }

    /// Sales onto this scale; negative sales count as 0 (neither scale
    /// takes them).
    pub fn forward(self, y: f64) -> f64 {
        match self {
            Target::None => y,
            Target::Log1p => y.max(0.0).ln_1p(),
            Target::Sqrt => y.max(0.0).sqrt(),
        }
    }

    /// A prediction on this scale back to sales (never negative for the
    /// transforms; an exponent above 700 is held there rather than overflow).
    pub fn inverse(self, p: f64) -> f64 {
        match self {
            Target::None => p,
            Target::Log1p => p.min(700.0).exp_m1().max(0.0),
            Target::Sqrt => p.max(0.0).powi(2),
        }
    }

    fn forward_all(self, y: &[f64]) -> Vec<f64> {
        y.iter().map(|&v| self.forward(v)).collect()
    }
}

/// Boosted trees fitted on a transformed target: the scale and the trees.
#[derive(Debug, Serialize, Deserialize)]
pub struct TransformedGbdt {
    pub target: Target,
    pub model: GbdtModel,
}

impl TransformedGbdt {
    /// Fits the trees on `params.target`'s scale (early stopping on the
    /// validation RMSE on that scale).
    pub fn fit(
        params: &GbdtParams,
        design: &Design,
        target: &[f64],
        validation: Option<(&Design, &[f64])>,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let scale = params.target;
        let y = scale.forward_all(target);
        let valid_y = validation.map(|(_, y)| scale.forward_all(y));
        let validation = validation.zip(valid_y.as_deref()).map(|((x, _), y)| (x, y));
        Ok(Self {
            target: scale,
            model: GbdtModel::fit(params, design, &y, validation, seed)?,
        })
    }

    /// Boosting carried on, on this model's scale (see
    /// [`GbdtModel::boost_on`]).
    pub fn boost_on(
        self,
        params: &GbdtParams,
        design: &Design,
        target: &[f64],
        rounds: usize,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let y = self.target.forward_all(target);
        Ok(Self {
            target: self.target,
            model: self.model.boost_on(params, design, &y, rounds, seed)?,
        })
    }

    /// Forecasts in sales.
    pub fn predict(&self, design: &Design) -> Vec<f64> {
        self.model
            .predict(design)
            .into_iter()
            .map(|p| self.target.inverse(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transforms_round_trip_and_refuse_nothing_negative() {
        for target in [Target::None, Target::Log1p, Target::Sqrt] {
            for y in [0.0, 0.5, 1.0, 7.0, 1234.5, 1e7] {
                let back = target.inverse(target.forward(y));
                assert!((back - y).abs() <= 1e-9 * y.max(1.0), "{target:?} {y}: {back}");
            }
        }
        assert_eq!(Target::Log1p.forward(-5.0), 0.0);
        assert_eq!(Target::Sqrt.forward(-5.0), 0.0);
        assert_eq!(Target::Log1p.inverse(-3.0), 0.0, "exp(p) - 1 held at 0");
        assert_eq!(Target::Sqrt.inverse(-3.0), 0.0, "p clamped at 0 before squaring");
        assert!(Target::Log1p.inverse(1e6).is_finite());
        assert_eq!(Target::parse("log1p"), Some(Target::Log1p));
        assert_eq!(Target::parse("none"), Some(Target::None));
        assert_eq!(Target::parse("log"), None);
    }

    /// Multiplicative sales: a store level times a weekday effect, so ln(1 +
    /// sales) is close to additive.
    fn multiplicative(rows: usize) -> (Design, Vec<f64>) {
        let store: Vec<f64> = (0..rows).map(|i| (i % 7) as f64).collect();
        let weekday: Vec<f64> = (0..rows).map(|i| (i / 7 % 5) as f64).collect();
        let y = store
            .iter()
            .zip(&weekday)
            .map(|(s, w)| 10.0 * (1.0 + s) * (1.0 + 0.5 * w))
            .collect();
        let mut values = store;
        values.extend(weekday);
        let design = Design {
            names: vec!["store".into(), "weekday".into()],
            rows,
            values,
        };
        (design, y)
    }

    #[test]
    fn a_log_fit_forecasts_sales_and_survives_bincode() {
        let (x, y) = multiplicative(700);
        let params = GbdtParams {
            max_rounds: 200,
            learning_rate: 0.3,
            min_leaf_weight: 1.0,
            target: Target::Log1p,
            ..GbdtParams::default()
        };
        let fitted = TransformedGbdt::fit(&params, &x, &y, Some((&x, &y)), 3).unwrap();
        assert_eq!(fitted.target, Target::Log1p);
        let predicted = fitted.predict(&x);
        let raw = fitted.model.predict(&x);
        assert!(raw.iter().all(|p| *p < 10.0), "the trees fit ln(1 + sales)");
        for (p, a) in predicted.iter().zip(&y) {
            assert!(
                (p - a).abs() < 0.05 * a,
                "forecast {p} against {a}: on the sales scale"
            );
        }
        let bytes = bincode::serde::encode_to_vec(&fitted, bincode::config::standard()).unwrap();
        let (back, _): (TransformedGbdt, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back.target, Target::Log1p);
        assert_eq!(back.predict(&x), predicted);
    }

    /// The artifact's model enum as it was before transforms existed.
    #[derive(Serialize, Deserialize)]
    #[allow(dead_code)]
    enum FittedModelBefore {
        SeasonalNaive(super::super::SeasonalNaiveModel),
        ElasticNet(super::super::LinearModel),
        RandomForest(super::super::ForestModel),
        Gbdt(Box<GbdtModel>),
    }

    #[test]
    fn a_model_stored_before_transforms_reads_back_and_forecasts_the_same() {
        use super::super::{Family, FittedModel, ModelParams, fit};
        let (x, y) = multiplicative(500);
        let config = bincode::config::standard();
        let params = ModelParams {
            gbdt: GbdtParams {
                max_rounds: 40,
                ..GbdtParams::default()
            },
            ..ModelParams::default()
        };
        let trees = GbdtModel::fit(&params.gbdt, &x, &y, None, 5).unwrap();
        let expected = trees.predict(&x);
        let old_bytes =
            bincode::serde::encode_to_vec(FittedModelBefore::Gbdt(Box::new(trees)), config).unwrap();
        let (read, used): (FittedModel, usize) =
            bincode::serde::decode_from_slice(&old_bytes, config).unwrap();
        assert_eq!(used, old_bytes.len());
        assert!(matches!(read, FittedModel::Gbdt(_)));
        assert_eq!(
            read.predict(&x).unwrap(),
            expected.iter().map(|p| p.max(0.0)).collect::<Vec<_>>()
        );
        assert_eq!(bincode::serde::encode_to_vec(&read, config).unwrap(), old_bytes);
        // A fit on sales as they are is still stored as before, byte for byte.
        let now = fit(Family::Gbdt, &params, &x, &y, None, 5).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&now, config).unwrap(), old_bytes);

        let log = ModelParams {
            gbdt: GbdtParams {
                target: Target::Log1p,
                ..params.gbdt.clone()
            },
            ..params
        };
        let transformed = fit(Family::Gbdt, &log, &x, &y, None, 5).unwrap();
        assert_eq!(transformed.family(), Family::Gbdt);
        assert_eq!(transformed.rounds(), Some(40));
        assert_eq!(
            transformed.tuned(&log).gbdt.target,
            Target::Log1p,
            "the refit keeps the scale"
        );
        let bytes = bincode::serde::encode_to_vec(&transformed, config).unwrap();
        let (back, _): (FittedModel, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert!(matches!(&back, FittedModel::GbdtTransformed(m) if m.target == Target::Log1p));
        assert_eq!(back.predict(&x).unwrap(), transformed.predict(&x).unwrap());
        assert!(
            bincode::serde::decode_from_slice::<FittedModelBefore, _>(&bytes, config).is_err(),
            "an older build cannot mistake it for trees on sales"
        );
    }
}

//! The elastic net: least squares with L1 and L2 penalties on standardised,
//! mean-imputed features, solved by cyclic coordinate descent on the Gram
//! matrix. It minimises linfa's (and scikit-learn's) objective with the same
//! update, `(1/2n)|y - Xw - b|^2 + a*r*|w|_1 + a*(1-r)/2*|w|^2`, but reads
//! the n rows once to build `X'X/n` and `X'y/n`, so each pass costs
//! O(features^2) instead of O(rows x features): a large window's fit is one
//! pass over the data rather than hundreds.

use serde::{Deserialize, Serialize};

use super::design::{self, Design};
use super::{ElasticNetParams, Family, ModelError};

/// A fitted linear model over standardised, imputed features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearModel {
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

impl LinearModel {
    pub fn fit(params: &ElasticNetParams, design: &Design, target: &[f64]) -> Result<Self, ModelError> {
        if target.iter().any(|y| !y.is_finite()) {
            return Err(ModelError::Fit {
                family: Family::ElasticNet,
                message: "the target has a missing or non-finite value".into(),
            });
        }
        let means = design::column_means(design);
        let mut values = design::imputed(design, &means);
        let rows = design.rows;
        let scales: Vec<f64> = (0..design.cols())
            .map(|j| {
                let column = &values[j * rows..(j + 1) * rows];
                let var = column.iter().map(|v| (v - means[j]).powi(2)).sum::<f64>() / rows as f64;
                if var > 1e-12 { var.sqrt() } else { 1.0 }
            })
            .collect();
        standardise(&mut values, rows, &means, &scales);
        let moments = Moments::new(&values, rows, target);
        let coefficients = coordinate_descent(&moments, params);
        let intercept = moments.target_mean
            - coefficients
                .iter()
                .zip(&moments.column_means)
                .map(|(w, m)| w * m)
                .sum::<f64>();
        Ok(Self {
            means,
            scales,
            coefficients,
            intercept,
        })
    }

    pub fn predict(&self, design: &Design) -> Vec<f64> {
        let mut values = design::imputed(design, &self.means);
        standardise(&mut values, design.rows, &self.means, &self.scales);
        let mut out = vec![self.intercept; design.rows];
        for (j, coefficient) in self.coefficients.iter().enumerate() {
            let column = &values[j * design.rows..(j + 1) * design.rows];
            for (o, v) in out.iter_mut().zip(column) {
                *o += coefficient * v;
            }
        }
        out
    }
}

fn standardise(values: &mut [f64], rows: usize, means: &[f64], scales: &[f64]) {
    for (j, column) in values.chunks_mut(rows.max(1)).enumerate().take(means.len()) {
        for v in column {
            *v = (*v - means[j]) / scales[j];
        }
    }
}

/// The centred second moments of the data: all coordinate descent needs.
struct Moments {
    features: usize,
    /// `X'X / n` of the centred columns, row-major `features x features`.
    gram: Vec<f64>,
    /// `X'y / n` of the centred columns and target.
    cross: Vec<f64>,
    column_means: Vec<f64>,
    target_mean: f64,
}

impl Moments {
    fn new(values: &[f64], rows: usize, target: &[f64]) -> Self {
        let features = values.len() / rows.max(1);
        let n = rows as f64;
        let column = |j: usize| &values[j * rows..(j + 1) * rows];
        let column_means: Vec<f64> = (0..features).map(|j| column(j).iter().sum::<f64>() / n).collect();
        let target_mean = target.iter().sum::<f64>() / n;
        let centred_dot = |a: &[f64], ma: f64, b: &[f64], mb: f64| {
            a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / n
        };
        let mut gram = vec![0.0; features * features];
        for j in 0..features {
            for k in j..features {
                let g = centred_dot(column(j), column_means[j], column(k), column_means[k]);
                gram[j * features + k] = g;
                gram[k * features + j] = g;
            }
        }
        let cross = (0..features)
            .map(|j| centred_dot(column(j), column_means[j], target, target_mean))
            .collect();
        Self {
            features,
            gram,
            cross,
            column_means,
            target_mean,
        }
    }
}

/// Cyclic coordinate descent: each coefficient in turn set to its
/// soft-thresholded least-squares value given the others, until the largest
/// change in a pass is below `tolerance` times the largest coefficient.
fn coordinate_descent(m: &Moments, params: &ElasticNetParams) -> Vec<f64> {
    let p = m.features;
    let l1 = params.penalty * params.l1_ratio;
    let l2 = params.penalty * (1.0 - params.l1_ratio);
    let mut w = vec![0.0; p];
    for _ in 0..params.max_iterations {
        let (mut w_max, mut change_max) = (0.0f64, 0.0f64);
        for j in 0..p {
            let g_jj = m.gram[j * p + j];
            if g_jj <= 0.0 {
                continue;
            }
            let old = w[j];
            let row = &m.gram[j * p..(j + 1) * p];
            let fitted: f64 = row.iter().zip(&w).map(|(g, w)| g * w).sum();
            let rho = m.cross[j] - fitted + g_jj * old;
            w[j] = rho.signum() * (rho.abs() - l1).max(0.0) / (g_jj + l2);
            change_max = change_max.max((w[j] - old).abs());
            w_max = w_max.max(w[j].abs());
        }
        if w_max == 0.0 || change_max / w_max < params.tolerance {
            break;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use linfa::prelude::*;
    use ndarray::{ArrayView1, ArrayView2, ShapeBuilder};

    use super::*;

    /// Correlated columns (a series' lags are) with some missing values.
    fn data(rows: usize) -> (Design, Vec<f64>) {
        let base: Vec<f64> = (0..rows).map(|i| ((i * 37) % 101) as f64).collect();
        let mut values = Vec::new();
        for (j, scale) in [1.0, 0.9, 0.5, 0.0].iter().enumerate() {
            values.extend(base.iter().enumerate().map(|(i, b)| {
                if (i + j).is_multiple_of(13) {
                    f64::NAN
                } else {
                    scale * b + ((i * (j + 3)) % 7) as f64
                }
            }));
        }
        let target = base
            .iter()
            .enumerate()
            .map(|(i, b)| 2.0 * b + 50.0 + (i % 5) as f64)
            .collect();
        let names = (0..4).map(|j| format!("x{j}")).collect();
        (Design { names, rows, values }, target)
    }

    #[test]
    fn solves_the_same_problem_as_linfa() {
        let (design, target) = data(3000);
        for params in [
            ElasticNetParams::default(),
            ElasticNetParams {
                penalty: 0.5,
                l1_ratio: 0.7,
                ..ElasticNetParams::default()
            },
        ] {
            let ours = LinearModel::fit(&params, &design, &target).unwrap();
            // linfa on the same standardised, imputed columns.
            let mut values = design::imputed(&design, &ours.means);
            standardise(&mut values, design.rows, &ours.means, &ours.scales);
            let records = ArrayView2::from_shape((design.rows, design.cols()).f(), &values).unwrap();
            let dataset = DatasetBase::new(records, ArrayView1::from(&target[..]));
            let linfa = linfa_elasticnet::ElasticNet::params()
                .penalty(params.penalty)
                .l1_ratio(params.l1_ratio)
                .max_iterations(params.max_iterations)
                .tolerance(params.tolerance)
                .fit(&dataset)
                .unwrap();
            let theirs: Vec<f64> = linfa.predict(&records).to_vec();
            let predicted = ours.predict(&design);
            let worst = predicted
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 0.05,
                "{params:?}: predictions differ from linfa's by up to {worst}"
            );
            assert!(
                (ours.intercept - linfa.intercept()).abs() < 0.05,
                "{params:?}: intercept {} against linfa's {}",
                ours.intercept,
                linfa.intercept()
            );
        }
    }

    #[test]
    fn a_strong_l1_penalty_zeroes_every_coefficient() {
        let (design, target) = data(500);
        let params = ElasticNetParams {
            penalty: 1e6,
            l1_ratio: 1.0,
            ..ElasticNetParams::default()
        };
        let model = LinearModel::fit(&params, &design, &target).unwrap();
        assert!(model.coefficients.iter().all(|&w| w == 0.0), "{model:?}");
        let mean = target.iter().sum::<f64>() / target.len() as f64;
        assert!((model.intercept - mean).abs() < 1e-9);
    }
}

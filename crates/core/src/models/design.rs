//! The design matrix: feature columns of a polars frame handed to the model
//! crates with one copy, as one column-major `Vec<f64>` (missing values NaN),
//! and the category encoder learnt on training rows.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::FeatureLayout;

/// Rows x columns of f64 in column-major order; NaN marks a missing value.
#[derive(Debug, Clone)]
pub struct Design {
    pub names: Vec<String>,
    pub rows: usize,
    pub values: Vec<f64>,
}

impl Design {
    pub fn cols(&self) -> usize {
        self.names.len()
    }

    pub fn column(&self, j: usize) -> &[f64] {
        &self.values[j * self.rows..(j + 1) * self.rows]
    }

    pub fn column_named(&self, name: &str) -> Option<&[f64]> {
        self.names.iter().position(|n| n == name).map(|j| self.column(j))
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Design {
        let mut values = Vec::with_capacity(indices.len() * self.cols());
        for j in 0..self.cols() {
            let column = self.column(j);
            values.extend(indices.iter().map(|&i| column[i]));
        }
        Design {
            names: self.names.clone(),
            rows: indices.len(),
            values,
        }
    }
}

/// Codes for category values, learnt on training rows: the sorted distinct
/// values of each categorical column, coded 0, 1, 2, …; unseen values are NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    pub layout: FeatureLayout,
    pub vocabularies: BTreeMap<String, Vec<String>>,
}

impl Encoder {
    pub fn fit(features: &DataFrame, layout: &FeatureLayout) -> PolarsResult<Self> {
        let mut vocabularies = BTreeMap::new();
        for name in &layout.categorical {
            // Distinct first (a few thousand values of millions of rows),
            // then sorted and copied: sorting a copy of every value took
            // about a second on the generated lake's window.
            let values = features.column(name)?.str()?;
            let mut distinct: Vec<&str> = values
                .iter()
                .flatten()
                .collect::<std::collections::HashSet<&str>>()
                .into_iter()
                .collect();
            distinct.sort_unstable();
            vocabularies.insert(name.clone(), distinct.into_iter().map(str::to_string).collect());
        }
        Ok(Self {
            layout: layout.clone(),
            vocabularies,
        })
    }

    /// The design matrix of `features`: numeric columns, then category codes.
    pub fn design(&self, features: &DataFrame) -> PolarsResult<Design> {
        let rows = features.height();
        let cols = self.layout.numeric.len() + self.layout.categorical.len();
        let mut values = Vec::with_capacity(rows * cols);
        let mut names = Vec::with_capacity(cols);
        for name in &self.layout.numeric {
            let column = features.column(name)?.cast(&DataType::Float64)?;
            values.extend(column.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)));
            names.push(name.clone());
        }
        for name in &self.layout.categorical {
            let vocabulary = &self.vocabularies[name];
            let column = features.column(name)?.str()?.clone();
            values.extend(column.iter().map(|v| {
                v.and_then(|v| vocabulary.binary_search_by(|probe| probe.as_str().cmp(v)).ok())
                    .map_or(f64::NAN, |code| code as f64)
            }));
            names.push(name.clone());
        }
        Ok(Design { names, rows, values })
    }
}

/// Per-column means of the finite values, to fill missing ones (0 when none).
pub fn column_means(design: &Design) -> Vec<f64> {
    (0..design.cols())
        .map(|j| {
            let (sum, n) = design
                .column(j)
                .iter()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 { 0.0 } else { sum / n as f64 }
        })
        .collect()
}

/// The design with missing values replaced by `fill` (one value per column).
pub fn imputed(design: &Design, fill: &[f64]) -> Vec<f64> {
    let mut values = design.values.clone();
    for (j, chunk) in values
        .chunks_mut(design.rows.max(1))
        .enumerate()
        .take(design.cols())
    {
        for v in chunk.iter_mut().filter(|v| !v.is_finite()) {
            *v = fill[j];
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_coded_by_sorted_training_values() {
        let layout = FeatureLayout {
            numeric: vec!["x".into()],
            categorical: vec!["c".into()],
        };
        let train = df!("x" => [Some(1.0), None, Some(3.0)], "c" => ["b", "a", "b"]).unwrap();
        let encoder = Encoder::fit(&train, &layout).unwrap();
        let test = df!("x" => [Some(2.0), Some(5.0)], "c" => ["a", "zz"]).unwrap();
        let design = encoder.design(&test).unwrap();
        assert_eq!(design.column(0), &[2.0, 5.0]);
        assert_eq!(design.column(1)[0], 0.0);
        assert!(design.column(1)[1].is_nan(), "an unseen category is missing");
        let train_design = encoder.design(&train).unwrap();
        assert_eq!(column_means(&train_design)[0], 2.0);
        assert_eq!(imputed(&train_design, &[2.0, 0.0])[1], 2.0);
        assert_eq!(train_design.take(&[2, 0]).column(1), &[1.0, 1.0]);
    }
}

//! Fast prediction with forust's boosted trees: the same sums as
//! `GradientBooster::predict`, bit for bit, in a fraction of its time.
//!
//! forust predicts one tree at a time over every row (a vector of leaf
//! values per tree, then a single-threaded pass adding it to the totals).
//! Rolling-origin scoring calls it for 1.5 million rows per model on the
//! generated lake, and that was nine tenths of the evaluate phase
//! (BENCHMARKS.md, "Faster features and evaluation"). Here the trees are
//! copied once into a flat table of small nodes, and blocks of rows, copied
//! row-major so a block stays in cache, run down every tree on both cores.
//! Each row's total still starts from the base score and adds the trees'
//! leaf values in tree order, as forust does, so every forecast is the same
//! float.

use forust_ml::gradientbooster::GradientBooster;
use rayon::prelude::*;

use super::Design;

/// Rows handled together: their features (row-major) stay in L1/L2 while
/// every tree runs over them.
const BLOCK: usize = 256;

/// No feature: the node is a leaf, its value in `split`.
const LEAF: u32 = u32::MAX;

/// One node of the flat forest; children are indices into the whole table.
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// The split threshold (go left when below it), or a leaf's value.
    split: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
}

/// Every prediction tree of a booster, flattened, with its base score.
pub struct FlatForest {
    base_score: f64,
    nodes: Vec<FlatNode>,
    /// The root node of each tree, in forust's tree order.
    roots: Vec<u32>,
    cols: usize,
}

impl FlatForest {
    /// The booster's prediction trees, or None when this path cannot give
    /// forust's exact result (a non-NaN missing value, more nodes or
    /// features than u32 holds): then forust predicts.
    pub fn new(booster: &GradientBooster, cols: usize) -> Option<Self> {
        if !booster.missing.is_nan() || cols >= LEAF as usize {
            return None;
        }
        let trees = &booster.trees[..booster.prediction_iteration.unwrap_or(booster.trees.len())];
        let total: usize = trees.iter().map(|t| t.nodes.len()).sum();
        if total >= LEAF as usize {
            return None;
        }
        let mut nodes = Vec::with_capacity(total);
        let mut roots = Vec::with_capacity(trees.len());
        for tree in trees {
            let offset = nodes.len();
            if tree.nodes.is_empty() {
                return None;
            }
            roots.push(offset as u32);
            for node in &tree.nodes {
                let child =
                    |i: usize| -> Option<u32> { (i < tree.nodes.len()).then_some((offset + i) as u32) };
                nodes.push(if node.is_leaf {
                    FlatNode {
                        split: f64::from(node.weight_value),
                        feature: LEAF,
                        left: 0,
                        right: 0,
                        missing: 0,
                    }
                } else {
                    if node.split_feature >= cols {
                        return None;
                    }
                    FlatNode {
                        split: node.split_value,
                        feature: node.split_feature as u32,
                        left: child(node.left_child)?,
                        right: child(node.right_child)?,
                        missing: child(node.missing_node)?,
                    }
                });
            }
        }
        Some(Self {
            base_score: booster.base_score,
            nodes,
            roots,
            cols,
        })
    }

    /// The number of features the trees were flattened for.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The booster's prediction for every row of `design` (column-major,
    /// NaN missing), in parallel over blocks of rows.
    pub fn predict(&self, design: &Design) -> Vec<f64> {
        let rows = design.rows;
        let mut out = vec![self.base_score; rows];
        if rows == 0 || self.cols != design.cols() {
            return out;
        }
        out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, totals)| {
            let first = b * BLOCK;
            let n = totals.len();
            // The block's rows, row-major.
            let mut block = vec![0.0; n * self.cols];
            for c in 0..self.cols {
                let column = &design.values[c * rows + first..c * rows + first + n];
                for (i, &v) in column.iter().enumerate() {
                    block[i * self.cols + c] = v;
                }
            }
            for &root in &self.roots {
                for (i, total) in totals.iter_mut().enumerate() {
                    let row = &block[i * self.cols..(i + 1) * self.cols];
                    *total += self.leaf(root, row);
                }
            }
        });
        out
    }

    /// The leaf value `row` reaches from `root`, down forust's branches: the
    /// missing branch for NaN, left below the split, right otherwise.
    #[inline]
    fn leaf(&self, root: u32, row: &[f64]) -> f64 {
        let mut node = &self.nodes[root as usize];
        while node.feature != LEAF {
            let v = row[node.feature as usize];
            let next = if v.is_nan() {
                node.missing
            } else if v < node.split {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node.split
    }
}

#[cfg(test)]
mod tests {
    use forust_ml::Matrix;
    use forust_ml::objective::ObjectiveType;

    use super::*;

    /// Three columns (one with missing values, one constant-ish) over
    /// `rows` rows; the target mixes them.
    fn data(rows: usize, offset: usize) -> (Design, Vec<f64>) {
        let a: Vec<f64> = (0..rows)
            .map(|i| {
                let i = i + offset;
                if i % 7 == 3 {
                    f64::NAN
                } else {
                    ((i * 37) % 101) as f64 / 3.0
                }
            })
            .collect();
        let b: Vec<f64> = (0..rows).map(|i| (((i + offset) * 13) % 17) as f64).collect();
        let c: Vec<f64> = (0..rows).map(|i| ((i + offset) % 3) as f64 * 0.1).collect();
        let target = (0..rows)
            .map(|i| {
                let x = if a[i].is_nan() { 50.0 } else { a[i] };
                x * 1.7 + b[i] * b[i] / 4.0 - 10.0 * c[i] + ((i * 7919) % 11) as f64
            })
            .collect();
        let mut values = a;
        values.extend(b);
        values.extend(c);
        let design = Design {
            names: vec!["a".into(), "b".into(), "c".into()],
            rows,
            values,
        };
        (design, target)
    }

    /// The flat forest gives forust's predictions bit for bit, on rows it
    /// was fitted on and on others (more rows than a block, a partial last
    /// block, missing values, a feature never seen at that value).
    #[test]
    fn flat_forest_predicts_forusts_exact_values() {
        let (x, y) = data(2_000, 0);
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::SquaredLoss)
            .set_iterations(60)
            .set_learning_rate(0.2)
            .set_max_depth(6)
            .set_initialize_base_score(true);
        booster
            .fit(
                &Matrix::new(&x.values, x.rows, x.cols()),
                &y,
                &vec![1.0; x.rows],
                None,
            )
            .unwrap();
        let forest = FlatForest::new(&booster, x.cols()).expect("NaN missing: the fast path applies");
        for (design, what) in [(x, "fitted rows"), (data(BLOCK * 3 + 17, 5_000).0, "new rows")] {
            let theirs = booster.predict(&Matrix::new(&design.values, design.rows, design.cols()), true);
            let ours = forest.predict(&design);
            assert_eq!(ours.len(), theirs.len());
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{what} row {i}: {a} vs {b}");
            }
            assert!(ours.iter().any(|v| (v - ours[0]).abs() > 1.0), "the trees split");
        }
        let empty = Design {
            names: vec!["a".into(), "b".into(), "c".into()],
            rows: 0,
            values: vec![],
        };
        assert!(forest.predict(&empty).is_empty());
    }
}

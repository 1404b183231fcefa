//! Fast prediction with forust's boosted trees: the same sums as
//! `GradientBooster::predict`, bit for bit, in a fraction of its time.
//!
//! forust predicts one tree at a time over every row (a vector of leaf
//! values per tree, then a single-threaded pass adding it to the totals).
//! Rolling-origin scoring calls it for 1.5 million rows per model on the
//! generated lake, and that was nine tenths of the evaluate phase
//! (BENCHMARKS.md, "Faster features and evaluation"). Here:
//! - the trees are copied once into a flat table of 16-byte nodes, and each
//!   split value becomes its rank among the forest's split values of that
//!   feature, so a value is compared as its bin (the number of split values
//!   at or below it: `v >= split` exactly when its bin passes the split's);
//! - blocks of rows are binned once, row-major, 2 bytes a value, so a block
//!   stays in cache while every tree runs over it, on both cores;
//! - a tree is walked level by level for the whole block at once, without a
//!   branch on the data (the child is picked by index; a leaf points at
//!   itself), so the block's rows go down it side by side instead of one
//!   dependent load and mispredicted branch after another (BENCHMARKS.md,
//!   "Level-wise tree walks").
//!
//! Each row's total still starts from the base score and adds the trees'
//! leaf values in tree order, as forust does, so every forecast is the same
//! float.

use forust_ml::gradientbooster::GradientBooster;
use rayon::prelude::*;

use super::Design;

/// The most rows handled together: their bins stay in L1/L2 while every
/// tree runs over them, and each tree's nodes are read once per block.
/// Smaller batches are cut into blocks of at least [`MIN_BLOCK`] rows, about
/// four per thread.
const BLOCK: usize = 2048;
const MIN_BLOCK: usize = 64;

/// The bin of a missing (NaN) value; a value's bin is 1 + the number of the
/// feature's split values at or below it.
const MISSING: u16 = 0;

/// One node of the flat forest. A branch goes to `next[0]` (left: below the
/// split), `next[1]` (right: a bin of at least `split`) or `next[2]`
/// (missing); children are indices into the whole table. A leaf points at
/// itself three times (its split above every bin, so the pick is 0 or 2),
/// so a walk that reached it stays; its value is in
/// [`FlatForest::leaves`].
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    split: u16,
    feature: u16,
    next: [u32; 3],
}

/// One tree: its root in the table and the most branches on a path down it.
#[derive(Debug, Clone, Copy)]
struct FlatTree {
    root: u32,
    depth: u32,
}

/// Every prediction tree of a booster, flattened, with its base score.
pub struct FlatForest {
    base_score: f64,
    nodes: Vec<FlatNode>,
    /// Each node's leaf value (0 for branches).
    leaves: Vec<f64>,
    /// In forust's tree order.
    trees: Vec<FlatTree>,
    /// Per feature, its split values in the forest, ascending, distinct.
    splits: Vec<Vec<f64>>,
}

impl FlatForest {
    /// The booster's prediction trees, or None when this path cannot give
    /// forust's exact result (a non-NaN missing value, a NaN split, more
    /// nodes than u32 holds or more features or split values of a feature
    /// than u16 holds, a malformed tree): then forust predicts.
    pub fn new(booster: &GradientBooster, cols: usize) -> Option<Self> {
        if !booster.missing.is_nan() || cols > usize::from(u16::MAX) {
            return None;
        }
        let trees = &booster.trees[..booster.prediction_iteration.unwrap_or(booster.trees.len())];
        let total: usize = trees.iter().map(|t| t.nodes.len()).sum();
        if total >= u32::MAX as usize {
            return None;
        }
        let mut splits = vec![Vec::new(); cols];
        for node in trees.iter().flat_map(|t| &t.nodes).filter(|n| !n.is_leaf) {
            if node.split_value.is_nan() {
                return None;
            }
            splits.get_mut(node.split_feature)?.push(node.split_value);
        }
        for values in &mut splits {
            values.sort_by(f64::total_cmp);
            values.dedup_by(|a, b| a == b);
            if values.len() + 1 >= usize::from(u16::MAX) {
                return None;
            }
        }
        let mut nodes = Vec::with_capacity(total);
        let mut leaves = Vec::with_capacity(total);
        let mut flat = Vec::with_capacity(trees.len());
        for tree in trees {
            let offset = nodes.len();
            let at = |i: usize| -> Option<u32> { (i < tree.nodes.len()).then_some((offset + i) as u32) };
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.is_leaf {
                    let me = at(i)?;
                    nodes.push(FlatNode {
                        // Above every bin, so never "right" with a missing
                        // value (pick 3); every pick stays here anyway.
                        split: u16::MAX,
                        feature: 0,
                        next: [me; 3],
                    });
                    leaves.push(f64::from(node.weight_value));
                } else {
                    let values = &splits[node.split_feature];
                    // v >= the k-th split value (0-based) exactly when more
                    // than k values are at or below v: a bin of k + 2 or more.
                    let k = values.partition_point(|t| *t < node.split_value);
                    nodes.push(FlatNode {
                        split: (k + 2) as u16,
                        feature: node.split_feature as u16,
                        next: [
                            at(node.left_child)?,
                            at(node.right_child)?,
                            at(node.missing_node)?,
                        ],
                    });
                    leaves.push(0.0);
                }
            }
            let root = at(0)?;
            flat.push(FlatTree {
                root,
                depth: depth(&nodes, root)?,
            });
        }
        Some(Self {
            base_score: booster.base_score,
            nodes,
            leaves,
            trees: flat,
            splits,
        })
    }

    /// The number of features the trees were flattened for.
    pub fn cols(&self) -> usize {
        self.splits.len()
    }

    /// The bin of `v` among `splits` (see [`MISSING`]).
    fn bin(splits: &[f64], v: f64) -> u16 {
        if v.is_nan() {
            MISSING
        } else {
            (1 + splits.partition_point(|t| *t <= v)) as u16
        }
    }

    /// The booster's prediction for every row of `design` (column-major,
    /// NaN missing), in parallel over blocks of rows; None when `design`
    /// has another number of columns than the forest was flattened for.
    pub fn predict(&self, design: &Design) -> Option<Vec<f64>> {
        let rows = design.rows;
        let cols = self.cols();
        if cols != design.cols() {
            return None;
        }
        let mut out = vec![self.base_score; rows];
        if rows == 0 {
            return Some(out);
        }
        let block_rows = rows
            .div_ceil(4 * rayon::current_num_threads())
            .clamp(MIN_BLOCK, BLOCK);
        out.par_chunks_mut(block_rows)
            .enumerate()
            .for_each(|(b, totals)| {
                let first = b * block_rows;
                let n = totals.len();
                // The block's rows binned, row-major.
                let mut block = vec![MISSING; n * cols];
                for (c, splits) in self.splits.iter().enumerate() {
                    if splits.is_empty() {
                        continue;
                    }
                    let column = &design.values[c * rows + first..c * rows + first + n];
                    for (i, &v) in column.iter().enumerate() {
                        block[i * cols + c] = Self::bin(splits, v);
                    }
                }
                let mut at = vec![0u32; n];
                for tree in &self.trees {
                    at.fill(tree.root);
                    for _ in 0..tree.depth {
                        for (i, node) in at.iter_mut().enumerate() {
                            *node = self.step(*node, &block, i * cols);
                        }
                    }
                    for (total, &leaf) in totals.iter_mut().zip(at.iter()) {
                        *total += self.leaves[leaf as usize];
                    }
                }
            });
        Some(out)
    }

    /// The node `row` goes to from `node`, down forust's branches: the
    /// missing branch for NaN, left below the split, right otherwise (a leaf
    /// stays where it is). Picked by index, not by a branch.
    #[inline(always)]
    fn step(&self, node: u32, block: &[u16], row: usize) -> u32 {
        let node = &self.nodes[node as usize];
        let bin = block[row + usize::from(node.feature)];
        let pick = usize::from(bin >= node.split) | (usize::from(bin == MISSING) << 1);
        node.next[pick]
    }
}

/// The most branches on a path from `root` down its tree, or None when a
/// path is longer than the table (a cycle: not a tree).
fn depth(nodes: &[FlatNode], root: u32) -> Option<u32> {
    let mut deepest = 0;
    let mut stack = vec![(root, 0u32)];
    while let Some((at, d)) = stack.pop() {
        if d as usize > nodes.len() {
            return None;
        }
        let node = nodes.get(at as usize)?;
        if node.next == [at; 3] {
            deepest = deepest.max(d);
        } else {
            let mut children = node.next;
            children.sort_unstable();
            let mut last = None;
            for child in children {
                if Some(child) != last {
                    stack.push((child, d + 1));
                    last = Some(child);
                }
            }
        }
    }
    Some(deepest)
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
    /// block, a batch smaller than a block, missing values, a feature never
    /// seen at that value), with NaN sent down a side of each split and
    /// with a branch of its own for it.
    #[test]
    fn flat_forest_predicts_forusts_exact_values() {
        let (x, y) = data(2_000, 0);
        for missing_branch in [false, true] {
            let mut booster = GradientBooster::default()
                .set_objective_type(ObjectiveType::SquaredLoss)
                .set_iterations(60)
                .set_learning_rate(0.2)
                .set_max_depth(6)
                .set_initialize_base_score(true)
                .set_allow_missing_splits(true)
                .set_create_missing_branch(missing_branch);
            booster
                .fit(
                    &Matrix::new(&x.values, x.rows, x.cols()),
                    &y,
                    &vec![1.0; x.rows],
                    None,
                )
                .unwrap();
            let branches = booster
                .trees
                .iter()
                .flat_map(|t| &t.nodes)
                .filter(|n| !n.is_leaf && n.has_missing_branch())
                .count();
            assert_eq!(branches > 0, missing_branch, "{branches} missing branches");
            let forest = FlatForest::new(&booster, x.cols()).expect("NaN missing: the fast path applies");
            for (design, what) in [
                (data(2_000, 0).0, "fitted rows"),
                (data(BLOCK * 3 + 17, 5_000).0, "new rows"),
                (data(300, 9).0, "a few rows"),
            ] {
                let theirs = booster.predict(&Matrix::new(&design.values, design.rows, design.cols()), true);
                let ours = forest.predict(&design).expect("the forest's columns");
                assert_eq!(ours.len(), theirs.len());
                for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{what} row {i}: {a} vs {b}");
                }
                assert!(ours.iter().any(|v| (v - ours[0]).abs() > 1.0), "the trees split");
            }
        }
        let (x, _) = data(1, 0);
        let forest = FlatForest::new(&GradientBooster::default(), x.cols()).expect("no trees");
        let empty = Design {
            names: vec!["a".into(), "b".into(), "c".into()],
            rows: 0,
            values: vec![],
        };
        assert_eq!(forest.predict(&empty), Some(vec![]));
        let (two, _) = data(5, 0);
        let two = Design {
            names: two.names[..2].to_vec(),
            rows: 5,
            values: two.values[..10].to_vec(),
        };
        assert_eq!(forest.predict(&two), None, "another number of columns");
    }
}

//! Benchmark of boosted-tree prediction: salescast's flat, level-wise walk
//! (`GbdtModel::predict`) against forust's own `GradientBooster::predict`,
//! on the same fitted model and rows, in one run; checks they give the same
//! floats. Synthetic data shaped like the generated lake's scoring (a few
//! dozen features, depth-8 trees, some missing values).
//!
//! `cargo run --release -p salescast-core --example predict_speed -- [ROUNDS] [ROWS] [REPEATS]`
//! (defaults 1000 rounds, 140,000 rows, 3 repeats; BENCHMARKS.md, "Level-wise
//! tree walks").

use std::time::Instant;

use forust_ml::Matrix;
use salescast_core::models::{Design, GbdtModel, GbdtParams};

const COLS: usize = 24;

/// `rows` rows of `COLS` features (a fixed pseudo-random sequence from
/// `seed`; every 13th value of the first column missing) and a target
/// mixing them.
fn data(rows: usize, seed: u64) -> (Design, Vec<f64>) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut values = vec![0.0; rows * COLS];
    for c in 0..COLS {
        for r in 0..rows {
            values[c * rows + r] = if c == 0 && r % 13 == 5 {
                f64::NAN
            } else if c % 4 == 3 {
                (next() * 7.0).floor()
            } else {
                next() * 100.0
            };
        }
    }
    let at = |c: usize, r: usize| values[c * rows + r];
    let target = (0..rows)
        .map(|r| {
            let first = if at(0, r).is_nan() { 50.0 } else { at(0, r) };
            first + (at(1, r) / 10.0).sin() * 30.0 + at(2, r) * at(3, r) / 20.0 + (at(4, r) - 50.0).abs()
                - at(5, r).sqrt() * 3.0
        })
        .collect();
    let names = (0..COLS).map(|c| format!("x{c}")).collect();
    (Design { names, rows, values }, target)
}

fn median(mut walls: Vec<f64>) -> f64 {
    walls.sort_by(f64::total_cmp);
    walls[walls.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let rounds = args.first().copied().unwrap_or(1000);
    let rows = args.get(1).copied().unwrap_or(140_000);
    let repeats = args.get(2).copied().unwrap_or(3).max(1);
    let (fit_x, fit_y) = data(200_000, 1);
    let params = GbdtParams {
        max_rounds: rounds,
        ..GbdtParams::default()
    };
    let started = Instant::now();
    let model = GbdtModel::fit(&params, &fit_x, &fit_y, None, 42).expect("the fit");
    println!(
        "fitted {} rounds on {} rows x {COLS} features in {:.1} s",
        model.rounds,
        fit_x.rows,
        started.elapsed().as_secs_f64()
    );
    let (x, _) = data(rows, 2);
    let time = |f: &dyn Fn() -> Vec<f64>| -> (Vec<f64>, f64) {
        let mut out = Vec::new();
        let walls = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                out = f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        (out, median(walls))
    };
    // The first call flattens the trees: time it apart.
    let t = Instant::now();
    assert!(model.predicts_flat(COLS), "the flat forest applies to this model");
    let flatten = t.elapsed().as_secs_f64();
    let matrix = Matrix::new(&x.values, x.rows, x.cols());
    // One untimed call each first (page faults, thread pool).
    model.predict(&x);
    model.booster.predict(&matrix, true);
    let (ours, ours_wall) = time(&|| model.predict(&x));
    let (theirs, theirs_wall) = time(&|| model.booster.predict(&matrix, true));
    let same =
        ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits());
    let evals = (rows * model.rounds) as f64;
    println!("{rows} rows, {} trees, median of {repeats}:", model.rounds);
    println!(
        "  salescast flat forest (binned, level-wise): {ours_wall:.3} s ({:.1} ns per tree and row; flattening {flatten:.3} s)",
        ours_wall * 1e9 / evals
    );
    println!(
        "  forust GradientBooster::predict: {theirs_wall:.3} s ({:.1} ns per tree and row)",
        theirs_wall * 1e9 / evals
    );
    println!(
        "  speed-up {:.2}x; the same floats: {same}",
        theirs_wall / ours_wall
    );
    if !same {
        std::process::exit(1);
    }
}

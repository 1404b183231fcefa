//! Scratch probe (not part of salescast): lightgbm3 against forust-ml on the
//! reference's dumped design matrices, same settings, same rows.
use std::time::Instant;

use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use lightgbm3::{Booster, Dataset};
use serde_json::{Value, json};

fn f64s(path: &str) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}
fn f32s(path: &str) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}
fn col_major(x: &[f64], p: usize) -> Vec<f64> {
    let n = x.len() / p;
    let mut out = vec![0.0; x.len()];
    for i in 0..n {
        for j in 0..p {
            out[j * n + i] = x[i * p + j];
        }
    }
    out
}
fn wape(y: &[f64], p: &[f64]) -> f64 {
    let e: f64 = y.iter().zip(p).map(|(a, b)| (a - b.max(0.0)).abs()).sum();
    e / y.iter().map(|v| v.abs()).sum::<f64>()
}

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/meta.json")).unwrap()).unwrap();
    let p = meta["features"].as_u64().unwrap() as usize;
    let g = &meta["gbdt"];
    let load = |name: &str| {
        (
            f64s(&format!("{dir}/{name}.x")),
            f32s(&format!("{dir}/{name}.y")),
            f64s(&format!("{dir}/{name}.y64")),
        )
    };
    let (ix, iy, iy64) = load("inner");
    let (vx, vy, vy64) = load("valid");
    let (tx, ty, ty64) = load("train");
    let (hx, _, hy64) = load("holdout");
    let depth = g["max_depth"].as_u64().unwrap();
    let params = |rounds: u64, early: bool| {
        let mut v = json!({"objective": "regression", "learning_rate": g["learning_rate"], "max_depth": depth,
            "num_leaves": 1u64 << depth.min(12), "min_sum_hessian_in_leaf": g["min_leaf_weight"], "lambda_l2": g["l2"],
            "max_bin": g["bins"], "seed": meta["seed"], "deterministic": true, "metric": "rmse", "verbose": -1,
            "num_iterations": rounds});
        if early {
            v["early_stopping_rounds"] = json!(g["early_stopping_rounds"]);
        }
        v
    };

    // lightgbm3: search with early stopping on the validation rows, then the refit.
    let started = Instant::now();
    let inner = Dataset::from_slice(&ix, &iy, p as i32, true).unwrap();
    let valid = Dataset::from_slice_with_reference(&vx, &vy, p as i32, true, Some(&inner)).unwrap();
    let search = Booster::train_with_valid(
        inner,
        Some(valid),
        &params(g["max_rounds"].as_u64().unwrap(), true),
    )
    .unwrap();
    let rounds = search.num_iterations() as u64;
    let search_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let final_ = Booster::train(
        Dataset::from_slice(&tx, &ty, p as i32, true).unwrap(),
        &params(rounds, false),
    )
    .unwrap();
    let refit_s = started.elapsed().as_secs_f64();
    let pred = final_.predict(&hx, p as i32, true).unwrap();
    println!(
        "lightgbm3 rounds {rounds} search {search_s:.2} s refit {refit_s:.2} s fit {:.2} s holdout WAPE {:.4}",
        search_s + refit_s,
        wape(&hy64, &pred)
    );

    // forust-ml, as salescast sets it up.
    let booster = |rounds: usize| {
        GradientBooster::default()
            .set_objective_type(ObjectiveType::SquaredLoss)
            .set_iterations(rounds)
            .set_learning_rate(g["learning_rate"].as_f64().unwrap() as f32)
            .set_max_depth(depth as usize)
            .set_min_leaf_weight(g["min_leaf_weight"].as_f64().unwrap() as f32)
            .set_l2(g["l2"].as_f64().unwrap() as f32)
            .set_nbins(g["bins"].as_u64().unwrap() as u16)
            .set_initialize_base_score(true)
            .set_tiled_histograms(true)
            .set_seed(meta["seed"].as_u64().unwrap())
    };
    let (icm, vcm, tcm, hcm) = (
        col_major(&ix, p),
        col_major(&vx, p),
        col_major(&tx, p),
        col_major(&hx, p),
    );
    let started = Instant::now();
    let mut search = booster(g["max_rounds"].as_u64().unwrap() as usize)
        .set_evaluation_metric(Some(Metric::RootMeanSquaredError))
        .set_early_stopping_rounds(Some(g["early_stopping_rounds"].as_u64().unwrap() as usize));
    let vw = vec![1.0; vy64.len()];
    search
        .fit(
            &Matrix::new(&icm, iy64.len(), p),
            &iy64,
            &vec![1.0; iy64.len()],
            Some(vec![(
                Matrix::new(&vcm, vy64.len(), p),
                vy64.as_slice(),
                vw.as_slice(),
            )]),
        )
        .unwrap();
    let rounds = search.best_iteration.map_or(search.trees.len(), |b| b + 1);
    let search_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut final_ = booster(rounds);
    final_
        .fit(
            &Matrix::new(&tcm, ty64.len(), p),
            &ty64,
            &vec![1.0; ty64.len()],
            None,
        )
        .unwrap();
    let refit_s = started.elapsed().as_secs_f64();
    let pred = final_.predict(&Matrix::new(&hcm, hy64.len(), p), true);
    println!(
        "forust-ml rounds {rounds} search {search_s:.2} s refit {refit_s:.2} s fit {:.2} s holdout WAPE {:.4}",
        search_s + refit_s,
        wape(&hy64, &pred)
    );
}

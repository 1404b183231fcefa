//! The daily job on the real rossmann lake: the first run promotes over the
//! baseline, a rerun adds no version, a worse challenger is kept out with the
//! reason logged, rollback restores the previous champion, two racing runs
//! have one winner, and a corrupted artifact is refused.

use std::path::{Path, PathBuf};

use crate::util::{Outcome, repo_file, rossmann_lake, run, s, salescast, tempdir};

/// A config for the rossmann lake with extra TOML appended, in `dir`.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
    let path = dir.join(format!("salescast-{}.toml", extra.len()));
    std::fs::write(&path, format!("{base}\n{extra}\n")).unwrap();
    path
}

/// Fewer trees and a shorter window keep debug-build tests quick.
const QUICK: &str = "[window]\nhistory_days = 400\n[training.random_forest]\ntrees = 12\nmax_depth = 10\n";
/// A deliberately crippled config: the seasonal-naive rule is the only candidate.
const CRIPPLED: &str = "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\"]\n";
const LINEAR: &str =
    "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\n";

fn retrain(dir: &Path, config: &Path, registry: &Path, date: &str) -> Outcome {
    run(
        dir,
        &[
            "--config",
            s(config),
            "--lake",
            s(rossmann_lake()),
            "--registry",
            s(registry),
            "--json",
            "retrain",
            "--date",
            date,
        ],
    )
}

fn registry_cmd(dir: &Path, registry: &Path, args: &[&str]) -> Outcome {
    let config = repo_file("examples/rossmann.toml");
    let mut all = vec!["--config", s(&config), "--registry", s(registry), "--json"];
    all.extend_from_slice(args);
    run(dir, &all)
}

fn versions_in(registry: &Path) -> usize {
    std::fs::read_dir(registry.join("sales/versions")).map_or(0, |d| d.count())
}

fn decisions(dir: &Path, registry: &Path) -> Vec<serde_json::Value> {
    let history = registry_cmd(dir, registry, &["models", "history"])
        .expect_code(0)
        .json();
    history["decisions"].as_array().unwrap().clone()
}

#[test]
fn first_run_promotes_and_a_rerun_adds_no_version() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let quick = config(dir.path(), QUICK);
    let first = retrain(dir.path(), &quick, &registry, "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(first["decision"], "promoted", "{first:#}");
    let wape = first["challenger"]["holdout"]["wape"].as_f64().unwrap();
    let baseline = first["baseline"]["wape"].as_f64().unwrap();
    assert!(
        wape < baseline,
        "challenger {wape} must beat the baseline {baseline}"
    );
    assert!(first["champion"].is_null());
    let version = first["challenger"]["version"].as_str().unwrap().to_string();
    assert_eq!(first["champion_after"], version.as_str());
    assert!(
        registry
            .join(format!("sales/versions/{version}/model.bin"))
            .is_file()
    );
    assert!(registry.join("sales/runs/2015-07-31/report.md").is_file());

    let again = retrain(dir.path(), &quick, &registry, "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(
        again["challenger"]["version"],
        version.as_str(),
        "same data, config and seed give the same bytes"
    );
    assert_eq!(again["challenger"]["stored"], "already_there");
    assert_eq!(again["decision"], "kept");
    assert_eq!(again["champion"]["version"], version.as_str());
    assert_eq!(
        again["champion"]["holdout"], first["challenger"]["holdout"],
        "the champion scores as it did as challenger"
    );
    assert_eq!(versions_in(&registry), 1);
    let shown = registry_cmd(dir.path(), &registry, &["models", "show", &version[..8]])
        .expect_code(0)
        .json();
    assert_eq!(shown["champion"], true);
    let manifest = &shown["manifest"];
    assert_eq!(manifest["version"], version.as_str());
    assert_eq!(manifest["lineage"]["window_last_day"], "2015-07-31");
    assert_eq!(manifest["lineage"]["trained_through"], "2015-07-03");
    assert_eq!(
        manifest["lineage"]["data_fingerprint"],
        first["window"]["data_fingerprint"]
    );
    assert_eq!(manifest["config"]["training"]["random_forest"]["trees"], 12);
    assert_eq!(manifest["holdout_metrics"], first["challenger"]["holdout"]);
    let log = decisions(dir.path(), &registry);
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["kind"], "promoted");
    assert_eq!(log[1]["kind"], "kept");
}

#[test]
fn a_worse_challenger_is_not_promoted_and_rollback_restores() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    // v1: a linear model, promoted over the baseline.
    let v1 = retrain(dir.path(), &config(dir.path(), LINEAR), &registry, "2015-07-01")
        .expect_code(0)
        .json();
    assert_eq!(v1["decision"], "promoted", "{v1:#}");
    let v1 = v1["challenger"]["version"].as_str().unwrap().to_string();
    // v2: forests, a month later, better than v1.
    let v2 = retrain(dir.path(), &config(dir.path(), QUICK), &registry, "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(v2["decision"], "promoted", "{v2:#}");
    assert_eq!(v2["champion"]["version"], v1.as_str());
    let v2 = v2["challenger"]["version"].as_str().unwrap().to_string();

    // A crippled challenger is stored but not promoted, and the log says why.
    let worse = retrain(dir.path(), &config(dir.path(), CRIPPLED), &registry, "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(worse["decision"], "kept", "{worse:#}");
    assert!(worse["challenger"]["holdout"]["wape"].as_f64() > worse["champion"]["holdout"]["wape"].as_f64());
    assert_eq!(worse["champion_after"], v2.as_str());
    let log = decisions(dir.path(), &registry);
    let last = log.last().unwrap();
    assert_eq!(last["kind"], "kept");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("does not beat the champion"),
        "{last:#}"
    );
    assert!(last["challenger_metrics"]["wape"].is_number() && last["champion_metrics"]["wape"].is_number());

    // Rollback: back to the predecessor, v1.
    let back = registry_cmd(
        dir.path(),
        &registry,
        &["rollback", "--reason", "v2 misbehaves in stores"],
    )
    .expect_code(0)
    .json();
    assert_eq!(back["from"], v2.as_str());
    assert_eq!(back["to"], v1.as_str());
    let list = registry_cmd(dir.path(), &registry, &["models", "list"])
        .expect_code(0)
        .json();
    assert_eq!(list["champion"], v1.as_str());
    assert_eq!(list["versions"].as_array().unwrap().len(), 3);
    // And forward again by a hash prefix.
    registry_cmd(
        dir.path(),
        &registry,
        &["rollback", "--to", &v2[..10], "--reason", "fixed"],
    )
    .expect_code(0);
    let log = decisions(dir.path(), &registry);
    let kinds: Vec<_> = log
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["promoted", "promoted", "kept", "rolled_back", "rolled_back"]
    );
    let sequences: Vec<_> = log.iter().map(|d| d["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5], "no hole in the log");
    assert_eq!(log[3]["reason"], "v2 misbehaves in stores");

    // Unknown versions are refused as usage errors.
    let unknown = registry_cmd(
        dir.path(),
        &registry,
        &["rollback", "--to", "ffffffff", "--reason", "x"],
    )
    .expect_code(2);
    assert!(unknown.stderr.contains("ffffffff"), "{}", unknown.stderr);
}

#[test]
fn a_dry_run_writes_nothing() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let out = run(
        dir.path(),
        &[
            "--config",
            s(&config(dir.path(), LINEAR)),
            "--lake",
            s(rossmann_lake()),
            "--registry",
            s(&registry),
            "--json",
            "retrain",
            "--date",
            "2015-07-31",
            "--dry-run",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(out["dry_run"], true);
    assert!(out["decision_sequence"].is_null());
    assert!(!registry.exists(), "a dry run must not create the registry");
}

#[test]
fn two_racing_retrains_have_exactly_one_winner() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let gate = dir.path().join("gate");
    let linear = config(dir.path(), LINEAR);
    let spawn = || {
        salescast(dir.path())
            .args([
                "--config",
                s(&linear),
                "--lake",
                s(rossmann_lake()),
                "--registry",
                s(&registry),
                "--json",
            ])
            .args([
                "retrain",
                "--date",
                "2015-07-31",
                "--hold-before-commit",
                s(&gate),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    // Both have read the (empty) champion and decided before either writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::fs::read_dir(&gate).map_or(0, |d| d.count()) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the two runs never reached the gate"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(gate.join("go"), b"").unwrap();
    let codes: Vec<i32> = [a, b]
        .map(|c| c.wait_with_output().unwrap())
        .iter()
        .map(|o| {
            let code = o.status.code().unwrap();
            if code == 4 {
                assert!(
                    String::from_utf8_lossy(&o.stderr).contains("superseded"),
                    "{}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            code
        })
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 4], "one winner, one loser: {codes:?}");
    let log = decisions(dir.path(), &registry);
    assert_eq!(log.len(), 1, "only the winner logs a decision");
    assert_eq!(log[0]["sequence"], 1);
    assert_eq!(log[0]["kind"], "promoted");
}

#[test]
fn a_corrupted_artifact_is_refused_on_load() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let linear = config(dir.path(), LINEAR);
    let first = retrain(dir.path(), &linear, &registry, "2015-07-31")
        .expect_code(0)
        .json();
    let version = first["challenger"]["version"].as_str().unwrap().to_string();
    let artifact = registry.join(format!("sales/versions/{version}/model.bin"));
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, bytes).unwrap();
    let out = retrain(dir.path(), &linear, &registry, "2015-07-31").expect_code(3);
    assert!(
        out.stderr.contains("corrupt artifact") && out.stderr.contains(&version),
        "{}",
        out.stderr
    );
    let log = decisions(dir.path(), &registry);
    assert_eq!(log.len(), 1, "a refused run logs nothing");

    // A rollback to a corrupted version is refused too: a version folder whose
    // model.bin does not hash to its name.
    let pointer = registry.join("sales/champion.json");
    let before = std::fs::read_to_string(&pointer).unwrap();
    let fake = "0".repeat(64);
    let fake_dir = registry.join(format!("sales/versions/{fake}"));
    std::fs::create_dir_all(&fake_dir).unwrap();
    let manifest = registry.join(format!("sales/versions/{version}/manifest.json"));
    std::fs::copy(manifest, fake_dir.join("manifest.json")).unwrap();
    std::fs::write(fake_dir.join("model.bin"), b"bytes that do not hash to 000...").unwrap();
    let refused = registry_cmd(
        dir.path(),
        &registry,
        &["rollback", "--to", &fake[..12], "--reason", "x"],
    )
    .expect_code(3);
    assert!(refused.stderr.contains("corrupt artifact"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(&pointer).unwrap(),
        before,
        "a refused rollback changes nothing"
    );
}

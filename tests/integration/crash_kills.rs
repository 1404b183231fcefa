//! The crash harness beyond the promotion protocol's steps (`crash.rs`): on
//! both backends, predict and ingest killed (SIGKILL) at their named write
//! steps, and retrain, predict, rollback and ingest killed at random
//! instants. After every kill: `salescast doctor` (which applies the
//! protocol's repairs and must find no problem but a named unfinished run),
//! then this file's own consistency check of the registry and the lake (it
//! shares no code with the doctor), then a next run of the same command that
//! must succeed.
//!
//! `SCAST_CRASH_KILLS` sets the random kills per command (default 2, kept
//! small for CI), `SCAST_CRASH_SEED` the seed (printed, to replay a failure).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use salescast_core::registry::sha256_hex;
use salescast_core::storage::{PutMode, Store};
use serde_json::Value;

use crate::crash::{Fixture, fixture, kill_at, seeded};
use crate::retrain::{Backend, Place, rossmann_s3_lake};
use crate::util::{LINEAR, Outcome, copy_tree, handle, on_every_backend, rossmann_lake, s, shared_data};

on_every_backend!(
    a_predict_killed_before_its_manifest_is_found_and_finished_by_the_next_run,
    an_ingest_killed_between_writing_and_removing_days_is_found_and_mended,
    kills_at_random_instants_leave_registry_and_lake_consistent,
);

/// The days the kills' ingests replace, and the retrains and predicts use.
const DAYS: [&str; 3] = ["2015-07-29", "2015-07-30", "2015-07-31"];

/// A place with its own writable lake (a copy of the rossmann lake) and a
/// registry seeded with the crash fixture (champion A, stored B).
fn site(backend: Backend) -> Place {
    let mut place = seeded(backend);
    match backend {
        Backend::Local => {
            let lake = place.dir.path().join("lake");
            copy_tree(rossmann_lake(), &lake);
            place.lake = s(&lake).to_string();
        }
        Backend::S3 => {
            let lake = format!("s3://{}/lake", crate::util::s3_bucket("killed-lake"));
            let from = open(&place, rossmann_s3_lake());
            let to = open(&place, &lake);
            let keys = from.list("").unwrap();
            std::thread::scope(|scope| {
                for chunk in keys.chunks(keys.len().div_ceil(4).max(1)) {
                    let (from, to) = (&from, &to);
                    scope.spawn(move || {
                        for meta in chunk {
                            to.put(&meta.key, &from.get(&meta.key).unwrap().bytes, PutMode::Create)
                                .unwrap();
                        }
                    });
                }
            });
            place.lake = lake;
        }
    }
    place
}

fn open(place: &Place, uri: &str) -> Store {
    let settings = salescast_core::storage::S3Settings {
        endpoint: place.flags.get(1).cloned(),
        ..Default::default()
    };
    salescast_core::storage::open(uri, &settings, handle()).unwrap()
}

/// The sales of the rossmann days in [`DAYS`], scaled by `factor`: the input
/// of the kills' `ingest --replace` (each factor makes other files).
fn days_csv(dir: &Path, factor: u32) -> PathBuf {
    let text = std::fs::read_to_string(shared_data("rossmann/train.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if DAYS.contains(&fields[2]) {
            let sales: u64 = fields[3].parse().unwrap();
            let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            fields[3] = (sales * u64::from(factor)).to_string();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    let path = dir.join(format!("days-x{factor}.csv"));
    std::fs::write(&path, out).unwrap();
    path
}

/// `salescast doctor --json` on the place: its report and outcome.
fn doctor(place: &Place, extra: &[&str]) -> (Value, Outcome) {
    let mut args = vec!["doctor"];
    args.extend_from_slice(extra);
    let out = place.run(&place.config(LINEAR), &args);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    (out.json(), out)
}

/// The doctor found nothing but unfinished runs (exit 0); returns the kinds
/// of what it found.
fn doctor_finds_no_problem(place: &Place) -> Value {
    let (report, out) = doctor(place, &[]);
    assert_eq!(out.code, 0, "{report:#}\n{}", out.stderr);
    for finding in report["findings"].as_array().unwrap() {
        assert_eq!(finding["severity"], "incomplete", "{report:#}");
    }
    report
}

/// This test's own check, sharing nothing with the doctor: the decision log
/// numbered 1..N, each decision starting where the last ended; the pointer at
/// the newest champion, a version whose manifest reads and whose artifact
/// hashes to its name, as does every version with a manifest; every
/// committed forecast partition's files there with the listed hash; each
/// sales day one file. Returns (decisions, versions, committed forecast days).
fn assert_consistent(place: &Place) -> (usize, usize, usize) {
    let registry = place.registry_store();
    let mut log: Vec<Value> = Vec::new();
    for meta in registry.list("sales/decisions/").unwrap() {
        log.push(serde_json::from_slice(&registry.get(&meta.key).unwrap().bytes).unwrap());
    }
    log.sort_by_key(|d| d["sequence"].as_u64());
    let numbers: Vec<u64> = log.iter().map(|d| d["sequence"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    for pair in log.windows(2) {
        assert_eq!(pair[1]["champion_before"], pair[0]["champion_after"], "{log:#?}");
    }
    let mut whole = std::collections::BTreeSet::new();
    for meta in registry.list("sales/versions/").unwrap() {
        let Some(folder) = meta.key.strip_suffix("/manifest.json") else {
            continue;
        };
        let version = folder.rsplit('/').next().unwrap();
        let manifest: Value = serde_json::from_slice(&registry.get(&meta.key).unwrap().bytes).unwrap();
        assert_eq!(manifest["version"], version);
        let artifact = registry.get(&format!("{folder}/model.bin")).unwrap().bytes;
        assert_eq!(sha256_hex(&artifact), version, "{folder}/model.bin re-hashes");
        whole.insert(version.to_string());
    }
    let pointer: Value = serde_json::from_slice(&registry.get("sales/champion.json").unwrap().bytes).unwrap();
    assert_eq!(
        pointer["version"],
        log.last().unwrap()["champion_after"],
        "{pointer:#} vs {log:#?}"
    );
    assert!(
        whole.contains(pointer["version"].as_str().unwrap()),
        "the champion is whole"
    );

    let lake = open(place, &place.lake);
    let mut committed = 0;
    for meta in lake.list("predictions/sales/").unwrap() {
        if !meta.key.ends_with("/_manifest.json") {
            continue;
        }
        let manifest: Value = serde_json::from_slice(&lake.get(&meta.key).unwrap().bytes).unwrap();
        for file in manifest["files"].as_array().unwrap() {
            let bytes = lake.get(file["key"].as_str().unwrap()).unwrap().bytes;
            assert_eq!(sha256_hex(&bytes), file["sha256"].as_str().unwrap(), "{file}");
        }
        committed += 1;
    }
    let mut days = std::collections::BTreeMap::<String, usize>::new();
    for meta in lake.list("sales/").unwrap() {
        *days
            .entry(meta.key.rsplit_once('/').unwrap().0.to_string())
            .or_default() += 1;
    }
    assert!(
        days.values().all(|&n| n == 1),
        "one file a day: {:?}",
        days.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    (log.len(), whole.len(), committed)
}

fn a_predict_killed_before_its_manifest_is_found_and_finished_by_the_next_run(backend: Backend) {
    let place = site(backend);
    let config = place.config(LINEAR);
    kill_at(
        &place,
        &config,
        &["predict", "--date", DAYS[2]],
        "predictions-staged",
    );
    let report = doctor_finds_no_problem(&place);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert!(
        findings[0]["uri"]
            .as_str()
            .unwrap()
            .contains("predictions/sales/dt=2015-07-31")
            && findings[0]["fix"]
                .as_str()
                .unwrap()
                .contains("predict --date 2015-07-31"),
        "{report:#}"
    );
    assert_eq!(report["prediction_days"], 0);
    assert_consistent(&place);
    place.run(&config, &["predict", "--date", DAYS[2]]).expect_code(0);
    let report = doctor_finds_no_problem(&place);
    assert!(report["findings"].as_array().unwrap().is_empty(), "{report:#}");
    assert_eq!(assert_consistent(&place).2, 1);
}

fn an_ingest_killed_between_writing_and_removing_days_is_found_and_mended(backend: Backend) {
    let place = site(backend);
    let config = place.config(LINEAR);
    let doubled = days_csv(place.dir.path(), 2);
    let ingest = ["ingest", "--replace", "--input", s(&doubled)];
    kill_at(&place, &config, &ingest, "days-written");
    // Each day now has the new file beside the old: readers refuse it by name.
    let retrain = place.run(&config, &["retrain", "--date", DAYS[2]]).expect_code(3);
    assert!(
        retrain.stderr.contains("sales/dt=2015-07-29") && retrain.stderr.contains("has 2 files"),
        "{}",
        retrain.stderr
    );
    let (report, out) = doctor(&place, &[]);
    assert_eq!(out.code, 3, "{report:#}");
    let problems: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "problem")
        .collect();
    assert_eq!(problems.len(), DAYS.len(), "{report:#}");
    assert!(
        problems[0]["fix"].as_str().unwrap().contains("--replace"),
        "{report:#}"
    );
    assert!(out.stderr.contains("3 problem(s)"), "{}", out.stderr);
    // The rerun removes the old files, and the days hold the new rows.
    let rerun = place.run(&config, &ingest).expect_code(0).json();
    assert_eq!(rerun["days"]["replaced"], DAYS.len() as u64, "{rerun:#}");
    doctor_finds_no_problem(&place);
    assert_consistent(&place);
    place.run(&config, &["retrain", "--date", DAYS[2]]).expect_code(0);
    assert_consistent(&place);
}

/// The champion pointer's version.
fn champion(place: &Place) -> String {
    let pointer = place.registry_store().get("sales/champion.json").unwrap().bytes;
    serde_json::from_slice::<Value>(&pointer).unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A small deterministic generator (SplitMix64), so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in [0, `max`).
    fn below(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.next() % (max.as_micros() as u64).max(1))
    }
}

/// Runs `args` and SIGKILLs it after `delay`; false if it ended first.
fn kill_after(place: &Place, config: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = place
        .cli(config)
        .command(place.dir.path(), args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap().code().is_none()
}

fn kills_at_random_instants_leave_registry_and_lake_consistent(backend: Backend) {
    let kills: usize = std::env::var("SCAST_CRASH_KILLS").map_or(2, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("SCAST_CRASH_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |v| v.parse().unwrap(),
    );
    eprintln!("crash harness ({backend:?}): {kills} random kills per command, SCAST_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let place = site(backend);
    let config = place.config(LINEAR);
    let Fixture { a, b, .. } = fixture();
    let inputs = [days_csv(place.dir.path(), 1), days_csv(place.dir.path(), 3)];
    let mut killed = 0;
    let mut finished_first = 0;
    for command in ["retrain", "predict", "rollback", "ingest"] {
        let mut took = Duration::ZERO;
        for round in 0..=kills {
            let day = DAYS[round % DAYS.len()];
            let input = s(&inputs[round % 2]).to_string();
            let args = |place: &Place| -> Vec<String> {
                let args: Vec<&str> = match command {
                    "retrain" => vec!["retrain", "--date", day],
                    "predict" => vec!["predict", "--date", day],
                    // To whichever of A and B is not the champion now.
                    "rollback" => {
                        let other = if champion(place) == *a { &b[..12] } else { &a[..12] };
                        vec!["rollback", "--to", other, "--reason", "crash harness"]
                    }
                    _ => vec!["ingest", "--replace", "--input", &input],
                };
                args.into_iter().map(String::from).collect()
            };
            // Round 0 times the command; later rounds kill it within that time.
            if round > 0 {
                let args = args(&place);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if kill_after(&place, &config, &args, rng.below(took.mul_f64(1.2))) {
                    killed += 1;
                } else {
                    finished_first += 1;
                }
                let report = doctor(&place, &[]);
                if report.1.code == 3 && command == "ingest" {
                    // Killed between writing and removing: named, mended by the rerun below.
                    assert!(report.1.stdout.contains("has 2 files"), "{:#}", report.0);
                } else {
                    doctor_finds_no_problem(&place);
                    assert_consistent(&place);
                }
            }
            let args = args(&place);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let started = Instant::now();
            let out = place.run(&config, &args);
            took = started.elapsed();
            assert_eq!(out.code, 0, "{command} after a kill:\n{}", out.stderr);
            doctor_finds_no_problem(&place);
            assert_consistent(&place);
        }
    }
    eprintln!("crash harness ({backend:?}): {killed} runs killed, {finished_first} ended before their kill");
    assert!(
        killed >= kills,
        "most runs are killed before they end ({killed} of {})",
        4 * kills
    );
}

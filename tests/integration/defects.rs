//! Regression tests for the reliability defects of issue 17 that live in the
//! registry, the config and the CLI: each test is named after its defect and
//! runs the real binary (the local backend; the protocol itself is covered on
//! both backends by `retrain` and `crash`).

use std::path::{Path, PathBuf};

use crate::retrain::{Backend, Place};
use crate::util::{LINEAR, copy_tree, repo_file, rossmann, rossmann_lake, run, s, shared_data, tempdir};

/// The rossmann config with `date_format = FORMAT` in its `[data]` section.
fn rossmann_with_date_format(dir: &Path, format: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
    let text = base.replacen(
        "date_column = \"Date\"\n",
        &format!("date_column = \"Date\"\ndate_format = \"{format}\"\n"),
        1,
    );
    assert_ne!(text, base, "the example config names its date column");
    let path = dir.join("salescast.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defect_9_an_unsupported_lake_uri_is_a_usage_error_naming_the_option() {
    let dir = tempdir();
    let out = run(dir.path(), &["--lake", "gs://bucket/lake", "check"]).expect_code(2);
    assert!(
        out.stderr.contains("--lake") && out.stderr.contains("gs://bucket/lake"),
        "{}",
        out.stderr
    );
    let out = run(
        dir.path(),
        &["--registry", "gs://bucket/registry", "models", "list"],
    )
    .expect_code(2);
    assert!(out.stderr.contains("--registry"), "{}", out.stderr);
}

#[test]
fn defect_9_a_bad_date_format_is_a_config_error_not_a_data_error() {
    let dir = tempdir();
    for format in ["%Q", "%Y-%m", "%"] {
        let config = rossmann_with_date_format(dir.path(), format);
        let out = run(
            dir.path(),
            &[
                "--config",
                s(&config),
                "--lake",
                s(&dir.path().join("lake")),
                "ingest",
                "--input",
                s(&shared_data("rossmann/train.csv")),
            ],
        )
        .expect_code(2);
        assert!(
            out.stderr.contains("data.date_format"),
            "{format}: {}",
            out.stderr
        );
        assert!(!dir.path().join("lake").exists(), "nothing was ingested");
    }
    // A good non-default format still passes the check.
    let config = rossmann_with_date_format(dir.path(), "%d/%m/%Y");
    run(
        dir.path(),
        &[
            "--config",
            s(&config),
            "--lake",
            s(rossmann_lake()),
            "check",
            "--date",
            "2015-07-31",
        ],
    )
    .expect_code(0);
}

#[test]
fn os_errors_are_printed_once() {
    let dir = tempdir();
    // The lake is a folder (a lake that is a file is refused before any
    // write, see bad_invocations.tsv), but where the store writes is a file.
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    std::fs::write(lake.join("dims"), "not a folder").unwrap();
    let stores = format!("store={}", s(&shared_data("rossmann/store.csv")));
    let out = rossmann(dir.path(), &lake, &["ingest", "--attributes", &stores]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let os_error = "(os error 20)";
    assert_eq!(
        out.stderr.matches(os_error).count(),
        1,
        "the OS error once:\n{}",
        out.stderr
    );
}

/// A local registry with two linear versions: `v1` (trained through
/// 2015-07-01) as champion, `v2` (2015-07-31) stored beside it.
fn two_versions_first_champion() -> (Place, PathBuf, String, String) {
    let place = Place::new(Backend::Local);
    let linear = place.config(LINEAR);
    let first = place.retrain(&linear, "2015-07-01").expect_code(0).json();
    let v1 = first["challenger"]["version"].as_str().unwrap().to_string();
    let second = place.retrain(&linear, "2015-07-31").expect_code(0).json();
    let v2 = second["challenger"]["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    if second["champion_after"] != v1.as_str() {
        place
            .registry_cmd(&["rollback", "--to", &v1, "--reason", "test setup"])
            .expect_code(0);
    }
    (place, linear, v1, v2)
}

fn version_file(place: &Place, version: &str, file: &str) -> PathBuf {
    Path::new(&place.registry).join(format!("sales/versions/{version}/{file}"))
}

fn champion_file(place: &Place) -> PathBuf {
    Path::new(&place.registry).join("sales/champion.json")
}

#[test]
fn defect_4_a_truncated_manifest_is_refused_by_rollback_and_listed_apart() {
    let (place, linear, v1, v2) = two_versions_first_champion();
    let manifest = version_file(&place, &v2, "manifest.json");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();

    // `models list` lists the broken version apart and goes on.
    let list = place.registry_cmd(&["models", "list"]).expect_code(0);
    let json = list.json();
    assert_eq!(json["champion"], v1.as_str());
    assert_eq!(json["versions"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(json["unreadable"][0]["version"], v2.as_str(), "{json:#}");
    assert!(
        list.stderr.contains("unreadable manifest"),
        "a warning: {}",
        list.stderr
    );

    // A rollback to it is refused, naming the file, and changes nothing.
    let pointer = std::fs::read(champion_file(&place)).unwrap();
    let refused = place
        .registry_cmd(&["rollback", "--to", &v2, "--reason", "x"])
        .expect_code(3);
    assert!(
        refused.stderr.contains(&format!("{v2}/manifest.json")) && refused.stderr.contains("must be whole"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(champion_file(&place)).unwrap(), pointer);

    // A retrain still runs, and rewriting the same version repairs its manifest.
    let rerun = place.retrain(&linear, "2015-07-31").expect_code(0).json();
    assert_eq!(rerun["challenger"]["version"], v2.as_str());
    assert_eq!(rerun["challenger"]["stored"], "repaired", "{rerun:#}");
    let json = place.registry_cmd(&["models", "list"]).expect_code(0).json();
    assert_eq!(json["versions"].as_array().unwrap().len(), 2, "{json:#}");
    assert!(json["unreadable"].as_array().unwrap().is_empty(), "{json:#}");

    // Its model.bin gone: a rollback to it is refused as damaged data (exit
    // 3, not 1), naming the file, and changes nothing; doctor names it.
    std::fs::remove_file(version_file(&place, &v2, "model.bin")).unwrap();
    let pointer = std::fs::read(champion_file(&place)).unwrap();
    let missing = format!("{v2}/model.bin is missing");
    let refused = place
        .registry_cmd(&["rollback", "--to", &v2, "--reason", "x"])
        .expect_code(3);
    assert!(refused.stderr.contains(&missing), "{}", refused.stderr);
    assert_eq!(std::fs::read(champion_file(&place)).unwrap(), pointer);
    let doctor = place.run(&linear, &["doctor"]).expect_code(3);
    assert!(doctor.stdout.contains(&missing), "{}", doctor.stdout);
}

#[test]
fn defect_5_a_garbage_champion_pointer_is_repaired_by_rollback_to() {
    let place = Place::new(Backend::Local);
    let linear = place.config(LINEAR);
    let first = place.retrain(&linear, "2015-07-01").expect_code(0).json();
    let v1 = first["challenger"]["version"].as_str().unwrap().to_string();
    std::fs::write(champion_file(&place), b"\x00garbage{").unwrap();

    // Other commands name the file and say how to repair it.
    for args in [
        &["models", "list"][..],
        &["models", "history"],
        &["rollback", "--reason", "x"],
    ] {
        let out = place.registry_cmd(args).expect_code(3);
        assert!(
            out.stderr.contains("champion.json") && out.stderr.contains("rollback --to"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = place.retrain(&linear, "2015-07-01").expect_code(3);
    assert!(out.stderr.contains("rollback --to"), "{}", out.stderr);

    // `rollback --to` replaces it, and the log records the repair.
    let back = place
        .registry_cmd(&["rollback", "--to", &v1[..12], "--reason", "pointer was garbage"])
        .expect_code(0)
        .json();
    assert_eq!(back["to"], v1.as_str(), "{back:#}");
    assert_eq!(back["repairs"][0]["kind"], "pointer_replaced", "{back:#}");
    assert_eq!(back["repairs"][0]["applied"], true, "{back:#}");
    let log = place.decisions();
    assert_eq!(log.len(), 2);
    let last = &log[1];
    assert_eq!(last["kind"], "rolled_back");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("repair:") && reason.contains("pointer was garbage"),
        "{reason}"
    );
    let list = place.registry_cmd(&["models", "list"]).expect_code(0).json();
    assert_eq!(list["champion"], v1.as_str());
    place.retrain(&linear, "2015-07-01").expect_code(0);
}

#[test]
fn defect_10_a_corrupt_non_champion_version_is_replaced_by_the_rerun_of_its_date() {
    let (place, linear, v1, v2) = two_versions_first_champion();
    let artifact = version_file(&place, &v2, "model.bin");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();

    // Loading it names the version and how to remove or replace it.
    let refused = place
        .registry_cmd(&["rollback", "--to", &v2, "--reason", "x"])
        .expect_code(3);
    assert!(
        refused.stderr.contains(&format!("versions/{v2}/")) && refused.stderr.contains("rerun"),
        "{}",
        refused.stderr
    );

    // The rerun of its date has the right bytes: it replaces the corrupt copy.
    let rerun = place.retrain(&linear, "2015-07-31").expect_code(0).json();
    assert_eq!(rerun["challenger"]["version"], v2.as_str());
    assert_eq!(rerun["challenger"]["stored"], "repaired", "{rerun:#}");
    let repaired = std::fs::read(&artifact).unwrap();
    assert_eq!(salescast_core::registry::sha256_hex(&repaired), v2);
    assert_ne!(v1, v2);
}

#[test]
fn defect_2_absurd_sales_are_refused_at_ingest_naming_file_row_and_column() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let file = repo_file("tests/data/malformed/absurd_sales.csv");
    let out = run(dir.path(), &["--lake", s(&lake), "ingest", "--input", s(&file)]).expect_code(3);
    assert!(
        out.stderr.contains("absurd_sales.csv")
            && out.stderr.contains("line 3, column \"sales\"")
            && out.stderr.contains("1e15"),
        "{}",
        out.stderr
    );
    assert!(!lake.join("sales").exists(), "nothing reached the lake");
}

#[test]
fn defect_2_a_registry_with_null_metrics_stays_readable() {
    let place = Place::new(Backend::Local);
    let first = place
        .retrain(&place.config(LINEAR), "2015-07-01")
        .expect_code(0)
        .json();
    let v1 = first["challenger"]["version"].as_str().unwrap().to_string();
    // What an older salescast wrote for metrics that overflowed.
    let null_metric = |path: &Path, pointer: &str| {
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        *json.pointer_mut(pointer).unwrap() = serde_json::Value::Null;
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    };
    null_metric(
        &version_file(&place, &v1, "manifest.json"),
        "/holdout_metrics/wape",
    );
    null_metric(
        &version_file(&place, &v1, "manifest.json"),
        "/validation_metrics/rmse",
    );
    let decision = Path::new(&place.registry).join("sales/decisions/00000001.json");
    null_metric(&decision, "/challenger_metrics/wape");

    let list = place.registry_cmd(&["models", "list"]).expect_code(0).json();
    assert_eq!(list["versions"][0]["version"], v1.as_str(), "{list:#}");
    assert!(
        list["versions"][0]["holdout_metrics"]["wape"].is_null(),
        "{list:#}"
    );
    place.registry_cmd(&["models", "show", &v1[..8]]).expect_code(0);
    let history = place.registry_cmd(&["models", "history"]).expect_code(0).json();
    assert_eq!(history["decisions"].as_array().unwrap().len(), 1);
    // The table a person reads works too.
    let mut args = vec![
        "--config".to_string(),
        s(&repo_file("examples/rossmann.toml")).to_string(),
        "--registry".to_string(),
        place.registry.clone(),
    ];
    args.extend(["models", "list"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let table = run(place.dir.path(), &args).expect_code(0);
    assert!(table.stdout.contains("NaN"), "{}", table.stdout);
}

/// What killed runs leave in `<root>/.salescast/tmp`, planted by hand: a dead
/// owner's lock file (nobody holds its lock) with one temp file, and a temp
/// file of the earlier naming (no owner file), both last written two hours
/// ago; also a fresh file with no owner, which a run on another host may
/// still be writing. Returns (what must go, what must stay).
fn plant_leftovers(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let tmp = root.join(".salescast/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let stale = [
        "4194303-18a2b3c4d5e6f708-0.owner",
        "4194303-18a2b3c4d5e6f708-0.0",
        "4194302-3-1764662400000000000",
    ]
    .map(|name| tmp.join(name));
    for path in &stale {
        std::fs::write(path, b"half a parquet file").unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(two_hours_ago).unwrap();
    }
    let fresh = tmp.join("4194301-1-1764662400000000001");
    std::fs::write(&fresh, b"still being written").unwrap();
    (stale.to_vec(), vec![fresh])
}

#[test]
fn defect_6_temp_files_of_killed_runs_are_removed_by_the_next_command() {
    let mut place = Place::new(Backend::Local);
    let lake = place.dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    place.lake = s(&lake).to_string();
    let (mut gone, mut kept) = plant_leftovers(&lake);
    let (registry_gone, registry_kept) = plant_leftovers(Path::new(&place.registry));
    gone.extend(registry_gone);
    kept.extend(registry_kept);

    let out = place.retrain(&place.config(LINEAR), "2015-07-01").expect_code(0);
    assert!(out.json()["challenger"]["version"].is_string(), "{}", out.stdout);
    // The operator is told, once per folder.
    assert_eq!(
        out.stderr
            .matches("removed 3 temporary files of runs that are gone")
            .count(),
        2,
        "{}",
        out.stderr
    );
    for path in &gone {
        assert!(!path.exists(), "{} is left over", path.display());
    }
    for path in &kept {
        assert!(
            path.exists(),
            "{} is gone though it may be in use",
            path.display()
        );
    }
    // Nothing else in the bookkeeping folder, nor the data, was touched.
    assert!(lake.join(".salescast/tmp").is_dir());
    assert!(lake.join("sales").is_dir());
}

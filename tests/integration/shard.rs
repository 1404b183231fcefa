//! Sharded `predict` against the S3 test server, N = 3, each shard a
//! separate process of the real binary: `predict --shard K/3` three times
//! (at once), then `predict --fan-in 3`, compared with an unsharded
//! `predict` of the same day and champion on a copy of the same lake (the
//! same partition bytes, and the same rows read back with pyarrow and
//! DuckDB); nothing visible before the fan-in; a shard killed before its
//! marker and retried gives the same partition; a fan-in with a shard
//! missing or damaged refuses (exit 6, naming the shard) and commits nothing;
//! shards run with two champions are refused, never mixed.

use std::path::Path;

use salescast_core::shard::shard_of;
use salescast_core::storage::{PutMode, S3Settings, Store};
use serde_json::Value;

use crate::crash::kill_at;
use crate::retrain::{Backend, CRIPPLED, Place, rossmann_s3_lake};
use crate::util::{Cli, LINEAR, Outcome, handle, python, s, s3_bucket, tempdir};

const DAY: &str = "2015-07-20";
const N: u32 = 3;
const PARTITION: &str = "predictions/sales/dt=2015-07-20/";

/// A registry with a champion trained on `DAY` and `lakes` private copies
/// of the rossmann S3 lake (sales and the store table).
pub(crate) fn site(lakes: usize) -> (Place, std::path::PathBuf, Vec<String>) {
    let mut place = Place::new(Backend::S3);
    let from = open(&place, rossmann_s3_lake());
    let keys: Vec<String> = from
        .list("")
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .filter(|k| k.starts_with("sales/") || k.starts_with("dims/"))
        .collect();
    let copies: Vec<String> = (0..lakes)
        .map(|_| format!("s3://{}/lake", s3_bucket("shard-lake")))
        .collect();
    for lake in &copies {
        let to = open(&place, lake);
        std::thread::scope(|scope| {
            for chunk in keys.chunks(keys.len().div_ceil(4).max(1)) {
                let (from, to) = (&from, &to);
                scope.spawn(move || {
                    for key in chunk {
                        to.put(key, &from.get(key).unwrap().bytes, PutMode::Create)
                            .unwrap();
                    }
                });
            }
        });
    }
    place.lake = copies[0].clone();
    let config = place.config(LINEAR);
    let report = place.retrain(&config, DAY).expect_code(0).json();
    assert_eq!(report["decision"], "promoted", "{report}");
    (place, config, copies)
}

pub(crate) fn open(place: &Place, uri: &str) -> Store {
    let settings = S3Settings {
        endpoint: place.flags.get(1).cloned(),
        ..Default::default()
    };
    salescast_core::storage::open(uri, &settings, handle()).unwrap()
}

/// The command line of a run on `lake` and the place's registry.
pub(crate) fn cli(place: &Place, config: &Path, lake: &str) -> Cli {
    Cli::new(config, lake)
        .registry(&place.registry)
        .json()
        .flags(&place.flags)
}

/// Runs `predict --date DAY` with `extra` on `lake`.
fn predict(place: &Place, config: &Path, lake: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["predict", "--date", DAY];
    args.extend_from_slice(extra);
    cli(place, config, lake).run(place.dir.path(), &args)
}

/// The N shards as N processes at once; their reports.
fn all_shards(place: &Place, config: &Path, lake: &str) -> Vec<Value> {
    let children: Vec<_> = (0..N)
        .map(|k| {
            let shard = format!("{k}/{N}");
            cli(place, config, lake)
                .command(place.dir.path(), &["predict", "--date", DAY, "--shard", &shard])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let outcome = Outcome {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            outcome.expect_code(0).json()
        })
        .collect()
}

/// The committed partition's objects (key, bytes), sorted by key.
fn partition(place: &Place, lake: &str) -> Vec<(String, Vec<u8>)> {
    let store = open(place, lake);
    let mut objects: Vec<(String, Vec<u8>)> = store
        .list(PARTITION)
        .unwrap()
        .into_iter()
        .map(|m| (m.key.clone(), store.get(&m.key).unwrap().bytes))
        .collect();
    objects.sort();
    objects
}

/// Writes a partition's objects under `dir` as local files.
fn to_folder(objects: &[(String, Vec<u8>)], dir: &Path) {
    for (key, bytes) in objects {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Every row of the committed partition (read through its manifest with
/// pyarrow), sorted, as JSON lines; and DuckDB's count over the folder's
/// Parquet files, as Athena reads it.
fn rows_read_back(objects: &[(String, Vec<u8>)]) -> (String, String) {
    let dir = tempdir();
    to_folder(objects, dir.path());
    let folder = dir.path().join(PARTITION);
    let rows = python(
        r#"
import json, sys, pathlib
import pyarrow as pa, pyarrow.parquet as pq
root = pathlib.Path(sys.argv[1])
manifest = json.loads((root / sys.argv[2] / "_manifest.json").read_text())
t = pa.concat_tables([pq.read_table(root / f["key"]) for f in manifest["files"]])
assert t.num_rows == manifest["rows"], (t.num_rows, manifest["rows"])
cols = ["series", "Store", "target_date", "horizon", "forecast", "lower", "upper", "model_sha256", "data_day", "planned"]
rows = sorted(json.dumps([str(r[c]) if c in ("target_date", "data_day") else r[c] for c in cols]) for r in t.to_pylist())
print("\n".join(rows))
"#,
        &[s(dir.path()), PARTITION],
    );
    let duck = python(
        r#"
import sys, duckdb
print(duckdb.connect().execute(f"select count(*), count(distinct series), sum(forecast) from read_parquet('{sys.argv[1]}/*.parquet')").fetchone())
"#,
        &[s(&folder)],
    );
    (rows, duck)
}

#[test]
fn a_sharded_predict_commits_the_single_runs_partition() {
    let (place, config, lakes) = site(2);
    let (sharded, single) = (&lakes[0], &lakes[1]);
    let one = predict(&place, &config, single, &[]).expect_code(0).json();

    let shards = all_shards(&place, &config, sharded);
    let series: Vec<u64> = shards.iter().map(|r| r["series"].as_u64().unwrap()).collect();
    assert_eq!(
        series.iter().sum::<u64>(),
        one["series"].as_u64().unwrap(),
        "{shards:?}"
    );
    assert!(
        series.iter().all(|&n| n > 0),
        "every shard has series: {series:?}"
    );
    let stores = crate::predict::stores();
    let by_library: Vec<u64> = (0..N)
        .map(|k| stores.iter().filter(|s| shard_of(&[s.as_str()], N) == k).count() as u64)
        .collect();
    assert_eq!(
        series, by_library,
        "the binary shards as salescast_core::shard::shard_of"
    );
    for (k, report) in shards.iter().enumerate() {
        assert_eq!(report["shard"], serde_json::json!({"k": k, "n": N}));
        assert_eq!(report["written"]["outcome"], "written");
    }
    assert!(
        partition(&place, sharded).is_empty(),
        "nothing is in the partition before the fan-in"
    );
    let fanned = predict(&place, &config, sharded, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(fanned["fan_in"], N);
    assert_eq!(fanned["rows"], one["rows"]);
    assert_eq!(fanned["version"], one["version"]);
    assert_eq!(fanned["written"]["outcome"], "written");

    let (a, b) = (partition(&place, sharded), partition(&place, single));
    assert_eq!(
        a.len(),
        2,
        "one part file and the manifest: {:?}",
        a.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    assert_eq!(a, b, "the same partition, byte for byte");
    let (rows_a, duck_a) = rows_read_back(&a);
    let (rows_b, duck_b) = rows_read_back(&b);
    assert_eq!(rows_a.lines().count(), one["rows"].as_u64().unwrap() as usize);
    assert_eq!(rows_a, rows_b, "the same rows read back");
    assert_eq!(duck_a, duck_b);

    // Readers: the doctor reads every committed day back; monitor scores it.
    let doctor = place
        .cli(&config)
        .run(place.dir.path(), &["doctor", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(doctor["prediction_days"], 1, "{doctor}");
    let monitor = |lake: &str| {
        let out = cli(&place, &config, lake)
            .run(place.dir.path(), &["monitor", "--date", "2015-07-21"])
            .expect_code(0)
            .json();
        out["days"].clone()
    };
    assert_eq!(monitor(sharded), monitor(single));

    // Reruns: a shard and the fan-in write nothing; so does the single run.
    let again = predict(&place, &config, sharded, &["--shard", "1/3"])
        .expect_code(0)
        .json();
    assert_eq!(again["written"]["outcome"], "unchanged");
    let again = predict(&place, &config, sharded, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(again["written"]["outcome"], "unchanged");
    let again = predict(&place, &config, sharded, &[]).expect_code(0).json();
    assert_eq!(again["written"]["outcome"], "unchanged");
    assert_eq!(partition(&place, sharded), b);
}

/// The fan-in refused with exit 6 naming `shard`, and committed nothing.
fn refused(out: Outcome, shard: &str, place: &Place, lake: &str) {
    let out = out.expect_code(6);
    assert!(
        out.stderr.contains(&format!("shard {shard}")) && out.stderr.contains("cannot fan in the 3 shards"),
        "{}",
        out.stderr
    );
    assert!(
        !partition(place, lake)
            .iter()
            .any(|(k, _)| k.ends_with("_manifest.json")),
        "no manifest after a refused fan-in"
    );
}

#[test]
fn a_shard_killed_before_its_marker_and_retried_gives_the_same_partition() {
    let (place, config, lakes) = site(1);
    let lake = &lakes[0];
    kill_at(
        &place,
        &config,
        &["predict", "--date", DAY, "--shard", "1/3"],
        "shard-staged",
    );
    for k in [0, 2] {
        predict(&place, &config, lake, &["--shard", &format!("{k}/3")]).expect_code(0);
    }
    // Its file is staged, its marker is not: the fan-in refuses.
    refused(
        predict(&place, &config, lake, &["--fan-in", "3"]),
        "1/3",
        &place,
        lake,
    );
    let retried = predict(&place, &config, lake, &["--shard", "1/3"])
        .expect_code(0)
        .json();
    assert_eq!(retried["written"]["outcome"], "written");
    predict(&place, &config, lake, &["--fan-in", "3"]).expect_code(0);
    let committed = partition(&place, lake);
    // The unsharded run of the same day and champion finds the same bytes.
    let single = predict(&place, &config, lake, &[]).expect_code(0).json();
    assert_eq!(single["written"]["outcome"], "unchanged", "{single}");
    assert_eq!(partition(&place, lake), committed);
}

#[test]
fn a_fan_in_with_a_shard_missing_or_damaged_refuses_and_commits_nothing() {
    let (place, config, lakes) = site(1);
    let lake = &lakes[0];
    for k in [0, 2] {
        predict(&place, &config, lake, &["--shard", &format!("{k}/3")]).expect_code(0);
    }
    refused(
        predict(&place, &config, lake, &["--fan-in", "3"]),
        "1/3",
        &place,
        lake,
    );
    // A fan-in of another N finds none of its shards.
    let out = predict(&place, &config, lake, &["--fan-in", "2"]).expect_code(6);
    assert!(
        out.stderr.contains("shard 0/2") && out.stderr.contains("shard 1/2"),
        "{}",
        out.stderr
    );

    let report = predict(&place, &config, lake, &["--shard", "1/3"])
        .expect_code(0)
        .json();
    // A staged file that no longer matches its marker.
    let file = report["written"]["marker"]["file"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let store = open(&place, lake);
    store.put(&file, b"damaged", PutMode::Overwrite).unwrap();
    let out = predict(&place, &config, lake, &["--fan-in", "3"]);
    refused(out, "1/3", &place, lake);
    store.delete(&file).unwrap();
    let out = predict(&place, &config, lake, &["--fan-in", "3"]);
    let stderr = out.stderr.clone();
    refused(out, "1/3", &place, lake);
    assert!(stderr.contains("missing"), "{stderr}");
    // Retried, the shard mends it.
    predict(&place, &config, lake, &["--shard", "1/3"]).expect_code(0);
    let done = predict(&place, &config, lake, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(done["written"]["outcome"], "written");

    // A shard without any series stages an empty part and fans in.
    let stores = crate::predict::stores();
    let many = 4096;
    let empty = (0..many)
        .find(|&k| stores.iter().all(|s| shard_of(&[s.as_str()], many) != k))
        .unwrap();
    let report = predict(&place, &config, lake, &["--shard", &format!("{empty}/{many}")])
        .expect_code(0)
        .json();
    assert_eq!(
        (report["series"].as_u64(), report["rows"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
}

#[test]
fn shards_of_another_champion_are_refused_not_mixed() {
    let (place, config, lakes) = site(1);
    let lake = &lakes[0];
    let stored = place.retrain(&place.config(CRIPPLED), DAY).expect_code(0).json();
    let b = stored["challenger"]["version"].as_str().unwrap().to_string();
    for k in [0, 1] {
        predict(&place, &config, lake, &["--shard", &format!("{k}/3")]).expect_code(0);
    }
    // The champion changes between the shards.
    place
        .run(&config, &["rollback", "--to", &b, "--reason", "test"])
        .expect_code(0);
    predict(&place, &config, lake, &["--shard", "2/3"]).expect_code(0);
    let out = predict(&place, &config, lake, &["--fan-in", "3"]);
    let stderr = out.stderr.clone();
    refused(out, "0/3", &place, lake);
    assert!(
        stderr.contains("shard 1/3") && !stderr.contains("shard 2/3") && stderr.contains("another model"),
        "{stderr}"
    );
    for k in [0, 1] {
        predict(&place, &config, lake, &["--shard", &format!("{k}/3")]).expect_code(0);
    }
    // Staging of earlier days: more than 14 days before DAY (expires with
    // this fan-in), and within them (kept, for a retried fan-in of its day).
    let older = ["2015-06-01", "2015-07-10"]
        .map(|d| format!("predictions/sales/_shards/dt={d}/{b}/shard-0-of-3.json"));
    for key in &older {
        open(&place, lake).put(key, b"{}", PutMode::Overwrite).unwrap();
    }
    let done = predict(&place, &config, lake, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(done["version"], b.as_str());
    assert!(
        open(&place, lake).head(&older[0]).is_err(),
        "{} expired",
        older[0]
    );
    assert!(open(&place, lake).head(&older[1]).is_ok(), "{} kept", older[1]);
    open(&place, lake).delete(&older[1]).unwrap();
    let staged: Vec<String> = open(&place, lake)
        .list("predictions/sales/_shards/")
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(staged.len(), 6, "the champion's 3 markers and files: {staged:?}");
    assert!(
        staged.iter().all(|k| k.contains(&b)),
        "the first champion's staged shards removed: {staged:?}"
    );
}

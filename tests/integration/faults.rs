//! S3 faults (issue 17): salescast against the S3 test server through a
//! fault-injecting proxy (`tests/s3_fault_proxy.py`) that answers 500
//! InternalError and 503 SlowDown, resets connections before and after
//! forwarding, delays, and truncates response bodies. Retrain (two dates),
//! predict and rollback run once through the proxy without faults and once
//! with 10% of the requests faulted; the decisions, champion, versions and
//! predictions must be the same, faults and retries must have happened, and
//! the request count must stay within 3x. A step that fails under faults must
//! say so clearly, change neither pointer nor log, and succeed when run again.
//! Writes throttled beyond the SDK's 6 attempts fail the retrain with the
//! S3 error and the object named, log nothing, and the next run succeeds.
//! Also the regression tests of the defects the proxy found: a conditional
//! write whose response was lost was retried by the SDK and then failed its
//! own precondition (412), so a retrain called itself superseded by its own
//! decision (exit 4); and a read whose body was truncated was not retried.
//!
//! By hand: `scripts/test.sh --test integration -- faults --nocapture` prints
//! the proxy's counts of each run. The proxy alone, in front of the S3 server
//! that scripts/test.sh starts (or any moto), is described in its header:
//! `python tests/s3_fault_proxy.py --upstream http://127.0.0.1:PORT --rate 0.1`
//! prints the URL to give salescast as `--s3-endpoint`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use salescast_core::storage::{self, PutMode, S3Settings, StoreError};
use serde_json::{Value, json};

use crate::retrain::{CRIPPLED, rossmann_s3_lake};
use crate::util::{
    Cli, LINEAR, Outcome, handle, python, repo_file, rossmann_config, s3_bucket, s3_endpoint, tempdir,
};

/// The proxy, stopped when dropped.
struct Proxy {
    child: Child,
    endpoint: String,
    stats: PathBuf,
}

impl Proxy {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Self {
        let interpreter = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let stats = dir.join(format!("{name}-stats.json"));
        let mut child = Command::new(&interpreter)
            .arg(repo_file("tests/s3_fault_proxy.py"))
            .args(["--upstream", &s3_endpoint(), "--stats"])
            .arg(&stats)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {interpreter}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the proxy did not start: {line:?}"))
            .to_string();
        Proxy {
            child,
            endpoint,
            stats,
        }
    }

    fn stats(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.stats).unwrap()).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of the shared S3 lake in a new bucket (predict writes into it),
/// copied server-side, and an empty registry beside it.
fn fresh_place(purpose: &str) -> (String, String) {
    let from = rossmann_s3_lake();
    let (from_bucket, from_prefix) = from.strip_prefix("s3://").unwrap().split_once('/').unwrap();
    let bucket = s3_bucket(purpose);
    python(
        r#"
import sys, boto3
endpoint, src, prefix, dst = sys.argv[1:]
c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
for page in c.get_paginator("list_objects_v2").paginate(Bucket=src, Prefix=prefix + "/"):
    for o in page.get("Contents", []):
        c.copy_object(Bucket=dst, Key=o["Key"], CopySource={"Bucket": src, "Key": o["Key"]})
"#,
        &[&s3_endpoint(), from_bucket, from_prefix, &bucket],
    );
    (
        format!("s3://{bucket}/{from_prefix}"),
        format!("s3://{bucket}/registry"),
    )
}

/// What one scenario ended with, as compared between the runs, and what it cost.
struct Ended {
    result: Value,
    /// Requests salescast counted itself (retries included): retrains and rollback.
    counted: u64,
    /// Steps that failed under faults (then run again).
    failed: Vec<String>,
}

/// The sum of a `{store: {operation: n}}` or `{operation: n}` tree of counts.
fn total(counts: &Value) -> u64 {
    match counts {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::Object(map) => map.values().map(total).sum(),
        _ => 0,
    }
}

/// Retrain on two dates, predict, and roll back to the other version, all
/// through `endpoint`; then the state read back directly from the S3 server.
fn scenario(endpoint: &str, purpose: &str) -> Ended {
    let dir = tempdir();
    let (lake, registry) = fresh_place(purpose);
    let through = |config: &Path| {
        Cli::new(config, &lake)
            .registry(&registry)
            .json()
            .flags(&["--s3-endpoint".into(), endpoint.into()])
    };
    let direct = Cli::new(&repo_file("examples/rossmann.toml"), &lake)
        .registry(&registry)
        .json()
        .flags(&["--s3-endpoint".into(), s3_endpoint()]);
    // Pointer and decision log, read past the proxy.
    let registry_state = || {
        let store = storage::open(
            &registry,
            &S3Settings {
                endpoint: Some(s3_endpoint()),
                ..Default::default()
            },
            handle(),
        )
        .unwrap();
        let mut state: Vec<(String, Vec<u8>)> = Vec::new();
        for meta in store.list("sales/decisions/").unwrap() {
            state.push((meta.key.clone(), store.get(&meta.key).unwrap().bytes));
        }
        if let Ok(pointer) = store.get("sales/champion.json") {
            state.push(("sales/champion.json".into(), pointer.bytes));
        }
        state
    };
    let mut failed = Vec::new();
    let mut step = |config: &Path, args: &[&str]| -> Value {
        let before = registry_state();
        let out = through(config).run(dir.path(), args);
        if out.code == 0 {
            return out.json();
        }
        // Beyond the retry budget: a clear error, nothing changed, and the
        // same command succeeds when run again.
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stderr.contains("s3://"),
            "the error names the object:\n{}",
            out.stderr
        );
        assert_eq!(
            registry_state(),
            before,
            "a failed {args:?} changed the pointer or the log"
        );
        failed.push(format!("{args:?} exit {}: {}", out.code, out.stderr.trim()));
        through(config).run(dir.path(), args).expect_code(0).json()
    };
    let linear = rossmann_config(dir.path(), LINEAR);
    let crippled = rossmann_config(dir.path(), CRIPPLED);
    let first = step(&linear, &["retrain", "--date", "2015-07-01"]);
    let second = step(&crippled, &["retrain", "--date", "2015-07-31"]);
    let predicted = step(&linear, &["predict", "--date", "2015-07-31"]);
    let versions = [&first, &second].map(|r| r["challenger"]["version"].as_str().unwrap().to_string());
    let champion = second["champion_after"].as_str().unwrap().to_string();
    let other = versions.iter().find(|v| **v != champion).unwrap().clone();
    let rolled = step(&linear, &["rollback", "--to", &other, "--reason", "fault test"]);
    let counted = [&first, &second]
        .iter()
        .map(|r| total(&r["cost"]["s3_requests"]))
        .sum::<u64>()
        + total(&rolled["s3_requests"]);

    let history = run_direct(&direct, dir.path(), &["models", "history"]);
    let decisions: Vec<Value> = history["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            json!([
                d["sequence"],
                d["kind"],
                d["champion_before"],
                d["champion_after"],
                d["challenger"],
                d["reason"],
                d["recovered"]
            ])
        })
        .collect();
    let list = run_direct(&direct, dir.path(), &["models", "list"]);
    let mut stored: Vec<String> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    stored.sort();
    let lake_store = storage::open(
        &lake,
        &S3Settings {
            endpoint: Some(s3_endpoint()),
            ..Default::default()
        },
        handle(),
    )
    .unwrap();
    let manifest = lake_store
        .get("predictions/sales/dt=2015-07-31/_manifest.json")
        .unwrap()
        .bytes;
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    Ended {
        result: json!({
            "decisions": [first["decision"], second["decision"]],
            "versions": versions,
            "log": decisions,
            "champion": list["champion"],
            "stored_versions": stored,
            "rolled_back": [rolled["from"], rolled["to"]],
            "predicted": [predicted["version"], predicted["series"], predicted["rows"]],
            "predictions_manifest": manifest,
        }),
        counted,
        failed,
    }
}

fn run_direct(cli: &Cli, dir: &Path, args: &[&str]) -> Value {
    let out: Outcome = cli.run(dir, args);
    out.expect_code(0).json()
}

#[test]
fn retrain_predict_and_rollback_under_ten_percent_faults_end_as_without() {
    let dir = tempdir();
    let clean = Proxy::start(dir.path(), "clean", &["--rate", "0"]);
    let calm = scenario(&clean.endpoint, "faults-clean");
    let calm_stats = clean.stats();
    drop(clean);
    let faulty = Proxy::start(dir.path(), "faulty", &["--rate", "0.1", "--seed", "17"]);
    let rough = scenario(&faulty.endpoint, "faults-injected");
    let stats = faulty.stats();
    drop(faulty);
    println!(
        "without faults: proxy {calm_stats}, salescast counted {}",
        calm.counted
    );
    println!(
        "with faults:    proxy {stats}, salescast counted {}",
        rough.counted
    );
    println!("steps failed under faults (then rerun): {:#?}", rough.failed);
    assert!(calm.failed.is_empty(), "{:#?}", calm.failed);
    assert_eq!(calm_stats["faults_total"], 0);
    assert_eq!(
        rough.result, calm.result,
        "the same result with and without faults"
    );

    let faults = stats["faults_total"].as_u64().unwrap();
    let requests = stats["requests"].as_u64().unwrap();
    assert!(
        faults * 20 > requests && faults * 5 < requests,
        "about 10% of {requests} requests faulted, not {faults}"
    );
    for (kind, n) in stats["faults"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() > 0, "no {kind} fault was injected: {stats}");
    }
    assert!(
        stats["retries"].as_u64().unwrap() > 0,
        "the SDK retried nothing: {stats}"
    );
    assert!(
        rough.counted > calm.counted,
        "salescast's own counts show the retries: {} vs {}",
        rough.counted,
        calm.counted
    );
    let calm_requests = calm_stats["requests"].as_u64().unwrap();
    assert!(
        requests < 3 * calm_requests,
        "requests bounded: {requests} with faults, {calm_requests} without"
    );
}

/// A store in a new bucket on the S3 server: through `proxy`, and direct.
fn stores(proxy: &Proxy, purpose: &str) -> (storage::Store, storage::Store) {
    let uri = format!("s3://{}/x", s3_bucket(purpose));
    let open = |endpoint: &str| {
        let settings = S3Settings {
            endpoint: Some(endpoint.to_string()),
            ..Default::default()
        };
        storage::open(&uri, &settings, handle()).unwrap()
    };
    (open(&proxy.endpoint), open(&s3_endpoint()))
}

#[test]
fn a_conditional_write_whose_response_was_lost_is_done_not_a_conflict() {
    let dir = tempdir();
    // The first PUT of each key reaches the server, then its response is
    // lost; the SDK's retry then meets what that first request did.
    let proxy = Proxy::start(
        dir.path(),
        "lost",
        &[
            "--rate",
            "1",
            "--kinds",
            "reset_after",
            "--methods",
            "PUT",
            "--first-only",
        ],
    );
    let (store, direct) = stores(&proxy, "lost-write");
    // This run's own create and compare-and-swap: done, at the version stored.
    let created = store.put("create.json", b"one", PutMode::Create).unwrap();
    assert_eq!(direct.get("create.json").unwrap().version, created.version);
    let old = direct.put("update.json", b"old", PutMode::Create).unwrap();
    let updated = store
        .put("update.json", b"new", PutMode::Update(old.version.clone()))
        .unwrap();
    let there = direct.get("update.json").unwrap();
    assert_eq!(
        (there.bytes.as_slice(), there.version),
        (&b"new"[..], updated.version)
    );
    // Real conflicts are still conflicts: another object there, a stale version.
    direct.put("taken.json", b"theirs", PutMode::Create).unwrap();
    assert!(matches!(
        store.put("taken.json", b"mine", PutMode::Create),
        Err(StoreError::AlreadyExists { .. })
    ));
    let v1 = direct.put("stale.json", b"v1", PutMode::Create).unwrap();
    direct.put("stale.json", b"v2", PutMode::Overwrite).unwrap();
    assert!(matches!(
        store.put("stale.json", b"v3", PutMode::Update(v1.version)),
        Err(StoreError::Precondition { .. })
    ));
    assert_eq!(direct.get("taken.json").unwrap().bytes, b"theirs");
    assert_eq!(direct.get("stale.json").unwrap().bytes, b"v2");
    let stats = proxy.stats();
    assert_eq!(
        stats["faults"]["reset_after"], 4,
        "one lost response per key: {stats}"
    );
    assert_eq!(stats["retries"], 4, "{stats}");
}

#[test]
fn retrains_and_a_rollback_whose_first_writes_all_lose_their_response_end_as_without() {
    let dir = tempdir();
    // The first PUT of every object reaches the server and its answer is
    // lost: each create-only write (version, decision) and each pointer
    // compare-and-swap is retried by the SDK against its own first write.
    let proxy = Proxy::start(
        dir.path(),
        "lost-writes",
        &[
            "--rate",
            "1",
            "--kinds",
            "reset_after",
            "--methods",
            "PUT",
            "--first-only",
        ],
    );
    let registry = format!("s3://{}/registry", s3_bucket("lost-writes"));
    let cli = |extra: &str| {
        Cli::new(&rossmann_config(dir.path(), extra), rossmann_s3_lake())
            .registry(&registry)
            .json()
            .flags(&["--s3-endpoint".into(), proxy.endpoint.clone()])
    };
    let first = cli(LINEAR)
        .run(dir.path(), &["retrain", "--date", "2015-07-01"])
        .expect_code(0)
        .json();
    assert_eq!(first["decision"], "promoted", "{first:#}");
    let second = cli(CRIPPLED)
        .run(dir.path(), &["retrain", "--date", "2015-07-31"])
        .expect_code(0)
        .json();
    let champion = second["champion_after"].as_str().unwrap().to_string();
    let other = [&first, &second]
        .map(|r| r["challenger"]["version"].as_str().unwrap().to_string())
        .into_iter()
        .find(|v| *v != champion)
        .unwrap();
    cli(LINEAR)
        .run(
            dir.path(),
            &["rollback", "--to", &other, "--reason", "lost answers"],
        )
        .expect_code(0);
    let direct = Cli::new(&repo_file("examples/rossmann.toml"), rossmann_s3_lake())
        .registry(&registry)
        .json()
        .flags(&["--s3-endpoint".into(), s3_endpoint()]);
    let history = run_direct(&direct, dir.path(), &["models", "history"]);
    let log: Vec<Value> = history["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!([d["sequence"], d["kind"], d["champion_after"], d["recovered"]]))
        .collect();
    assert_eq!(
        log,
        [
            json!([1, "promoted", first["challenger"]["version"], false]),
            json!([2, second["decision"], champion, false]),
            json!([3, "rolled_back", other, false]),
        ]
    );
    let list = run_direct(&direct, dir.path(), &["models", "list"]);
    assert_eq!(list["champion"], other.as_str());
    let stats = proxy.stats();
    assert!(
        stats["upstream_status"]["412"].as_u64().unwrap_or(0) >= 3,
        "the retries met their own writes (412): {stats}"
    );
}

#[test]
fn a_retrain_beyond_the_retry_budget_fails_clearly_and_changes_nothing() {
    let dir = tempdir();
    // Every write is throttled, every attempt: the SDK gives up.
    let proxy = Proxy::start(
        dir.path(),
        "throttled",
        &["--rate", "1", "--kinds", "slowdown_503", "--methods", "PUT"],
    );
    let registry = format!("s3://{}/registry", s3_bucket("throttled"));
    let config = rossmann_config(dir.path(), LINEAR);
    let cli = |endpoint: &str| {
        Cli::new(&config, rossmann_s3_lake())
            .registry(&registry)
            .json()
            .flags(&["--s3-endpoint".into(), endpoint.into()])
    };
    let started = std::time::Instant::now();
    let failed = cli(&proxy.endpoint)
        .run(dir.path(), &["retrain", "--date", "2015-07-31"])
        .expect_code(1);
    println!(
        "throttled retrain failed in {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        failed.stderr.lines().last().unwrap_or_default()
    );
    assert!(
        failed.stderr.contains("SlowDown") && failed.stderr.contains(&registry),
        "the error names the throttling and the object:\n{}",
        failed.stderr
    );
    let stats = proxy.stats();
    let puts = stats["by_method"]["PUT"].as_u64().unwrap();
    assert!(
        puts > 0 && puts.is_multiple_of(6),
        "6 attempts per write, then it stops: {stats}"
    );
    assert!(puts <= 12, "bounded: {stats}");
    let direct = cli(&s3_endpoint());
    let listed = run_direct(&direct, dir.path(), &["models", "history"]);
    assert_eq!(listed["decisions"], json!([]), "nothing logged");
    // The next run, with S3 answering again, succeeds.
    let next = direct
        .run(dir.path(), &["retrain", "--date", "2015-07-31"])
        .expect_code(0)
        .json();
    assert_eq!(next["decision"], "promoted", "{next:#}");
}

#[test]
fn a_read_whose_body_was_truncated_is_read_again() {
    let dir = tempdir();
    let proxy = Proxy::start(
        dir.path(),
        "truncated",
        &[
            "--rate",
            "1",
            "--kinds",
            "truncate_after",
            "--methods",
            "GET",
            "--first-only",
        ],
    );
    let (store, _) = stores(&proxy, "truncated-read");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    store.put("big.bin", &bytes, PutMode::Create).unwrap();
    assert_eq!(store.get("big.bin").unwrap().bytes, bytes);
    let stats = proxy.stats();
    assert_eq!(stats["faults"]["truncate_after"], 1, "{stats}");
}

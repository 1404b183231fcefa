//! The daily job on the real rossmann lake, run unchanged against every
//! backend (a local folder, and S3 on the local server): the first run
//! promotes over the baseline, a rerun adds no version, a worse challenger is
//! kept out with the reason logged, rollback restores the previous champion,
//! two racing runs have one winner, and a corrupted artifact is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use salescast_core::registry::Registry;
use salescast_core::storage::{self, AsyncStore, Object, ObjectMeta, PutMode, S3Settings, Store, StoreError};

use crate::util::{
    Cli, LINEAR, Outcome, QUICK, handle, on_every_backend, repo_file, rossmann_config, rossmann_lake, s,
    s3_bucket, s3_endpoint, tempdir,
};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Local,
    S3,
}

/// Where a test's lake and registry are, and the flags that reach them.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub lake: String,
    pub registry: String,
    pub flags: Vec<String>,
}

impl Place {
    pub fn new(backend: Backend) -> Self {
        let dir = tempdir();
        match backend {
            Backend::Local => Place {
                registry: s(&dir.path().join("registry")).to_string(),
                lake: s(rossmann_lake()).to_string(),
                flags: vec![],
                dir,
            },
            Backend::S3 => Place {
                registry: format!("s3://{}/registry", s3_bucket("registry")),
                lake: rossmann_s3_lake().to_string(),
                flags: vec!["--s3-endpoint".into(), s3_endpoint()],
                dir,
            },
        }
    }

    /// The registry's store, as the library opens it.
    pub fn registry_store(&self) -> Store {
        let settings = S3Settings {
            endpoint: self.flags.get(1).cloned(),
            ..Default::default()
        };
        storage::open(&self.registry, &settings, handle()).unwrap()
    }

    /// Runs the binary with the lake, the registry and `config`.
    pub fn run(&self, config: &Path, args: &[&str]) -> Outcome {
        self.cli(config).run(self.dir.path(), args)
    }

    /// The command line of a run on this place's lake and registry.
    pub fn cli(&self, config: &Path) -> Cli {
        Cli::new(config, &self.lake)
            .registry(&self.registry)
            .json()
            .flags(&self.flags)
    }

    pub fn retrain(&self, config: &Path, date: &str) -> Outcome {
        self.run(config, &["retrain", "--date", date])
    }

    pub fn registry_cmd(&self, args: &[&str]) -> Outcome {
        self.run(&repo_file("examples/rossmann.toml"), args)
    }

    pub fn decisions(&self) -> Vec<serde_json::Value> {
        let history = self.registry_cmd(&["models", "history"]).expect_code(0).json();
        history["decisions"].as_array().unwrap().clone()
    }

    pub fn version_count(&self) -> usize {
        self.registry_cmd(&["models", "list"]).expect_code(0).json()["versions"]
            .as_array()
            .unwrap()
            .len()
    }

    /// A config for the rossmann lake with extra TOML appended.
    pub fn config(&self, extra: &str) -> PathBuf {
        rossmann_config(self.dir.path(), extra)
    }
}

pub(crate) fn rossmann_s3_lake() -> &'static str {
    static LAKE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LAKE.get_or_init(|| {
        let lake = format!("s3://{}/lake", s3_bucket("rossmann"));
        let dir = tempdir();
        let stores = format!("store={}", s(&crate::util::shared_data("rossmann/store.csv")));
        let train = crate::util::shared_data("rossmann/train.csv");
        Cli::new(&repo_file("examples/rossmann.toml"), &lake)
            .flags(&["--s3-endpoint".into(), s3_endpoint()])
            .run(
                dir.path(),
                &["ingest", "--input", s(&train), "--attributes", &stores],
            )
            .expect_code(0);
        lake
    })
}

/// A store that records every call it passes on: each is one request to S3
/// (a listing may be more than one when it pages).
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn AsyncStore>,
    calls: std::sync::Mutex<Vec<String>>,
}

impl Counting {
    fn note(&self, call: &str, key: &str) {
        self.calls.lock().unwrap().push(format!("{call} {key}"));
    }
}

#[async_trait::async_trait]
impl AsyncStore for Counting {
    fn uri_of(&self, key: &str) -> String {
        self.inner.uri_of(key)
    }
    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.note("get", key);
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.note("head", key);
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError> {
        self.note("put", key);
        self.inner.put(key, bytes, mode).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.note("list", prefix);
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.note("delete", key);
        self.inner.delete(key).await
    }
}

/// A deliberately crippled config: the seasonal-naive rule is the only candidate.
pub const CRIPPLED: &str = "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\"]\n";

on_every_backend!(
    first_run_promotes_and_a_rerun_adds_no_version,
    a_worse_challenger_is_not_promoted_and_rollback_restores,
    a_dry_run_writes_nothing,
    two_racing_retrains_have_exactly_one_winner,
    a_corrupted_artifact_is_refused_on_load,
);

fn first_run_promotes_and_a_rerun_adds_no_version(backend: Backend) {
    let place = Place::new(backend);
    let quick = place.config(QUICK);
    let first = place.retrain(&quick, "2015-07-31").expect_code(0).json();
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
    let store = place.registry_store();
    assert!(store.head(&format!("sales/versions/{version}/model.bin")).is_ok());
    assert!(store.head("sales/runs/2015-07-31/report.md").is_ok());

    let again = place.retrain(&quick, "2015-07-31").expect_code(0);
    assert!(
        again
            .stderr
            .contains("the challenger is the champion: its scores on the holdout are the champion's"),
        "the champion (the same bytes) is not scored twice: {}",
        again.stderr
    );
    let again = again.json();
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
    assert_eq!(place.version_count(), 1);
    let shown = place
        .registry_cmd(&["models", "show", &version[..8]])
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
    assert_eq!(manifest["config"]["training"]["gbdt"]["max_rounds"], 150);
    assert_eq!(manifest["holdout_metrics"], first["challenger"]["holdout"]);
    let log = place.decisions();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["kind"], "promoted");
    assert_eq!(log[1]["kind"], "kept");
}

fn a_worse_challenger_is_not_promoted_and_rollback_restores(backend: Backend) {
    let place = Place::new(backend);
    // v1: a linear model, promoted over the baseline.
    let v1 = place
        .retrain(&place.config(LINEAR), "2015-07-01")
        .expect_code(0)
        .json();
    assert_eq!(v1["decision"], "promoted", "{v1:#}");
    let v1 = v1["challenger"]["version"].as_str().unwrap().to_string();
    // v2: forests, a month later, better than v1.
    let v2 = place
        .retrain(&place.config(QUICK), "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(v2["decision"], "promoted", "{v2:#}");
    assert_eq!(v2["champion"]["version"], v1.as_str());
    let v2 = v2["challenger"]["version"].as_str().unwrap().to_string();

    // A crippled challenger is stored but not promoted, and the log says why.
    let worse = place
        .retrain(&place.config(CRIPPLED), "2015-07-31")
        .expect_code(0)
        .json();
    assert_eq!(worse["decision"], "kept", "{worse:#}");
    let wape_of = |who: &str| {
        worse[who]["holdout"]["wape"]
            .as_f64()
            .unwrap_or_else(|| panic!("the {who}'s holdout WAPE is missing: {worse:#}"))
    };
    let (challenger, champion) = (wape_of("challenger"), wape_of("champion"));
    assert!(
        challenger > champion,
        "the crippled challenger ({challenger}) must be worse than the champion ({champion})"
    );
    assert_eq!(worse["champion_after"], v2.as_str());
    let log = place.decisions();
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

    // Rollback: back to the predecessor, v1, counting the requests it makes.
    let counting = Arc::new(Counting {
        inner: Arc::clone(place.registry_store().as_async()),
        calls: Default::default(),
    });
    let registry = Registry::new(Store::new(counting.clone(), handle().clone()), "sales");
    let back =
        salescast_core::pipeline::rollback(&registry, None, "v2 misbehaves in stores", "tester").unwrap();
    assert_eq!(back.from, v2);
    assert_eq!(back.to, v1);
    let calls = counting.calls.lock().unwrap().clone();
    let kinds: Vec<&str> = calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(
        kinds,
        ["get", "list", "get", "get", "get", "put", "put"],
        "pointer, decision numbering, the log's head (the pointer names decision 2, the head is 3), \
         artifact (re-hashed), its manifest (a version is whole only if it reads back), \
         decision (create-only), pointer CAS: {calls:#?}"
    );
    let list = place.registry_cmd(&["models", "list"]).expect_code(0).json();
    assert_eq!(list["champion"], v1.as_str());
    assert_eq!(list["versions"].as_array().unwrap().len(), 3);
    // And forward again by a hash prefix.
    place
        .registry_cmd(&["rollback", "--to", &v2[..10], "--reason", "fixed"])
        .expect_code(0);
    let log = place.decisions();
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
    let unknown = place
        .registry_cmd(&["rollback", "--to", "ffffffff", "--reason", "x"])
        .expect_code(2);
    assert!(unknown.stderr.contains("ffffffff"), "{}", unknown.stderr);
}

fn a_dry_run_writes_nothing(backend: Backend) {
    let place = Place::new(backend);
    let out = place
        .run(
            &place.config(LINEAR),
            &["retrain", "--date", "2015-07-31", "--dry-run"],
        )
        .expect_code(0)
        .json();
    assert_eq!(out["dry_run"], true);
    assert!(out["decision_sequence"].is_null());
    assert!(
        place.registry_store().list("").unwrap().is_empty(),
        "a dry run must not write to the registry"
    );
}

fn two_racing_retrains_have_exactly_one_winner(backend: Backend) {
    let place = Place::new(backend);
    let gate = place.dir.path().join("gate");
    let linear = place.config(LINEAR);
    let spawn = || {
        place
            .cli(&linear)
            .command(place.dir.path(), &["retrain", "--date", "2015-07-31"])
            // Test hook (registry::pause): wait with the version stored, before committing.
            .env("SCAST_TEST_PAUSE_AT", "before-decision")
            .env("SCAST_TEST_GATE", &gate)
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
    let outputs = [a, b].map(|c| c.wait_with_output().unwrap());
    let mut codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
    for o in &outputs {
        if o.status.code() == Some(4) {
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(stderr.contains("superseded"), "{stderr}");
        }
    }
    codes.sort();
    assert_eq!(codes, [0, 4], "one winner, one loser");
    let log = place.decisions();
    assert_eq!(log.len(), 1, "only the winner logs a decision");
    assert_eq!(log[0]["sequence"], 1);
    assert_eq!(log[0]["kind"], "promoted");
}

fn a_corrupted_artifact_is_refused_on_load(backend: Backend) {
    let place = Place::new(backend);
    let linear = place.config(LINEAR);
    let first = place.retrain(&linear, "2015-07-31").expect_code(0).json();
    let version = first["challenger"]["version"].as_str().unwrap().to_string();
    let store = place.registry_store();
    let key = format!("sales/versions/{version}/model.bin");
    let mut bytes = store.get(&key).unwrap().bytes;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    store.put(&key, &bytes, PutMode::Overwrite).unwrap();
    let out = place.retrain(&linear, "2015-07-31").expect_code(3);
    assert!(
        out.stderr.contains("corrupt artifact") && out.stderr.contains(&version),
        "{}",
        out.stderr
    );
    assert_eq!(place.decisions().len(), 1, "a refused run logs nothing");

    // A rollback to a corrupted version is refused too: a version whose
    // model.bin does not hash to its name.
    let before = store.get("sales/champion.json").unwrap().bytes;
    let fake = "0".repeat(64);
    let manifest = store
        .get(&format!("sales/versions/{version}/manifest.json"))
        .unwrap()
        .bytes;
    store
        .put(
            &format!("sales/versions/{fake}/manifest.json"),
            &manifest,
            PutMode::Create,
        )
        .unwrap();
    store
        .put(
            &format!("sales/versions/{fake}/model.bin"),
            b"bytes that do not hash to 000...",
            PutMode::Create,
        )
        .unwrap();
    let refused = place
        .registry_cmd(&["rollback", "--to", &fake[..12], "--reason", "x"])
        .expect_code(3);
    assert!(refused.stderr.contains("corrupt artifact"), "{}", refused.stderr);
    assert_eq!(
        store.get("sales/champion.json").unwrap().bytes,
        before,
        "a refused rollback changes nothing"
    );
}

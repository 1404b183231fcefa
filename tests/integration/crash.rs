//! Crash tests of the promotion protocol, on both backends: a retrain and a
//! rollback killed (SIGKILL) at each named step (the test-only pause points
//! `SCAST_TEST_PAUSE_AT`/`SCAST_TEST_GATE`); after each kill the next command
//! must leave the pointer and the decision log in agreement, numbered 1..N,
//! and print what it repaired. Also the issue-17 regression: a kept decision
//! read before a rollback is never logged against the moved champion.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use salescast_core::storage::{LocalStore, PutMode, Store};
use serde_json::Value;

use crate::retrain::{Backend, CRIPPLED, Place};
use crate::util::{
    LINEAR, Outcome, copy_tree, handle, on_every_backend, repo_file, rossmann_config, rossmann_lake, run, s,
};

on_every_backend!(
    a_retrain_killed_at_each_step_is_repaired_by_the_next_command,
    a_rollback_killed_at_each_step_is_repaired_by_the_next_command,
    defect_1_a_kept_decision_never_contradicts_the_pointer,
);

/// A registry trained once per test run, copied into each test's place: the
/// champion A (linear, promoted, decision 1) and a stored non-champion B (the
/// crippled seasonal-naive run, decision 2).
pub(crate) struct Fixture {
    pub registry: PathBuf,
    pub a: String,
    pub b: String,
}

pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = crate::util::run_folder("crash");
        let registry = dir.join("registry");
        let retrain = |extra: &str| {
            let config = rossmann_config(&dir, extra);
            let out = run(
                &dir,
                &[
                    "--config",
                    s(&config),
                    "--lake",
                    s(rossmann_lake()),
                    "--registry",
                    s(&registry),
                    "--json",
                    "retrain",
                    "--date",
                    "2015-07-31",
                ],
            )
            .expect_code(0)
            .json();
            out["challenger"]["version"].as_str().unwrap().to_string()
        };
        let a = retrain(LINEAR);
        let b = retrain(CRIPPLED);
        assert_ne!(a, b);
        Fixture { registry, a, b }
    })
}

/// A place whose registry starts as a copy of the fixture's.
pub(crate) fn seeded(backend: Backend) -> Place {
    let place = Place::new(backend);
    let fixture = fixture();
    match backend {
        Backend::Local => copy_tree(&fixture.registry, Path::new(&place.registry)),
        Backend::S3 => {
            let from = Store::new(Arc::new(LocalStore::new(&fixture.registry)), handle().clone());
            let to = place.registry_store();
            for meta in from.list("").unwrap() {
                let bytes = from.get(&meta.key).unwrap().bytes;
                to.put(&meta.key, &bytes, PutMode::Create).unwrap();
            }
        }
    }
    place
}

/// Starts the binary on the place, paused (test hook) at `step`.
fn spawn_paused(place: &Place, config: &Path, args: &[&str], step: &str) -> (Child, PathBuf) {
    let gate = place.dir.path().join(format!("gate-{step}"));
    let child = place
        .cli(config)
        .command(place.dir.path(), args)
        .env("SCAST_TEST_PAUSE_AT", step)
        .env("SCAST_TEST_GATE", &gate)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, gate)
}

/// Waits until the process announces it is paused at `step`, then SIGKILLs it.
pub(crate) fn kill_at(place: &Place, config: &Path, args: &[&str], step: &str) {
    let (mut child, gate) = spawn_paused(place, config, args, step);
    let ready = format!("ready-{step}-{}", child.id());
    let deadline = Instant::now() + Duration::from_secs(300);
    while !gate.join(&ready).exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} ended ({status}) before reaching {step}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "{args:?} never reached {step}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal, not exited");
}

/// The registry checked from outside the protocol: decisions numbered 1..N,
/// each starting where the last ended, the pointer at the last one's
/// champion, and the champion a whole version. Returns the log.
fn assert_consistent(place: &Place, history: &Value) -> Vec<Value> {
    let log = history["decisions"].as_array().unwrap().clone();
    let numbers: Vec<u64> = log.iter().map(|d| d["sequence"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    for pair in log.windows(2) {
        assert_eq!(pair[1]["champion_before"], pair[0]["champion_after"], "{log:#?}");
    }
    let store = place.registry_store();
    let pointer: Option<Value> = store
        .get("sales/champion.json")
        .ok()
        .map(|o| serde_json::from_slice(&o.bytes).unwrap());
    let last_after = log.last().map_or(Value::Null, |d| d["champion_after"].clone());
    match &pointer {
        Some(p) => {
            assert_eq!(p["version"], last_after, "pointer {p:#} vs log {log:#?}");
            let version = p["version"].as_str().unwrap();
            assert!(
                store
                    .head(&format!("sales/versions/{version}/manifest.json"))
                    .is_ok()
            );
        }
        None => assert!(last_after.is_null(), "no pointer, but the log says {last_after}"),
    }
    log
}

/// `models history --json`, the "next command" after a kill.
fn history(place: &Place) -> (Value, Outcome) {
    let out = place.registry_cmd(&["models", "history"]).expect_code(0);
    (out.json(), out)
}

fn assert_rolled_forward(history: &Value, out: &Outcome, decision: u64) {
    let repairs = history["repairs"].as_array().unwrap();
    assert_eq!(repairs.len(), 1, "{history:#}");
    assert_eq!(repairs[0]["kind"], "pointer_rolled_forward");
    assert_eq!(repairs[0]["decision"], decision);
    assert_eq!(repairs[0]["applied"], true);
    assert!(
        out.stderr.contains("repaired the registry")
            && out.stderr.contains(&format!("decision {decision} ("))
            && out.stderr.contains("moved the pointer forward"),
        "the repair is reported: {}",
        out.stderr
    );
    eprintln!("repair report: {}", repairs[0]["message"]);
}

fn pointer(place: &Place) -> Value {
    serde_json::from_slice(&place.registry_store().get("sales/champion.json").unwrap().bytes).unwrap()
}

fn a_retrain_killed_at_each_step_is_repaired_by_the_next_command(backend: Backend) {
    for step in ["version-stored", "decision-logged", "pointer-moved"] {
        let place = Place::new(backend);
        let linear = place.config(LINEAR);
        kill_at(&place, &linear, &["retrain", "--date", "2015-07-31"], step);
        let (after, out) = history(&place);
        let log = assert_consistent(&place, &after);
        match step {
            "version-stored" => {
                assert!(log.is_empty() && after["repairs"].as_array().unwrap().is_empty());
                assert_eq!(place.version_count(), 1, "the challenger is stored");
                // The next run completes: same bytes, promoted as decision 1.
                let rerun = place.retrain(&linear, "2015-07-31").expect_code(0).json();
                assert_eq!(rerun["challenger"]["stored"], "already_there");
                assert_eq!(rerun["decision"], "promoted");
                assert_eq!(rerun["decision_sequence"], 1);
                assert_consistent(&place, &history(&place).0);
            }
            "decision-logged" => {
                assert_rolled_forward(&after, &out, 1);
                assert_eq!(log.len(), 1);
                assert_eq!(log[0]["kind"], "promoted");
                let p = pointer(&place);
                assert_eq!(
                    (&p["decision"], &p["recovered"]),
                    (&Value::from(1), &Value::from(true))
                );
                assert!(
                    place
                        .registry_store()
                        .head("sales/runs/2015-07-31/report.json")
                        .is_err()
                );
            }
            _ => {
                assert!(after["repairs"].as_array().unwrap().is_empty(), "{after:#}");
                assert_eq!(log.len(), 1);
                let p = pointer(&place);
                assert_eq!(
                    (&p["decision"], &p["recovered"]),
                    (&Value::from(1), &Value::from(false))
                );
                assert!(
                    place
                        .registry_store()
                        .head("sales/runs/2015-07-31/report.json")
                        .is_err(),
                    "killed before the report"
                );
            }
        }
    }
}

fn a_rollback_killed_at_each_step_is_repaired_by_the_next_command(backend: Backend) {
    let Fixture { a, b, .. } = fixture();
    for step in ["before-decision", "decision-logged", "pointer-moved"] {
        let place = seeded(backend);
        let config = repo_file("examples/rossmann.toml");
        kill_at(
            &place,
            &config,
            &["rollback", "--to", &b[..12], "--reason", "crash test"],
            step,
        );
        let (after, out) = history(&place);
        let log = assert_consistent(&place, &after);
        let p = pointer(&place);
        match step {
            "before-decision" => {
                assert!(after["repairs"].as_array().unwrap().is_empty(), "{after:#}");
                assert_eq!(log.len(), 2, "nothing logged");
                assert_eq!(p["version"], a.as_str());
            }
            "decision-logged" => {
                assert_rolled_forward(&after, &out, 3);
                assert_eq!(log.len(), 3);
                assert_eq!(log[2]["kind"], "rolled_back");
                assert_eq!(p["version"], b.as_str());
                assert_eq!(
                    (&p["decision"], &p["recovered"]),
                    (&Value::from(3), &Value::from(true))
                );
            }
            _ => {
                assert!(after["repairs"].as_array().unwrap().is_empty(), "{after:#}");
                assert_eq!(log.len(), 3);
                assert_eq!(
                    (&p["version"], &p["decision"]),
                    (&Value::from(b.as_str()), &Value::from(3))
                );
            }
        }
        // And the registry takes the next decision as usual.
        let other = if p["version"] == a.as_str() { b } else { a };
        let next = place
            .registry_cmd(&["rollback", "--to", other, "--reason", "after the crash"])
            .expect_code(0)
            .json();
        assert_eq!(next["decision_sequence"], log.len() as u64 + 1);
        assert_consistent(&place, &history(&place).0);
    }
}

/// Issue 17, defect 1: a retrain decides (not promoted) against champion A,
/// a rollback moves the champion to B, then the retrain commits. It must be
/// superseded (exit 4) and log nothing, never "kept A -> A" while the
/// pointer says B.
fn defect_1_a_kept_decision_never_contradicts_the_pointer(backend: Backend) {
    let Fixture { a, b, .. } = fixture();
    let place = seeded(backend);
    let crippled = place.config(CRIPPLED);
    let (child, gate) = spawn_paused(
        &place,
        &crippled,
        &["retrain", "--date", "2015-07-31"],
        "version-stored",
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::fs::read_dir(&gate).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "the retrain never reached the gate");
        std::thread::sleep(Duration::from_millis(20));
    }
    place
        .registry_cmd(&["rollback", "--to", b, "--reason", "while a retrain decides"])
        .expect_code(0);
    std::fs::write(gate.join("go"), b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("superseded") && stderr.contains("rolled_back") && !stderr.contains("promoted first"),
        "{stderr}"
    );
    let (after, _) = history(&place);
    let log = assert_consistent(&place, &after);
    assert_eq!(log.len(), 3, "the stale decision is not logged: {log:#?}");
    assert_eq!(log[2]["kind"], "rolled_back");
    assert_eq!(log[2]["champion_before"], a.as_str());
    assert_eq!(pointer(&place)["version"], b.as_str());
}

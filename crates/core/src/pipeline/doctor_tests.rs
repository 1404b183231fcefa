//! Unit tests of `doctor` on a local folder: a healthy registry, then each
//! kind of damage named by the object it is about, and a pending repair
//! applied (or, with `--dry-run`, only listed).

use super::*;
use crate::registry::{DecisionKind, NewDecision};
use crate::storage::PutMode;

fn version(c: char) -> String {
    c.to_string().repeat(64)
}

fn promote(registry: &Registry, to: &str) {
    let state = registry.state().unwrap();
    let decision = NewDecision {
        kind: DecisionKind::Promoted,
        actor: "test".into(),
        reason: "test".into(),
        run_date: None,
        champion_before: state.champion_version().map(str::to_string),
        champion_after: Some(to.to_string()),
        challenger: None,
        challenger_metrics: None,
        champion_metrics: None,
        baseline_metrics: None,
        recovered: false,
        noise: None,
        search: None,
    };
    registry.commit(&state, decision).unwrap();
}

/// A registry and a lake in one temporary folder.
fn setup() -> (tempfile::TempDir, Registry, Lake) {
    let (dir, store) = crate::storage::temp_store();
    let registry = Registry::new(store.clone(), "sales");
    (dir, registry, Lake::new(store))
}

fn problems(report: &DoctorReport) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Problem)
        .collect()
}

#[test]
fn an_empty_registry_and_lake_are_healthy() {
    let (_dir, registry, lake) = setup();
    let report = doctor(&registry, &lake, true).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(
        (report.decisions, report.whole_versions, report.champion),
        (0, 0, None)
    );
}

#[test]
fn a_champion_that_is_not_a_whole_version_and_a_damaged_version_are_problems() {
    let (_dir, registry, lake) = setup();
    promote(&registry, &version('a'));
    let store = registry.store();
    // `a` has a manifest that does not read back; `b` only its artifact.
    store
        .put(
            &format!("sales/versions/{}/model.bin", version('a')),
            b"x",
            PutMode::Overwrite,
        )
        .unwrap();
    store
        .put(
            &format!("sales/versions/{}/manifest.json", version('a')),
            b"{",
            PutMode::Overwrite,
        )
        .unwrap();
    store
        .put(
            &format!("sales/versions/{}/model.bin", version('b')),
            b"y",
            PutMode::Overwrite,
        )
        .unwrap();
    let report = doctor(&registry, &lake, true).unwrap();
    let problems = problems(&report);
    assert_eq!(problems.len(), 2, "{:?}", report.findings);
    assert!(
        problems[0].uri.contains(&format!("versions/{}/", version('a'))),
        "{problems:?}"
    );
    assert!(problems[0].fix.contains("this is the champion"), "{problems:?}");
    assert!(problems[1].uri.ends_with("champion.json") && problems[1].what.contains("not a whole version"));
    let incomplete: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Incomplete)
        .collect();
    assert_eq!(incomplete.len(), 1);
    assert!(incomplete[0].uri.contains(&format!("versions/{}/", version('b'))));
    assert_eq!(report.problems(), 2);
}

#[test]
fn a_gap_an_unreadable_decision_and_a_stray_object_in_the_log_are_named() {
    let (_dir, registry, lake) = setup();
    promote(&registry, &version('a'));
    promote(&registry, &version('b'));
    promote(&registry, &version('c'));
    let store = registry.store();
    store.delete("sales/decisions/00000002.json").unwrap();
    store
        .put("sales/decisions/00000003.json", b"not json", PutMode::Overwrite)
        .unwrap();
    store
        .put("sales/decisions/notes.txt", b"hello", PutMode::Overwrite)
        .unwrap();
    let report = doctor(&registry, &lake, false).unwrap();
    let text: Vec<String> = problems(&report)
        .iter()
        .map(|f| format!("{} {}", f.uri, f.what))
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("00000003.json") && t.contains("does not read back")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("notes.txt") && t.contains("not a numbered decision")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("decision 2 is missing")),
        "{text:?}"
    );
}

#[test]
fn a_pending_roll_forward_is_applied_or_with_a_dry_run_only_listed() {
    let (_dir, registry, lake) = setup();
    promote(&registry, &version('a'));
    // A rollback that logged decision 2 and died before moving the pointer.
    let state = registry.state().unwrap();
    let pointer_before = registry.store().get("sales/champion.json").unwrap().bytes;
    let head = registry.decision(1).unwrap();
    let mut next = head.what.clone();
    next.kind = DecisionKind::RolledBack;
    next.champion_before = Some(version('a'));
    next.champion_after = Some(version('b'));
    let entry = crate::registry::Decision {
        sequence: 2,
        what: next,
        ..head
    };
    registry
        .store()
        .put(
            "sales/decisions/00000002.json",
            &serde_json::to_vec(&entry).unwrap(),
            PutMode::Create,
        )
        .unwrap();
    assert_eq!(state.champion_version(), Some(version('a').as_str()));

    let dry = doctor(&registry, &lake, false).unwrap();
    assert_eq!(dry.repairs.len(), 1);
    assert!(!dry.repairs[0].applied);
    assert_eq!(
        registry.store().get("sales/champion.json").unwrap().bytes,
        pointer_before,
        "nothing written"
    );

    let applied = doctor(&registry, &lake, true).unwrap();
    assert!(applied.repairs[0].applied);
    assert_eq!(applied.champion.as_deref(), Some(version('b').as_str()));
    assert!(
        !applied
            .findings
            .iter()
            .any(|f| f.what.contains("disagree") || f.what.contains("leaves")),
        "{:?}",
        applied.findings
    );
}

#[test]
fn a_day_with_two_files_is_a_problem_naming_the_day() {
    let (_dir, registry, lake) = setup();
    let store = lake.store();
    store
        .put("sales/dt=2015-07-31/part-a.parquet", b"a", PutMode::Overwrite)
        .unwrap();
    store
        .put("sales/dt=2015-07-31/part-b.parquet", b"b", PutMode::Overwrite)
        .unwrap();
    store
        .put("sales/dt=2015-07-30/part-c.parquet", b"c", PutMode::Overwrite)
        .unwrap();
    let report = doctor(&registry, &lake, true).unwrap();
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{:?}", report.findings);
    assert!(problems[0].uri.ends_with("sales/dt=2015-07-31/"), "{problems:?}");
    assert!(
        problems[0]
            .what
            .contains("has 2 files (part-a.parquet, part-b.parquet)"),
        "{problems:?}"
    );
    assert_eq!(report.sales_days, 2);
}

#[test]
fn a_day_file_whose_bytes_do_not_hash_to_its_name_is_a_problem() {
    let (_dir, registry, lake) = setup();
    let store = lake.store();
    let bytes = b"one day's rows".to_vec();
    let whole = format!(
        "sales/dt=2015-07-30/part-{}.parquet",
        &crate::digest::sha256_hex(&bytes)[..16]
    );
    store.put(&whole, &bytes, PutMode::Overwrite).unwrap();
    let damaged = "sales/dt=2015-07-31/part-0123456789abcdef.parquet";
    store.put(damaged, &bytes, PutMode::Overwrite).unwrap();
    let report = doctor(&registry, &lake, false).unwrap();
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{:?}", report.findings);
    assert!(problems[0].uri.ends_with(damaged), "{problems:?}");
    assert!(
        problems[0].what.contains("do not hash to its name"),
        "{problems:?}"
    );
}

//! Unit tests of the promotion protocol on a local folder: commits, the
//! superseded cases, and the two repairs (a decision logged with the pointer
//! behind; a pre-protocol pointer no decision records).

use super::super::{Champion, DecisionKind, NewDecision, Registry, RegistryError};
use super::RepairKind;
use crate::storage::PutMode;

fn registry() -> (tempfile::TempDir, Registry) {
    let (dir, store) = crate::storage::temp_store();
    (dir, Registry::new(store, "sales"))
}

fn version(c: char) -> String {
    c.to_string().repeat(64)
}

fn decision(kind: DecisionKind, to: Option<String>) -> NewDecision {
    NewDecision {
        kind,
        actor: "test".into(),
        reason: "test".into(),
        run_date: None,
        champion_before: None,
        champion_after: to,
        challenger: None,
        challenger_metrics: None,
        champion_metrics: None,
        baseline_metrics: None,
        recovered: false,
        noise: None,
        search: None,
    }
}

/// Every decision numbered 1..N, each starting where the last ended, and the
/// pointer at the last one's champion.
fn assert_consistent(registry: &Registry) {
    let log = registry.decisions().unwrap();
    let numbers: Vec<u64> = log.iter().map(|d| d.sequence).collect();
    assert_eq!(numbers, (1..=log.len() as u64).collect::<Vec<_>>());
    for pair in log.windows(2) {
        assert_eq!(pair[1].what.champion_before, pair[0].what.champion_after);
    }
    let pointer = registry.champion().unwrap().map(|(c, _)| c.version);
    assert_eq!(pointer, log.last().and_then(|d| d.what.champion_after.clone()));
}

#[test]
fn commits_log_first_and_then_move_the_pointer() {
    let (_dir, registry) = registry();
    let state = registry.state().unwrap();
    assert!(state.champion.is_none() && state.repairs.is_empty());
    let first = registry
        .commit(&state, decision(DecisionKind::Promoted, Some(version('a'))))
        .unwrap();
    assert_eq!(first.sequence, 1);
    let (pointer, _) = registry.champion().unwrap().unwrap();
    assert_eq!(
        (pointer.version.as_str(), pointer.decision, pointer.recovered),
        (version('a').as_str(), Some(1), false)
    );
    let state = registry.state().unwrap();
    let kept = registry
        .commit(&state, decision(DecisionKind::Kept, None))
        .unwrap();
    assert_eq!(kept.sequence, 2);
    assert_eq!(kept.what.champion_before, Some(version('a')));
    assert_eq!(kept.what.champion_after, Some(version('a')));
    assert_consistent(&registry);
    assert!(registry.state().unwrap().repairs.is_empty());
}

#[test]
fn a_decision_logged_with_the_pointer_behind_is_rolled_forward() {
    let (_dir, registry) = registry();
    let state = registry.state().unwrap();
    registry
        .commit(&state, decision(DecisionKind::Promoted, Some(version('a'))))
        .unwrap();
    // A rollback that stopped after its append, before its CAS.
    let mut logged = decision(DecisionKind::RolledBack, Some(version('b')));
    logged.champion_before = Some(version('a'));
    registry.create_decision(2, &logged).unwrap().unwrap();

    let peeked = registry.peek_state().unwrap();
    assert_eq!(peeked.champion_version(), Some(version('b').as_str()));
    assert!(!peeked.repairs[0].applied);
    assert_eq!(
        registry.champion().unwrap().unwrap().0.version,
        version('a'),
        "a peek writes nothing"
    );
    assert!(
        registry
            .commit(&peeked, decision(DecisionKind::Kept, None))
            .is_err()
    );

    let state = registry.state().unwrap();
    assert_eq!(state.repairs.len(), 1, "{:?}", state.repairs);
    assert_eq!(state.repairs[0].kind, RepairKind::PointerRolledForward);
    assert_eq!(state.repairs[0].decision, 2);
    assert!(state.repairs[0].message.contains("moved the pointer forward"));
    let (pointer, _) = registry.champion().unwrap().unwrap();
    assert_eq!(pointer.version, version('b'));
    assert_eq!((pointer.decision, pointer.recovered), (Some(2), true));
    assert_eq!(pointer.previous, Some(version('a')));
    assert_eq!(pointer.kind, DecisionKind::RolledBack);
    assert_consistent(&registry);
    assert!(registry.state().unwrap().repairs.is_empty(), "repaired once");
    assert_eq!(registry.decisions().unwrap().len(), 2, "the repair logs nothing");
}

#[test]
fn a_first_promotion_logged_without_a_pointer_is_rolled_forward() {
    let (_dir, registry) = registry();
    registry
        .create_decision(1, &decision(DecisionKind::Promoted, Some(version('a'))))
        .unwrap()
        .unwrap();
    let state = registry.state().unwrap();
    assert_eq!(state.repairs.len(), 1);
    assert_eq!(state.champion_version(), Some(version('a').as_str()));
    assert_consistent(&registry);
}

/// A pointer and a decision as salescast wrote them before this protocol
/// (no `decision`, `recovered` fields).
fn write_legacy(registry: &Registry, pointer: &str, decisions: &[(Option<&str>, &str)]) {
    let store = registry.store();
    store
        .put("sales/champion.json", pointer.as_bytes(), PutMode::Overwrite)
        .unwrap();
    for (i, (before, after)) in decisions.iter().enumerate() {
        let before = before.map_or("null".to_string(), |b| format!("\"{b}\""));
        let json = format!(
            r#"{{"sequence": {n}, "at": "2024-01-0{n}T00:00:00Z", "kind": "promoted", "actor": "ci", "reason": "old",
                "run_date": null, "champion_before": {before}, "champion_after": "{after}", "challenger": "{after}",
                "challenger_metrics": null, "champion_metrics": null, "baseline_metrics": null,
                "build": {{"tool_version": "0.1.0", "git_commit": null, "build_id": null}}}}"#,
            n = i + 1
        );
        store
            .put(
                &format!("sales/decisions/{:08}.json", i + 1),
                json.as_bytes(),
                PutMode::Create,
            )
            .unwrap();
    }
}

fn legacy_pointer(to: &str, previous: &str) -> String {
    format!(
        r#"{{"version": "{to}", "since": "2024-01-05T00:00:00Z", "previous": "{previous}", "kind": "promoted"}}"#
    )
}

#[test]
fn a_legacy_pointer_no_decision_records_gets_a_recovered_decision() {
    let (_dir, registry) = registry();
    let (a, b) = (version('a'), version('b'));
    write_legacy(&registry, &legacy_pointer(&b, &a), &[(None, &a)]);
    let state = registry.state().unwrap();
    assert_eq!(state.repairs.len(), 1, "{:?}", state.repairs);
    assert_eq!(state.repairs[0].kind, RepairKind::DecisionRecovered);
    assert_eq!(state.champion_version(), Some(b.as_str()));
    let log = registry.decisions().unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        !log[0].what.recovered,
        "old entries read back, recovered defaults to false"
    );
    let recovered = &log[1];
    assert!(recovered.what.recovered);
    assert_eq!(recovered.what.kind, DecisionKind::Promoted);
    assert_eq!(recovered.what.champion_before, Some(a.clone()));
    assert_eq!(recovered.what.champion_after, Some(b.clone()));
    assert!(
        recovered.what.reason.starts_with("recovered:"),
        "{}",
        recovered.what.reason
    );
    assert_consistent(&registry);
    assert!(registry.state().unwrap().repairs.is_empty(), "repaired once");

    // The repaired registry takes new decisions as usual.
    let state = registry.state().unwrap();
    let next = registry
        .commit(&state, decision(DecisionKind::RolledBack, Some(a.clone())))
        .unwrap();
    assert_eq!(next.sequence, 3);
    assert_consistent(&registry);
}

#[test]
fn a_legacy_registry_that_agrees_needs_no_repair() {
    let (_dir, registry) = registry();
    let (a, b) = (version('a'), version('b'));
    write_legacy(&registry, &legacy_pointer(&b, &a), &[(None, &a), (Some(&a), &b)]);
    let state = registry.state().unwrap();
    assert!(state.repairs.is_empty(), "{:?}", state.repairs);
    let pointer: Champion = state.champion.unwrap();
    assert_eq!((pointer.decision, pointer.recovered), (None, false));
}

#[test]
fn defect_1_a_kept_decision_read_before_a_rollback_is_superseded_and_not_logged() {
    let (_dir, registry) = registry();
    let (a, b) = (version('a'), version('b'));
    let state = registry.state().unwrap();
    registry
        .commit(&state, decision(DecisionKind::Promoted, Some(a.clone())))
        .unwrap();
    let retrain = registry.state().unwrap();
    let rollback = registry.state().unwrap();
    registry
        .commit(&rollback, decision(DecisionKind::RolledBack, Some(b.clone())))
        .unwrap();
    let err = registry
        .commit(&retrain, decision(DecisionKind::Kept, None))
        .unwrap_err();
    let RegistryError::Superseded { detail, .. } = &err else {
        panic!("expected superseded, got {err}");
    };
    assert!(
        detail.contains("rolled_back") && detail.contains("decision 2"),
        "{detail}"
    );
    assert!(!detail.contains("promoted first"), "{detail}");
    let log = registry.decisions().unwrap();
    assert_eq!(log.len(), 2, "the stale kept is not logged");
    assert_eq!(registry.champion().unwrap().unwrap().0.version, b);
    assert_consistent(&registry);
}

#[test]
fn a_promotion_read_before_another_runs_kept_takes_the_next_number() {
    let (_dir, registry) = registry();
    let (a, c) = (version('a'), version('c'));
    let state = registry.state().unwrap();
    registry
        .commit(&state, decision(DecisionKind::Promoted, Some(a.clone())))
        .unwrap();
    let slow = registry.state().unwrap();
    let fast = registry.state().unwrap();
    assert_eq!(
        registry
            .commit(&fast, decision(DecisionKind::Kept, None))
            .unwrap()
            .sequence,
        2
    );
    let promoted = registry
        .commit(&slow, decision(DecisionKind::Promoted, Some(c.clone())))
        .unwrap();
    assert_eq!(promoted.sequence, 3);
    assert_eq!(promoted.what.champion_before, Some(a));
    assert_eq!(registry.champion().unwrap().unwrap().0.decision, Some(3));
    assert_consistent(&registry);
}

#[test]
fn a_promotion_must_name_its_champion() {
    let (_dir, registry) = registry();
    let state = registry.state().unwrap();
    assert!(matches!(
        registry.commit(&state, decision(DecisionKind::Promoted, None)),
        Err(RegistryError::Inconsistent { .. })
    ));
    assert!(registry.decisions().unwrap().is_empty());
}

#[test]
fn defect_2_a_decision_with_a_non_finite_metric_is_refused_and_nothing_is_written() {
    let (_dir, registry) = registry();
    let state = registry.state().unwrap();
    let mut bad = decision(DecisionKind::Promoted, Some(version('a')));
    bad.challenger_metrics = Some(crate::evaluate::Metrics {
        rows: 3,
        wape: f64::INFINITY,
        mae: 1.0,
        rmse: f64::NAN,
        smape: 0.5,
        bias: 0.0,
    });
    let err = registry.commit(&state, bad).unwrap_err();
    assert!(matches!(err, RegistryError::NotFinite { .. }), "{err}");
    assert!(err.to_string().contains("decisions/00000001.json"), "{err}");
    assert!(registry.decisions().unwrap().is_empty());
    assert!(registry.champion().unwrap().is_none());
}

#[test]
fn defect_2_records_with_null_metrics_read_back() {
    let json = r#"{"rows": 3, "wape": null, "mae": 1.0, "rmse": null, "smape": 0.5, "bias": 0.0}"#;
    let metrics: crate::evaluate::Metrics = serde_json::from_str(json).unwrap();
    assert!(metrics.wape.is_nan() && metrics.rmse.is_nan() && !metrics.is_finite());
    assert_eq!(metrics.mae, 1.0);
}

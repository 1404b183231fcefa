//! The decision log entry's JSON shape: flat, every field named, read back whole.

use super::*;

#[test]
fn a_decision_log_entry_is_flat_json_and_reads_back() {
    let entry = Decision {
        sequence: 7,
        at: Utc::now(),
        what: NewDecision {
            kind: DecisionKind::RolledBack,
            actor: "ci".into(),
            reason: "test".into(),
            run_date: None,
            champion_before: Some("a".repeat(64)),
            champion_after: Some("b".repeat(64)),
            challenger: None,
            challenger_metrics: None,
            champion_metrics: None,
            baseline_metrics: None,
            recovered: false,
            noise: None,
            search: None,
        },
        build: BuildInfo::current(),
    };
    let json = serde_json::to_value(&entry).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "sequence",
        "at",
        "kind",
        "actor",
        "reason",
        "run_date",
        "champion_before",
        "champion_after",
        "challenger",
        "challenger_metrics",
        "champion_metrics",
        "baseline_metrics",
        "recovered",
        "build",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected, "{json}");
    assert_eq!(json["kind"], "rolled_back");
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, entry);
}

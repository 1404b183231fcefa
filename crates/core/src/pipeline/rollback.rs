//! `salescast rollback`: put an earlier version back as champion, by hand.
//! Back to the champion's predecessor, or to a named version (a unique hash
//! prefix is enough). The target is re-hashed and decoded first; then the
//! decision (actor and reason) is committed through the registry's promotion
//! protocol, which logs it and moves the pointer by compare-and-swap.

use anyhow::Context as _;
use serde::Serialize;

use crate::config::ConfigError;
use crate::registry::{DecisionKind, NewDecision, Registry, RegistryError, Repair};
use crate::storage::RequestCounts;

#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub model: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub decision_sequence: u64,
    /// The requests sent to the registry (none on a local folder).
    pub s3_requests: RequestCounts,
    /// What reading the registry repaired first (see `Registry::state`).
    pub repairs: Vec<Repair>,
}

fn usage(problem: String) -> anyhow::Error {
    ConfigError::Invalid {
        key: "rollback".into(),
        problem,
    }
    .into()
}

pub fn rollback(registry: &Registry, to: Option<&str>, reason: &str) -> anyhow::Result<RollbackReport> {
    if reason.trim().is_empty() {
        return Err(usage("give a --reason: the decision log records why".into()));
    }
    let state = registry
        .state()
        .context("reading the champion pointer and the decision log")?;
    let current = state.champion.clone().ok_or_else(|| {
        usage(format!(
            "model {:?} has no champion to roll back",
            registry.model()
        ))
    })?;
    let target = match to {
        Some(prefix) => registry.resolve(prefix).map_err(|e| match e {
            RegistryError::UnknownVersion { .. } | RegistryError::AmbiguousVersion { .. } => {
                usage(e.to_string())
            }
            other => other.into(),
        })?,
        None => current.previous.clone().ok_or_else(|| {
            usage(format!(
                "the champion {} has no predecessor; name a version with --to",
                current.version
            ))
        })?,
    };
    if target == current.version {
        return Err(usage(format!("{target} is already the champion")));
    }
    registry
        .load_model(&target)
        .with_context(|| format!("checking version {target}"))?;

    let decision = registry
        .commit(
            &state,
            NewDecision {
                kind: DecisionKind::RolledBack,
                actor: super::actor(),
                reason: reason.to_string(),
                run_date: None,
                champion_before: None,
                champion_after: Some(target.clone()),
                challenger: None,
                challenger_metrics: None,
                champion_metrics: None,
                baseline_metrics: None,
                recovered: false,
            },
        )
        .with_context(|| format!("rolling back to {target}"))?;
    Ok(RollbackReport {
        model: registry.model().to_string(),
        from: current.version,
        to: target,
        reason: reason.to_string(),
        decision_sequence: decision.sequence,
        s3_requests: registry.store().requests(),
        repairs: state.repairs,
    })
}

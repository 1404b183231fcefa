//! `salescast rollback`: put an earlier version back as champion, by hand.
//! Back to the champion's predecessor, or to a named version (a unique hash
//! prefix is enough). The target is re-hashed and decoded first; the pointer
//! moves by compare-and-swap; the decision is logged with actor and reason.

use anyhow::Context as _;
use serde::Serialize;

use super::Superseded;
use crate::config::ConfigError;
use crate::models::Artifact;
use crate::registry::{Champion, DecisionKind, NewDecision, Registry, RegistryError};
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
    let (current, pointer_version) = registry
        .champion()
        .context("reading the champion pointer")?
        .ok_or_else(|| {
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
    let bytes = registry
        .load_artifact(&target)
        .with_context(|| format!("checking version {target}"))?;
    Artifact::from_bytes(&bytes).with_context(|| format!("decoding version {target}"))?;

    let pointer = Champion {
        version: target.clone(),
        since: chrono::Utc::now(),
        previous: Some(current.version.clone()),
        kind: DecisionKind::RolledBack,
    };
    match registry.set_champion(&pointer, Some(&pointer_version)) {
        Ok(()) => {}
        Err(RegistryError::Superseded { uri }) => {
            return Err(Superseded(format!("{uri} changed while rolling back; nothing was changed")).into());
        }
        Err(e) => return Err(e).context("moving the champion pointer"),
    }
    let decision = registry
        .append_decision(NewDecision {
            kind: DecisionKind::RolledBack,
            actor: super::actor(),
            reason: reason.to_string(),
            run_date: None,
            champion_before: Some(current.version.clone()),
            champion_after: Some(target.clone()),
            challenger: None,
            challenger_metrics: None,
            champion_metrics: None,
            baseline_metrics: None,
        })
        .context("logging the rollback")?;
    Ok(RollbackReport {
        model: registry.model().to_string(),
        from: current.version,
        to: target,
        reason: reason.to_string(),
        decision_sequence: decision.sequence,
        s3_requests: registry.store().requests(),
    })
}

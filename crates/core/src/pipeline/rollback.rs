//! `salescast rollback`: put an earlier version back as champion, by hand.
//! Back to the champion's predecessor, or to a named version (a unique hash
//! prefix is enough). The target is re-hashed and decoded first; then the
//! decision (actor and reason) is committed through the registry's promotion
//! protocol, which logs it and moves the pointer by compare-and-swap.
//! `--to` also repairs an unreadable `champion.json`: the decision logged
//! says so, and the pointer is replaced only if it is still the damaged one.

use anyhow::Context as _;
use serde::Serialize;

use crate::registry::{DecisionKind, NewDecision, Registry, Repair, RepairKind};
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

/// Why a rollback was refused before anything changed (the command line's
/// or the admin page's fault; an unknown or ambiguous `--to` is the
/// registry's `UnknownVersion` / `AmbiguousVersion`).
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "a reason is required (--reason, or the admin page's reason field): the decision log records why"
    )]
    NoReason,
    #[error("model {model:?} has no champion to roll back: run `salescast retrain` first")]
    NoChampion { model: String },
    #[error("the champion {version} has no predecessor; name a version with --to")]
    NoPredecessor { version: String },
    #[error("{version} is already the champion")]
    AlreadyChampion { version: String },
}

/// `actor` is who the decision log names: the command line's user, or the
/// dashboard's logged-in admin.
pub fn rollback(
    registry: &Registry,
    to: Option<&str>,
    reason: &str,
    actor: &str,
) -> anyhow::Result<RollbackReport> {
    if reason.trim().is_empty() {
        return Err(RollbackError::NoReason.into());
    }
    // A named target may replace an unreadable champion pointer (the repair
    // of a damaged `champion.json`); without one, an unreadable pointer is
    // an error that says how to repair it.
    let mut state = if to.is_some() {
        registry.state_replacing_damaged_pointer()
    } else {
        registry.state()
    }
    .context("reading the champion pointer and the decision log")?;
    let repairing = state.pointer_unreadable.clone();
    let current = state.champion.clone();
    let no_champion = || RollbackError::NoChampion {
        model: registry.model().to_string(),
    };
    if current.is_none() && repairing.is_none() {
        return Err(no_champion().into());
    }
    let target = match (to, &current) {
        (Some(prefix), _) => registry.resolve(prefix)?,
        (None, Some(current)) => current
            .previous
            .clone()
            .ok_or_else(|| RollbackError::NoPredecessor {
                version: current.version.clone(),
            })?,
        // Without --to a damaged pointer is an error before this.
        (None, None) => return Err(no_champion().into()),
    };
    // Repairing, the log's champion may be the target: the pointer is what
    // is replaced.
    if repairing.is_none() && current.as_ref().is_some_and(|c| c.version == target) {
        return Err(RollbackError::AlreadyChampion { version: target }.into());
    }
    registry
        .load_model(&target)
        .with_context(|| {
            format!("checking version {target}: a rollback target must be whole (its artifact re-hashes and its manifest reads back)")
        })?;

    let decision = registry
        .commit(
            &state,
            NewDecision {
                kind: DecisionKind::RolledBack,
                actor: actor.to_string(),
                reason: match &repairing {
                    Some(problem) => format!(
                        "repair: the champion pointer did not read back ({problem}); pointed it at {target}. {reason}"
                    ),
                    None => reason.to_string(),
                },
                run_date: None,
                champion_before: None,
                champion_after: Some(target.clone()),
                challenger: None,
                challenger_metrics: None,
                champion_metrics: None,
                baseline_metrics: None,
                recovered: false,
                noise: None,
                search: None,
            },
        )
        .with_context(|| format!("rolling back to {target}"))?;
    for repair in &mut state.repairs {
        if repair.kind == RepairKind::PointerReplaced {
            repair.applied = true;
            repair.decision = decision.sequence;
            repair.message = format!(
                "{}: replaced the pointer with {target} (decision {})",
                repair.message, decision.sequence
            );
        }
    }
    Ok(RollbackReport {
        model: registry.model().to_string(),
        from: current.map(|c| c.version).unwrap_or_default(),
        to: target,
        reason: reason.to_string(),
        decision_sequence: decision.sequence,
        s3_requests: registry.store().requests(),
        repairs: state.repairs,
    })
}

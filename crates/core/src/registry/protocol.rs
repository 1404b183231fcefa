//! The promotion protocol: the one way the champion pointer and the decision
//! log change. Retrain, rollback (and any later front end) call
//! [`Registry::state`] and then [`Registry::commit`]; nothing else writes
//! `champion.json` or `decisions/`.
//!
//! The decision log is the source of truth and the pointer is its cache. A
//! decision is written AHEAD of the pointer move:
//! 1. [`Registry::state`] reads the pointer (with its store version), then the
//!    log's head. Pointer first: a decision is always logged before its
//!    pointer move, so a log read after the pointer holds every decision the
//!    pointer reflects. If the two disagree, it repairs first (below) and says
//!    so in [`RegistryState::repairs`].
//! 2. [`Registry::commit`] appends decision N+1 create-only, with
//!    `champion_before` = the state's champion. If N+1 is taken, it reads it:
//!    if that decision left our champion in place (a "kept"), it tries N+2;
//!    otherwise the champion moved and the run is superseded, logging nothing.
//! 3. For a promotion or a rollback it then moves the pointer by
//!    compare-and-swap on the version read in 1, recording `decision: N+1`.
//!
//! What a crash leaves, and what the next `state` does:
//! - before the append: nothing changed; nothing to do.
//! - after the append, before the pointer CAS: the head says X, the pointer
//!   still names the head's `champion_before`: the pointer is rolled forward
//!   to X (`recovered: true`).
//! - after the CAS: pointer and log agree.
//!
//! A `champion.json` that does not read back (garbage, truncated by hand) is
//! no state: [`Registry::state`] refuses it with
//! [`RegistryError::PointerUnreadable`], naming the file and the repair. The
//! repair is a rollback: [`Registry::state_replacing_damaged_pointer`] takes
//! the champion from the log's head and the damaged object's store version
//! as the CAS precondition, so the commit logs the repair as a decision and
//! then replaces the pointer (only if it is still the damaged object).
//!
//! Registries written before this protocol moved the pointer first; a crash
//! there left a pointer no decision records. `state` appends the missing
//! decision from the pointer's own record (`kind`, `since`, `previous`),
//! marked `recovered`.

use serde::Serialize;

use super::pause::{self, Step};
use super::{Champion, Decision, DecisionKind, NewDecision, Registry, RegistryError};
use crate::storage::Version;

/// How often `state` re-reads after a repair or a lost repair race before it
/// gives up (each round either repairs one thing or sees another process's).
const MAX_ROUNDS: usize = 8;

/// The registry as one run sees it: the champion after any repair, the
/// pointer's store version for the compare-and-swap, and the log's head.
#[derive(Debug, Clone)]
pub struct RegistryState {
    /// The champion pointer (as repaired), if there is a champion.
    pub champion: Option<Champion>,
    /// The newest decision's number (0: an empty log).
    pub last_sequence: u64,
    /// What reading the state repaired (empty when pointer and log agreed).
    pub repairs: Vec<Repair>,
    /// The pointer's store version, the CAS precondition of a commit.
    pointer_version: Option<Version>,
    /// Read without repairing (a dry run): cannot be committed.
    read_only: bool,
    /// Why the stored pointer does not read back, when this state was read
    /// to replace it (its champion is then the log's head's).
    pub pointer_unreadable: Option<String>,
}

impl RegistryState {
    /// The champion's version, if there is one.
    pub fn champion_version(&self) -> Option<&str> {
        self.champion.as_ref().map(|c| c.version.as_str())
    }
}

/// One repair that reading the state made (or, read-only, would make).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repair {
    pub kind: RepairKind,
    /// The decision the repair completes or records.
    pub decision: u64,
    pub message: String,
    /// False when the state was read without repairing (a dry run).
    pub applied: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairKind {
    /// A decision was logged but the pointer had not moved: moved it.
    PointerRolledForward,
    /// The pointer had moved with no decision recording it: logged one.
    DecisionRecovered,
    /// The pointer did not read back: a rollback replaced it.
    PointerReplaced,
}

/// How the pointer relates to the log's head.
enum Finding {
    Agree,
    /// The head decided a champion the pointer does not name yet.
    RollForward(Box<Decision>),
    /// The pointer names a champion no decision records.
    RecordGap(Champion),
}

fn diagnose(pointer: Option<&Champion>, head: Option<&Decision>) -> Finding {
    let current = pointer.map(|c| c.version.as_str());
    if let Some(head) = head {
        let after = head.what.champion_after.as_deref();
        if after == current {
            return Finding::Agree;
        }
        if after.is_some() && (current.is_none() || head.what.champion_before.as_deref() == current) {
            return Finding::RollForward(Box::new(head.clone()));
        }
    }
    match pointer {
        Some(champion) => Finding::RecordGap(champion.clone()),
        // No pointer, and the head leaves no champion (or the log is empty).
        None => Finding::Agree,
    }
}

/// The short form of a version, for messages.
fn short(version: Option<&str>) -> &str {
    version.map_or("(none)", crate::digest::short)
}

impl Registry {
    /// Reads the champion pointer and the log's head, repairing any
    /// disagreement first (see the module doc). The returned state is what
    /// [`Registry::commit`] commits against.
    pub fn state(&self) -> Result<RegistryState, RegistryError> {
        self.read_state(true)
    }

    /// [`Registry::state`] without writing: the champion is the one the
    /// repair would leave, and the repairs are listed as not applied.
    pub fn peek_state(&self) -> Result<RegistryState, RegistryError> {
        self.read_state(false)
    }

    /// [`Registry::state`], except that an unreadable pointer is not an
    /// error: the state's champion is then the log's head's, its CAS
    /// precondition the damaged object, and `pointer_unreadable` says why.
    /// Only a rollback to a named version uses this, to replace the pointer.
    pub fn state_replacing_damaged_pointer(&self) -> Result<RegistryState, RegistryError> {
        let message = match self.state() {
            Err(RegistryError::PointerUnreadable { message, .. }) => message,
            other => return other,
        };
        let damaged = self.store.get(&self.champion_key())?;
        let last = self.last_sequence()?;
        let head = if last == 0 {
            None
        } else {
            Some(self.decision(last)?)
        };
        let champion = head.and_then(|head| {
            Some(Champion {
                version: head.what.champion_after.clone()?,
                since: head.at,
                previous: head.what.champion_before.clone(),
                kind: head.what.kind,
                decision: Some(head.sequence),
                recovered: true,
            })
        });
        let repair = Repair {
            kind: RepairKind::PointerReplaced,
            decision: last + 1,
            message: format!(
                "{} did not read back ({message}); the decision log's newest champion is {}",
                self.store.uri_of(&self.champion_key()),
                short(champion.as_ref().map(|c| c.version.as_str())),
            ),
            applied: false,
        };
        Ok(RegistryState {
            champion,
            last_sequence: last,
            repairs: vec![repair],
            pointer_version: Some(damaged.version),
            read_only: false,
            pointer_unreadable: Some(message),
        })
    }

    /// The pointer as stored; one that does not read back is
    /// [`RegistryError::PointerUnreadable`], naming the log's champion.
    fn readable_pointer(&self) -> Result<Option<(Champion, Version)>, RegistryError> {
        match self.champion() {
            Err(RegistryError::Unreadable { uri, message }) => {
                let last = self.last_sequence().unwrap_or(0);
                let log_champion = (last > 0)
                    .then(|| self.decision(last).ok())
                    .flatten()
                    .and_then(|d| d.what.champion_after)
                    .unwrap_or_else(|| "unknown".into());
                Err(RegistryError::PointerUnreadable {
                    uri,
                    message,
                    log_champion,
                })
            }
            other => other,
        }
    }

    fn read_state(&self, repair: bool) -> Result<RegistryState, RegistryError> {
        let mut repairs = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let pointer = self.readable_pointer()?;
            let last = self.last_sequence()?;
            let by_number = last > 0 && pointer.as_ref().is_some_and(|(c, _)| c.decision == Some(last));
            let finding = if by_number {
                Finding::Agree
            } else {
                let head = if last == 0 {
                    None
                } else {
                    Some(self.decision(last)?)
                };
                diagnose(pointer.as_ref().map(|(c, _)| c), head.as_ref())
            };
            let (champion, pointer_version) = match pointer {
                Some((c, v)) => (Some(c), Some(v)),
                None => (None, None),
            };
            let state = |champion, repairs| RegistryState {
                champion,
                last_sequence: last,
                repairs,
                pointer_version: pointer_version.clone(),
                read_only: !repair,
                pointer_unreadable: None,
            };
            match finding {
                Finding::Agree => return Ok(state(champion, repairs)),
                Finding::RollForward(head) => {
                    let target = Champion {
                        version: head.what.champion_after.clone().unwrap_or_default(),
                        since: head.at,
                        previous: head.what.champion_before.clone(),
                        kind: head.what.kind,
                        decision: Some(head.sequence),
                        recovered: true,
                    };
                    let done = Repair {
                        kind: RepairKind::PointerRolledForward,
                        decision: head.sequence,
                        message: format!(
                            "decision {} ({} {} -> {}) was logged but the champion pointer still named {}: \
                             moved the pointer forward to {} (a run stopped between logging its decision and moving the pointer)",
                            head.sequence,
                            head.what.kind.as_str(),
                            short(head.what.champion_before.as_deref()),
                            short(Some(&target.version)),
                            short(champion.as_ref().map(|c| c.version.as_str())),
                            short(Some(&target.version)),
                        ),
                        applied: repair,
                    };
                    if !repair {
                        repairs.push(done);
                        return Ok(state(Some(target), repairs));
                    }
                    match self.set_champion(&target, pointer_version.as_ref()) {
                        Ok(()) => {
                            tracing::warn!("repaired the registry: {}", done.message);
                            repairs.push(done);
                        }
                        // Another process moved it meanwhile (perhaps the same
                        // repair): read again.
                        Err(RegistryError::Superseded { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Finding::RecordGap(pointer) => {
                    let sequence = last + 1;
                    let recovered = NewDecision {
                        kind: pointer.kind,
                        actor: "salescast (repair)".into(),
                        reason: format!(
                            "recovered: the champion pointer names {} ({} since {}, previous {}) but no decision recorded it \
                             (a run stopped after moving the pointer and before logging, under the pointer-first protocol)",
                            pointer.version,
                            pointer.kind.as_str(),
                            pointer.since.to_rfc3339(),
                            short(pointer.previous.as_deref()),
                        ),
                        run_date: None,
                        champion_before: pointer.previous.clone(),
                        champion_after: Some(pointer.version.clone()),
                        challenger: None,
                        challenger_metrics: None,
                        champion_metrics: None,
                        baseline_metrics: None,
                        recovered: true,
                        noise: None,
                        search: None,
                    };
                    let done = Repair {
                        kind: RepairKind::DecisionRecovered,
                        decision: sequence,
                        message: format!(
                            "the champion pointer names {} ({}) but no decision recorded it: logged decision {sequence} from the pointer's own record, marked recovered",
                            short(Some(&pointer.version)),
                            pointer.kind.as_str(),
                        ),
                        applied: repair,
                    };
                    if !repair {
                        repairs.push(done);
                        return Ok(state(Some(pointer), repairs));
                    }
                    // Create-only: if the number is taken, someone else wrote
                    // (this repair or a decision); read again.
                    if self.create_decision(sequence, &recovered)?.is_some() {
                        tracing::warn!("repaired the registry: {}", done.message);
                        repairs.push(done);
                    }
                }
            }
        }
        Err(RegistryError::Inconsistent {
            uri: self.store.uri_of(&self.champion_key()),
            detail: format!("still changing after {MAX_ROUNDS} repair rounds; run the command again"),
        })
    }

    /// Commits a decision made against `state`: logs it as the next decision
    /// (its `champion_before` is the state's champion; for kept and rejected
    /// its `champion_after` is the same), then, for a promotion or a rollback,
    /// moves the pointer to `decision.champion_after`.
    ///
    /// If the champion changed since `state` was read, nothing is written and
    /// the result is [`RegistryError::Superseded`], naming what moved.
    pub fn commit(&self, state: &RegistryState, decision: NewDecision) -> Result<Decision, RegistryError> {
        let pointer_uri = self.store.uri_of(&self.champion_key());
        let inconsistent = |detail: String| RegistryError::Inconsistent {
            uri: pointer_uri.clone(),
            detail,
        };
        if state.read_only {
            return Err(inconsistent(
                "a state read without repair cannot be committed".into(),
            ));
        }
        let before = state.champion.as_ref().map(|c| c.version.clone());
        let moves = matches!(decision.kind, DecisionKind::Promoted | DecisionKind::RolledBack);
        let after = if moves {
            decision.champion_after.clone()
        } else {
            before.clone()
        };
        if moves && after.is_none() {
            return Err(inconsistent(format!(
                "a {} decision must name the new champion",
                decision.kind.as_str()
            )));
        }
        let what = NewDecision {
            champion_before: before.clone(),
            champion_after: after,
            recovered: false,
            ..decision
        };

        pause::at(Step::BeforeDecision)?;
        let mut sequence = state.last_sequence + 1;
        let entry = loop {
            if let Some(entry) = self.create_decision(sequence, &what)? {
                break entry;
            }
            let other = self.decision(sequence)?;
            if other.what.champion_after == before {
                // The champion we compared against is still the champion
                // after that decision (another run kept it): take the next number.
                sequence += 1;
                continue;
            }
            return Err(RegistryError::Superseded {
                uri: self.store.uri_of(&self.decision_key(sequence)),
                detail: format!(
                    "the champion changed after this run read it: decision {sequence} ({} by {}) moved it from {} to {}. \
                     This run logged nothing and moved nothing",
                    other.what.kind.as_str(),
                    other.what.actor,
                    short(other.what.champion_before.as_deref()),
                    short(other.what.champion_after.as_deref()),
                ),
            });
        };
        pause::at(Step::DecisionLogged)?;
        let (true, Some(target)) = (moves, entry.what.champion_after.clone()) else {
            return Ok(entry);
        };
        let pointer = Champion {
            version: target,
            since: entry.at,
            previous: before,
            kind: entry.what.kind,
            decision: Some(entry.sequence),
            recovered: false,
        };
        match self.set_champion(&pointer, state.pointer_version.as_ref()) {
            Ok(()) => {}
            Err(RegistryError::Superseded { .. }) => {
                // Between our append and this CAS only a repair can have moved
                // the pointer: any other mover must first log a decision after
                // ours, whose `state` rolls the pointer forward to ours first.
                // So the pointer now records our decision or a later one.
                // Anything else means a writer that skips the protocol (an
                // older salescast, a hand edit); say so rather than guess.
                let now = self.champion()?;
                let recorded = now.as_ref().and_then(|(c, _)| c.decision);
                if recorded.is_none_or(|d| d < entry.sequence) {
                    return Err(inconsistent(format!(
                        "decision {} was logged, but the pointer changed under it without a later decision (it now names {}, decision {:?}); \
                         the next command will record the pointer's state",
                        entry.sequence,
                        short(now.as_ref().map(|(c, _)| c.version.as_str())),
                        recorded,
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        pause::at(Step::PointerMoved)?;
        Ok(entry)
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;

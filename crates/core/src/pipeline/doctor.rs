//! `salescast doctor`: the registry and the lake checked as a whole, from
//! outside any run, the way an operator would after a crash. It applies the
//! promotion protocol's own repairs (the ones every command makes when it
//! reads the registry's state) and reports everything else it finds, each
//! finding with the object it is about and how to fix it. It deletes nothing.
//!
//! Checked: every version with a manifest reads back and its artifact
//! re-hashes to its name; the decision log is numbered 1..N with no gap, each
//! decision starting where the one before ended; the pointer names the log's
//! newest champion and a whole version; every committed forecast partition
//! reads back against its manifest; each sales and plan day has one file.

use serde::Serialize;

use crate::lake::{Lake, LakeError, SALES_PREFIX, prefix_in};
use crate::plans::PLANS_PREFIX;
use crate::predictions::{prediction_folders, predictions_prefix, read_predictions};
use crate::registry::inspect::DecisionFile;
use crate::registry::{Decision, Registry, RegistryError, RegistryState, Repair};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something readers refuse or that breaks a command: needs the operator.
    Problem,
    /// Left by a run that did not finish; every reader skips it, and the
    /// next run of the same date completes or replaces it.
    Incomplete,
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The object (URI) it is about.
    pub uri: String,
    pub what: String,
    /// How to fix it.
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub registry: String,
    pub lake: String,
    pub model: String,
    pub champion: Option<String>,
    pub decisions: usize,
    /// Versions whose manifest read back and whose artifact re-hashed.
    pub whole_versions: usize,
    pub prediction_days: usize,
    pub sales_days: usize,
    /// What this run repaired (none with `--dry-run`: then they are listed
    /// as not applied).
    pub repairs: Vec<Repair>,
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// The findings that need the operator.
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }
}

/// The doctor found problems it cannot repair (exit 3, after the report).
#[derive(Debug, thiserror::Error)]
#[error("the doctor found {problems} problem(s) it cannot repair; each is listed above with its fix")]
pub struct Unhealthy {
    pub problems: usize,
}

/// Checks the registry of `registry.model()` and the lake; with `repair`,
/// applies the protocol's repairs of the pointer and the log.
pub fn doctor(registry: &Registry, lake: &Lake, repair: bool) -> anyhow::Result<DoctorReport> {
    let mut findings = Vec::new();
    let state = read_state(registry, repair, &mut findings)?;
    let decisions = check_log(registry, state.as_ref(), &mut findings)?;
    let whole_versions = check_versions(registry, state.as_ref(), &mut findings)?;
    let prediction_days = check_predictions(lake, registry.model(), &mut findings)?;
    let sales_days = check_days(lake, SALES_PREFIX, "ingest", &mut findings)?;
    check_days(lake, PLANS_PREFIX, "ingest --plan", &mut findings)?;
    Ok(DoctorReport {
        registry: registry.store().uri_of(""),
        lake: lake.store().uri_of(""),
        model: registry.model().to_string(),
        champion: state
            .as_ref()
            .and_then(|s| s.champion_version().map(str::to_string)),
        decisions,
        whole_versions,
        prediction_days,
        sales_days,
        repairs: state.map(|s| s.repairs).unwrap_or_default(),
        findings,
    })
}

fn problem(findings: &mut Vec<Finding>, uri: String, what: String, fix: &str) {
    findings.push(Finding {
        severity: Severity::Problem,
        uri,
        what,
        fix: fix.to_string(),
    });
}

/// The state after the protocol's repairs; an unreadable pointer is a
/// finding, not a failure of the doctor.
fn read_state(
    registry: &Registry,
    repair: bool,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<Option<RegistryState>> {
    let read = if repair {
        registry.state()
    } else {
        registry.peek_state()
    };
    match read {
        Ok(state) => Ok(Some(state)),
        Err(RegistryError::PointerUnreadable {
            uri,
            message,
            log_champion,
        }) => {
            problem(
                findings,
                uri,
                format!("the champion pointer does not read back: {message}"),
                &format!(
                    "salescast rollback --to VERSION --reason \"...\" replaces it and logs the repair \
                     (the log's newest champion is {log_champion})"
                ),
            );
            Ok(None)
        }
        // A decision that does not read back: the log's check names it.
        Err(RegistryError::Unreadable { .. }) => Ok(None),
        Err(RegistryError::Inconsistent { uri, detail }) => {
            problem(
                findings,
                uri,
                format!("the pointer and the decision log disagree: {detail}"),
                "find who wrote the pointer outside the protocol (the bucket's CloudTrail data events), then \
                 roll back to the version the log names",
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The log numbered 1..N, each decision starting where the last ended, its
/// newest champion the pointer's. Returns N.
fn check_log(
    registry: &Registry,
    state: Option<&RegistryState>,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<usize> {
    let log_uri = registry.uri_of("decisions/");
    let mut log: Vec<Decision> = Vec::new();
    let mut numbers = Vec::new();
    for file in registry.decision_files()? {
        match file {
            DecisionFile::Entry(decision) => {
                numbers.push(decision.sequence);
                log.push(*decision);
            }
            DecisionFile::Unreadable {
                sequence,
                uri,
                problem: why,
            } => {
                numbers.push(sequence);
                problem(
                    findings,
                    uri,
                    format!("a decision that does not read back: {why}"),
                    "restore it from the bucket's object versions or the replica; decisions are never rewritten",
                );
            }
            DecisionFile::Stray { uri } => problem(
                findings,
                uri,
                "an object in the decision log that is not a numbered decision".into(),
                "move it out of decisions/",
            ),
        }
    }
    log.sort_by_key(|d| d.sequence);
    numbers.sort_unstable();
    for (expected, &sequence) in (1u64..).zip(&numbers) {
        if sequence != expected {
            problem(
                findings,
                log_uri.clone(),
                format!("decision {expected} is missing (the next is {sequence})"),
                "restore it from the bucket's object versions or the replica",
            );
            break;
        }
    }
    for pair in log.windows(2) {
        let adjacent = pair[1].sequence == pair[0].sequence + 1;
        if adjacent && pair[1].what.champion_before != pair[0].what.champion_after {
            problem(
                findings,
                log_uri.clone(),
                format!(
                    "decision {} starts from champion {}, but decision {} left {}",
                    pair[1].sequence,
                    name(pair[1].what.champion_before.as_deref()),
                    pair[0].sequence,
                    name(pair[0].what.champion_after.as_deref()),
                ),
                "a writer outside the protocol: check the bucket's CloudTrail data events",
            );
        }
    }
    if let Some(state) = state {
        let newest = log.last().and_then(|d| d.what.champion_after.as_deref());
        if state.champion_version() != newest {
            problem(
                findings,
                registry.uri_of("champion.json"),
                format!(
                    "the pointer names {} but the log's newest decision leaves {}",
                    name(state.champion_version()),
                    name(newest)
                ),
                "salescast rollback --to VERSION --reason \"...\" sets both",
            );
        }
    }
    Ok(log.len())
}

fn name(version: Option<&str>) -> &str {
    version.map_or("(none)", crate::digest::short)
}

/// Every version folder: with a manifest it must be whole; without one it
/// is a retrain that stopped before its manifest. Returns the whole ones.
fn check_versions(
    registry: &Registry,
    state: Option<&RegistryState>,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<usize> {
    let mut whole = 0;
    let champion = state.and_then(|s| s.champion_version());
    let mut champion_whole = champion.is_none();
    for folder in registry.version_folders()? {
        let uri = registry.uri_of(&format!("versions/{}/", folder.version));
        if !folder.has_manifest {
            findings.push(Finding {
                severity: Severity::Incomplete,
                uri,
                what: "a version without its manifest (a retrain that stopped after storing the model)"
                    .into(),
                fix: "none needed: readers skip it; rerunning the retrain of its date completes it".into(),
            });
            continue;
        }
        // One read of each object: the artifact re-hashed and decoded, the
        // manifest read back and naming this version.
        let checked = registry.load_model(&folder.version).and_then(|loaded| {
            if loaded.manifest.version == folder.version {
                Ok(())
            } else {
                Err(RegistryError::Unreadable {
                    uri: uri.clone(),
                    message: format!("its manifest describes version {}", loaded.manifest.version),
                })
            }
        });
        match checked {
            Ok(()) => {
                whole += 1;
                champion_whole |= champion == Some(folder.version.as_str());
            }
            Err(RegistryError::Store(e)) => return Err(e.into()),
            Err(e) => {
                let is_champion = champion == Some(folder.version.as_str());
                let fix = if is_champion {
                    "this is the champion: salescast rollback --to ANOTHER_VERSION --reason \"...\", then rerun \
                     the retrain of its date or remove the folder"
                } else {
                    "rerun the retrain of its date (it replaces damaged objects with the right bytes) or remove \
                     the folder"
                };
                let what = match e {
                    RegistryError::Missing { uri, .. } => format!("{uri} is missing"),
                    other => other.to_string(),
                };
                problem(findings, uri, format!("a damaged version: {what}"), fix);
            }
        }
    }
    if !champion_whole {
        problem(
            findings,
            registry.uri_of("champion.json"),
            format!("the champion {} is not a whole version", name(champion)),
            "salescast rollback --to VERSION --reason \"...\" to a whole version",
        );
    }
    Ok(whole)
}

/// Every forecast partition of `model`: a committed one must read back
/// against its manifest; one without a manifest is a predict that stopped.
fn check_predictions(lake: &Lake, model: &str, findings: &mut Vec<Finding>) -> anyhow::Result<usize> {
    let days = prediction_folders(lake, model)?;
    let mut committed = 0;
    for (day, has_manifest) in days {
        let uri = lake.store().uri_of(&predictions_prefix(model, day));
        if !has_manifest {
            findings.push(Finding {
                severity: Severity::Incomplete,
                uri,
                what: "forecast files without a manifest (a predict that stopped before committing)".into(),
                fix: format!("none needed: readers skip it; salescast predict --date {day} commits the day"),
            });
            continue;
        }
        match read_predictions(lake, model, day) {
            Ok(_) => committed += 1,
            Err(e) => problem(
                findings,
                uri,
                format!("a committed forecast that does not read back: {e}"),
                &format!("salescast predict --date {day} rewrites it"),
            ),
        }
    }
    Ok(committed)
}

/// Each day under `root` holds one file; two are an ingest `--replace` that
/// stopped between writing the new file and removing the old. Each file's
/// bytes hash to its name (every file is read, as many at once as a window
/// read does).
fn check_days(lake: &Lake, root: &str, command: &str, findings: &mut Vec<Finding>) -> anyhow::Result<usize> {
    let days = lake.partitions_in(root)?;
    let files: Vec<_> = days.values().flatten().collect();
    let read = crate::lake::parallel_map(&files, crate::lake::IO_CONCURRENCY, |file| {
        lake.get_day_file(&file.key).map(|_| ())
    });
    for (file, read) in files.iter().zip(read) {
        match read {
            Ok(()) => {}
            Err(LakeError::Data(_)) => problem(
                findings,
                lake.store().uri_of(&file.key),
                crate::lake::NOT_ITS_NAME.into(),
                &format!("ingest the day's rows again: salescast {command} --replace"),
            ),
            // Removed since the listing (an ingest --replace running now).
            Err(LakeError::Store(crate::storage::StoreError::NotFound { .. })) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for day in &days {
        if let Err(e) = lake.one_file_per_day(root, [day]) {
            problem(
                findings,
                lake.store().uri_of(&prefix_in(root, *day.0)),
                e.to_string(),
                &format!(
                    "rerun the salescast {command} --replace that wrote the day (it removes the old file)"
                ),
            );
        }
    }
    Ok(days.len())
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;

//! The model registry, on any [`Store`]: content-addressed versions with their
//! manifests, the champion pointer, the decision log, and run reports.
//!
//! Layout under `<registry>/<model>/`:
//! - `versions/<sha256>/model.bin`: the artifact; `<sha256>` is its hash.
//! - `versions/<sha256>/manifest.json`: lineage and metrics, written after
//!   `model.bin`, so a version with a manifest is whole.
//! - `champion.json`: the champion pointer, changed only by compare-and-swap.
//! - `decisions/<sequence>.json`: one file per decision, create-only, numbered
//!   from 1 with no gap; nothing is ever overwritten.
//! - `runs/<date>/report.json` and `report.md`: the newest report of a run
//!   date (`reports.rs`).
//!
//! Every load re-hashes `model.bin` and refuses a mismatch. The champion
//! pointer and the decision log change only through the promotion protocol
//! in `protocol.rs`: [`Registry::state`] and [`Registry::commit`].

pub mod inspect;
pub mod pause;
mod protocol;
mod repair;
mod reports;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::digest::Sealed;
pub use crate::evaluate::DecisionKind;
use crate::evaluate::Metrics;
use crate::models::{Artifact, Family};
use crate::storage::{PutMode, Store, StoreError, Version};

pub use protocol::{RegistryState, Repair, RepairKind};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{uri}: corrupt artifact: its SHA-256 is {actual}, not {expected}. If it is the champion, roll back to another \
         version (`salescast rollback --to VERSION --reason ...`); otherwise remove the version's folder \
         (versions/{expected}/) or rerun the retrain that made it, which replaces a corrupt artifact with the right bytes"
    )]
    Corrupt {
        uri: String,
        expected: String,
        actual: String,
    },
    #[error("{uri}: unreadable: {message}")]
    Unreadable { uri: String, message: String },
    /// A version the registry names (its manifest listed, the champion
    /// pointer or a decision) whose artifact or manifest is not there.
    #[error(
        "{uri} is missing: version {version} is not whole. If it is the champion, roll back to another version \
         (`salescast rollback --to VERSION --reason ...`); otherwise rerun the retrain that made it or remove its folder"
    )]
    Missing { uri: String, version: String },
    #[error("no version of model {model:?} matches {prefix:?}")]
    UnknownVersion { model: String, prefix: String },
    #[error("{prefix:?} matches {count} versions of model {model:?}; give more of the hash")]
    AmbiguousVersion {
        model: String,
        prefix: String,
        count: usize,
    },
    /// Another run changed the champion after this run read it; this run
    /// logged nothing and moved nothing (exit 4).
    #[error("superseded: {uri}: {detail}")]
    Superseded { uri: String, detail: String },
    /// `champion.json` is there but does not read back. Only
    /// `rollback --to` may replace it (see [`Registry::state_replacing_damaged_pointer`]).
    #[error(
        "{uri}: the champion pointer is unreadable ({message}). Repair it with \
         `salescast rollback --to VERSION --reason \"...\"`, which points it at a whole version and logs the repair \
         (the decision log's newest champion is {log_champion})"
    )]
    PointerUnreadable {
        uri: String,
        message: String,
        log_champion: String,
    },
    /// The pointer and the log disagree in a way the protocol cannot produce
    /// or repair (a writer that does not follow it, or a hand edit).
    #[error("{uri}: the champion pointer and the decision log disagree: {detail}")]
    Inconsistent { uri: String, detail: String },
    /// A record with a non-finite number, which JSON would store as `null`.
    #[error("refusing to write {uri}: {what} is not a finite number (JSON would store it as null)")]
    NotFinite { uri: String, what: String },
    /// A test-only pause point failed (see [`pause`]).
    #[error("test pause point: {0}")]
    Pause(#[from] std::io::Error),
}

pub use crate::digest::sha256_hex;

/// Where a version's training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub lake: String,
    pub window_first_day: NaiveDate,
    pub window_last_day: NaiveDate,
    /// The newest day the stored model was trained on.
    pub trained_through: NaiveDate,
    pub holdout_first_day: NaiveDate,
    pub partition_files: usize,
    /// SHA-256 over the keys, sizes and versions of the partition files
    /// read and the content hashes of the tables read with them
    /// (`SalesWindow::fingerprint`).
    pub data_fingerprint: String,
    pub training_rows: usize,
    /// Thin days of the window before its newest, reported (none in older manifests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thin_days: Vec<NaiveDate>,
}

/// Which build made a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub tool_version: String,
    pub git_commit: Option<String>,
    pub build_id: Option<String>,
}

impl BuildInfo {
    /// The running binary and the CI build it runs in, if any.
    pub fn current() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("SALESCAST_GIT_COMMIT")
                .map(str::to_string)
                .or_else(|| env("CODEBUILD_RESOLVED_SOURCE_VERSION"))
                .or_else(|| env("GITHUB_SHA")),
            build_id: env("CODEBUILD_BUILD_ID")
                .or_else(|| env("GITHUB_RUN_ID").map(|id| format!("github-run-{id}"))),
        }
    }
}

/// What the registry records about one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: String,
    pub model: String,
    pub family: Family,
    pub size: u64,
    pub created_at: DateTime<Utc>,
    pub lineage: Lineage,
    /// The configuration the version was trained with.
    pub config: serde_json::Value,
    /// Metrics on the holdout of the run that stored it, and of the inner validation.
    pub holdout_metrics: Metrics,
    pub validation_metrics: Metrics,
    pub build: BuildInfo,
    /// Its forecast intervals (versions stored before intervals have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::forecast::intervals::Calibration>,
    /// The drift of the newest data against the training window, measured by
    /// the run that stored it (versions stored before drift have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<crate::drift::DriftReport>,
    /// The boosted-trees configuration the run picked
    /// (`training.gbdt_configs`; none for other families and older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbdt_config: Option<String>,
    /// What the full search behind it picked, for warm retrains to refit
    /// (none in versions stored before warm retrains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::train::Recipe>,
}

/// The champion pointer: a cache of the decision log's newest
/// `champion_after` (see `registry/protocol.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Champion {
    pub version: String,
    pub since: DateTime<Utc>,
    pub previous: Option<String>,
    pub kind: DecisionKind,
    /// The decision that moved the pointer here (none in pointers written
    /// before the decision-ahead protocol).
    #[serde(default)]
    pub decision: Option<u64>,
    /// Moved here by a repair (a later command finishing a run that stopped
    /// after logging its decision), not by the run that decided.
    #[serde(default)]
    pub recovered: bool,
}

/// One entry of the decision log: the decision, numbered and timed by the
/// log, with the build that made it. The JSON is flat (the decision's fields
/// sit beside `sequence` and `at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub sequence: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub what: NewDecision,
    pub build: BuildInfo,
}

/// A decision before the log gives it its sequence number and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDecision {
    pub kind: DecisionKind,
    pub actor: String,
    pub reason: String,
    pub run_date: Option<NaiveDate>,
    /// The champion before the decision, and after it.
    pub champion_before: Option<String>,
    pub champion_after: Option<String>,
    pub challenger: Option<String>,
    pub challenger_metrics: Option<Metrics>,
    pub champion_metrics: Option<Metrics>,
    pub baseline_metrics: Option<Metrics>,
    /// Written by a repair from the champion pointer's own record, not by the
    /// run that made the decision (absent, so false, in older entries).
    #[serde(default)]
    pub recovered: bool,
    /// The gate's noise check: the improvement and its interval (absent in older entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::noise::NoiseEstimate>,
    /// How the retrain trained its challenger: full search or warm refit,
    /// and why (absent in older entries and in other decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::train::SearchRecord>,
}

/// A version loaded by [`Registry::load_model`].
#[derive(Debug)]
pub struct LoadedModel {
    pub artifact: Artifact,
    pub manifest: Manifest,
}

/// Did storing a version add it?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Added,
    AlreadyThere,
    /// It was there but damaged (an artifact that did not hash to its name,
    /// or a manifest that did not read back): replaced with the run's own
    /// bytes, which hash to the name, by compare-and-swap on the damaged object.
    Repaired,
}

/// A version whose manifest is there but does not read back (truncated,
/// hand-edited): listed apart, never loaded, never a rollback target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnreadableVersion {
    pub version: String,
    pub uri: String,
    pub problem: String,
}

/// Every version of a model: the whole ones, and the unreadable ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VersionListing {
    /// Whole versions, oldest first.
    pub whole: Vec<Manifest>,
    pub unreadable: Vec<UnreadableVersion>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    model: String,
}

impl Registry {
    pub fn new(store: Store, model: &str) -> Self {
        Self {
            store,
            model: model.to_string(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.model)
    }

    pub fn artifact_key(&self, version: &str) -> String {
        self.key(&format!("versions/{version}/model.bin"))
    }

    fn manifest_key(&self, version: &str) -> String {
        self.key(&format!("versions/{version}/manifest.json"))
    }

    /// The champion pointer's key in the registry's store.
    pub fn champion_key(&self) -> String {
        self.key("champion.json")
    }

    fn decision_key(&self, sequence: u64) -> String {
        self.key(&format!("decisions/{sequence:08}.json"))
    }

    fn read_json<T: DeserializeOwned>(&self, key: &str) -> Result<(T, Version), RegistryError> {
        let object = self.store.get(key)?;
        let value = serde_json::from_slice(&object.bytes).map_err(|e| RegistryError::Unreadable {
            uri: self.store.uri_of(key),
            message: e.to_string(),
        })?;
        Ok((value, object.version))
    }

    /// Refuses metrics that would not read back (see [`RegistryError::NotFinite`]).
    fn check_finite<'a>(
        &self,
        key: &str,
        metrics: impl IntoIterator<Item = (&'a str, Option<&'a Metrics>)>,
    ) -> Result<(), RegistryError> {
        for (what, metrics) in metrics {
            if metrics.is_some_and(|m| !m.is_finite()) {
                return Err(RegistryError::NotFinite {
                    uri: self.store.uri_of(key),
                    what: format!("a metric of {what} ({metrics:?})"),
                });
            }
        }
        Ok(())
    }

    fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("registry records serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Stores an artifact and its manifest, create-only, under the sealed
    /// artifact's hash (which the stored manifest records as its version).
    /// Storing the same bytes again adds nothing and keeps the first manifest.
    ///
    /// A damaged copy already there (a `model.bin` that does not hash to its
    /// name, a `manifest.json` that does not read back) is replaced by
    /// compare-and-swap on the damaged object: this run holds the bytes the
    /// name stands for, so a reader sees the damaged object (refused) or the
    /// right one, never a wrong one.
    pub fn put_version(&self, artifact: &Sealed, manifest: &Manifest) -> Result<Stored, RegistryError> {
        let version = artifact.version().to_string();
        let manifest = Manifest {
            version: version.clone(),
            ..manifest.clone()
        };
        self.check_finite(
            &self.manifest_key(&version),
            [
                ("the holdout", Some(&manifest.holdout_metrics)),
                ("the validation", Some(&manifest.validation_metrics)),
            ],
        )?;
        if manifest.drift.as_ref().is_some_and(|d| !d.is_finite()) {
            return Err(RegistryError::NotFinite {
                uri: self.store.uri_of(&self.manifest_key(&version)),
                what: "a drift statistic".into(),
            });
        }
        let mut stored = self.store_whole(&self.artifact_key(&version), artifact.bytes(), |bytes| {
            sha256_hex(bytes) == version
        })?;
        let manifest_stored = self.store_whole(
            &self.manifest_key(&version),
            &Self::json_bytes(&manifest),
            |bytes| serde_json::from_slice::<Manifest>(bytes).is_ok(),
        )?;
        if manifest_stored == Stored::Repaired && stored == Stored::AlreadyThere {
            stored = Stored::Repaired;
        }
        Ok(stored)
    }

    /// A whole version, ready to forecast: the artifact re-hashed against its
    /// name and decoded, and its manifest read back. The one loader of
    /// models: retrain's champion, rollback's target, predict and serve.
    pub fn load_model(&self, version: &str) -> Result<LoadedModel, RegistryError> {
        let bytes = self.load_artifact(version)?;
        let artifact = Artifact::from_bytes(&bytes).map_err(|e| RegistryError::Unreadable {
            uri: self.store.uri_of(&self.artifact_key(version)),
            message: format!("not a salescast model: {e}"),
        })?;
        let manifest = self.manifest(version)?;
        Ok(LoadedModel { artifact, manifest })
    }

    /// The artifact's bytes, after checking they hash to `version`.
    pub fn load_artifact(&self, version: &str) -> Result<Vec<u8>, RegistryError> {
        let key = self.artifact_key(version);
        let bytes = self
            .store
            .get(&key)
            .map_err(|e| self.missing(e.into(), &key, version))?
            .bytes;
        let actual = sha256_hex(&bytes);
        if actual != version {
            return Err(RegistryError::Corrupt {
                uri: self.store.uri_of(&key),
                expected: version.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// A store's "not found" for one of `version`'s own objects, as the
    /// version not being whole.
    fn missing(&self, e: RegistryError, key: &str, version: &str) -> RegistryError {
        match e {
            RegistryError::Store(StoreError::NotFound { .. }) => RegistryError::Missing {
                uri: self.store.uri_of(key),
                version: version.to_string(),
            },
            e => e,
        }
    }

    /// The manifest of a version the registry names (the champion, a
    /// resolved prefix): not there is [`RegistryError::Missing`].
    pub fn manifest(&self, version: &str) -> Result<Manifest, RegistryError> {
        let key = self.manifest_key(version);
        Ok(self
            .read_json(&key)
            .map_err(|e| self.missing(e, &key, version))?
            .0)
    }

    /// Every version with a manifest: the whole ones oldest first, and
    /// those whose manifest does not read back (listed apart, with a warning,
    /// so one damaged version does not hide the others).
    pub fn versions(&self) -> Result<VersionListing, RegistryError> {
        let mut listing = VersionListing::default();
        for meta in self.store.list(&self.key("versions/"))? {
            if !meta.key.ends_with("/manifest.json") {
                continue;
            }
            match self.read_json::<Manifest>(&meta.key) {
                Ok((manifest, _)) => listing.whole.push(manifest),
                Err(RegistryError::Unreadable { uri, message }) => {
                    let version = meta.key.split('/').rev().nth(1).unwrap_or_default().to_string();
                    tracing::warn!("{uri}: unreadable manifest, version {version} left out: {message}");
                    listing.unreadable.push(UnreadableVersion {
                        version,
                        uri,
                        problem: message,
                    });
                }
                // Removed between the listing and the read: not a version any more.
                Err(RegistryError::Store(StoreError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        listing.whole.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.version.cmp(&b.version))
        });
        Ok(listing)
    }

    /// The one whole version whose hash starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<String, RegistryError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let unknown = || RegistryError::UnknownVersion {
            model: self.model.clone(),
            prefix: prefix.clone(),
        };
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let listed = self.store.list(&self.key(&format!("versions/{prefix}")))?;
        let mut matches: Vec<String> = listed
            .iter()
            .filter(|m| m.key.ends_with("/manifest.json"))
            .filter_map(|m| m.key.split('/').rev().nth(1).map(str::to_string))
            .collect();
        matches.dedup();
        match matches.len() {
            0 => Err(unknown()),
            1 => Ok(matches.remove(0)),
            count => Err(RegistryError::AmbiguousVersion {
                model: self.model.clone(),
                prefix,
                count,
            }),
        }
    }

    /// The champion pointer as stored, with its store version, if there is
    /// one. No repair: commands that act on the champion use [`Registry::state`].
    pub fn champion(&self) -> Result<Option<(Champion, Version)>, RegistryError> {
        match self.read_json(&self.champion_key()) {
            Ok(found) => Ok(Some(found)),
            Err(RegistryError::Store(StoreError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Points the champion at `champion.version` if the pointer is still at
    /// `expected` (`None`: there was no champion). A lost race is
    /// [`RegistryError::Superseded`] and changes nothing. Only the protocol
    /// calls this.
    fn set_champion(&self, champion: &Champion, expected: Option<&Version>) -> Result<(), RegistryError> {
        let mode = match expected {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let key = self.champion_key();
        match self.store.put(&key, &Self::json_bytes(champion), mode) {
            Ok(_) => Ok(()),
            Err(StoreError::Precondition { .. }) | Err(StoreError::AlreadyExists { .. }) => {
                Err(RegistryError::Superseded {
                    uri: self.store.uri_of(&key),
                    detail: "the champion pointer changed after this run read it".into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes decision `sequence`, create-only: `None` if that number is taken.
    fn create_decision(
        &self,
        sequence: u64,
        decision: &NewDecision,
    ) -> Result<Option<Decision>, RegistryError> {
        self.check_finite(
            &self.decision_key(sequence),
            [
                ("the challenger", decision.challenger_metrics.as_ref()),
                ("the champion", decision.champion_metrics.as_ref()),
                ("the baseline", decision.baseline_metrics.as_ref()),
            ],
        )?;
        let entry = Decision {
            sequence,
            at: Utc::now(),
            what: decision.clone(),
            build: BuildInfo::current(),
        };
        match self.store.put(
            &self.decision_key(sequence),
            &Self::json_bytes(&entry),
            PutMode::Create,
        ) {
            Ok(_) => Ok(Some(entry)),
            Err(StoreError::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One entry of the decision log.
    pub fn decision(&self, sequence: u64) -> Result<Decision, RegistryError> {
        Ok(self.read_json(&self.decision_key(sequence))?.0)
    }

    /// The highest decision number in the log (0 when it is empty).
    pub(crate) fn last_sequence(&self) -> Result<u64, RegistryError> {
        Ok(self
            .store
            .list(&self.key("decisions/"))?
            .iter()
            .filter_map(|m| {
                m.key
                    .rsplit('/')
                    .next()?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0))
    }

    /// The whole decision log, oldest first.
    pub fn decisions(&self) -> Result<Vec<Decision>, RegistryError> {
        let mut out = Vec::new();
        for meta in self.store.list(&self.key("decisions/"))? {
            out.push(self.read_json::<Decision>(&meta.key)?.0);
        }
        out.sort_by_key(|d| d.sequence);
        Ok(out)
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;

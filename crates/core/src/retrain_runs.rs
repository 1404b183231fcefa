//! The intermediates of a sharded `retrain`, kept in the registry under the
//! run's id, `<model>/runs/dt=<D>/`, until its fan-in has decided (then
//! only `decided.json` stays, below):
//! - `prepare-<k>-of-<n>.json`: shard k's marker (its window summary, the
//!   categories of its training rows, its staged files), beside
//!   `prepare-<k>-of-<n>-fit-<sha16>.parquet` (its share of the seeded fit
//!   sample) and `...-drift-<sha16>.parquet` (its drift picks);
//! - `fit.json`: the one fit's marker (the challenger's and the inner
//!   model's staged files, the search, the drift), beside
//!   `fit-challenger-<sha16>.bin` and `fit-inner-<sha16>.bin`;
//! - `score-<k>-of-<n>.json`: shard k's scoring marker, beside
//!   `score-<k>-of-<n>-<sha16>.bin` (its forecasts on the holdout);
//! - `deciding.json`: written by the fan-in just before its commit (N, the
//!   fit, the challenger, the champion it is judged against, the log's
//!   newest decision number), so a fan-in killed between its commit and
//!   `decided.json` is found in the log when run again, not decided twice.
//!
//! Data files are content-addressed and written create-only before their
//! marker, which is written last: a marker never names a file that is not
//! there, and a killed step rerun writes the same files again (or finds
//! them). Every read checks the file's SHA-256 against its marker, and each
//! step names the markers it built on by their SHA-256, so a step rerun
//! after a later one (say, a shard prepared again on re-ingested data after
//! the fit) makes the later steps refuse, naming it, until they are rerun.
//! The fan-in, once it committed its decision, writes `decided.json` (the
//! decision's number, the fit it decided on, N) and deletes every other
//! file of the folder: a fan-in retried after that (a build retried after
//! its salescast step succeeded) finds the run decided and reports that
//! decision's stored report instead of refusing. It also deletes the
//! folders of runs that never fanned in whose day is more than
//! `staging::KEEP_DAYS` (14) before its own (so a run given up on expires
//! with the next daily fan-in; a backfill that old, still running, then
//! finds its staging gone and refuses, exit 6, until it is run again).

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::registry::Registry;
use crate::storage::{PutMode, StoreError};

/// One staged file: its key in the registry's store, SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagedFile {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A step found what it builds on missing, unfinished, damaged or from
    /// another run: nothing was decided.
    #[error("cannot {step} the sharded retrain of {data_day}: {}", problems.join("; "))]
    Incomplete {
        step: &'static str,
        data_day: NaiveDate,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The folder of every day's run folder of `registry`'s model.
pub fn runs_root(registry: &Registry) -> String {
    format!("{}/runs/", registry.model())
}

/// The staging folder of one day's sharded retrain of `registry`'s model.
pub struct RunFolder<'a> {
    registry: &'a Registry,
    pub data_day: NaiveDate,
}

impl<'a> RunFolder<'a> {
    pub fn new(registry: &'a Registry, data_day: NaiveDate) -> Self {
        Self { registry, data_day }
    }

    /// The folder's key prefix (ends with "/").
    pub fn prefix(&self) -> String {
        format!("{}dt={}/", runs_root(self.registry), self.data_day)
    }

    /// Writes `bytes` as `<stem>-<sha16>.<ext>`, create-only (the same bytes
    /// already there are fine).
    pub fn stage(&self, stem: &str, ext: &str, bytes: &[u8]) -> Result<StagedFile, StoreError> {
        let sha256 = sha256_hex(bytes);
        let key = format!("{}{stem}-{}.{ext}", self.prefix(), &sha256[..16]);
        match self.registry.store().put(&key, bytes, PutMode::Create) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(StagedFile {
            key,
            sha256,
            bytes: bytes.len() as u64,
        })
    }

    /// The key of the marker `name`.
    fn marker_key(&self, name: &str) -> String {
        format!("{}{name}.json", self.prefix())
    }

    /// Where the marker `name` is, as a URI to name in a message.
    pub fn marker_uri(&self, name: &str) -> String {
        self.registry.store().uri_of(&self.marker_key(name))
    }

    /// Writes a marker `<name>.json` (replacing an older one); returns the
    /// SHA-256 of its bytes, by which later steps name what they built on.
    pub fn put_marker<T: Serialize>(&self, name: &str, marker: &T) -> Result<String, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(marker).expect("markers serialize");
        bytes.push(b'\n');
        let key = self.marker_key(name);
        self.registry.store().put(&key, &bytes, PutMode::Overwrite)?;
        Ok(sha256_hex(&bytes))
    }

    /// A marker and the SHA-256 of its bytes; `Err(problem)` when it is
    /// missing or unreadable, naming it.
    pub fn marker<T: DeserializeOwned>(&self, name: &str) -> Result<Result<(T, String), String>, StoreError> {
        let key = self.marker_key(name);
        let bytes = match self.registry.store().get(&key) {
            Ok(object) => object.bytes,
            Err(StoreError::NotFound { .. }) => return Ok(Err(missing(name))),
            Err(e) => return Err(e),
        };
        Ok(match serde_json::from_slice(&bytes) {
            Ok(marker) => Ok((marker, sha256_hex(&bytes))),
            Err(e) => Err(format!("{name} is unreadable ({e})")),
        })
    }

    /// A staged file's bytes, checked against its marker's SHA-256.
    pub fn read(&self, file: &StagedFile) -> Result<Result<Vec<u8>, String>, StoreError> {
        let bytes = match self.registry.store().get(&file.key) {
            Ok(object) => object.bytes,
            Err(StoreError::NotFound { .. }) => return Ok(Err(missing(&file.key))),
            Err(e) => return Err(e),
        };
        Ok(if sha256_hex(&bytes) == file.sha256 {
            Ok(bytes)
        } else {
            Err(format!("{} does not match its marker's SHA-256", file.key))
        })
    }

    /// Whether the folder holds nothing but the marker `keep`.
    pub fn holds_only(&self, keep: &str) -> Result<bool, StoreError> {
        let kept = self.marker_key(keep);
        Ok(self
            .registry
            .store()
            .list(&self.prefix())?
            .iter()
            .all(|o| o.key == kept))
    }

    /// Deletes every file of the folder but the marker `keep`, the fit's
    /// marker last (a clear cut short leaves it, so the run still reads as
    /// the fit's); returns how many.
    pub fn clear_but(&self, keep: &str) -> Result<usize, StoreError> {
        let [kept, fit] = [keep, FIT_MARKER].map(|name| self.marker_key(name));
        let mut listed: Vec<String> = (self.registry.store().list(&self.prefix())?.into_iter())
            .map(|o| o.key)
            .filter(|key| *key != kept)
            .collect();
        listed.sort_by_key(|key| *key == fit);
        for key in &listed {
            self.registry.store().delete(key)?;
        }
        Ok(listed.len())
    }

    pub fn refuse(&self, step: &'static str, problems: Vec<String>) -> RunError {
        RunError::Incomplete {
            step,
            data_day: self.data_day,
            problems,
        }
    }
}

/// What [`RunFolder::marker`] says of a marker that is not there.
pub fn missing(name: &str) -> String {
    format!("{name} is missing")
}

/// The file names of shard `k` of `n`'s markers.
pub fn prepare_marker(k: u32, n: u32) -> String {
    format!("prepare-{k}-of-{n}")
}

pub fn score_marker(k: u32, n: u32) -> String {
    format!("score-{k}-of-{n}")
}

pub const FIT_MARKER: &str = "fit";

/// The marker a fan-in leaves once it decided: what a retried fan-in reads.
pub const DECIDED_MARKER: &str = "decided";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecidedMarker {
    /// The shards fanned in.
    pub n: u32,
    /// The SHA-256 of the fit marker the decision was made on.
    pub fit: String,
    /// The decision's number in the log.
    pub decision_sequence: u64,
}

/// The marker a fan-in writes just before it commits its decision: what a
/// fan-in retried after a kill between the commit and [`DECIDED_MARKER`]
/// reads to find that decision in the log rather than log a second one.
pub const DECIDING_MARKER: &str = "deciding";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecidingMarker {
    /// The shards fanned in.
    pub n: u32,
    /// The SHA-256 of the fit marker the decision is made on.
    pub fit: String,
    /// The challenger's version (the SHA-256 of its artifact).
    pub challenger: String,
    /// The champion it is judged against (none without one).
    pub champion: Option<String>,
    /// The log's newest decision when the fan-in read the registry: its
    /// own decision, if logged, comes after it.
    pub after_sequence: u64,
}

/// Bincode 2 (serde) of a staged payload.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("payloads encode")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}

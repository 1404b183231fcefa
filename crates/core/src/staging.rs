//! A sharded step's output, staged: one shard's content-addressed file and
//! its marker, written where no reader looks, and read back checked by the
//! fan-in. Shared by sharded `predict` (`predictions_shards.rs`) and
//! sharded `monitor` (`scores_shards.rs`), which each own their folder,
//! their marker's fields and the checks of their rows.
//!
//! In a staging folder, shard K of N writes
//! - `part-<k>-of-<n>-<first 16 hex of its SHA-256>.parquet`: its rows,
//!   created, never overwritten (a damaged file of the same name is
//!   rewritten);
//! - `shard-<k>-of-<n>.json`: its marker, LAST, naming the file's key,
//!   SHA-256 and size;
//!
//! then removes its older part files. A shard killed before its marker
//! leaves a file no marker names (the fan-in refuses: not finished); a
//! retried shard that makes the same bytes finds its file and marker and
//! writes nothing.

use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::digest::sha256_hex;
use crate::lake::WriteOutcome;
use crate::registry::pause::{self, Step};
use crate::shard::Shard;
use crate::storage::{PutMode, Store, StoreError};

/// A staged file as its marker names it (the JSON of a predictions
/// manifest's file: key, SHA-256, size).
pub use crate::predictions::PredictionFile as StagedFile;

/// How many days before a fan-in's own day the staging of other days is
/// kept: older staging (a run never fanned in, or a predict's kept for a
/// retried fan-in) expires with the next fan-in.
pub const KEEP_DAYS: u64 = 14;

/// After a fan-in committed: `expire_days`, logged; a failure is only a
/// warning (the commit stands, the next fan-in tries again).
pub fn expire_after_commit(store: &Store, root: &str, day: NaiveDate) {
    match expire_days(store, root, day) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} staged files under {root} of days before {day}"),
        Err(e) => tracing::warn!("could not remove the staged files under {root} of older days: {e}"),
    }
}

/// Deletes every object under `root` (a folder of `dt=YYYY-MM-DD/`
/// folders) whose day is more than `KEEP_DAYS` before `day`; returns how
/// many. Keys not under a `dt=` folder are left alone.
pub fn expire_days(store: &Store, root: &str, day: NaiveDate) -> Result<usize, StoreError> {
    let cutoff = day - chrono::Days::new(KEEP_DAYS);
    let mut removed = 0;
    for object in store.list(root)? {
        let staged_day = object.key[root.len()..]
            .strip_prefix("dt=")
            .and_then(|rest| rest.split('/').next())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if staged_day.is_some_and(|d| d < cutoff) {
            store.delete(&object.key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The test hook that pauses a run between the file and its marker.
    #[error("pausing at a test hook: {0}")]
    Pause(#[from] std::io::Error),
}

/// What [`stage`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Staged {
    /// `written`: a new marker; `unchanged`: the same marker and file were
    /// there; `replaced`: the marker or file changed.
    pub outcome: WriteOutcome,
    pub marker_key: String,
    pub file: StagedFile,
    /// This shard's earlier part files, deleted.
    pub removed: Vec<String>,
}

/// `shard-<k>-of-<n>.json`.
pub fn marker_name(shard: Shard) -> String {
    format!("shard-{}-of-{}.json", shard.k, shard.n)
}

/// The start of a shard's part file names: `part-<k>-of-<n>-`.
pub fn part_stem(shard: Shard) -> String {
    format!("part-{}-of-{}-", shard.k, shard.n)
}

/// A marker as stored: pretty JSON and a newline.
pub fn marker_bytes<M: Serialize>(marker: &M) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(marker).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Stages `bytes` as `shard`'s part file in the folder `prefix`, then the
/// marker that `marker` makes from the file's description; see the module
/// doc.
pub fn stage<M: Serialize>(
    store: &Store,
    prefix: &str,
    shard: Shard,
    bytes: &[u8],
    marker: impl FnOnce(StagedFile) -> M,
) -> Result<Staged, StagingError> {
    let sha256 = sha256_hex(bytes);
    let stem = format!("{prefix}{}", part_stem(shard));
    let key = format!("{stem}{}.parquet", sha256.get(..16).unwrap_or(&sha256));
    let file = StagedFile {
        key: key.clone(),
        sha256: sha256.clone(),
        bytes: bytes.len() as u64,
    };
    let marker_key = format!("{prefix}{}", marker_name(shard));
    let listing = store.list(prefix)?;
    let mut changed = false;
    if listing.iter().any(|m| m.key == key) {
        if sha256_hex(&store.get(&key)?.bytes) != sha256 {
            tracing::warn!("{}: damaged, rewriting it", store.uri_of(&key));
            store.put(&key, bytes, PutMode::Overwrite)?;
            changed = true;
        }
    } else {
        match store.put(&key, bytes, PutMode::Create) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => changed = true,
            Err(e) => return Err(e.into()),
        }
    }
    pause::at(Step::ShardStaged)?;
    let new_marker = marker_bytes(&marker(file.clone()));
    let outcome = match store.get(&marker_key) {
        Ok(old) if old.bytes == new_marker && !changed => WriteOutcome::Unchanged,
        Ok(old) if old.bytes == new_marker => WriteOutcome::Replaced,
        Ok(_) => {
            store.put(&marker_key, &new_marker, PutMode::Overwrite)?;
            WriteOutcome::Replaced
        }
        Err(StoreError::NotFound { .. }) => {
            store.put(&marker_key, &new_marker, PutMode::Overwrite)?;
            WriteOutcome::Written
        }
        Err(e) => return Err(e.into()),
    };
    let mut removed = Vec::new();
    for old in listing
        .iter()
        .filter(|m| m.key != key && m.key.starts_with(&stem) && m.key.ends_with(".parquet"))
    {
        store.delete(&old.key)?;
        removed.push(old.key.clone());
    }
    Ok(Staged {
        outcome,
        marker_key,
        file,
        removed,
    })
}

/// The marker (or a fan-in's record: any staging JSON) at `key`:
/// `Ok(None)` when there is none, `Err` with the problem when it cannot be
/// read or parsed.
pub fn read_marker<M: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<M>, String> {
    let bytes = match store.get(key) {
        Ok(object) => object.bytes,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{} does not parse as staging JSON: {e}", store.uri_of(key)))
}

/// The bytes of the file that the marker at `marker_key` names, checked:
/// in the marker's folder, there, with the marker's SHA-256 and size.
/// `Err` with the problem (naming the file) otherwise.
pub fn read_file(store: &Store, marker_key: &str, file: &StagedFile) -> Result<Vec<u8>, String> {
    let file_uri = store.uri_of(&file.key);
    let folder = marker_key.rsplit_once('/').map_or("", |(folder, _)| folder);
    if file.key.rsplit_once('/').map(|(f, _)| f) != Some(folder) {
        return Err(format!(
            "{} lists {file_uri}, outside its folder",
            store.uri_of(marker_key)
        ));
    }
    let bytes = match store.get(&file.key) {
        Ok(object) => object.bytes,
        Err(StoreError::NotFound { .. }) => {
            return Err(format!("{file_uri}: listed in its marker but missing"));
        }
        Err(e) => return Err(e.to_string()),
    };
    let sha256 = sha256_hex(&bytes);
    if sha256 != file.sha256 || bytes.len() as u64 != file.bytes {
        return Err(format!(
            "{file_uri}: {} bytes with SHA-256 {sha256}, but its marker lists {} bytes with SHA-256 {}",
            bytes.len(),
            file.bytes,
            file.sha256
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_older_than_keep_days_expires_and_nothing_else() {
        let (_dir, store) = crate::storage::temp_store();
        let keys = [
            "m/runs/dt=2015-07-16/fit.json",  // 15 days before: expires
            "m/runs/dt=2015-06-01/a/b.bin",   // deeper, older: expires
            "m/runs/dt=2015-07-17/fit.json",  // exactly 14 days before: kept
            "m/runs/dt=2015-07-31/fit.json",  // the day itself: kept
            "m/runs/2015-06-01/report.md",    // not a dt= folder: kept
            "m/runs/dt=yesterday/fit.json",   // not a date: kept
            "m/other/dt=2015-06-01/fit.json", // outside the root: kept
        ];
        for key in keys {
            store.put(key, b"x", PutMode::Create).unwrap();
        }
        let day = NaiveDate::from_ymd_opt(2015, 7, 31).unwrap();
        assert_eq!(expire_days(&store, "m/runs/", day).unwrap(), 2);
        let mut left: Vec<String> = store.list("m/").unwrap().into_iter().map(|o| o.key).collect();
        left.sort();
        let mut kept: Vec<&str> = keys[2..].to_vec();
        kept.sort();
        assert_eq!(left, kept);
        assert_eq!(
            expire_days(&store, "m/runs/", day).unwrap(),
            0,
            "a rerun removes nothing"
        );
    }
}

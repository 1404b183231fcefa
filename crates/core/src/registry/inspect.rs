//! Reading the registry's objects as they are, for `salescast doctor`: every
//! version folder with what it holds, and every decision file, including the
//! ones the readers skip or refuse. Nothing here repairs or writes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Decision, Registry, RegistryError};
use crate::storage::StoreError;

/// What one `versions/<hash>/` folder holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionFolder {
    pub version: String,
    pub has_artifact: bool,
    pub has_manifest: bool,
}

/// One object under `decisions/`, read as it is.
#[derive(Debug)]
pub enum DecisionFile {
    /// Named `<sequence>.json` and readable.
    Entry(Box<Decision>),
    /// Named `<sequence>.json` but not a decision.
    Unreadable {
        sequence: u64,
        uri: String,
        problem: String,
    },
    /// Not named like a decision.
    Stray { uri: String },
}

impl Registry {
    /// The URI of `rest` (`champion.json`, `versions/<hash>/`) under this
    /// registry's model, for messages.
    pub fn uri_of(&self, rest: &str) -> String {
        self.store.uri_of(&self.key(rest))
    }

    /// Every version folder, by hash, with whether its artifact and its
    /// manifest are there (not whether they are whole: see
    /// [`Registry::load_model`]).
    pub fn version_folders(&self) -> Result<Vec<VersionFolder>, RegistryError> {
        let root = self.key("versions/");
        let mut folders: BTreeMap<String, VersionFolder> = BTreeMap::new();
        for meta in self.store.list(&root)? {
            let Some((version, file)) = meta.key.strip_prefix(&root).and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            let folder = folders
                .entry(version.to_string())
                .or_insert_with(|| VersionFolder {
                    version: version.to_string(),
                    has_artifact: false,
                    has_manifest: false,
                });
            folder.has_artifact |= file == "model.bin";
            folder.has_manifest |= file == "manifest.json";
        }
        Ok(folders.into_values().collect())
    }

    /// Every object under `decisions/`, in key order (which is sequence
    /// order: the names are zero-padded).
    pub fn decision_files(&self) -> Result<Vec<DecisionFile>, RegistryError> {
        let mut out = Vec::new();
        for meta in self.store.list(&self.key("decisions/"))? {
            let uri = self.store.uri_of(&meta.key);
            let sequence = meta
                .key
                .rsplit('/')
                .next()
                .and_then(|name| name.strip_suffix(".json"))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok());
            let Some(sequence) = sequence else {
                out.push(DecisionFile::Stray { uri });
                continue;
            };
            match self.read_json::<Decision>(&meta.key) {
                Ok((decision, _)) => out.push(DecisionFile::Entry(Box::new(decision))),
                Err(RegistryError::Unreadable { uri, message }) => out.push(DecisionFile::Unreadable {
                    sequence,
                    uri,
                    problem: message,
                }),
                Err(RegistryError::Store(StoreError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

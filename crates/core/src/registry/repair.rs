//! Replacing a damaged stored object of a version (an artifact that does not
//! hash to its name, a manifest that does not read back) with a run's own
//! bytes, by compare-and-swap on the damaged object.

use super::{Registry, RegistryError, Stored};
use crate::storage::{PutMode, StoreError};

impl Registry {
    /// Writes `bytes` at `key` create-only; if something is there and `whole`
    /// accepts it, keeps it; if not, replaces it by compare-and-swap.
    pub(super) fn store_whole(
        &self,
        key: &str,
        bytes: &[u8],
        whole: impl Fn(&[u8]) -> bool,
    ) -> Result<Stored, RegistryError> {
        match self.store.put(key, bytes, PutMode::Create) {
            Ok(_) => return Ok(Stored::Added),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let there = self.store.get(key)?;
        if whole(&there.bytes) {
            return Ok(Stored::AlreadyThere);
        }
        match self.store.put(key, bytes, PutMode::Update(there.version)) {
            Ok(_) => {
                tracing::warn!(
                    "repaired the registry: {} was damaged; replaced it with this run's bytes, which the version's hash names",
                    self.store.uri_of(key)
                );
                Ok(Stored::Repaired)
            }
            // Another run replaced it meanwhile: check what is there now.
            Err(StoreError::Precondition { .. }) => {
                if whole(&self.store.get(key)?.bytes) {
                    Ok(Stored::AlreadyThere)
                } else {
                    Err(RegistryError::Unreadable {
                        uri: self.store.uri_of(key),
                        message: "damaged, and it changed while this run replaced it; run again".into(),
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

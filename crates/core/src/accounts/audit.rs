//! The audit log: one create-only JSON object per event in the registry's
//! store (`accounts/audit/<day>/<time>-<random>.json`), so entries are never
//! rewritten and two tasks never collide. Logins, failures, lockouts, user
//! and token changes and rollbacks, each with who, when and from where.

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::AccountsError;
use crate::storage::{PutMode, Store};

pub const AUDIT_PREFIX: &str = "accounts/audit/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Who acted: a user name, or the login name of a command-line user.
    pub actor: String,
    /// What happened: `login`, `login_failed`, `locked`, `user_added`, ...
    pub event: String,
    /// The account it concerns, if any.
    pub subject: Option<String>,
    /// Where from: a client address, or `cli`.
    pub from: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Store,
    from: String,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            from: "cli".into(),
        }
    }

    /// The same log, recording `from` (a client address) as the origin.
    pub fn from(mut self, from: &str) -> Self {
        self.from = from.to_string();
        self
    }

    /// Appends one entry.
    pub fn record(
        &self,
        actor: &str,
        event: &str,
        subject: Option<&str>,
        detail: &str,
    ) -> Result<AuditEntry, AccountsError> {
        let entry = AuditEntry {
            at: Utc::now(),
            actor: actor.to_string(),
            event: event.to_string(),
            subject: subject.map(str::to_string),
            from: self.from.clone(),
            detail: detail.to_string(),
        };
        let mut nonce = [0u8; 6];
        rand::rng().fill_bytes(&mut nonce);
        let key = format!(
            "{AUDIT_PREFIX}{}/{}-{}.json",
            entry.at.format("%Y-%m-%d"),
            entry.at.format("%H%M%S%.9f"),
            hex::encode(nonce)
        );
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        self.store.put(&key, &bytes, PutMode::Create)?;
        Ok(entry)
    }

    /// The newest `count` entries, newest first (keys sort by time).
    pub fn newest(&self, count: usize) -> Result<Vec<AuditEntry>, AccountsError> {
        let mut keys: Vec<String> = self
            .store
            .list(AUDIT_PREFIX)?
            .into_iter()
            .map(|m| m.key)
            .collect();
        keys.sort_unstable();
        let mut entries = Vec::new();
        for key in keys.iter().rev().take(count) {
            let bytes = self.store.get(key)?.bytes;
            entries.push(
                serde_json::from_slice(&bytes).map_err(|e| AccountsError::Unreadable {
                    uri: self.store.uri_of(key),
                    problem: e.to_string(),
                })?,
            );
        }
        Ok(entries)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AccountsError> {
        let mut entries = Vec::new();
        for meta in self.store.list(AUDIT_PREFIX)? {
            let bytes = self.store.get(&meta.key)?.bytes;
            let entry = serde_json::from_slice(&bytes).map_err(|e| AccountsError::Unreadable {
                uri: self.store.uri_of(&meta.key),
                problem: e.to_string(),
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

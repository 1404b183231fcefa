//! The audit log: one create-only JSON object per event in the registry's
//! store (`accounts/audit/<day>/<time>-<random>.json`), so entries are never
//! rewritten and two tasks never collide. Logins, failures, lockouts, user
//! and token changes and rollbacks, each with who, when and from where.

use chrono::{DateTime, Datelike as _, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::AccountsError;
use crate::storage::{PutMode, Store};

pub const AUDIT_PREFIX: &str = "accounts/audit/";
/// How many months back [`AuditLog::newest`] looks.
const RECENT_MONTHS: usize = 12;

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

    /// The newest `count` entries, newest first (keys sort by time): the
    /// days from tomorrow (a task whose clock runs ahead) back to yesterday
    /// one by one, then whole months back from this one, until `count` are
    /// found or `RECENT_MONTHS` (12) are listed. An admin page costs a LIST or
    /// two on a busy log and a dozen small ones on a quiet log, however long
    /// it has grown (it listed the whole log, on S3 one request per 1,000
    /// entries). Older entries are left to [`AuditLog::entries`].
    pub fn newest(&self, count: usize) -> Result<Vec<AuditEntry>, AccountsError> {
        let today = Utc::now().date_naive();
        let mut prefixes: Vec<String> = (-1..=1)
            .map(|back| {
                (today - chrono::Duration::days(back))
                    .format("%Y-%m-%d/")
                    .to_string()
            })
            .collect();
        let mut month = today.with_day(1).unwrap_or(today);
        for _ in 0..RECENT_MONTHS {
            prefixes.push(month.format("%Y-%m-").to_string());
            month = month.pred_opt().and_then(|d| d.with_day(1)).unwrap_or(month);
        }
        let mut keys = Vec::new();
        for prefix in prefixes {
            keys.extend(self.keys(&format!("{AUDIT_PREFIX}{prefix}"))?);
            keys.sort_unstable_by(|a, b| b.cmp(a));
            keys.dedup();
            if keys.len() >= count {
                break;
            }
        }
        keys.truncate(count);
        keys.iter().map(|key| self.read(key)).collect()
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, AccountsError> {
        Ok(self.store.list(prefix)?.into_iter().map(|m| m.key).collect())
    }

    fn read(&self, key: &str) -> Result<AuditEntry, AccountsError> {
        let bytes = self.store.get(key)?.bytes;
        serde_json::from_slice(&bytes).map_err(|e| AccountsError::Unreadable {
            uri: self.store.uri_of(key),
            problem: e.to_string(),
        })
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AccountsError> {
        self.keys(AUDIT_PREFIX)?
            .iter()
            .map(|key| self.read(key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries today, two days, 40 days and 400 days ago: the newest come
    /// first across days and months; beyond a year they are left to the
    /// whole log.
    #[test]
    fn the_newest_entries_come_from_the_newest_days_then_months() {
        let (_dir, store) = crate::storage::temp_store();
        let log = AuditLog::new(store.clone());
        let now = Utc::now();
        let mut written = Vec::new();
        for (days_ago, seconds) in [(400, 0), (40, 0), (2, 10), (2, 20), (0, 5)] {
            let at = now - chrono::Duration::days(days_ago) - chrono::Duration::seconds(seconds);
            let entry = AuditEntry {
                at,
                actor: format!("actor {days_ago}-{seconds}"),
                event: "login".into(),
                subject: None,
                from: "test".into(),
                detail: String::new(),
            };
            let key = format!(
                "{AUDIT_PREFIX}{}/{}-000000000000.json",
                at.format("%Y-%m-%d"),
                at.format("%H%M%S%.9f")
            );
            store
                .put(&key, &serde_json::to_vec(&entry).unwrap(), PutMode::Create)
                .unwrap();
            written.push(entry.actor);
        }
        let actors =
            |count| -> Vec<String> { log.newest(count).unwrap().into_iter().map(|e| e.actor).collect() };
        assert_eq!(actors(1), ["actor 0-5"]);
        assert_eq!(actors(3), ["actor 0-5", "actor 2-10", "actor 2-20"]);
        assert_eq!(
            actors(10),
            ["actor 0-5", "actor 2-10", "actor 2-20", "actor 40-0"]
        );
        assert_eq!(log.entries().unwrap().len(), written.len());
    }
}

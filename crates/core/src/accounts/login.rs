//! Logging in: the password check with the same answer and a similar cost
//! whether the user is unknown, disabled, locked or gave a wrong password;
//! the lockout after too many failures (kept in the account, so every server
//! task sees it); and the key that signs session cookies, shared by every
//! task through the registry's store.

use chrono::{Duration, Utc};
use rand::RngCore as _;

use super::{Accounts, AccountsError, User, password};
use crate::storage::{PutMode, StoreError};

/// Failures within [`LOCKOUT_WINDOW_MINUTES`] that lock an account.
pub const LOCKOUT_FAILURES: usize = 5;
pub const LOCKOUT_WINDOW_MINUTES: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_MINUTES: i64 = 15;
/// The audit log's actor of a failed login under a name no account has.
pub const UNKNOWN_USER: &str = "(unknown user)";
/// The session-signing key in the registry's store (32 random bytes, hex).
pub const SESSION_KEY: &str = "accounts/session.key";

impl Accounts {
    /// The user if `name` may log in with `password` now; `None` for every
    /// refusal alike. An unknown, locked or disabled user's attempt costs a
    /// hash of a decoy, as a wrong password does. Failures are counted in
    /// the account; the fifth within five minutes locks it for fifteen.
    /// Every attempt is audited with `from` (the client's address).
    pub fn login(&self, name: &str, password: &str, from: &str) -> Result<Option<User>, AccountsError> {
        let audit = self.audit().from(from);
        let found = match self.get(name) {
            Ok(found) => Some(found),
            Err(AccountsError::UnknownUser { .. } | AccountsError::Invalid { .. }) => None,
            Err(e) => return Err(e),
        };
        let now = Utc::now();
        let usable = found
            .as_ref()
            .filter(|(u, _)| !u.disabled && u.locked_until.is_none_or(|t| t <= now));
        let matches = match usable {
            Some((user, _)) => password::verify_password(password, &user.password),
            None => {
                // The same cost as a real check; the answer is no whatever it says.
                let _ = password::verify_password(password, password::decoy_hash());
                false
            }
        };
        let subject = found.as_ref().map(|(u, _)| u.name.as_str());
        if matches && let Some((user, version)) = usable {
            let user = if user.failed_logins.is_empty() && user.locked_until.is_none() {
                user.clone()
            } else {
                let mut cleared = user.clone();
                cleared.failed_logins.clear();
                cleared.locked_until = None;
                // A lost race here only leaves old failures, which expire.
                let _ = self.put_at(&cleared, version.clone());
                cleared
            };
            audit.record(&user.name, "login", Some(&user.name), "")?;
            return Ok(Some(user));
        }
        let why = match found.as_ref().map(|(u, _)| u) {
            None => "unknown user",
            Some(u) if u.disabled => "disabled",
            Some(u) if u.locked_until.is_some_and(|t| t > now) => "locked",
            Some(_) => "wrong password",
        };
        // A name no account has is not recorded as typed: it may be a
        // password typed into the name field, and it may be any length.
        audit.record(subject.unwrap_or(UNKNOWN_USER), "login_failed", subject, why)?;
        if let Some((_, _)) = &found
            && why == "wrong password"
        {
            self.count_failure(name, &audit)?;
        }
        Ok(None)
    }

    /// Adds a failure to the account (re-read on a lost race), locking it at
    /// the [`LOCKOUT_FAILURES`]th within the window.
    fn count_failure(&self, name: &str, audit: &super::AuditLog) -> Result<(), AccountsError> {
        for _ in 0..5 {
            let (mut user, version) = self.get(name)?;
            let now = Utc::now();
            let since = now - Duration::minutes(LOCKOUT_WINDOW_MINUTES);
            user.failed_logins.retain(|t| *t > since);
            user.failed_logins.push(now);
            let locks = user.failed_logins.len() >= LOCKOUT_FAILURES;
            if locks {
                user.locked_until = Some(now + Duration::minutes(LOCKOUT_MINUTES));
                user.failed_logins.clear();
            }
            match self.put_at(&user, version) {
                Ok(()) => {
                    if locks {
                        audit.record(
                            name,
                            "locked",
                            Some(name),
                            &format!(
                                "{LOCKOUT_FAILURES} failed logins within {LOCKOUT_WINDOW_MINUTES} minutes"
                            ),
                        )?;
                    }
                    return Ok(());
                }
                Err(AccountsError::Concurrent { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AccountsError::Concurrent { name: name.into() })
    }

    /// Ends every session of the user (logout): the session epoch moves.
    pub fn end_sessions(&self, name: &str, from: &str) -> Result<(), AccountsError> {
        for _ in 0..5 {
            let (mut user, version) = self.get(name)?;
            user.session_epoch += 1;
            match self.put_at(&user, version) {
                Ok(()) => {
                    self.audit().from(from).record(name, "logout", Some(name), "")?;
                    return Ok(());
                }
                Err(AccountsError::Concurrent { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AccountsError::Concurrent { name: name.into() })
    }

    /// The session-signing key, if one was made (by [`Accounts::ensure_session_key`]).
    pub fn session_key(&self) -> Result<Option<[u8; 32]>, AccountsError> {
        let bytes = match self.store.get(SESSION_KEY) {
            Ok(object) => object.bytes,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let unreadable = |problem: &str| AccountsError::Unreadable {
            uri: self.store.uri_of(SESSION_KEY),
            problem: problem.into(),
        };
        let decoded =
            hex::decode(String::from_utf8_lossy(&bytes).trim()).map_err(|_| unreadable("not hex"))?;
        let key: [u8; 32] = decoded.try_into().map_err(|_| unreadable("not 32 bytes"))?;
        Ok(Some(key))
    }

    /// Makes the session-signing key if there is none (create-only: two
    /// makers at once end with one key).
    pub fn ensure_session_key(&self) -> Result<(), AccountsError> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        match self
            .store
            .put(SESSION_KEY, hex::encode(key).as_bytes(), PutMode::Create)
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

//! User accounts of the dashboard and API: who may log in, with which role
//! and stores, their argon2id password hashes, the bearer API tokens of
//! machine clients (`tokens`), and the append-only audit log.
//!
//! Accounts live in the registry's store (`accounts/users/<name>.json`), so
//! every server task behind the load balancer reads the same ones, and every
//! change is a conditional write (create-only for a new user, update-if-
//! version for a change): two admins editing at once cannot lose an update,
//! the loser gets [`AccountsError::Concurrent`]. A change of password, role
//! or a disable bumps the user's `session_epoch`, which ends their sessions
//! on every task. Why the store and not a database: the product already
//! depends on one durable, conditional store (the registry's), accounts are a
//! few dozen small objects read far more often than written, and a second
//! stateful service (RDS) would add cost, a network path and backups for no
//! gain at this size.

mod audit;
mod login;
mod password;
mod tokens;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use audit::{AuditEntry, AuditLog};
pub use login::{LOCKOUT_FAILURES, LOCKOUT_MINUTES, LOCKOUT_WINDOW_MINUTES, SESSION_KEY};
pub use password::{MIN_PASSWORD_CHARS, check_password, hash_password, verify_password};
pub use tokens::{ApiToken, MAX_LABEL_CHARS, TOKEN_PREFIX, TOKENS_PREFIX, TokenView};

use crate::storage::{PutMode, Store, StoreError, Version};

/// Where accounts live in the registry's store.
pub const USERS_PREFIX: &str = "accounts/users/";

/// What a user may see and do; each role sees what the ones before it see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Staff of named stores: those stores' forecasts and sales only.
    Store,
    /// Every store: the chain's figures.
    Manager,
    /// A manager's view plus the model.
    Analyst,
    /// Everything, plus accounts and rollback.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Manager => "manager",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AccountsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "store" => Ok(Role::Store),
            "manager" => Ok(Role::Manager),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(AccountsError::Invalid {
                what: "role",
                problem: format!("{other:?} is not a role: use store, manager, analyst or admin"),
            }),
        }
    }
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The stores a `store` user may see (series-key values); empty for other roles.
    pub stores: Vec<String>,
    /// The argon2id hash in PHC format (never the password).
    pub password: String,
    pub disabled: bool,
    /// Bumped when the password, role or stores change or the user is
    /// disabled: sessions made at an older epoch are void.
    pub session_epoch: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Failed logins of the last [`LOCKOUT_WINDOW_MINUTES`].
    #[serde(default)]
    pub failed_logins: Vec<DateTime<Utc>>,
    /// No login succeeds before this (after too many failures).
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
}

/// An account as listed: everything but the hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub stores: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            name: u.name.clone(),
            role: u.role,
            stores: u.stores.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("invalid {what}: {problem}")]
    Invalid { what: &'static str, problem: String },
    #[error("no user {name:?}")]
    UnknownUser { name: String },
    #[error("user {name:?} already exists")]
    Exists { name: String },
    /// Another writer changed the account after this one read it.
    #[error("user {name:?} was changed by someone else meanwhile; read it again and retry")]
    Concurrent { name: String },
    #[error("no API token {id:?}")]
    UnknownToken { id: String },
    #[error("API token {id:?} is already revoked")]
    TokenRevoked { id: String },
    #[error("{uri}: not a readable account: {problem}")]
    Unreadable { uri: String, problem: String },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change to an existing account.
#[derive(Debug, Clone)]
pub enum Change {
    Password(String),
    Role { role: Role, stores: Vec<String> },
    Disable,
    Enable,
}

/// The accounts of one registry store.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    /// Where changes come from, for the audit log: `cli`, or a client address.
    from: String,
}

impl Accounts {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            from: "cli".into(),
        }
    }

    /// The same accounts, auditing changes as made from `from` (a client address).
    pub fn from(mut self, from: &str) -> Self {
        self.from = from.to_string();
        self
    }

    pub fn audit(&self) -> AuditLog {
        AuditLog::new(self.store.clone()).from(&self.from)
    }

    fn key(name: &str) -> String {
        format!("{USERS_PREFIX}{name}.json")
    }

    /// Adds a user (create-only: an existing name is refused).
    pub fn add(
        &self,
        name: &str,
        role: Role,
        stores: &[String],
        password: &str,
        actor: &str,
    ) -> Result<User, AccountsError> {
        check_name(name)?;
        check_stores(role, stores)?;
        check_password(password)?;
        let now = Utc::now();
        let user = User {
            name: name.to_string(),
            role,
            stores: stores.to_vec(),
            password: hash_password(password)?,
            disabled: false,
            session_epoch: 1,
            created_at: now,
            updated_at: now,
            failed_logins: Vec::new(),
            locked_until: None,
        };
        self.ensure_session_key()?;
        match self.store.put(&Self::key(name), &to_json(&user), PutMode::Create) {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => return Err(AccountsError::Exists { name: name.into() }),
            Err(e) => return Err(e.into()),
        }
        self.audit().record(
            actor,
            "user_added",
            Some(name),
            &format!("role {}, stores [{}]", role.as_str(), stores.join(",")),
        )?;
        Ok(user)
    }

    /// The user and the store version it was read at.
    pub fn get(&self, name: &str) -> Result<(User, Version), AccountsError> {
        check_name(name)?;
        let key = Self::key(name);
        let object = match self.store.get(&key) {
            Ok(object) => object,
            Err(StoreError::NotFound { .. }) => return Err(AccountsError::UnknownUser { name: name.into() }),
            Err(e) => return Err(e.into()),
        };
        let user = serde_json::from_slice(&object.bytes).map_err(|e| AccountsError::Unreadable {
            uri: self.store.uri_of(&key),
            problem: e.to_string(),
        })?;
        Ok((user, object.version))
    }

    /// Applies a change to the account as read at `version` (from [`Accounts::get`]);
    /// a newer write in between is [`AccountsError::Concurrent`].
    pub fn change_at(
        &self,
        mut user: User,
        version: Version,
        change: Change,
        actor: &str,
    ) -> Result<User, AccountsError> {
        let what = match &change {
            Change::Password(_) => "password_changed",
            Change::Role { .. } => "role_changed",
            Change::Disable => "user_disabled",
            Change::Enable => "user_enabled",
        };
        let detail = match change {
            Change::Password(password) => {
                check_password(&password)?;
                user.password = hash_password(&password)?;
                // A new password lifts a lockout (an admin's way to let a
                // locked-out user in again).
                user.failed_logins.clear();
                user.locked_until = None;
                String::new()
            }
            Change::Role { role, stores } => {
                check_stores(role, &stores)?;
                let detail = format!("{} -> {}, stores {stores:?}", user.role.as_str(), role.as_str());
                user.role = role;
                user.stores = stores;
                detail
            }
            Change::Disable => {
                user.disabled = true;
                String::new()
            }
            Change::Enable => {
                user.disabled = false;
                user.failed_logins.clear();
                user.locked_until = None;
                String::new()
            }
        };
        user.session_epoch += 1;
        user.updated_at = Utc::now();
        self.put_at(&user, version)?;
        self.audit().record(actor, what, Some(&user.name), &detail)?;
        Ok(user)
    }

    /// Writes the account if it is still at `version` (else
    /// [`AccountsError::Concurrent`]); the one conditional write of a change.
    fn put_at(&self, user: &User, version: Version) -> Result<(), AccountsError> {
        match self
            .store
            .put(&Self::key(&user.name), &to_json(user), PutMode::Update(version))
        {
            Ok(_) => Ok(()),
            Err(StoreError::Precondition { .. }) => Err(AccountsError::Concurrent {
                name: user.name.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the account and applies the change to what was read.
    pub fn change(&self, name: &str, change: Change, actor: &str) -> Result<User, AccountsError> {
        let (user, version) = self.get(name)?;
        self.change_at(user, version, change, actor)
    }

    /// Every account, by name; an unreadable one is an error naming it.
    pub fn list(&self) -> Result<Vec<User>, AccountsError> {
        let mut users = Vec::new();
        for meta in self.store.list(USERS_PREFIX)? {
            let Some(name) = meta
                .key
                .strip_prefix(USERS_PREFIX)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            match self.get(name) {
                Ok((user, _)) => users.push(user),
                Err(AccountsError::UnknownUser { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }
}

fn to_json(user: &User) -> Vec<u8> {
    serde_json::to_vec_pretty(user).unwrap_or_default()
}

/// A user name: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), AccountsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AccountsError::Invalid {
            what: "user name",
            problem: format!(
                "{name:?}: use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            ),
        })
    }
}

/// A `store` user names at least one store; other roles none.
fn check_stores(role: Role, stores: &[String]) -> Result<(), AccountsError> {
    let problem = match (role, stores.is_empty()) {
        (Role::Store, true) => "a store user needs at least one --store",
        (Role::Store, false) if stores.iter().any(|s| s.trim().is_empty()) => "a store must not be empty",
        (Role::Store, false) => return Ok(()),
        (_, false) => "only store users are limited to stores (the others see every store)",
        (_, true) => return Ok(()),
    };
    Err(AccountsError::Invalid {
        what: "stores",
        problem: problem.into(),
    })
}

#[cfg(test)]
mod tests;

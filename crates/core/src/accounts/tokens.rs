//! Bearer API tokens for machine clients of the API. A token belongs to a
//! user and acts with that user's role and stores, as they are now: a
//! disabled user's tokens stop working, a role change applies to them too.
//!
//! Each token is one object in the registry's store,
//! `accounts/tokens/<id>.json`, created once (create-only) and later changed
//! only to record its revocation (a conditional write). The text handed out
//! once, at creation, is `sct_<id>_<secret>`: the id is 64 random bits (16
//! hex digits, public: it names the token in listings and the audit log), the
//! secret 256 random bits (64 hex digits). Only the SHA-256 of the secret is
//! stored; the secret itself is never stored, logged or shown again.
//!
//! Why SHA-256 and not argon2 as for passwords: a slow, salted hash protects
//! a guessable secret (a password chosen by a person) from a dictionary
//! attack on a stolen hash. A 256-bit random secret cannot be guessed, so a
//! slow hash would buy nothing: finding a secret from its SHA-256 is as hard
//! as guessing 256 bits. And every API call checks its token, so argon2's
//! ~40 ms per check would be paid on every request. The stored hash is
//! compared in constant time.

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{Accounts, AccountsError, User};
use crate::storage::{PutMode, StoreError, Version};

/// Where tokens live in the registry's store.
pub const TOKENS_PREFIX: &str = "accounts/tokens/";
/// How every token's text begins.
pub const TOKEN_PREFIX: &str = "sct_";
/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// One token as stored: who it acts as, and the hash of its secret (never
/// the secret itself, so printing or serializing it gives nothing away).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// 16 hex digits, public.
    pub id: String,
    /// The user it acts as.
    pub user: String,
    /// What it is for, as the admin who made it said.
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Hex SHA-256 of the secret's text (its 64 hex digits).
    pub sha256: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// A token as listed: everything but the hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.clone(),
            user: t.user.clone(),
            label: t.label.clone(),
            created_at: t.created_at,
            created_by: t.created_by.clone(),
            revoked_at: t.revoked_at,
            revoked_by: t.revoked_by.clone(),
        }
    }
}

fn token_key(id: &str) -> String {
    format!("{TOKENS_PREFIX}{id}.json")
}

fn is_hex(text: &str, bytes: usize) -> bool {
    text.len() == 2 * bytes && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The id and secret of a well-formed token text, else `None`.
fn parse(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    (is_hex(id, ID_BYTES) && is_hex(secret, SECRET_BYTES)).then_some((id, secret))
}

/// A label: 1 to [`MAX_LABEL_CHARS`] characters, no control characters.
fn check_label(label: &str) -> Result<(), AccountsError> {
    let problem = if label.trim().is_empty() {
        "must not be empty (say what the token is for)".to_string()
    } else if label.chars().count() > MAX_LABEL_CHARS {
        format!("must be at most {MAX_LABEL_CHARS} characters")
    } else if label.chars().any(char::is_control) {
        "must not contain control characters".to_string()
    } else {
        return Ok(());
    };
    Err(AccountsError::Invalid {
        what: "token label",
        problem,
    })
}

impl Accounts {
    /// Makes a token acting as `user` (who must exist and not be disabled):
    /// the token as stored, and its text, `sct_<id>_<secret>`, which is
    /// handed out this once. Audited as `token_added` by `actor` from `from`.
    pub fn create_token(
        &self,
        user: &str,
        label: &str,
        actor: &str,
        from: &str,
    ) -> Result<(ApiToken, String), AccountsError> {
        check_label(label)?;
        let (owner, _) = self.get(user)?;
        if owner.disabled {
            return Err(AccountsError::Invalid {
                what: "user",
                problem: format!("{user:?} is disabled: a token would not work"),
            });
        }
        // 64 random bits: a collision is all but impossible, but a create-only
        // write would refuse it rather than overwrite, so draw again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = random_hex(ID_BYTES);
            let secret = random_hex(SECRET_BYTES);
            let token = ApiToken {
                id: id.clone(),
                user: owner.name.clone(),
                label: label.to_string(),
                created_at: Utc::now(),
                created_by: actor.to_string(),
                sha256: hex::encode(secret_hash(&secret)),
                revoked_at: None,
                revoked_by: None,
            };
            match self.store.put(&token_key(&id), &to_json(&token), PutMode::Create) {
                Ok(_) => {}
                Err(StoreError::AlreadyExists { .. }) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
            self.audit().from(from).record(
                actor,
                "token_added",
                Some(&token.user),
                &format!("token {id} ({label:?})"),
            )?;
            return Ok((token, format!("{TOKEN_PREFIX}{id}_{secret}")));
        }
    }

    /// The token `id` and the store version it was read at.
    fn token(&self, id: &str) -> Result<Option<(ApiToken, Version)>, AccountsError> {
        if !is_hex(id, ID_BYTES) {
            return Ok(None);
        }
        let key = token_key(id);
        let object = match self.store.get(&key) {
            Ok(object) => object,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let token = serde_json::from_slice(&object.bytes).map_err(|e| AccountsError::Unreadable {
            uri: self.store.uri_of(&key),
            problem: e.to_string(),
        })?;
        Ok(Some((token, object.version)))
    }

    /// Every token, oldest first (revoked ones too); an unreadable one is an
    /// error naming it.
    pub fn tokens(&self) -> Result<Vec<ApiToken>, AccountsError> {
        let mut tokens = Vec::new();
        for meta in self.store.list(TOKENS_PREFIX)? {
            let Some(id) = meta
                .key
                .strip_prefix(TOKENS_PREFIX)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some((token, _)) = self.token(id)? {
                tokens.push(token);
            }
        }
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    /// Revokes the token `id` for good (a conditional write of the object as
    /// read). Audited as `token_revoked` by `actor` from `from`.
    pub fn revoke_token(&self, id: &str, actor: &str, from: &str) -> Result<ApiToken, AccountsError> {
        let (mut token, version) = self
            .token(id)?
            .ok_or_else(|| AccountsError::UnknownToken { id: id.to_string() })?;
        if token.revoked_at.is_some() {
            return Err(AccountsError::TokenRevoked { id: id.to_string() });
        }
        token.revoked_at = Some(Utc::now());
        token.revoked_by = Some(actor.to_string());
        match self
            .store
            .put(&token_key(id), &to_json(&token), PutMode::Update(version))
        {
            Ok(_) => {}
            // Revoking is the only change a token ever gets: whoever changed
            // it meanwhile revoked it.
            Err(StoreError::Precondition { .. }) => {
                return Err(AccountsError::TokenRevoked { id: id.to_string() });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit().from(from).record(
            actor,
            "token_revoked",
            Some(&token.user),
            &format!("token {id} ({:?})", token.label),
        )?;
        Ok(token)
    }

    /// The user a token acts as, now; `None` for every refusal alike (text
    /// not a token, unknown id, wrong secret, revoked, its user unknown or
    /// disabled). `Err` only when the store fails or holds an unreadable
    /// token or account.
    pub fn verify_token(&self, text: &str) -> Result<Option<User>, AccountsError> {
        let Some((id, secret)) = parse(text) else {
            return Ok(None);
        };
        let Some((token, _)) = self.token(id)? else {
            return Ok(None);
        };
        let Ok(stored) = hex::decode(&token.sha256) else {
            return Ok(None);
        };
        let matches: bool = secret_hash(secret).as_slice().ct_eq(&stored).into();
        if !matches || token.revoked_at.is_some() {
            return Ok(None);
        }
        match self.get(&token.user) {
            Ok((user, _)) if !user.disabled => Ok(Some(user)),
            Ok(_) | Err(AccountsError::UnknownUser { .. } | AccountsError::Invalid { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn to_json(token: &ApiToken) -> Vec<u8> {
    serde_json::to_vec_pretty(token).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{Change, Role};

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let (dir, store) = crate::storage::temp_store();
        let accounts = Accounts::new(store);
        accounts
            .add(
                "maria",
                Role::Store,
                &["102".into()],
                "maria's long password",
                "root",
            )
            .unwrap();
        (dir, accounts)
    }

    #[test]
    fn a_token_verifies_as_its_user_and_only_its_hash_is_stored() {
        let (dir, accounts) = accounts();
        let (token, text) = accounts
            .create_token("maria", "nightly export", "root", "cli")
            .unwrap();
        let (id, secret) = parse(&text).unwrap();
        assert_eq!((id, token.id.as_str()), (token.id.as_str(), id));
        assert_eq!(secret.len(), 64);
        assert_eq!(token.sha256, hex::encode(Sha256::digest(secret.as_bytes())));
        let user = accounts.verify_token(&text).unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.role), ("maria", Role::Store));

        let stored =
            std::fs::read_to_string(dir.path().join(format!("accounts/tokens/{}.json", token.id))).unwrap();
        assert!(!stored.contains(secret), "the secret is not stored: {stored}");
        assert!(stored.contains(&token.sha256));
        for meta in accounts.store.list("accounts/").unwrap() {
            let bytes = accounts.store.get(&meta.key).unwrap().bytes;
            assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{}", meta.key);
        }
        assert!(!format!("{token:?}").contains(secret));
        assert_eq!(accounts.tokens().unwrap(), [token]);
    }

    #[test]
    fn wrong_malformed_revoked_and_disabled_tokens_verify_as_nobody() {
        let (_dir, accounts) = accounts();
        let (token, text) = accounts.create_token("maria", "ci", "root", "cli").unwrap();
        let (id, secret) = parse(&text).unwrap();
        let flipped = format!(
            "{TOKEN_PREFIX}{id}_{}{}",
            if secret.starts_with('0') { '1' } else { '0' },
            &secret[1..]
        );
        let unknown_id = format!("{TOKEN_PREFIX}{}_{secret}", "0".repeat(16));
        let upper = text.to_uppercase();
        for bad in [
            flipped.as_str(),
            unknown_id.as_str(),
            upper.as_str(),
            "",
            "sct_",
            "sct__",
            "Bearer x",
            &text[..text.len() - 1],
            &format!("{text}0"),
            &format!("{TOKEN_PREFIX}../users/maria_{secret}"),
            &text.replacen("sct_", "xyz_", 1),
        ] {
            assert!(accounts.verify_token(bad).unwrap().is_none(), "{bad:?}");
        }
        assert!(accounts.verify_token(&text).unwrap().is_some());

        // A disabled user's tokens stop, and work again once enabled.
        accounts.change("maria", Change::Disable, "root").unwrap();
        assert!(accounts.verify_token(&text).unwrap().is_none());
        let refused = accounts.create_token("maria", "x", "root", "cli").unwrap_err();
        assert!(refused.to_string().contains("disabled"), "{refused}");
        accounts.change("maria", Change::Enable, "root").unwrap();
        assert!(accounts.verify_token(&text).unwrap().is_some());

        // Revoked for good; a second revocation is an error naming it.
        let revoked = accounts.revoke_token(&token.id, "root", "10.0.0.9").unwrap();
        assert_eq!(revoked.revoked_by.as_deref(), Some("root"));
        assert!(revoked.revoked_at.is_some());
        assert!(accounts.verify_token(&text).unwrap().is_none());
        let twice = accounts.revoke_token(&token.id, "root", "cli").unwrap_err();
        assert!(matches!(twice, AccountsError::TokenRevoked { .. }), "{twice}");
        assert!(twice.to_string().contains(&token.id), "{twice}");
        for unknown in ["0123456789abcdef", "../users/maria", ""] {
            let err = accounts.revoke_token(unknown, "root", "cli").unwrap_err();
            assert!(matches!(err, AccountsError::UnknownToken { .. }), "{err}");
            assert!(err.to_string().contains(unknown), "{err}");
        }
        assert_eq!(accounts.tokens().unwrap(), [revoked]);

        let events: Vec<(String, String, Option<String>, String)> = accounts
            .audit()
            .entries()
            .unwrap()
            .into_iter()
            .filter(|e| e.event.starts_with("token"))
            .map(|e| (e.actor, e.event, e.subject, e.from))
            .collect();
        assert_eq!(
            events,
            [
                (
                    "root".into(),
                    "token_added".into(),
                    Some("maria".into()),
                    "cli".into()
                ),
                (
                    "root".into(),
                    "token_revoked".into(),
                    Some("maria".into()),
                    "10.0.0.9".into()
                ),
            ]
        );
    }

    #[test]
    fn tokens_need_a_known_user_and_a_sensible_label() {
        let (_dir, accounts) = accounts();
        assert!(matches!(
            accounts.create_token("nobody", "ci", "root", "cli").unwrap_err(),
            AccountsError::UnknownUser { .. }
        ));
        for label in ["", "   ", &"x".repeat(65), "two\nlines"] {
            let err = accounts.create_token("maria", label, "root", "cli").unwrap_err();
            assert!(
                matches!(
                    err,
                    AccountsError::Invalid {
                        what: "token label",
                        ..
                    }
                ),
                "{label:?}: {err}"
            );
        }
        accounts
            .create_token("maria", &"é".repeat(64), "root", "cli")
            .unwrap();
        let (_, second) = accounts.create_token("maria", "second", "root", "cli").unwrap();
        let listed = accounts.tokens().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].created_at <= listed[1].created_at);
        assert_eq!(listed[1].label, "second");
        assert!(accounts.verify_token(&second).unwrap().is_some());
    }
}

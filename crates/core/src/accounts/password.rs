//! Password hashing: argon2id at OWASP's recommended parameters (19 MiB of
//! memory, 2 passes, 1 lane), a random 16-byte salt per hash, PHC strings
//! (the parameters travel with the hash, so stronger ones later still verify
//! old hashes). Passwords are never logged, stored or returned.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore as _;

use super::AccountsError;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The shortest password accepted (OWASP: at least 8; 12 without a second factor).
pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 256;

fn argon2() -> Result<Argon2<'static>, AccountsError> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| AccountsError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Refuses passwords too short or too long to be sensible.
pub fn check_password(password: &str) -> Result<(), AccountsError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(AccountsError::Invalid {
            what: "password",
            problem: format!("must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long"),
        });
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountsError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountsError::Hash(e.to_string()))?;
    Ok(argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AccountsError::Hash(e.to_string()))?
        .to_string())
}

/// Does `password` match the PHC string `hash`? A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password with the same parameters: what an unknown
/// user's login is checked against, so it costs the same time.
pub(super) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

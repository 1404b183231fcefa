//! Bearer API tokens on the server: a request with `Authorization: Bearer
//! <token>` is authenticated by the token (see `salescast_core::accounts`,
//! tokens) instead of a session cookie. It needs no CSRF token: a browser
//! never sends a bearer token by itself, so a forged cross-site request
//! cannot carry one. A verified token is remembered for `serve.poll_seconds`,
//! keyed by the SHA-256 of its text (the text itself is never kept), as
//! accounts are: a revocation, or the user's disable, is seen on every task
//! within one poll. Every refusal gets the same 401.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use salescast_core::accounts::{Accounts, User};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// The one answer to a token that is not (or no longer) good.
pub const INVALID: &str = "invalid or revoked API token";

/// The token of an `Authorization: Bearer` header, if the request has one
/// (an empty or unreadable one is there, and refused).
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(text) = value.to_str() else {
        return Some("");
    };
    let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The user the token acts as (as verified within the poll interval), or 401.
pub async fn user(state: &AppState, token: &str) -> Result<Arc<User>, ApiError> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let fresh = Duration::from_secs_f64(state.config.serve.poll_seconds);
    if let Ok(cache) = state.token_users.lock()
        && let Some((user, at)) = cache.get(&key)
        && at.elapsed() < fresh
    {
        return Ok(Arc::clone(user));
    }
    let accounts = Accounts::new(state.registry.store().clone());
    let text = token.to_string();
    let verified = tokio::task::spawn_blocking(move || accounts.verify_token(&text))
        .await
        .map_err(|e| ApiError::internal(e.into()))?
        .map_err(|e| ApiError::internal(e.into()))?
        .map(Arc::new);
    if let Ok(mut cache) = state.token_users.lock() {
        // Only tokens that were good are kept, so the cache holds at most
        // one entry per token ever made.
        match &verified {
            Some(user) => {
                cache.insert(key, (Arc::clone(user), Instant::now()));
            }
            None => {
                cache.remove(&key);
            }
        }
    }
    verified.ok_or_else(|| ApiError::unauthorized(INVALID))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_scheme_is_read_whatever_its_case() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(token(&with("Bearer sct_a_b")), Some("sct_a_b"));
        assert_eq!(token(&with("bearer  sct_a_b ")), Some("sct_a_b"));
        assert_eq!(token(&with("Bearer")), Some(""));
        assert_eq!(token(&with("Basic dXNlcjpwYXNz")), None);
        assert_eq!(token(&HeaderMap::new()), None);
        let mut opaque = HeaderMap::new();
        opaque.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(token(&opaque), Some(""), "unreadable: there, and refused");
    }
}

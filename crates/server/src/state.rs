//! The server's shared state: configuration, the lake and registry, the
//! served snapshot (swapped atomically by `reload`), metrics, and the permits
//! that bound concurrent on-demand forecasts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use salescast_core::accounts::{Accounts, AccountsError, User};
use salescast_core::config::Config;
use salescast_core::insights::history::ModelHistory;
use salescast_core::lake::Lake;
use salescast_core::pipeline::serving::Snapshot;
use salescast_core::registry::Registry;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::throttle::Throttle;

/// A user as last read, with when.
pub type Verified = (Arc<User>, Instant);

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub lake: Lake,
    pub registry: Registry,
    /// The snapshot requests answer from; `None` until the first load.
    pub snapshot: ArcSwapOption<Snapshot>,
    pub metrics: Metrics,
    /// The session-signing key (from the registry's store), once there is one.
    pub session_key: ArcSwapOption<[u8; 32]>,
    /// Accounts as last read, with when: re-read after `serve.poll_seconds`.
    users: Mutex<HashMap<String, (Arc<User>, Instant)>>,
    /// The users of verified API tokens, by the SHA-256 of the token's text,
    /// with when: re-verified after `serve.poll_seconds` (see `bearer`).
    pub token_users: Mutex<HashMap<[u8; 32], Verified>>,
    throttle: Throttle,
    /// On-demand forecasts are CPU work: at most one per core at a time.
    pub forecast_permits: Arc<Semaphore>,
    /// The model page's registry reads, with when (kept `serve.poll_seconds`).
    model_history: Mutex<Option<(Arc<ModelHistory>, Instant)>>,
}

impl AppState {
    /// The error, with the hash of the model being served (if one is): what
    /// every JSON error carries.
    pub fn with_model(&self, error: ApiError) -> ApiError {
        match self.snapshot.load().as_ref() {
            Some(s) => error.model(s.version()),
            None => error,
        }
    }

    pub fn new(config: Config, lake: Lake, registry: Registry) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self(Arc::new(Inner {
            config,
            lake,
            registry,
            snapshot: ArcSwapOption::empty(),
            metrics: Metrics::default(),
            session_key: ArcSwapOption::empty(),
            users: Mutex::new(HashMap::new()),
            token_users: Mutex::new(HashMap::new()),
            throttle: Throttle::default(),
            forecast_permits: Arc::new(Semaphore::new(cores)),
            model_history: Mutex::new(None),
        }))
    }
}

impl AppState {
    /// The account `name` (re-read when older than the poll interval), or
    /// `None` if there is no such account.
    pub async fn user(&self, name: &str) -> Result<Option<Arc<User>>, ApiError> {
        let fresh = Duration::from_secs_f64(self.config.serve.poll_seconds);
        if let Ok(users) = self.users.lock()
            && let Some((user, at)) = users.get(name)
            && at.elapsed() < fresh
        {
            return Ok(Some(Arc::clone(user)));
        }
        let accounts = Accounts::new(self.registry.store().clone());
        let wanted = name.to_string();
        let read = tokio::task::spawn_blocking(move || accounts.get(&wanted))
            .await
            .map_err(|e| ApiError::internal(e.into()))?;
        let user = match read {
            Ok((user, _)) => Arc::new(user),
            Err(AccountsError::UnknownUser { .. } | AccountsError::Invalid { .. }) => return Ok(None),
            Err(e) => return Err(ApiError::internal(e.into())),
        };
        if let Ok(mut users) = self.users.lock() {
            users.insert(name.to_string(), (Arc::clone(&user), Instant::now()));
        }
        Ok(Some(user))
    }

    /// The champion, decision log and scores the model page shows: read from
    /// the registry at most once per poll interval (and after a rollback).
    pub async fn model_history(&self) -> Result<Arc<ModelHistory>, ApiError> {
        let fresh = Duration::from_secs_f64(self.config.serve.poll_seconds);
        if let Ok(cached) = self.model_history.lock()
            && let Some((history, at)) = cached.as_ref()
            && at.elapsed() < fresh
        {
            return Ok(Arc::clone(history));
        }
        let registry = self.registry.clone();
        let history = tokio::task::spawn_blocking(move || ModelHistory::load(&registry))
            .await
            .map_err(|e| ApiError::internal(e.into()))?
            .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("reading the model's history")))?;
        let history = Arc::new(history);
        if let Ok(mut cached) = self.model_history.lock() {
            *cached = Some((Arc::clone(&history), Instant::now()));
        }
        Ok(history)
    }

    /// Drops the model page's cached history (after a rollback here).
    pub fn forget_model_history(&self) {
        if let Ok(mut cached) = self.model_history.lock() {
            *cached = None;
        }
    }

    /// Drops the cached account (after a login or logout changed it).
    pub fn forget_user(&self, name: &str) {
        if let Ok(mut users) = self.users.lock() {
            users.remove(name);
        }
    }

    pub fn allow_login_attempt(&self, from: &str) -> bool {
        self.throttle.allow(from, self.config.serve.logins_per_minute)
    }

    /// Reads the session key if it is not loaded yet (it appears with the first user).
    pub fn load_session_key(&self) {
        if self.session_key.load().is_some() {
            return;
        }
        match Accounts::new(self.registry.store().clone()).session_key() {
            Ok(Some(key)) => self.session_key.store(Some(Arc::new(key))),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot read the session key: {e:#}"),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

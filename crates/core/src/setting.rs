//! The one error a settings check returns: which key, and what is wrong with
//! it. Each module checks its own settings; `config` gathers them.

/// A setting that failed its check, named by its full key (`window.holdout_days`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config key {key}: {problem}")]
pub struct Invalid {
    pub key: String,
    pub problem: String,
}

/// An [`Invalid`] for `key`.
pub fn invalid(key: &str, problem: impl Into<String>) -> Invalid {
    Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

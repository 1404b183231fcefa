//! The `[serve]` settings: how `salescast serve` listens, follows the
//! champion and bounds requests (the server itself is crates/server; what it
//! answers from is `pipeline::serving`).

use serde::{Deserialize, Serialize};

/// How `salescast serve` listens, follows the champion and bounds requests (`[serve]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSettings {
    /// The address to listen on (`--listen` overrides it).
    pub listen: String,
    /// How often the champion pointer and the newest forecasts are checked.
    pub poll_seconds: f64,
    /// How often the prediction partitions are listed as well (a newest
    /// day further ahead than the next one).
    pub rescan_seconds: f64,
    /// A request that takes longer is answered 503 with a JSON error.
    pub request_timeout_seconds: f64,
    /// A connection that does not send a whole request header within this
    /// many seconds (one trickling a header byte by byte, or one idle
    /// between requests) is closed. Behind a load balancer, keep its idle
    /// timeout below this (else it may send a request as serve closes).
    pub header_timeout_seconds: f64,
    /// The largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// The most series one on-demand request may forecast (413 above).
    pub max_series: usize,
    /// One structured log line per request.
    pub access_log: bool,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// And this many hours after its login, whatever happens.
    pub session_max_hours: u32,
    /// Behind a load balancer that sets `X-Forwarded-For` and
    /// `X-Forwarded-Proto`: the client's address is the last of the former
    /// (for login throttling and the audit log), and cookies are `Secure`
    /// when the latter is https. Off when clients reach serve directly
    /// (they could forge the headers).
    pub behind_proxy: bool,
    /// Login attempts per client address per minute (then 429).
    pub logins_per_minute: u32,
    /// The series-key column that names a store (what a `store` user is
    /// limited to); the first series key when unset.
    pub store_key: Option<String>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            poll_seconds: 5.0,
            rescan_seconds: 60.0,
            request_timeout_seconds: 10.0,
            header_timeout_seconds: 30.0,
            max_body_bytes: 256 * 1024,
            max_series: 100,
            access_log: true,
            session_idle_minutes: 30,
            session_max_hours: 12,
            behind_proxy: false,
            logins_per_minute: 20,
            store_key: None,
        }
    }
}

impl ServeSettings {
    pub fn check(&self) -> Result<(), crate::setting::Invalid> {
        use crate::setting::invalid;
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "serve.listen",
                "must be an IP address and port, such as 0.0.0.0:8080",
            ));
        }
        for (key, value) in [
            ("serve.poll_seconds", self.poll_seconds),
            ("serve.rescan_seconds", self.rescan_seconds),
            ("serve.request_timeout_seconds", self.request_timeout_seconds),
            ("serve.header_timeout_seconds", self.header_timeout_seconds),
        ] {
            if !(value.is_finite() && (0.05..=86_400.0).contains(&value)) {
                return Err(invalid(key, "must be a number of seconds between 0.05 and 86400"));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "serve.max_body_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if !(1..=1440).contains(&self.session_idle_minutes) {
            return Err(invalid(
                "serve.session_idle_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=720).contains(&self.session_max_hours) {
            return Err(invalid("serve.session_max_hours", "must be between 1 and 720"));
        }
        if !(1..=10_000).contains(&self.logins_per_minute) {
            return Err(invalid("serve.logins_per_minute", "must be between 1 and 10000"));
        }
        if !(1..=100_000).contains(&self.max_series) {
            return Err(invalid("serve.max_series", "must be between 1 and 100000"));
        }
        Ok(())
    }
}

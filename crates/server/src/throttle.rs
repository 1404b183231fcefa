//! Login throttling per client address: at most `serve.logins_per_minute`
//! attempts from one address in a minute (in this task's memory; the lockout
//! per account is in the account itself, shared by every task).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Login attempts per address in the current minute.
#[derive(Default)]
pub struct Throttle {
    attempts: std::sync::Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn allow(&self, from: &str, per_minute: u32) -> bool {
        let Ok(mut attempts) = self.attempts.lock() else {
            return false;
        };
        let now = Instant::now();
        attempts.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        let entry = attempts.entry(from.to_string()).or_insert((now, 0));
        entry.1 += 1;
        entry.1 <= per_minute
    }
}

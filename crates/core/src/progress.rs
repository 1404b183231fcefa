//! Progress of the long phases of a job (reading the window, building
//! features, each candidate's fit, scoring, writing), reported as `tracing`
//! events with the target [`TARGET`] so the core knows nothing of terminals:
//! a front end renders them (the CLI draws bars on a terminal and writes
//! quiet lines in CI logs), and without a subscriber they cost nothing.
//!
//! Every event carries `phase` (a stable name) and `event`: `start` (with
//! `total`, 0 when unknown), `step` (with `done`, `total` and `item`), and
//! `end` (with `ok` and `seconds`). A phase ends when its [`Phase`] drops:
//! `ok = true` only after [`Phase::finish`], so an error that returns early
//! ends the phase as failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The target of every progress event.
pub const TARGET: &str = "salescast::progress";

/// One running phase; `Sync`, so worker threads may advance it.
#[derive(Debug)]
pub struct Phase {
    name: &'static str,
    total: u64,
    done: AtomicU64,
    started: Instant,
    ok: bool,
}

impl Phase {
    /// Starts a phase of `total` steps (`None`: unknown, a spinner).
    pub fn start(name: &'static str, total: Option<u64>) -> Self {
        let total = total.unwrap_or(0);
        tracing::info!(target: TARGET, phase = name, event = "start", total, "{name}");
        Self {
            name,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            ok: false,
        }
    }

    /// `by` more steps done; `item` names the last one ("" when none).
    pub fn advance(&self, by: u64, item: &str) {
        let done = self.done.fetch_add(by, Ordering::Relaxed) + by;
        tracing::info!(
            target: TARGET,
            phase = self.name,
            event = "step",
            done,
            total = self.total,
            item,
            "{}",
            self.name
        );
    }

    /// Ends the phase as done.
    pub fn finish(mut self) {
        self.ok = true;
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        tracing::info!(
            target: TARGET,
            phase = self.name,
            event = "end",
            ok = self.ok,
            done = self.done.load(Ordering::Relaxed),
            total = self.total,
            seconds = self.started.elapsed().as_secs_f64(),
            "{}",
            self.name
        );
    }
}

/// Runs `f` as a phase of unknown length: finished when `f` succeeds.
pub fn phase<T, E>(name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let phase = Phase::start(name, None);
    let out = f()?;
    phase.finish();
    Ok(out)
}

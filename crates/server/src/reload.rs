//! Following the champion: load the snapshot at start, then every
//! `serve.poll_seconds` ask the snapshot whether it is stale (a head of the
//! champion pointer and of the newest partition manifests), and when it is,
//! load the new one on a blocking thread and swap it in with one atomic
//! store. A load that fails (unreadable, hash mismatch, warm-up) is logged
//! and counted, and the old snapshot keeps serving; the same pointer is not
//! retried until it moves again. A store that does not answer is not a
//! refusal: the check is counted as failed and retried at the next poll.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use salescast_core::pipeline::serving::{Snapshot, is_transient, pointer_version};
use salescast_core::storage::Version;
use tokio::sync::watch;

use crate::state::AppState;

/// Until `stop` turns true.
pub async fn follow(state: AppState, mut stop: watch::Receiver<bool>) {
    let settings = &state.config.serve;
    let poll = Duration::from_secs_f64(settings.poll_seconds);
    let rescan = Duration::from_secs_f64(settings.rescan_seconds);
    let mut last_rescan = Instant::now();
    // The pointer version of the last refused load.
    let mut refused: Option<Option<Version>> = None;
    loop {
        let rescan_now = last_rescan.elapsed() >= rescan;
        if rescan_now {
            last_rescan = Instant::now();
        }
        check(&state, rescan_now, &mut refused).await;
        tokio::select! {
            _ = tokio::time::sleep(poll) => {},
            _ = stop.changed() => return,
        }
    }
}

/// What one check found.
enum Checked {
    Current,
    Loaded(Box<Snapshot>),
    /// The check itself failed (the store did not answer): try again next poll.
    Unchecked(anyhow::Error),
    /// A load at this pointer version failed.
    Refused(anyhow::Error, Option<Version>),
}

async fn check(state: &AppState, rescan: bool, refused: &mut Option<Option<Version>>) {
    let worker = state.clone();
    let skip = refused.clone();
    let checked = tokio::task::spawn_blocking(move || {
        worker.load_session_key();
        let current = worker.snapshot.load_full();
        if let Some(current) = &current {
            match current.stale(&worker.lake, &worker.registry, rescan) {
                Ok(false) => return Checked::Current,
                Ok(true) => {}
                Err(e) => return Checked::Unchecked(e),
            }
        }
        let pointer = match pointer_version(&worker.registry) {
            Ok(pointer) => pointer,
            Err(e) => return Checked::Unchecked(e.into()),
        };
        if skip.as_ref() == Some(&pointer) {
            return Checked::Current;
        }
        match Snapshot::load(&worker.config, &worker.lake, &worker.registry) {
            Ok(Some(snapshot)) => Checked::Loaded(Box::new(snapshot)),
            Ok(None) => {
                tracing::warn!("no champion yet: not ready (run `salescast retrain`)");
                Checked::Current
            }
            Err(e) if is_transient(&e) => Checked::Unchecked(e),
            Err(e) => Checked::Refused(e, pointer),
        }
    })
    .await
    .unwrap_or_else(|join| Checked::Unchecked(anyhow::anyhow!("the reload task failed: {join}")));
    match checked {
        Checked::Current => {}
        Checked::Loaded(snapshot) => {
            tracing::info!(
                "serving {} ({:?} forecasts of {} series for data day {}), loaded in {:.2} s",
                snapshot.version(),
                snapshot.source,
                snapshot.forecasts.len(),
                snapshot.data_day,
                snapshot.load_seconds
            );
            state.snapshot.store(Some(Arc::from(snapshot)));
            state.metrics.reloads.fetch_add(1, Ordering::Relaxed);
            *refused = None;
        }
        Checked::Unchecked(e) => {
            state.metrics.failed_checks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("cannot check the champion (retrying at the next poll): {e:#}");
        }
        Checked::Refused(e, pointer) => {
            state.metrics.failed_reloads.fetch_add(1, Ordering::Relaxed);
            let serving = state
                .snapshot
                .load()
                .as_ref()
                .map_or_else(|| "nothing (not ready)".to_string(), |s| s.version().to_string());
            tracing::error!(
                "refused the champion at pointer version {pointer:?}: {e:#}; still serving {serving}"
            );
            *refused = Some(pointer);
        }
    }
}

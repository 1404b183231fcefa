//! The server's shared state: configuration, the lake and registry, the
//! served snapshot (swapped atomically by `reload`), metrics, and the permits
//! that bound concurrent on-demand forecasts.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use salescast_core::config::Config;
use salescast_core::lake::Lake;
use salescast_core::pipeline::serving::Snapshot;
use salescast_core::registry::Registry;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

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
    /// On-demand forecasts are CPU work: at most one per core at a time.
    pub forecast_permits: Arc<Semaphore>,
}

impl AppState {
    pub fn new(config: Config, lake: Lake, registry: Registry) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self(Arc::new(Inner {
            config,
            lake,
            registry,
            snapshot: ArcSwapOption::empty(),
            metrics: Metrics::default(),
            forecast_permits: Arc::new(Semaphore::new(cores)),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

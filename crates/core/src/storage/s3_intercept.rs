//! The S3 client's interceptors: the count of every request it transmits
//! (for the cost estimate) and the count of one write's attempts (to tell a
//! write whose earlier attempt may have landed).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::storage::RequestCounts;

/// Counts every request the client transmits (each retry and each listing
/// page is one), by operation name: the figures behind the run's cost estimate
/// and the IAM policy check.
#[derive(Debug, Clone, Default)]
pub(super) struct CountRequests(pub(super) Arc<Mutex<RequestCounts>>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(operation.to_string()).or_default() += 1;
        Ok(())
    }
}

/// Counts the attempts the SDK makes at the writes of one `put` (its
/// retries included): more than one means an earlier attempt may have
/// landed although its response was lost.
#[derive(Debug, Clone, Default)]
pub(super) struct CountAttempts(Arc<AtomicU32>);

impl CountAttempts {
    pub(super) fn retried(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 1
    }
}

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "CountAttempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

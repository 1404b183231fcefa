//! The blocking facade over an [`AsyncStore`]: what the sync code (the lake,
//! the registry, the pipelines) calls, each method driven to completion on the
//! runtime of a [`Handle`] the front end passed in. See the module doc of
//! [`super`] for where it may be called from.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::{AsyncStore, Object, ObjectMeta, PutMode, RequestCounts, StoreError};

/// A store for sync code: an [`AsyncStore`] and the runtime that drives it.
/// Cloning it is cheap (an `Arc` and a handle), and it may be shared by threads.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn AsyncStore>,
    handle: Handle,
}

impl Store {
    pub fn new(inner: Arc<dyn AsyncStore>, handle: Handle) -> Self {
        Self { inner, handle }
    }

    /// The async store underneath, for async code.
    pub fn as_async(&self) -> &Arc<dyn AsyncStore> {
        &self.inner
    }

    /// The runtime this facade blocks on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The URI of `key` in this store, for messages (`file:///…`, `s3://…`).
    pub fn uri_of(&self, key: &str) -> String {
        self.inner.uri_of(key)
    }

    pub fn get(&self, key: &str) -> Result<Object, StoreError> {
        block_on(&self.handle, self.inner.get(key))
    }

    pub fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        block_on(&self.handle, self.inner.head(key))
    }

    pub fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError> {
        block_on(&self.handle, self.inner.put(key, bytes, mode))
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        block_on(&self.handle, self.inner.list(prefix))
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        block_on(&self.handle, self.inner.delete(key))
    }

    /// The billable requests sent so far; a local folder sends none.
    pub fn requests(&self) -> RequestCounts {
        self.inner.requests()
    }
}

/// Runs `future` to completion on the runtime behind `handle`, from sync code.
///
/// From a plain thread or a blocking context (`spawn_blocking`) this is
/// [`Handle::block_on`]. On a worker of a multi-thread runtime it first hands
/// the worker's other tasks over (`block_in_place`), so it does not panic
/// there, but it stalls whatever else the calling task is polling: async code
/// should await instead. On a current-thread runtime's own thread it panics,
/// as every `block_on` does there.
pub fn block_on<F: Future>(handle: &Handle, future: F) -> F::Output {
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => handle.block_on(future),
    }
}

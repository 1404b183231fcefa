//! Object storage behind one small trait: the lake and the registry talk only to
//! a [`Store`], so a local folder and S3 are interchangeable.
//!
//! Modelled on arrow-rs `object_store`: keys are `/`-separated relative paths,
//! writes take a [`PutMode`] (overwrite, create-only, update-if-version) and
//! failures are semantic ([`StoreError::NotFound`], [`StoreError::AlreadyExists`],
//! [`StoreError::Precondition`]) so callers can act on them whatever the backend.
//!
//! Two faces of one store, and one runtime:
//! - [`AsyncStore`] is the primitive, implemented by both backends and used as
//!   `Arc<dyn AsyncStore>`. S3 runs every request on the caller's tokio
//!   runtime (it owns none); the local folder runs its blocking file-system
//!   work (link, rename, flock, fsync) in `spawn_blocking`. Async code (the
//!   server) opens stores with [`open_async`] and awaits this trait.
//! - [`Store`] is the blocking facade the sync code (lake, registry,
//!   pipelines) uses: a cheap-to-clone pair of an `Arc<dyn AsyncStore>` and a
//!   runtime [`Handle`], with the same methods, each driven to completion with
//!   [`block_on`]. Call it from a plain thread (the CLI's main thread, the
//!   lake's worker threads) or from a blocking context (`spawn_blocking`).
//!   Never call it from async code: await the [`AsyncStore`] instead. On a
//!   worker of a multi-thread runtime it still works (through
//!   `block_in_place`, which stalls the other futures of that task); on a
//!   current-thread runtime's thread it panics, as any `block_on` does there.
//! - The runtime belongs to the front end (the CLI builds one multi-thread
//!   runtime and passes its handle to [`open`]); nothing in the core creates one.

mod blocking;
mod local;
mod local_tmp;
mod s3;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use blocking::{Store, block_on};
pub use local::LocalStore;
pub use s3::{S3Settings, S3Store};
pub use tokio::runtime::Handle;

/// An opaque token naming one written state of an object (an ETag on S3).
pub type Version = String;

/// Requests sent by a store, by API operation (`GetObject`, `PutObject`,
/// `ListObjectsV2`, ...), retries and listing pages included.
pub type RequestCounts = BTreeMap<String, u64>;

/// How a put treats an object that is already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Write only if nothing is there; else [`StoreError::AlreadyExists`].
    Create,
    /// Write only if the current object has this version; else
    /// [`StoreError::Precondition`] (also when the object is gone).
    Update(Version),
}

/// What a listing or a head returns about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub version: Version,
}

/// An object's bytes with the version they were read at.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub version: Version,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{uri}: not found")]
    NotFound { uri: String },
    #[error("{uri}: already exists")]
    AlreadyExists { uri: String },
    #[error("{uri}: precondition failed: {detail}")]
    Precondition { uri: String, detail: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The OS error is the source, not part of the message: the chain
    /// printer (`{err:#}`) prints it once, after the URI.
    #[error("{uri}")]
    Io {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{uri}: {message}")]
    Backend { uri: String, message: String },
    #[error("unsupported storage URI {uri:?}: {reason}")]
    UnsupportedUri { uri: String, reason: String },
}

/// The storage trait: everything salescast persists goes through these calls.
/// Async code uses it directly; sync code goes through the [`Store`] facade.
#[async_trait::async_trait]
pub trait AsyncStore: Send + Sync + std::fmt::Debug {
    /// The URI of `key` in this store, for messages (`file:///…`, `s3://…`).
    fn uri_of(&self, key: &str) -> String;
    async fn get(&self, key: &str) -> Result<Object, StoreError>;
    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError>;
    async fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError>;
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The billable requests sent so far; a local folder sends none.
    fn requests(&self) -> RequestCounts {
        RequestCounts::new()
    }
}

/// Where a store URI points, before anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder: a plain path or `file://PATH`.
    Local(PathBuf),
    /// `s3://bucket/prefix`, as written.
    S3(String),
}

/// Reads a store URI: a plain path or `file://…` for a local folder,
/// `s3://bucket/prefix` for S3.
pub fn locate(uri: &str) -> Result<Location, StoreError> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(Location::Local(rest.into()));
    }
    if uri.starts_with("s3://") {
        return Ok(Location::S3(uri.to_string()));
    }
    if uri.contains("://") {
        return Err(StoreError::UnsupportedUri {
            uri: uri.to_string(),
            reason: "expected a folder path, file://PATH or s3://BUCKET/PREFIX".into(),
        });
    }
    Ok(Location::Local(uri.into()))
}

/// Opens the store a URI names (see [`locate`]), for async code: runs on the
/// caller's runtime. Opening a local folder removes the temporary files of
/// runs that are gone ([`LocalStore::clean_temp_files`]).
pub async fn open_async(uri: &str, s3: &S3Settings) -> Result<Arc<dyn AsyncStore>, StoreError> {
    Ok(match locate(uri)? {
        Location::Local(root) => {
            // The leftovers of killed runs; never an error (see `local_tmp`).
            let store = LocalStore::new(root);
            let sweeper = store.clone();
            let _ = tokio::task::spawn_blocking(move || sweeper.clean_temp_files()).await;
            Arc::new(store)
        }
        Location::S3(uri) => Arc::new(S3Store::open(&uri, s3).await?),
    })
}

/// Opens the store a URI names as the blocking facade on the runtime behind
/// `handle`, for sync code (the same rules as [`Store`]'s methods).
pub fn open(uri: &str, s3: &S3Settings, handle: &Handle) -> Result<Store, StoreError> {
    let inner = block_on(handle, open_async(uri, s3))?;
    Ok(Store::new(inner, handle.clone()))
}

/// Checks that a key is a relative `/`-separated path with no `.`-led segment
/// (those are reserved for a backend's own bookkeeping) and no `..`.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason| StoreError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty"));
    }
    if key.starts_with('/') || key.ends_with('/') {
        return Err(invalid("must not start or end with '/'"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid("empty path segment"));
        }
        if segment.starts_with('.') {
            return Err(invalid("a segment must not start with '.'"));
        }
        if segment.contains('\\') {
            return Err(invalid("'\\' is not allowed"));
        }
    }
    Ok(())
}

/// A local store in a new temporary folder, on a test runtime of one
/// worker (the CLI owns the runtime in production): for the core's tests.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a test runtime")
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Store::new(Arc::new(LocalStore::new(dir.path())), runtime.handle().clone());
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("sales/dt=2015-01-01/part-1.parquet").is_ok());
        for bad in ["", "/a", "a/", "a//b", "../a", "a/.tmp", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn uris_pick_a_backend() {
        assert_eq!(
            locate("some/folder").unwrap(),
            Location::Local("some/folder".into())
        );
        assert_eq!(locate("file:///tmp/x").unwrap(), Location::Local("/tmp/x".into()));
        assert_eq!(locate("s3://b/p").unwrap(), Location::S3("s3://b/p".into()));
        assert!(matches!(
            locate("gs://bucket").unwrap_err(),
            StoreError::UnsupportedUri { .. }
        ));
    }
}

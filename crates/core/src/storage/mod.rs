//! Object storage behind one small trait: the lake and the registry talk only to
//! [`Store`], so a local folder and S3 are interchangeable.
//!
//! Modelled on arrow-rs `object_store`: keys are `/`-separated relative paths,
//! writes take a [`PutMode`] (overwrite, create-only, update-if-version) and
//! failures are semantic ([`StoreError::NotFound`], [`StoreError::AlreadyExists`],
//! [`StoreError::Precondition`]) so callers can act on them whatever the backend.

mod local;
mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use local::LocalStore;
pub use s3::{S3Settings, S3Store};

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
    #[error("{uri}: {source}")]
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
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The URI of `key` in this store, for messages (`file:///…`, `s3://…`).
    fn uri_of(&self, key: &str) -> String;
    fn get(&self, key: &str) -> Result<Object, StoreError>;
    fn head(&self, key: &str) -> Result<ObjectMeta, StoreError>;
    fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError>;
    /// Every object whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The billable requests sent so far; a local folder sends none.
    fn requests(&self) -> RequestCounts {
        RequestCounts::new()
    }
}

/// Opens the store a URI names: a plain path or `file://…` for a local
/// folder, `s3://bucket/prefix` for S3.
pub fn open(uri: &str, s3: &S3Settings) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(Arc::new(LocalStore::new(rest)));
    }
    if uri.starts_with("s3://") {
        return Ok(Arc::new(S3Store::open(uri, s3)?));
    }
    if uri.contains("://") {
        return Err(StoreError::UnsupportedUri {
            uri: uri.to_string(),
            reason: "expected a folder path, file://PATH or s3://BUCKET/PREFIX".into(),
        });
    }
    Ok(Arc::new(LocalStore::new(uri)))
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
        let s3 = S3Settings::default();
        // The opened store is rooted where the URI says: its keys resolve there.
        let url = open("file:///tmp/x", &s3).unwrap();
        assert_eq!(url.uri_of("a/b.parquet"), "file:///tmp/x/a/b.parquet");
        let folder = open("some/folder", &s3).unwrap();
        let root = std::path::absolute("some/folder").unwrap();
        assert_eq!(folder.uri_of("k"), format!("file://{}", root.join("k").display()));
        assert!(matches!(
            open("gs://bucket", &s3).unwrap_err(),
            StoreError::UnsupportedUri { .. }
        ));
    }
}

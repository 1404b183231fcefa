//! The local-folder backend of [`AsyncStore`]: the file-system work is
//! blocking, so each call runs in `tokio::task::spawn_blocking` and never
//! blocks a runtime worker.
//!
//! Every write goes to a temporary file under `<root>/.salescast/tmp/` first and
//! reaches its key atomically: create-only by `link` (which fails if the key
//! exists), overwrite by `rename`, update-if-version by `rename` while holding
//! an exclusive lock on `<root>/.salescast/lock`, so two processes never both
//! win. A version is the file's inode, modification time and size, which every
//! write changes because every write is a new file. The temporary files of
//! runs that were killed are cleaned up by the rule of [`super::local_tmp`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::local_tmp::{self, Owner};
use super::{AsyncStore, Object, ObjectMeta, PutMode, StoreError, Version, check_key};

/// Bookkeeping folder inside the root; hidden from listings.
const INTERNAL_DIR: &str = ".salescast";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// This store's claim on its temporary folder, taken at its first write
    /// and shared by its clones.
    owner: Arc<OnceLock<Owner>>,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            owner: Arc::default(),
        }
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("tmp")
    }

    /// Removes the temporary files no live run owns (see
    /// `storage/local_tmp.rs`) and returns how many; a failure is logged, not
    /// returned. Blocking: [`super::open_async`] runs it off the runtime.
    pub fn clean_temp_files(&self) -> usize {
        local_tmp::clean(&self.temp_dir())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn io_error(&self, key: &str, source: io::Error) -> StoreError {
        let uri = self.uri_of(key);
        match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { uri },
            _ => StoreError::Io { uri, source },
        }
    }

    /// Writes `bytes` to a fresh temporary file on the same file system as the
    /// root and syncs it, so a later rename or link publishes whole content.
    fn write_temp(&self, key: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let dir = self.temp_dir();
        fs::create_dir_all(&dir).map_err(|e| self.io_error(key, e))?;
        let tmp = self.owner.get_or_init(|| Owner::claim(&dir)).temp_path();
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.io_error(key, e));
        }
        Ok(tmp)
    }

    fn lock(&self, key: &str) -> Result<File, StoreError> {
        let dir = self.root.join(INTERNAL_DIR);
        fs::create_dir_all(&dir).map_err(|e| self.io_error(key, e))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| self.io_error(key, e))?;
        file.lock().map_err(|e| self.io_error(key, e))?;
        Ok(file)
    }

    fn publish(&self, key: &str, tmp: &Path, mode: &PutMode) -> Result<(), StoreError> {
        let dest = self.path_of(key)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| self.io_error(key, e))?;
        }
        match mode {
            PutMode::Overwrite => fs::rename(tmp, &dest).map_err(|e| self.io_error(key, e)),
            PutMode::Create => match fs::hard_link(tmp, &dest) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::AlreadyExists {
                    uri: self.uri_of(key),
                }),
                Err(e) => Err(self.io_error(key, e)),
            },
            PutMode::Update(expected) => {
                let _guard = self.lock(key)?;
                let current = match self.head_now(key) {
                    Ok(meta) => meta.version,
                    Err(StoreError::NotFound { .. }) => {
                        return Err(StoreError::Precondition {
                            uri: self.uri_of(key),
                            detail: "the object is gone".into(),
                        });
                    }
                    Err(e) => return Err(e),
                };
                if &current != expected {
                    return Err(StoreError::Precondition {
                        uri: self.uri_of(key),
                        detail: format!("version is {current}, expected {expected}"),
                    });
                }
                fs::rename(tmp, &dest).map_err(|e| self.io_error(key, e))
            }
        }
    }

    fn sync_parent(&self, key: &str) {
        // Durability of the rename itself; a failure here loses nothing that
        // was acknowledged, so it is not reported.
        if let Ok(dest) = self.path_of(key)
            && let Some(parent) = dest.parent()
            && let Ok(dir) = File::open(parent)
        {
            let _ = dir.sync_all();
        }
    }

    fn walk(&self, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.walk(&entry.path(), out)?;
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
        Ok(())
    }

    fn key_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        parts.into_iter().collect::<Option<Vec<_>>>().map(|p| p.join("/"))
    }
}

fn version_of(meta: &fs::Metadata) -> Version {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("{inode:x}-{mtime:x}-{:x}", meta.len())
}

/// The blocking work of each call (the `*_now` methods), run on a thread that
/// may block, and the hop to such a thread.
impl LocalStore {
    /// The URI of `key` in this store, for messages (`file:///…`).
    pub fn uri_of(&self, key: &str) -> String {
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        if key.is_empty() {
            format!("file://{}", root.display())
        } else {
            format!("file://{}", root.join(key).display())
        }
    }

    fn get_now(&self, key: &str) -> Result<Object, StoreError> {
        let path = self.path_of(key)?;
        let mut file = File::open(&path).map_err(|e| self.io_error(key, e))?;
        let meta = file.metadata().map_err(|e| self.io_error(key, e))?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| self.io_error(key, e))?;
        Ok(Object {
            bytes,
            version: version_of(&meta),
        })
    }

    fn head_now(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        let meta = fs::metadata(&path).map_err(|e| self.io_error(key, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound {
                uri: self.uri_of(key),
            });
        }
        Ok(ObjectMeta {
            key: key.to_string(),
            size: meta.len(),
            version: version_of(&meta),
        })
    }

    fn put_now(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError> {
        check_key(key)?;
        let tmp = self.write_temp(key, bytes)?;
        let meta = fs::metadata(&tmp).map_err(|e| self.io_error(key, e));
        let result = meta.and_then(|meta| {
            self.publish(key, &tmp, &mode)?;
            Ok(meta)
        });
        // After a link (create-only) or a failed publish the temp file is
        // still there; after a rename this is a no-op.
        let _ = fs::remove_file(&tmp);
        let meta = result?;
        self.sync_parent(key);
        Ok(ObjectMeta {
            key: key.to_string(),
            size: meta.len(),
            version: version_of(&meta),
        })
    }

    fn list_now(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        // Walk only the deepest folder the prefix names in full.
        let dir_part = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        let mut paths = Vec::new();
        self.walk(&start, &mut paths)
            .map_err(|e| self.io_error(dir_part, e))?;
        let mut out = Vec::new();
        for path in paths {
            let Some(key) = self.key_of(&path) else {
                continue;
            };
            if !key.starts_with(prefix) {
                continue;
            }
            match self.head_now(&key) {
                Ok(meta) => out.push(meta),
                // Deleted between the walk and the head.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete_now(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error(key, e)),
        }
    }

    /// Runs `work` on a clone of this store in tokio's blocking pool; `key`
    /// names the object in the error if the task itself fails.
    async fn off_runtime<T: Send + 'static>(
        &self,
        key: &str,
        work: impl FnOnce(&LocalStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| StoreError::Backend {
                uri: self.uri_of(key),
                message: format!("the file-system task did not finish: {e}"),
            })?
    }
}

#[async_trait::async_trait]
impl AsyncStore for LocalStore {
    fn uri_of(&self, key: &str) -> String {
        LocalStore::uri_of(self, key)
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        let owned = key.to_string();
        self.off_runtime(key, move |store| store.get_now(&owned)).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let owned = key.to_string();
        self.off_runtime(key, move |store| store.head_now(&owned)).await
    }

    async fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError> {
        let (owned, bytes) = (key.to_string(), bytes.to_vec());
        self.off_runtime(key, move |store| store.put_now(&owned, &bytes, mode))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let owned = prefix.to_string();
        self.off_runtime(prefix, move |store| store.list_now(&owned))
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let owned = key.to_string();
        self.off_runtime(key, move |store| store.delete_now(&owned)).await
    }
}

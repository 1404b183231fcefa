//! The local-folder backend's temporary files (`<root>/.salescast/tmp/`): who
//! owns each one, and the cleanup of those no live run owns (issue 17, defect
//! 6: a run killed between writing a temporary file and publishing it left
//! the file there for ever).
//!
//! Ownership. The first write of a [`LocalStore`](super::LocalStore) claims
//! the folder: it creates `<tag>.claim`, takes an exclusive advisory lock on
//! it (`flock`), renames it `<tag>.owner` and keeps it open and locked until
//! the store is dropped (then it removes it). The kernel releases the lock
//! when the process ends, however it ends, SIGKILL included. The tag is the
//! pid, the process's start time and a sequence number, so no two claims
//! share one; the store's temporary files are `<tag>.<n>`. The lock is taken
//! before the file has its `.owner` name, so no cleanup sees a live owner
//! unlocked.
//!
//! Cleanup, when a local store is opened ([`super::open_async`]) and before
//! its first write: a file of the folder is removed only when no live run can
//! own it and it has not been modified for a while, that is when
//! - its `<tag>.owner` can be locked (its owner is gone) and it has not been
//!   modified for [`SETTLE`] (a minute); the owner file goes with its last
//!   temporary file;
//! - or it has no owner file (the naming of earlier versions, a store that
//!   could not take a lock, a claim cut short) and has not been modified for
//!   [`GRACE`] (an hour).
//!
//! A file whose owner's lock is held, or cannot be tried, is kept, and so is
//! every file of a tag this process holds (on some network file systems one
//! process is granted every lock it asks for). The ages guard what a lock
//! cannot: a shared folder whose locks do not reach other hosts, pid reuse,
//! and the instant between a listing and a claim. A cleanup never fails a
//! command (its errors are warnings) and touches nothing outside the folder.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a file of an owner that is gone is left alone after its last
/// write (a cleanup on a host the owner's lock does not reach).
pub(super) const SETTLE: Duration = Duration::from_secs(60);
/// How long a file with no owner file is left alone after its last write.
pub(super) const GRACE: Duration = Duration::from_secs(3600);

const OWNER: &str = ".owner";

/// The tags the stores of this process hold now, in any folder.
fn live_tags() -> std::sync::MutexGuard<'static, HashSet<String>> {
    static TAGS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    TAGS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn new_tag() -> String {
    static START: OnceLock<u128> = OnceLock::new();
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    });
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{}-{start:x}-{sequence}", std::process::id())
}

/// A store's claim on its temporary folder, given up when dropped.
#[derive(Debug)]
pub(super) struct Owner {
    dir: PathBuf,
    tag: String,
    /// The locked `<tag>.owner`; `None` when no lock could be taken, and then
    /// only [`GRACE`] covers the store's files.
    lock: Option<File>,
    next: AtomicU64,
}

impl Owner {
    /// Cleans `dir`, then claims it for one store. Never fails: without a
    /// lock the temporary files are still named apart.
    pub(super) fn claim(dir: &Path) -> Owner {
        clean(dir);
        let tag = new_tag();
        live_tags().insert(tag.clone());
        let lock = match lock_claim(dir, &tag) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(
                    "{}: no lock on this run's temporary files, so they are kept for an hour if it is killed: {e}",
                    dir.display()
                );
                None
            }
        };
        Owner {
            dir: dir.to_path_buf(),
            tag,
            lock,
            next: AtomicU64::new(0),
        }
    }

    /// A path for one new temporary file of this owner.
    pub(super) fn temp_path(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}.{n}", self.tag))
    }
}

fn lock_claim(dir: &Path, tag: &str) -> io::Result<File> {
    fs::create_dir_all(dir)?;
    let claim = dir.join(format!("{tag}.claim"));
    let file = File::options().write(true).create_new(true).open(&claim)?;
    let locked = match file.try_lock() {
        Ok(()) => fs::rename(&claim, dir.join(format!("{tag}{OWNER}"))),
        Err(TryLockError::WouldBlock) => Err(io::Error::other("a new file is locked already")),
        Err(TryLockError::Error(e)) => Err(e),
    };
    if let Err(e) = locked {
        let _ = fs::remove_file(&claim);
        return Err(e);
    }
    Ok(file)
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Removed while still locked (the file closes after this).
        if self.lock.is_some() {
            let _ = fs::remove_file(self.dir.join(format!("{}{OWNER}", self.tag)));
        }
        live_tags().remove(&self.tag);
    }
}

/// Removes the files of `dir` no live run owns (the rule is the module's);
/// returns how many. Errors are logged, never returned.
pub(super) fn clean(dir: &Path) -> usize {
    match sweep(dir) {
        Ok(0) => 0,
        Ok(removed) => {
            tracing::info!(
                "{}: removed {removed} temporary files of runs that are gone",
                dir.display()
            );
            removed
        }
        Err(e) => {
            tracing::warn!("{}: the temporary files were not cleaned up: {e}", dir.display());
            0
        }
    }
}

fn sweep(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // No folder, no leftovers (a write there reports the error itself).
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        // Only plain files with names a store gives; nothing else is ours.
        if entry.file_type()?.is_file()
            && let Ok(name) = entry.file_name().into_string()
        {
            names.push(name);
        }
    }
    let ours = live_tags().clone();
    // The owners: every tag with an owner file, and the locks of those gone,
    // held until their files are removed.
    let mut owned = HashSet::new();
    let mut gone: HashMap<&str, File> = HashMap::new();
    for name in &names {
        let Some(tag) = name.strip_suffix(OWNER) else {
            continue;
        };
        owned.insert(tag);
        if ours.contains(tag) {
            continue;
        }
        match lock_if_gone(&dir.join(name)) {
            Ok(Some(lock)) => {
                gone.insert(tag, lock);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                "{}: its owner is not known, so it is kept: {e}",
                dir.join(name).display()
            ),
        }
    }
    let now = SystemTime::now();
    let mut removed = 0;
    let mut kept: HashSet<&str> = HashSet::new();
    for name in &names {
        if name.ends_with(OWNER) {
            continue;
        }
        let tag = name.split('.').next().unwrap_or(name);
        let wait = if gone.contains_key(tag) {
            SETTLE
        } else if owned.contains(tag) || ours.contains(tag) {
            continue;
        } else {
            GRACE
        };
        let path = dir.join(name);
        let idle = fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if idle.is_some_and(|idle| idle >= wait) {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!("{}: {e}", path.display());
                    kept.insert(tag);
                }
            }
        } else {
            kept.insert(tag);
        }
    }
    for (tag, lock) in gone {
        if !kept.contains(tag) && fs::remove_file(dir.join(format!("{tag}{OWNER}"))).is_ok() {
            removed += 1;
        }
        drop(lock);
    }
    Ok(removed)
}

/// The owner file at `path`, locked, if its owner is gone; `None` if its
/// owner holds it (or it was removed meanwhile).
fn lock_if_gone(path: &Path) -> io::Result<Option<File>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
#[path = "local_tmp_tests.rs"]
mod tests;

//! Tests of the temporary files' cleanup (issue 17, defect 6): what a killed
//! run left goes when a store is next opened or written; what a live run owns
//! stays, on one machine and across processes (a lock held through another
//! open file is what another process's lock looks like here).

use super::*;
use crate::storage::{LocalStore, PutMode, S3Settings, temp_store};

const HOURS_2: Duration = Duration::from_secs(2 * 3600);

/// Writes `dir/name`, last modified `age` ago.
fn plant(dir: &Path, name: &str, age: Duration) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, b"half a parquet file").unwrap();
    let file = File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    path
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn defect_6_a_dead_runs_temp_files_are_removed_by_the_next_write() {
    let (root, store) = temp_store();
    let tmp = root.path().join(".salescast/tmp");
    // A killed run: its owner file (whose lock nobody holds) and a temp file.
    let owner = plant(&tmp, "4194303-18a2b3c4-0.owner", HOURS_2);
    let part = plant(&tmp, "4194303-18a2b3c4-0.7", SETTLE + Duration::from_secs(5));
    // A killed run of an earlier version, whose files had no owner file.
    let legacy = plant(&tmp, "4194302-3-1764662400000000000", HOURS_2);
    // Old files outside the temporary folder are not the cleanup's.
    let beside = plant(&root.path().join(".salescast"), "keep", HOURS_2);
    let data = plant(&root.path().join("sales"), "old.csv", HOURS_2);

    store.put("sales/new.csv", b"x", PutMode::Create).unwrap();
    for path in [&owner, &part, &legacy] {
        assert!(!path.exists(), "{} is left over", path.display());
    }
    assert!(beside.exists() && data.exists());
    assert_eq!(store.get("sales/new.csv").unwrap().bytes, b"x");
    // What is left is this store's own claim, until the store is dropped.
    let left = names(&tmp);
    assert!(
        left.len() == 1
            && left[0].starts_with(&format!("{}-", std::process::id()))
            && left[0].ends_with(OWNER),
        "{left:?}"
    );
    drop(store);
    assert_eq!(
        names(&tmp),
        Vec::<String>::new(),
        "a dropped store gives up its claim"
    );
}

#[test]
fn defect_6_a_dead_runs_temp_files_are_removed_when_the_store_is_opened() {
    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join(".salescast/tmp");
    let owner = plant(&tmp, "77-1-0.owner", HOURS_2);
    let part = plant(&tmp, "77-1-0.0", HOURS_2);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let uri = root.path().to_str().unwrap();
    let store = runtime
        .block_on(crate::storage::open_async(uri, &S3Settings::default()))
        .unwrap();
    assert!(!owner.exists() && !part.exists(), "{:?}", names(&tmp));
    drop(store);
}

#[test]
fn defect_6_temp_files_a_live_run_may_be_writing_are_kept() {
    let (root, store) = temp_store();
    let tmp = root.path().join(".salescast/tmp");
    // Another run, alive: it holds the lock on its owner file.
    let other = plant(&tmp, "2-live-0.owner", HOURS_2);
    let held = File::open(&other).unwrap();
    held.lock().unwrap();
    let others = plant(&tmp, "2-live-0.0", HOURS_2);
    // A run that is gone, but wrote its file a moment ago (its lock may not
    // reach this host): kept, and so is its owner file.
    let gone = plant(&tmp, "3-gone-0.owner", HOURS_2);
    let recent = plant(&tmp, "3-gone-0.0", Duration::ZERO);
    // No owner file, written within the hour: a claim in progress, or a run
    // whose lock could not be taken.
    let claim = plant(&tmp, "4-new-0.claim", Duration::ZERO);
    let young = plant(&tmp, "5-1-1764662400000000000", GRACE - Duration::from_secs(60));

    store.put("a.csv", b"x", PutMode::Overwrite).unwrap();
    // This store's own temp file, as a slow write in progress would look,
    // seen by a second store of the same process.
    let own = names(&tmp)
        .into_iter()
        .find(|name| name.starts_with(&format!("{}-", std::process::id())) && name.ends_with(OWNER))
        .unwrap();
    let own_part = plant(&tmp, &own.replace(OWNER, ".9"), HOURS_2);
    let removed = LocalStore::new(root.path()).clean_temp_files();
    assert_eq!(removed, 0, "{:?}", names(&tmp));
    for path in [
        &other,
        &others,
        &gone,
        &recent,
        &claim,
        &young,
        &own_part,
        &tmp.join(&own),
    ] {
        assert!(path.exists(), "{} was removed", path.display());
    }

    // The other run ends (its lock is released): its files go.
    drop(held);
    assert_eq!(LocalStore::new(root.path()).clean_temp_files(), 2);
    assert!(!other.exists() && !others.exists());
    assert!(own_part.exists(), "still this process's");
}

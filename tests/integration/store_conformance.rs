//! ONE conformance suite for the storage trait, written once and run against
//! every backend (as in arrow-rs `object_store`): put modes, not-found,
//! listing, races with one winner, no lost update, and large objects.
//! Add a backend by adding one `conformance_suite!` line.

use std::sync::{Arc, Barrier};

use salescast_core::storage::{self, LocalStore, PutMode, S3Settings, Store, StoreError};

/// A store under test and whatever keeps it alive (a temporary folder).
pub struct Backend {
    pub store: Store,
    _guard: Box<dyn std::any::Any>,
}

pub fn local_backend() -> Backend {
    let dir = crate::util::tempdir();
    Backend {
        store: Store::new(
            Arc::new(LocalStore::new(dir.path().join("store"))),
            crate::util::handle().clone(),
        ),
        _guard: Box::new(dir),
    }
}

/// A fresh bucket on the local S3 server, with the store under a prefix.
pub fn s3_backend() -> Backend {
    let bucket = crate::util::s3_bucket("conformance");
    let settings = S3Settings {
        endpoint: Some(crate::util::s3_endpoint()),
        ..Default::default()
    };
    Backend {
        store: storage::open(&format!("s3://{bucket}/store"), &settings, crate::util::handle()).unwrap(),
        _guard: Box::new(()),
    }
}

macro_rules! conformance_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn put_modes() {
                check_put_modes(&$make.store);
            }
            #[test]
            fn not_found() {
                check_not_found(&$make.store);
            }
            #[test]
            fn listing() {
                check_listing(&$make.store);
            }
            #[test]
            fn create_race_has_one_winner() {
                check_create_race($make.store.clone());
            }
            #[test]
            fn update_race_has_one_winner() {
                check_update_race($make.store.clone());
            }
            #[test]
            fn compare_and_swap_loses_no_update() {
                check_no_lost_update($make.store.clone());
            }
            #[test]
            fn large_objects() {
                check_large_object(&$make.store);
            }
            #[test]
            fn invalid_keys() {
                check_invalid_keys(&$make.store);
            }
        }
    };
}

conformance_suite!(local, local_backend());
conformance_suite!(s3, s3_backend());

pub fn check_put_modes(store: &Store) {
    let created = store.put("a/one", b"first", PutMode::Create).unwrap();
    assert!(matches!(
        store.put("a/one", b"second", PutMode::Create),
        Err(StoreError::AlreadyExists { .. })
    ));
    let got = store.get("a/one").unwrap();
    assert_eq!(got.bytes, b"first");
    assert_eq!(got.version, created.version);
    assert_eq!(store.head("a/one").unwrap().version, created.version);

    let overwritten = store.put("a/one", b"third", PutMode::Overwrite).unwrap();
    assert_ne!(
        overwritten.version, created.version,
        "every write makes a new version"
    );
    assert_eq!(store.get("a/one").unwrap().bytes, b"third");

    let stale = PutMode::Update(created.version.clone());
    assert!(matches!(
        store.put("a/one", b"lost", stale),
        Err(StoreError::Precondition { .. })
    ));
    assert_eq!(
        store.get("a/one").unwrap().bytes,
        b"third",
        "a failed update changes nothing"
    );

    let updated = store
        .put("a/one", b"fourth", PutMode::Update(overwritten.version))
        .unwrap();
    assert_eq!(store.get("a/one").unwrap().bytes, b"fourth");
    assert_eq!(store.head("a/one").unwrap().version, updated.version);
    assert_eq!(store.head("a/one").unwrap().size, 6);

    let on_missing = store.put("a/missing", b"x", PutMode::Update(updated.version));
    assert!(matches!(on_missing, Err(StoreError::Precondition { .. })));
    assert!(matches!(
        store.head("a/missing"),
        Err(StoreError::NotFound { .. })
    ));
}

pub fn check_not_found(store: &Store) {
    assert!(matches!(
        store.get("nothing/here"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head("nothing/here"),
        Err(StoreError::NotFound { .. })
    ));
    store
        .delete("nothing/here")
        .expect("deleting a missing key is not an error");
    store.put("x/y", b"1", PutMode::Create).unwrap();
    store.delete("x/y").unwrap();
    assert!(matches!(store.get("x/y"), Err(StoreError::NotFound { .. })));
    let err = store.get("nothing/here").unwrap_err().to_string();
    assert!(err.contains("nothing/here"), "the error names the object: {err}");
}

pub fn check_listing(store: &Store) {
    assert!(store.list("").unwrap().is_empty());
    for key in ["m/dt=2/b", "m/dt=1/a", "m/dt=10/c", "other/x", "mm/y"] {
        store.put(key, key.as_bytes(), PutMode::Create).unwrap();
    }
    let keys =
        |prefix: &str| -> Vec<String> { store.list(prefix).unwrap().into_iter().map(|m| m.key).collect() };
    assert_eq!(keys("m/"), ["m/dt=1/a", "m/dt=10/c", "m/dt=2/b"]);
    assert_eq!(
        keys("m/dt=1"),
        ["m/dt=1/a", "m/dt=10/c"],
        "a prefix is a string prefix, as on S3"
    );
    assert_eq!(keys("m"), ["m/dt=1/a", "m/dt=10/c", "m/dt=2/b", "mm/y"]);
    assert_eq!(keys("").len(), 5, "bookkeeping files never show in a listing");
    assert!(keys("zzz/").is_empty());
    let meta = &store.list("other/").unwrap()[0];
    assert_eq!(meta.size, 7);
    assert_eq!(meta.version, store.head("other/x").unwrap().version);
}

fn race<T: Send>(store: Store, writers: usize, work: impl Fn(&Store, usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(writers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (store, barrier, work) = (store.clone(), &barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(&store, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Runs 16 writers at once on `key` in `mode`; exactly one must win, every
/// loser must see `lost` (the trait's error for a lost race), and the object
/// must hold the winner's bytes.
fn check_one_winner(store: Store, key: &str, mode: PutMode, lost: fn(&StoreError) -> bool) {
    let results = race(store.clone(), 16, |store, i| {
        store.put(key, format!("writer {i}").as_bytes(), mode.clone())
    });
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one {mode:?} wins");
    for r in &results {
        if let Err(e) = r {
            assert!(lost(e), "a loser must see the lost-race error, not {e}");
        }
    }
    assert_eq!(
        store.get(key).unwrap().bytes,
        format!("writer {}", winners[0]).as_bytes()
    );
}

pub fn check_create_race(store: Store) {
    check_one_winner(store, "race/create", PutMode::Create, |e| {
        matches!(e, StoreError::AlreadyExists { .. })
    });
}

fn check_update_race(store: Store) {
    let start = store
        .put("race/update", b"start", PutMode::Create)
        .unwrap()
        .version;
    check_one_winner(store, "race/update", PutMode::Update(start), |e| {
        matches!(e, StoreError::Precondition { .. })
    });
}

pub fn check_no_lost_update(store: Store) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 10;
    store.put("race/counter", b"0", PutMode::Create).unwrap();
    race(store.clone(), WRITERS, |store, _| {
        for _ in 0..ROUNDS {
            loop {
                let current = store.get("race/counter").unwrap();
                let n: usize = String::from_utf8(current.bytes).unwrap().parse().unwrap();
                match store.put(
                    "race/counter",
                    (n + 1).to_string().as_bytes(),
                    PutMode::Update(current.version),
                ) {
                    Ok(_) => break,
                    Err(StoreError::Precondition { .. }) => continue,
                    Err(e) => panic!("unexpected: {e}"),
                }
            }
        }
    });
    let total = String::from_utf8(store.get("race/counter").unwrap().bytes).unwrap();
    assert_eq!(total, (WRITERS * ROUNDS).to_string(), "an increment was lost");
}

fn check_large_object(store: &Store) {
    // 24 MiB of varied bytes: beyond one S3 multipart part.
    let bytes: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let meta = store.put("big/object.bin", &bytes, PutMode::Create).unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    let got = store.get("big/object.bin").unwrap();
    assert!(got.bytes == bytes, "the large object came back changed");
}

fn check_invalid_keys(store: &Store) {
    for key in ["", "/abs", "a/../b", "a/.hidden", "a//b"] {
        assert!(
            matches!(
                store.put(key, b"x", PutMode::Overwrite),
                Err(StoreError::InvalidKey { .. })
            ),
            "{key:?} must be refused"
        );
    }
}

/// What the S3 server recorded of an object's encryption, by boto3's head_object.
fn s3_encryption_of(bucket: &str, key: &str) -> String {
    crate::util::python(
        "import sys, boto3
h = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1').head_object(Bucket=sys.argv[2], Key=sys.argv[3])
print(h.get('ServerSideEncryption'), h.get('SSEKMSKeyId'))",
        &[&crate::util::s3_endpoint(), bucket, key],
    )
    .trim()
    .to_string()
}

#[test]
fn s3_writes_carry_the_configured_encryption() {
    let bucket = crate::util::s3_bucket("sse");
    let key_id = crate::util::python(
        "import sys, boto3
print(boto3.client('kms', endpoint_url=sys.argv[1], region_name='us-east-1').create_key()['KeyMetadata']['KeyId'])",
        &[&crate::util::s3_endpoint()],
    )
    .trim()
    .to_string();
    let large = vec![7u8; 17 * 1024 * 1024];
    for (sse, kms_key_id) in [("AES256", None), ("aws:kms", Some(key_id.clone()))] {
        let settings = S3Settings {
            endpoint: Some(crate::util::s3_endpoint()),
            sse: Some(sse.into()),
            kms_key_id: kms_key_id.clone(),
            ..Default::default()
        };
        let uri = format!("s3://{bucket}/{}", sse.replace(':', "-"));
        let store = storage::open(&uri, &settings, crate::util::handle()).unwrap();
        store.put("small", b"x", PutMode::Create).unwrap();
        store.put("multipart", &large, PutMode::Overwrite).unwrap();
        for key in ["small", "multipart"] {
            let found = s3_encryption_of(&bucket, &format!("{}/{key}", sse.replace(':', "-")));
            let (found_sse, found_key) = found.split_once(' ').unwrap();
            assert_eq!(found_sse, sse, "{key}: the server recorded {found:?}");
            match &kms_key_id {
                Some(id) => assert!(
                    found_key.ends_with(id.as_str()),
                    "{key}: the server recorded {found:?}"
                ),
                None => assert_eq!(found_key, "None", "{key}"),
            }
        }
    }
}

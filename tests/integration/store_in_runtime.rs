//! The stores called from inside a running tokio runtime, as the server will
//! call them: the async trait on multi-thread and current-thread runtimes,
//! many tasks at once; and the blocking facade from `spawn_blocking` and from
//! a runtime worker. Before the async trait, the S3 store panicked here
//! ("Cannot start a runtime from within a runtime").

use std::sync::Arc;

use salescast_core::storage::{self, AsyncStore, Handle, PutMode, S3Settings, Store, StoreError};

use crate::store_conformance::{check_create_race, check_listing, check_no_lost_update, check_put_modes};
use crate::util::{s, s3_bucket, s3_endpoint, tempdir};

/// A store opened by async code, and what keeps it alive (a temporary folder).
type Opened = (Arc<dyn AsyncStore>, Box<dyn std::any::Any + Send>);

async fn open_local() -> Opened {
    let dir = tempdir();
    let uri = s(&dir.path().join("store")).to_string();
    let store = storage::open_async(&uri, &S3Settings::default()).await.unwrap();
    (store, Box::new(dir))
}

async fn open_s3() -> Opened {
    let settings = S3Settings {
        endpoint: Some(s3_endpoint()),
        ..Default::default()
    };
    let uri = format!("s3://{}/store", s3_bucket("in-runtime"));
    (storage::open_async(&uri, &settings).await.unwrap(), Box::new(()))
}

/// Every call of the async trait, each put mode, from async code.
async fn check_async_calls(store: &dyn AsyncStore) {
    let created = store.put("a/one", b"first", PutMode::Create).await.unwrap();
    assert!(matches!(
        store.put("a/one", b"second", PutMode::Create).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let got = store.get("a/one").await.unwrap();
    assert_eq!(
        (got.bytes.as_slice(), &got.version),
        (&b"first"[..], &created.version)
    );

    let overwritten = store.put("a/one", b"third", PutMode::Overwrite).await.unwrap();
    assert_ne!(overwritten.version, created.version);
    assert!(matches!(
        store
            .put("a/one", b"lost", PutMode::Update(created.version))
            .await,
        Err(StoreError::Precondition { .. })
    ));
    let updated = store
        .put("a/one", b"fourth", PutMode::Update(overwritten.version))
        .await
        .unwrap();
    let head = store.head("a/one").await.unwrap();
    assert_eq!((head.size, &head.version), (6, &updated.version));
    assert_eq!(store.get("a/one").await.unwrap().bytes, b"fourth");

    store.put("a/two", b"2", PutMode::Create).await.unwrap();
    let keys = |metas: Vec<storage::ObjectMeta>| metas.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(keys(store.list("a/").await.unwrap()), ["a/one", "a/two"]);
    store.delete("a/one").await.unwrap();
    store
        .delete("a/one")
        .await
        .expect("deleting a missing key is not an error");
    assert!(matches!(
        store.get("a/one").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(keys(store.list("a/").await.unwrap()), ["a/two"]);
}

/// 16 tasks on the runtime race a create-only put: exactly one wins.
async fn check_tasks_race(store: Arc<dyn AsyncStore>) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put("race/create", format!("task {i}").as_bytes(), PutMode::Create)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => winners.push(i),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("a loser must see AlreadyExists, not {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
    let got = store.get("race/create").await.unwrap().bytes;
    assert_eq!(got, format!("task {}", winners[0]).as_bytes());
}

macro_rules! in_runtime_suite {
    ($name:ident, $open:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_calls_on_a_multi_thread_runtime() {
                let (store, _guard) = $open.await;
                check_async_calls(&*store).await;
                check_tasks_race(store).await;
            }

            #[tokio::test(flavor = "current_thread")]
            async fn async_calls_on_a_current_thread_runtime() {
                let (store, _guard) = $open.await;
                check_async_calls(&*store).await;
                check_tasks_race(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_facade_inside_spawn_blocking() {
                let (store, _guard) = $open.await;
                let facade = Store::new(store, Handle::current());
                tokio::task::spawn_blocking(move || {
                    check_listing(&facade);
                    check_put_modes(&facade);
                    check_create_race(facade.clone());
                    check_no_lost_update(facade);
                })
                .await
                .unwrap();
            }

            /// Not the way to call it (async code awaits the trait), but it
            /// must not panic: the facade steps out with `block_in_place`.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_facade_on_a_runtime_worker() {
                let (store, _guard) = $open.await;
                let facade = Store::new(store, Handle::current());
                let task = tokio::spawn(async move {
                    facade.put("w/one", b"1", PutMode::Create).unwrap();
                    facade.get("w/one").unwrap().bytes
                });
                assert_eq!(task.await.unwrap(), b"1");
            }
        }
    };
}

in_runtime_suite!(local, open_local());
in_runtime_suite!(s3, open_s3());

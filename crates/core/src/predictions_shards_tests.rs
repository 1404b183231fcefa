//! Unit tests of the sharded-predict intermediates on a local folder: shards
//! written and fanned in give back the whole frame, reruns write nothing, and
//! a missing, damaged, foreign or stale shard is refused by name.

use super::*;
use crate::ingest::days_from_date;
use crate::shard::filter_frame;
use crate::storage::PutMode;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const H: u32 = 3;
const N: u32 = 3;

fn lake() -> (tempfile::TempDir, Lake) {
    let (dir, store) = crate::storage::temp_store();
    (dir, Lake::new(store))
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, 31).unwrap()
}

/// 20 series (key `store`) x H horizons, sorted, in the predictions schema.
fn frame(sha: &str) -> DataFrame {
    let mut stores: Vec<String> = (1..=20).map(|s| s.to_string()).collect();
    stores.sort();
    let (mut names, mut dates, mut horizons, mut forecast) = (vec![], vec![], vec![], vec![]);
    for store in &stores {
        for h in 1..=H as i32 {
            names.push(store.clone());
            dates.push(days_from_date(day()) + h);
            horizons.push(h);
            forecast.push(store.parse::<f64>().unwrap() * 10.0 + f64::from(h));
        }
    }
    let n = names.len();
    let date = |name: &str, v: Vec<i32>| Column::new(name.into(), v).cast(&DataType::Date).unwrap();
    let bound: Vec<Option<f64>> = forecast.iter().map(|f| Some(f - 1.0)).collect();
    DataFrame::new_infer_height(vec![
        Column::new("series".into(), &names),
        Column::new("store".into(), &names),
        date("target_date", dates),
        Column::new("horizon".into(), horizons),
        Column::new("forecast".into(), forecast),
        Column::new("lower".into(), bound.clone()),
        Column::new("upper".into(), bound),
        Column::new("model_sha256".into(), vec![sha.to_string(); n]),
        date("data_day", vec![days_from_date(day()); n]),
        Column::new("planned".into(), vec![false; n]),
    ])
    .unwrap()
}

fn part(sha: &str, k: u32) -> DataFrame {
    filter_frame(&frame(sha), &["store".to_string()], Shard { k, n: N }).unwrap()
}

fn write(lake: &Lake, sha: &str, k: u32) -> Result<ShardWritten, ShardsError> {
    write_shard(
        lake,
        "sales",
        sha,
        day(),
        H,
        0.8,
        Shard { k, n: N },
        &mut part(sha, k),
    )
}

fn expected(sha: &str) -> Expected<'_> {
    Expected {
        model: "sales",
        model_sha256: sha,
        data_day: day(),
        horizon_days: H,
        interval: 0.8,
    }
}

fn problems(result: Result<(Vec<ShardMarker>, DataFrame), ShardsError>) -> Vec<String> {
    match result {
        Err(ShardsError::Incomplete { problems, .. }) => problems,
        other => panic!("expected Incomplete, got {:?}", other.map(|(m, _)| m)),
    }
}

#[test]
fn shards_fan_in_to_the_whole_frame_and_reruns_write_nothing() {
    let (_dir, lake) = lake();
    for k in 0..N {
        assert!(part(A, k).height() > 0, "every shard holds some of the 20 series");
        let written = write(&lake, A, k).unwrap();
        assert_eq!(written.outcome, WriteOutcome::Written);
        assert_eq!(
            written.marker_key,
            format!("predictions/sales/_shards/dt=2015-07-31/{A}/shard-{k}-of-3.json")
        );
    }
    let (markers, combined) = read_shards(&lake, &expected(A), N).unwrap();
    assert_eq!(markers.len(), 3);
    assert_eq!(markers.iter().map(|m| m.series).sum::<u64>(), 20);
    assert!(
        combined.equals_missing(&frame(A)),
        "the fan-in gives the unsharded frame back"
    );
    let before = lake.store().list("predictions/").unwrap();
    for k in 0..N {
        assert_eq!(write(&lake, A, k).unwrap().outcome, WriteOutcome::Unchanged);
    }
    assert_eq!(
        lake.store().list("predictions/").unwrap(),
        before,
        "a rerun puts nothing"
    );
}

#[test]
fn a_missing_or_damaged_shard_is_named() {
    let (_dir, lake) = lake();
    write(&lake, A, 0).unwrap();
    let written = write(&lake, A, 2).unwrap();
    let problems_now = problems(read_shards(&lake, &expected(A), N));
    assert_eq!(problems_now.len(), 1, "{problems_now:?}");
    assert!(
        problems_now[0].starts_with("shard 1/3: no marker"),
        "{problems_now:?}"
    );

    write(&lake, A, 1).unwrap();
    let file = &written.marker.file.key;
    lake.store()
        .put(file, b"not parquet", PutMode::Overwrite)
        .unwrap();
    let problems_now = problems(read_shards(&lake, &expected(A), N));
    assert_eq!(problems_now.len(), 1, "{problems_now:?}");
    assert!(
        problems_now[0].starts_with("shard 2/3: ") && problems_now[0].contains("SHA-256"),
        "{problems_now:?}"
    );
    lake.store().delete(file).unwrap();
    let problems_now = problems(read_shards(&lake, &expected(A), N));
    assert!(problems_now[0].contains("missing"), "{problems_now:?}");
    // The retried shard repairs it.
    write(&lake, A, 2).unwrap();
    read_shards(&lake, &expected(A), N).unwrap();
}

#[test]
fn shards_of_another_champion_are_not_mixed_in() {
    let (_dir, lake) = lake();
    write(&lake, A, 0).unwrap();
    write(&lake, A, 1).unwrap();
    write(&lake, B, 2).unwrap();
    let for_a = problems(read_shards(&lake, &expected(A), N));
    assert_eq!(for_a.len(), 1, "{for_a:?}");
    assert!(
        for_a[0].starts_with("shard 2/3: no marker") && for_a[0].contains("another model"),
        "{for_a:?}"
    );
    let for_b = problems(read_shards(&lake, &expected(B), N));
    assert_eq!(for_b.len(), 2, "{for_b:?}");
    // A marker that disagrees with the run (here: the horizon) is refused.
    let mut wrong = expected(A);
    wrong.horizon_days = 7;
    write(&lake, A, 2).unwrap();
    let bad = problems(read_shards(&lake, &wrong, N));
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains("horizon 3"), "{bad:?}");
    read_shards(&lake, &expected(A), N).unwrap();
    let removed = remove_stale(&lake, "sales", day(), A).unwrap();
    assert_eq!(removed.len(), 2, "B's marker and file: {removed:?}");
    assert!(removed.iter().all(|k| k.contains(B)));
    read_shards(&lake, &expected(A), N).unwrap();
}

#[test]
fn a_frame_with_a_series_of_another_shard_is_refused() {
    let (_dir, lake) = lake();
    let mut whole = frame(A);
    let err = write_shard(&lake, "sales", A, day(), H, 0.8, Shard { k: 0, n: N }, &mut whole).unwrap_err();
    assert!(err.to_string().contains("is not in shard 0/3"), "{err}");
    assert!(lake.store().list("predictions/").unwrap().is_empty());
}

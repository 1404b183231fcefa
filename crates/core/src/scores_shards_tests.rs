//! Unit tests of the sharded-monitor intermediates on a local folder: the
//! shards' scored days, staged and fanned in, give back the unsharded
//! days exactly (rows in the same order); a rerun writes nothing; a
//! missing, stale, damaged or other-N shard is refused by name; one N's
//! shards are told apart by their file names.

use super::*;
use crate::storage::PutMode;

const N: u32 = 3;

fn lake() -> (tempfile::TempDir, Lake) {
    let (dir, store) = crate::storage::temp_store();
    (dir, Lake::new(store))
}

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, d).unwrap()
}

fn keys() -> Vec<String> {
    vec!["store".to_string()]
}

fn inputs(files: &str) -> Inputs {
    Inputs {
        predictions: vec![PredictionVersion {
            origin: date(20),
            model_sha256: "a".repeat(64),
            files: vec![files.to_string()],
        }],
        actuals: vec![ActualsVersion {
            day: date(21),
            files: vec!["sales/dt=2015-07-21/part-0.parquet".into()],
        }],
    }
}

/// Two target days of 20 series, forecast from two origins, as an
/// unsharded monitor scores them (rows by series, then origin).
fn whole() -> Vec<DayScores> {
    let mut stores: Vec<String> = (1..=20).map(|s| s.to_string()).collect();
    stores.sort();
    [21, 22]
        .into_iter()
        .map(|d| {
            let mut rows = Vec::new();
            for store in &stores {
                for origin in [date(19), date(20)] {
                    let value = store.parse::<f64>().unwrap();
                    rows.push(ScoreRow {
                        series: store.clone(),
                        keys: vec![store.clone()],
                        target_date: date(d),
                        origin,
                        horizon: (date(d) - origin).num_days() as u32,
                        forecast: value * 10.5,
                        lower: (d == 21).then_some(value),
                        upper: (d == 21).then_some(value * 20.0),
                        actual: value * 10.0,
                        open: store != "7",
                        model_sha256: "a".repeat(64),
                    });
                }
            }
            DayScores {
                day: date(d),
                origins: vec![date(19), date(20)],
                rows,
                without_actual: 3,
            }
        })
        .collect()
}

/// Shard k's share of `whole()`: its series' rows, k of the forecasts
/// without an actual.
fn share(k: u32) -> Vec<DayScores> {
    let shard = Shard { k, n: N };
    whole()
        .into_iter()
        .map(|d| DayScores {
            rows: d.rows.into_iter().filter(|r| shard.holds(&r.keys)).collect(),
            without_actual: k as usize,
            ..d
        })
        .collect()
}

fn write(lake: &Lake, k: u32, inputs: &Inputs) -> Result<ScoresShardWritten, ScoresShardsError> {
    let expected = Expected {
        model: "sales",
        date: date(22),
        horizon_days: 14,
        inputs,
    };
    write_shard(lake, &expected, Shard { k, n: N }, &keys(), &share(k))
}

fn read(lake: &Lake, n: u32, inputs: &Inputs) -> Result<Vec<DayScores>, ScoresShardsError> {
    let expected = Expected {
        model: "sales",
        date: date(22),
        horizon_days: 14,
        inputs,
    };
    read_shards(lake, &expected, &keys(), n)
}

fn problems(result: Result<Vec<DayScores>, ScoresShardsError>) -> Vec<String> {
    match result {
        Err(ScoresShardsError::Incomplete { problems, .. }) => problems,
        other => panic!("expected Incomplete, got {other:?}"),
    }
}

#[test]
fn shards_fan_in_to_the_unsharded_days() {
    let (_dir, lake) = lake();
    let now = inputs("x");
    for k in 0..N {
        let written = write(&lake, k, &now).unwrap();
        assert_eq!(written.outcome, WriteOutcome::Written);
        assert!(written.marker.rows > 0, "shard {k} has rows");
    }
    assert_eq!(read(&lake, N, &now).unwrap(), whole());
    // A rerun finds its file and marker.
    assert_eq!(write(&lake, 1, &now).unwrap().outcome, WriteOutcome::Unchanged);
    let other_n = remove_staged(&lake, "sales", date(22), Some(N + 1)).unwrap();
    assert_eq!(other_n, Vec::<String>::new(), "only the shards of that N");
    let removed = remove_staged(&lake, "sales", date(22), Some(N)).unwrap();
    assert_eq!(removed.len(), 6);
    assert!(
        removed[..3].iter().all(|k| k.ends_with(".json")),
        "markers first: {removed:?}"
    );
    assert!(
        lake.store()
            .list(&shards_prefix("sales", date(22)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn missing_stale_damaged_and_other_n_shards_are_refused_by_name() {
    let (_dir, lake) = lake();
    let now = inputs("x");
    write(&lake, 0, &now).unwrap();
    write(&lake, 2, &inputs("older")).unwrap();
    let found = problems(read(&lake, N, &now));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("shard 1/3: no marker"), "{found:?}");
    assert!(
        found[1].starts_with("shard 2/3: ")
            && found[1].contains("stale: it scored other forecasts made on 2015-07-20"),
        "{found:?}"
    );
    let text = ScoresShardsError::Incomplete {
        date: date(22),
        n: N,
        problems: found,
    }
    .to_string();
    assert!(
        text.starts_with("cannot fan in the 3 monitor shards of 2015-07-22: shard 1/3"),
        "{text}"
    );

    let written = write(&lake, 1, &now).unwrap();
    write(&lake, 2, &now).unwrap();
    lake.store()
        .put(&written.marker.file.key, b"damaged", PutMode::Overwrite)
        .unwrap();
    let found = problems(read(&lake, N, &now));
    assert!(found.len() == 1 && found[0].contains("SHA-256"), "{found:?}");
    assert_eq!(write(&lake, 1, &now).unwrap().outcome, WriteOutcome::Replaced);
    assert_eq!(read(&lake, N, &now).unwrap(), whole());

    // Another N: none of its shards, and the staged ones of N = 3 named.
    let found = problems(read(&lake, 2, &now));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[2].contains("shard-0-of-3.json"), "{found:?}");
}

#[test]
fn a_retry_removes_its_own_n_by_file_name_whatever_the_model_is_called() {
    let (_dir, lake) = lake();
    // A model whose name holds `-of-3-`: only the file names count.
    let (model, day) = ("promo-of-3-stores", date(22));
    let prefix = shards_prefix(model, day);
    let names = [
        "shard-0-of-3.json",
        "part-0-of-3-0123456789abcdef.parquet",
        "shard-0-of-2.json",
        "part-0-of-2-fedcba9876543210.parquet",
        COMMITTED_RECORD,
    ];
    for name in names {
        let key = format!("{prefix}{name}");
        lake.store().put(&key, b"x", PutMode::Overwrite).unwrap();
    }
    let removed = |only| -> Vec<String> {
        let keys = remove_staged(&lake, model, day, only).unwrap();
        keys.iter().map(|k| k[prefix.len()..].to_string()).collect()
    };
    // N = 3 first: every key holds `-of-3-` in the model's folder name.
    assert_eq!(removed(Some(3)), [names[0], names[1]], "markers first");
    assert_eq!(removed(Some(2)), [names[2], names[3]]);
    assert_eq!(removed(None), Vec::<String>::new(), "the record stays");
}

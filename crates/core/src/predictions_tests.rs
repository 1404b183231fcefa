//! Unit tests of the forecast partitions on a local folder: round trip, byte-identical
//! rerun, replacement by a new champion, a crashed write skipped and cleaned, tampered
//! files, and frames off the schema refused naming the column.

use super::*;

fn lake() -> (tempfile::TempDir, Lake) {
    let (dir, store) = crate::storage::temp_store();
    (dir, Lake::new(store))
}

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const H: u32 = 14;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, 31).unwrap()
}

/// 3 series (keys store, dept) x H horizons, sorted, with the exact schema.
fn frame(sha: &str, day: NaiveDate) -> DataFrame {
    let mut cols: [Vec<String>; 3] = Default::default();
    let (mut dates, mut horizons, mut forecast, mut lower, mut planned) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (store, dept) in [("1", "a"), ("1", "b"), ("2", "a")] {
        for h in 1..=H as i32 {
            cols[0].push(format!("{store}/{dept}"));
            cols[1].push(store.into());
            cols[2].push(dept.into());
            dates.push(days_from_date(day) + h);
            horizons.push(h);
            forecast.push(100.0 + f64::from(h));
            lower.push((h != 3).then_some(90.0));
            planned.push(h > 7);
        }
    }
    let n = dates.len();
    let upper: Vec<Option<f64>> = lower.iter().map(|l| l.map(|v| v + 20.0)).collect();
    let date = |name: &str, v: Vec<i32>| Column::new(name.into(), v).cast(&DataType::Date).unwrap();
    DataFrame::new_infer_height(vec![
        Column::new("series".into(), &cols[0]),
        Column::new("store".into(), &cols[1]),
        Column::new("dept".into(), &cols[2]),
        date("target_date", dates),
        Column::new("horizon".into(), horizons),
        Column::new("forecast".into(), forecast),
        Column::new("lower".into(), lower),
        Column::new("upper".into(), upper),
        Column::new("model_sha256".into(), vec![sha.to_string(); n]),
        date("data_day", vec![days_from_date(day); n]),
        Column::new("planned".into(), planned),
    ])
    .unwrap()
}

fn write(lake: &Lake, sha: &str, df: &mut DataFrame) -> Result<PredictionsWritten, PredictionsError> {
    write_predictions(lake, "sales", sha, day(), H, 0.8, df)
}

fn files(lake: &Lake, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let store = lake.store();
    let metas = store.list(prefix).unwrap();
    metas
        .into_iter()
        .map(|m| (m.key.clone(), store.get(&m.key).unwrap().bytes))
        .collect()
}

#[test]
fn a_partition_round_trips_and_a_rerun_writes_the_same_bytes() {
    let (_dir, lake) = lake();
    let original = frame(A, day());
    let written = write(&lake, A, &mut original.clone()).unwrap();
    assert_eq!(written.outcome, WriteOutcome::Written);
    assert_eq!(written.manifest.rows, 42);
    assert_eq!(
        written.manifest_key,
        "predictions/sales/dt=2015-07-31/_manifest.json"
    );
    let prefix = predictions_prefix("sales", day());
    let before = files(&lake, &prefix);
    assert_eq!(before.len(), 2, "one part file and the manifest");
    let (manifest, df) = read_predictions(&lake, "sales", day()).unwrap().unwrap();
    assert_eq!(manifest, written.manifest);
    assert!(df.equals_missing(&original), "{df}");

    let again = write(&lake, A, &mut original.clone()).unwrap();
    assert_eq!((again.outcome, again.removed.len()), (WriteOutcome::Unchanged, 0));
    assert_eq!(files(&lake, &prefix), before, "a rerun changes no byte");
    assert_eq!(list_prediction_days(&lake, "sales").unwrap(), vec![day()]);
}

#[test]
fn the_manifest_is_the_documented_json() {
    let (_dir, lake) = lake();
    let written = write(&lake, A, &mut frame(A, day())).unwrap();
    let text = String::from_utf8(lake.store().get(&written.manifest_key).unwrap().bytes).unwrap();
    let file = &written.manifest.files[0];
    let expected = format!(
        "{{\n  \"format\": 1,\n  \"model\": \"sales\",\n  \"model_sha256\": \"{A}\",\n  \
         \"data_day\": \"2015-07-31\",\n  \"horizon_days\": 14,\n  \"interval\": 0.8,\n  \"rows\": 42,\n  \
         \"files\": [\n    {{\n      \"key\": \"{}\",\n      \"sha256\": \"{}\",\n      \"bytes\": {}\n    }}\n  ],\n  \
         \"salescast\": \"{}\"\n}}\n",
        file.key,
        file.sha256,
        file.bytes,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(text, expected);
    assert!(
        file.key
            .ends_with(&format!("part-{}.parquet", &file.sha256[..16]))
    );
    let extra = text.replacen("\"format\": 1,", "\"format\": 1, \"at\": 0,", 1);
    lake.store()
        .put(&written.manifest_key, extra.as_bytes(), PutMode::Overwrite)
        .unwrap();
    let err = read_predictions(&lake, "sales", day()).unwrap_err().to_string();
    assert!(err.contains("unknown field `at`"), "{err}");
}

#[test]
fn a_new_champion_replaces_the_day_and_removes_the_old_file() {
    let (_dir, lake) = lake();
    let old = write(&lake, A, &mut frame(A, day())).unwrap();
    let new = write(&lake, B, &mut frame(B, day())).unwrap();
    assert_eq!(new.outcome, WriteOutcome::Replaced);
    assert_eq!(new.removed, vec![old.manifest.files[0].key.clone()]);
    let keys: Vec<String> = files(&lake, &predictions_prefix("sales", day()))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        keys,
        vec![new.manifest_key.clone(), new.manifest.files[0].key.clone()]
    );
    let (manifest, df) = read_predictions(&lake, "sales", day()).unwrap().unwrap();
    assert_eq!(manifest.model_sha256, B);
    assert!(df.equals_missing(&frame(B, day())));
}

#[test]
fn a_folder_without_manifest_is_skipped_and_cleaned_by_the_next_write() {
    let (_dir, lake) = lake();
    write(&lake, A, &mut frame(A, day())).unwrap();
    let crashed = day().succ_opt().unwrap();
    let mut orphan = frame(A, crashed);
    let bytes = encode_parquet(&mut orphan).unwrap();
    let orphan_key = format!(
        "{}part-0123456789abcdef.parquet",
        predictions_prefix("sales", crashed)
    );
    lake.store().put(&orphan_key, &bytes, PutMode::Create).unwrap();
    assert!(read_predictions(&lake, "sales", crashed).unwrap().is_none());
    assert_eq!(list_prediction_days(&lake, "sales").unwrap(), vec![day()]);
    assert!(list_prediction_days(&lake, "other").unwrap().is_empty());

    // A leftover beside a committed day is removed by a rerun, which writes nothing.
    let leftover = format!(
        "{}part-0123456789abcdef.parquet",
        predictions_prefix("sales", day())
    );
    lake.store().put(&leftover, &bytes, PutMode::Create).unwrap();
    let again = write(&lake, A, &mut frame(A, day())).unwrap();
    assert_eq!(
        (again.outcome, again.removed),
        (WriteOutcome::Unchanged, vec![leftover])
    );
}

#[test]
fn a_tampered_or_missing_part_file_is_an_error_naming_it() {
    let (_dir, lake) = lake();
    let written = write(&lake, A, &mut frame(A, day())).unwrap();
    let key = &written.manifest.files[0].key;
    let mut bytes = lake.store().get(key).unwrap().bytes;
    let last = bytes.len() / 2;
    bytes[last] ^= 0xff;
    lake.store().put(key, &bytes, PutMode::Overwrite).unwrap();
    let err = read_predictions(&lake, "sales", day()).unwrap_err();
    assert!(matches!(err, PredictionsError::Corrupt { .. }));
    assert!(
        err.to_string().contains(key.as_str()) && err.to_string().contains("SHA-256"),
        "{err}"
    );
    // A rerun repairs it.
    let again = write(&lake, A, &mut frame(A, day())).unwrap();
    assert_eq!(again.outcome, WriteOutcome::Replaced);
    assert!(read_predictions(&lake, "sales", day()).is_ok());

    lake.store().delete(key).unwrap();
    let err = read_predictions(&lake, "sales", day()).unwrap_err().to_string();
    assert!(err.contains(key.as_str()) && err.contains("missing"), "{err}");
}

fn frame_error_of(df: &mut DataFrame) -> (String, String) {
    let (_dir, lake) = lake();
    match write(&lake, A, df) {
        Err(PredictionsError::Frame { column, problem }) => {
            assert!(
                lake.store().list("predictions/").unwrap().is_empty(),
                "nothing written"
            );
            (column, problem)
        }
        other => panic!("expected a frame error, got {other:?}"),
    }
}

#[test]
fn a_frame_off_the_schema_is_refused_naming_the_column() {
    let good = frame(A, day());
    let mut df = good.drop("upper").unwrap();
    assert_eq!(frame_error_of(&mut df).0, "upper");
    let mut df = good.clone();
    df.with_column(Column::new("horizon".into(), vec![1i64; 42]))
        .unwrap();
    let (column, problem) = frame_error_of(&mut df);
    assert_eq!(
        (column.as_str(), problem.contains("expected i32")),
        ("horizon", true),
        "{problem}"
    );
    let mut df = good
        .select(["series", "store", "dept", "horizon", "target_date"])
        .unwrap();
    df.hstack_mut(
        good.select([
            "forecast",
            "lower",
            "upper",
            "model_sha256",
            "data_day",
            "planned",
        ])
        .unwrap()
        .columns(),
    )
    .unwrap();
    assert!(
        frame_error_of(&mut df)
            .1
            .contains("expected series, <series keys>, target_date")
    );
    let mut df = good.clone();
    df.with_column(Column::new("store".into(), vec![1i32; 42]))
        .unwrap();
    assert_eq!(frame_error_of(&mut df).0, "store");
    let mut df = good.clone();
    df.with_column(Column::new("forecast".into(), vec![None::<f64>; 42]))
        .unwrap();
    assert_eq!(frame_error_of(&mut df).0, "forecast");
}

#[test]
fn a_frame_with_inconsistent_values_is_refused_naming_the_column() {
    assert_eq!(frame_error_of(&mut frame(B, day())).0, "model_sha256");
    assert_eq!(
        frame_error_of(&mut frame(A, day().pred_opt().unwrap())).0,
        "data_day"
    );
    let good = frame(A, day());
    let mut df = good.clone();
    df.with_column(Column::new("series".into(), vec!["x"; 42]))
        .unwrap();
    assert_eq!(frame_error_of(&mut df).0, "series");
    let mut df = good.sort(["target_date"], Default::default()).unwrap();
    assert!(frame_error_of(&mut df).1.contains("strictly ordered"));
    let (column, problem) = frame_error_of(&mut good.clone().vstack(&good).unwrap());
    assert_eq!(column, "series", "{problem}");
    let mut short = good.slice(0, 14);
    let ok = write_predictions(&lake().1, "sales", A, day(), H - 1, 0.8, &mut short);
    assert!(matches!(ok, Err(PredictionsError::Frame { column, .. }) if column == "horizon"));
    let mut df = good.clone();
    df.with_column(Column::new("upper".into(), vec![Some(1.0); 42]))
        .unwrap();
    assert_eq!(frame_error_of(&mut df).0, "lower");
}

#[test]
fn arguments_are_checked() {
    let (_dir, lake) = lake();
    for (model, sha, interval) in [
        ("a/b", A, 0.8),
        ("", A, 0.8),
        (".x", A, 0.8),
        ("m", "abc", 0.8),
        ("m", A, 1.0),
    ] {
        let err = write_predictions(&lake, model, sha, day(), H, interval, &mut frame(A, day()));
        assert!(
            matches!(err, Err(PredictionsError::Argument { .. })),
            "{model:?} {sha} {interval}: {err:?}"
        );
    }
    assert!(read_predictions(&lake, "../x", day()).is_err());
    assert!(list_prediction_days(&lake, "a/b").is_err());
}

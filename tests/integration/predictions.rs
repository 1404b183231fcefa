//! The forecast partitions on every backend (a local folder, and S3 on the
//! local server), through the library calls `predict` makes: a frame with the
//! exact schema round-trips, a rerun stores the same bytes, a write that
//! crashed before its manifest is skipped, a tampered part file is refused
//! naming its key, and pyarrow (a real client, reading the folder as Athena
//! does) sees the documented columns and types.

use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;
use salescast_core::lake::{Lake, WriteOutcome, encode_parquet};
use salescast_core::predictions::{
    PredictionsError, list_prediction_days, predictions_prefix, read_predictions, write_predictions,
};
use salescast_core::storage::{self, LocalStore, PutMode, S3Settings, Store};

use crate::retrain::Backend;
use crate::util::{handle, on_every_backend, python, s3_bucket, s3_endpoint, tempdir};

on_every_backend!(
    forecasts_round_trip_and_a_rerun_stores_the_same_bytes,
    a_write_without_manifest_is_skipped_by_readers,
    a_tampered_part_file_is_refused_naming_its_key,
    pyarrow_reads_the_partition_with_the_documented_types,
);

const MODEL: &str = "sales";
const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HORIZON: u32 = 14;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, 31).unwrap()
}

/// A lake on `backend`, its URI (for pyarrow), and what keeps it alive.
struct TestLake {
    lake: Lake,
    uri: String,
    _dir: tempfile::TempDir,
}

fn test_lake(backend: Backend) -> TestLake {
    let dir = tempdir();
    let (store, uri) = match backend {
        Backend::Local => {
            let root = dir.path().join("lake");
            let store = Store::new(Arc::new(LocalStore::new(&root)), handle().clone());
            (store, root.to_str().unwrap().to_string())
        }
        Backend::S3 => {
            let uri = format!("s3://{}/lake", s3_bucket("predictions"));
            let settings = S3Settings {
                endpoint: Some(s3_endpoint()),
                ..Default::default()
            };
            (storage::open(&uri, &settings, handle()).unwrap(), uri)
        }
    };
    TestLake {
        lake: Lake::new(store),
        uri,
        _dir: dir,
    }
}

/// 3 series (keys Store and Dept) x 14 horizons from `data_day`, in the
/// documented column order and types, sorted by series then target_date.
fn forecast_frame(data_day: NaiveDate) -> DataFrame {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let d = i32::try_from((data_day - epoch).num_days()).unwrap();
    let (mut series, mut stores, mut depts) = (vec![], vec![], vec![]);
    let (mut targets, mut horizons, mut forecasts, mut lower, mut upper, mut planned) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (store, dept) in [("1", "food"), ("1", "toys"), ("7", "food")] {
        for h in 1..=HORIZON as i32 {
            series.push(format!("{store}/{dept}"));
            stores.push(store.to_string());
            depts.push(dept.to_string());
            targets.push(d + h);
            horizons.push(h);
            forecasts.push(1000.0 + f64::from(h) * 3.5);
            // The second series has no calibration: null bounds.
            let calibrated = dept == "food";
            lower.push(calibrated.then(|| 900.0 + f64::from(h)));
            upper.push(calibrated.then(|| 1100.0 + f64::from(h) * 7.0));
            planned.push(h <= 7);
        }
    }
    let n = series.len();
    let dates = |name: &str, v: Vec<i32>| Column::new(name.into(), v).cast(&DataType::Date).unwrap();
    DataFrame::new_infer_height(vec![
        Column::new("series".into(), series),
        Column::new("Store".into(), stores),
        Column::new("Dept".into(), depts),
        dates("target_date", targets),
        Column::new("horizon".into(), horizons),
        Column::new("forecast".into(), forecasts),
        Column::new("lower".into(), lower),
        Column::new("upper".into(), upper),
        Column::new("model_sha256".into(), vec![SHA.to_string(); n]),
        dates("data_day", vec![d; n]),
        Column::new("planned".into(), planned),
    ])
    .unwrap()
}

fn write(lake: &Lake, data_day: NaiveDate) -> salescast_core::predictions::PredictionsWritten {
    write_predictions(
        lake,
        MODEL,
        SHA,
        data_day,
        HORIZON,
        0.8,
        &mut forecast_frame(data_day),
    )
    .unwrap()
}

/// Every stored object under `prefix`, with its bytes, sorted by key.
fn stored(lake: &Lake, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let store = lake.store();
    store
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|meta| {
            let bytes = store.get(&meta.key).unwrap().bytes;
            (meta.key, bytes)
        })
        .collect()
}

fn forecasts_round_trip_and_a_rerun_stores_the_same_bytes(backend: Backend) {
    let t = test_lake(backend);
    let first = write(&t.lake, day());
    assert_eq!(first.outcome, WriteOutcome::Written);
    assert_eq!((first.manifest.rows, first.manifest.files.len()), (42, 1));
    let before = stored(&t.lake, "predictions/");
    let keys: Vec<&str> = before.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "predictions/sales/dt=2015-07-31/_manifest.json",
            first.manifest.files[0].key.as_str()
        ]
    );
    assert!(
        first.manifest.files[0]
            .key
            .starts_with("predictions/sales/dt=2015-07-31/part-")
    );

    let (manifest, frame) = read_predictions(&t.lake, MODEL, day()).unwrap().unwrap();
    assert_eq!(manifest, first.manifest);
    assert!(
        frame.equals_missing(&forecast_frame(day())),
        "read back:\n{frame}"
    );

    let again = write(&t.lake, day());
    assert_eq!(again.outcome, WriteOutcome::Unchanged);
    assert!(again.removed.is_empty());
    assert_eq!(
        stored(&t.lake, "predictions/"),
        before,
        "a rerun stores the same bytes"
    );
    assert_eq!(list_prediction_days(&t.lake, MODEL).unwrap(), vec![day()]);
}

fn a_write_without_manifest_is_skipped_by_readers(backend: Backend) {
    let t = test_lake(backend);
    write(&t.lake, day());
    // A crash after the part file, before the manifest: the part file alone.
    let crashed = day().succ_opt().unwrap();
    let bytes = encode_parquet(&mut forecast_frame(crashed)).unwrap();
    let key = format!(
        "{}part-00000000deadbeef.parquet",
        predictions_prefix(MODEL, crashed)
    );
    t.lake.store().put(&key, &bytes, PutMode::Create).unwrap();

    assert!(read_predictions(&t.lake, MODEL, crashed).unwrap().is_none());
    assert_eq!(list_prediction_days(&t.lake, MODEL).unwrap(), vec![day()]);
    // Writing that day afterwards commits it and removes the orphan.
    let done = write(&t.lake, crashed);
    assert_eq!((done.outcome, done.removed), (WriteOutcome::Written, vec![key]));
    assert_eq!(
        list_prediction_days(&t.lake, MODEL).unwrap(),
        vec![day(), crashed]
    );
}

fn a_tampered_part_file_is_refused_naming_its_key(backend: Backend) {
    let t = test_lake(backend);
    let written = write(&t.lake, day());
    let key = &written.manifest.files[0].key;
    let mut bytes = t.lake.store().get(key).unwrap().bytes;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    t.lake.store().put(key, &bytes, PutMode::Overwrite).unwrap();

    let err = read_predictions(&t.lake, MODEL, day()).unwrap_err();
    assert!(matches!(err, PredictionsError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&t.lake.store().uri_of(key)) && message.contains("SHA-256"),
        "{message}"
    );
}

const PYARROW_READ: &str = r#"
import json, sys
import pyarrow.dataset as ds, pyarrow.fs as fs, pyarrow.parquet as pq
uri, endpoint, manifest_key = sys.argv[1], sys.argv[2], sys.argv[3]
if uri.startswith("s3://"):
    filesystem = fs.S3FileSystem(endpoint_override=endpoint, region="us-east-1")
    root = uri[len("s3://"):]
else:
    filesystem = fs.LocalFileSystem()
    root = uri
with filesystem.open_input_stream(root + "/" + manifest_key) as f:
    manifest = json.load(f)
part = pq.read_table(root + "/" + manifest["files"][0]["key"], filesystem=filesystem)
# The whole folder as Athena reads it: hive partitions, _manifest.json skipped.
folder = ds.dataset(root + "/predictions/sales", filesystem=filesystem, format="parquet", partitioning="hive")
table = folder.to_table()
print(json.dumps({
    "names": part.schema.names,
    "types": [str(t) for t in part.schema.types],
    "physical": [c.physical_type + ":" + str(c.logical_type) for c in pq.ParquetFile(
        filesystem.open_input_file(root + "/" + manifest["files"][0]["key"])).schema],
    "rows": part.num_rows,
    "folder_rows": table.num_rows,
    "folder_dt": sorted(set(str(v) for v in table.column("dt").to_pylist())),
    "nulls": part.column("lower").null_count,
    "horizons": sorted(set(part.column("horizon").to_pylist())),
    "manifest_rows": manifest["rows"],
}))
"#;

fn pyarrow_reads_the_partition_with_the_documented_types(backend: Backend) {
    let t = test_lake(backend);
    let written = write(&t.lake, day());
    let endpoint = match backend {
        Backend::Local => String::new(),
        Backend::S3 => s3_endpoint(),
    };
    let out = python(PYARROW_READ, &[&t.uri, &endpoint, &written.manifest_key]);
    let seen: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        seen["names"],
        serde_json::json!([
            "series",
            "Store",
            "Dept",
            "target_date",
            "horizon",
            "forecast",
            "lower",
            "upper",
            "model_sha256",
            "data_day",
            "planned"
        ])
    );
    // Polars records its strings as Arrow string views, which pyarrow reads
    // as `string_view`; any of the three Arrow string types is a string.
    let types: Vec<String> = seen["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            if ["large_string", "string_view"].contains(&t) {
                "string"
            } else {
                t
            }
            .to_string()
        })
        .collect();
    let (text, date) = ("string", "date32[day]");
    assert_eq!(
        types,
        [
            text, text, text, date, "int32", "double", "double", "double", text, date, "bool"
        ]
    );
    // What Athena and DuckDB see: the Parquet types themselves.
    let (text, date) = ("BYTE_ARRAY:String", "INT32:Date");
    let (int, double) = ("INT32:None", "DOUBLE:None");
    assert_eq!(
        seen["physical"],
        serde_json::json!([
            text,
            text,
            text,
            date,
            int,
            double,
            double,
            double,
            text,
            date,
            "BOOLEAN:None"
        ])
    );
    assert_eq!(
        (seen["rows"].as_u64(), seen["manifest_rows"].as_u64()),
        (Some(42), Some(42))
    );
    assert_eq!(
        seen["folder_rows"], 42,
        "Athena's view of the folder: one part file"
    );
    assert_eq!(seen["folder_dt"], serde_json::json!(["2015-07-31"]));
    assert_eq!(seen["nulls"], 14, "the uncalibrated series has null bounds");
    assert_eq!(seen["horizons"], serde_json::json!((1..=14).collect::<Vec<_>>()));
}

//! Inputs from the raw zone: point-of-sale events in newline-delimited JSON
//! (plain and gzip, as Kinesis Data Firehose writes them) summed per day and
//! store (`data.aggregate = "sum"`) into the same partitions as the day-level
//! rossmann CSV, and `s3://` inputs (one object, every object under a prefix)
//! on the local S3 server.

use std::path::{Path, PathBuf};

use crate::plans::{day, train_rows};
use crate::util::{
    Cli, Outcome, python, relative_snapshot, repo_file, run_cmd, s, s3_bucket, s3_endpoint, snapshot, tempdir,
};

/// The rossmann example config, with `data.aggregate = "sum"` when `sum`.
fn config(dir: &Path, sum: bool) -> PathBuf {
    let text = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
    let text = if sum { crate::util::summing(&text) } else { text };
    let path = dir.join(if sum { "events.toml" } else { "days.toml" });
    std::fs::write(&path, text).unwrap();
    path
}

const DAYS: [&str; 3] = ["2015-07-29", "2015-07-30", "2015-07-31"];

/// The rossmann rows of [`DAYS`] for six stores, as cells by column name.
fn day_rows() -> Vec<std::collections::BTreeMap<String, String>> {
    let (header, rows) = train_rows();
    let stores = ["11", "32", "45", "52", "57", "71"];
    let rows: Vec<_> = rows
        .into_iter()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r)
                .collect::<std::collections::BTreeMap<_, _>>()
        })
        .filter(|r| DAYS.contains(&r["Date"].as_str()) && stores.contains(&r["Store"].as_str()))
        .collect();
    assert_eq!(rows.len(), 18, "every chosen store sold on every chosen day");
    rows
}

/// The day-level CSV of [`day_rows`], in the lake's column order.
fn write_day_csv(dir: &Path) -> PathBuf {
    let columns = [
        "Date",
        "Store",
        "Sales",
        "Promo",
        "StateHoliday",
        "SchoolHoliday",
        "Open",
    ];
    let mut text = columns.join(",") + "\n";
    for row in day_rows() {
        text += &(columns
            .iter()
            .map(|c| row[*c].as_str())
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    let path = dir.join("days.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Each day-level row as three sales events at different times of its UTC
/// day (one written with a -01:00 offset the evening before), their sales
/// adding up to the row's; numbers as JSON numbers, the holiday as text.
fn events() -> Vec<String> {
    let mut out = Vec::new();
    for (n, row) in day_rows().iter().enumerate() {
        let sales: u64 = row["Sales"].parse().unwrap();
        let parts = [sales / 3, sales / 3, sales - 2 * (sales / 3)];
        let d = day(&row["Date"]);
        let times = [
            format!("{d}T08:15:00Z"),
            format!("{d} 12:30:05"),
            format!("{}T23:30:00-01:00", d.pred_opt().unwrap()),
        ];
        for (k, (part, at)) in parts.iter().zip(times).enumerate() {
            out.push(format!(
                r#"{{"event_id":"e{n}-{k}","Date":"{at}","Store":{},"Sales":{part},"Promo":{},"StateHoliday":"{}","SchoolHoliday":{},"Open":{},"till":{k}}}"#,
                row["Store"], row["Promo"], row["StateHoliday"], row["SchoolHoliday"], row["Open"]
            ));
        }
    }
    out.reverse();
    out
}

/// The events in two files: NDJSON (with a blank line and two records on
/// one line, as Firehose concatenates them) and gzip-compressed NDJSON.
fn write_events(dir: &Path) -> (PathBuf, PathBuf) {
    let all = events();
    let (first, second) = all.split_at(all.len() / 2);
    let mut text = String::new();
    for (i, record) in first.iter().enumerate() {
        text += record;
        text += if i == 3 { "" } else { "\n" };
        if i == 5 {
            text += "\n";
        }
    }
    let plain = dir.join("events-1.ndjson");
    std::fs::write(&plain, text).unwrap();
    let unzipped = dir.join("events-2.jsonl");
    std::fs::write(&unzipped, second.join("\n") + "\n").unwrap();
    let gz = dir.join("events-2.jsonl.gz");
    python(
        "import gzip, sys; open(sys.argv[2], 'wb').write(gzip.compress(open(sys.argv[1], 'rb').read()))",
        &[s(&unzipped), s(&gz)],
    );
    std::fs::remove_file(&unzipped).unwrap();
    (plain, gz)
}

/// The sales partitions of a lake: relative paths and bytes.
fn sales_of(lake: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    relative_snapshot(lake, "sales")
}

#[test]
fn summed_json_events_give_the_partitions_of_the_day_level_csv() {
    let dir = tempdir();
    let (days_lake, events_lake) = (dir.path().join("days"), dir.path().join("events"));
    let csv = write_day_csv(dir.path());
    Cli::new(&config(dir.path(), false), s(&days_lake))
        .run(dir.path(), &["ingest", "--input", s(&csv)])
        .expect_code(0);
    let (plain, gz) = write_events(dir.path());
    let events_cli = Cli::new(&config(dir.path(), true), s(&events_lake)).json();
    let out = events_cli
        .run(dir.path(), &["ingest", "--input", s(&plain), "--input", s(&gz)])
        .expect_code(0);
    assert_eq!(out.json()["events"], 54);
    assert_eq!(out.json()["rows"], 18);
    assert_eq!(out.json()["days"]["written"], 3);
    let expected = sales_of(&days_lake);
    assert_eq!(expected.len(), 3);
    assert_eq!(sales_of(&events_lake), expected, "same partitions, byte for byte");

    // Again, and in the other order: the same bytes, reported unchanged.
    let again = events_cli
        .run(dir.path(), &["ingest", "--input", s(&gz), "--input", s(&plain)])
        .expect_code(0);
    assert_eq!(again.json()["days"]["unchanged"], 3);
    assert_eq!(sales_of(&events_lake), expected);
}

#[test]
fn events_that_disagree_or_do_not_parse_are_named() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let events_cli = Cli::new(&config(dir.path(), true), s(&lake));
    let (plain, _) = write_events(dir.path());
    let first: Vec<String> = std::fs::read_to_string(&plain)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let record = |i: usize| -> serde_json::Value { serde_json::from_str(&first[i]).unwrap() };
    let mut changed = record(0);
    let promo = changed["Promo"].as_u64().unwrap();
    changed["Promo"] = (1 - promo).into();
    let store = changed["Store"].to_string();
    let when = salescast_core::events::event_day(changed["Date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let flipped = dir.path().join("late.ndjson");
    std::fs::write(&flipped, format!("\n{changed}\n")).unwrap();
    let out = events_cli
        .run(
            dir.path(),
            &["ingest", "--input", s(&plain), "--input", s(&flipped)],
        )
        .expect_code(3);
    assert!(
        out.stderr
            .contains(&format!("{}, line 2, column \"Promo\"", s(&flipped)))
            && out.stderr.contains(&format!("day {when}, series Store={store}"))
            && out.stderr.contains(&format!("{}, line 1", s(&plain))),
        "{}",
        out.stderr
    );

    let with = |i: usize, key: &str, value: serde_json::Value| {
        let mut r = record(i);
        r[key] = value;
        r.to_string()
    };
    let cases = [
        (
            "broken.ndjson",
            format!("{}\n{{\"Date\": \n", first[1]),
            "broken.ndjson, line 3: not valid JSON".to_string(),
        ),
        (
            "when.ndjson",
            format!("{}\n{}\n", first[1], with(2, "Date", "31.07.2015 08:15".into())),
            "when.ndjson, line 2, column \"Date\": \"31.07.2015 08:15\" is not a timestamp".to_string(),
        ),
        (
            "negative.jsonl",
            with(1, "Sales", (-5).into()),
            "negative.jsonl, line 1, column \"Sales\": negative sales -5".to_string(),
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = events_cli
            .run(dir.path(), &["ingest", "--input", s(&path)])
            .expect_code(3);
        assert!(
            out.stderr.contains(&expected),
            "{name}: expected {expected:?} in:\n{}",
            out.stderr
        );
    }
    assert!(
        !lake.exists() || snapshot(&lake).is_empty(),
        "nothing was written"
    );

    // Without aggregate = "sum", events are duplicates of their day and store.
    let out = Cli::new(&config(dir.path(), false), s(&lake))
        .run(dir.path(), &["ingest", "--input", s(&plain)])
        .expect_code(3);
    assert!(out.stderr.contains("is not a date"), "{}", out.stderr);

    // An unknown aggregate is a configuration error.
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(config(dir.path(), true)).unwrap();
    std::fs::write(&bad, text.replace("aggregate = \"sum\"", "aggregate = \"mean\"")).unwrap();
    let out = Cli::new(&bad, s(&lake))
        .run(dir.path(), &["ingest", "--input", s(&plain)])
        .expect_code(2);
    assert!(
        out.stderr.contains("aggregate") && out.stderr.contains("mean") && out.stderr.contains("sum"),
        "{}",
        out.stderr
    );
}

/// Uploads local files (or, for `None`, an empty "folder" marker) to `bucket`.
fn upload(bucket: &str, objects: &[(&str, Option<&Path>)]) {
    let mut args = vec![s3_endpoint(), bucket.to_string()];
    for (key, path) in objects {
        args.push((*key).to_string());
        args.push(path.map_or(String::new(), |p| s(p).to_string()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(
        "import sys, boto3\nc = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')\nfor k, p in zip(sys.argv[3::2], sys.argv[4::2]):\n    c.put_object(Bucket=sys.argv[2], Key=k, Body=open(p, 'rb').read() if p else b'')",
        &args,
    );
}

#[test]
fn s3_objects_and_prefixes_are_read_through_the_storage_layer() {
    let dir = tempdir();
    let bucket = s3_bucket("raw");
    let csv = write_day_csv(dir.path());
    let (plain, gz) = write_events(dir.path());
    upload(
        &bucket,
        &[
            ("pos/dt=2015-07-31/", None),
            ("pos/dt=2015-07-31/b-events.jsonl.gz", Some(&gz)),
            ("pos/dt=2015-07-31/a-events.ndjson", Some(&plain)),
            ("pos/dt=2015-07-310/other.csv", Some(&csv)),
            ("exports/days.csv", Some(&csv)),
        ],
    );
    let endpoint = vec!["--s3-endpoint".to_string(), s3_endpoint()];
    let local = dir.path().join("local");
    Cli::new(&config(dir.path(), false), s(&local))
        .run(dir.path(), &["ingest", "--input", s(&csv)])
        .expect_code(0);

    // Every object under the prefix (the marker skipped, a sibling prefix not read).
    let from_prefix = dir.path().join("from_prefix");
    let prefix = format!("s3://{bucket}/pos/dt=2015-07-31/");
    let out = Cli::new(&config(dir.path(), true), s(&from_prefix))
        .json()
        .flags(&endpoint)
        .run(dir.path(), &["ingest", "--input", &prefix])
        .expect_code(0);
    assert_eq!(out.json()["files"], 2);
    assert_eq!(out.json()["events"], 54);
    assert_eq!(sales_of(&from_prefix), sales_of(&local));

    // One object, with the endpoint from AWS_ENDPOINT_URL.
    let from_object = dir.path().join("from_object");
    let object = format!("s3://{bucket}/exports/days.csv");
    let mut cmd = Cli::new(&config(dir.path(), false), s(&from_object))
        .json()
        .command(dir.path(), &["ingest", "--input", &object]);
    cmd.env("AWS_ENDPOINT_URL", s3_endpoint());
    let out: Outcome = run_cmd(&mut cmd).expect_code(0);
    assert_eq!(out.json()["files"], 1);
    assert_eq!(sales_of(&from_object), sales_of(&local));

    // A plan from S3 too.
    let plan = dir.path().join("plan.csv");
    std::fs::write(
        &plan,
        "Store,Date,Open,Promo,StateHoliday,SchoolHoliday\n11,2015-08-01,1,1,0,0\n",
    )
    .unwrap();
    upload(&bucket, &[("plans/next.csv", Some(&plan))]);
    let out = Cli::new(&config(dir.path(), false), s(&from_object))
        .json()
        .flags(&endpoint)
        .run(
            dir.path(),
            &["ingest", "--plan", &format!("s3://{bucket}/plans/next.csv")],
        )
        .expect_code(0);
    assert_eq!(out.json()["plans"]["days"]["written"], 1);
    assert_eq!(snapshot(&from_object.join("plans/dt=2015-08-01")).len(), 1);

    // A missing object and an empty prefix are data errors naming the URI.
    let missing = format!("s3://{bucket}/exports/days-2015-08-01.csv");
    let out = Cli::new(&config(dir.path(), false), s(&from_object))
        .flags(&endpoint)
        .run(dir.path(), &["ingest", "--input", &missing])
        .expect_code(3);
    assert!(
        out.stderr.contains(&format!("{missing}: no such object")),
        "{}",
        out.stderr
    );
    let empty = format!("s3://{bucket}/pos/dt=2015-08-01/");
    let out = Cli::new(&config(dir.path(), false), s(&from_object))
        .flags(&endpoint)
        .run(dir.path(), &["ingest", "--input", &empty])
        .expect_code(3);
    assert!(
        out.stderr
            .contains(&format!("{empty}: no objects under this prefix")),
        "{}",
        out.stderr
    );
}

#[test]
fn every_bad_object_under_a_prefix_is_named_in_one_error() {
    let dir = tempdir();
    let bucket = s3_bucket("raw");
    let csv = write_day_csv(dir.path());
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "Date,Store,Sales,Promo,StateHoliday,SchoolHoliday,Open\n2015-08-01,11,-5,0,0,0,1\n",
    )
    .unwrap();
    upload(
        &bucket,
        &[
            ("drop/a-days.csv", Some(&csv)),
            ("drop/b-bad.csv", Some(&bad)),
            ("drop/c-notes.txt", Some(&csv)),
        ],
    );
    let lake = dir.path().join("lake");
    let prefix = format!("s3://{bucket}/drop/");
    let out = Cli::new(&config(dir.path(), false), s(&lake))
        .flags(&["--s3-endpoint".to_string(), s3_endpoint()])
        .run(dir.path(), &["ingest", "--input", &prefix])
        .expect_code(3);
    for line in [
        "2 of 3 input files: refused, the first problem of each:".to_string(),
        format!("  - {prefix}b-bad.csv, line 2, column \"Sales\": negative sales"),
        format!("  - {prefix}c-notes.txt: unsupported file type"),
    ] {
        assert!(out.stderr.contains(&line), "{line:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains("a-days.csv"), "{}", out.stderr);
    assert!(!lake.join("sales").exists(), "nothing reached the lake");
}

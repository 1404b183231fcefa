//! The whole daily pipeline on the local S3 server: the buildspec's own lines
//! run ingest of the day's raw files (RAW_INPUT), monitor, and retrain with
//! predict in one process (`retrain --predict`), and the
//! first failing step ends the job with its exit code; the IAM policy of
//! `pipelines/salescast.yml` grants exactly the S3 actions, bucket by bucket
//! and prefix by prefix, that the requests of the job's runs need (read off
//! the S3 server's request log); and the template's Glue tables declare the
//! columns of the Parquet files the runs wrote.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::emf::{emf_documents, structure_problems};
use crate::lake_objects::{assert_glue_columns, bucket_and_prefix, get_object, lake_keys, s3_python};
use crate::pipelines::{DailyJob, aws, yaml};
use crate::retrain::{Backend, Place};
use crate::util::{LINEAR, python, repo_file, s, s3_bucket, shared_data};

/// A copy of the shared rossmann lake (sales up to 2015-07-31, the store
/// table) at the root of a new bucket, as the template's lake bucket is: for
/// runs that write into the lake.
pub(crate) fn fresh_s3_lake() -> String {
    let lake = format!("s3://{}", s3_bucket("lake"));
    let shared = Place::new(Backend::S3).lake;
    aws(&["s3", "sync", "--only-show-errors", &shared, &lake]);
    lake
}

/// The predictions manifest of data day `day` in `lake` (any model), which
/// must exist.
pub(crate) fn manifest_of(lake: &str, day: &str) -> Value {
    let keys = lake_keys(lake);
    let key = keys
        .iter()
        .find(|k| k.starts_with("predictions/") && k.ends_with(&format!("/dt={day}/_manifest.json")))
        .unwrap_or_else(|| panic!("no predictions/<model>/dt={day}/_manifest.json in the lake: {keys:?}"));
    let manifest: Value = serde_json::from_slice(&get_object(lake, key)).unwrap();
    assert_eq!(manifest["data_day"], day, "{manifest}");
    assert!(manifest["rows"].as_u64().unwrap_or(0) > 0, "{manifest}");
    manifest
}

/// The rows of rossmann's `like` day (train.csv) dated `day` instead, as CSV,
/// written to `s3://RAW/pos/dt=DAY/part-0000.csv`; `sales` replaces every
/// Sales value when given (a malformed export).
pub(crate) fn raw_day(raw: &str, like: &str, day: &str, sales: Option<&str>) {
    s3_python(
        "import csv, io
rows = [r for r in csv.DictReader(open(args[1], newline='')) if r['Date'] == args[2]]
assert rows, 'no rows on ' + args[2]
out = io.StringIO()
w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator='\\n')
w.writeheader()
for r in rows:
    r['Date'] = args[3]
    if args[4]: r['Sales'] = args[4]
    w.writerow(r)
s3.put_object(Bucket=args[0], Key='pos/dt=' + args[3] + '/part-0000.csv', Body=out.getvalue().encode())",
        &[
            raw,
            s(&shared_data("rossmann/train.csv")),
            like,
            day,
            sales.unwrap_or(""),
        ],
    );
}

#[test]
fn the_glue_sales_table_declares_the_columns_of_the_lake() {
    let lake = Place::new(Backend::S3).lake;
    let key = lake_keys(&lake)
        .into_iter()
        .find(|k| k.starts_with("sales/dt=2015-07-31/part-"))
        .expect("the lake's last day");
    assert_glue_columns("SalesTable", &lake, &key);
}

#[test]
fn the_daily_pipeline_ingests_retrains_and_predicts_through_the_buildspec() {
    let mut job = DailyJob::on_lake(fresh_s3_lake());
    // The day after the lake's last (2015-07-31) lands in the raw zone, as
    // Firehose or an export would put it: a Saturday's rows, dated 2015-08-01.
    let raw = s3_bucket("raw");
    raw_day(&raw, "2015-07-25", "2015-08-01", None);
    job.env
        .push(("RAW_INPUT".into(), format!("s3://{raw}/pos/dt={{date}}/")));

    // The schedule's start: MODE is the buildspec's default (daily).
    let build = job
        .codebuild(&[("SCHEDULED_TIME", "2015-08-02T05:30:00Z")])
        .expect_code(0);
    let mut at = 0;
    for step in ["ingest", "monitor", "retrain-predict"] {
        let line = format!("daily-job: {step}: exit 0");
        let found = build.log[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("no {line:?} after the previous step:\n{}", build.log));
        at += found + line.len();
        assert!(
            build.reports.contains_key(&format!("{step}.md")),
            "{:?}",
            build.reports.keys()
        );
    }
    // One process retrains, then forecasts with the champion it left: its
    // report is the retrain's, then predict's.
    let retrain = &build.reports["retrain-predict.md"];
    assert!(
        retrain.starts_with("# salescast retrain 2015-08-01: promoted"),
        "{retrain}"
    );
    let predict_at = retrain
        .find("\nmodel sales (champion ")
        .unwrap_or_else(|| panic!("no predict report after the retrain's:\n{retrain}"));
    assert!(
        retrain[predict_at..].contains("forecast 100 series for 14 days after 2015-08-01"),
        "{retrain}"
    );
    // Each step wrote its CloudWatch metrics (EMF, on by default in CodeBuild).
    let metrics = emf_documents(&build.log);
    let commands: Vec<&Value> = metrics.iter().map(|d| &d["Command"]).collect();
    assert_eq!(
        commands,
        ["ingest", "monitor", "retrain", "predict"],
        "{}",
        build.log
    );
    for doc in &metrics {
        assert_eq!(structure_problems(doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["Succeeded"], 1.0, "{doc:#}");
    }
    assert_eq!(metrics[2]["Promoted"], 1.0);
    let report = build.report.unwrap();
    let whole = [&build.reports["ingest.md"], &build.reports["monitor.md"], retrain]
        .map(|r| r.as_str())
        .concat();
    assert_eq!(report, whole, "report.md holds the steps' reports in order");
    // Retrain's charts sit beside the reports (the build's artifact), the
    // same bytes as in the registry's run folder, so every link resolves.
    let charts: Vec<&str> = retrain
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split_once("](")?.1.strip_suffix(')'))
        .collect();
    assert!(charts.contains(&"wape-by-horizon.svg"), "{retrain}");
    assert!(
        charts.len() >= 4,
        "three forecast charts and WAPE by horizon: {charts:?}"
    );
    for name in charts {
        let local = build
            .reports
            .get(name)
            .unwrap_or_else(|| panic!("{name} is linked but not in the report folder"));
        assert!(
            local.contains("<svg") && local.contains("</svg>"),
            "{name}: {local}"
        );
        let stored = aws(&[
            "s3",
            "cp",
            &format!("{}/sales/runs/2015-08-01/{name}", job.place.registry),
            "-",
        ]);
        assert_eq!(local, &stored, "{name}");
    }

    // The lake holds the new day, and the forecasts made from it by the champion.
    let keys = lake_keys(&job.place.lake);
    let day_file = keys
        .iter()
        .find(|k| k.starts_with("sales/dt=2015-08-01/part-") && k.ends_with(".parquet"))
        .unwrap_or_else(|| panic!("ingest wrote no sales/dt=2015-08-01/ partition: {keys:?}"));
    let manifest = manifest_of(&job.place.lake, "2015-08-01");
    assert_eq!(manifest["model_sha256"].as_str(), Some(job.champion().as_str()));
    let part = manifest["files"][0]["key"]
        .as_str()
        .expect("the manifest lists its files");

    // Athena's tables declare the columns of what the runs wrote.
    assert_glue_columns("SalesTable", &job.place.lake, day_file);
    assert_glue_columns("PredictionsTable", &job.place.lake, part);
}

#[test]
fn a_failing_step_stops_the_daily_job_with_its_exit_code() {
    let mut job = DailyJob::on_lake(fresh_s3_lake());

    // monitor fails (no actuals for the day: exit 3); retrain and predict do not run.
    let build = job.codebuild(&[("RUN_DATE", "2015-09-30")]).expect_code(3);
    assert!(build.log.contains("daily-job: monitor: exit 3"), "{}", build.log);
    let failed: Vec<Value> = emf_documents(&build.log)
        .into_iter()
        .filter(|d| d.get("Failed").is_some())
        .collect();
    assert_eq!(failed.len(), 1, "{}", build.log);
    assert_eq!(
        (&failed[0]["Command"], &failed[0]["ExitCode"]),
        (&json!("monitor"), &json!(3))
    );
    assert!(
        build
            .log
            .contains("daily-job: stopped: monitor failed with exit 3"),
        "{}",
        build.log
    );
    assert!(
        build.log.contains("missing partition for 2015-09-30"),
        "{}",
        build.log
    );
    // Nor retrain-predict, the day's retrain and predict.
    assert!(!build.log.contains("daily-job: retrain"), "{}", build.log);
    let names: Vec<&String> = build.reports.keys().collect();
    assert_eq!(
        names,
        ["monitor.md", "report.md"],
        "no ingest without RAW_INPUT, no retrain, no predict"
    );

    // ingest fails on a malformed export (exit 3): nothing after it runs,
    // nothing is written.
    let raw = s3_bucket("raw");
    raw_day(&raw, "2015-07-25", "2015-08-01", Some("lots"));
    job.env
        .push(("RAW_INPUT".into(), format!("s3://{raw}/pos/dt={{date}}/")));
    let build = job.codebuild(&[("RUN_DATE", "2015-08-01")]).expect_code(3);
    assert!(build.log.contains("daily-job: ingest: exit 3"), "{}", build.log);
    assert!(
        build
            .log
            .contains("daily-job: stopped: ingest failed with exit 3"),
        "{}",
        build.log
    );
    assert!(
        build.log.contains(r#""lots" is not a number"#),
        "ingest must have read the raw day and refused it:\n{}",
        build.log
    );
    assert!(!build.log.contains("daily-job: monitor"), "{}", build.log);
    assert!(!build.log.contains("daily-job: retrain"), "{}", build.log);
    assert!(
        !build.reports.contains_key("retrain-predict.md"),
        "{:?}",
        build.reports.keys()
    );
    assert!(job.decision_kinds().is_empty(), "no retrain ran");
    let keys = lake_keys(&job.place.lake);
    assert!(
        !keys.iter().any(|k| k.contains("dt=2015-08-01")),
        "a failed ingest wrote {keys:?}"
    );
}

/// Writes a plan file (the covariates of rossmann's days `first ..= last`,
/// moved two weeks later) at `path`.
pub(crate) fn plan_two_weeks_later(path: &std::path::Path, first: &str, last: &str) {
    python(
        "import csv, sys, datetime
rows = [r for r in csv.DictReader(open(sys.argv[1], newline='')) if sys.argv[3] <= r['Date'] <= sys.argv[4]]
with open(sys.argv[2], 'w', newline='') as f:
    keep = ['Store', 'Date', 'Promo', 'StateHoliday', 'SchoolHoliday', 'Open']
    w = csv.DictWriter(f, fieldnames=keep, extrasaction='ignore', lineterminator='\\n')
    w.writeheader()
    for r in rows:
        r['Date'] = str(datetime.date.fromisoformat(r['Date']) + datetime.timedelta(days=14))
        w.writerow(r)",
        &[s(&shared_data("rossmann/train.csv")), s(path), first, last],
    );
}

/// What the job is granted or uses: (bucket: lake, registry, raw or release;
/// IAM action; top-level folder of the keys, e.g. `sales/`).
pub(crate) type Grant = (String, String, String);

/// The first folder of a key or prefix, with its slash (`sales/dt=...` -> `sales/`).
pub(crate) fn top_folder(key: &str) -> String {
    key.split_once('/')
        .map(|(top, _)| format!("{top}/"))
        .unwrap_or_default()
}

/// A template value as text: `!Sub` with its parameters' defaults and
/// variables put in, `!If` as the branch where the stack creates the bucket,
/// `!GetAtt X.Arn` as `${X.Arn}`.
fn resolve(value: &Value, defaults: &BTreeMap<String, String>) -> String {
    let substitute = |text: &str, vars: &BTreeMap<String, String>| {
        let mut text = text.to_string();
        for (name, value) in vars.iter().chain(defaults) {
            text = text.replace(&format!("${{{name}}}"), value);
        }
        text
    };
    let Value::Object(tagged) = value else {
        return value.as_str().unwrap_or_else(|| panic!("{value}")).to_string();
    };
    match tagged.iter().next() {
        Some((tag, Value::String(text))) if tag == "Sub" => substitute(text, &BTreeMap::new()),
        Some((tag, Value::Array(args))) if tag == "Sub" => {
            let vars = args[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, defaults)))
                .collect();
            substitute(args[0].as_str().unwrap(), &vars)
        }
        Some((tag, Value::Array(args))) if tag == "If" => resolve(&args[1], defaults),
        Some((tag, Value::String(attribute))) if tag == "GetAtt" => format!("${{{attribute}}}"),
        _ => panic!("cannot resolve {value}"),
    }
}

/// The S3 grants of the daily job's policy.
fn granted(template: &Value) -> BTreeSet<Grant> {
    let defaults: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p["Default"].as_str()?.to_string())))
        .collect();
    let statements = template["Resources"]["DailyJobPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let list = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let mut granted = BTreeSet::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        let actions: Vec<String> = list(&statement["Action"])
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .filter(|a| a.starts_with("s3:"))
            .collect();
        if actions.is_empty() {
            continue;
        }
        for resource in list(&statement["Resource"]) {
            let resource = resolve(&resource, &defaults);
            let (head, path) = resource.split_once('}').unwrap_or_else(|| panic!("{resource}"));
            let bucket = match head {
                "${LakeBucket.Arn" => "lake",
                "${RegistryBucket.Arn" if path.starts_with("/releases/") => "release",
                "${RegistryBucket.Arn" => "registry",
                "${RawBucket.Arn" => "raw",
                _ => "other",
            };
            // A bucket ARN (listing) is limited to the prefixes of its condition.
            let folders: Vec<String> = match path.strip_prefix('/') {
                Some(key) => vec![top_folder(key)],
                None => list(&statement["Condition"]["StringLike"]["s3:prefix"])
                    .iter()
                    .map(|p| top_folder(&resolve(p, &defaults)))
                    .collect(),
            };
            for action in &actions {
                for folder in &folders {
                    granted.insert((bucket.to_string(), action.clone(), folder.clone()));
                }
            }
        }
    }
    granted
}

/// The IAM action an S3 request needs, from its method, key and query.
fn iam_action(method: &str, key: &str, query: &BTreeMap<String, String>) -> &'static str {
    let multipart = query.contains_key("uploadId") || query.contains_key("uploads");
    match method {
        "GET" if key.is_empty() && query.get("list-type").map(String::as_str) == Some("2") => "s3:ListBucket",
        "GET" | "HEAD" if !key.is_empty() && !multipart => "s3:GetObject",
        "PUT" | "POST" if !key.is_empty() => "s3:PutObject",
        "DELETE" if !key.is_empty() && multipart => "s3:AbortMultipartUpload",
        "DELETE" if !key.is_empty() => "s3:DeleteObject",
        _ => panic!("no IAM action known for {method} /{key} {query:?}"),
    }
}

/// The S3 server's request log (scripts/test.sh sends it to TEST_S3_LOG),
/// read from where it ended when this was made.
pub(crate) struct RequestLog {
    path: String,
    offset: u64,
}

impl RequestLog {
    pub(crate) fn start() -> Self {
        let path = std::env::var("TEST_S3_LOG").expect("TEST_S3_LOG: run the tests with scripts/test.sh");
        let offset = std::fs::metadata(&path).unwrap().len();
        RequestLog { path, offset }
    }

    /// The grants the requests logged since `start` to `buckets` (name ->
    /// what the bucket is) needed.
    pub(crate) fn used(&self, buckets: &BTreeMap<String, &str>) -> BTreeSet<Grant> {
        let names: Vec<&str> = buckets.keys().map(String::as_str).collect();
        let out = python(
            r#"import json, re, sys, urllib.parse
buckets, out = set(sys.argv[3].split(',')), []
with open(sys.argv[1], 'rb') as log:
    log.seek(int(sys.argv[2]))
    for line in log.read().decode('utf-8', 'replace').splitlines():
        m = re.search(r'"([A-Z]+) (\S+) HTTP/[0-9.]+"', line)
        if not m: continue
        url = urllib.parse.urlsplit(m.group(2))
        bucket, _, key = url.path.lstrip('/').partition('/')
        if bucket in buckets:
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            out.append([m.group(1), bucket, urllib.parse.unquote(key), query])
print(json.dumps(out))"#,
            &[&self.path, &self.offset.to_string(), &names.join(",")],
        );
        let requests: Vec<(String, String, String, BTreeMap<String, String>)> =
            serde_json::from_str(&out).unwrap();
        assert!(!requests.is_empty(), "no requests logged in {}", self.path);
        requests
            .iter()
            .map(|(method, bucket, key, query)| {
                let action = iam_action(method, key, query);
                let folder = match action {
                    "s3:ListBucket" => top_folder(query.get("prefix").map(String::as_str).unwrap_or("")),
                    _ => top_folder(key),
                };
                (buckets[bucket].to_string(), action.to_string(), folder)
            })
            .collect()
    }
}

#[test]
fn the_iam_policy_grants_exactly_the_s3_actions_runs_use() {
    let lake = fresh_s3_lake();
    let place = Place {
        lake: lake.clone(),
        ..Place::new(Backend::S3)
    };
    let config = place.config(LINEAR);
    let raw = s3_bucket("raw");
    raw_day(&raw, "2015-07-25", "2015-08-01", None);

    // A person loads the plan of the next week (not the job: not counted):
    // the Sunday-to-Saturday rows of two weeks before, two weeks later.
    let plan = place.dir.path().join("plan.csv");
    plan_two_weeks_later(&plan, "2015-07-19", "2015-07-25");
    place.run(&config, &["ingest", "--plan", s(&plan)]).expect_code(0);

    // The job's runs: a retrain and predict, the next day's ingest, monitor
    // (scoring the forecasts of that day), retrain and predict, a rollback,
    // predict again for the restored champion, and a sharded predict,
    // monitor and retrain (two shards, the fan-ins) of the same day; once the champion differs
    // from the one that forecast 2015-08-01, that forecast is made again and
    // monitor replaces the day's scores.
    let log = RequestLog::start();
    let mut versions = vec![];
    let mut champion = String::new();
    let raw_day_uri = format!("s3://{raw}/pos/dt=2015-08-01/");
    let predict = |day: &str| place.run(&config, &["predict", "--date", day]).expect_code(0);
    let monitor = || {
        place
            .run(&config, &["monitor", "--date", "2015-08-01"])
            .expect_code(0)
            .json()
    };
    let mut first = String::new();
    let mut rescored = false;
    let mut rescore = |champion: &str, first: &str| {
        if !rescored && champion != first {
            predict("2015-07-31");
            let report = monitor();
            assert_eq!(report["written"]["replaced"], 1, "{report}");
            rescored = true;
        }
    };
    for day in ["2015-07-31", "2015-08-01"] {
        if day == "2015-08-01" {
            place
                .run(&config, &["ingest", "--input", &raw_day_uri])
                .expect_code(0);
            let report = monitor();
            assert_eq!(report["written"]["written"], 1, "{report}");
        }
        let report = place.retrain(&config, day).expect_code(0).json();
        versions.push(report["challenger"]["version"].as_str().unwrap().to_string());
        champion = report["champion_after"].as_str().unwrap().to_string();
        if day == "2015-07-31" {
            predict(day);
            first.clone_from(&champion);
        }
    }
    rescore(&champion, &first);
    predict("2015-08-01");
    let target = versions.iter().find(|v| **v != champion).expect("two versions");
    place
        .registry_cmd(&["rollback", "--to", &target[..12], "--reason", "iam test"])
        .expect_code(0);
    predict("2015-08-01");
    rescore(target, &first);
    assert!(rescored, "the scores of 2015-08-01 were replaced once");
    // The sharded run's predict builds (buildspec-batch.yml): the shards
    // stage under predictions/, the fan-in commits the day (already there).
    for shard in ["0/2", "1/2"] {
        place
            .run(&config, &["predict", "--date", "2015-08-01", "--shard", shard])
            .expect_code(0);
    }
    place
        .run(&config, &["predict", "--date", "2015-08-01", "--fan-in", "2"])
        .expect_code(0);
    // Its monitor and retrain builds: the shards stage under scores/ and in
    // the registry's runs/ folder, the fan-ins write and remove them.
    let sharded = |command: &str, steps: &[(&str, &str)]| {
        for (flag, value) in steps {
            place
                .run(&config, &[command, "--date", "2015-08-01", flag, value])
                .expect_code(0);
        }
    };
    sharded(
        "monitor",
        &[("--shard", "0/2"), ("--shard", "1/2"), ("--fan-in", "2")],
    );
    sharded(
        "retrain",
        &[
            ("--shard", "0/2"),
            ("--shard", "1/2"),
            ("--fit", "2"),
            ("--score", "0/2"),
            ("--score", "1/2"),
            ("--fan-in", "2"),
        ],
    );

    let buckets = BTreeMap::from([
        (bucket_and_prefix(&lake).0, "lake"),
        (bucket_and_prefix(&place.registry).0, "registry"),
        (raw.clone(), "raw"),
    ]);
    let used = log.used(&buckets);

    let template = yaml(&repo_file("pipelines/salescast.yml"));
    let mut granted = granted(&template);
    let release: BTreeSet<Grant> = granted.iter().filter(|g| g.0 == "release").cloned().collect();
    granted.retain(|g| g.0 != "release");
    assert_eq!(
        release,
        BTreeSet::from([("release".into(), "s3:GetObject".into(), "releases/".into())]),
        "the release folder is only read (daily-job fetch)"
    );
    assert!(granted.iter().all(|g| g.0 != "other"), "{granted:?}");
    let only_granted: Vec<&Grant> = granted.difference(&used).collect();
    let only_used: Vec<&Grant> = used.difference(&granted).collect();
    assert!(
        only_granted.is_empty() && only_used.is_empty(),
        "granted but not used: {only_granted:?}\nused but not granted: {only_used:?}"
    );

    // Athena's plans table declares the columns of the plan's files.
    let plan_file = lake_keys(&lake)
        .into_iter()
        .find(|k| k.starts_with("plans/dt=2015-08-02/") && k.ends_with(".parquet"))
        .expect("the plan's first day");
    assert_glue_columns("PlansTable", &lake, &plan_file);
    // And its scores table those of the scores.
    let scores_file = lake_keys(&lake)
        .into_iter()
        .find(|k| k.starts_with("scores/sales/dt=2015-08-01/") && k.ends_with(".parquet"))
        .expect("the scores of 2015-08-01");
    assert_glue_columns("ScoresTable", &lake, &scores_file);
}

//! CloudWatch metrics and JSON logs, through the real binary: a real retrain
//! and predict on rossmann write EMF lines on stderr that follow the published
//! EMF structure (the JSON Schema of tests/data/emf.schema.json, validated
//! with python's jsonschema, plus the rules a schema cannot say) and carry the
//! report's own figures; `metrics.emf` decides when they are written; a failed
//! run counts `Failed`; `--log-format json` writes one JSON object per line.

use std::path::Path;
use std::process::Command;

use salescast_core::emf::{JobMetrics, LiveBucket};
use serde_json::{Value, json};

use crate::pipelines::yaml;

use crate::util::{
    Cli, LINEAR, Outcome, copy_tree, python, repo_file, rossmann_config, rossmann_lake, run_cmd, s, tempdir,
};

const DAY: &str = "2015-07-20";

/// The EMF documents among the stderr lines (those with an `_aws` member).
pub(crate) fn emf_documents(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// What the specification asks that a JSON Schema cannot say: every
/// dimension a directive names is a string member of the root, every metric
/// a number (or an array of at most 100 numbers) at the root; at most 100
/// metrics, 30 dimensions a set; a timestamp within a day of now.
pub(crate) fn structure_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(root) = doc.as_object() else {
        return vec!["the document is not an object".into()];
    };
    let Some(stamp) = doc["_aws"]["Timestamp"].as_i64() else {
        return vec!["_aws.Timestamp is not an integer".into()];
    };
    let now = chrono::Utc::now().timestamp_millis();
    if (now - stamp).abs() > 86_400_000 {
        problems.push(format!("Timestamp {stamp} is not milliseconds of today"));
    }
    let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
        return vec!["_aws.CloudWatchMetrics is not an array".into()];
    };
    let mut metrics = 0;
    for directive in directives {
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let keys = set.as_array().map_or(&[][..], |v| v.as_slice());
            if keys.len() > 30 {
                problems.push(format!("a dimension set of {} keys", keys.len()));
            }
            for key in keys {
                let key = key.as_str().unwrap_or_default();
                match root.get(key).and_then(Value::as_str) {
                    Some(value) if !value.is_empty() && value.len() <= 1024 => {}
                    _ => problems.push(format!("dimension {key:?} has no string value at the root")),
                }
            }
        }
        for definition in directive["Metrics"].as_array().into_iter().flatten() {
            metrics += 1;
            let name = definition["Name"].as_str().unwrap_or_default();
            let ok = match root.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => values.len() <= 100 && values.iter().all(Value::is_number),
                _ => false,
            };
            if !ok {
                problems.push(format!("metric {name:?} has no numeric value at the root"));
            }
        }
    }
    if metrics > 100 {
        problems.push(format!("{metrics} metrics in one document"));
    }
    problems
}

/// The JSON Schema's complaints about each document (python's jsonschema,
/// draft 7), one line per document: `ok` or the errors.
fn schema_verdicts(docs: &[Value]) -> Vec<String> {
    let code = "import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for text in sys.argv[2:]:
    errors = sorted(e.message for e in validator.iter_errors(json.loads(text)))
    print('; '.join(errors) if errors else 'ok')";
    let texts: Vec<String> = docs.iter().map(Value::to_string).collect();
    let schema = repo_file("tests/data/emf.schema.json");
    let mut args = vec![s(&schema)];
    args.extend(texts.iter().map(String::as_str));
    python(code, &args).lines().map(str::to_string).collect()
}

/// The one EMF document of a run, checked against the specification.
fn the_document(out: &Outcome) -> Value {
    let docs = emf_documents(&out.stderr);
    assert_eq!(docs.len(), 1, "one EMF line expected:\n{}", out.stderr);
    let doc = docs.into_iter().next().unwrap();
    assert_eq!(structure_problems(&doc), Vec::<String>::new(), "{doc:#}");
    assert_eq!(schema_verdicts(std::slice::from_ref(&doc)), ["ok"], "{doc:#}");
    doc
}

fn with_env(cli: &Cli, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd: Command = cli.command(dir, args);
    cmd.env_remove("CODEBUILD_BUILD_ID");
    for (name, value) in env {
        cmd.env(name, value);
    }
    run_cmd(&mut cmd)
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
        _ => false,
    }
}

#[test]
fn the_schema_and_the_structure_check_reject_broken_documents() {
    let good = json!({
        "_aws": {"Timestamp": chrono::Utc::now().timestamp_millis(), "CloudWatchMetrics": [
            {"Namespace": "salescast", "Dimensions": [["Model"]], "Metrics": [{"Name": "Rows", "Unit": "Count"}]}
        ]},
        "Model": "sales",
        "Rows": 3
    });
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Dollars");
    let mut text_stamp = good.clone();
    text_stamp["_aws"]["Timestamp"] = json!("2015-07-31");
    let mut many = good.clone();
    many["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(
        (0..101)
            .map(|i| json!({"Name": format!("M{i}")}))
            .collect::<Vec<_>>()
    );
    let mut reserved = good.clone();
    reserved["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("AWS/CodeBuild");
    let verdicts = schema_verdicts(&[good.clone(), bad_unit, text_stamp, many, reserved]);
    assert_eq!(verdicts[0], "ok");
    for (i, verdict) in verdicts.iter().enumerate().skip(1) {
        assert_ne!(verdict, "ok", "broken document {i} passed the schema");
    }

    assert!(structure_problems(&good).is_empty());
    let mut no_value = good.clone();
    no_value["Rows"] = json!("3");
    let mut no_dimension = good.clone();
    no_dimension.as_object_mut().unwrap().remove("Model");
    let mut seconds = good;
    seconds["_aws"]["Timestamp"] = json!(chrono::Utc::now().timestamp());
    for broken in [no_value, no_dimension, seconds] {
        assert!(!structure_problems(&broken).is_empty(), "{broken:#}");
    }
}

#[test]
fn retrain_and_predict_write_emf_lines_with_their_report_figures() {
    let dir = tempdir();
    let dir = dir.path();
    let lake = dir.join("lake");
    copy_tree(rossmann_lake(), &lake);
    let cli = Cli::new(&rossmann_config(dir, LINEAR), s(&lake)).registry(s(&dir.join("registry")));
    let on = [("SALESCAST_EMF", "on")];

    // A failed run counts Failed (no champion yet: exit 5).
    let failed = with_env(&cli, dir, &["predict", "--date", DAY], &on).expect_code(5);
    let doc = the_document(&failed);
    assert_eq!(
        (&doc["Command"], &doc["Failed"], &doc["ExitCode"]),
        (&json!("predict"), &json!(1.0), &json!(5))
    );

    let out = with_env(&cli.clone().json(), dir, &["retrain", "--date", DAY], &on).expect_code(0);
    let report = out.json();
    let doc = the_document(&out);
    let mut written = vec![doc.clone()];
    assert_eq!(doc["Model"], report["model"]);
    assert_eq!(doc["Command"], "retrain");
    assert_eq!(doc["RunDate"], DAY);
    assert_eq!(doc["Succeeded"], 1.0);
    let decision = report["decision"].as_str().unwrap();
    let kind = format!("{}{}", decision[..1].to_uppercase(), &decision[1..]);
    assert_eq!(doc[&kind], 1.0, "the decision {decision} as a count: {doc:#}");
    for (metric, figure) in [
        ("ChallengerHoldoutWape", &report["challenger"]["holdout"]["wape"]),
        ("Rows", &report["window"]["rows"]),
        ("DurationSeconds", &report["seconds"]["total"]),
        ("CostUsd", &report["cost"]["total_usd"]),
    ] {
        assert!(
            close(&doc[metric], figure),
            "{metric}: {} vs the report's {figure}",
            doc[metric]
        );
    }
    let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    let dimensions: Vec<&Value> = directives.iter().map(|d| &d["Dimensions"]).collect();
    assert_eq!(dimensions, [&json!([["Model", "Command"]]), &json!([["Model"]])]);
    assert!(
        directives[1]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Name"] == "ChallengerHoldoutWape"),
        "the holdout WAPE is the model's, whichever command: {doc:#}"
    );

    // Predict, with JSON logs at debug level: every stderr line is one JSON
    // object, the EMF line among them.
    let out = with_env(
        &cli.clone().json(),
        dir,
        &["--log-format", "json", "-v", "predict", "--date", DAY],
        &on,
    )
    .expect_code(0);
    let report = out.json();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() >= 2,
        "a log line and the EMF line expected:\n{}",
        out.stderr
    );
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.is_object(), "{line}");
    }
    let logs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("_aws").is_none())
        .collect();
    assert!(
        logs.iter()
            .all(|v| v["level"].is_string() && v["timestamp"].is_string() && v.get("message").is_some()),
        "tracing's JSON lines carry level, timestamp and message:\n{}",
        out.stderr
    );
    let doc = the_document(&out);
    assert_eq!(
        (&doc["Command"], &doc["Succeeded"]),
        (&json!("predict"), &json!(1.0))
    );
    assert!(close(&doc["Rows"], &report["rows"]), "{doc:#}");
    written.push(doc);
    the_alarms_watch_what_is_written(written);

    // auto (the default): written inside CodeBuild only; off: never.
    let quiet = with_env(&cli, dir, &["predict", "--date", DAY], &[]).expect_code(0);
    assert!(emf_documents(&quiet.stderr).is_empty(), "{}", quiet.stderr);
    let build = with_env(
        &cli,
        dir,
        &["predict", "--date", DAY],
        &[("CODEBUILD_BUILD_ID", "salescast:1")],
    )
    .expect_code(0);
    the_document(&build);
    let off = with_env(
        &cli,
        dir,
        &["predict", "--date", DAY],
        &[("CODEBUILD_BUILD_ID", "salescast:1"), ("SALESCAST_EMF", "off")],
    )
    .expect_code(0);
    assert!(emf_documents(&off.stderr).is_empty(), "{}", off.stderr);
}

/// Every alarm of the stack on the jobs' namespace watches a metric that
/// `written` (real runs' documents, plus the live-accuracy and drift hooks')
/// holds, under the alarm's dimensions with the stack's default values.
fn the_alarms_watch_what_is_written(mut written: Vec<Value>) {
    let mut hooks = JobMetrics::new("salescast", "sales", "monitor");
    hooks
        .live_accuracy(&[LiveBucket {
            bucket: "1-7".into(),
            live_wape: 0.2,
            holdout_wape: 0.1,
        }])
        .drift(0.3, 1);
    written.extend(hooks.documents(chrono::Utc::now().timestamp_millis()));
    for doc in &written {
        assert_eq!(structure_problems(doc), Vec::<String>::new(), "{doc:#}");
    }
    assert_eq!(schema_verdicts(&written[2..]), ["ok"]);

    let template = yaml(&repo_file("pipelines/salescast.yml"));
    let default = |name: &str| template["Parameters"][name]["Default"].clone();
    let value = |v: &Value| match v.get("Ref").and_then(Value::as_str) {
        Some(parameter) => default(parameter),
        None => v.clone(),
    };
    let mut watched = 0;
    for (name, alarm) in template["Resources"].as_object().unwrap() {
        let p = &alarm["Properties"];
        if alarm["Type"] != "AWS::CloudWatch::Alarm" || p["Namespace"] != json!({"Ref": "MetricsNamespace"}) {
            continue;
        }
        watched += 1;
        let dimensions: Vec<(String, Value)> = p["Dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["Name"].as_str().unwrap().to_string(), value(&d["Value"])))
            .collect();
        let found = written.iter().any(|doc| {
            doc["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|directive| {
                    let names: Vec<&str> = dimensions.iter().map(|(n, _)| n.as_str()).collect();
                    directive["Namespace"] == default("MetricsNamespace")
                        && directive["Dimensions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|set| *set == json!(names))
                        && directive["Metrics"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|m| m["Name"] == p["MetricName"])
                        && dimensions.iter().all(|(n, v)| doc[n.as_str()] == *v)
                })
        });
        assert!(
            found,
            "{name} watches {} {dimensions:?}, which no job writes",
            p["MetricName"]
        );
    }
    assert_eq!(watched, 3, "LiveWapeAlarm, DriftAlarm, MissingRunAlarm");
}

#[test]
fn bad_log_formats_and_emf_modes_are_usage_errors() {
    let dir = tempdir();
    let dir = dir.path();
    let cli = Cli::new(&rossmann_config(dir, ""), s(rossmann_lake())).registry(s(&dir.join("registry")));
    let out = with_env(&cli, dir, &["--log-format", "xml", "models", "list"], &[]).expect_code(2);
    assert!(out.stderr.contains("--log-format"), "{}", out.stderr);
    let out = with_env(&cli, dir, &["models", "list"], &[("SALESCAST_LOG_FORMAT", "xml")]).expect_code(2);
    assert!(out.stderr.contains("SALESCAST_LOG_FORMAT"), "{}", out.stderr);
    let out = with_env(&cli, dir, &["models", "list"], &[("SALESCAST_EMF", "sometimes")]).expect_code(2);
    assert!(out.stderr.contains("SALESCAST_EMF"), "{}", out.stderr);

    // A failure under JSON logs is a JSON line too, with its exit code.
    let out = with_env(
        &cli,
        dir,
        &["--log-format", "json", "predict", "--date", DAY],
        &[("SALESCAST_LOG_FORMAT", "text")],
    )
    .expect_code(5);
    let line: Value = serde_json::from_str(out.stderr.trim())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}):\n{}", out.stderr));
    assert_eq!(
        (&line["level"], &line["exit_code"]),
        (&json!("ERROR"), &json!(5)),
        "{line}"
    );
    let out = with_env(
        &cli,
        dir,
        &["predict", "--date", DAY],
        &[("SALESCAST_LOG_FORMAT", "json")],
    )
    .expect_code(5);
    assert!(
        serde_json::from_str::<Value>(out.stderr.trim()).is_ok(),
        "{}",
        out.stderr
    );
}

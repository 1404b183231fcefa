//! The sharded daily job as a CodeBuild batch build, against the local S3
//! server: the build graph of `buildspec-batch.yml` run build by build in
//! dependency order, each build being the batch buildspec's own phases with
//! its graph's variables (as `DailyJob::codebuild` runs `buildspec.yml`).
//! The partition the fan-in commits is the bytes a single-machine `predict`
//! writes on an identical lake; a failed shard stops the batch (fast-fail:
//! nothing after it starts) and the fan-in refuses (exit 6, naming the
//! shards) until every shard's build has run; a build without a run date,
//! or of a graph for another N, refuses before it writes anything.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::daily_pipeline::{fresh_s3_lake, manifest_of, raw_day};
use crate::lake_objects::{get_object, lake_keys};
use crate::pipelines::{Build, DailyJob, yaml};
use crate::util::{Outcome, repo_file, run_cmd, s3_bucket};

/// One build of a batch graph.
pub(crate) struct Task {
    pub id: String,
    pub depend_on: Vec<String>,
    /// Its `env.variables`.
    pub env: Vec<(String, String)>,
}

/// The build graph of a batch buildspec, in the file's order.
pub(crate) fn graph(spec: &Value) -> Vec<Task> {
    spec["batch"]["build-graph"]
        .as_array()
        .expect("a batch/build-graph")
        .iter()
        .map(|task| Task {
            id: task["identifier"].as_str().unwrap().to_string(),
            depend_on: task["depend-on"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d.as_str().unwrap().to_string())
                .collect(),
            env: task["env"]["variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
        })
        .collect()
}

/// The builds in an order where each comes after every build it depends
/// on (among the builds ready at once, the file's order).
pub(crate) fn topological(tasks: &[Task]) -> Vec<&Task> {
    let mut order: Vec<&Task> = vec![];
    while order.len() < tasks.len() {
        let done: BTreeSet<&str> = order.iter().map(|t| t.id.as_str()).collect();
        let next = tasks
            .iter()
            .find(|t| !done.contains(t.id.as_str()) && t.depend_on.iter().all(|d| done.contains(d.as_str())))
            .expect("the graph has a cycle or names an unknown build");
        order.push(next);
    }
    order
}

fn batch_spec() -> Value {
    yaml(&repo_file("buildspec-batch.yml"))
}

/// Runs the build `id` of the batch graph: the batch buildspec with the
/// build's graph variables and CODEBUILD_BATCH_BUILD_IDENTIFIER, then
/// `fault` (what the test breaks in this build only), under the batch's
/// `start` overrides.
fn run_build(job: &DailyJob, id: &str, start: &[(&str, &str)], fault: &[(&str, &str)]) -> Build {
    let tasks = graph(&batch_spec());
    let task = tasks
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no build {id}"));
    let mut build: Vec<(String, String)> = task.env.clone();
    build.push(("CODEBUILD_BATCH_BUILD_IDENTIFIER".into(), id.into()));
    build.extend(fault.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for (key, _) in start {
        assert!(
            !task.env.iter().any(|(k, _)| k == key),
            "the start overrides {key}, which the graph sets for {id}"
        );
    }
    job.codebuild_of("buildspec-batch.yml", &build, start)
}

/// What a batch run did: the builds run, in order, and each one's result.
struct BatchRun {
    ran: Vec<String>,
    builds: BTreeMap<String, Build>,
}

/// Runs the whole batch as CodeBuild does: a build starts once every build
/// it depends on succeeded; with fast-fail, the first failed build ends the
/// batch and no other build starts. `faults` breaks one build each.
fn run_batch(job: &DailyJob, start: &[(&str, &str)], faults: &[(&str, (&str, &str))]) -> BatchRun {
    let spec = batch_spec();
    assert_eq!(spec["batch"]["fast-fail"], true, "the batch is fast-fail");
    let tasks = graph(&spec);
    let mut run = BatchRun {
        ran: vec![],
        builds: BTreeMap::new(),
    };
    for task in topological(&tasks) {
        let fault: Vec<(&str, &str)> = faults
            .iter()
            .filter(|(id, _)| *id == task.id)
            .map(|(_, kv)| *kv)
            .collect();
        let build = run_build(job, &task.id, start, &fault);
        let failed = build.code != 0;
        run.ran.push(task.id.clone());
        run.builds.insert(task.id.clone(), build);
        if failed {
            break;
        }
    }
    run
}

/// salescast ARGS on `lake`, run as a build runs it: in a checkout of the
/// release's source (its salescast.toml) with the project's environment.
fn salescast_on(job: &DailyJob, lake: &str, args: &[&str]) -> Outcome {
    let source = job.source_checkout();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_salescast"));
    cmd.args(args)
        .current_dir(source.path())
        .env_clear()
        .envs(job.project_env())
        .env("SALESCAST_LAKE", lake);
    run_cmd(&mut cmd)
}

/// The committed predictions of data day `day` in `lake`, by key.
fn partition(lake: &str, day: &str) -> BTreeMap<String, Vec<u8>> {
    let prefix = format!("predictions/sales/dt={day}/");
    lake_keys(lake)
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .map(|k| {
            let bytes = get_object(lake, &k);
            (k, bytes)
        })
        .collect()
}

fn expect_stage(build: &Build, stage: &str) {
    assert!(
        build.log.contains(&format!("daily-job: {stage}: exit 0")),
        "no successful {stage}:\n{}",
        build.log
    );
}

#[test]
fn the_batch_commits_the_partition_a_single_predict_writes() {
    // The day after the lake's last lands in the raw zone; the batch's ingest
    // build loads it.
    let raw = s3_bucket("raw");
    raw_day(&raw, "2015-07-25", "2015-08-01", None);
    let mut job = DailyJob::on_lake(fresh_s3_lake());
    job.env
        .push(("RAW_INPUT".into(), format!("s3://{raw}/pos/dt={{date}}/")));
    let identical = fresh_s3_lake();

    // The schedule's start: its time and the stack's N.
    let start = [
        ("SCHEDULED_TIME", "2015-08-02T05:30:00Z"),
        ("EXPECTED_SHARDS", "3"),
    ];
    let run = run_batch(&job, &start, &[]);
    assert_eq!(
        run.ran,
        [
            "ingest",
            "retrain",
            "predict_0",
            "predict_1",
            "predict_2",
            "predict_fan_in"
        ]
    );
    for (id, build) in &run.builds {
        assert_eq!(build.code, 0, "{id}:\n{}", build.log);
    }
    let builds = &run.builds;
    expect_stage(&builds["ingest"], "ingest");
    expect_stage(&builds["ingest"], "monitor");
    let retrain = builds["retrain"].report.as_deref().unwrap();
    assert!(
        retrain.starts_with("# salescast retrain 2015-08-01: promoted"),
        "{retrain}"
    );
    for k in 0..3 {
        let build = &builds[&format!("predict_{k}")];
        expect_stage(build, "predict-shard");
        assert!(
            build.reports["predict-shard.md"].contains(&format!("shard {k}/3")),
            "{}",
            build.reports["predict-shard.md"]
        );
    }
    let fan_in = &builds["predict_fan_in"];
    expect_stage(fan_in, "predict-fan-in");
    assert!(
        fan_in.report.as_deref().unwrap().contains("fan-in of 3 shards"),
        "{}",
        fan_in.log
    );
    // Only the fan-in commits the day, with the champion the retrain build chose.
    let manifest = manifest_of(&job.place.lake, "2015-08-01");
    assert_eq!(manifest["model_sha256"].as_str(), Some(job.champion().as_str()));

    // One machine, the same day, the same champion, on an identical lake.
    salescast_on(
        &job,
        &identical,
        &["ingest", "--input", &format!("s3://{raw}/pos/dt=2015-08-01/")],
    )
    .expect_code(0);
    salescast_on(&job, &identical, &["predict", "--date", "2015-08-01"]).expect_code(0);
    let sharded = partition(&job.place.lake, "2015-08-01");
    let single = partition(&identical, "2015-08-01");
    assert!(
        sharded.keys().any(|k| k.ends_with("/_manifest.json")) && sharded.len() >= 2,
        "{:?}",
        sharded.keys()
    );
    assert_eq!(
        sharded.keys().collect::<Vec<_>>(),
        single.keys().collect::<Vec<_>>()
    );
    for (key, bytes) in &sharded {
        assert!(bytes == &single[key], "{key} differs from the single run's");
    }
}

#[test]
fn a_failed_shard_stops_the_batch_and_the_fan_in_refuses_until_every_shard_ran() {
    let job = DailyJob::on_lake(fresh_s3_lake());
    let start = [("SCHEDULED_TIME", "2015-08-01T05:30:00Z")];
    let day = "2015-07-31";
    let committed = |job: &DailyJob| {
        lake_keys(&job.place.lake)
            .into_iter()
            .filter(|k| k.starts_with(&format!("predictions/sales/dt={day}/")))
            .collect::<Vec<_>>()
    };

    // predict_1's machine cannot reach the lake (a bucket that does not exist).
    let run = run_batch(
        &job,
        &start,
        &[("predict_1", ("SALESCAST_LAKE", "s3://sc-no-such-lake-bucket"))],
    );
    assert_eq!(
        run.ran,
        ["ingest", "retrain", "predict_0", "predict_1"],
        "fast-fail: predict_2 and the fan-in never start"
    );
    let failed = &run.builds["predict_1"];
    assert_ne!(failed.code, 0, "{}", failed.log);
    assert!(
        failed
            .log
            .contains("daily-job: stopped: predict-shard failed with exit"),
        "{}",
        failed.log
    );
    assert_eq!(committed(&job), Vec::<String>::new(), "nothing is committed");

    // The fan-in's build alone (a retried batch, a person) refuses: shards 1
    // and 2 never ran.
    let fan_in = run_build(&job, "predict_fan_in", &start, &[]).expect_code(6);
    assert!(
        fan_in
            .log
            .contains(&format!("cannot fan in the 3 shards of {day}"))
            && fan_in.log.contains("shard 1/3")
            && fan_in.log.contains("shard 2/3")
            && !fan_in.log.contains("shard 0/3"),
        "{}",
        fan_in.log
    );
    assert!(
        fan_in
            .log
            .contains("daily-job: stopped: predict-fan-in failed with exit 6"),
        "{}",
        fan_in.log
    );
    assert_eq!(committed(&job), Vec::<String>::new());

    // Shard 1 again: the fan-in still refuses, naming shard 2 alone.
    run_build(&job, "predict_1", &start, &[]).expect_code(0);
    let fan_in = run_build(&job, "predict_fan_in", &start, &[]).expect_code(6);
    assert!(
        fan_in.log.contains("shard 2/3") && !fan_in.log.contains("shard 1/3"),
        "{}",
        fan_in.log
    );
    assert_eq!(committed(&job), Vec::<String>::new());

    // Every shard ran: the fan-in commits the day.
    run_build(&job, "predict_2", &start, &[]).expect_code(0);
    run_build(&job, "predict_fan_in", &start, &[]).expect_code(0);
    let manifest = manifest_of(&job.place.lake, day);
    assert_eq!(manifest["model_sha256"].as_str(), Some(job.champion().as_str()));
}

#[test]
fn a_batch_build_refuses_without_a_run_date_or_for_another_graph() {
    // Refused before salescast runs: the shared lake, nothing written.
    let job = DailyJob::new();
    let refused = |build: Build, says: &str| {
        let build = build.expect_code(2);
        assert!(build.log.contains(says), "{says:?} not in:\n{}", build.log);
        assert!(build.report.is_none(), "a refused build writes no report");
    };

    // Started by hand without RUN_DATE: each build would take "yesterday"
    // on its own clock.
    for id in ["ingest", "retrain", "predict_0", "predict_fan_in"] {
        let tasks = graph(&batch_spec());
        let task = tasks.iter().find(|t| t.id == id).unwrap();
        let mode = &task.env.iter().find(|(k, _)| k == "MODE").unwrap().1;
        refused(
            run_build(&job, id, &[], &[]),
            &format!(
                "MODE={mode} (batch build {id}) is one build of a sharded run: set RUN_DATE or SCHEDULED_TIME"
            ),
        );
    }
    let start = [("RUN_DATE", "2015-07-31"), ("EXPECTED_SHARDS", "4")];
    // A stack deployed for 4 shards with this graph of 3: the first build refuses.
    refused(
        run_build(&job, "ingest", &start, &[]),
        "this graph runs SHARDS=3 shards but the stack expects EXPECTED_SHARDS=4: regenerate buildspec-batch.yml with 'pipelines/batch-graph 4'",
    );
    // A shard of another N.
    refused(
        run_build(&job, "predict_0", &start[..1], &[("SHARD", "0/4")]),
        "SHARD=0/4 is not a shard of SHARDS=3",
    );
    refused(
        run_build(&job, "predict_0", &start[..1], &[("SHARD", "first")]),
        "SHARD must be K/N (shard K of N), not 'first'",
    );
}

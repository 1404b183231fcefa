//! The sharded daily job as a CodeBuild batch build, against the local S3
//! server: the build graph of `buildspec-batch.yml` run build by build in
//! dependency order, each build being the batch buildspec's own phases with
//! its graph's variables (as `DailyJob::codebuild` runs `buildspec.yml`).
//! On the second of two days (the first run by the single build in both
//! jobs: the same first champion and forecasts), whose raw files it ingests
//! and whose monitor scores the first day's forecasts, the batch decides what
//! the single build (`buildspec.yml`, `MODE=daily`) decides on an identical
//! lake and registry (the same decision against that champion, the same
//! champion afterwards) and writes the same bytes (the day's predictions,
//! the scores). (Sharded runs' first champions: the failure test here and
//! `retrain_shards.rs`.) A failed shard stops the batch
//! (fast-fail: nothing after it starts) and its fan-in refuses (exit 6,
//! naming the shards; a retrain's decides nothing) until every shard's
//! build has run; a build without a run date, or of a graph for another N,
//! refuses before it writes anything.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::daily_pipeline::{fresh_s3_lake, manifest_of, raw_day};
use crate::lake_objects::{get_object, lake_keys};
use crate::pipelines::{Build, DailyJob, yaml};
use crate::util::{repo_file, s3_bucket};

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
    retry_batch(job, start, faults, &BTreeSet::new())
}

/// `run_batch` as CodeBuild's retry of a batch's failed builds: the builds
/// in `succeeded` are not run again.
fn retry_batch(
    job: &DailyJob,
    start: &[(&str, &str)],
    faults: &[(&str, (&str, &str))],
    succeeded: &BTreeSet<String>,
) -> BatchRun {
    let spec = batch_spec();
    assert_eq!(spec["batch"]["fast-fail"], true, "the batch is fast-fail");
    let tasks = graph(&spec);
    let mut run = BatchRun {
        ran: vec![],
        builds: BTreeMap::new(),
    };
    for task in topological(&tasks) {
        if succeeded.contains(&task.id) {
            continue;
        }
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

/// The objects of `lake` under `prefix`, by key.
fn objects(lake: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    lake_keys(lake)
        .into_iter()
        .filter(|k| k.starts_with(prefix))
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

/// The sharded steps of the checked-in graph (N = 3): the shards' prefix
/// and the build after all of them.
const STEPS: [(&str, &str); 4] = [
    ("monitor", "monitor_fan_in"),
    ("retrain_prepare", "retrain_fit"),
    ("retrain_score", "retrain_fan_in"),
    ("predict", "predict_fan_in"),
];

/// Every build of the checked-in graph in the order `run_batch` runs them
/// (each step's shards, then the build after them), up to `last`.
fn builds_up_to(last: &str) -> Vec<String> {
    let mut order = vec!["ingest".to_string()];
    for (shards, after) in STEPS {
        order.extend((0..3).map(|k| format!("{shards}_{k}")));
        order.push(after.to_string());
    }
    let end = order
        .iter()
        .position(|id| id == last)
        .expect("a build of the graph");
    order.truncate(end + 1);
    order
}

/// The newest decision of a job's registry, without when, by whom and from
/// which build it was made.
fn decided(job: &DailyJob) -> Value {
    let mut last = job.place.decisions().pop().expect("a decision");
    let fields = last.as_object_mut().unwrap();
    for key in ["sequence", "at", "actor", "build"] {
        fields.remove(key);
    }
    last
}

#[test]
fn the_batch_decides_and_commits_what_the_single_daily_job_does() {
    // The day after the lake's last lands in the raw zone; the second day's
    // ingest build loads it.
    let raw = s3_bucket("raw");
    raw_day(&raw, "2015-07-25", "2015-08-01", None);
    let raw_input = format!("s3://{raw}/pos/dt={{date}}/");
    let batch = DailyJob::on_lake(fresh_s3_lake());
    // One machine, the single build (buildspec.yml, MODE=daily), on an
    // identical lake and an identical (fresh) registry.
    let single = DailyJob::on_lake(fresh_s3_lake());
    let modes: BTreeMap<String, String> = graph(&batch_spec())
        .into_iter()
        .map(|t| {
            let mode = t.env.iter().find(|(k, _)| k == "MODE").unwrap().1.clone();
            (t.id, mode)
        })
        .collect();

    // The first day on one machine in both jobs (the single build): the
    // same first champion and forecasts in both. The second day, as the
    // batch in one and the single build in the other, ingests its raw
    // files, monitors the first day's forecasts and retrains against that
    // champion. (A batch's first champion: the failure test below.)
    let first = [("SCHEDULED_TIME", "2015-08-01T05:30:00Z"), ("RAW_INPUT", "")];
    for job in [&batch, &single] {
        job.codebuild(&first).expect_code(0);
    }
    assert_eq!(batch.champion(), single.champion(), "the same first day");
    let (day, scheduled, raw_input) = ("2015-08-01", "2015-08-02T05:30:00Z", raw_input.as_str());
    // The schedule's start: its time and the stack's N (and the raw zone).
    let start = [
        ("SCHEDULED_TIME", scheduled),
        ("EXPECTED_SHARDS", "3"),
        ("RAW_INPUT", raw_input),
    ];
    let run = run_batch(&batch, &start, &[]);
    assert_eq!(run.ran, builds_up_to("predict_fan_in"), "{day}");
    for (id, build) in &run.builds {
        assert_eq!(build.code, 0, "{day} {id}:\n{}", build.log);
        expect_stage(build, &modes[id]);
    }
    let builds = &run.builds;
    for k in 0..3 {
        let report = &builds[&format!("predict_{k}")].reports["predict-shard.md"];
        assert!(report.contains(&format!("shard {k}/3")), "{report}");
    }
    let fan_in = builds["predict_fan_in"].report.as_deref().unwrap();
    assert!(fan_in.contains("fan-in of 3 shards"), "{fan_in}");

    let one = single
        .codebuild(&[("SCHEDULED_TIME", scheduled), ("RAW_INPUT", raw_input)])
        .expect_code(0);
    // The retrain fan-in's report is the day's retrain report: the
    // single build's decision, the same champion afterwards.
    let sharded_report = &builds["retrain_fan_in"].reports["retrain-fan-in.md"];
    let single_report = &one.reports["retrain-predict.md"];
    assert!(
        sharded_report.starts_with(&format!("# salescast retrain {day}: ")),
        "{sharded_report}"
    );
    assert_eq!(
        sharded_report.lines().next(),
        single_report.lines().next(),
        "{day}"
    );
    assert_eq!(decided(&batch), decided(&single), "{day}");
    assert_eq!(batch.champion(), single.champion(), "{day}");
    // Only the predict fan-in commits the day, with that champion.
    let manifest = manifest_of(&batch.place.lake, day);
    assert_eq!(manifest["model_sha256"].as_str(), Some(batch.champion().as_str()));

    // The same bytes: the day's predictions, and every score (the
    // monitor fan-in's files are an unsharded monitor's, no staged
    // file left but the fan-in's record of its commit).
    for prefix in [format!("predictions/sales/dt={day}/"), "scores/".to_string()] {
        let mut sharded = objects(&batch.place.lake, &prefix);
        if prefix == "scores/" {
            let staged: Vec<String> = sharded
                .keys()
                .filter(|k| k.starts_with("scores/sales/_shards/"))
                .cloned()
                .collect();
            assert!(
                staged.len() == 1 && staged[0].ends_with("/committed.json"),
                "{staged:?}"
            );
            sharded.remove(&staged[0]);
        }
        let single = objects(&single.place.lake, &prefix);
        assert_eq!(
            sharded.keys().collect::<Vec<_>>(),
            single.keys().collect::<Vec<_>>(),
            "{day}: {prefix}"
        );
        for (key, bytes) in &sharded {
            assert!(bytes == &single[key], "{key} differs from the single run's");
        }
    }
    let predictions = objects(&batch.place.lake, &format!("predictions/sales/dt={day}/"));
    assert!(
        predictions.keys().any(|k| k.ends_with("/_manifest.json")) && predictions.len() >= 2,
        "{:?}",
        predictions.keys()
    );
    assert_eq!(batch.decision_kinds(), ["promoted", "kept"]);
    assert_eq!(batch.decision_kinds(), single.decision_kinds());
    // The second day's monitor scored the first day's forecasts of 2015-08-01.
    let scored = objects(&batch.place.lake, "scores/sales/dt=2015-08-01/");
    assert!(
        scored.keys().any(|k| k.ends_with(".parquet")),
        "{:?}",
        scored.keys()
    );
}

/// Runs the batch (all of it, or the retry of a batch in which the builds
/// `succeeded` did) with `fault` set in build `id`'s environment: fast-fail
/// stops the batch there (no build after `id` starts, the ones beside it
/// included) and that build's job stopped at `stage`.
fn run_batch_failing_at(
    job: &DailyJob,
    start: &[(&str, &str)],
    succeeded: &BTreeSet<String>,
    (id, fault): (&str, (&str, &str)),
    stage: &str,
) {
    let run = retry_batch(job, start, &[(id, fault)], succeeded);
    let expected: Vec<String> = builds_up_to(id)
        .into_iter()
        .filter(|b| !succeeded.contains(b))
        .collect();
    assert_eq!(run.ran, expected, "fast-fail: nothing after {id}");
    let failed = &run.builds[id];
    assert_ne!(failed.code, 0, "{}", failed.log);
    let stopped = format!("daily-job: stopped: {stage} failed with exit");
    assert!(failed.log.contains(&stopped), "{}", failed.log);
}

/// A fan-in build's `log` refused with `refusal`, naming shards 1 and 2 (the
/// ones that never ran) and not shard 0, and the job stopped at `stage`.
fn expect_refused_for_shards_1_and_2(log: &str, refusal: &str, stage: &str) {
    let named = |k: usize| log.contains(&format!("shard {k}/3"));
    assert!(
        log.contains(refusal) && named(1) && named(2) && !named(0),
        "{log}"
    );
    let stopped = format!("daily-job: stopped: {stage} failed with exit 6");
    assert!(log.contains(&stopped), "{log}");
}

#[test]
fn a_failed_shard_stops_the_batch_and_its_fan_in_refuses_until_every_shard_ran() {
    // One batch on an empty registry: first a retrain score shard fails,
    // then, in the batch's retry, a predict shard.
    let job = DailyJob::on_lake(fresh_s3_lake());
    let start = [("SCHEDULED_TIME", "2015-08-01T05:30:00Z")];
    let day = "2015-07-31";

    // retrain_score_1's machine cannot reach the registry.
    let fault = ("SALESCAST_REGISTRY", "s3://sc-no-such-registry-bucket/registry");
    let none = BTreeSet::new();
    run_batch_failing_at(&job, &start, &none, ("retrain_score_1", fault), "retrain-score");

    // The retrain's fan-in alone (a person) refuses, naming the shards that
    // never scored, and decides nothing.
    let fan_in = run_build(&job, "retrain_fan_in", &start, &[]).expect_code(6);
    expect_refused_for_shards_1_and_2(
        &fan_in.log,
        &format!("cannot fan in the sharded retrain of {day}"),
        "retrain-fan-in",
    );
    assert_eq!(job.decision_kinds(), Vec::<String>::new(), "nothing decided");

    // Both shards scored: the fan-in decides (a first champion).
    for id in ["retrain_score_1", "retrain_score_2"] {
        run_build(&job, id, &start, &[]).expect_code(0);
    }
    let fan_in = run_build(&job, "retrain_fan_in", &start, &[]).expect_code(0);
    let report = &fan_in.reports["retrain-fan-in.md"];
    assert!(
        report.starts_with(&format!("# salescast retrain {day}: promoted")),
        "{report}"
    );
    assert_eq!(job.decision_kinds(), ["promoted"]);

    // The batch retried from there; predict_1's machine cannot reach the
    // lake (a bucket that does not exist).
    let committed = |job: &DailyJob| {
        lake_keys(&job.place.lake)
            .into_iter()
            .filter(|k| k.starts_with(&format!("predictions/sales/dt={day}/")))
            .collect::<Vec<_>>()
    };
    let succeeded: BTreeSet<String> = builds_up_to("retrain_fan_in").into_iter().collect();
    let fault = ("SALESCAST_LAKE", "s3://sc-no-such-lake-bucket");
    run_batch_failing_at(&job, &start, &succeeded, ("predict_1", fault), "predict-shard");
    assert_eq!(committed(&job), Vec::<String>::new(), "nothing is committed");

    // The fan-in's build alone refuses: shards 1 and 2 never ran.
    let fan_in = run_build(&job, "predict_fan_in", &start, &[]).expect_code(6);
    expect_refused_for_shards_1_and_2(
        &fan_in.log,
        &format!("cannot fan in the 3 shards of {day}"),
        "predict-fan-in",
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
    // Refused before the release is fetched (fetch prints the fetched
    // binary's version) and before salescast runs: the shared lake, nothing
    // written.
    let job = DailyJob::new();
    let fetched = format!("salescast {}", env!("CARGO_PKG_VERSION"));
    let refused = |build: Build, says: &str| {
        let build = build.expect_code(2);
        assert!(build.log.contains(says), "{says:?} not in:\n{}", build.log);
        assert!(
            !build.log.contains(&fetched),
            "fetched, then refused:\n{}",
            build.log
        );
        assert!(build.report.is_none(), "a refused build writes no report");
    };

    // Started by hand without RUN_DATE: each build would take "yesterday"
    // on its own clock.
    for id in [
        "ingest",
        "monitor_0",
        "monitor_fan_in",
        "retrain_prepare_0",
        "retrain_fit",
        "retrain_score_0",
        "retrain_fan_in",
        "predict_0",
        "predict_fan_in",
    ] {
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

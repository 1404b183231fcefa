//! The sharded daily job's wiring, read rather than run: `buildspec-batch.yml`
//! is `pipelines/batch-graph`'s output for its N (and a graph for another N
//! has the same shape); the GitHub Actions workflow `daily-sharded.yml` runs
//! the batch graph (the same builds, order and modes, one run date handed
//! down); the stack's batch schedule starts `buildspec-batch.yml` with only
//! overrides that reach every build unchanged, its role may start the batch
//! and nothing else, and the batch may hold exactly the graph's builds.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::batch::{Task, graph};
use crate::pipelines::yaml;
use crate::util::{repo_file, s, tempdir};

fn batch_graph(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_file("pipelines/batch-graph"))
        .args(args)
        .output()
        .unwrap()
}

/// A graph as each build's identifier and the builds it depends on.
fn edges(tasks: &[Task]) -> BTreeMap<String, BTreeSet<String>> {
    tasks
        .iter()
        .map(|t| (t.id.clone(), t.depend_on.iter().cloned().collect()))
        .collect()
}

fn variable<'a>(task: &'a Task, name: &str) -> Option<&'a str> {
    task.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The sharded steps of the daily job in order: the builds' prefix and
/// MODE, and the build after all of them and its MODE.
const SHARDED_STEPS: [(&str, &str, &str, &str); 4] = [
    ("monitor", "monitor-shard", "monitor_fan_in", "monitor-fan-in"),
    ("retrain_prepare", "retrain-prepare", "retrain_fit", "retrain-fit"),
    (
        "retrain_score",
        "retrain-score",
        "retrain_fan_in",
        "retrain-fan-in",
    ),
    ("predict", "predict-shard", "predict_fan_in", "predict-fan-in"),
];

/// The checked-in graph's N (its SHARDS).
fn shards() -> usize {
    let spec = yaml(&repo_file("buildspec-batch.yml"));
    spec["env"]["variables"]["SHARDS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_checked_in_batch_buildspec_is_the_generators_output() {
    let checked_in = std::fs::read_to_string(repo_file("buildspec-batch.yml")).unwrap();
    for args in [&["3"][..], &[]] {
        let out = batch_graph(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout) == checked_in,
            "buildspec-batch.yml is not 'pipelines/batch-graph {args:?}': regenerate it"
        );
    }

    // Another N: the same graph, N shards wide.
    for n in [1, 5] {
        let dir = tempdir();
        let file = dir.path().join("buildspec-batch.yml");
        std::fs::write(&file, batch_graph(&[n.to_string().as_str()]).stdout).unwrap();
        let spec = yaml(&file);
        assert_eq!(spec["env"]["variables"]["SHARDS"], json!(n.to_string()));
        let tasks = graph(&spec);
        assert_eq!(tasks.len(), 4 * n + 5, "N = {n}");
        let mut expected = BTreeMap::from([("ingest".to_string(), BTreeSet::new())]);
        let mut modes = BTreeMap::from([("ingest".to_string(), ("ingest", None))]);
        // Each sharded step after the build before it, its fan-in (or the
        // retrain's fit) after every shard of it.
        let mut before = "ingest".to_string();
        for (prefix, mode, after, after_mode) in SHARDED_STEPS {
            let shards: Vec<String> = (0..n).map(|k| format!("{prefix}_{k}")).collect();
            for (k, shard) in shards.iter().enumerate() {
                expected.insert(shard.clone(), BTreeSet::from([before.clone()]));
                modes.insert(shard.clone(), (mode, Some(format!("{k}/{n}"))));
            }
            expected.insert(after.to_string(), shards.iter().cloned().collect());
            modes.insert(after.to_string(), (after_mode, None));
            before = after.to_string();
        }
        assert_eq!(edges(&tasks), expected, "N = {n}");
        for task in &tasks {
            let (mode, shard) = &modes[&task.id];
            assert_eq!(variable(task, "MODE"), Some(*mode), "{}", task.id);
            assert_eq!(variable(task, "SHARD"), shard.as_deref(), "{}", task.id);
        }
    }

    for bad in ["0", "x", "24", "97", "-1", "3.5"] {
        let out = batch_graph(&[bad]);
        assert_eq!(out.status.code(), Some(2), "N = {bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage: pipelines/batch-graph [N]"),
            "N = {bad}"
        );
        assert!(out.stdout.is_empty(), "N = {bad}: half a graph written");
    }
}

#[test]
fn the_sharded_workflow_runs_the_batch_graph() {
    let spec = yaml(&repo_file("buildspec-batch.yml"));
    let tasks = graph(&spec);
    let n = shards();
    let workflow = yaml(&repo_file(".github/workflows/daily-sharded.yml"));
    let jobs = workflow["jobs"].as_object().unwrap();
    // A job with a matrix over `shard` stands for the builds JOB_0 .. JOB_N-1.
    let expand = |name: &str| -> Vec<String> {
        if jobs[name]["strategy"]["matrix"]["shard"].is_null() {
            vec![name.to_string()]
        } else {
            (0..n).map(|k| format!("{name}_{k}")).collect()
        }
    };
    let mut job_of = BTreeMap::new();
    let mut needs = BTreeMap::new();
    for (name, job) in jobs {
        let direct: Vec<String> = match &job["needs"] {
            Value::Null => vec![],
            Value::String(one) => vec![one.clone()],
            list => list
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
        };
        let deps: BTreeSet<String> = direct.iter().flat_map(|d| expand(d)).collect();
        for id in expand(name) {
            job_of.insert(id.clone(), name.clone());
            needs.insert(id, deps.clone());
        }
    }
    assert_eq!(
        needs,
        edges(&tasks),
        "the workflow's needs against the batch's depend-on"
    );
    for (matrix, ..) in SHARDED_STEPS {
        assert_eq!(jobs[matrix]["strategy"]["fail-fast"], true, "{matrix}");
    }
    // PyYAML reads the key `on` as YAML 1.1's `true`.
    let on = &workflow["true"];
    assert_eq!(
        on["workflow_dispatch"]["inputs"]["shards"]["default"],
        json!(n),
        "the workflow's default N is the checked-in graph's"
    );

    let commands: Vec<&Value> = ["install", "build"]
        .iter()
        .flat_map(|p| spec["phases"][p]["commands"].as_array().unwrap())
        .collect();
    for task in &tasks {
        let job = &jobs[&job_of[&task.id]];
        assert_eq!(
            job["env"]["MODE"].as_str(),
            variable(task, "MODE"),
            "{}: the job's MODE is the build's",
            task.id
        );
        // The same lines as the batch's builds.
        let runs: Vec<&Value> = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| &step["run"])
            .filter(|run| {
                run.as_str()
                    .is_some_and(|r| r.starts_with("bash pipelines/daily-job "))
            })
            .collect();
        assert_eq!(runs, commands, "{}", task.id);
        // One run date, resolved by ingest and handed down job by job; in
        // ingest, every daily-job step (fetch checks the build as run does)
        // gets the plan step's.
        if job["needs"].is_null() {
            for step in job["steps"].as_array().unwrap() {
                if step["run"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("bash pipelines/daily-job "))
                {
                    assert_eq!(
                        step["env"]["RUN_DATE"].as_str(),
                        Some("${{ steps.plan.outputs.run_date }}"),
                        "{}: {}",
                        task.id,
                        step["run"]
                    );
                }
            }
        }
        if let Some(need) = job["needs"].as_str() {
            let handed = format!("${{{{ needs.{need}.outputs.run_date }}}}");
            assert_eq!(
                job["env"]["RUN_DATE"].as_str(),
                Some(handed.as_str()),
                "{}",
                task.id
            );
            if !job["outputs"].is_null() {
                assert_eq!(job["outputs"]["run_date"].as_str(), Some(handed.as_str()));
            }
        }
    }
    // A shard's K from the matrix, N and the list of K from the job before.
    for (matrix, ..) in SHARDED_STEPS {
        let need = jobs[matrix]["needs"].as_str().unwrap();
        assert_eq!(
            jobs[matrix]["env"]["SHARD"].as_str(),
            Some(format!("${{{{ matrix.shard }}}}/${{{{ needs.{need}.outputs.shards }}}}").as_str()),
            "{matrix}"
        );
        assert_eq!(
            jobs[matrix]["strategy"]["matrix"]["shard"].as_str(),
            Some(format!("${{{{ fromJSON(needs.{need}.outputs.shard_list) }}}}").as_str()),
            "{matrix}"
        );
    }

    // The ingest job's plan step, as the schedule runs it (no date) and as a
    // person does (a date, 4 shards).
    let plan = jobs["ingest"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["id"] == "plan")
        .expect("a plan step");
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    for (date, count, list, expected_date) in [
        ("", "3", "[0,1,2]", yesterday.as_str()),
        ("2015-07-31", "4", "[0,1,2,3]", "2015-07-31"),
    ] {
        let dir = tempdir();
        let output = dir.path().join("output");
        let out = Command::new("bash")
            .args(["-e", "-c", plan["run"].as_str().unwrap()])
            .current_dir(repo_file(""))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("RUN_DATE", date)
            .env("SHARDS", count)
            .env("GITHUB_OUTPUT", s(&output))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            format!("run_date={expected_date}\nshards={count}\nshard_list={list}\n")
        );
    }
}

/// A `!Sub` template string with `vars` put in.
fn substitute(value: &Value, vars: &[(&str, &str)]) -> String {
    let mut text = value["Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("not a !Sub: {value}"))
        .to_string();
    for (name, v) in vars {
        text = text.replace(&format!("${{{name}}}"), v);
    }
    text
}

/// Every statement of a role's inline policies.
fn statements(role: &Value) -> Vec<&Value> {
    role["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .collect()
}

#[test]
fn the_stack_starts_the_batch_with_overrides_that_reach_every_build() {
    let template = yaml(&repo_file("pipelines/salescast.yml"));
    let resources = &template["Resources"];
    let spec = yaml(&repo_file("buildspec-batch.yml"));
    let tasks = graph(&spec);

    // Shards = 1 keeps the single build's schedule; N > 1 the batch's.
    assert_eq!(resources["DailySchedule"]["Condition"], "SingleBuild");
    assert_eq!(resources["SchedulerRole"]["Condition"], "SingleBuild");
    let schedule = &resources["DailyBatchSchedule"];
    assert_eq!(schedule["Condition"], "Sharded");
    let target = &schedule["Properties"]["Target"];
    assert_eq!(
        substitute(&target["Arn"], &[("AWS::Partition", "aws")]),
        "arn:aws:scheduler:::aws-sdk:codebuild:startBuildBatch"
    );
    let input: Value = serde_json::from_str(&substitute(
        &target["Input"],
        &[("BuildProject", "salescast"), ("Shards", "3")],
    ))
    .unwrap();
    assert_eq!(input["ProjectName"], "salescast");
    let buildspec = input["BuildspecOverride"].as_str().unwrap();
    assert_eq!(buildspec, "buildspec-batch.yml");
    let overrides: BTreeMap<&str, &str> = input["EnvironmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["Type"], "PLAINTEXT");
            (v["Name"].as_str().unwrap(), v["Value"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        overrides,
        BTreeMap::from([
            ("EXPECTED_SHARDS", "3"),
            ("SCHEDULED_TIME", "<aws.scheduler.scheduled-time>")
        ])
    );
    // Nothing the graph sets per build (or SHARDS, which it sets for all).
    for task in &tasks {
        for (name, _) in &task.env {
            assert!(!overrides.contains_key(name.as_str()), "{} sets {name}", task.id);
        }
    }
    assert!(!overrides.contains_key("SHARDS") && !overrides.contains_key("MODE"));

    // The schedule's role may start a batch of this project, nothing else.
    assert_eq!(target["RoleArn"], json!({"GetAtt": "BatchSchedulerRole.Arn"}));
    let role = &resources["BatchSchedulerRole"];
    assert_eq!(role["Condition"], "Sharded");
    assert_eq!(
        statements(role),
        [
            &json!({"Effect": "Allow", "Action": "codebuild:StartBuildBatch", "Resource": {"GetAtt": "BuildProject.Arn"}})
        ]
    );
    // CodeBuild's batch role: the builds of this project, nothing else.
    let batch_role = &resources["BatchServiceRole"];
    let [statement] = statements(batch_role)[..] else {
        panic!("one statement")
    };
    assert_eq!(
        statement["Action"],
        json!([
            "codebuild:StartBuild",
            "codebuild:StopBuild",
            "codebuild:RetryBuild"
        ])
    );
    assert_eq!(
        substitute(
            &statement["Resource"],
            &[
                ("AWS::Partition", "aws"),
                ("AWS::Region", "r"),
                ("AWS::AccountId", "1"),
                ("ProjectName", "salescast")
            ]
        ),
        "arn:aws:codebuild:r:1:project/salescast"
    );
    assert_eq!(
        resources["BuildProject"]["Properties"]["Name"],
        json!({"Ref": "ProjectName"})
    );

    // The batch holds the graph's builds and no more, for every allowed N.
    let config = &resources["BuildProject"]["Properties"]["BuildBatchConfig"]["If"];
    assert_eq!(config[0], "Sharded");
    let batch = &config[1];
    assert_eq!(batch["CombineArtifacts"], true);
    assert_eq!(
        batch["Restrictions"]["MaximumBuildsAllowed"],
        json!({"FindInMap": ["BatchBuilds", {"Ref": "Shards"}, "Builds"]})
    );
    let allowed = template["Parameters"]["Shards"]["AllowedValues"]
        .as_array()
        .unwrap();
    assert!(allowed.contains(&json!(shards())), "the checked-in N is allowed");
    for n in allowed {
        let n = n.as_u64().unwrap();
        let dir = tempdir();
        let file = dir.path().join("buildspec-batch.yml");
        std::fs::write(&file, batch_graph(&[n.to_string().as_str()]).stdout).unwrap();
        let builds = graph(&yaml(&file)).len() as u64;
        assert_eq!(builds, 4 * n + 5);
        assert_eq!(
            template["Mappings"]["BatchBuilds"][n.to_string()]["Builds"],
            json!(builds),
            "Shards = {n}"
        );
    }
}

//! The CI/CD wiring: each lint of `.ci/lint` fails on a broken copy; the
//! exact command lines of `buildspec.yml` and of the retrain workflow run the
//! daily job against the local S3 server with the environment the schedule
//! (or a person) sets; and the IAM policy of `pipelines/salescast.yml` grants
//! exactly the S3 actions that runs use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::retrain::{Backend, Place};
use crate::util::{LINEAR, copy_tree, python, repo_file, s, s3_bucket, s3_endpoint, tempdir};

/// A YAML file as JSON (CloudFormation's `!Tag value` becomes `{"Tag": value}`).
fn yaml(path: &Path) -> Value {
    let code = "import json, sys, yaml
class Loader(yaml.SafeLoader): pass
def tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode): value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode): value = loader.construct_sequence(node, deep=True)
    else: value = loader.construct_mapping(node, deep=True)
    return {suffix: value}
Loader.add_multi_constructor('!', tag)
print(json.dumps(yaml.load(open(sys.argv[1]), Loader=Loader)))";
    serde_json::from_str(&python(code, &[s(path)])).unwrap()
}

fn venv_bin() -> PathBuf {
    let python = std::env::var("TEST_PYTHON").expect("TEST_PYTHON: run the tests with scripts/test.sh");
    Path::new(&python).parent().unwrap().to_path_buf()
}

/// The CI/CD files of the repository, copied into a fresh folder.
fn ci_files_copy() -> tempfile::TempDir {
    let dir = tempdir();
    std::fs::copy(repo_file("buildspec.yml"), dir.path().join("buildspec.yml")).unwrap();
    copy_tree(
        &repo_file(".github/workflows"),
        &dir.path().join(".github/workflows"),
    );
    copy_tree(&repo_file("pipelines"), &dir.path().join("pipelines"));
    dir
}

fn lint(root: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo_file(".ci/lint"))
        .arg(root)
        .env("LINT_VENV", venv_bin().parent().unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn every_lint_fails_on_a_broken_copy() {
    let (passed, output) = lint(ci_files_copy().path());
    assert!(passed, "an unbroken copy must pass:\n{output}");

    let breakages: [(&str, &str, &str, &str); 4] = [
        (
            "cfn-lint",
            "pipelines/salescast.yml",
            "Type: AWS::S3::Bucket",
            "Type: AWS::S3::Bukket",
        ),
        (
            "actionlint",
            ".github/workflows/ci.yml",
            "    runs-on: ubuntu-24.04\n",
            "",
        ),
        ("yamllint", "buildspec.yml", "MODE: retrain", "MODE: retrain   "),
        (
            "buildspec-schema",
            "buildspec.yml",
            "    commands:\n      - bash pipelines/daily-job run",
            "    command:\n      - bash pipelines/daily-job run",
        ),
    ];
    for (linter, file, from, to) in breakages {
        let copy = ci_files_copy();
        replace_in(&copy.path().join(file), from, to);
        let (passed, output) = lint(copy.path());
        assert!(!passed, "{linter} let a broken {file} pass:\n{output}");
        assert!(
            output.contains(&format!("lint failed: {linter}\n")),
            "only {linter} should fail on the broken {file}:\n{output}"
        );
    }
}

/// The AWS CLI of the test venv, as the build's container runs it.
fn aws(args: &[&str]) -> String {
    let out = Command::new(venv_bin().join("aws"))
        .args(args)
        .env_clear()
        .envs(aws_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the build's container has: the AWS CLI on PATH, credentials, the
/// region, and (here only) the local S3 server's address.
fn aws_env() -> Vec<(String, String)> {
    let path = format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap());
    [
        ("PATH", path.as_str()),
        ("AWS_ENDPOINT_URL", &s3_endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The binary under test and the retailer's config (rossmann's) packaged by
/// pipelines/package-release and published to a release folder on the local
/// S3 server, once per test run.
fn release() -> &'static str {
    static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        let dist = tempdir();
        let config = dist.path().join("retailer.toml");
        let rossmann = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
        std::fs::write(&config, format!("{rossmann}\n{LINEAR}")).unwrap();
        let out = dist.path().join("release");
        let package = Command::new("bash")
            .arg(repo_file("pipelines/package-release"))
            .args([env!("CARGO_BIN_EXE_salescast"), s(&out), s(&config)])
            .output()
            .unwrap();
        assert!(
            package.status.success(),
            "{}",
            String::from_utf8_lossy(&package.stderr)
        );
        let release = format!("s3://{}/releases/v-test", s3_bucket("release"));
        aws(&["s3", "cp", "--recursive", "--only-show-errors", s(&out), &release]);
        release
    })
}

/// The daily job's surroundings: the lake and a fresh registry on the local
/// S3 server, and the release.
struct DailyJob {
    place: Place,
    release: String,
}

impl DailyJob {
    fn new() -> Self {
        DailyJob {
            place: Place::new(Backend::S3),
            release: release().to_string(),
        }
    }

    /// The project's environment (pipelines/salescast.yml sets these).
    fn project_env(&self) -> Vec<(String, String)> {
        let mut env = aws_env();
        env.push(("RELEASE_URI".into(), self.release.clone()));
        env.push(("SALESCAST_LAKE".into(), self.place.lake.clone()));
        env.push(("SALESCAST_REGISTRY".into(), self.place.registry.clone()));
        env
    }

    /// A folder holding the release's source.zip unpacked, as CodeBuild
    /// checks out its source (the retailer's salescast.toml included).
    fn source_checkout(&self) -> tempfile::TempDir {
        let dir = tempdir();
        let zip = dir.path().join("source.zip");
        aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{}/source.zip", self.release),
            s(&zip),
        ]);
        python(
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
            &[s(&zip), s(dir.path())],
        );
        dir
    }

    /// Runs buildspec.yml as CodeBuild does: its `env.variables` under the
    /// project's environment under the start-build overrides; every command
    /// of every phase in order in one bash, stopping at the first failure.
    fn codebuild(&self, overrides: &[(&str, &str)]) -> Build {
        let source = self.source_checkout();
        let spec = yaml(&source.path().join("buildspec.yml"));
        assert_eq!(spec["env"]["shell"], "bash");
        let mut script = String::from("set -e\n");
        for phase in ["install", "pre_build", "build", "post_build"] {
            for command in spec["phases"][phase]["commands"].as_array().into_iter().flatten() {
                script += command.as_str().unwrap();
                script += "\n";
            }
        }
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(&script).current_dir(source.path()).env_clear();
        for (key, value) in spec["env"]["variables"].as_object().unwrap() {
            cmd.env(key, value.as_str().unwrap());
        }
        cmd.envs(self.project_env());
        cmd.envs(overrides.iter().copied());
        let out = cmd.output().unwrap();
        let report_dir = spec["env"]["variables"]["REPORT_DIR"].as_str().unwrap();
        Build {
            code: out.status.code().unwrap_or(-1),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            report: std::fs::read_to_string(source.path().join(report_dir).join("report.md")).ok(),
        }
    }

    fn champion(&self) -> String {
        let pointer = aws(&[
            "s3",
            "cp",
            &format!("{}/sales/champion.json", self.place.registry),
            "-",
        ]);
        serde_json::from_str::<Value>(&pointer).unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn decision_kinds(&self) -> Vec<String> {
        self.place
            .decisions()
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

struct Build {
    code: i32,
    log: String,
    report: Option<String>,
}

impl Build {
    fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "build log:\n{}", self.log);
        self
    }
}

#[test]
fn buildspec_promotes_then_keeps_then_rolls_back() {
    let job = DailyJob::new();

    // The schedule sets MODE and its scheduled time; the run date is the day before.
    let first = job
        .codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-07-31T05:30:00Z")])
        .expect_code(0);
    assert!(
        first.log.contains("salescast-x86_64-linux.tar.gz: OK"),
        "{}",
        first.log
    );
    let report = first
        .report
        .expect("the run report is kept for the build's artifacts");
    assert!(
        report.starts_with("# salescast retrain 2015-07-30: promoted"),
        "{report}"
    );
    assert!(report.contains("estimated cost of this run: $"), "{report}");
    let promoted = job.champion();

    let second = job
        .codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-08-01T05:30:00Z")])
        .expect_code(0);
    let report = second.report.unwrap();
    assert!(
        report.starts_with("# salescast retrain 2015-07-31: kept the champion"),
        "{report}"
    );
    assert_eq!(job.champion(), promoted, "a kept champion stays");

    // A person rolls back to the stored challenger of the second day.
    let kept_challenger = job.place.registry_cmd(&["models", "list"]).expect_code(0).json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .find(|v| *v != promoted)
        .expect("the second day's challenger is stored");
    job.codebuild(&[
        ("MODE", "rollback"),
        ("MODEL_VERSION", &kept_challenger[..12]),
        ("REASON", "buildspec test"),
    ])
    .expect_code(0);
    assert_eq!(job.champion(), kept_challenger);
    assert_eq!(job.decision_kinds(), ["promoted", "kept", "rolled_back"]);

    // Refusals: a rollback without a reason, an unknown mode, and a release
    // whose checksum does not match; none changes the champion or the log.
    let no_reason = job.codebuild(&[("MODE", "rollback")]);
    assert_ne!(no_reason.code, 0, "{}", no_reason.log);
    assert!(no_reason.log.contains("REASON"), "{}", no_reason.log);
    let bad_mode = job.codebuild(&[("MODE", "retrian")]).expect_code(2);
    assert!(
        bad_mode.log.contains("MODE must be retrain or rollback"),
        "{}",
        bad_mode.log
    );
    let tampered_release = format!("s3://{}/releases/v-tampered", s3_bucket("tampered"));
    aws(&[
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        &job.release,
        &tampered_release,
    ]);
    let wrong_sum = tempdir();
    let sum_file = wrong_sum.path().join("salescast-x86_64-linux.tar.gz.sha256");
    std::fs::write(
        &sum_file,
        format!("{}  salescast-x86_64-linux.tar.gz\n", "0".repeat(64)),
    )
    .unwrap();
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        s(&sum_file),
        &format!("{tampered_release}/"),
    ]);
    let job = DailyJob {
        release: tampered_release,
        ..job
    };
    let tampered = job.codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-08-01T05:30:00Z")]);
    assert_ne!(tampered.code, 0, "{}", tampered.log);
    assert!(
        tampered.log.contains("FAILED"),
        "sha256sum should report the mismatch:\n{}",
        tampered.log
    );
    assert!(
        tampered.report.is_none(),
        "salescast must not run from an unchecked binary"
    );
    assert_eq!(job.champion(), kept_challenger);
    assert_eq!(job.decision_kinds().len(), 3);
}

#[test]
fn retrain_workflow_steps_run_the_daily_job() {
    let job = DailyJob::new();
    let workflow = yaml(&repo_file(".github/workflows/retrain.yml"));
    let daily = &workflow["jobs"]["daily-job"];
    let checkout = job.source_checkout();
    let summary = checkout.path().join("step-summary.md");
    std::fs::write(&summary, "").unwrap();

    // The workflow_dispatch inputs a person gives, through the job's `env:`.
    let inputs = BTreeMap::from([("mode", "retrain"), ("date", "2015-07-30")]);
    let mut env: Vec<(String, String)> = job.project_env();
    for (key, value) in daily["env"].as_object().unwrap() {
        let expression = value.as_str().unwrap();
        let resolved = match expression {
            e if e.contains("inputs.mode") => inputs["mode"].to_string(),
            e if e.contains("inputs.date") => inputs["date"].to_string(),
            e if e.contains("inputs.") || e.contains("vars.") => continue,
            literal => literal.to_string(),
        };
        env.push((key.clone(), resolved));
    }
    env.push(("GITHUB_STEP_SUMMARY".into(), s(&summary).to_string()));

    let mut ran = vec![];
    for step in daily["steps"].as_array().unwrap() {
        let Some(run) = step["run"].as_str() else { continue };
        // GitHub's default shell on Linux: bash -e {0}.
        let out = Command::new("bash")
            .args(["-e", "-c", run])
            .current_dir(checkout.path())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {:?} failed:\n{}{}",
            step["name"],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(step["name"].as_str().unwrap().to_string());
    }
    assert_eq!(ran.len(), 3, "fetch, run and summary steps: {ran:?}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("# salescast retrain 2015-07-30: promoted"),
        "{summary}"
    );
    assert_eq!(job.decision_kinds(), ["promoted"]);
}

/// The IAM action each S3 operation the backend sends needs.
fn iam_action(operation: &str) -> &'static str {
    match operation {
        "GetObject" | "HeadObject" => "s3:GetObject",
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => "s3:PutObject",
        "ListObjectsV2" => "s3:ListBucket",
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        "DeleteObject" => "s3:DeleteObject",
        other => panic!("no IAM action known for S3 operation {other}"),
    }
}

/// The S3 actions the daily job's policy grants, by the bucket they name.
fn granted_actions(template: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let statements = template["Resources"]["DailyJobPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        let actions: Vec<String> = match &statement["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
            other => panic!("Action {other}"),
        };
        let resources = match &statement["Resource"] {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        };
        for resource in resources {
            let text = resource.to_string();
            let place = if text.contains("LakeBucket") {
                "lake"
            } else if text.contains("/releases/") {
                "release"
            } else if text.contains("RegistryBucket") {
                "registry"
            } else {
                "other"
            };
            for action in actions.iter().filter(|a| a.starts_with("s3:")) {
                granted
                    .entry(place.to_string())
                    .or_default()
                    .insert(action.clone());
            }
        }
    }
    granted
}

#[test]
fn the_iam_policy_grants_exactly_the_s3_actions_runs_use() {
    let place = Place::new(Backend::S3);
    let config = place.config(LINEAR);
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut record = |store: &str, requests: &Value| {
        for operation in requests.as_object().unwrap().keys() {
            used.entry(store.to_string())
                .or_default()
                .insert(iam_action(operation).to_string());
        }
    };
    let mut versions = vec![];
    let mut champion = String::new();
    for day in ["2015-07-30", "2015-07-31"] {
        let report = place.retrain(&config, day).expect_code(0).json();
        for store in ["lake", "registry"] {
            record(store, &report["cost"]["s3_requests"][store]);
        }
        versions.push(report["challenger"]["version"].as_str().unwrap().to_string());
        champion = report["champion_after"].as_str().unwrap().to_string();
    }
    let target = versions
        .iter()
        .find(|v| **v != champion)
        .expect("two versions")
        .clone();
    let rollback = place
        .registry_cmd(&["rollback", "--to", &target[..12], "--reason", "iam test"])
        .expect_code(0)
        .json();
    record("registry", &rollback["s3_requests"]);

    let template = yaml(&repo_file("pipelines/salescast.yml"));
    let mut granted = granted_actions(&template);
    assert_eq!(
        granted.remove("release"),
        Some(BTreeSet::from(["s3:GetObject".to_string()])),
        "the release folder is only read (daily-job fetch)"
    );
    assert_eq!(granted.remove("other"), None);
    assert_eq!(granted, used, "granted (left) and used (right) S3 actions differ");
}
